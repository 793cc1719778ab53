"""Readings of the GA and WGA runs: what notebook 03 (gradient ascent: Eq. 1, Fig. 3a–b) and notebook 04 (weighted
GA: Eq. 2, Fig. 3c) say about the scoreboard's own runs (``gl.paper.Runs``), each beside the claim it describes.

Notebook 03: confidence_at_start, ga_spike (Fig. 3a), ga_collapse (Eq. 1, the paper's appendix plots for GA, insight
3), ga_layers and ga_lm_head (Fig. 3b; notebook 11 may reuse them), ga_raw_vs_adam, ga_summary. Notebook 04:
weight_growth, partly_unlearned, wga_vs_ga (Fig. 3c vs 3a), wga_alphas, risk_weighting (insight 4), wga_summary.

Each check a sentence reports is its rule's (``paper/rules_ga.py``, ``rules_insights.py``): the same quantity from
``values``, the same threshold (inline ones mirrored in :mod:`.ga_checks`, whose ``agree`` stops a reading that
disagrees with the verdict). "The dip": the step of the most negative e_u (``verdicts.at_dip``); "the last recorded
step": the last row of the run's steps; θ_T, "the final model": the model after the last update (``runs.final``).
"""
from __future__ import annotations

import math

import numpy as np

from ..paper.rules_ga import (GA_DIP, GA_RATIO, GA_RATIO_MIN, MAGNITUDE_MAX, RATIO_GAP, WGA_DIP, WGA_RATIO,
                              WGA_RATIO_MAX)
from ..paper.rules_insights import WEIGHTED_RATIO
from ..paper.table import ZERO_UTILITY
from ..paper.verdicts import at_dip, half_gap
from ..teach import num, pick
from .common import Reading, as_in, at_end, end_states, head, values_of, verdict_of
from .ga_checks import (BLOCKS_MOST, EMBED_MAX, GLOSSARY, IC_ORDERS, LATE_MAX, LATE_RISE, LM_KEPT, LM_SHARE,
                        NLL_LNV, OTHERS_MAX, QUIET, STOP, agree, diverged, excessive_line, group_shares, pct, stops,
                        untested, untested_line)

def confidence_at_start(view) -> Reading:
    """Notebook 03: the forget answer tokens' p and 1/p at θ_o (``ga.weight_view(ctx)``)."""
    ic, p = view.inverse_confidence, view.p
    return Reading(f"At $\\theta_o$, over the {num(len(view))} forget answer tokens, the mean $p$ is {num(p.mean())}, "
                   f"the mean inverse confidence $1/p$ is {num(ic.mean())} and the largest is {num(ic.max())}. "
                   + pick(ic.mean() < 2, "The model is confident: GA starts gently.",
                          "The model is not confident on these tokens even before unlearning."))


