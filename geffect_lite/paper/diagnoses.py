"""Why a claim misses: for every claim that is not reproduced (or fragile) on a tier, rerun just that claim with
**one factor changed** and see whether the verdict flips. A factor that flips it is the diagnosis; when none does, the
claim is "not reproduced in this setting", with what was tried.

Factors (each is one change of the protocol's paper setting, ``geffect_lite.protocol``):

=============  =================================================================================================
factor         change
=============  =================================================================================================
``optimizer``  AdamW → plain SGD (the theory setting) — and with it the rate (SGD's own, by the same rule): TWO
               factors change, and the record says so (``factors``, ``lr_base``, ``lr_ablated``)
``optimizer_stable``  plain SGD at a rate where the runs stay testable: SGD's calibrated rate × the largest of
               :data:`STABLE_SCALES` at which the claim reads "not testable" at none of the replications
               (:func:`stable_scale`; chosen from testability alone, before and whatever the verdict)
``risk``       the risk's reduction: token mean (the official code) → sequence sum (the paper's equations)
``batch``      full batch → mini-batches of 16 forget rows with 16 random retain rows (the official effective batch)
``data``       the forget set: forget05 → forget10 (twice the authors)
``parity``     G-effects measured as the official code does: EMA 0.6/0.4 of micro-batch gradients, fixed buckets
``schedule``   no schedule → linear warm-up over the first 5 of 24 steps, then linear decay to 0
``lr``         × ½ and × 2 the rate (from the committed sensitivity runs: no extra run)
``scale``      the other tiers (tiny → deep → SmolLM2; from the committed scoreboards: no extra run)
=============  =================================================================================================

A flip counts only if the claim flips (not reproduced → reproduced) in ≥ 80 % of the replications ablated
(``verdicts.SHARE``) and in none of them from or to a "not testable" run (:func:`flips`). ``data`` exists at
replication 0 only (forget10 is all ten authors): it is ablated there alone, says so, and never counts as a flip.
"""
from __future__ import annotations

import time
from typing import Optional

import pandas as pd

from .. import results
from .claims import CLAIMS, by_id
from .runs import Runs
from .scoreboard import TIER_MODELS, scoreboard
from .scoreboard_io import committed, verdicts_of
from .verdicts import SHARE

FACTORS = {
    "optimizer": ({"setting": "theory"}, "plain SGD instead of AdamW, at SGD's own rate (two factors: optimiser "
                                         "and rate)"),
    "risk": ({"risk": "seq_sum"}, "sequence-sum risk instead of token mean"),
    "batch": ({"batch": 16}, "mini-batches of 16 instead of the full batch"),
    "data": ({"split": "forget10", "n_forget": None}, "forget10 instead of forget05"),
    "parity": ({"parity": True}, "the official code's EMA'd micro-batch G-effects and buckets"),
    "schedule": ({"warmup": 5, "decay": True}, "linear warm-up over the first 5 of 24 steps, then linear decay to 0 "
                                               "(the official schedule's shape: one warm-up epoch of five)"),
}
FACTORS["optimizer_stable"] = ({"setting": "theory"}, "plain SGD instead of AdamW, at the largest fraction of SGD's "
                                                    "rate at which no replication's run is not testable")
#: factors that exist at some replications only, and why: a row of such a factor is made at those replications
#: alone, says so in its ``change``, and never counts as a flip (it has fewer replications than the rule asks for)
ONE_REPLICATION = {"data": (0,)}
ONE_REPLICATION_WHY = {"data": "forget10 is all ten authors, so it has no other replication"}


STABLE_SCALES = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)   # × SGD's calibrated rate, tried in this order
REJUDGE_REPLICATIONS = (0, 1, 2)    # the re-judgement's replications (the scoreboard's first three)
NEW_SUSPECTS = (("ga_spike", "schedule"),            # factors never tried before: the schedule, for the missing decay
                ("ga_layers", "optimizer_stable"),   # and plain SGD at a rate where the runs do not diverge
                ("tnpo_vs_npo", "optimizer_stable"))
END_METRIC = ("table1_tradeoff", "table1_kl_helps")


