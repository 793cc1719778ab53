"""Readings of the regularised runs for notebook 09 (GA + GD, GA + KL, GA + RR: Fig. 8 and the paper's insight 5),
re-exported by :mod:`.po_rmu_reg`: :func:`kl_positions`, :func:`reg_at_start`, :func:`reg_terms` (Fig. 8a–c),
:func:`gd_cancel`, :func:`gd_utility`, :func:`kl_best` (insight 5), :func:`reg_summary`.

Each check a sentence reports is its rule's (``reg_gd_term``, ``reg_kl_term``, ``reg_rr_term`` in
``paper/rules_po_rmu_reg.py``; ``insight_kl_best`` in ``rules_insights.py``), with the rule's quantity and threshold
(:mod:`.po_rmu_reg_checks`). A sentence about a verdict says "on this run": the committed verdicts, over seeds and
learning rates, are in the notebook's claims table.
"""
from __future__ import annotations

import math

import numpy as np

from ..paper.rules_insights import NLL_MARGIN
from ..teach import num, pick
from .common import Reading, as_in, at_end, end_states, values_of, verdict_of
from .po_rmu_reg_checks import KL_LATE_MAX, RR_REL_MAX, SHARE_POS, agree, pct, untested

REG_NAMES = ("ga", "ga+gd", "ga+kl", "ga+rr")


def kl_positions(retain) -> Reading:
    """Notebook 09: how much of the retain batch's positions are answer tokens (``kl_positions="all"``)."""
    B, T = retain["input_ids"].shape
    P, a = B * (T - 1), int((retain["labels"][:, 1:] != -100).sum())
    real = int(retain["attention_mask"][:, 1:].sum())
    return Reading(f"The retain batch has {B} rows padded to {T} tokens, so {num(P)} predicting positions: {num(a)} "
                   f"answer positions ({pct(a / P)}), {num(real - a)} question positions and {num(P - real)} padding. "
                   f"With `kl_positions=\"all\"` the answer tokens carry only {pct(a / P)} of $\\lambda$.")


def reg_at_start(ge0) -> Reading:
    """Notebook 09: the KL and RR terms' G-effects at θ_ref (``ge0``: objective name → GEffect) against GA's."""
    size = {r: max(abs(ge0[f"ga+{r}"].value(rs, r)) for rs in ("forget", "retain")) for r in ("kl", "rr")}
    return Reading(
        f"At $\\theta_{{\\rm ref}}$ the KL term's G-effects are {num(size['kl'])} and the RR term's {num(size['rr'])} "
        f"in size, against {num(abs(ge0['ga'].e_u))} for GA's $e_u$: "
        + pick(max(size.values()) > 0, "a non-zero size comes from the reference being a cached copy of the same "
               "numbers, recomputed in single precision: zero to that precision.", "both exactly zero.")
        + f" GD, in contrast, acts from the first step ($e_r$ = {num(ge0['ga+gd'].value('retain', 'gd'))}).")


def _term(live, cid: str, fig: str, checks, text: str, shown: str, miss: str) -> str:
    """One bullet of :func:`reg_terms`: the rule's numbers, then the figure's pattern through ``as_in``."""
    agree(live, cid, checks)
    return (f"(claim `{cid}`: *{verdict_of(live, cid)}* on this run): {text} "
            + as_in(live, cid, fig, shown, f"{fig}'s pattern is **not shown** on this run: {miss}."))


def _untested_term(live, cid: str, fig: str):
    return None if untested(live, cid, fig) is None else (
        f"(claim `{cid}`: *{verdict_of(live, cid)}* on this run): the rule cannot decide on this run: "
        f"{str(live.loc[cid, 'reason']).removeprefix('not testable: ')}.")