def ga_spike(live, runs) -> Reading:
    """Notebook 03, Fig. 3a: the GA run's dip, its quiet start and its tail, with the checks of ``ga_spike``."""
    out = untested(live, "ga_spike", "Fig. 3a")
    if out:
        return out
    v, s = values_of(live, "ga_spike"), runs.steps("ga")
    k, T, n6 = int(v["dip step"]), int(s.step.iloc[-1]), max(1, round(len(s) / 6))
    early, late, ratio = v["max|e_u| first sixth / |dip|"], v["|e_r(T)|/|e_r at dip|"], v["e_r/e_u at dip"]
    i = int(np.flatnonzero(s.step.to_numpy() == k)[0])
    checks = {"quiet": early <= QUIET, "inside": n6 <= i < len(s) - 1, "ratio": ratio >= GA_RATIO_MIN,
              "late": 0 < late <= LATE_MAX}
    agree(live, "ga_spike", checks)
    p = s.set_index("step").w_mean_p
    miss = [w for w, c in (("the start is not quiet enough", "quiet"), ("the dip is at an end of the run", "inside"),
                           ("$e_r$/$e_u$ at the dip is too small", "ratio"), ("the tail is not small", "late"))
            if not checks[c]]
    return Reading(
        f"{head(live, 'ga_spike', 'Fig. 3a')}\n\n"
        f"- **The start:** over the first sixth of the recorded steps the largest $|e_u|$ is {pct(early)} of "
        f"$|e_u|$ at the dip; the rule asks at most {pct(QUIET)}. "
        + pick(checks["quiet"], "Quiet: the model is confident, so its gradients are tiny (Eq. 1 with $p\\approx1$).",
               "Not quiet enough by that measure.") + "\n"
        f"- **The dip:** $e_u$ is most negative at step {k} (the run records steps {num(int(s.step.iloc[0]))} to {T}"
        + pick(checks["inside"], ")", "; an end of the run: the dip is not passed)") +
        f", when the mean forget-token probability has fallen from {num(p.iloc[0])} to {num(p.loc[k])}. There "
        f"$e_u$ = {num(v['e_u at dip'])} and $e_r$ = {num(v['e_r at dip'])}: $e_r$/$e_u$ = {num(ratio)}, "
        + pick(ratio > 1, "so the retain side dips deeper than the forget side", "so the retain side dips less deep "
               "than the forget side") + f" (the rule asks $e_r$/$e_u$ ≥ {num(GA_RATIO_MIN)}, within a factor 2 of "
        f"Fig. 3a's {num(GA_RATIO)} = {num(GA_DIP['e_r'])}/{num(GA_DIP['e_u'])}).\n"
        f"- **Afterwards:** at the last recorded step $|e_r|$ is {pct(late)} of its value at the dip; the rule asks "
        f"more than 0 and at most {pct(LATE_MAX)}: " + pick(checks["late"], "small but non-zero.",
                                                              "$|e_r|$ does not fall back that far.") + "\n"
        "- " + as_in(live, "ga_spike", "Fig. 3a", "A quiet start, one dip with the retain side hit hard, and a small "
                     "but non-zero tail", "Fig. 3a's pattern is **not shown** by this run: " + "; ".join(miss) + ".")
        + "\n"
        f"- The retain risk went from {num(s.risk_r.iloc[0])} to {num(s.risk_r.iloc[-1])} nats per token by the last "
        "recorded step" + pick(s.risk_r.iloc[-1] > s.risk_r.iloc[0], ": whatever the G-effects do late, the damage "
                               "stays.", ".") + " A G-effect measures how fast a risk is changing, not how far it "
        f"has moved ([accumulated G-effect]({GLOSSARY}#accumulated-g-effect)).")


def _inverse_confidence(live, ic) -> str:
    """Point 1 of :func:`ga_collapse`: the checks of ``ga_inverse_confidence``."""
    cid = "ga_inverse_confidence"
    head_ = f"**The inverse confidence** (claim `{cid}`: *{verdict_of(live, cid)}*)."
    if untested_line(live, cid):
        return f"{head_} {untested_line(live, cid)}"
    v = values_of(live, cid)
    checks = {"growth": v["log10 growth"] >= IC_ORDERS, "nll": v["last / ln|V|"] >= NLL_LNV,
              "flat": v["share of rise in last quarter"] <= LATE_RISE}
    agree(live, cid, checks)
    return (f"{head_} The mean $1/p$ over the forget answer tokens is {num(v['mean 1/p at θ_o'])} at $\\theta_o$, "
            f"{num(ic.mean_ic.iloc[-1])} at the last recorded step (step {num(int(ic.index[-1]))}) and "
            f"{num(v['after GA'])} on the final model $\\theta_T$, after the last update: a growth of "
            f"$10^{{{v['log10 growth']:.1f}}}$ (the rule asks at least $10^{{{IC_ORDERS}}}$). At the last recorded "
            f"step the median is {num(ic.median_ic.iloc[-1])}: a minority of tokens with tiny $p$ dominates the mean. "
            f"The forget NLL reaches {num(v['forget NLL last'])} nats per token, {num(v['last / ln|V|'])}·$\\ln|V|$ "
            f"(the rule asks at least {NLL_LNV}·$\\ln|V|$), with {pct(v['share of rise in last quarter'])} of its "
            f"rise in the last quarter of the recorded steps (the rule asks at most {pct(LATE_RISE)}): "
            + pick(checks["flat"], "it has levelled off.", "it has not levelled off.") + " "
            + as_in(live, cid, "the paper's appendix plots for GA", "The inverse confidence explodes and the forget "
                    "NLL saturates", "So the saturation of the paper's appendix plots for GA is **not shown** here."))


