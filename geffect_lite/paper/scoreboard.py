"""The claims scoreboard — every claim of Wang et al. 2025 (arXiv 2502.19301) that the toolkit can test, checked
live on one model, then over replications and learning rates, and at three scales.

* :func:`scoreboard` — one row per claim at one replication and learning-rate scale: claim, paper, kind, group,
  verdict, numbers, reason (the rule, and what was seen instead when it misses).
* :func:`sensitivity` — the full grid: every replication (``protocol.Setting.replication``: other forgotten authors,
  other retain rows) at every rate scale (×½, ×1, ×2 by default), stacked; resumable, since every run is cached,
  and across machines from a committed partial file of its finished cells.
* :func:`aggregate` — one verdict per claim from those rows, by :mod:`.verdicts` (``tidy`` → ``verdict_table``):
  **reproduced** iff the rule holds in ≥ 80 % of the testable replications at EACH rate, **not reproduced** if in
  none, **fragile** otherwise, **not testable** / **not applicable** / **not run** (verdicts.FINAL); with the claim's
  group (check / claim of the paper / extension) and, by :func:`intervals`, bootstrap 90 % intervals of its numbers.

Counts of "what the paper claims" are of group "claim" only (:func:`counts` with ``group``); checks and extensions
are reported apart. Files committed before replications existed (rows with ``seed`` only) are read as they were
judged then (:mod:`.scoreboard_io`). Storing and reading is :mod:`.scoreboard_io`; the Markdown is :mod:`.render`.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd

# the rules register themselves in this order, which is the scoreboard's: identities, GA/WGA, NPO/TNPO, PO/RMU/
# regularisers, Table 1 and the insights
from . import rules_identities  # noqa: F401,I001
from . import rules_ga  # noqa: F401
from . import rules_npo  # noqa: F401
from . import rules_po_rmu_reg  # noqa: F401
from . import rules_insights  # noqa: F401
from . import verdicts
from .claims import CLAIMS, GROUPS, by_id
from .runs import Runs

TIER_MODELS = ("tiny", "deep", "smollm2-tofu")
REPLICATIONS, LR_SCALES = (0, 1, 2, 3, 4), verdicts.RATES
FINAL = verdicts.FINAL


def scoreboard(model: str = "tiny", seed: Optional[int] = None, lr_scale: float = 1.0, fast: Optional[bool] = None,
               claims: Optional[Sequence[str]] = None, runs: Optional[Runs] = None, changes: Optional[dict] = None,
               progress: bool = False, replication: int = 0, setting: str = "paper") -> pd.DataFrame:
    """The scoreboard at one replication (seed = the replication unless given) and learning-rate scale, with the
    figures' runs in ``setting`` ("paper" or "official"). A claim that cannot be computed is "not applicable" with
    the error, so one claim never hides the others."""
    runs = runs or Runs(model, seed=seed, lr_scale=lr_scale, fast=fast, changes=changes, progress=progress,
                        replication=replication, setting=setting)
    wanted = [by_id(c) for c in claims] if claims is not None else CLAIMS
    rows, t_all = [], time.time()
    for c in wanted:
        t0 = time.time()
        try:
            r = c.fn(runs)
        except Exception as e:
            r = dict(verdict="not applicable", numbers="–", values={},
                     reason=f"could not be computed on {runs.model_name}: {type(e).__name__}: {e}")
        rows.append(dict(claim=c.id, paper=c.paper, kind=c.kind, group=c.group, verdict=r["verdict"],
                         numbers=r["numbers"],
                         reason=r["reason"], values=r.get("values", {}), seconds=time.time() - t0))
        if progress:
            print(f"{c.id:24s} {r['verdict']:15s} ({time.time() - t0:.1f} s)", flush=True)
    rep = getattr(runs, "replication", 0)
    df = pd.DataFrame(rows).assign(replication=rep, seed=runs.seed, lr_scale=runs.lr_scale)
    df.attrs["config"] = dict(model=runs.model_name, replication=rep, seed=runs.seed, lr_scale=runs.lr_scale,
                              fast=runs.fast, figure_setting=getattr(runs, "figure_setting", "paper"),
                              setting=runs.setting(getattr(runs, "figure_setting", "paper")).describe(),
                              changes=runs.changes,
                              seconds=time.time() - t_all, run_seconds=dict(runs.seconds), peak_rss_mb=peak_rss_mb())
    return df


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grid(replications=REPLICATIONS, lr_scales=LR_SCALES, rates_at=None) -> list:
    """The (replication, rate scale) pairs of a sensitivity run, checked: every replication at every rate, or, with
    ``rates_at``, every replication at ×1 and the other rates at the replications of ``rates_at`` only (a model too
    slow for the whole grid: SmolLM2 runs ×½ and ×2 at one replication)."""
    reps, scales = list(replications), list(lr_scales)
    if rates_at is not None:
        at = [int(r) for r in rates_at]
        if 1.0 not in map(float, scales) or not set(at) <= set(map(int, reps)) or not at:
            raise ValueError(f"rates_at {at!r} must name some of the replications {reps!r}, and the rate scales "
                             f"{[float(k) for k in scales]!r} must hold 1 (every replication runs at ×1)")
        return [c for c in grid(reps, scales) if c[1] == 1.0 or c[0] in at]
    bad = [r for r in reps if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0]
    if not reps or bad:
        raise ValueError(f"replications must be ints ≥ 0 (e.g. 0 1 2 3 4), got {reps!r}")
    if not scales or any(not isinstance(k, (int, float, np.number)) or not k > 0 for k in scales):
        raise ValueError(f"learning-rate scales must be numbers > 0 (e.g. 0.5 1 2), got {scales!r}")
    if len(set(reps)) < len(reps) or len(set(map(float, scales))) < len(scales):
        raise ValueError(f"a replication or rate scale is repeated in {reps!r}, {[float(k) for k in scales]!r}; "
                         "expected distinct values (e.g. --replications 0 1 2 3 4 --lr-scales 0.5 1 2)")
    return [(int(r), float(k)) for r in reps for k in scales]


def sensitivity(model: str = "tiny", replications=REPLICATIONS, lr_scales=LR_SCALES, fast: Optional[bool] = None,
                claims=None, progress: bool = False, setting: str = "paper", partial: Optional[str] = None,
                rates_at=None) -> pd.DataFrame:
    """The scoreboard at every replication × rate scale (:func:`grid`), stacked (columns ``replication``, ``seed``,
    ``lr_scale``). Every run is cached, so an interrupted grid resumes where it stopped on this machine. With
    ``partial`` (a results name), each finished cell is also written to ``results/<partial>.json``, and the cells a
    file of the same plan (:func:`_plan`: model, setting, fast, claims, grid, rules commit, model build) holds are
    read from it instead of being rerun: a grid of hours can be carried over to another machine by committing it.
    ``rates_at``: see :func:`grid`."""
    plan = _plan(model, replications, lr_scales, fast, claims, setting, rates_at) if partial else None
    cells = grid(replications, lr_scales, rates_at)
    out, t0 = _resumed(partial, plan, progress), time.time()
    if partial:                      # the commit whose code this process runs: each cell it adds names it, not the
        from ..tooling.results import git_commit        # HEAD of a later write
        ran_at = git_commit()
    before = sum(float(df.attrs["config"].get("seconds", 0.0)) for df in out.values())   # the resumed cells' own
    for r, k in cells:
        if (r, float(k)) in out:
            continue
        if progress:
            print(f"== {model}: replication {r}, lr ×{k:g}", flush=True)
        out[(r, float(k))] = scoreboard(model, replication=r, lr_scale=k, fast=fast, claims=claims,
                                        progress=progress, setting=setting)
        if partial and len(out) < len(cells):
            _write_partial(partial, plan, out, before + time.time() - t0, ran_at)
    out = [out[(r, float(k))] for r, k in cells]
    long = pd.concat(out, ignore_index=True)
    long.attrs["config"] = dict(out[0].attrs["config"], runs=[o.attrs["config"] for o in out], peak_rss_mb=peak_rss_mb(),
                                replications=[int(r) for r in replications], lr_scales=[float(k) for k in lr_scales],
                                rates_at=None if rates_at is None else [int(r) for r in rates_at])
    long.attrs["seconds_before"] = before       # spent on the resumed cells, on the machine(s) that ran them
    return long


GRID_KEYS = ("replications", "lr_scales", "rates_at")    # a partial file of another grid still lends its cells


def _plan(model, replications, lr_scales, fast, claims, setting, rates_at=None) -> dict:
    """What a partial grid must share with this one to be resumed (its cells are taken where the grids overlap)."""
    from ..models import model_fingerprint
    from .scoreboard_io import rules_commit
    return dict(model=model, setting=setting, fast=bool(fast), claims=sorted(claims) if claims else None,
                replications=[int(r) for r in replications], lr_scales=[float(k) for k in lr_scales],
                rates_at=None if rates_at is None else [int(r) for r in rates_at],
                rules_commit=rules_commit(), model_fingerprint=model_fingerprint(model))


def _resumed(partial: Optional[str], plan: Optional[dict], progress: bool) -> dict:
    """{(replication, rate): its scoreboard} for the cells of ``plan``'s grid that are done: from the committed grid
    it extends (``results/<partial without -partial>.json``) when that was judged by the same rules on the same model
    build, in the same setting and mode (e.g. replication 0 committed, replications 0-2 asked: only 1 and 2 are run),
    and from ``results/<partial>.json`` when that file is of ``plan`` but for its grid (:data:`GRID_KEYS`)."""
    if not partial:
        return {}
    from .. import results
    committed = results.load(partial[: -len("-partial")])
    cells = [dict(c, carried_from=committed["provenance"].get("commit", "?"))
             for c in _committed_cells(committed, plan)]
    d = results.load(partial)
    if d is not None and all(d.get(k) == v for k, v in plan.items() if k not in GRID_KEYS):
        cells += d["cells"]          # each names the commit it was run at; a later cell replaces an earlier one
    got, wanted = {}, set(grid(plan["replications"], plan["lr_scales"], plan.get("rates_at")))
    for cell in cells:
        key = (int(cell["replication"]), float(cell["lr_scale"]))
        if key in wanted:
            df = pd.DataFrame(cell["rows"]).assign(values=cell["values"])
            cfg = dict(cell["config"])
            cfg.setdefault("carried_from", cell.get("carried_from") or cell.get("commit", "?"))   # where it ran
            df.attrs["config"] = cfg
            got[key] = df
    if progress and got:
        print(f"resuming {partial}: {len(got)} cells done", flush=True)
    return got


def _committed_cells(d: Optional[dict], plan: dict) -> list:
    """The cells of a committed grid (``scoreboard_io.save``'s file), if it was judged as ``plan`` asks."""
    if d is None or "replication" not in (d.get("rows") or [{}])[0]:
        return []
    prov, cfg = d.get("provenance", {}), d.get("config", {})
    same = (prov.get("rules_commit") == plan["rules_commit"] and prov.get("model_fingerprint") ==
            plan["model_fingerprint"] and bool(cfg.get("fast")) == plan["fast"] and plan["claims"] is None
            and cfg.get("figure_setting", "paper") == plan["setting"])
    if not same:
        return []
    rows = pd.DataFrame(d["rows"]).assign(values=d["values"])
    configs = dict(zip(grid(cfg["replications"], cfg["lr_scales"], cfg.get("rates_at")), cfg.get("runs", [])))
    return [dict(replication=r, lr_scale=k, config=configs.get((int(r), float(k)), {}),
                 rows=g.drop(columns=["values"]).to_dict("records"), values=g["values"].tolist())
            for (r, k), g in rows.groupby(["replication", "lr_scale"], sort=False)]


def _write_partial(name: str, plan: dict, cells: dict, seconds: float, ran_at: Optional[str] = None) -> None:
    """Write ``cells`` to ``results/<name>.json``: a resumed cell keeps the commit it ran at; a cell run here names
    ``ran_at`` (the commit the process started from; default: HEAD now)."""
    from ..tooling.results import git_commit, save      # writing is tooling (git, provenance)
    here = ran_at or git_commit()
    save(name, dict(plan, cells=[dict(replication=r, lr_scale=k, config=df.attrs.get("config", {}),
                                      commit=df.attrs.get("config", {}).get("carried_from", here),
                                      rows=df.drop(columns=["values"]).to_dict("records"),
                                      values=df["values"].tolist()) for (r, k), df in cells.items()]),
         command="claims --sensitivity (partial)", seconds=seconds)


def _tidy(long: pd.DataFrame) -> pd.DataFrame:
    """verdicts.tidy of a scoreboard's rows: the replication is the unit (old rows with ``seed`` only: the seed)."""
    df = long.drop(columns=["seed"]) if "replication" in long and "seed" in long else long
    return verdicts.tidy(df.rename(columns={"replication": "seed"}))


def aggregate(long: pd.DataFrame, rates=None) -> pd.DataFrame:
    """One verdict per claim (verdicts.verdict_table over replications, at each rate of ``rates`` — default: the
    rates the rows have, which must be verdicts.RATES for a "reproduced"): claim, paper, kind, group, verdict, k, n
    (runs where it holds / testable runs, over all rates), summary, per_rate, rate_spread (largest minus smallest share
    of holding runs over the rates with a testable run), numbers and reason of the first run."""
    t = _tidy(long)
    rates = tuple(sorted(set(t.lr_scale.astype(float)))) if rates is None else tuple(rates)
    table = verdicts.verdict_table(t, rates=rates).set_index("claim")
    each = verdicts.per_rate(t, rates)
    pr = each.groupby("claim")[["k", "n"]].sum()
    held = each[each.n > 0].assign(share=lambda d: d.k / d.n).groupby("claim").share
    spread = held.max() - held.min()            # how far the held share moves between rates (0: it does not)
    rows = []
    for cid, g in long.groupby("claim", sort=False):
        first, v = g.iloc[0], table.loc[cid]
        k, n = int(pr.loc[cid, "k"]), int(pr.loc[cid, "n"])
        rows.append(dict(claim=cid, paper=first.paper, kind=first.kind, group=_group(cid), verdict=v.verdict, k=k,
                         n=n, summary=v.verdict if v.verdict in ("not applicable", "not run") else
                         f"{v.verdict} ({k} of {n})", per_rate=v.summary, rate_spread=float(spread.get(cid, 0.0)),
                         numbers=first.numbers, reason=first.reason))
    return pd.DataFrame(rows)


def _group(cid: str) -> str:
    try:
        return by_id(cid).group
    except KeyError:               # a claim id no longer registered (an old committed file)
        return "claim"


def intervals(long: pd.DataFrame, rates=None) -> pd.DataFrame:
    """Bootstrap 90 % intervals (verdicts.intervals) of every number each claim's rule compares, per rate."""
    t = _tidy(long)
    rates = tuple(sorted(set(t.lr_scale.astype(float)))) if rates is None else tuple(rates)
    return verdicts.intervals(t, rates=rates)


def counts(df: pd.DataFrame, group: Optional[str] = "claim") -> dict:
    """Verdict counts of a scoreboard or an aggregate — of the paper's claims only by default (``group="claim"``;
    None: every row). Rows without a group (old files) are counted by the claim's registered group."""
    if group is not None:
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; valid: {', '.join(GROUPS)} (or None for all)")
        groups = df["group"] if "group" in df else df.claim.map(_group)
        df = df[groups == group]
    return {v: int((df.verdict == v).sum()) for v in FINAL if (df.verdict == v).any() or v in verdicts.TESTED}


__all__ = ["scoreboard", "sensitivity", "grid", "GRID_KEYS", "aggregate", "intervals", "counts", "peak_rss_mb", "TIER_MODELS",
           "REPLICATIONS", "LR_SCALES", "FINAL"]
