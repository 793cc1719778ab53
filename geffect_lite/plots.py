"""Seaborn figures in the paper's style. Every function takes library results (DataFrames) and returns a figure
or axes; nothing here computes G-effects. Colours follow the paper: gold/brown = unlearn (e_u), navy = retain (e_r);
solid = total, dashed = layer groups (Fig. 2 legend).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

UNLEARN = "#b8860b"   # gold/brown
RETAIN = "#1f2a6b"    # navy
PALETTE = {"unlearn": UNLEARN, "retain": RETAIN}
GROUP_DASHES = {"embed": (1, 1), "embed+lm (tied)": (1, 1), "shallow": (4, 2), "middle": (3, 1, 1, 1),
                "deep": (6, 2), "lm": (2, 1, 4, 1)}


def setup(context: str = "notebook", font_scale: float = 1.1):
    """Readable-when-projected defaults."""
    sns.set_theme(context=context, style="whitegrid", font_scale=font_scale)


def save(fig, path, dpi: int = 150):
    """Save a figure (folders created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi, bbox_inches="tight")
    return p


def trajectory(traj, ax=None, title: Optional[str] = None, opt: bool = False, symlog: bool = True):
    """e_u and e_r over steps (paper Fig. 3a style); ``opt=True`` adds the optimiser-aware G-effects dotted."""
    df = traj.steps[traj.steps.status == "ok"] if "status" in traj.steps else traj.steps
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    ax.plot(df.step, df.e_u, color=UNLEARN, lw=2, label="unlearn $e_u$")
    ax.plot(df.step, df.e_r, color=RETAIN, lw=2, label="retain $e_r$")
    if opt and "e_u_opt" in df:
        ax.plot(df.step, df.e_u_opt, color=UNLEARN, lw=1.2, ls=":", label="$e_u$ (optimiser-aware)")
        ax.plot(df.step, df.e_r_opt, color=RETAIN, lw=1.2, ls=":", label="$e_r$ (optimiser-aware)")
    ax.axhline(0, color="grey", lw=0.8)
    if symlog:
        cols = ["e_u", "e_r"] + (["e_u_opt", "e_r_opt"] if opt and "e_u_opt" in df else [])
        lim = max(1e-12, float(np.nanmax(np.abs(df[cols].values))) if len(df) else 1.0)
        ax.set_yscale("symlog", linthresh=max(lim * 1e-2, 1e-12))
    ax.set_xlabel("unlearning step")
    ax.set_ylabel("G-effect")
    ax.set_title(title or traj.config.get("objective", ""))
    ax.legend(fontsize="small")
    return ax


def _shades(base: str, n: int):
    """n shades of ``base`` from light to dark (lighter = shallower group, as in the paper's Fig. 2 legend)."""
    return sns.light_palette(base, n_colors=n + 2)[2:] if n else []


def groups(traj, ax=None, scheme: str = "paper", term: str = "objective", title: Optional[str] = None,
           symlog: bool = True, risk_sets=("unlearn", "retain")):
    """Layer-group G-effects over steps (paper Fig. 3b): gold shades = unlearn, navy shades = retain, lighter =
    shallower group, and a dash style per group (Fig. 2 legend)."""
    g = traj.groups
    g = g[(g.scheme == scheme) & (g.term == term) & (g.risk_set.isin(risk_sets))].copy()
    order = [x for x in ["embed", "embed+lm (tied)", "shallow", "middle", "deep", "lm"] if x in set(g.group)] \
        if scheme == "paper" else list(dict.fromkeys(g.group))
    g["series"] = g.risk_set + ": " + g.group
    pal = {}
    for rs in risk_sets:
        for grp, col in zip(order, _shades(PALETTE[rs], len(order))):
            pal[f"{rs}: {grp}"] = col
    ax = ax or plt.subplots(figsize=(6.5, 3.8))[1]
    dashes = {k: GROUP_DASHES.get(k.split(": ", 1)[1], (1, 0)) for k in pal} if scheme == "paper" else True
    sns.lineplot(data=g, x="step", y="value", hue="series", style="series", palette=pal, dashes=dashes, ax=ax,
                 hue_order=[k for k in pal if k in set(g.series)], style_order=[k for k in pal if k in set(g.series)],
                 lw=1.8)
    ax.axhline(0, color="grey", lw=0.8)
    if symlog and len(g):
        lim = max(1e-12, float(np.nanmax(np.abs(g.value.values))))
        ax.set_yscale("symlog", linthresh=max(lim * 1e-2, 1e-12))
    ax.set_xlabel("unlearning step")
    ax.set_ylabel("G-effect")
    ax.set_title(title or f"{traj.config.get('objective', '')}: layer groups")
    ax.legend(fontsize="x-small", ncol=2, loc="best", title=None)
    return ax


