"""The checks behind the readings of :mod:`.ga` (notebooks 03–04): the thresholds that ``paper/rules_ga.py`` and
``rules_insights.py`` write inline, mirrored here, and :func:`agree`, which stops a reading when these mirrored checks
and the rule's verdict disagree; the shared "not testable" reading; quantities more than one reading prints; the
sentence on ``insight_excessive`` (:func:`excessive_line`).
"""
from __future__ import annotations

from ..paper.verdicts import TESTED, at_dip
from ..teach import num, pick
from .common import Reading, head, values_of, verdict_of

GLOSSARY = "../docs/glossary.md"              # the glossary, as linked from a notebook
# thresholds the rules write inline (rules_ga.ga_spike, ga_inverse_confidence, ga_layers, ga_lm_head;
# rules_insights.insight_excessive), mirrored here; agree checks them against each verdict
QUIET, LATE_MAX = 0.01, 0.25                  # ga_spike: max |e_u| over the first sixth / |dip|; |e_r(T)| / |dip|
IC_ORDERS, NLL_LNV, LATE_RISE = 9, 4, 0.10    # ga_inverse_confidence
BLOCKS_MOST, EMBED_MAX = 0.5, 0.1             # ga_layers
LM_KEPT, OTHERS_MAX, LM_SHARE = 0.5, 0.1, 0.5  # ga_lm_head
EXCESS = 2                                    # insight_excessive: after ≥ 2× before
STOP = 0.1    # no claim: "died away" = the last |e_u| below a tenth of the dip's (printed where used)


def agree(live, cid: str, checks: dict) -> None:
    """Stop when the reading's checks and the rule's verdict disagree (a rule changed under the reading)."""
    v = verdict_of(live, cid)
    if v in TESTED and all(checks.values()) != (v == "reproduced"):
        raise AssertionError(f"the reading of `{cid}` is out of step with its rule: verdict {v!r}, checks {checks}")


def untested(live, cid: str, fig: str):
    """The whole reading when the rule could not read this run ("not testable" / "not applicable"), else None."""
    line = untested_line(live, cid)
    return None if line is None else Reading(f"{head(live, cid, fig)}\n\n{line} So this run says nothing for or "
                                             f"against {fig}.")


def untested_line(live, cid: str):
    """One sentence saying why the rule of ``cid`` could not decide on this run, or None when it could."""
    v = verdict_of(live, cid)
    if v in TESTED:
        return None
    why = str(live.loc[cid, "reason"]).removeprefix("not testable: ").rstrip(".")
    return f"The claim does not apply to this run: {why}." if v == "not applicable" else \
        f"The rule cannot read this run: {why}."


def diverged(live, cid: str, title: str):
    """A short reading under ``title`` when the run that claim ``cid`` reads is not testable (e.g. diverged: its
    final measures may be missing), else None."""
    if verdict_of(live, cid) != "not testable":
        return None
    return Reading(f"{title}\n\n{untested_line(live, cid)} Its numbers are not read here.")


def pct(x) -> str:
    """A share as a percentage for prose, e.g. "93.6 %"."""
    return f"{num(100 * float(x))} %"


def group_shares(runs, step: int) -> dict:
    """Each layer group's share of Σ|group G-effect| at ``step``, per risk set (the quantity of the embed share)."""
    g = runs.groups("ga").loc[step]
    return {rs: (g[rs].abs() / max(float(g[rs].abs().sum()), 1e-300)) for rs in ("forget", "retain")}


def stops(runs) -> dict:
    """Per run ("ga", "wga"): the last recorded |e_u| over |e_u| at the dip (no claim; STOP decides "died away")."""
    return {k: abs(float(runs.steps(k).e_u.iloc[-1])) / abs(at_dip(runs.steps(k))["e_u"]) for k in ("ga", "wga")}


def excessive_line(live) -> str:
    """Point 4 of :func:`.ga.ga_collapse`: the check of ``insight_excessive``."""
    cid = "insight_excessive"
    head_ = f"**What the retain set pays** (claim `{cid}`: *{verdict_of(live, cid)}*)."
    if untested_line(live, cid):
        return f"{head_} {untested_line(live, cid)}"
    v = values_of(live, cid)
    b, a = float(v["ΔR_r/ΔR_u before"]), float(v["after"])
    agree(live, cid, {"after": a >= EXCESS * b and a > 0})
    times = f", {num(a / b)}× as much" if b > 0 else ""
    return (f"{head_} Per nat of forget risk gained, the retain risk rose {num(b)} nats up to the dip (step "
            f"{num(int(v['dip step']))}) and {num(a)} nats from there to the last recorded step{times} (the rule "
            f"asks at least {EXCESS}× as much after as before): "
            + pick(verdict_of(live, cid) == "reproduced", "past the dip, each nat of removal costs the retain set "
                   f"at least {EXCESS}× what it did before, the paper's insight on excessive unlearning.",
                   "the paper's insight on excessive unlearning is **not shown** by this run."))


__all__ = ["QUIET", "LATE_MAX", "IC_ORDERS", "NLL_LNV", "LATE_RISE", "BLOCKS_MOST", "EMBED_MAX", "LM_KEPT",
           "OTHERS_MAX", "LM_SHARE", "EXCESS", "STOP", "GLOSSARY", "agree", "untested", "untested_line", "diverged",
           "excessive_line", "pct", "group_shares", "stops"]