def heldout_states(runs, *names) -> dict:
    """{"<run key>: held-out retain NLL at θ_T": …} for the runs ``names`` (measured on each final model)."""
    return {f"{runs.key(n)}: held-out retain NLL at θ_T": float(runs.final(n)["heldout_nll"]) for n in names}


def ga_collapse(live, runs, ic, ic_gd) -> Reading:
    """Notebook 03: why GA and GD end at utility ≈ 0, from ``ga_inverse_confidence``, ``insight_excessive`` and the
    per-step inverse confidence ``ic``/``ic_gd`` (columns mean_ic, median_ic, forgotten; one row per step)."""
    out = diverged(live, "ga_inverse_confidence", "**The question, read off this run**")
    if out:
        return out
    s, end, lnV = runs.steps("ga"), runs.final("ga"), math.log(int(runs.model.config.vocab_size))
    cross = s.step[s.risk_u > lnV]
    kc = int(cross.iloc[0]) if len(cross) else None
    g0, gk, gT = -float(s.e_u.iloc[0]), -float(s.e_u.min()), float(end["grad_sq"])
    h, h_gd = float(end["heldout_nll"]), float(runs.final("ga+gd")["heldout_nll"])
    gp = math.exp(-h)
    return Reading(states=heldout_states(runs, "ga", "ga+gd"), text=
        "**The question, read off this run**\n\n"
        f"1. {_inverse_confidence(live, ic)}\n"
        "2. **Forgotten tokens keep pulling.** "
        + (f"The forget risk passes $\\ln|V|$ at step {kc}; by then {pct(ic.forgotten.loc[kc])} of the forget "
           f"tokens are already less likely than a uniform guess, and {pct(ic.forgotten.iloc[-1])} by the last "
           "recorded step." if kc is not None else "The forget risk never passes $\\ln|V|$ in this run; "
           f"{pct(ic.forgotten.iloc[-1])} of the forget tokens end less likely than a uniform guess.")
        + " On $\\nabla\\log p$ GA gives each of them the same weight $1/N$ as any other token (the $1/p$ on "
          "$\\nabla p$ exactly makes up for $\\nabla p$ fading), so nothing in the objective says *done*.\n"
        f"3. **The gradient at the end.** $\\lVert\\nabla\\mathcal R_u\\rVert^2=-e_u$ is {num(g0)} at $\\theta_o$, "
        f"{num(gk)} at the dip and {num(gT)} on the final model $\\theta_T$, "
        + pick(gT >= 0.5 * gk, f"still {pct(gT / gk)} of its value at the dip: it has not died. AdamW turns any "
               "non-zero gradient into a step of about the learning rate per coordinate, so the run keeps moving.",
               f"down to {pct(gT / gk)} of its value at the dip (not zero).") + "\n"
        f"4. {excessive_line(live)}\n"
        f"5. **Utility.** The held-out retain questions (`retain_eval`: never used for unlearning, the retain part of "
        f"model utility) end at {num(h)} nats per token on $\\theta_T$, "
        + pick(h > lnV, "worse", "still better") + f" than a uniform guess over the vocabulary ($\\ln|V|$ = "
        f"{num(lnV)} nats). Their geometric-mean token probability, $e^{{-\\mathrm{{NLL}}}}$, is {num(gp)}. Model "
        "utility is a harmonic mean that includes the retain answer probability, and a harmonic mean of nine "
        f"numbers is at most nine times the smallest of them, here {num(9 * gp)}: "
        + pick(9 * gp < ZERO_UTILITY, f"below the {num(ZERO_UTILITY)} under which the scoreboard counts utility as "
               "collapsed.", f"not below the {num(ZERO_UTILITY)} under which the scoreboard counts utility as "
               "collapsed, so this bound alone does not pull utility to $0$.")
        + " (Utility averages $e^{-\\mathrm{NLL}}$ per question rather than per token, so this is its order of "
          "magnitude, not its value.)\n\n"
        "**GD** adds the retain NLL on the retain batch but keeps GA's forget term, and with it the same $1/p$: its "
        f"mean inverse confidence reaches {num(ic_gd.mean_ic.max())} and its held-out NLL ends at {num(h_gd)} nats, "
        + pick(h_gd > lnV, "also worse than a uniform guess: the retain term does not save the questions it never "
               "saw.", "better than a uniform guess: here the retain term holds the held-out questions up."))


