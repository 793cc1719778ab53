"""Claims that are exact identities or first-order statements — Definition 1, its layer split, NPO at θ_o (Eqs. 3–5)
and the Taylor reading ΔR ≈ −η·e, for one step and accumulated over a run."""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import nll, setting_data
from ..context import Context
from ..engine import geffect
from ..engine.dots import named_params
from ..objectives import get_objective
from .accumulated import totals as accumulated      # Σ_t of the per-step predictions and changes
from .claims import claim, result


@claim("ga_identity", "Eq. 1 with Definition 1: GA's e_u = −‖∇R(D_u)‖² ≤ 0 at every step (same batch and "
       "reduction)", "identity", runs=("ga",), group="check")
def ga_identity(runs) -> dict:
    def check(e_u, sq):
        return abs(e_u + sq) / max(sq, 1e-30)
    _, params = named_params(runs.model)
    g = torch.autograd.grad(nll.risk(runs.model, runs.forget), params, allow_unused=True)   # independent route
    sq0 = float(sum((x.double() ** 2).sum() for x in g if x is not None))
    e0 = geffect(runs.model, "ga", runs.forget, runs.retain, groups=False).e_u
    fin = runs.final("ga")
    r0, rT = check(e0, sq0), check(fin["e_u"], fin["grad_sq"])
    worst = float(runs.steps("ga").e_u.max())
    return result(max(r0, rT) <= 1e-5 and worst <= 0,
                  {"e_u(θ_o)": e0, "−‖∇R_u‖²(θ_o)": -sq0, "rel.err(θ_o)": r0, "rel.err(θ_T)": rT, "max_t e_u": worst},
                  "|e_u + ‖∇R_u‖²| ≤ 1e-5·‖∇R_u‖² at θ_o and after the GA run, and e_u ≤ 0 at every step",
                  f"rel. errors {r0:.2g} / {rT:.2g}, max e_u {worst:.3g}")


@claim("layer_additivity", "Figs. 2–3: the layer-group G-effects sum exactly to the total", "identity",
       runs=("ga", "ga+kl"), group="check")
def layer_additivity(runs) -> dict:
    worst, n = 0.0, 0
    for key in ("ga", "ga+kl"):
        tr = runs[key]
        tot = tr.terms.set_index(["step", "term", "risk_set"]).value
        for scheme in ("paper", "block"):
            g = tr.groups[tr.groups.scheme == scheme]
            s = g.groupby(["step", "term", "risk_set"]).value.sum()
            a = g.assign(absv=g.value.abs()).groupby(["step", "term", "risk_set"]).absv.sum()
            worst = max(worst, float(((s - tot.reindex(s.index)).abs() / (a + 1e-300)).max()))
            n += len(s)
    return result(worst <= 1e-6, {"max rel.err": worst, "checks": n, "runs": "ga, ga+kl"},
                  "|Σ_groups e − e_total| ≤ 1e-6·Σ|e_group| for every step, term, risk set and grouping",
                  f"worst relative error {worst:.2g}")


@claim("npo_at_theta_o", "Eqs. 3–4, Fig. 5a: at θ_o NPO's weights are 1, L = (2/β)ln2, and its gradient is the "
       "sequence-summed GA gradient (e_u^NPO = (N/B)·e_u^GA)", "identity", group="check")
def npo_at_theta_o(runs) -> dict:
    beta = 1.0
    obj = get_objective("npo", beta=beta)
    ref = setting_data.reference(runs.model, obj, runs.base, runs.forget, runs.retain)
    with torch.no_grad():
        w = obj.seq_weight(Context(runs.model, runs.forget, runs.retain, ref)).double()
        loss = float(obj.loss(Context(runs.model, runs.forget, runs.retain, ref)))
    e_npo = geffect(runs.model, obj, runs.forget, runs.retain, ref=ref, groups=False).e_u
    e_ga = geffect(runs.model, "ga", runs.forget, runs.retain, groups=False).e_u
    mask = runs.forget["labels"][:, 1:] != -100
    NB = float(mask.sum()) / mask.shape[0]
    w_err = float((w - 1).abs().max())
    l_err = abs(loss - 2 / beta * math.log(2)) / (2 / beta * math.log(2))
    e_err = abs(e_npo - NB * e_ga) / abs(NB * e_ga)
    return result(w_err <= 1e-6 and l_err <= 1e-6 and e_err <= 1e-5,
                  {"max|w−1|": w_err, "L": loss, "(2/β)ln2": 2 / beta * math.log(2), "e_u^NPO": e_npo,
                   "(N/B)e_u^GA": NB * e_ga, "rel.err": e_err},
                  "at θ_o (β = 1): max|w − 1| ≤ 1e-6, |L − (2/β)ln2| ≤ 1e-6 relative, e_u^NPO = (N/B)·e_u^GA to 1e-5",
                  f"weight error {w_err:.2g}, loss error {l_err:.2g}, G-effect error {e_err:.2g}")


