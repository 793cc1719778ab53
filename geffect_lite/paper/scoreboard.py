"""The claims scoreboard — every claim of Wang et al. 2025 (arXiv 2502.19301) that the toolkit can test, checked
live on one model, then over seeds and learning rates, and at three scales.

* :func:`scoreboard` — one row per claim at one seed and learning-rate scale: claim, paper, kind, verdict, numbers,
  reason (the rule, and what was seen instead when it misses).
* :func:`sensitivity` — the scoreboard at seeds 0, 1, 2 (the protocol's learning rate) and at ×½ and ×2 the rate
  (seed 0): five runs. :func:`aggregate` turns them into one verdict per claim: **reproduced** (at every seed),
  **not reproduced** (at no seed), **fragile** (the seeds disagree), or **not applicable**, with "k of n" over all
  five runs and a note when the learning rate flips it.
* :func:`save` / :func:`committed` — the results stored with their provenance (``geffect_lite/results``), and
  :func:`three_scales`, the table claim | paper | tiny | deep | SmolLM2 built from them.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import pandas as pd

from .. import results
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


def save(model: str, long: pd.DataFrame, command: str, seconds: float) -> None:
    """Commit a tier's sensitivity runs and their aggregate as ``results/scoreboard-<model>.json``."""
    cfg = long.attrs.get("config", {})
    results.save(f"scoreboard-{model}", dict(model=model, rows=long.drop(columns=["values"]).to_dict("records"),
                                              values=long["values"].tolist(), config=cfg,
                                              aggregate=aggregate(long).to_dict("records")), command, seconds)


def merge_rejudged(model: str, new: pd.DataFrame, command: str):
    """The committed runs of ``model`` with the rows of the re-judged claims replaced by ``new``'s (same seeds and
    rates required, committed run order kept); returns (long, the command recording both steps, the committed
    seconds)."""
    d = results.load(f"scoreboard-{model}")
    if d is None:
        raise ValueError(f"no committed scoreboard for {model!r} to merge into; run without --claims first")
    old = pd.DataFrame(d["rows"]).assign(values=d.get("values"))
    grid = lambda df: sorted(set(zip(df.seed, df.lr_scale)))
    if grid(old) != grid(new):
        raise ValueError(f"the re-judged runs {grid(new)} are not the committed ones {grid(old)}")
    runs = {r: i for i, r in enumerate(dict.fromkeys(zip(old.seed, old.lr_scale)))}     # the committed run order
    order = {c.id: i for i, c in enumerate(CLAIMS)}
    long = pd.concat([old[~old.claim.isin(set(new.claim))], new], ignore_index=True)
    long = long.assign(_run=[runs[r] for r in zip(long.seed, long.lr_scale)], _claim=long.claim.map(order))
    long = long.sort_values(["_run", "_claim"], kind="stable").drop(columns=["_run", "_claim"]).reset_index(drop=True)
    long.attrs["config"] = dict(d.get("config", {}), rejudged=dict(claims=sorted(set(new.claim)),
                                                                   config=new.attrs.get("config", {})))
    prov = d.get("provenance", {})
    return long, f"{prov.get('command', '?')}; then {command}", float(prov.get("seconds", 0.0))


def committed(model: str) -> Optional[pd.DataFrame]:
    """A tier's committed runs (long format) with ``attrs["provenance"]``, or None."""
    d = results.load(f"scoreboard-{model}")
    if d is None:
        return None
    df = pd.DataFrame(d["rows"]).assign(values=d.get("values"))
    df.attrs["provenance"] = d.get("provenance", {})
    return df


def three_scales(models=TIER_MODELS) -> pd.DataFrame:
    """claim | paper | one column per tier ("reproduced (5 of 5)" …), from the committed results."""
    table = None
    for m in models:
        long = committed(m)
        col = aggregate(long)[["claim", "paper", "summary"]].rename(columns={"summary": m}) if long is not None \
            else pd.DataFrame(dict(claim=[c.id for c in CLAIMS], paper=[c.paper for c in CLAIMS], **{m: "not run"}))
        table = col if table is None else table.merge(col.drop(columns="paper"), on="claim", how="outer")
    order = {c.id: i for i, c in enumerate(CLAIMS)}
    return table.sort_values("claim", key=lambda s: s.map(order)).reset_index(drop=True)


def markdown(models=TIER_MODELS) -> str:
    """The three-scale table as Markdown (the README's, between its ``claims`` markers; a test keeps them equal)."""
    t = three_scales(models)
    lines = ["| claim | paper | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    lines += [f"| `{r['claim']}` | {r['paper']} | " + " | ".join(str(r[m]) for m in models) + " |"
              for r in t.to_dict("records")]
    lines += ["", "Runs behind each column: " + "; ".join(f"`{m}`: {runs_line(m)}" for m in models) + "."]
    return "\n".join(lines) + "\n"


def compute_seconds(model: str) -> float:
    """How long a tier's committed runs took: the saving command's time, or — when the trajectories came from the disk
    cache — the sum of their own recorded compute times (each run's ``run_seconds``; Table 1's time is not in it),
    whichever is larger."""
    d = results.load(f"scoreboard-{model}") or {}
    cfg = d.get("config", {})
    trajectories = sum(sum(r.get("run_seconds", {}).values()) for r in cfg.get("runs", [cfg]))
    return max(float(d.get("provenance", {}).get("seconds", 0.0)), float(trajectories))


def runs_line(model: str) -> str:
    """The committed runs of a tier in words ("seeds 0, 1, 2 at the protocol's rate; ×0.5, ×2 at seed 0; 41 min")."""
    long = committed(model)
    if long is None:
        return "none committed"
    seeds = sorted(set(long[long.lr_scale == 1.0].seed))
    scales = sorted(set(long.lr_scale) - {1.0})
    out = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} at the protocol's rate"
    if scales:
        out += f"; {', '.join(f'×{k:g}' for k in scales)} the rate at seed {min(long.seed)}"
    minutes = compute_seconds(model) / 60
    n = len(set(zip(long.seed, long.lr_scale)))
    return out + f" ({n} run{'s' if n > 1 else ''}, {minutes:.0f} min)"


def readme_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced by ``body``."""
    a, b = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    i, j = text.index(a) + len(a), text.index(b)
    return text[:i] + body + text[j:]


def counts(df: pd.DataFrame) -> dict:
    """Verdict counts of a scoreboard or an aggregate."""
    return {v: int((df.verdict == v).sum()) for v in FINAL if (df.verdict == v).any() or v != "fragile"}


__all__ = ["scoreboard", "sensitivity", "aggregate", "save", "committed", "three_scales", "markdown", "readme_block",
           "counts", "runs_line", "merge_rejudged", "compute_seconds", "TIER_MODELS",
           "SEEDS", "LR_SCALES", "FINAL"]