def ga_layers(live, runs) -> Reading:
    """Notebook 03 (and 11), Fig. 3b: which layer groups carry GA's G-effect at its dip, with ``ga_layers``'s checks:
    the shallow share of the three block groups and the input embedding's share of all groups."""
    out = untested(live, "ga_layers", "Fig. 3b")
    if out:
        return out
    v = values_of(live, "ga_layers")
    k = int(v["dip step"])
    sh = {rs: v[f"shallow share of blocks ({rs})"] for rs in ("forget", "retain")}
    emb = {rs: v[f"embed share ({rs})"] for rs in ("forget", "retain") if f"embed share ({rs})" in v}
    checks = {"shallow": all(x > BLOCKS_MOST for x in sh.values()),
              "embed": all(x <= EMBED_MAX for x in emb.values())}
    agree(live, "ga_layers", checks)
    shares = group_shares(runs, k)
    top = {rs: (str(shares[rs].idxmax()), shares[rs].max()) for rs in shares}
    em = (f"The input embedding carries {pct(emb['forget'])} of all groups' $|e_u|$ and {pct(emb['retain'])} of "
          f"their $|e_r|$ at the dip; the rule asks at most {pct(EMBED_MAX)} (the paper's is ≈ 0). "
          + pick(checks["embed"], "Small here.", "Far from zero here; this run does not test why.")
          if len(emb) == 2 else "The input embedding is tied to `lm`, so its share is not tested.")
    return Reading(
        f"{head(live, 'ga_layers', 'Fig. 3b')}\n\n"
        f"- **The decoder blocks:** at the dip (step {k}) the shallow third carries {pct(sh['forget'])} of the three "
        f"block groups' $|e_u|$ and {pct(sh['retain'])} of their $|e_r|$; the rule asks more than "
        f"{pct(BLOCKS_MOST)} of each: " + pick(checks["shallow"], "shallow dominates the blocks.",
                                                 "shallow does not dominate the blocks.") + "\n"
        f"- **All five groups:** {em} Of all groups, the largest at the dip is `{top['forget'][0]}` for $e_u$ "
        f"({pct(top['forget'][1])}) and `{top['retain'][0]}` for $e_r$ ({pct(top['retain'][1])}).\n"
        "- " + as_in(live, "ga_layers", "Fig. 3b", "The shallow layers carry most of the blocks' G-effect and the "
                     "embedding stays near zero", "Fig. 3b's pattern (shallow layers dominate, the embedding ≈ 0) "
                     "is **not shown** by this run: " + "; ".join(
                         w for w, c in (("shallow does not dominate the blocks", "shallow"),
                                        ("the embedding is far from zero", "embed")) if not checks[c]) + "."))


def ga_lm_head(live, runs) -> Reading:
    """Notebook 03 (and 11), Fig. 3b: the output layer `lm` after GA's dip, with ``ga_lm_head``'s checks."""
    cid = "ga_lm_head"
    out = untested(live, cid, "Fig. 3b")
    if out:
        return out
    v = values_of(live, cid)
    top, kept, share, others = (v["lm e_r after dip (max)"], v["lm |e_r(T)| / max after dip"],
                                v["lm share of |e_r| (last)"], v["others last/dip"])
    checks = {"negative": top < 0, "kept": kept >= LM_KEPT, "others": others <= OTHERS_MAX, "share": share >= LM_SHARE}
    agree(live, cid, checks)
    return Reading(
        f"**The output layer after the dip** (claim `{cid}`: *{verdict_of(live, cid)}* on this run)\n\n"
        f"- After the dip, `lm`'s $e_r$ " + pick(checks["negative"], "stays negative at every recorded step (its "
                                                 f"highest value is {num(top)})", f"rises to {num(top)}")
        + f" and ends at {num(v['lm e_r (last)'])} at the last recorded step, {pct(kept)} of its largest $|e_r|$ "
        f"after the dip (the rule asks at least {pct(LM_KEPT)}). The other groups' $\\Sigma|e_r|$ falls to "
        f"{pct(others)} of its value at the dip (the rule asks at most {pct(OTHERS_MAX)}), so at the last recorded "
        f"step `lm` holds {pct(share)} of $|e_r|$ (the rule asks at least {pct(LM_SHARE)}).\n"
        "- " + as_in(live, cid, "Fig. 3b", "`lm` keeps a negative retaining G-effect while the other groups decay",
                     "Fig. 3b's output layer that never settles is **not shown** by this run."))