def reg_terms(live) -> Reading:
    """Notebook 09, Fig. 8a–c: each regulariser's own G-effects (claims ``reg_gd_term``, ``reg_kl_term``,
    ``reg_rr_term``), after step 0, as the rules read them."""
    out = ["**What these runs show, next to Fig. 8** (the regulariser's own term, after step 0)"]
    g = _untested_term(live, "reg_gd_term", "Fig. 8a")
    if g is None:
        v = values_of(live, "reg_gd_term")
        c = {"r": v["share e_r>0"] >= SHARE_POS, "u": v["share e_u>0"] >= SHARE_POS,
             "slow": v["e_r(T)/peak"] > v["e_u(T)/peak"]}
        g = _term(live, "reg_gd_term", "Fig. 8a", c,
                  f"$e_r>0$ at {pct(v['share e_r>0'])} and $e_u>0$ at {pct(v['share e_u>0'])} of the steps (the rule "
                  f"asks ≥ {pct(SHARE_POS)} each); at the last step $e_r$ keeps {pct(v['e_r(T)/peak'])} of its peak "
                  f"and $e_u$ {pct(v['e_u(T)/peak'])}: "
                  + pick(c["slow"], "$e_r$ fades more slowly.", "$e_r$ does not fade more slowly."),
                  "Positive on both sides, $e_r$ fading more slowly",
                  "; ".join(t for t, k in (("not positive often enough", c["r"] and c["u"]),
                                           ("$e_r$ does not fade more slowly", c["slow"])) if not k))
    k = _untested_term(live, "reg_kl_term", "Fig. 8b")
    if k is None:
        v = values_of(live, "reg_kl_term")
        lr, lu = v["max|e_r| last third / peak"], v["max|e_u| last third / peak"]
        c = {"r": v["share e_r>0"] >= SHARE_POS, "u": v["share e_u>0"] >= SHARE_POS,
             "late": max(lr, lu) <= KL_LATE_MAX}
        k = _term(live, "reg_kl_term", "Fig. 8b", c,
                  f"$e_r>0$ at {pct(v['share e_r>0'])} and $e_u>0$ at {pct(v['share e_u>0'])} of the steps (the rule "
                  f"asks ≥ {pct(SHARE_POS)} each); from two thirds of the run on, the largest $|e_r|$ is {pct(lr)} "
                  f"and the largest $|e_u|$ {pct(lu)} of their peaks (the rule asks ≤ {pct(KL_LATE_MAX)}): "
                  + pick(c["late"], "faded by then.", "not faded by then."),
                  "Positive, and faded by two thirds of the run",
                  "; ".join(t for t, ok in (("not positive often enough", c["r"] and c["u"]),
                                            ("the KL term has not faded in the last third", c["late"])) if not ok))
    r = _untested_term(live, "reg_rr_term", "Fig. 8c")
    if r is None:
        v = values_of(live, "reg_rr_term")
        rel, neg = v["peak |RR| / min(peak |GD|, peak |KL|)"], v["share e_r<0 (second half)"]
        c = {"small": rel <= RR_REL_MAX, "neg": neg >= SHARE_POS}
        r = _term(live, "reg_rr_term", "Fig. 8c", c,
                  f"its peak size is {num(rel)}× the smaller of the GD and KL terms' peaks (the rule asks ≤ "
                  f"{pct(RR_REL_MAX)}), and its $e_r<0$ at {pct(neg)} of the steps of the second half (the rule asks "
                  f"≥ {pct(SHARE_POS)}; lowest $e_r$ {num(v['min e_r (RR)'])}). RR is measured in squared "
                  "hidden-state units, not nats, so its size depends on the model's hidden-state scale.",
                  "Negligible, with $e_r$ negative in the second half",
                  "; ".join(t for t, ok in (("not negligible", c["small"]),
                                            ("$e_r$ not mostly negative in the second half", c["neg"])) if not ok))
    return Reading("\n".join([out[0], "", f"- **GD** {g}", f"- **KL** {k}", f"- **RR** {r}"]))