def misses(model: str) -> pd.DataFrame:
    """The committed aggregate rows of ``model`` that are neither reproduced nor not applicable."""
    agg = verdicts_of(model)
    if agg is None:
        return pd.DataFrame(columns=["claim", "verdict"])
    return agg[agg.verdict.isin(("not reproduced", "fragile"))]


def _series(runs, claim_id) -> list:
    """The claim's first run as committed figure data (step, e_u, e_r, risk_u, risk_r), or [] if it reads none."""
    keys = by_id(claim_id).runs
    if not keys:
        return []
    try:
        s = runs.steps(keys[0])
    except Exception:
        return []
    return s[["step", "e_u", "e_r", "risk_u", "risk_r"]].assign(run=keys[0]).to_dict("records")


def flips(base: list, ablated: list, share: float = SHARE) -> bool:
    """Whether an ablation flips a claim: paired per-replication verdicts (baseline, ablated); it flips in a
    replication when the baseline is not reproduced and the ablated run reproduced; the flip counts iff it does so in
    ≥ ``share`` of the replications and no run on either side is "not testable"."""
    if len(base) != len(ablated) or not base:
        raise ValueError(f"flips needs paired, non-empty verdict lists; got {len(base)} and {len(ablated)}")
    if "not testable" in set(base) | set(ablated):
        return False
    k = sum(b != "reproduced" and a == "reproduced" for b, a in zip(base, ablated))
    return k >= share * len(base) - 1e-12


def _factors(base_S, S) -> list:
    """The Setting fields an ablation changed (e.g. ["optimizer", "lr"] for the SGD ablation)."""
    return [f for f in ("name", "optimizer", "lr", "risk", "batch", "split", "n_forget", "steps", "warmup", "decay")
            if getattr(base_S, f) != getattr(S, f)]


def stable_scale(model: str, claim_id: str, replications=(0,)) -> tuple:
    """(scale, tried): the largest of :data:`STABLE_SCALES` (× SGD's calibrated rate) at which ``claim_id`` reads
    "not testable" at none of ``replications`` under plain SGD — a choice made from testability (no divergence, the
    risks bounded per answer token) alone, never from the verdict; ``tried`` lists (scale, verdicts) in order. The
    smallest scale is returned if none is stable (its runs then read "not testable", and no flip can count)."""
    tried = []
    for k in STABLE_SCALES:
        v = [scoreboard(runs=Runs(model, changes={"setting": "theory"}, replication=r, lr_scale=k),
                        claims=[claim_id]).iloc[0].verdict for r in replications]
        tried.append((k, v))
        if "not testable" not in v:
            break
    return tried[-1][0], tried


def ablate(model: str, claim_id: str, factors=tuple(FACTORS), progress: bool = False,
           replications=(0,)) -> pd.DataFrame:
    """Rerun one claim (each replication, protocol rate) with each factor changed; one row per factor with the
    verdicts per replication, what the change altered in the setting (``factors``; the optimiser ablation changes
    the rate too), whether it :func:`flips`, and the first replication's first run before and after the change as
    figure data (``series_base``, ``series``)."""
    rows = []
    base_runs = [Runs(model, replication=r) for r in replications]
    base = [scoreboard(runs=b, claims=[claim_id]).iloc[0] for b in base_runs]
    series_base = _series(base_runs[0], claim_id)
    for f in factors:
        if claim_id in END_METRIC and f in ("parity", "risk", "optimizer", "optimizer_stable"):
            continue                        # the Table 1 claims read end metrics, not G-effects or this optimiser
        changes, what = FACTORS[f]
        reps = tuple(r for r in replications if r in ONE_REPLICATION.get(f, (r,)))
        if not reps:
            continue
        if reps != tuple(replications):
            what += f" (replication {', '.join(map(str, reps))} only: {ONE_REPLICATION_WHY[f]})"
        t0 = time.time()
        scale, tried = stable_scale(model, claim_id, replications) if f == "optimizer_stable" else (1.0, [])
        runs = [Runs(model, changes=changes, replication=r, lr_scale=scale) for r in reps]
        got = [scoreboard(runs=x, claims=[claim_id]).iloc[0] for x in runs]
        b_here = [b for r, b in zip(replications, base) if r in reps]
        key = by_id(claim_id).runs[0] if by_id(claim_id).runs else "ga"
        S0, S1 = base_runs[0].request(key)[1], runs[0].request(key)[1]
        rows.append(dict(claim=claim_id, model=model, factor=f, change=what, baseline=b_here[0].verdict,
                         ablated=got[0].verdict, replications=list(reps),
                         baselines=[b.verdict for b in b_here], ablateds=[g.verdict for g in got],
                         factors=_factors(S0, S1), lr_base=S0.lr, lr_ablated=S1.lr, scales_tried=tried,
                         flips=len(reps) == len(replications)          # fewer replications than asked: no flip
                         and flips([b.verdict for b in b_here], [g.verdict for g in got]),
                         numbers=got[0].numbers, reason=got[0].reason, seconds=time.time() - t0,
                         series_base=series_base, series=_series(runs[0], claim_id)))
        if progress:
            print(f"  {claim_id} · {model} · {f}: {base[0].verdict} → {got[0].verdict}", flush=True)
    return pd.DataFrame(rows)