def ga_raw_vs_adam(runs) -> Reading:
    """Notebook 03: the raw G-effect against the optimiser-aware one and the realised change of the forget risk."""
    s = runs.steps("ga")
    d = at_dip(s)
    ratio = s.e_u_opt / s.e_u
    raw, opt, real = float((-s.lr * s.e_u).sum()), float(s.pred_du.sum()), float(s.real_du.sum())
    return Reading(
        f"At the first step Adam's step moves the forget risk {num(ratio.iloc[0])} times as much as $-\\eta e_u$ "
        f"says, and {num(ratio.iloc[d['i']])} times as much at the dip (step {d['step']}). Over the recorded steps "
        f"the raw G-effects add up to a predicted rise of the forget risk of {num(raw)} nats, the optimiser-aware "
        f"ones to {num(opt)}, and the forget risk actually rose by {num(real)}. "
        + pick(abs(opt - real) < abs(raw - real), "The optimiser-aware sum is the closer of the two.",
               "Here the raw sum is the closer of the two.")
        + " The raw G-effect describes the objective, which is what the paper's figures compare; the "
          "optimiser-aware one describes the run.")


def ga_summary(live, runs, rel: float, ic) -> Reading:
    """Notebook 03's summary: Eq. 1's check (relative error ``rel``), then one line per figure and the verdicts."""
    out = diverged(live, "ga_spike", "**Summary**")
    if out:
        return out
    s, end, lnV = runs.steps("ga"), runs.final("ga"), math.log(int(runs.model.config.vocab_size))
    d = at_dip(s)
    claims = ["ga_spike", "ga_inverse_confidence", "ga_layers", "ga_lm_head", "insight_excessive"]
    return Reading(states=heldout_states(runs, "ga", "ga+gd"), text=
        "- Eq. 1 " + pick(rel < 1e-6, "holds", "does not hold to round-off") + ": GA's gradient is "
        f"$\\frac1N\\sum\\frac1p\\nabla p$ (independent route, relative error {num(rel)}); "
        + pick(np.isclose(end["e_u"], -end["grad_sq"], rtol=1e-5), "$e_u=-\\lVert\\nabla\\mathcal R_u\\rVert^2$ on "
               "$\\theta_T$ as at $\\theta_o$, so GA always unlearns its own batch.", "$e_u$ and "
               "$-\\lVert\\nabla\\mathcal R_u\\rVert^2$ differ on $\\theta_T$.") + "\n"
        f"- Fig. 3a (claim `ga_spike`: *{verdict_of(live, 'ga_spike')}*): $e_u$ is most negative at step "
        f"{d['step']}, with $e_r$/$e_u$ = {num(d['ratio'])} there; " + as_in(
            live, "ga_spike", "Fig. 3a", "a quiet start, one dip, a small tail", "Fig. 3a's pattern is **not shown**.")
        + "\n"
        f"- Eq. 1 at work: the mean $1/p$ grows from {num(ic.mean_ic.iloc[0])} to "
        f"{num(ic.mean_ic.iloc[-1])} by the last recorded step, forgotten tokens keep full weight on "
        "$\\nabla\\log p$, and AdamW keeps stepping while the gradient is not zero; on $\\theta_T$ the held-out "
        f"retain NLL is {num(float(end['heldout_nll']))} nats (GA) and "
        f"{num(float(runs.final('ga+gd')['heldout_nll']))} nats (GA+GD), against {num(lnV)} for a uniform guess.\n"
        f"- Fig. 3b, blocks (claim `ga_layers`: *{verdict_of(live, 'ga_layers')}*): " + as_in(
            live, "ga_layers", "Fig. 3b", "shallow layers dominate the blocks, the embedding ≈ 0",
            "the layer pattern of Fig. 3b is **not shown**.") + "\n"
        f"- Fig. 3b, output layer (claim `ga_lm_head`: *{verdict_of(live, 'ga_lm_head')}*): " + as_in(
            live, "ga_lm_head", "Fig. 3b", "after the dip `lm` keeps a negative $e_r$ while the rest decays",
            "`lm` does not keep the paper's negative $e_r$ after the dip.") + "\n"
        "- This run's verdicts: " + ", ".join(f"claim `{c}`: *{verdict_of(live, c)}*" for c in claims) + ".")


