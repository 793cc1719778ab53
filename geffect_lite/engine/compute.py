"""``gl.geffect``: the G-effects of one objective at the model's current θ (Definition 1), as tidy tables."""
from __future__ import annotations

from typing import Optional

from .. import nll
from .dots import named_params
from .result import GEffect, groups_frame, totals_frame
from .routes import DOTS, measure
from .validate import check_choice, resolve_objective, user_objective   # noqa: F401  (re-exported: old home)
from .views import METHODS, instance_views


def geffect(model, objective, forget: dict, retain: Optional[dict] = None, ref=None, *, risk: str = "token_mean",
            groups: bool = True, instances: bool = False, tokens: bool = False, split_terms: bool = True,
            method: str = "auto", tokenizer=None, schemes=("block", "paper"), dots: str = "auto",
            chunk_tokens: Optional[int] = None) -> GEffect:
    """G-effects of ``objective`` at the model's current parameters.

    Args:
        model: a causal LM (float32 or float64), in eval mode during the computation.
        objective: a name (``"npo"``, ``"wga+kl"`` …) or an :class:`~geffect_lite.objectives.Objective`.
        forget, retain: batches from :func:`geffect_lite.batching.collate` (forget with ``idk=True`` for PO/IdkDPO).
        ref: θ_ref (:func:`geffect_lite.reference_for`) for objectives that need it.
        risk: ``"token_mean"`` (the official code) or ``"seq_sum"`` (the paper's equations).
        groups: per-block and paper-group tables. instances / tokens: the per-instance / per-token views ("moved"
            and "contribution"). split_terms: also report each additive term of the objective (Fig. 8).
        method: ``"jvp"`` (forward mode), ``"loop"`` (one backward per token), ``"rows"`` (instances without
            tokens: one backward and a matmul per layer) or ``"auto"`` (rows when exact and no tokens are asked,
            else jvp, else loop).
        tokenizer: labels the token table. dots: ``"ghost"``, ``"formed"`` or ``"auto"`` (per tensor, the
            cheaper; every tensor it can take on the Gram route when the instance views are split from its
            products; formed when the per-token views need the gradients as tangents). chunk_tokens: see
            :func:`~geffect_lite.engine.routes.measure`.
    """
    check_choice("risk reduction", risk, nll.RISK_REDUCTIONS)
    check_choice("method", method, METHODS)
    check_choice("dots route", dots, DOTS)
    if dots == "ghost" and (instances or tokens):
        raise ValueError("the per-instance/per-token views need ∇L as a tangent: use dots='formed' or 'auto'")
    if retain is None:
        raise ValueError("geffect() needs a retain batch for the retaining G-effect e_r "
                         "(e.g. gl.batches(data, tok, 'forget05') returns both).")
    objective = resolve_objective(objective)
    names, _ = named_params(model)
    views = instances or tokens
    was_training = model.training
    model.eval()
    try:
        per_row = instances and not tokens and method in ("auto", "rows") and not user_objective(objective)
        m = measure(model, objective, forget, retain, ref, risk=risk, split_terms=split_terms, dots=dots,
                    keep_grad=views, keep_risk_grads=views and not per_row, chunk_tokens=chunk_tokens,
                    keep_rows=per_row, per_row=per_row)
        res = GEffect(totals=totals_frame(m.D, m.labels), risks=m.risks,
                      info=dict(objective=objective.name, risk=risk, hparams=dict(objective.hparams), loss=m.loss,
                                method=None, dots=m.route))
        if groups:
            res.groups = groups_frame(model, names, m.D, m.labels, schemes)
        if views:
            inst, tok = instance_views(model, objective, forget, retain, ref, m.grad, m.risk_grads, risk=risk,
                                       method=method, tokenizer=tokenizer, tokens=tokens,
                                       capture=m.capture, rows=m.rows)
            res.info["method"] = inst.attrs["method"]
            res.instances, res.tokens = (inst if instances else None), (tok if tokens else None)
    finally:
        model.train(was_training)
    return res


__all__ = ["geffect", "resolve_objective", "check_choice"]