def free_factors(claim_id: str) -> list:
    """What the committed data already says: the verdict at ×½ and ×2 the rate and on every tier."""
    out = []
    for m in TIER_MODELS:
        long = committed(m)
        if long is None:
            continue
        g = long[long.claim == claim_id]
        unit = "replication" if "replication" in g else "seed"
        for r in g[(g[unit] == g[unit].min())].itertuples():
            out.append(dict(claim=claim_id, model=m, factor="lr" if r.lr_scale != 1 else "scale",
                            change=f"lr × {r.lr_scale:g} on {m}" if r.lr_scale != 1 else f"the {m} model",
                            ablated=r.verdict))
    return out


PARITY_RUNS = {"ga", "wga", "po", "ga+gd", "rmu_shallow", "rmu_middle", "rmu_deep", "ga_sgd"}   # no θ_ref needed


def factors_for(claim_id: str) -> tuple:
    """The factors worth an ablation for one claim: none for the end-metric claims (their own protocol already uses
    mini-batches; the free factors speak for them), the cheap ones for claims that read many runs, parity only where
    every run it reads needs no θ_ref (the official code's micro-batches would need their own)."""
    c = by_id(claim_id)
    if claim_id in END_METRIC:
        return ()
    if len(c.runs) > 4:
        return ("optimizer_stable", "risk")
    f = ("optimizer_stable", "risk", "batch", "data", "schedule")   # SGD at a rate where its runs stay testable
    return f + (("parity",) if c.runs and set(c.runs) <= PARITY_RUNS else ())


def _partial_key(ablate_on: str, tiers, replications) -> dict:
    """What a partial diagnosis must share with this one to be resumed: the tier ablated, the replications, the
    misses being diagnosed, the rules (their last commit) and the factors as stated here."""
    from .scoreboard_io import rules_commit
    return dict(ablate_on=ablate_on, replications=list(replications),
                missing={m: list(misses(m).claim) for m in tiers}, rules_commit=rules_commit(),
                factors={f: FACTORS[f][1] for f in FACTORS}, stable_scales=list(STABLE_SCALES))


