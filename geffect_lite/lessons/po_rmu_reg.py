"""Readings of the PO, RMU and regulariser runs: what notebooks 07–09 say about the scoreboard's own runs
(``gl.paper.Runs``), each beside the claim it describes.

* notebook 07 (PO, Eq. 7, Fig. 6; IdkDPO): :func:`po_at_start`, :func:`po_relearning` (Fig. 6), :func:`idkdpo_run`,
  :func:`po_summary`;
* notebook 08 (RMU, Eq. 8, Fig. 7): :func:`rmu_target`, :func:`rmu_layers_at_start`, :func:`rmu_layers` (Fig. 7),
  :func:`rmu_c_sweep`, :func:`rmu_summary`;
* notebook 09 (GD, KL and RR, Fig. 8; insight 5): in :mod:`.regularisers` (re-exported here).

Each check a sentence reports is the rule's own (``paper/rules_po_rmu_reg.py``, ``rules_insights.py``): the same
quantity, read from the rule's ``values``, and the same threshold. Thresholds the rules write inline are mirrored in
:mod:`.po_rmu_reg_checks`, whose ``agree`` stops a reading that disagrees with its rule's verdict. A sentence with no
claim behind it is chosen by an explicit condition on the number it prints. A G-effect is a rate: $e>0$ means the
risk is falling at that step, to first order, under the raw gradient; the change accumulated over a run can differ.
"""
from __future__ import annotations

import numpy as np

from ..paper.rules_po_rmu_reg import MOST
from ..teach import num, pick
from .common import Reading, as_in, end_states, head, values_of
from .po_rmu_reg_checks import RMU_GAP, RMU_REBOUND, agree, pct, risk_path, untested
from .regularisers import (gd_cancel, gd_geometry, gd_utility, kl_best, kl_positions, reg_at_start, reg_summary,
                           reg_terms)


def po_at_start(ge_po, ge_ga) -> Reading:
    """Notebook 07: PO's raw G-effects at θ_o (``gl.geffect(model, "po", ...)``) next to GA's."""
    return Reading(
        f"At $\\theta_o$ PO's raw gradient has $e_u$ = {num(ge_po.e_u)}, "
        + pick(ge_po.e_u > 0,
               "positive: to first order, a small gradient step on PO's loss makes the original answers *more* likely. A "
               "plausible reading (ours): refusals and answers follow the same question prompts, so the gradient "
               "that teaches the model to respond to these prompts also sharpens features the answers rely on.",
               "negative: to first order, a small gradient step on PO's loss already makes the original answers less likely.")
        + f" Its size is {num(abs(ge_po.e_u) / abs(ge_ga.e_u))} times GA's $|e_u|$ at the same point. In Fig. 6 "
        "PO's $e_u$ is negative over the first steps and positive later ([our reading of the figure]"
        "(../docs/paper.md#po--preference-optimisation-with-refusals-eq-7-fig-6)). Either way PO's effect on the "
        "answers is a side effect, with no term that aims at them; what happens to them over a run depends on the "
        "steps an optimiser takes.")


def _po_raw(live, v) -> str:
    neg, pos_u, pos_r = v["share e_u<0 (first sixth)"], v["share e_u>0 (from a third)"], v["share e_r>0 (from a third)"]
    checks = {"early": neg >= MOST and v["Σ e_u (first sixth)"] < 0, "late u": pos_u >= MOST, "late r": pos_r >= MOST}
    agree(live, "po_relearning", checks)
    miss = [t for t, k in (("$e_u$ is not mostly negative over the first sixth", "early"),
                           ("$e_u$ is not mostly positive from a third on", "late u"),
                           ("$e_r$ is not mostly positive from a third on", "late r")) if not checks[k]]
    return (f"- **The raw G-effect, which Fig. 6 plots:** over the first sixth of the run $e_u<0$ at {pct(neg)} of "
            f"the steps and sums to {num(v['Σ e_u (first sixth)'])}; from a third of the run on $e_u>0$ at "
            f"{pct(pos_u)} and $e_r>0$ at {pct(pos_r)} of the steps (the rule asks ≥ {pct(MOST)} each, and a "
            f"negative sum early); the largest $e_u$ is {num(v['max e_u'])}. "
            + as_in(live, "po_relearning", "Fig. 6", "Negative early, positive later, on both sides",
                    "Fig. 6's pattern is **not shown** on this run: " + "; ".join(miss) + ".") + "\n")


