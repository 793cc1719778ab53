"""Seaborn figures in the paper's style, readable when projected. Every function takes library results (tidy
DataFrames) and returns axes or a figure; nothing here computes G-effects.

Colours, fixed across the whole series:

* within one objective's plot, **gold = the forget set (e_u)** and **navy = the retain set (e_r)**, solid = total,
  lighter shades and dashes = layer groups from shallow to deep (the paper's Fig. 2 legend);
* when several objectives share a plot, **each objective has one colour** (:data:`OBJECTIVE_COLOURS`,
  :func:`colour`); its ``+kl`` / ``+gd`` / ``+rr`` variants keep that colour and change the line style.

G-effects span many orders of magnitude, so the default y-axis is symmetric log, one labelled tick per decade or two
(:func:`symlog`), the linear region marked. Layer groups are named at their line's end (:func:`direct_labels`).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

FORGET = "#b8860b"    # gold: the forget set, e_u
RETAIN = "#1f2a6b"    # navy: the retain set, e_r
PALETTE = {"forget": FORGET, "retain": RETAIN}
GROUP_ORDER = ("embed", "embed+lm (tied)", "shallow", "middle", "deep", "lm")
GROUP_DASHES = {"embed": (1, 1), "embed+lm (tied)": (1, 1), "shallow": (4, 2), "middle": (3, 1, 1, 1),
                "deep": (6, 2), "lm": (2, 1, 4, 1)}
#: one colour per objective (colour-blind-safe where possible), the same in every notebook
OBJECTIVE_COLOURS = {
    "ga": "#d62728", "wga": "#2ca02c", "npo": "#1f77b4", "tnpo": "#17becf", "wtnpo": "#9467bd", "po": "#8c564b",
    "idkdpo": "#c49c94", "rmu": "#e377c2", "gd": "#ff7f0e", "kl": "#7f7f7f", "simnpo": "#bcbd22",
    "satimp": "#008080", "undial": "#7b4173", "ce-u": "#c51b7d", "rr": "#6b6ecf",
}
COMPOSITES = {"ga+gd": "gd", "ga+kl": "kl", "ga+rr": "rr"}   # GA + a regulariser: the regulariser's colour
VARIANT_STYLES = {"": "-", "+kl": "--", "+gd": "-.", "+rr": ":"}


def setup(context: str = "notebook", font_scale: float = 1.2):
    """Readable-when-projected defaults (labels ≥ 12 pt at 100 dpi)."""
    sns.set_theme(context=context, style="whitegrid", font_scale=font_scale,
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "legend.frameon": False})


def save(fig, path, dpi: int = 150) -> Path:
    """Save a figure (folders created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi, bbox_inches="tight")
    return p


def colour(name: str) -> str:
    """The colour of an objective: GA's regularised forms (ga+gd, ga+kl, ga+rr) take the regulariser's; other
    ``x+reg`` and run names (``npo_b1``) take their base's; user objectives get a stable hashed one."""
    key = name.strip().split(" ")[0].lower()
    if COMPOSITES.get(key.split("_")[0]) in OBJECTIVE_COLOURS:
        return OBJECTIVE_COLOURS[COMPOSITES[key.split("_")[0]]]
    base = key.split("+")[0].split("_")[0]
    if base in OBJECTIVE_COLOURS:
        return OBJECTIVE_COLOURS[base]
    h = int(hashlib.sha1(base.encode()).hexdigest()[:6], 16)
    return sns.color_palette("husl", 24)[h % 24]


def style(name: str) -> str:
    """The line style of an objective's variant: solid, "--" for +kl, "-." for +gd, ":" for +rr (GA's regularised
    forms, which have their own colour, stay solid)."""
    key = name.strip().split(" ")[0].lower().split("_")[0]
    if key in COMPOSITES:
        return "-"
    return VARIANT_STYLES.get("+" + key.split("+", 1)[1] if "+" in key else "", "-")