def diagnose(ablate_on: str = "tiny", tiers=TIER_MODELS, progress: bool = True, command: str = "",
             replications=REJUDGE_REPLICATIONS) -> pd.DataFrame:
    """For every claim that misses on some tier of the committed scoreboards: ablate it on ``ablate_on`` (the
    cheapest tier) if it misses there too, one factor at a time, at each of ``replications`` (a flip counts by
    :func:`flips`), and add the free factors (rates, tiers). Commits ``results/diagnoses.json``.

    Resumable across machines: after each claim the rows so far go to ``results/diagnoses-partial.json`` (commit it
    to carry a long diagnosis over to another session); a later call with the same tier, replications, misses, rules
    and factors starts after the claims it holds, and the partial file is removed once the whole file is written."""
    from ..tooling.results import save      # writing is tooling (git, provenance)
    t0, frames = time.time(), []
    key = _partial_key(ablate_on, tiers, replications)
    part = results.load("diagnoses-partial")
    done, before, earlier = set(), 0.0, []
    if part is not None and all(part.get(k) == v for k, v in key.items()):
        frames.append(pd.DataFrame(part["rows"]))
        done, before = set(part["done"]), float(part["provenance"].get("seconds", 0.0))
        earlier = list(dict.fromkeys(part.get("earlier_commits", []) + [part["provenance"].get("commit", "?")]))
        if progress:
            print(f"resuming the partial diagnosis ({len(done)} claims done, {before / 60:.0f} min)", flush=True)
    missing = {cid for m in tiers for cid in misses(m).claim}
    order = [c.id for c in CLAIMS if c.id in missing]
    here = set(misses(ablate_on).claim)
    todo = [cid for cid in order if cid in here and factors_for(cid) and cid not in done]
    for cid in todo:
        frames.append(ablate(ablate_on, cid, factors_for(cid), progress=progress, replications=tuple(replications)))
        done.add(cid)
        if cid != todo[-1]:
            save("diagnoses-partial", dict(key, done=sorted(done), earlier_commits=earlier,
                                           rows=pd.concat(frames).to_dict("records")),
                 command=command or "python -m geffect_lite claims --diagnose", seconds=before + time.time() - t0)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    save("diagnoses", dict(ablate_on=ablate_on, replications=list(replications),
                           missing={m: list(misses(m).claim) for m in tiers},
                           rows=df.to_dict("records"), free=[f for cid in order for f in free_factors(cid)],
                           earlier_commits=earlier),        # where the resumed claims were run, if any
         command=command or "python -m geffect_lite claims --diagnose", seconds=before + time.time() - t0)
    results.path("diagnoses-partial").unlink(missing_ok=True)
    return df


def rejudge(model: str = "tiny", replications=REJUDGE_REPLICATIONS, extra=NEW_SUSPECTS, progress: bool = True,
            command: str = "") -> pd.DataFrame:
    """Re-judge every flip of the committed diagnoses (and the never-tried ``extra`` factors) under the present rules:
    the same change at each of ``replications``, a flip counting only by :func:`flips` (≥ 80 % of the replications,
    no run on either side "not testable", risks bounded per token in either unit). Commits ``results/rejudged.json``
    with one row per (claim, factor): the per-replication verdicts, whether the flip survives, and why not."""
    t0 = time.time()
    d = results.load("diagnoses") or {}
    old = [(r["claim"], r["factor"]) for r in d.get("rows", []) if r.get("flips")]
    pairs = list(dict.fromkeys(old + list(extra)))
    rows = []
    for cid, factor in pairs:
        df = ablate(model, cid, (factor,), progress=progress, replications=tuple(replications))
        for r in df.drop(columns=["series", "series_base"]).to_dict("records"):
            untestable = "not testable" in set(r["baselines"]) | set(r["ablateds"])
            why = "" if r["flips"] else ("a run on one side is not testable" if untestable
                                         else "it flips in too few replications")
            rows.append(dict(r, previously_flipped=(cid, factor) in old, survives=bool(r["flips"]), why=why))
    out = pd.DataFrame(rows)
    from ..tooling.results import save      # writing is tooling (git, provenance)
    save("rejudged", dict(model=model, replications=list(replications), rows=out.to_dict("records")),
         command=command or "python -m geffect_lite claims --rejudge", seconds=time.time() - t0)
    return out


def rejudged_rows(claim_id: str) -> list:
    """The rows of ``results/rejudged.json`` for ``claim_id``, each with the file's ``replications`` ([] if none)."""
    d = results.load("rejudged") or {}
    return [dict(r, replications=d.get("replications", [])) for r in d.get("rows", [])
            if r["claim"] == claim_id and "survives" in r]