def po_relearning(live, runs) -> Reading:
    """Notebook 07, Fig. 6: the PO run's raw G-effects (claim ``po_relearning``), its risks and Adam's steps."""
    out = untested(live, "po_relearning", "Fig. 6")
    if out:
        return out
    s = runs.steps("po")
    ru, rr = risk_path(s, "risk_u"), risk_path(s, "risk_r")
    k = ru["k"]
    opt_before = float((s.e_u_opt.iloc[1:k + 1] < 0).mean()) if k > 0 else float("nan")
    opt_pos = s[(s.step > k) & (s.e_u_opt > 0)]
    pos = s[s.e_u > 0]
    rising = int((pos.real_du > 0).sum()) if "real_du" in s else 0
    ga_peak = float(-runs.steps("ga").e_u.min())
    maxu = float(s.e_u.abs().max())
    return Reading(states=end_states(runs.key("po"), s), text=
        f"{head(live, 'po_relearning', 'Fig. 6')}\n\n" + _po_raw(live, values_of(live, "po_relearning"))
        + f"- **What the risks did:** the forget risk went from {num(ru['first'])} to {num(ru['peak'])} at step {k} "
        f"(its peak) and ended at {num(ru['last'])} nats per token; the retain risk went from {num(rr['first'])} to "
        f"{num(rr['last'])}" + pick(rr["last"] > rr["first"], " (a rise)", " (a fall)") + ". A positive G-effect "
        "says a risk is falling *at that step, to first order*, under the raw gradient; "
        + pick(rising > 0, f"at {rising} of the {len(pos)} steps with a positive raw $e_u$ the forget risk still "
               "rose over the following step, and the accumulated change can be a rise while the G-effect is "
               "positive.", "on this run the forget risk did fall over every step with a positive raw $e_u$.")
        + "\n- **The step AdamW took:** the optimiser-aware $e_u^{\\rm opt}$ is "
        + pick(opt_before > 0.5, f"negative at {pct(opt_before)} of the steps up to the peak: Adam's steps unlearn",
               f"negative at only {pct(opt_before)} of the steps up to the peak")
        + pick(len(opt_pos) > 0, f"; from step {int(opt_pos.step.iloc[0]) if len(opt_pos) else -1} on "
               "$e_u^{\\rm opt}>0$ and the forget risk falls back: re-learning in what the optimiser did.",
               ", and it does not turn positive after the peak within the run.")
        + " Fig. 6, like this claim's rule, reads the raw G-effect; Adam rescales every coordinate, so its steps "
        "can go elsewhere.\n"
        f"- **Magnitudes:** the largest $|e_u|$ of the run is {num(maxu)}, {num(maxu / ga_peak)} of GA's deepest "
        f"$|e_u|$ in the same setting ({num(ga_peak)}, notebook 03): "
        + pick(maxu < 0.1 * ga_peak, "small next to GA's dip.", "not small next to GA's dip."))


def idkdpo_run(dpo, ge_dpo0, runs) -> Reading:
    """Notebook 07: the IdkDPO run (``gl.protocol_run("idkdpo", ...)``) at θ_ref and over its steps, next to PO's."""
    d = dpo.steps[dpo.steps.status == "ok"]
    neg_opt = float((d.e_u_opt.iloc[1:] < 0).mean())
    ru = risk_path(d, "risk_u")
    w0, wT = float(d.w_mean_weight.iloc[0]), float(d.w_mean_weight.iloc[-1])
    states = {**end_states(runs.key("idkdpo"), dpo.steps), **end_states(runs.key("po"), runs.steps("po"))}
    return Reading(states=states, text=
        f"At $\\theta_{{\\rm ref}}$ IdkDPO's $e_u$ is {num(ge_dpo0.e_u)}: "
        + pick(ge_dpo0.e_u > 0, "the PO half wins at the start.", "the GA half wins from the start.")
        + f" Over the run, AdamW's steps have $e_u^{{\\rm opt}}<0$ at {pct(neg_opt)} of the steps after the first, "
        f"and the forget risk goes from {num(ru['first'])} to {num(ru['last'])} nats per token"
        + pick(ru["last"] < 0.9 * ru["peak"], f", after a peak of {num(ru['peak'])} at step {ru['k']}: it falls "
               "back at the end.", f" (its peak is {num(ru['peak'])}): no fall-back at the end.")
        + f" The mean weight $W_b$ goes from {num(w0)} to {num(wT)}: "
        + pick(wT < 0.5, "like NPO's weight it shrinks once the answer has become less likely than the refusal, "
               "relative to $\\theta_{\\rm ref}$.", "it does not collapse on this run.")
        + f" Compare PO above, whose forget risk ended at {num(risk_path(runs.steps('po'), 'risk_u')['last'])}.")


