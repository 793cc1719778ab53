"""The shared grammar of the notebooks' readings of a run (the ``lessons`` package): a heading that names the paper's
figure and the claim's verdict on this run, and the one phrase that may say a figure's pattern is seen.

A reading never decides on its own that a run "is as in Fig. N": :func:`as_in` says so only when the claim's rule
(``geffect_lite.paper.rules_*``) returned "reproduced" on the very run the sentence describes; otherwise the
sentence says what the run shows and that the figure's pattern is not shown. Numbers go through
:func:`geffect_lite.teach.num`, so a reading and the claims table print the same digits.
"""
from __future__ import annotations

from typing import Mapping

from ..teach import num, pick

__all__ = ["verdict_of", "values_of", "head", "as_in", "Reading", "num", "pick", "rate_note", "at_end"]


def verdict_of(live, cid: str) -> str:
    """The verdict of claim ``cid`` in a live scoreboard (indexed by claim), e.g. "reproduced"."""
    return str(live.loc[cid, "verdict"])


def values_of(live, cid: str) -> Mapping:
    """The numbers the rule of claim ``cid`` decided on (its ``values`` dict)."""
    return live.loc[cid, "values"]


def head(live, cid: str, fig: str) -> str:
    """'**What this run shows, next to Fig. 3a** (claim `ga_spike`: *reproduced* on this run)'."""
    return f"**What this run shows, next to {fig}** (claim `{cid}`: *{verdict_of(live, cid)}* on this run)"


def as_in(live, cid: str, fig: str, shown: str, not_shown: str) -> str:
    """``shown`` + ", as in {fig}." when the rule of ``cid`` reproduced the claim on this run, else ``not_shown``
    (which must say the pattern is not shown here). The only road to the words "as in Fig."."""
    if verdict_of(live, cid) == "reproduced":
        return f"{shown.rstrip('.')}, as in {fig}."
    return not_shown


def at_end(steps) -> dict:
    """The run at its end, θ_T: the model after the last step. A step frame records the risks at θ_t, *before* step
    t's update, and that step's realised change (``real_du``, ``real_dr``), so the risks at θ_T are the last row's
    risks plus its realised change. This is the one meaning of "final" or "at the end of the run" in the series;
    "at the last recorded step" (θ_{T−1}) is said as such. Returns step (T), forget_risk and retain_risk; ValueError
    when the frame has no ok step or its last step's realised change was not recorded."""
    s = steps[steps.status == "ok"] if "status" in steps else steps
    if not len(s):
        raise ValueError("the run has no ok step: it has no end to read")
    last = s.iloc[-1]
    out = dict(step=int(last.step) + 1)
    for name, risk, real in (("forget_risk", "risk_u", "real_du"), ("retain_risk", "risk_r", "real_dr")):
        if real not in s or last[real] != last[real]:                # NaN: not recorded
            raise ValueError(f"the last step's {real} was not recorded, so the risk at θ_T is unknown")
        out[name] = float(last[risk] + last[real])
    return out


def rate_note(agg) -> str:
    """Which claims of a committed aggregate move with the learning rate, in one sentence. Present files: a claim
    moves when its share of holding runs differs by half or more between two rates (``rate_spread`` ≥ 0.5). Files
    judged by the previous rules carry their own ``lr_note`` (one seed), named as such."""
    if "rate_spread" in agg:
        moved = [f"{r.claim} ({r.per_rate})" for r in agg.itertuples() if r.rate_spread >= 0.5]
        return (f"Moves with the rate (held-share differs by ≥ 50 % between two rates): {len(moved)}"
                + (f": {'; '.join(moved)}." if moved else "."))
    if "lr_note" in agg:
        lrs = agg[agg.lr_note != ""]
        items = "; ".join(f"{r.claim}: {r.lr_note.removeprefix('lr-sensitive: ')}" for r in lrs.itertuples())
        return f"lr-sensitive under the previous rule (one seed): {len(lrs)}" + (f" ({items})." if items else ".")
    return ""


class Reading(str):
    """Markdown text that a notebook displays as the last expression of a cell (``_repr_markdown_``)."""

    def _repr_markdown_(self) -> str:
        return str(self)