def symlog(ax, values, axis: str = "y", max_labels: int = 9):
    """Symmetric-log scale with readable ticks: the linear region is the decade 10⁻³ below the largest |value|,
    one tick at 0, and ±10^k ticks every one or two decades so that at most ``max_labels`` labels show."""
    vals = np.asarray(values, dtype=float).ravel()
    vals = vals[np.isfinite(vals)]
    v = np.abs(vals[vals != 0])
    top = float(v.max()) if v.size else 1.0
    hi = math.ceil(math.log10(top))
    lo = hi - 3
    signs = [s for s, present in ((-1, (vals < 0).any()), (1, (vals > 0).any())) if present] or [1]
    decades = list(range(lo + 1, hi + 1))
    stride = max(1, math.ceil(len(decades) * len(signs) / max(1, max_labels - 1)))
    decades = decades[::-1][::stride][::-1]
    ticks = sorted([0.0] + [s * 10.0 ** k for s in signs for k in decades])
    fmt = FuncFormatter(lambda x, _: "0" if x == 0 else f"{'−' if x < 0 else ''}$10^{{{int(round(math.log10(abs(x))))}}}$")
    if axis == "y":
        ax.set_yscale("symlog", linthresh=10.0 ** lo, linscale=0.5)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(fmt)
        ax.axhspan(-10.0 ** lo, 10.0 ** lo, color="0.92", zorder=0, lw=0)
    else:
        ax.set_xscale("symlog", linthresh=10.0 ** lo, linscale=0.5)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(fmt)
    return ax


