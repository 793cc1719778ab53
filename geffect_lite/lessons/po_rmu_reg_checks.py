"""Shared pieces of the readings of notebooks 07–09 (:mod:`.po_rmu_reg`, :mod:`.regularisers`): the thresholds that
``paper/rules_po_rmu_reg.py`` writes inline, mirrored here (and checked against the rule's verdict by
:func:`agree`), a plain "not testable" reading, percentages, and a risk's path over a run.
"""
from __future__ import annotations

from ..paper.verdicts import TESTED, half_gap
from ..teach import num
from .common import Reading, head, verdict_of

RMU_GAP = half_gap(8.0e3 / 1.25e3)   # rmu_layers: middle dip ≥ √6.4 × the others' (Fig. 7: −8.0e3 vs −1.25e3)
RMU_REBOUND = 0.8                   # rmu_layers: deepest layer's largest e_u after its dip ≥ 0.8·|dip|
SHARE_POS = 0.8                     # reg_gd_term, reg_kl_term, reg_rr_term: "on ≥ 80 % of the steps"
KL_LATE_MAX = 0.2                   # reg_kl_term: from two thirds of the run on, ≤ 20 % of the peak
RR_REL_MAX = 0.02                   # reg_rr_term: RR's peak ≤ 2 % of the smaller of GD's and KL's peaks


def untested(live, cid: str, fig: str):
    """A Reading saying plainly why the rule of ``cid`` cannot decide on this run, or None when it can."""
    if verdict_of(live, cid) in TESTED:
        return None
    reason = str(live.loc[cid, "reason"]).removeprefix("not testable: ")
    return Reading(f"{head(live, cid, fig)}\n\nThe rule cannot decide on this run: {reason}. Nothing is read off "
                   "this run for the figure's pattern.")


def agree(live, cid: str, checks: dict) -> None:
    """Stop a reading whose mirrored checks disagree with the rule's verdict (a threshold here drifted)."""
    ok = all(checks.values())
    if ok != (verdict_of(live, cid) == "reproduced"):
        raise AssertionError(f"the reading of {cid} disagrees with its rule: checks {checks}, verdict "
                             f"{verdict_of(live, cid)!r}; update lessons/po_rmu_reg_checks.py")


def pct(x: float) -> str:
    """A share as a percentage for prose: 0.8125 → '81.2 %'."""
    return f"{num(100 * float(x))} %"


def risk_path(steps, risk: str) -> dict:
    """first (θ_0), peak, k (the θ_k of the peak) and last (θ_T, the model after the last step) of the run's
    ``risk`` ("risk_u" or "risk_r"), read at θ_0 … θ_T (``common.with_end``)."""
    from .common import with_end
    p = with_end(steps)
    i = int(p[risk].to_numpy().argmax())
    return dict(first=float(p[risk].iloc[0]), peak=float(p[risk].iloc[i]), k=int(p.step.iloc[i]),
                last=float(p[risk].iloc[-1]))


__all__ = ["RMU_GAP", "RMU_REBOUND", "SHARE_POS", "KL_LATE_MAX", "RR_REL_MAX", "untested", "agree", "pct",
           "risk_path"]
