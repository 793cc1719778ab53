"""The claims scoreboard — every claim of Wang et al. 2025 (arXiv 2502.19301) that the toolkit can test, checked
live on one model, then over seeds and learning rates, and at three scales.

* :func:`scoreboard` — one row per claim at one seed and learning-rate scale: claim, paper, kind, verdict, numbers,
  reason (the rule, and what was seen instead when it misses).
* :func:`sensitivity` — the scoreboard at seeds 0, 1, 2 (the protocol's learning rate) and at ×½ and ×2 the rate
  (seed 0): five runs. :func:`aggregate` turns them into one verdict per claim: **reproduced** (at every seed),
  **not reproduced** (at no seed), **fragile** (the seeds disagree), or **not applicable**, with "k of n" over all
  five runs and a note when the learning rate flips it.

This module only judges. Storing and reading the committed runs (``save``, ``merge_rejudged``, ``committed``,
``three_scales``) is :mod:`.scoreboard_io`; the Markdown of the three-scale table (the README's) is :mod:`.render`.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import pandas as pd

# the rules register themselves in this order, which is the scoreboard's: identities, GA/WGA, NPO/TNPO, PO/RMU/
# regularisers, Table 1 and the insights
from . import rules_identities  # noqa: F401,I001
from . import rules_ga  # noqa: F401
from . import rules_npo  # noqa: F401
from . import rules_po_rmu_reg  # noqa: F401
from . import rules_insights  # noqa: F401
from .claims import CLAIMS, by_id
from .runs import Runs

TIER_MODELS = ("tiny", "deep", "smollm2-tofu")
SEEDS, LR_SCALES = (0, 1, 2), (0.5, 2.0)
FINAL = ("reproduced", "not reproduced", "fragile", "not applicable")


def scoreboard(model: str = "tiny", seed: int = 0, lr_scale: float = 1.0, fast: Optional[bool] = None,
               claims: Optional[Sequence[str]] = None, runs: Optional[Runs] = None, changes: Optional[dict] = None,
               progress: bool = False) -> pd.DataFrame:
    """The scoreboard at one seed and learning-rate scale (see the module docstring). A claim that cannot be
    computed is "not applicable" with the error, so one claim never hides the others."""
    runs = runs or Runs(model, seed=seed, lr_scale=lr_scale, fast=fast, changes=changes, progress=progress)
    wanted = [by_id(c) for c in claims] if claims is not None else CLAIMS
    rows, t_all = [], time.time()
    for c in wanted:
        t0 = time.time()
        try:
            r = c.fn(runs)
        except Exception as e:
            r = dict(verdict="not applicable", numbers="–", values={},
                     reason=f"could not be computed on {runs.model_name}: {type(e).__name__}: {e}")
        rows.append(dict(claim=c.id, paper=c.paper, kind=c.kind, verdict=r["verdict"], numbers=r["numbers"],
                         reason=r["reason"], values=r.get("values", {}), seconds=time.time() - t0))
        if progress:
            print(f"{c.id:24s} {r['verdict']:15s} ({time.time() - t0:.1f} s)", flush=True)
    df = pd.DataFrame(rows).assign(seed=runs.seed, lr_scale=runs.lr_scale)
    df.attrs["config"] = dict(model=runs.model_name, seed=runs.seed, lr_scale=runs.lr_scale, fast=runs.fast,
                              setting=runs.setting().describe(), changes=runs.changes,
                              seconds=time.time() - t_all, run_seconds=dict(runs.seconds), peak_rss_mb=peak_rss_mb())
    return df


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sensitivity(model: str = "tiny", seeds=SEEDS, lr_scales=LR_SCALES, fast: Optional[bool] = None,
                claims=None, progress: bool = False) -> pd.DataFrame:
    """The scoreboard at each seed (protocol rate) and at each rate scale (seed 0), stacked."""
    grid = [(s, 1.0) for s in seeds] + [(seeds[0], k) for k in lr_scales]
    out = []
    for s, k in grid:
        if progress:
            print(f"== {model}: seed {s}, lr ×{k:g}", flush=True)
        out.append(scoreboard(model, seed=s, lr_scale=k, fast=fast, claims=claims, progress=progress))
    long = pd.concat(out, ignore_index=True)
    long.attrs["config"] = dict(out[0].attrs["config"], runs=[o.attrs["config"] for o in out], peak_rss_mb=peak_rss_mb())
    return long


def aggregate(long: pd.DataFrame) -> pd.DataFrame:
    """One verdict per claim from :func:`sensitivity`'s rows (see the module docstring)."""
    rows = []
    for cid, g in long.groupby("claim", sort=False):
        base = g[g.lr_scale == 1.0]
        seeds = set(base.verdict)
        tested = g[g.verdict != "not applicable"]
        k, n = int((tested.verdict == "reproduced").sum()), len(tested)
        if seeds == {"not applicable"}:
            final = "not applicable"
        elif seeds <= {"reproduced", "not applicable"}:
            final = "reproduced"
        elif seeds <= {"not reproduced", "not applicable"}:
            final = "not reproduced"
        else:
            final = "fragile"
        lr_rows = g[g.seed == g.seed.min()].sort_values("lr_scale")
        lr_note = "" if lr_rows.verdict.nunique() <= 1 else "lr-sensitive: " + ", ".join(
            f"×{r.lr_scale:g} {r.verdict}" for r in lr_rows.itertuples())
        first = base.iloc[0] if len(base) else g.iloc[0]
        rows.append(dict(claim=cid, paper=first.paper, kind=first.kind, verdict=final, k=k, n=n,
                         summary=f"{final} ({k} of {n})" if final != "not applicable" else final,
                         lr_note=lr_note, numbers=first.numbers, reason=first.reason))
    return pd.DataFrame(rows)


def counts(df: pd.DataFrame) -> dict:
    """Verdict counts of a scoreboard or an aggregate."""
    return {v: int((df.verdict == v).sum()) for v in FINAL if (df.verdict == v).any() or v != "fragile"}


__all__ = ["scoreboard", "sensitivity", "aggregate", "counts", "peak_rss_mb", "TIER_MODELS", "SEEDS", "LR_SCALES",
           "FINAL"]