def po_summary(live, runs, ge_po, dpo) -> Reading:
    """Notebook 07: the summary bullets, from the same run and verdict as :func:`po_relearning`."""
    s, d = runs.steps("po"), dpo.steps[dpo.steps.status == "ok"]
    ru = risk_path(s, "risk_u")
    states = {**end_states(runs.key("idkdpo"), dpo.steps), **end_states(runs.key("po"), s)}
    return Reading(states=states, text=
        "- PO (Eq. 7) is fine-tuning on a refusal: its gradient has no term on the original answer, so its $e_u$ "
        "comes only through shared parameters and can have either sign.\n"
        "- Sanity identity: with the refusal replaced by the answer itself, PO *is* the forget risk and "
        "$e_u=+\\lVert\\nabla\\mathcal R_u\\rVert^2=-e_u^{\\rm GA}$.\n"
        f"- At $\\theta_o$ PO's $e_u$ is {num(ge_po.e_u)}.\n"
        f"- Fig. 6 on the tiny model: "
        + as_in(live, "po_relearning", "Fig. 6", "on this run the raw $e_u$ is negative early and positive later, "
                "with $e_r$ positive too", "on this run the pattern is **not shown** (claim `po_relearning`: "
                f"*{live.loc['po_relearning', 'verdict']}*; see the reading above).") + "\n"
        f"- Under AdamW the steps actually taken raised the forget risk from {num(ru['first'])} to {num(ru['peak'])} "
        f"(step {ru['k']})" + pick(ru["last"] < ru["peak"], f" and lowered it to {num(ru['last'])} afterwards",
                                   " and it did not fall back") + ": a G-effect is a rate at one step, not the "
        "change accumulated over the run.\n"
        "- IdkDPO = GA on the answer + PO on the refusal, with one DPO weight; at $\\theta_{\\rm ref}$ its loss is "
        "$(2/\\beta)\\ln2$, dropping OU's $2/\\beta$ divides every G-effect by exactly $2/\\beta$, and its run ended at "
        f"a forget risk of {num(risk_path(dpo.steps, 'risk_u')['last'])} nats against PO's {num(ru['last'])}.")


def rmu_target(u_norm, layers, layer) -> Reading:
    """Notebook 08: the raw target's length at c = 5 next to the hidden states' (``layers.mean_norm``)."""
    last = float(layers.mean_norm.iloc[-1])
    return Reading(
        f"So at $c=5$ the raw target has length {num(5 * u_norm)}, against hidden states of mean length "
        f"{num(float(layers.mean_norm[layer]))} at the middle layer and {num(last)} after the final norm: "
        + pick(5 * u_norm > last, "longer than the final-norm output.", "shorter than the final-norm output.")
        + " The unit target (length 5) is "
        + pick(5 < layers.mean_norm.iloc[1:].min(), "shorter than every block output, close to the origin: with it, "
               "RMU mostly *shrinks* the representation.", "not shorter than every block output here."))


def rmu_layers_at_start(by_layer, u_norm, layers) -> Reading:
    """Notebook 08: which layers have e_u < 0 at θ_o (``by_layer``: one row per layer L, columns e_u, e_r)."""
    neg = [L for L in by_layer.index if by_layer.e_u[L] < 0]
    last = float(by_layer.e_u.iloc[-1])
    return Reading(
        f"At $\\theta_o$, $e_u<0$ (the first step raises the forget risk, to first order) at layers "
        f"{', '.join(map(str, neg)) or 'none'} of {len(by_layer)}. "
        + pick(last > 0, f"At the last entry, after the final norm, $e_u$ = {num(last)} is **positive**: to first "
               "order the first RMU step makes the model *more* confident on the forget set."
               + pick(5 * u_norm > float(layers.mean_norm.iloc[-1]),
                      " A plausible reading (ours, not the paper's): the target points along the all-ones direction "
                      "and is longer than the final-norm output, so pulling $h$ towards it mostly stretches the "
                      "vector `lm_head` reads; longer logit vectors mean a sharper softmax, and a model that already "
                      "predicts the right token predicts it even more confidently. The sweep over $c$ below tests "
                      "this reading.", ""),
               f"At the last entry, after the final norm, $e_u$ = {num(last)}: the first step unlearns there too."))


