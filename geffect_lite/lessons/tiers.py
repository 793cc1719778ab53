"""Notebook 12's reading of the committed SmolLM2 trajectories against the tiny model's: the same runs of the paper's
objectives (Wang et al. 2025, arXiv 2502.19301, Figs. 3–8) on two tiers, read off
``gl.paper.trajectories_io.tiers``. Each sentence follows an explicit condition on the numbers it prints; the
reasons the tiers may differ are stated in the notebook's markdown as differences of setting, not as findings.
"""
from __future__ import annotations

import math

from .common import Reading, num, pick


def tier_contrast(side, big: str, small: str, vocab: dict) -> Reading:
    """``side``: ``tiers(**{big: …, small: …})``; ``vocab``: tier → vocabulary size (for ln|V|)."""
    runs = list(side.index)
    lnv = {t: math.log(int(vocab[t])) for t in (big, small)}
    start = {t: [r for r in runs if side.loc[r, ("e_u_0", t)] < 0] for t in (big, small)}
    frac = {t: {r: side.loc[r, ("dip_step", t)] / side.loc[r, ("steps", t)] for r in runs} for t in (big, small)}
    early = {t: sum(v <= 0.5 for v in frac[t].values()) for t in (big, small)}
    hard = {t: [r for r in runs if side.loc[r, ("e_r_over_e_u_at_dip", t)] > 1] for t in (big, small)}
    gone = {t: [r for r in runs if side.loc[r, ("forget_risk_T", t)] > lnv[t]] for t in (big, small)}
    names = lambda rs: ", ".join(f"`{r}`" for r in rs) or "none"
    n = len(runs)
    return Reading(
        f"- **Start.** $e_u<0$ at $\\theta_o$ for {len(start[big])} of the {n} runs on `{big}` and {len(start[small])} "
        f"on `{small}`" + pick(len(start[big]) == len(start[small]) == n, ": every objective starts by unlearning on "
                               "both tiers.", "; $e_u \\ge 0$ (to first order the first step does not unlearn) for "
                               + " and ".join(f"{names([r for r in runs if r not in start[t]])} on `{t}`"
                                              for t in (big, small)) + ".") + "\n"
        f"- **The dip** (each run's most negative $e_u$) comes in the first half of the run for {early[big]} of the "
        f"{n} runs on `{big}` and {early[small]} on `{small}`.\n"
        f"- **Who pays at the dip.** $|e_r|>|e_u|$ there (the retain set hit harder than the forget set) for "
        f"{names(hard[big])} on `{big}` and {names(hard[small])} on `{small}`.\n"
        f"- **The end** ($\\theta_T$). The forget risk ends above $\\ln|V|$, worse than a uniform guess, for "
        f"{names(gone[big])} on `{big}` ($\\ln|V|$ = {num(lnv[big])}) and {names(gone[small])} on `{small}` "
        f"({num(lnv[small])})."
        + pick(set(gone[big]) == set(gone[small]), " The same runs collapse on both tiers.",
               " The tiers differ in which runs collapse."))


__all__ = ["tier_contrast"]