@claim("first_order", "Definition 1's reading (inferred, Taylor): for a small plain-SGD step, ΔR ≈ −η·e",
       "identity", runs=("ga_sgd_small",), group="check")
def first_order(runs) -> dict:
    s = runs.steps("ga_sgd_small").dropna(subset=["real_du"])
    ru = float(((s.real_du - s.pred_du).abs() / s.pred_du.abs()).max())
    ok = bool(ru <= 0.1 and (np.sign(s.real_du) == np.sign(s.pred_du)).all())
    eta = float(s.lr.iloc[0])
    return result(ok, {"η": eta, "steps": len(s), "pred ΔR_u": float(s.pred_du.iloc[0]),
                       "real ΔR_u": float(s.real_du.iloc[0]), "max rel.err (u)": ru,
                       "pred ΔR_r": float(s.pred_dr.iloc[0]), "real ΔR_r": float(s.real_dr.iloc[0])},
                  f"GA with plain SGD at 1/256 of the theory rate (η = {eta:.3g}): |ΔR_u − (−η e_u)| ≤ 10 % of "
                  "|η e_u| at every step, with the same sign", f"worst relative error {ru:.2g}")


@claim("accumulated", "the G-effect as a stand-in for the performance change (inferred, Taylor): summed over a "
       "run, −Σ_t η_t·e_t tracks the realised change R(θ_T) − R(θ_0) while the steps are small", "dynamics",
       runs=("ga_sgd", "npo_b1_sgd"), group="extension")
def accumulated_tracks(runs) -> dict:
    nums, ok, seen = {}, True, []
    V = runs.model.config.vocab_size
    for key in ("ga_sgd", "npo_b1_sgd"):
        s = runs.steps(key).dropna(subset=["real_du"])
        end = s.risk_u + s.real_du                         # the forget risk after each step
        lnV = math.log(V) * runs.tokens_per_unit(key)      # ln|V| per token, in the run's units
        quiet = s[(s.risk_u <= lnV) & (end <= lnV)]        # steps that stay below a uniform guess
        a = accumulated(quiet) if len(quiet) else None
        if a is None:
            return result(None, {}, f"{key}: the forget risk starts above ln|V|: no quiet phase to accumulate over")
        rel = abs(a["raw_u"] - a["real_u"]) / max(abs(a["real_u"]), 1e-30)
        whole = accumulated(s)
        nums.update({f"{key} Σ−ηe_u (quiet)": a["raw_u"], f"{key} realised ΔR_u (quiet)": a["real_u"],
                     f"{key} rel.err (quiet)": rel,
                     f"{key} Σ−ηe_u / realised (whole run)": whole["raw_u"] / max(abs(whole["real_u"]), 1e-30)})
        if rel > 0.25:
            ok = False
            seen.append(f"{key}: off by {rel:.0%} before ln|V|")
    return result(ok, nums, "plain SGD (theory setting): over the steps before the forget risk exceeds ln|V|, "
                            "|Σ_t −η e_u,t − (R_u(θ_t) − R_u(θ_0))| ≤ 25 % of the realised change, for GA and "
                            "NPO (β = 1); the whole-run ratio shows where it breaks", "; ".join(seen))


__all__ = ["ga_identity", "layer_additivity", "npo_at_theta_o", "first_order", "accumulated", "accumulated_tracks"]