def rmu_layers(live, runs) -> Reading:
    """Notebook 08, Fig. 7: the three RMU runs at each layer's own dip (claim ``rmu_layers``)."""
    out = untested(live, "rmu_layers", "Fig. 7")
    if out:
        return out
    v = values_of(live, "rmu_layers")
    dip = {w: v[f"e_u at dip {w}"] for w in ("shallow", "middle", "deep")}
    gap, rm, rs, rel = (v["middle dip / deeper of the others"], v["e_r/e_u at dip middle"], v["e_r/e_u at dip shallow"],
                        v["deep max e_u after dip / |dip|"])
    checks = {"gap": gap >= RMU_GAP, "mid": rm < 1, "sh": rs >= 1, "deep": rel >= RMU_REBOUND}
    agree(live, "rmu_layers", checks)
    miss = [t for t, c in (("the middle dip is not deep enough", "gap"), ("$|e_r|\\ge|e_u|$ at the middle dip", "mid"),
                           ("$|e_r|<|e_u|$ at the shallow dip", "sh"), ("the deepest layer does not rebound", "deep"))
            if not checks[c]]
    fin = {w: risk_path(runs.steps(f"rmu_{w}"), "risk_r") for w in dip}
    states = {k: v for w in dip for k, v in end_states(runs.key(f"rmu_{w}"), runs.steps(f"rmu_{w}")).items()}
    return Reading(states=states, text=
        f"{head(live, 'rmu_layers', 'Fig. 7')}\n\n"
        f"- **Middle layer:** at each layer's own dip $e_u$ is {num(dip['middle'])} (middle), {num(dip['shallow'])} "
        f"(shallow) and {num(dip['deep'])} (deep): the middle dip is {num(gap)}× the deeper of the other two (the rule "
        f"asks ≥ {num(RMU_GAP)}×, half the paper's gap), "
        + pick(checks["gap"], "deep enough.", "**not** enough.") + f" There $e_r/e_u$ = {num(rm)}: "
        + pick(checks["mid"], "$|e_u|>|e_r|$.", "$|e_r|\\ge|e_u|$.") + "\n"
        f"- **Shallow layer:** $e_r/e_u$ = {num(rs)} at its dip (the rule asks ≥ 1, 'at least as hard'): "
        + pick(checks["sh"], "retention is hit at least as hard as the forget set.",
               "the forget set is hit harder than retention, at that step.") + "\n"
        f"- **Deepest layer:** its largest $e_u$ after its dip is {num(rel)}×|dip| (the rule asks ≥ "
        f"{num(RMU_REBOUND)}): " + pick(checks["deep"], "$e_u$ turns clearly positive later.",
                                        "$e_u$ does not turn clearly positive after the dip"
                                        + pick(rel < 0, " (it stays negative to the end).", ".")) + "\n"
        "- " + as_in(live, "rmu_layers", "Fig. 7", "All three layer findings hold on this run",
                     "Fig. 7's layer pattern is **not shown** on this run: " + "; ".join(miss) + ".") + "\n"
        "- **Retention:** the retain risk went from " + ", ".join(f"{num(f['first'])} to {num(f['last'])} ({w})"
                                                                 for w, f in fin.items()) + ". "
        + pick(all(f["last"] > f["first"] for f in fin.values()), "Every layer raised it: RMU's forget term alone "
               "gives no retention guarantee, which is why RMU is used with a retain term (RR, notebook 09).",
               "Not every layer raised it on this run."))