def bar_groups(ge, scheme: str = "paper", term: str = "objective", ax=None, title: Optional[str] = None):
    """Bar chart of one G-effect's group breakdown (unlearn vs retain)."""
    g = ge.groups
    g = g[(g.scheme == scheme) & (g.term == term)]
    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    sns.barplot(data=g, x="group", y="value", hue="risk_set", palette=PALETTE, ax=ax)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("G-effect")
    ax.set_xlabel("")
    ax.set_title(title or f"{ge.info.get('objective', '')}: G-effect by {scheme} group")
    ax.tick_params(axis="x", rotation=30)
    return ax


def first_order(traj, risk_set: str = "unlearn", ax=None):
    """Predicted (−η e, first order) vs realised risk change per step, plus the second-order term if recorded."""
    s = "u" if risk_set == "unlearn" else "r"
    df = traj.steps.dropna(subset=[f"pred_d{s}", f"real_d{s}"])
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    ax.plot(df.step, df[f"real_d{s}"], "o-", color="black", label="realised ΔR")
    ax.plot(df.step, df[f"pred_d{s}"], "s--", color=PALETTE[risk_set], label="first order ∇RᵀΔθ")
    if f"second_{s}" in df:
        ax.plot(df.step, df[f"pred_d{s}"] + df[f"second_{s}"], "^:", color="tab:red",
                label="+ ½ΔθᵀHΔθ (second order)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("unlearning step")
    ax.set_ylabel(f"change of R on the {risk_set} set")
    ax.set_title(f"First-order check ({risk_set})")
    ax.legend(fontsize="small")
    return ax


def weights(traj, column: str = "weight", ax=None, log: bool = False, title: Optional[str] = None):
    """Mean objective weight (or inverse confidence) over steps (Fig. 5a; GA's inverse confidence, appendix)."""
    w = traj.weights
    ax = ax or plt.subplots(figsize=(6, 3.4))[1]
    sns.lineplot(data=w, x="step", y=column, ax=ax, errorbar=("pi", 50), color=UNLEARN)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("unlearning step")
    ax.set_title(title or f"{traj.config.get('objective', '')}: {column}")
    return ax


def pg_density(df, x: str = "unlearn", y: str = "retain", hue: str = "weight_bin", ax=None):
    """Joint density of (unlearning PG-effect, retaining PG-effect) by weight bin (paper Fig. 5b).

    ``df``: one row per forget instance with columns ``unlearn``, ``retain`` (PG-effects) and ``weight_bin``.
    """
    ax = ax or plt.subplots(figsize=(5.5, 4.2))[1]
    n_bins = df[hue].nunique() if len(df) else 1
    pal = sns.color_palette("rocket_r", n_colors=max(n_bins, 1))
    try:
        sns.kdeplot(data=df, x=x, y=y, hue=hue, ax=ax, levels=4, palette=pal, warn_singular=False)
    except Exception:
        pass
    sns.scatterplot(data=df, x=x, y=y, hue=hue, ax=ax, palette=pal, s=18, legend=False)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("unlearning PG-effect")
    ax.set_ylabel("retaining PG-effect")
    return ax


def token_heatmap(tokens_df, risk_set: str = "unlearn", view: str = "moved", ax=None, max_instances: int = 12,
                  title: Optional[str] = None):
    """Per-token G-effects as a heat map: rows = instances, columns = answer positions, text = the token."""
    d = tokens_df[(tokens_df.risk_set == risk_set) & (tokens_df.view == view)]
    if "step" in d:
        d = d[d.step == d.step.max()]
    ids = list(dict.fromkeys(d.id))[:max_instances]
    d = d[d.id.isin(ids)]
    mat = d.pivot_table(index="id", columns="position", values="value", sort=False).reindex(ids)
    txt = d.pivot_table(index="id", columns="position", values="token", aggfunc="first", sort=False).reindex(ids)
    ax = ax or plt.subplots(figsize=(min(18, 1 + 0.55 * mat.shape[1]), 0.5 + 0.45 * len(ids)))[1]
    vmax = float(np.nanmax(np.abs(mat.values))) if mat.size else 1.0
    sns.heatmap(mat, annot=txt.fillna("").values, fmt="", cmap="RdBu", center=0, vmin=-vmax, vmax=vmax, ax=ax,
                annot_kws={"fontsize": 7}, cbar_kws={"label": "token G-effect"})
    ax.set_xlabel("answer position")
    ax.set_ylabel("")
    ax.set_title(title or f"Per-token G-effect ({risk_set}, {view}); red = risk rises")
    return ax


def cone(proj, ax=None, title: str = "Fig. 1 with real gradients"):
    """The paper's Fig. 1: objective gradients projected on the plane of ∇R_u and ∇R_r.

    ``proj``: DataFrame with columns name, x, y (coordinates in an orthonormal basis of span{∇R_u, ∇R_r}, with ∇R_u
    along +x), and rows named ``∇R_u`` and ``∇R_r``. A direction g gives e_u = ⟨g, ∇R_u⟩ and e_r = ⟨g, ∇R_r⟩, so the
    good region (e_u < 0, e_r ≥ 0) is the intersection of two half-planes.
    """
    ax = ax or plt.subplots(figsize=(5.2, 5.2))[1]
    ru = proj[proj.name == "∇R_u"][["x", "y"]].values[0]
    rr = proj[proj.name == "∇R_r"][["x", "y"]].values[0]
    ang = np.linspace(0, 2 * np.pi, 721)
    circ = np.stack([np.cos(ang), np.sin(ang)], 1)
    good = (circ @ ru < 0) & (circ @ rr >= 0)
    ax.scatter(circ[good, 0], circ[good, 1], s=4, color="tab:green", alpha=0.6, label="$e_u<0,\\ e_r\\geq0$")
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="grey"))
    for _, r in proj.iterrows():
        v = np.array([r.x, r.y])
        nrm = np.linalg.norm(v)
        if nrm == 0:
            continue
        v = v / nrm
        is_risk = r["name"].startswith("∇R")
        col = PALETTE["unlearn"] if r["name"] == "∇R_u" else PALETTE["retain"] if r["name"] == "∇R_r" else "black"
        ax.annotate("", xy=v, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=col, lw=2.2 if is_risk else 1.3))
        ax.text(1.12 * v[0], 1.12 * v[1], r["name"], ha="center", va="center", fontsize=9, color=col)
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize="small")
    return ax


def grid(trajs: dict, scheme: str = "paper", figsize_per=(4.2, 3.0)):
    """A grid in the style of the paper's Figs. 3–8: one column per objective, rows = total and groups."""
    n = len(trajs)
    fig, axes = plt.subplots(2, n, figsize=(figsize_per[0] * n, figsize_per[1] * 2), squeeze=False)
    for j, (name, tr) in enumerate(trajs.items()):
        trajectory(tr, ax=axes[0, j], title=name)
        if tr.groups is not None:
            groups(tr, ax=axes[1, j], scheme=scheme, title=f"{name}: groups")
            if j < n - 1:
                axes[1, j].get_legend().remove() if axes[1, j].get_legend() else None
    fig.tight_layout()
    return fig
