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

Hyper-parameters: :data:`OFFICIAL` are those of the paper's official code for Table 1 (WGA α = 5, NPO β = 0.5, TNPO
β = 4, WTNPO β = 4 with α = 1.5), not the package defaults the G-effect figures use.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import protocol, run_cache, setting_data
from ..config import cache_dir
from ..models import RETAIN_TWINS, model_fingerprint
from ..objectives import get_objective
from . import table
from .verdicts import SHARE

OBJECTIVES = ("ga", "wga", "npo", "tnpo", "wtnpo")
OFFICIAL = {"ga": {}, "wga": {"alpha": 5.0}, "npo": {"beta": 0.5}, "tnpo": {"beta": 4.0},
            "wtnpo": {"beta": 4.0, "alpha": 1.5}}
SCALES = (0.125, 0.25, 0.5, 1.0)      # × the protocol's table1 rate (tiny: 2e-3 → 2.5e-4 … 2e-3)
REPLICATIONS = (0, 1, 2)
LEVELS = (0.5, 0.7, 0.9)              # utility levels, × the original model's utility
PAIRS = (("wga", "ga"), ("wtnpo", "npo"), ("wga", "npo"), ("wtnpo", "ga"))
VERSION = 1


def points(model: str = "tiny", replication: int = 0, scales: Sequence[float] = SCALES,
           objectives: Sequence[str] = OBJECTIVES, fast: Optional[bool] = None, progress: bool = True) -> pd.DataFrame:
    """One replication of the frontier: a row per (objective, rate scale) with forget quality and model utility
    (NaN when the run diverged), plus the original model's row (``objective="original"``). Cached on disk."""
    if model not in RETAIN_TWINS:
        raise ValueError(f"the frontier needs a retain-only twin for forget quality; models with one: "
                         f"{', '.join(RETAIN_TWINS)} (got {model!r})")
    bad = [o for o in objectives if o not in OFFICIAL]
    if bad:
        raise ValueError(f"no official Table 1 hyper-parameters for {bad}; valid objectives: {', '.join(OFFICIAL)}")
    S0 = protocol.setting("table1", model, fast=fast, seed=replication, replication=replication)
    key = hashlib.sha1(json.dumps(dict(v=VERSION, t=table.TABLE_VERSION, c=run_cache.CACHE_VERSION,
                                       m=model_fingerprint(model), tw=model_fingerprint(RETAIN_TWINS[model]),
                                       s=S0.key(), k=list(map(float, scales)), o=list(objectives),
                                       h={o: OFFICIAL[o] for o in objectives})).encode()).hexdigest()[:16]
    f = cache_dir() / "tables" / f"frontier-{key}.pkl"
    if f.exists():
        return pd.read_pickle(f)
    n_eval = protocol.EVAL["fast_n_eval"] if S0.fast else protocol.EVAL["n_eval"]
    I = table.inputs(model, S0, n_eval)
    orig = table._evaluate(I.base, I.tok, I.data, S0, I.twin_ratios, n_eval)
    rows = [dict(objective="original", lr_scale=0.0, lr=0.0, forget_quality=orig["forget_quality"],
                 model_utility=orig["model_utility"], diverged=False, seconds=0.0)]
    ref = setting_data.reference(I.base, None, S0, I.forget, I.retain, I.plan)
    for name in tqdm(objectives, desc=f"frontier · {model} · replication {replication}", disable=not progress):
        for k in scales:
            S, t0 = S0.replace(lr=S0.lr * k), time.time()
            m, tr, ok = table.unlearn(I, get_objective(name, **OFFICIAL[name]), ref, S)
            ev = table._evaluate(m, I.tok, I.data, S, I.twin_ratios, n_eval) if ok else {}
            rows.append(dict(objective=name, lr_scale=float(k), lr=S.lr, diverged=not ok,
                             forget_quality=ev.get("forget_quality", np.nan),
                             model_utility=ev.get("model_utility", np.nan), seconds=time.time() - t0))
            del m, tr
    df = pd.DataFrame(rows).assign(replication=replication, model=model)
    f.parent.mkdir(parents=True, exist_ok=True)
    df.to_pickle(f)
    return df


def frontier(model: str = "tiny", replications: Sequence[int] = REPLICATIONS, **kw) -> pd.DataFrame:
    """:func:`points` at every replication, stacked."""
    return pd.concat([points(model, replication=r, **kw) for r in replications], ignore_index=True)


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
    """The four comparisons of :data:`PAIRS` (the paper: WGA and WTNPO trade off better than GA and NPO)."""
    return pd.DataFrame([compare(df, a, b) for a, b in PAIRS if {a, b} <= set(df.objective)])


def plot(df: pd.DataFrame, ax=None, replication: Optional[int] = None):
    """Forget quality (log scale) against model utility, one line per objective through its rates (mean over
    replications unless ``replication`` is given); the original model as a star."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from ..plots import colour
    ax = ax or plt.subplots(figsize=(8, 5))[1]
    d = df if replication is None else df[df.replication == replication]
    u = d[d.objective != "original"].groupby(["objective", "lr_scale"], as_index=False)[
        ["forget_quality", "model_utility"]].mean()
    for name, g in u.groupby("objective", sort=False):
        g = g.sort_values("lr_scale")
        ax.plot(g.model_utility, g.forget_quality, "-o", color=colour(name), label=name.upper())
    o = d[d.objective == "original"]
    ax.plot(o.model_utility.mean(), o.forget_quality.mean(), "*", color="black", ms=14, label="original")
    ax.set(yscale="log", xlabel="model utility (higher keeps more)", ylabel="forget quality (KS p-value, higher "
           "forgets better)", title="Table 1 as a frontier: each line sweeps the learning rate")
    ax.legend(frameon=False, loc="best")
    sns.despine(ax=ax)
    return ax


__all__ = ["points", "frontier", "best_quality", "compare", "claims", "plot", "OBJECTIVES", "OFFICIAL", "SCALES",
           "REPLICATIONS", "LEVELS", "PAIRS"]