def weight_growth(toy_df) -> Reading:
    """Notebook 04: how WGA's weight on ∇p changes as a token goes from the largest to the smallest p of the toy
    grid (``toy_df``: one row per α and p, with column "weight on ∇p")."""
    lo, hi = float(toy_df.p.min()), float(toy_df.p.max())
    parts = []
    for a, d in toy_df.groupby("alpha"):
        w = d.sort_values("p")["weight on ∇p"]
        r = float(w.iloc[0] / w.iloc[-1])
        name = "under GA ($\\alpha=0$)" if a == 0 else f"with $\\alpha={a:g}$"
        parts.append(f"{name} " + (f"it grows {num(r)}-fold" if r > 1 + 1e-9 else "it stays flat"
                                   if r >= 1 - 1e-9 else f"it shrinks to {num(r)} of its start"))
    return Reading(f"Read the plot from right to left, following a token as it is unlearned from $p$ = {num(hi)} to "
                   f"$p$ = {num(lo)}: the push on $\\nabla p$ changes as follows: " + "; ".join(parts) + ".")


def partly_unlearned(p, steps: int) -> Reading:
    """Notebook 04: the forget-token probabilities ``p`` of the copy replayed for ``steps`` GA steps."""
    p = np.asarray(p, dtype=float)
    pos = p[p > 0]
    decades = float(np.log10(pos.max() / pos.min())) if len(pos) else 0.0
    return Reading(f"After {num(steps)} GA steps the forget-token probabilities span {num(decades)} decades "
                   f"(median {num(float(np.median(p)))}), and {pct((p < 0.01).mean())} of the tokens are below "
                   f"$0.01$. " + pick((p < 0.01).any(), "These low-$p$ tokens are the ones whose weights GA and WGA "
                                      "treat most differently.", "No token is that unlikely yet, so GA's and WGA's "
                                      "weights still differ little."))