def gd_geometry(runs, lam: float) -> dict:
    """GA + GD's terms (``runs.terms("ga+gd")``) as the geometry of g_u = ∇R_u and g_r = ∇R_r: per step
    cos(g_u, g_r), ``kept`` = ‖∇L‖²/(‖g_u‖² + λ²‖g_r‖²), ``late`` (the second half), ``given_back`` (ΣGD e_u/−Σ e_u)."""
    tg = runs.terms("ga+gd")
    uu, rr, ur = -tg[("forget", "forget")], tg[("retain", "gd")] / lam, tg[("forget", "gd")] / lam
    cos = ur / np.sqrt(uu * rr)
    kept = (uu - 2 * lam * ur + lam ** 2 * rr) / (uu + lam ** 2 * rr)
    late = tg.index >= tg.index[len(tg) // 2]
    return dict(tg=tg, cos=cos, kept=kept, late=late,
                given_back=float(tg[("forget", "gd")].sum() / -tg[("forget", "forget")].sum()))


def gd_cancel(runs, lam: float) -> Reading:
    """Notebook 09: how much GA + GD's forget and retain terms cancel, from the terms of its run (:func:`gd_geometry`)."""
    G = gd_geometry(runs, lam)
    tg, cos, late = G["tg"], G["cos"][G["late"]], G["late"]
    cancel = ((tg[("retain", "objective")].abs() <= 0.2 * tg[("retain", "forget")].abs())
              & (tg[("retain", "forget")] < 0))
    strong = float(cos.median()) > 0.3
    return Reading(
        "**Read off this run.** The identity $e_u(\\text{GD})=-\\lambda\\,e_r(\\text{forget})$ holds at every step "
        f"(asserted). In the second half of the run the cosine between $g_u$ and $g_r$ has median {num(cos.median())} "
        f"(from {num(cos.min())} to {num(cos.max())}), so "
        + pick(strong, "the two gradients are strongly aligned: the retain set is hurt by the same directions that "
               "unlearn.", "the two gradients are only weakly aligned on this run.")
        + f" At {int(cancel.sum())} of {len(tg)} steps the GD term cancels at least four fifths of the forget term's "
        f"damage to the retain set; at its lowest, the objective's gradient keeps {num(float(G['kept'].min()))} of "
        "the squared length the two terms would have if they were orthogonal. On the forget side the GD term hands "
        f"back {pct(G['given_back'])} of the forget term's $\\Sigma e_u$.\n\n"
        "**Why they cancel.** Both terms contain the cross term $g_u^\\top g_r$. It is large when **the forget and "
        "retain data share what the model knows**: their risk gradients then point the same way, and GA + GD asks to "
        "go up one and down the other at once. The shared part of the two gradients cancels; what remains is the part "
        "in which the forget set differs from the retain batch. "
        + pick(strong, "On this run the shared part is large, and a large share of each push is cancelled.",
               "On this run the shared part is modest, so the cancellation is partial: most of each push survives."))


def _held_out(g, lam: float, h_gd: float) -> str:
    """Point 2 of :func:`gd_utility`: the GD term's G-effect on held-out rows against its own batch's."""
    transfer = float((lam * g.hr).sum() / (lam * g.rr).sum())
    neg_h, tot = int((g.hr < 0).sum()), float(-g.hu.sum() + lam * g.hr.sum())
    h0 = float(g.heldout_nll.iloc[0])
    return (f"summed over the probed steps, the GD term's G-effect on held-out rows is {num(transfer)} times its "
            "G-effect on its own batch"
            + pick(neg_h > 0, f", and at {neg_h} of {len(g)} probed steps it is negative: to first order, fitting the "
                   "retain batch *raised* the held-out risk there.", ", positive at every probed step.")
            + " " + pick(transfer < 0.5, "Little of the protection reaches other questions.",
                         "Much of it reaches them here: on the tiny model the held-out questions are of the same "
                         "kinds as the retain batch.")
            + f" With the forget term's G-effect on held-out rows ({num(float(-g.hu.sum()))}, summed the same way) "
            f"the objective's sums to {num(tot)}: "
            + pick(tot > 0, "to first order, plain gradient steps would *lower* the held-out risk.",
                   "even to first order, the held-out risk is pushed up.")
            + f" The held-out NLL went from {num(h0)} to {num(h_gd)}"
            + pick(tot > 0 and h_gd > h0, ": it rose all the same. The run takes AdamW steps, and the raw G-effect "
                   "describes the gradient, not the step Adam takes (the same gap as in notebooks 03 and 07).", "."))


def gd_utility(runs, g, lam: float) -> Reading:
    """Notebook 09: does GD keep more held-out utility than GA? ``g``: the probed GA + GD run's probes (held-out
    NLL, dot products uu, rr, hh, ur, hu, hr) joined with its risks, one row per probed step."""
    h_ga, h_gd = (float(runs.final(n)["heldout_nll"]) for n in ("ga", "ga+gd"))
    ru_ga, ru_gd = (at_end(runs.steps(n))["forget_risk"] for n in ("ga", "ga+gd"))
    lnV, rb = math.log(runs.model.config.vocab_size), float(g.risk_r.iloc[-1])
    fade = float(g.rr.iloc[-1] / g.uu.iloc[-1])
    less = h_gd > h_ga
    states = {f"{runs.key(n)}: held-out retain NLL at θ_T": h for n, h in (("ga", h_ga), ("ga+gd", h_gd))}
    for n in ("ga", "ga+gd"):
        states.update(end_states(runs.key(n), runs.steps(n)))
    return Reading(states=states, text=
        "**Read off these runs.**\n\n"
        f"1. **The batch GD trains on:** at the last probed step its own retain batch has an NLL of {num(rb)} nats "
        f"per token; on $\\theta_T$ held-out retain questions have {num(h_gd)} ($\\ln|V|$ = {num(lnV)} is a uniform "
        "guess over the vocabulary)"
        + pick(rb < h_gd, ": the batch in its loss is kept far better than other questions.", ".") + "\n"
        f"2. **How much of that protection reaches other questions** is a different dot product, with no sign "
        f"guarantee: {_held_out(g, lam, h_gd)}\n"
        f"3. **It hands back part of the unlearning push** ({pct(gd_geometry(runs, lam)['given_back'])} of the "
        f"forget term's $\\Sigma e_u$, above): GA + GD ends at a forget risk of {num(ru_gd)} nats against GA's "
        f"{num(ru_ga)}. " + pick(ru_gd < ru_ga, "In the same steps GD unlearned less.", "In the same steps GD "
                                 "unlearned at least as much as GA: under AdamW a partly cancelled gradient still "
                                 "takes full-size steps (our reading).") + "\n"
        f"4. **Outcome on this run:** held-out NLL {num(h_gd)} for GA + GD against {num(h_ga)} for GA: GD kept "
        + pick(less, "**less**", "**more**") + " held-out utility than GA.\n\n"
        + pick(less, "So GD *can* keep less utility than GA, and on this run it did.",
               "So on this run GD kept more held-out utility than GA"
               + pick(h_gd > lnV, ", although both end worse than a uniform guess.", "."))
        + " Its guaranteed protection is on what its loss contains, the retain batch: there its G-effect is "
        "$\\lambda\\lVert g_r\\rVert^2\\ge0$ by construction. Other questions are protected only as far as the steps "
        "carry over to them, which neither its loss nor its G-effect guarantees"
        + pick(less, ".", ", so on another model or setting the order can flip.") + " "
        + pick(fade < 0.1, f"At the last probed step $\\lVert g_r\\rVert^2$ is {num(fade)} of $\\lVert g_u\\rVert^2$: "
               "once its batch is fitted the retain term pulls little, and the objective's gradient is almost GA's "
               "forget term alone.", f"At the last probed step $\\lVert g_r\\rVert^2$ is still {num(fade)} of "
               "$\\lVert g_u\\rVert^2$: the retain term is still pulling."))


def kl_best(live, runs) -> Reading:
    """Notebook 09, insight 5: which regulariser keeps the lowest held-out retain NLL (claim ``insight_kl_best``)."""
    final = {n: float(runs.final(n)["heldout_nll"]) for n in REG_NAMES}
    regs = {n: v for n, v in final.items() if n != "ga"}
    best, lnV = min(regs, key=regs.get), math.log(runs.model.config.vocab_size)
    others = min(v for n, v in regs.items() if n != "ga+kl")
    text = (f"Held-out retain NLL at the end: {', '.join(f'{n} {num(v)}' for n, v in final.items())}. The lowest of "
            f"the three regularised runs is **{best}** (claim `insight_kl_best`: *{verdict_of(live, 'insight_kl_best')}*"
            " on this run). ")
    collapsed = min(regs.values()) > lnV
    if untested(live, "insight_kl_best", "insight 5") is not None:
        why = str(live.loc["insight_kl_best", "reason"]).removeprefix("not testable: ")
        return Reading(text + f"The rule cannot rank them on this run: {why}. "
                       + pick(collapsed, f"Every regularised run ends above $\\ln|V|$ = {num(lnV)}, worse than a "
                              "uniform guess: their order is a ranking of damage, not of protection.", ""))
    ok = regs["ga+kl"] <= (1 - NLL_MARGIN) * others and regs["ga+kl"] <= lnV
    agree(live, "insight_kl_best", {"kl": ok})
    return Reading(text + as_in(
        live, "insight_kl_best", "the paper's insight 5", f"KL keeps the most: its NLL is at least "
        f"{pct(NLL_MARGIN)} below the others' (the rule's margin)",
        f"The paper's insight 5 (KL best for retention) is **not shown** on this run: KL's NLL {num(regs['ga+kl'])} "
        f"is not ≤ {num(1 - NLL_MARGIN)}× the lowest of the others ({num(others)}) and ≤ $\\ln|V|$ = {num(lnV)}. "
        "The paper's ranking rests on TOFU's model utility for large models (Table 1)."))


def reg_summary(live, runs, g, lam: float) -> Reading:
    """Notebook 09: the summary bullets, from this run's verdicts (claims table for the committed ones)."""
    G = gd_geometry(runs, lam)
    cmed = float(G["cos"][G["late"]].median())
    h_ga, h_gd = (float(runs.final(n)["heldout_nll"]) for n in ("ga", "ga+gd"))
    v = {c: verdict_of(live, c) for c in ("reg_gd_term", "reg_kl_term", "reg_rr_term", "insight_kl_best")}
    states = {f"{runs.key(n)}: held-out retain NLL at θ_T": h for n, h in (("ga", h_ga), ("ga+gd", h_gd))}
    return Reading(states=states, text=
        "- A regularised objective $\\mathcal L_f+\\lambda\\mathcal L_{\\rm reg}$ has G-effect "
        "$e(\\mathcal L_f)+\\lambda e(\\mathcal L_{\\rm reg})$; `gl.geffect` and `gl.run` report each term, which is "
        "what Fig. 8 plots. The KL and RR terms have zero G-effect at $\\theta_{\\rm ref}$; the GD term's $e_r$ is "
        "$\\lambda\\lVert\\nabla\\mathcal R_r\\rVert^2\\ge0$ (both checked).\n"
        f"- Fig. 8 on this run: GD term *{v['reg_gd_term']}*, KL term *{v['reg_kl_term']}*, RR term "
        f"*{v['reg_rr_term']}* (the committed verdicts, over seeds and learning rates, are in the claims table).\n"
        "- GA + GD: the GD term's $e_u$ is exactly $-\\lambda$ times the forget term's $e_r$; with the two risk "
        f"gradients at a median cosine of {num(cmed)} in the second half of the run, the two losses cancel "
        + pick(cmed > 0.3, "much", "part") + " of each other's push.\n"
        f"- GD's guaranteed protection is on its own retain batch (NLL {num(float(g.risk_r.iloc[-1]))} at the last "
        f"probe), not on held-out questions (NLL {num(h_gd)} at the end, against {num(h_ga)} for GA): on this run "
        + pick(h_gd > h_ga, "it kept less held-out utility than GA.", "it kept more held-out utility than GA.") + "\n"
        f"- Insight 5 (KL best for retention): *{v['insight_kl_best']}* on this run.")


__all__ = ["kl_positions", "reg_at_start", "reg_terms", "gd_geometry", "gd_cancel", "gd_utility", "kl_best",
           "reg_summary"]
