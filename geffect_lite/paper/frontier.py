"""Table 1 as a frontier: forget quality against model utility for GA, WGA, NPO, TNPO and WTNPO, each swept over the
learning rate, at several replications (Wang et al. 2025, arXiv 2502.19301, Table 1: WGA and WTNPO are stated to
trade forget quality against utility better than GA and NPO).

One learning rate per objective cannot compare trade-offs: at the ``table1`` rate of the protocol every unregularised
objective on tiny ends at model utility 0, and at half of it all of them keep most of it. So each objective runs the
``table1`` setting at every rate of :data:`SCALES` (× the protocol's rate), and is judged by its *frontier*: at a
utility level u, the best forget quality it reaches at any rate while keeping model utility ≥ u.

The rule (:func:`compare`), fixed before any frontier run was made (docs/rules.md):

- utility levels :data:`LEVELS` = 0.5, 0.7 and 0.9 × the original model's utility;
- a cell is one (replication, level): the new objective wins it when its best forget quality there is higher than the
  old one's (or only it reaches that utility), loses it in the reverse case, ties on equal values (the KS p-values of
  forget quality lie on a coarse grid) and the cell is skipped when neither reaches the level;
- "better" when the new objective wins ≥ 80 % of the compared cells (``verdicts.SHARE``, the share the scoreboard asks
  of a claim at each rate), "worse" when it loses ≥ 80 %, "mixed" otherwise, "not comparable" with no cell.
  The paper gives Table 1's ordering, not its numbers (they are not in this project's notes), so the rule tests the
  direction only.

Hyper-parameters: two sets (:data:`HPARAM_SETS`). :data:`OFFICIAL` are those of the paper's official code for Table 1
(WGA α = 5, NPO β = 0.5, TNPO β = 4, WTNPO β = 4 with α = 1.5); :data:`FIGURES` are the values of the paper's figures
that this project's G-effect runs use (WGA α = 0.5 as in Fig. 3c, NPO and TNPO β = 1 as in Fig. 5c, WTNPO β = 1 with
α = 1). GA has no hyper-parameter, so its points are shared by both sets.

Rates: :data:`SCALES`, five of them. The first four were committed first (cached as one batch); ×1/16 was added later
as its own batch (:data:`SCALE_BATCHES`), so each cached file stays what its key says.

**At a matched forget level** (:func:`matched`, the rule :func:`compare_matched`, fixed in the commit that added it,
before its runs): each objective runs the ``table1`` setting at the protocol's rate and is stopped at the first θ_t
whose forget risk (token-mean NLL on the forget batch) reaches the retain-only twin's on the same batch — where a
model that never saw the forget authors stands. Its forget quality and model utility are evaluated there. A
replication is a cell: the new objective wins it when its model utility there is higher, loses when lower, ties when
equal; a cell where either objective never reaches the level is skipped. "better" / "worse" / "mixed" / "not
comparable" as for the frontier (≥ 80 % of the compared cells).
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import protocol, results, run_cache, setting_data
from ..config import cache_dir
from ..models import RETAIN_TWINS, model_fingerprint
from ..objectives import get_objective
from . import table
from .verdicts import SHARE

OBJECTIVES = ("ga", "wga", "npo", "tnpo", "wtnpo")
OFFICIAL = {"ga": {}, "wga": {"alpha": 5.0}, "npo": {"beta": 0.5}, "tnpo": {"beta": 4.0},
            "wtnpo": {"beta": 4.0, "alpha": 1.5}}
FIGURES = {"ga": {}, "wga": {"alpha": 0.5}, "npo": {"beta": 1.0}, "tnpo": {"beta": 1.0},
           "wtnpo": {"beta": 1.0, "alpha": 1.0}}
HPARAM_SETS = {"official": OFFICIAL, "figures": FIGURES}
SCALE_BATCHES = ((0.125, 0.25, 0.5, 1.0), (0.0625,))    # × the protocol's table1 rate, cached batch by batch
SCALES = tuple(sorted(k for b in SCALE_BATCHES for k in b))   # tiny: 2e-3 → 1.25e-4 … 2e-3
REPLICATIONS = (0, 1, 2)
LEVELS = (0.5, 0.7, 0.9)              # utility levels, × the original model's utility
PAIRS = (("wga", "ga"), ("wtnpo", "npo"), ("wga", "npo"), ("wtnpo", "ga"))
VERSION = 1


def _hparams(name: str) -> dict:
    if name not in HPARAM_SETS:
        raise ValueError(f"unknown hyper-parameter set {name!r}; valid: {', '.join(HPARAM_SETS)}")
    return HPARAM_SETS[name]


def points(model: str = "tiny", replication: int = 0, scales: Sequence[float] = SCALE_BATCHES[0],
           objectives: Sequence[str] = OBJECTIVES, fast: Optional[bool] = None, progress: bool = True,
           hparams: str = "official", keep_partial: bool = False) -> pd.DataFrame:
    """One replication of the frontier: a row per (objective, rate scale) with forget quality and model utility
    (NaN when the run diverged), plus the original model's row (``objective="original"``). Cached on disk, one file
    per call (its key holds the models' builds, the setting, the scales, the objectives and their hyper-parameters);
    also read from the committed partial file (:func:`partial_name`) and, with ``keep_partial``, added to it."""
    H = _hparams(hparams)
    if model not in RETAIN_TWINS:
        raise ValueError(f"the frontier needs a retain-only twin for forget quality; models with one: "
                         f"{', '.join(RETAIN_TWINS)} (got {model!r})")
    bad = [o for o in objectives if o not in H]
    if bad:
        raise ValueError(f"no Table 1 hyper-parameters for {bad}; valid objectives: {', '.join(H)}")
    S0 = protocol.setting("table1", model, fast=fast, seed=replication, replication=replication)
    key = hashlib.sha1(json.dumps(dict(v=VERSION, t=table.TABLE_VERSION, c=run_cache.CACHE_VERSION,
                                       m=model_fingerprint(model), tw=model_fingerprint(RETAIN_TWINS[model]),
                                       s=S0.key(), k=list(map(float, scales)), o=list(objectives),
                                       h={o: H[o] for o in objectives})).encode()).hexdigest()[:16]
    f = cache_dir() / "tables" / f"frontier-{key}.pkl"
    if f.exists():
        return pd.read_pickle(f)
    carried = (results.load(partial_name(model)) or {}).get("points", {}).get(key)
    if carried is not None:                   # done on another machine, committed in the partial file
        return pd.DataFrame(carried)
    n_eval = protocol.EVAL["fast_n_eval"] if S0.fast else protocol.EVAL["n_eval"]
    I = table.inputs(model, S0, n_eval)
    orig = table._evaluate(I.base, I.tok, I.data, S0, I.twin_ratios, n_eval)
    rows = [dict(objective="original", lr_scale=0.0, lr=0.0, forget_quality=orig["forget_quality"],
                 model_utility=orig["model_utility"], diverged=False, seconds=0.0)]
    ref = setting_data.reference(I.base, None, S0, I.forget, I.retain, I.plan)
    for name in tqdm(objectives, desc=f"frontier · {model} · replication {replication}", disable=not progress):
        for k in scales:
            S, t0 = S0.replace(lr=S0.lr * k), time.time()
            m, tr, ok = table.unlearn(I, get_objective(name, **H[name]), ref, S)
            ev = table._evaluate(m, I.tok, I.data, S, I.twin_ratios, n_eval) if ok else {}
            rows.append(dict(objective=name, lr_scale=float(k), lr=S.lr, diverged=not ok,
                             forget_quality=ev.get("forget_quality", np.nan),
                             model_utility=ev.get("model_utility", np.nan), seconds=time.time() - t0))
            del m, tr
    df = pd.DataFrame(rows).assign(replication=replication, model=model)
    f.parent.mkdir(parents=True, exist_ok=True)
    df.to_pickle(f)
    if keep_partial:
        _add_partial(model, key, df)
    return df


def partial_name(model: str) -> str:
    """The results file that carries a frontier's finished points to another machine (``table1 --frontier
    --save`` writes it as it goes and removes it once the whole frontier is committed)."""
    return f"frontier-{model}-partial"


def _add_partial(model: str, key: str, df: pd.DataFrame) -> None:
    from ..tooling.results import save      # writing is tooling (git, provenance)
    d = results.load(partial_name(model)) or {}
    pts = dict(d.get("points", {}), **{key: df.to_dict("records")})
    save(partial_name(model), dict(model=model, points=pts), command="table1 --frontier --save (partial)",
         seconds=float(sum(r.get("seconds", 0.0) for p in pts.values() for r in p)))


def frontier(model: str = "tiny", replications: Sequence[int] = REPLICATIONS, hparams: str = "official",
             scale_batches: Sequence[Sequence[float]] = SCALE_BATCHES, **kw) -> pd.DataFrame:
    """:func:`points` at every replication and batch of scales, stacked, with a ``hparams`` column (the set). GA's
    points come from the official set in every set (GA has no hyper-parameter)."""
    H = _hparams(hparams)
    objectives = kw.pop("objectives", OBJECTIVES)
    own = [o for o in objectives if hparams == "official" or H[o] != OFFICIAL[o]]
    shared = [o for o in objectives if o not in own]
    parts = []
    for r in replications:
        for batch in scale_batches:
            parts.append(points(model, replication=r, scales=batch, objectives=own, hparams=hparams, **kw))
            if shared:
                d = points(model, replication=r, scales=batch, objectives=OBJECTIVES, hparams="official", **kw)
                parts.append(d[d.objective.isin(shared)])
    df = pd.concat(parts, ignore_index=True)
    orig = df[df.objective == "original"].drop_duplicates("replication")
    return pd.concat([orig, df[df.objective != "original"]], ignore_index=True).assign(hparams=hparams)


def best_quality(df: pd.DataFrame, objective: str, level: float) -> float:
    """The best forget quality ``objective`` reaches in ``df`` (one replication) while keeping model utility ≥
    ``level`` × the original model's utility; NaN when no rate keeps that much."""
    u0 = float(df.loc[df.objective == "original", "model_utility"].iloc[0])
    d = df[(df.objective == objective) & (df.model_utility >= level * u0)]
    return float(d.forget_quality.max()) if len(d) else float("nan")