def wga_vs_ga(live, runs) -> Reading:
    """Notebook 04, Fig. 3c vs 3a: WGA (α = 0.5) against GA at each one's dip, with ``wga_vs_ga``'s checks, then
    the early stopping (no claim: the last |e_u| against STOP) and the retain risk."""
    cid = "wga_vs_ga"
    out = untested(live, cid, "Fig. 3c")
    if out:
        return out
    v = values_of(live, cid)
    mag, rg, rw, gap = (v["e_u at dip WGA/GA"], v["e_r/e_u at dip GA"], v["e_r/e_u at dip WGA"],
                        v["GA ratio / WGA ratio"])
    kg, kw = int(v["dip GA"]), int(v["dip WGA"])
    checks = {"magnitude": mag <= MAGNITUDE_MAX, "GA": rg >= GA_RATIO_MIN, "WGA": rw <= WGA_RATIO_MAX,
              "gap": gap >= RATIO_GAP, "timing": kw <= kg}
    agree(live, cid, checks)
    sg, sw, stop = runs.steps("ga"), runs.steps("wga"), stops(runs)
    lnV = math.log(int(runs.model.config.vocab_size))
    miss = [w for w, c in (("WGA's G-effects are not that much smaller", "magnitude"), ("WGA dips later", "timing"),
                           ("GA's own $e_r$/$e_u$ is too small", "GA"), ("WGA's $e_r$/$e_u$ is too large", "WGA"),
                           ("the gap between the two is too small", "gap")) if not checks[c]]
    ew, eg = at_end(sw), at_end(sg)
    return Reading(states={**end_states(runs.key("wga"), sw), **end_states(runs.key("ga"), sg)}, text=
        f"{head(live, cid, 'Fig. 3c')}: WGA (α = 0.5) against GA\n\n"
        f"- **Size:** $|e_u|$ at WGA's dip is {num(mag)} of GA's (the rule asks at most {num(MAGNITUDE_MAX)}; "
        f"Fig. 3c against 3a: {num(WGA_DIP['e_u'] / GA_DIP['e_u'])}): "
        + pick(checks["magnitude"], "far smaller.", "not that much smaller.") + "\n"
        f"- **When:** WGA dips at step {kw}, GA at step {kg}: " + pick(checks["timing"], "no later.", "later.") + "\n"
        f"- **$e_r$/$e_u$ at the dip:** {num(rw)} for WGA (the rule asks at most {num(WGA_RATIO_MAX)}; paper "
        f"{num(WGA_RATIO)}) and {num(rg)} for GA (at least {num(GA_RATIO_MIN)}; paper {num(GA_RATIO)}). GA's is "
        f"{num(gap)}× WGA's (the rule asks at least {num(RATIO_GAP)}×). "
        + pick(rw > 1, "WGA's $e_r$ dips deeper than its $e_u$: ", "WGA's $e_r$ dips less deep than its $e_u$: ")
        + pick(checks["gap"], "relative to its own removal, WGA hits the retain set much less than GA does.",
               pick(gap > 1, "relative to its own removal, WGA hits the retain set less than GA does, but not "
                             "by the rule's margin.", "relative to its own removal, WGA hits the retain set at "
                                                         "least as hard as GA does.")) + "\n"
        "- " + as_in(live, cid, "Fig. 3c", "Far smaller G-effects, an earlier dip and a much smaller $e_r$/$e_u$",
                     "Fig. 3c's pattern is **not shown** by this run: " + "; ".join(miss) + ".") + "\n"
        f"- **Early stopping** (no claim): at the last recorded step WGA's $|e_u|$ is {num(stop['wga'])} of its "
        f"value at the dip, GA's {num(stop['ga'])}; WGA's mean weight $p^\\alpha$ is "
        f"{num(float(sw.w_mean_weight.iloc[-1]))}. " + pick(stop["wga"] < STOP and stop["wga"] < stop["ga"],
                                                             f"Below a tenth and below GA's: WGA's $e_u$ dies away by "
                                                             "itself, the paper's automatic early stopping.",
                                                             "By that measure (below a tenth of the dip, and below "
                                                             "GA's) WGA's $e_u$ does **not** die away here.") + "\n"
        f"- **The retain set:** WGA's retain risk ends at {num(ew['retain_risk'])} nats per token on $\\theta_T$ "
        f"(GA: {num(eg['retain_risk'])}), "
        + pick(ew["retain_risk"] > lnV, f"above $\\ln|V|$ = {num(lnV)}: worse than a uniform guess.",
               f"below $\\ln|V|$ = {num(lnV)}."))


def wga_alphas(summary) -> Reading:
    """Notebook 04: e_u at the dip for every α (``summary``: one row per run in α order, column "e_u at the dip")."""
    lows = summary["e_u at the dip"].abs().to_numpy(dtype=float)
    return Reading("**Other $\\alpha$.** The larger $\\alpha$, the smaller the weights once $p$ falls (Eq. 2). "
                   "$e_u$ at the dip is " + ", ".join(f"{num(x)} for {n}" for n, x in summary["e_u at the dip"].items())
                   + ". " + pick(bool((np.diff(lows) < 0).all()), "Each larger $\\alpha$ gives a shallower dip here.",
                                 "A larger $\\alpha$ does not always give a shallower dip in this run."))