def legend_outside(ax, **kw):
    """A legend to the right of the axes, off the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kw)


def _ok(steps):
    return steps[(steps.status == "ok") & steps.e_u.notna()] if "status" in steps else steps


def trajectory(traj, ax=None, title: Optional[str] = None, opt: bool = False, log: bool = True, legend: bool = True):
    """e_u (gold) and e_r (navy) over steps (Fig. 3a style); ``opt=True`` adds the optimiser-aware G-effects dotted."""
    df = _ok(traj.steps)
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    ax.plot(df.step, df.e_u, color=FORGET, lw=2.2, label="$e_u$ (forget)")
    ax.plot(df.step, df.e_r, color=RETAIN, lw=2.2, label="$e_r$ (retain)")
    cols = ["e_u", "e_r"]
    if opt and "e_u_opt" in df:
        ax.plot(df.step, df.e_u_opt, color=FORGET, lw=1.4, ls=":", label="$e_u$, optimiser-aware")
        ax.plot(df.step, df.e_r_opt, color=RETAIN, lw=1.4, ls=":", label="$e_r$, optimiser-aware")
        cols += ["e_u_opt", "e_r_opt"]
    ax.axhline(0, color="grey", lw=0.8)
    if log and len(df):
        symlog(ax, df[cols].to_numpy().ravel())
    ax.set_xlabel("unlearning step")
    ax.set_ylabel("G-effect")
    ax.set_title(title or traj.config.get("objective", ""))
    if legend:
        legend_outside(ax)
    return ax


def groups(traj, ax=None, scheme: str = "paper", term: str = "objective", title: Optional[str] = None,
           log: bool = True, risk_sets=("forget", "retain"), legend: bool = True, labels: bool = True):
    """Layer-group G-effects over steps (Fig. 3b): gold shades = forget, navy shades = retain, lighter = shallower, one
    dash style per group (Fig. 2's legend). ``labels``: name each line at its end (u·shallow, r·lm, …), not a legend."""
    g = traj.groups
    g = g[(g.scheme == scheme) & (g.term == term) & (g.risk_set.isin(risk_sets))].copy()
    order = [x for x in GROUP_ORDER if x in set(g.group)] if scheme == "paper" else list(dict.fromkeys(g.group))
    ax = ax or plt.subplots(figsize=(7.5, 4.2))[1]
    ends = []                                   # (last step, last value, label, colour)
    for rs in risk_sets:
        c = PALETTE[rs]                        # light (shallow) → dark (lm), each group with its own dashes too
        shades = sns.blend_palette([sns.set_hls_values(c, l=.75), c, sns.set_hls_values(c, l=.15)], len(order))
        for grp, col in zip(order, shades):
            d = g[(g.risk_set == rs) & (g.group == grp)]
            ax.plot(d.step, d.value, color=col, lw=1.9, dashes=GROUP_DASHES.get(grp, (1, 0)),
                    label=f"{'$e_u$' if rs == 'forget' else '$e_r$'} {grp}")
            if len(d):                          # u·shallow, r·lm, …: the line's direct label
                ends.append((float(d.step.iloc[-1]), float(d.value.iloc[-1]), f"{'ur'[rs == 'retain']}·{grp}", col))
    ax.axhline(0, color="grey", lw=0.8)
    if log and len(g):
        symlog(ax, g.value.to_numpy())
    direct_labels(ax, ends if labels else [])
    ax.set(xlabel="unlearning step", ylabel="G-effect")
    ax.set_title(title or f"{traj.config.get('objective', '')}: layer groups")
    if legend and not labels:
        legend_outside(ax, ncol=1, fontsize="small")
    return ax


def direct_labels(ax, ends, gap_pt: float = 11.0):
    """Name each line at its right end, in its colour (read sooner than a legend); labels closer than ``gap_pt`` points
    are pushed apart vertically; ``ends``: (x, y, text, colour) per line."""
    if not ends:
        return
    left = ax.get_xlim()[0]
    x_end = max(e[0] for e in ends)
    ax.set_xlim(left, x_end + 0.022 * max(len(e[2]) for e in ends) * (x_end - left))   # room for the labels
    ax.figure.canvas.draw()                      # the scales (symlog included) are final: measure in points
    pt, last = 72.0 / ax.figure.dpi, None
    rows = sorted(((ax.transData.transform((x, y))[1] * pt, x, y, text, col) for x, y, text, col in ends),
                  key=lambda r: r[0])
    for y_pt, x, y, text, col in rows:
        want = y_pt if last is None else max(y_pt, last + gap_pt)
        last = want
        ax.annotate(text, xy=(x_end, y), xytext=(6, want - y_pt), textcoords="offset points", fontsize=10,
                    color=col, va="center", ha="left", annotation_clip=False)


def compare(trajs: dict, column: str = "e_u", ax=None, log: bool = True, title: Optional[str] = None,
            ylabel: Optional[str] = None):
    """One line per objective (its colour, its variant's line style) of one column of ``steps`` over steps."""
    ax = ax or plt.subplots(figsize=(7.5, 4.2))[1]
    allv = []
    for name, tr in trajs.items():
        d = _ok(tr.steps) if column.startswith("e_") else tr.steps.dropna(subset=[column])
        ax.plot(d.step, d[column], color=colour(name), ls=style(name), lw=2, label=name)
        allv.append(d[column].to_numpy())
    ax.axhline(0, color="grey", lw=0.8)
    if log and allv:
        symlog(ax, np.concatenate(allv))
    ax.set_xlabel("unlearning step")
    ax.set_ylabel(ylabel or {"e_u": "$e_u$ (forget)", "e_r": "$e_r$ (retain)", "risk_u": "forget risk (NLL)",
                             "risk_r": "retain risk (NLL)"}.get(column, column))
    ax.set_title(title or column)
    legend_outside(ax)
    return ax


def bar_groups(ge, scheme: str = "paper", term: str = "objective", ax=None, title: Optional[str] = None):
    """One G-effect's group breakdown, forget vs retain."""
    g = ge.groups
    g = g[(g.scheme == scheme) & (g.term == term)]
    ax = ax or plt.subplots(figsize=(7, 3.8))[1]
    sns.barplot(data=g, x="group", y="value", hue="risk_set", palette=PALETTE, ax=ax)
    ax.axhline(0, color="grey", lw=0.8)
    symlog(ax, g.value.to_numpy())              # retain bars can be 100× smaller than forget bars: keep them visible
    ax.set(ylabel="G-effect (symmetric log)", xlabel=f"{scheme} group")
    ax.set_title(title or f"{ge.info.get('objective', '')}: G-effect by {scheme} group")
    ax.tick_params(axis="x", rotation=30)
    legend_outside(ax, title="risk set")
    return ax


def first_order(traj, risk_set: str = "forget", ax=None, log: bool = True):
    """Predicted (first order, ∇RᵀΔθ) vs realised risk change per step, plus the second-order term if recorded
    (symlog by default: the changes span decades over a run)."""
    s = "u" if risk_set == "forget" else "r"
    df = traj.steps.dropna(subset=[f"pred_d{s}", f"real_d{s}"])
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    ax.plot(df.step, df[f"real_d{s}"], "o-", color="black", label="realised ΔR")
    ax.plot(df.step, df[f"pred_d{s}"], "s--", color=PALETTE[risk_set], label="first order ∇RᵀΔθ")
    if f"second_{s}" in df:
        ax.plot(df.step, df[f"pred_d{s}"] + df[f"second_{s}"], "^:", color="tab:red", label="+ ½ΔθᵀHΔθ")
    ax.axhline(0, color="grey", lw=0.8)
    if log and len(df):
        symlog(ax, df[[f"real_d{s}", f"pred_d{s}"]].to_numpy().ravel())
    ax.set_xlabel("unlearning step")
    ax.set_ylabel(f"change of R ({risk_set} set)")
    ax.set_title(f"First-order check, {risk_set} set")
    legend_outside(ax)
    return ax


def accumulated(traj, risk_set: str = "forget", ax=None, title: Optional[str] = None):
    """The accumulated G-effect: −Σ_t η_t e_t (raw) and Σ_t ∇R_tᵀΔθ_t (optimiser-aware) against the realised
    R(θ_t) − R(θ_0) over a run."""
    s = "u" if risk_set == "forget" else "r"
    d = _ok(traj.steps).dropna(subset=[f"real_d{s}"])
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    ax.plot(d.step + 1, d[f"real_d{s}"].cumsum(), "o-", color="black", lw=2, label="realised $R(θ_t) − R(θ_0)$")
    ax.plot(d.step + 1, (-d.lr * d[f"e_{s}"]).cumsum(), "s--", color=PALETTE[risk_set], label="$−Σ η e$ (raw)")
    ax.plot(d.step + 1, d[f"pred_d{s}"].cumsum(), "^:", color="tab:red", label="$Σ ∇R^⊤Δθ$ (optimiser-aware)")
    vals = np.concatenate([d[f"real_d{s}"].cumsum(), (-d.lr * d[f"e_{s}"]).cumsum(), d[f"pred_d{s}"].cumsum()])
    symlog(ax, vals)
    ax.set_xlabel("step")
    ax.set_ylabel(f"accumulated change of R ({risk_set})")
    ax.set_title(title or f"{traj.config.get('objective', '')}: accumulated G-effect")
    legend_outside(ax)
    return ax


def weights(traj, column: str = "weight", ax=None, log: bool = False, title: Optional[str] = None):
    """The objective's weight (or 1/p) over steps: median and interquartile band over tokens (Fig. 5a)."""
    w = traj.weights
    ax = ax or plt.subplots(figsize=(7, 3.8))[1]
    sns.lineplot(data=w, x="step", y=column, ax=ax, errorbar=("pi", 50), estimator="median",
                 color=colour(traj.config.get("objective", "")))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("unlearning step")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_title(title or f"{traj.config.get('objective', '')}: {column.replace('_', ' ')} (median, IQR)")
    return ax


def pg_density(df, hue: str = "weight_bin", ax=None, title: Optional[str] = None):
    """Fig. 5b: each forget point's (unlearning PG-effect, retaining PG-effect), coloured by its NPO weight bin
    (darker = larger weight), with density contours where a bin has enough points.

    ``df``: rows with columns ``forget``, ``retain`` (PG-effects, :func:`geffect_lite.pg_effects`) and ``hue``."""
    ax = ax or plt.subplots(figsize=(7, 5))[1]
    bins = _bin_order(df[hue]) if len(df) else []
    pal = dict(zip(bins, sns.color_palette("rocket_r", n_colors=max(len(bins), 1))))
    for b in bins:
        d = df[df[hue] == b]
        if len(d) >= 5 and d.forget.std() > 0 and d.retain.std() > 0:
            sns.kdeplot(data=d, x="forget", y="retain", ax=ax, levels=3, color=pal[b], warn_singular=False)
        ax.scatter(d.forget, d.retain, s=28, color=pal[b], label=str(b), edgecolor="white", linewidth=0.4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("unlearning PG-effect  ∇R(forget)ᵀ∇log p(s)")
    ax.set_ylabel("retaining PG-effect  ∇R(retain)ᵀ∇log p(s)")
    ax.set_title(title or "PG-effects by NPO weight (Fig. 5b)")
    legend_outside(ax, title="NPO weight")
    return ax


def _bin_order(col) -> list:
    """Bin labels in numeric order ("0–0.2" < "0.2–0.4" < …; a categorical column keeps its own order)."""
    if hasattr(col, "cat"):
        return [c for c in col.cat.categories if (col == c).any()]

    def lower(label):
        try:
            return float(str(label).replace("−", "-").split("–")[0].split(" ")[0])
        except ValueError:
            return float("inf")
    return sorted(col.dropna().unique(), key=lambda b: (lower(b), str(b)))


def token_heatmap(tokens_df, risk_set: str = "forget", view: str = "moved", ax=None, max_instances: int = 10,
                  title: Optional[str] = None):
    """Per-token G-effects: rows = instances, columns = answer positions, text = the token. The colour is the token's
    share of Σ|token G-effect| over the answers shown (signed, linear): **red = this token's risk rises** (G-effect
    < 0), **blue = it falls** (G-effect > 0), white = no effect."""
    d = tokens_df[(tokens_df.risk_set == risk_set) & (tokens_df.view == view)]
    if "step" in d:
        d = d[d.step == d.step.min()]
    ids = list(dict.fromkeys(d.id))[:max_instances]
    d = d[d.id.isin(ids)].copy()
    d["share"] = d.value / max(float(d.value.abs().sum()), 1e-300)
    mat = d.pivot_table(index="id", columns="position", values="share", sort=False).reindex(ids)
    txt = d.pivot_table(index="id", columns="position", values="token", aggfunc="first", sort=False).reindex(ids)
    ax = ax or plt.subplots(figsize=(min(12.5, 2 + 0.85 * mat.shape[1]), 1 + 0.6 * len(ids)))[1]
    vmax = float(np.nanmax(np.abs(mat.values))) if mat.size else 1.0
    sns.heatmap(mat, annot=txt.fillna("").values, fmt="", cmap="RdBu", center=0, vmin=-vmax, vmax=vmax, ax=ax,
                annot_kws={"fontsize": 11}, cbar_kws={"label": "share of Σ|token G-effect| shown\n(red: risk rises)"})
    ax.set_xlabel("answer position")
    ax.set_ylabel("")
    ax.set_title(title or f"Per-token G-effect ({risk_set} set, {view} view)")
    return ax


def cone(proj, ax=None, title: str = "Fig. 1 with real gradients"):
    """The paper's Fig. 1: objective gradients projected on the plane of ∇R_u and ∇R_r.

    ``proj``: DataFrame with columns name, x, y (coordinates in an orthonormal basis of span{∇R_u, ∇R_r}, ∇R_u along
    +x) and rows named ``∇R_u`` and ``∇R_r``. A direction g has e_u = ⟨g, ∇R_u⟩ and e_r = ⟨g, ∇R_r⟩, so the good
    region (e_u < 0, e_r ≥ 0) is the intersection of two half-planes (green)."""
    ax = ax or plt.subplots(figsize=(6, 6))[1]
    ru = proj[proj.name == "∇R_u"][["x", "y"]].values[0]
    rr = proj[proj.name == "∇R_r"][["x", "y"]].values[0]
    ang = np.linspace(0, 2 * np.pi, 721)
    circ = np.stack([np.cos(ang), np.sin(ang)], 1)
    good = (circ @ ru < 0) & (circ @ rr >= 0)
    ax.scatter(circ[good, 0], circ[good, 1], s=6, color="tab:green", alpha=0.6, label="$e_u<0,\\ e_r\\geq0$")
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="grey"))
    for _, r in proj.iterrows():
        v = np.array([r.x, r.y])
        if np.linalg.norm(v) == 0:
            continue
        v = v / np.linalg.norm(v)
        col = FORGET if r["name"] == "∇R_u" else RETAIN if r["name"] == "∇R_r" else \
            colour(r["name"].splitlines()[0].split(",")[0].strip())
        ax.annotate("", xy=v, xytext=(0, 0),
                    arrowprops=dict(arrowstyle="->", color=col, lw=2.4 if r["name"].startswith("∇R") else 1.5))
        ax.text(1.14 * v[0], 1.14 * v[1], r["name"], ha="center", va="center", fontsize=11, color=col)
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.45, 1.45)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    ax.legend(loc="lower left")
    return ax