def compare(df: pd.DataFrame, new: str, old: str, levels: Sequence[float] = LEVELS) -> dict:
    """The frontier rule (module docstring): wins, losses, ties over (replication, level) cells and the verdict."""
    w = l = t = 0
    for _, d in df.groupby("replication"):
        for u in levels:
            a, b = best_quality(d, new, u), best_quality(d, old, u)
            if np.isnan(a) and np.isnan(b):
                continue
            if np.isnan(b) or (not np.isnan(a) and a > b):
                w += 1
            elif np.isnan(a) or a < b:
                l += 1
            else:
                t += 1
    n = w + l + t
    verdict = ("not comparable" if n == 0 else "better" if w >= SHARE * n else "worse" if l >= SHARE * n
               else "mixed")
    return dict(new=new, old=old, wins=w, losses=l, ties=t, cells=n, verdict=verdict)


def claims(df: pd.DataFrame) -> pd.DataFrame:
    """The four comparisons of :data:`PAIRS` (the paper: WGA and WTNPO trade off better than GA and NPO), per
    hyper-parameter set (column ``hparams``; a frame without it is the official set)."""
    df = df if "hparams" in df else df.assign(hparams="official")
    return pd.DataFrame([dict(compare(d, a, b), hparams=h) for h, d in df.groupby("hparams", sort=False)
                         for a, b in PAIRS if {a, b} <= set(d.objective)])