def risk_weighting(live) -> Reading:
    """Notebook 04: insight 4 (``insight_weighting``), e_r/e_u at each weighted objective's dip against GA's."""
    cid, fig = "insight_weighting", "Figs. 3a, 3c, 4 and 5c"
    out = untested(live, cid, fig)
    if out:
        return out
    v = values_of(live, cid)
    names = {"wga": "WGA", "npo_b1": "NPO (β = 1)", "tnpo": "TNPO"}
    need = {k: half_gap(GA_RATIO / WEIGHTED_RATIO[k]) for k in WEIGHTED_RATIO}
    ok = {k: v[f"GA / {k}"] >= need[k] for k in WEIGHTED_RATIO}
    agree(live, cid, ok)
    rows = [f"- **{names.get(k, k)}:** $e_r$/$e_u$ = {num(v[f'e_r/e_u at dip {k}'])} at its dip (paper "
            f"{num(WEIGHTED_RATIO[k])}); GA's is {num(v[f'GA / {k}'])}× it, the rule asks at least {num(need[k])}× "
            f"(paper {num(GA_RATIO / WEIGHTED_RATIO[k])}×): " + pick(ok[k], "enough.", "not enough.")
            for k in WEIGHTED_RATIO]
    return Reading(f"{head(live, cid, fig)}\n\nGA's $e_r$/$e_u$ at its dip is {num(v['e_r/e_u at dip ga'])}.\n\n"
                   + "\n".join(rows) + "\n\n" + as_in(
                       live, cid, fig, "Each weighted objective does far less retention damage per unit of removal "
                       "at its dip than GA", "The paper's insight on weighting is **not shown** by this run: the "
                       "gap is too small for " + ", ".join(names.get(k, k) for k in ok if not ok[k]) + "."))


def wga_summary(live, runs) -> Reading:
    """Notebook 04's summary: Eq. 2, then WGA against GA at their dips, early stopping, and the verdicts."""
    out = diverged(live, "wga_vs_ga", "**Summary**")
    if out:
        return out
    cid, stop = "wga_vs_ga", stops(runs)
    dg, dw = at_dip(runs.steps("ga")), at_dip(runs.steps("wga"))
    lnV = math.log(int(runs.model.config.vocab_size))
    sw, sg = runs.steps("wga"), runs.steps("ga")
    return Reading(states={**end_states(runs.key("wga"), sw), **end_states(runs.key("ga"), sg)}, text=
        "- WGA multiplies each token's $\\nabla\\log p$ by a detached $p^\\alpha$ (Eq. 2), so its weight on "
        "$\\nabla p$ is $p^{\\alpha-1}$: $\\alpha=1$ cancels GA's $1/p$ exactly, any $\\alpha>0$ damps it, and "
        "$\\alpha=0$ is GA. Three routes to the gradient agree, on a copy replayed from the protocol's GA run.\n"
        f"- Fig. 3c (claim `{cid}`: *{verdict_of(live, cid)}*): WGA (α = 0.5) dips to $e_u$ = {num(dw['e_u'])} at "
        f"step {dw['step']}, GA to {num(dg['e_u'])} at step {dg['step']}; $e_r$/$e_u$ there is {num(dw['ratio'])} "
        f"against {num(dg['ratio'])}. " + as_in(live, cid, "Fig. 3c", "WGA's dip is far smaller, no later, and "
                                                "spares the retain set", "Fig. 3c's pattern is **not shown**.") + "\n"
        "- Early stopping (no claim): " + pick(stop["wga"] < STOP and stop["wga"] < stop["ga"],
                                               "WGA's $e_u$ dies away by itself",
                                               "WGA's $e_u$ does not die away by that measure")
        + f" (last $|e_u|$ {num(stop['wga'])} of the dip's; GA's {num(stop['ga'])}).\n"
        f"- The retain risk ends at {num(at_end(sw)['retain_risk'])} nats per token for WGA and "
        f"{num(at_end(sg)['retain_risk'])} for GA ($\\ln|V|$ = {num(lnV)}).\n"
        "- This run's verdicts: " + ", ".join(f"claim `{c}`: *{verdict_of(live, c)}*" for c in live.index) + ".")


__all__ = ["confidence_at_start", "ga_spike", "ga_collapse", "ga_layers", "ga_lm_head", "ga_raw_vs_adam",
           "ga_summary", "weight_growth", "partly_unlearned", "wga_vs_ga", "wga_alphas", "risk_weighting",
           "wga_summary"]