def rmu_c_sweep(fits, layers, u_norm, mid, last) -> Reading:
    """Notebook 08: the affine fit e_u(c) = e_shrink − c·e_align at the middle (``mid``) and last (``last``) layers."""
    f, g = fits.loc[mid], fits.loc[last]
    e5 = f.e_shrink - 5 * f.e_align
    return Reading(
        "- **Middle layer:** "
        + pick(f.c_star > 0, f"$e_u$ changes sign at $c^*$ = {num(f.c_star)}, a raw target of length "
               f"{num(f.c_star * u_norm)} against hidden states of mean length {num(float(layers.mean_norm[mid]))} "
               "there. " + pick(e5 < 0 and f.e_shrink < 0,
                                "Below $c^*$ (Fig. 7's $c=5$ included) RMU unlearns, mostly by shrinking the "
                                "representation; above it, to first order, dragging everything along $\\mathbf u$ "
                                "makes the forget answers *more* likely on this model.",
                                f"Here $e_{{\\rm shrink}}$ = {num(f.e_shrink)} and $e_{{\\rm align}}$ = "
                                f"{num(f.e_align)}."),
               f"$e_u$ keeps one sign for every $c>0$ ($c^*$ = {num(f.c_star)} is negative).") + "\n"
        "- **Deepest layer:** "
        + pick(abs(g.e_shrink) < 0.1 * abs(5 * g.e_align),
               f"the intercept $e_{{\\rm shrink}}$ = {num(g.e_shrink)} is below a tenth of $5\\,e_{{\\rm align}}$ = "
               f"{num(5 * g.e_align)}: after RMSNorm the length of $h$ depends only on the norm weight, so shrinking "
               "has little to act on, and the sign of $e_u$ is set by the push along $\\mathbf u$ (at $c=5$ the "
               f"fit gives $e_u$ = {num(g.e_shrink - 5 * g.e_align)}: "
               + pick(g.e_shrink - 5 * g.e_align > 0, "re-learning, to first order).", "unlearning)."),
               f"$e_{{\\rm shrink}}$ = {num(g.e_shrink)}, $e_{{\\rm align}}$ = {num(g.e_align)}, $c^*$ = "
               f"{num(g.c_star)}.") + "\n"
        f"- The unit-norm convention only rescales the $c$ axis by $1/\\lVert\\mathbf u\\rVert$ = {num(1 / u_norm)}: a "
        "$c$ tuned for one convention, or for one model width, is not the same $c$ elsewhere, which is one concrete "
        "reason for the sensitivity the paper reports.")


def rmu_summary(live, layer_ids, c_star) -> Reading:
    """Notebook 08: the summary bullets (``layer_ids``: shallow / middle / deep indices; ``c_star`` at the middle)."""
    return Reading(
        "- RMU's forget term (Eq. 8) pulls `hidden_states[L]` towards $c\\,\\mathbf u$; `geffect_lite` uses the "
        "official code's form and the Hugging Face index $L$. The paper's layers come from one definition, "
        f"`gl.layers.paper_layer`: on the tiny model shallow / middle / deep = {' / '.join(map(str, layer_ids))}.\n"
        "- **Locality** is exact: blocks from $L$ on, the final norm (for $L<n$) and `lm_head` have G-effect exactly 0 "
        "at every step of every run (asserted).\n"
        "- $\\lVert\\mathbf u\\rVert\\approx\\sqrt{d/3}$, and the raw and unit targets are the same objective with $c$ "
        "rescaled (asserted).\n"
        "- Fig. 7 on the tiny model: "
        + as_in(live, "rmu_layers", "Fig. 7", "on this run the middle layer unlearns most, the shallow one hits "
                "retention at least as hard, and the deepest turns positive later",
                "on this run the layer pattern is **not shown** (claim `rmu_layers`: "
                f"*{live.loc['rmu_layers', 'verdict']}*; the reading above names the checks that fail).") + "\n"
        "- The G-effect is **affine in $c$**, $e(c)=e_{\\rm shrink}-c\\,e_{\\rm align}$ (asserted); at the middle "
        f"layer it changes sign at $c^*$ = {num(c_star)}"
        + pick(c_star > 0, ".", " (negative: no sign change for $c>0$)."))


__all__ = ["po_at_start", "po_relearning", "idkdpo_run", "po_summary", "rmu_target", "rmu_layers_at_start",
           "rmu_layers", "rmu_c_sweep", "rmu_summary", "kl_positions", "reg_at_start", "reg_terms", "gd_geometry",
           "gd_cancel", "gd_utility", "kl_best", "reg_summary"]
