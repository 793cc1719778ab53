"""The shared grammar of the notebooks' readings of a run (the ``lessons`` package): a heading that names the paper's
figure and the claim's verdict on this run, and the one phrase that may say a figure's pattern is seen.

A reading never decides on its own that a run "is as in Fig. N": :func:`as_in` says so only when the claim's rule
(``geffect_lite.paper.rules_*``) returned "reproduced" on the very run the sentence describes; otherwise the
sentence says what the run shows and that the figure's pattern is not shown. Numbers go through
:func:`geffect_lite.teach.num`, so a reading and the claims table print the same digits.
"""
from __future__ import annotations

import functools
from typing import Mapping

from ..teach import num, pick

__all__ = ["verdict_of", "values_of", "head", "as_in", "committed_verdict", "Reading", "num", "pick", "rate_note", "at_end", "run_key",
           "end_states", "with_end", "STATES"]


def verdict_of(live, cid: str) -> str:
    """The verdict of claim ``cid`` in a live scoreboard (indexed by claim), e.g. "reproduced"."""
    return str(live.loc[cid, "verdict"])


def values_of(live, cid: str) -> Mapping:
    """The numbers the rule of claim ``cid`` decided on (its ``values`` dict)."""
    return live.loc[cid, "values"]


def head(live, cid: str, fig: str) -> str:
    """'**What this run shows, next to Fig. 3a** (claim `ga_spike`: *reproduced* on this run)'."""
    return f"**What this run shows, next to {fig}** (claim `{cid}`: *{verdict_of(live, cid)}* on this run)"


def committed_verdict(live, cid: str):
    """The claim's verdict over the committed replications and rates of this run's model ("fragile", …), or None
    when that model has no committed scoreboard."""
    return _committed_verdicts(live.attrs.get("config", {}).get("model", "tiny")).get(cid)


@functools.lru_cache(maxsize=None)
def _committed_verdicts(model: str) -> dict:
    from ..paper.scoreboard_io import verdicts_of
    v = verdicts_of(model)
    return {} if v is None else dict(zip(v.claim, v.verdict))


def as_in(live, cid: str, fig: str, shown: str, not_shown: str) -> str:
    """``shown`` + ", as in {fig}." when the rule of ``cid`` reproduced the claim on this run and the committed
    scoreboard of its model (replications × rates) reproduces it too; reproduced on this run only, ``shown`` with the
    scoreboard's verdict, never "as in"; else ``not_shown`` (which must say the pattern is not shown here). The only
    road to the words "as in Fig."."""
    if verdict_of(live, cid) != "reproduced":
        return not_shown
    agg = committed_verdict(live, cid)
    if agg in (None, "reproduced"):
        return f"{shown.rstrip('.')}, as in {fig}."
    return (f"{shown.rstrip('.')} on this run; over the committed replications and rates the claim is *{agg}*, so "
            f"the scoreboard does not count {fig} as reproduced.")


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


def with_end(steps):
    """The recorded steps' risks at θ_t (columns step, risk_u, risk_r) with one more row for θ_T
    (:func:`at_end`), so that a path of risks ends where the run ends."""
    import pandas as pd
    s = steps[steps.status == "ok"] if "status" in steps else steps
    e = at_end(steps)
    return pd.concat([s[["step", "risk_u", "risk_r"]], pd.DataFrame(
        [dict(step=e["step"], risk_u=e["forget_risk"], risk_r=e["retain_risk"])])], ignore_index=True)


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


def run_key(name: str, model: str = "tiny", setting: str = "paper", replication: int = 0,
            lr_scale: float = 1.0) -> str:
    """The one name of a run in stated quantities, e.g. "tiny · paper · replication 0 · lr ×1 · ga"."""
    return f"{model} · {setting} · replication {replication} · lr ×{lr_scale:g} · {name}"


def end_states(key: str, steps) -> dict:
    """The quantities a sentence about the run's end may state, from :func:`at_end`:
    {"<key>: forget risk at θ_T": …, "<key>: retain risk at θ_T": …}."""
    e = at_end(steps)
    return {f"{key}: forget risk at θ_T": e["forget_risk"], f"{key}: retain risk at θ_T": e["retain_risk"]}


STATES = "geffect_lite"      # the output-metadata key under which a displayed text lists the quantities it states


class Reading(str):
    """Markdown text that a notebook displays as the last expression of a cell (``_repr_markdown_``).

    ``states`` names the quantities of runs the text states ({"<run key>: <quantity>": value}, keys from
    :func:`run_key`). They travel, invisible, in the output's metadata, so a test can check that two notebooks never
    state different values for one quantity of one run (``tests/test_stated_values.py``)."""

    def __new__(cls, text: str = "", states: Mapping = None):
        obj = super().__new__(cls, text)
        obj.states = {str(k): float(v) for k, v in (states or {}).items()}
        return obj

    def _repr_markdown_(self):
        return (str(self), {STATES: {"states": self.states}}) if self.states else str(self)