def rejudged_text(claim_id: str, rows: Optional[list] = None) -> str:
    """One sentence per re-judged factor of ``claim_id`` (``rows``: :func:`rejudged_rows`, read if not given)."""
    rows = rejudged_rows(claim_id) if rows is None else rows
    out = []
    for r in rows:
        k = sum(b != "reproduced" and a == "reproduced" for b, a in zip(r["baselines"], r["ablateds"]))
        head = "the earlier flip with" if r["previously_flipped"] else "never tried before:"
        reps = ", ".join(map(str, r["replications"]))
        at = (f" (× {r['scales_tried'][-1][0]:g} SGD's rate: lr {r['lr_ablated']:g})" if r.get("scales_tried")
              else "")
        out.append(f"re-judged at replications {reps}, {head} {r['change']}{at} → "
                   f"{', '.join(r['ablateds'])} (from {', '.join(r['baselines'])}; flips in {k} of "
                   f"{len(r['baselines'])}): " + ("the flip holds" if r["survives"] else f"no flip ({r['why']})"))
    return "; ".join(out)


def diagnosis_text(claim_id: str) -> str:
    """One paragraph from the committed diagnoses: where the claim misses, which change flips it (a factor of the
    ablations, another learning rate, another tier), or what was tried when nothing does; "" if it misses nowhere.
    For a fragile claim (it holds at seed 0 but not at every seed) it names the changes that break it at seed 0."""
    d = results.load("diagnoses")
    if d is None:
        return "not diagnosed yet"
    where = [m for m, ids in d.get("missing", {}).items() if claim_id in ids]
    if not where:
        return ""
    rows, free = pd.DataFrame(d.get("rows", [])), pd.DataFrame(d.get("free", []))
    rows = rows[rows.claim == claim_id] if len(rows) else rows
    free = free[free.claim == claim_id] if len(free) else free
    parts = [f"misses on {', '.join(where)}"]
    reps = d.get("replications")                                         # absent: the one-seed file of an earlier round
    first = "seed 0" if not reps else f"replication {reps[0]}"
    held = len(rows) and rows.baseline.iloc[0] == "reproduced"           # fragile: holds at the first replication
    rejudged = rejudged_rows(claim_id)                                   # the present rule's word on the flips
    again = rejudged_text(claim_id, rejudged)
    if len(rows) and held:
        broke = rows[~rows.ablated.isin(("reproduced", "not applicable"))]
        m = rows.model.iloc[0]
        parts.append(f"fragile on {m}: it holds at {first}, " + (f"and breaks with {'; or '.join(broke.change)}"
                     if len(broke) else f"and no single change breaks it there (tried: {', '.join(rows.change)})"))
    elif len(rows):
        flips = rows[rows.flips]
        m = rows.model.iloc[0]
        at = f" at replications {', '.join(map(str, reps))}" if reps else ""
        parts.append((f"on {m} the earlier round (one replication) found it reproduced once we use " if again and not
                      reps else f"on {m}{at} it is reproduced{', by the scoreboard share,' if reps else ''} once we use ")
                     + "; or ".join(flips.change) if len(flips) else
                     f"on {m}{at} no single change flips it (tried: {', '.join(rows.change)})")
    if len(free):                             # another rate on any tier, or a tier where it does not miss
        rep = free[(free.ablated == "reproduced") & ((free.factor == "lr") | ~free.model.isin(where))]
        if len(rep):
            parts.append("reproduced with " + ", ".join(rep.change))
    flipped = len(rows) and (rows.flips.any() or held)
    if not len(rows) and len(free) and not len(rep):
        parts.append(f"no tried change flips it (tried: {', '.join(dict.fromkeys(free.change))})")
    survived = any(r["survives"] for r in rejudged)
    if (len(rows) or len(free)) and (not flipped or (rejudged and not survived)) and not (len(free) and len(rep)):
        parts.append("not reproduced in this setting")
    if again:
        parts.append(again)
    if reps and len(rows):                    # what the ablations cannot say
        parts.append(f"what this does not show: one factor at a time on {rows.model.iloc[0]}, at replications "
                     f"{', '.join(map(str, reps))}, says which single change moves the verdict here, not why a "
                     "7B-parameter model behaves as the paper reports, nor whether two changes together would")
    return "; ".join(parts) + "."


__all__ = ["FACTORS", "STABLE_SCALES", "stable_scale", "misses", "flips", "ablate", "factors_for", "free_factors", "diagnose", "diagnosis_text",
           "rejudge", "rejudged_rows", "rejudged_text", "REJUDGE_REPLICATIONS", "NEW_SUSPECTS"]
