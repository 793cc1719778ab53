"""Definition 1 of Wang et al. 2025 (arXiv 2502.19301), as plain autograd — read it beside the paper.

    e = ∇R(D;θ)ᵀ ∇L_u(D_u;θ)                                                        (Definition 1)

L_u is the unlearning objective on the forget batch D_u (GA's is Eq. 1, WGA Eq. 2, NPO Eq. 3, TNPO Eq. 6, PO
Eq. 7, RMU Eq. 8), R(D;θ) the risk — the NLL of the answers — on a risk set D: the forget set (e_u, wanted ≪ 0:
one step θ ← θ − η∇L_u raises the forget risk by ≈ −η·e_u) or the retain set (e_r, wanted ≥ 0). θ is a list of
parameter tensors, so the dot product is a sum over tensors, e = Σ_i ⟨∇_{θ_i}R, ∇_{θ_i}L_u⟩, and a layer group's G-effect (Figs. 3–8's
shallow / middle / deep layers) is the sub-sum over that group's tensors.

:func:`definition_1` is this, line for line: two formed gradients and their dot product. The engine's
``routes.measure`` gives the same numbers (totals and groups; ``tests/test_definition.py`` holds them equal) by
cheaper routes; use this one to see what is computed, that one to compute it.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch

from .. import nll
from ..context import Context
from ..layers import group_names
from .dots import named_params
from .validate import resolve_objective


def definition_1(model, objective, forget: dict, retain: dict, ref=None, groups: Union[None, str, dict] = None,
                 risk: str = "token_mean") -> Tuple[Dict[str, float], Optional[Dict[str, Dict[str, float]]]]:
    """Definition 1 at the model's current θ: ({"forget": e_u, "retain": e_r}, group sums or None).

    ``groups``: None, a scheme of :func:`geffect_lite.layers.group_names` ("paper", "block", "official") or a
    dict {parameter name: group}. ``ref``: θ_ref for the objectives that need it. ``risk``: "token_mean" or
    "seq_sum" (``geffect_lite.nll``).
    """
    objective = resolve_objective(objective)
    names, theta = named_params(model)                   # θ = [θ_1 … θ_n], the trainable tensors (tied ones once)
    loss = objective.loss(Context(model, forget, retain, ref))                     # L_u(D_u;θ), a scalar
    grad_L = torch.autograd.grad(loss, theta, allow_unused=True)                   # ∇L_u: one tensor per θ_i
    group_of = group_names(model, groups) if isinstance(groups, str) else groups   # name → group, or None
    totals, sums = {}, ({} if group_of else None)
    for risk_set, D in (("forget", forget), ("retain", retain)):
        grad_R = torch.autograd.grad(nll.risk(model, D, risk), theta, allow_unused=True)   # ∇R(D;θ), R = answer NLL
        e_i = [0.0 if a is None or b is None else float((a.double() * b.double()).sum())   # ⟨∇_{θ_i}R, ∇_{θ_i}L_u⟩
               for a, b in zip(grad_R, grad_L)]
        totals[risk_set] = sum(e_i)                                                # e = Σ_i e_i  (Definition 1)
        if group_of:                                                               # a group: Σ over its θ_i
            sums[risk_set] = {}
            for name, v in zip(names, e_i):
                sums[risk_set][group_of[name]] = sums[risk_set].get(group_of[name], 0.0) + v
    return totals, sums


__all__ = ["definition_1"]