def matched(model: str = "tiny", replication: int = 0, objectives: Sequence[str] = OBJECTIVES,
            hparams: str = "official", fast: Optional[bool] = None, progress: bool = True) -> pd.DataFrame:
    """Each objective at the protocol's ``table1`` rate, stopped at the first θ_t whose forget risk reaches the
    retain-only twin's (module docstring): a row per objective with the target, the step, whether it was reached,
    and forget quality / model utility there (NaN when not reached or diverged before). Cached on disk."""
    H = _hparams(hparams)
    S = protocol.setting("table1", model, fast=fast, seed=replication, replication=replication)
    key = hashlib.sha1(json.dumps(dict(v=VERSION, what="matched", t=table.TABLE_VERSION, c=run_cache.CACHE_VERSION,
                                       m=model_fingerprint(model), tw=model_fingerprint(RETAIN_TWINS[model]),
                                       s=S.key(), o=list(objectives), h={o: H[o] for o in objectives})
                                  ).encode()).hexdigest()[:16]
    f = cache_dir() / "tables" / f"frontier-matched-{key}.pkl"
    if f.exists():
        return pd.read_pickle(f)
    import torch
    from .. import nll
    n_eval = protocol.EVAL["fast_n_eval"] if S.fast else protocol.EVAL["n_eval"]
    I = table.inputs(model, S, n_eval)
    with torch.no_grad():
        target = float(nll.risk(I.twin, I.forget, S.risk))
    ref = setting_data.reference(I.base, None, S, I.forget, I.retain, I.plan)
    rows = []
    for name in tqdm(objectives, desc=f"matched · {model} · replication {replication}", disable=not progress):
        obj, t0 = get_objective(name, **H[name]), time.time()
        _, tr, ok = table.unlearn(I, obj, ref, S)                   # where does the forget risk cross the target?
        s = tr.steps[tr.steps.status == "ok"]
        hit = s[s.risk_u >= target]
        row = dict(objective=name, target=target, reached=bool(len(hit)), step=int(hit.step.iloc[0]) if len(hit)
                   else -1, forget_risk=float(hit.risk_u.iloc[0]) if len(hit) else float("nan"),
                   forget_quality=float("nan"), model_utility=float("nan"), diverged=not ok)
        if len(hit):                                                # the same run again, evaluated at θ_step
            k, got = row["step"], {}

            def probe(m, t, k=k, got=got):
                if t == k:
                    got.update(table._evaluate(m, I.tok, I.data, S, I.twin_ratios, n_eval))
                return pd.DataFrame([dict(evaluated=t == k)])
            m2, tr2, _ = table.unlearn(I, obj, ref, S, every=k, groups=False, probe=probe)
            again = tr2.steps.set_index("step").risk_u.get(k, float("nan"))
            if not np.isclose(again, row["forget_risk"], rtol=1e-6):
                raise RuntimeError(f"{name}: the rerun is not the same run (forget risk at θ_{k}: {again} vs "
                                   f"{row['forget_risk']})")
            row.update(forget_quality=got.get("forget_quality", np.nan), model_utility=got.get("model_utility", np.nan))
            del m2, tr2
        rows.append(dict(row, seconds=time.time() - t0))
    df = pd.DataFrame(rows).assign(replication=replication, model=model, hparams=hparams)
    f.parent.mkdir(parents=True, exist_ok=True)
    df.to_pickle(f)
    return df