def grid(trajs: dict, ncols: int = 3, group_panel: Optional[str] = None, size=(4.8, 3.3),
         title: str = "G-effects over the unlearning steps, one panel per objective"):
    """The README figure: one panel per objective (e_u and e_r) in ``ncols`` columns, then the layer groups of
    ``group_panel`` (default: the first objective): forget and retain in two panels when the grid has room, else
    both in one; the shared legend fills the next free cell (below the grid if none is free). Every panel has its
    own symmetric-log y-scale, which the title says."""
    names = list(trajs)
    spare = (-len(names)) % ncols or ncols            # free cells in the grid's last row(s)
    split = spare >= 3                                 # room for forget groups, retain groups and the legend
    n = len(names) + (2 if split else 1)
    nrows = math.ceil((n + 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    cells = list(axes.flat)
    for ax, name in zip(cells, names):
        trajectory(trajs[name], ax=ax, title=name, legend=False)
        ax.title.set_color(colour(name))
        ax.set_xlabel("step")
    gp = group_panel or names[0]
    sets = [("forget",), ("retain",)] if split else [("forget", "retain")]
    for ax, rs in zip(cells[len(names):], sets):
        groups(trajs[gp], ax=ax, risk_sets=rs, legend=False,
               title=f"{gp}: layer groups" + ("" if len(rs) == 2 else f", {'$e_u$' if rs == ('forget',) else '$e_r$'}"))
        ax.set_xlabel("step")
    free = cells[n:]
    for ax in free:
        ax.axis("off")
    h, lab = cells[0].get_legend_handles_labels()
    (free[0] if free else fig).legend(h, lab, loc="center" if free else "lower center", ncol=1 if free else 2,
                                      frameon=False, fontsize=14, title="each panel: its own\nsymmetric-log y-scale")
    fig.suptitle(title, fontsize=17)
    fig.tight_layout(rect=(0, 0 if free else 0.1, 1, 1))
    return fig


__all__ = ["setup", "save", "colour", "style", "symlog", "legend_outside", "trajectory", "groups", "compare", "bar_groups",
           "first_order", "accumulated", "weights", "pg_density", "token_heatmap", "cone", "grid", "direct_labels", "PALETTE",
           "FORGET", "RETAIN", "OBJECTIVE_COLOURS"]