def compare_matched(m: pd.DataFrame, new: str, old: str) -> dict:
    """The matched-level rule (module docstring): model utility at the twin's forget risk, one cell per
    replication; cells where either objective never reached the level are skipped."""
    w = l = t = 0
    for _, d in m.groupby("replication"):
        a, b = (d[d.objective == x] for x in (new, old))
        if not (len(a) and len(b)) or not (bool(a.reached.iloc[0]) and bool(b.reached.iloc[0])):
            continue
        ua, ub = float(a.model_utility.iloc[0]), float(b.model_utility.iloc[0])
        if np.isnan(ua) or np.isnan(ub):
            continue
        w, l, t = w + (ua > ub), l + (ua < ub), t + (ua == ub)
    n = w + l + t
    verdict = ("not comparable" if n == 0 else "better" if w >= SHARE * n else "worse" if l >= SHARE * n
               else "mixed")
    return dict(new=new, old=old, wins=int(w), losses=int(l), ties=int(t), cells=int(n), verdict=verdict)


def matched_claims(m: pd.DataFrame) -> pd.DataFrame:
    """The four comparisons of :data:`PAIRS` at the matched forget level, per hyper-parameter set."""
    return pd.DataFrame([dict(compare_matched(d, a, b), hparams=h) for h, d in m.groupby("hparams", sort=False)
                         for a, b in PAIRS if {a, b} <= set(d.objective)])


def plot(df: pd.DataFrame, ax=None, replication: Optional[int] = None, hparams: str = "official"):
    """Forget quality (log scale) against model utility, one line per objective through its rates (mean over
    replications unless ``replication`` is given) for one hyper-parameter set; the original model as a star."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from ..plots import colour
    ax = ax or plt.subplots(figsize=(8, 5))[1]
    d = df if replication is None else df[df.replication == replication]
    d = d[d.hparams == hparams] if "hparams" in d else d
    u = d[d.objective != "original"].groupby(["objective", "lr_scale"], as_index=False)[
        ["forget_quality", "model_utility"]].mean()
    for name, g in u.groupby("objective", sort=False):
        g = g.sort_values("lr_scale")
        ax.plot(g.model_utility, g.forget_quality, "-o", color=colour(name), label=name.upper())
    o = d[d.objective == "original"]
    ax.plot(o.model_utility.mean(), o.forget_quality.mean(), "*", color="black", ms=14, label="original")
    ax.set(yscale="log", xlabel="model utility (higher keeps more)", ylabel="forget quality (KS p-value, higher "
           "forgets better)", title={"official": "the official code's", "figures": "the paper's figures'"}.get(
               hparams, hparams) + " hyper-parameters; a line sweeps the rate")
    ax.legend(frameon=False, loc="best")
    sns.despine(ax=ax)
    return ax


def plot_sets(df: pd.DataFrame):
    """:func:`plot` for every hyper-parameter set in ``df``, side by side on one forget-quality axis; the figure."""
    import matplotlib.pyplot as plt
    sets = list(dict.fromkeys(df.hparams)) if "hparams" in df else ["official"]
    fig, axes = plt.subplots(1, len(sets), figsize=(6.25 * len(sets), 5), sharey=True, squeeze=False)
    for ax, h in zip(axes[0], sets):
        plot(df, ax=ax, hparams=h)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    on = f" on {', '.join(dict.fromkeys(df.model))}" if "model" in df else ""
    fig.suptitle(f"Table 1 as a frontier{on}: forget quality against model utility, mean over replications",
                 fontsize=14)
    fig.tight_layout()
    return fig


__all__ = ["plot_sets", "points", "frontier", "best_quality", "compare", "claims", "matched", "compare_matched", "matched_claims",
           "plot", "OBJECTIVES", "OFFICIAL", "FIGURES", "HPARAM_SETS", "SCALES", "SCALE_BATCHES", "REPLICATIONS",
           "LEVELS", "PAIRS"]
