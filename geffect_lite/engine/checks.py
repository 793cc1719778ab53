"""Independent routes to the G-effect, for tests and notebooks — every number the engine gives can be re-derived.

* :func:`objective_gradient` — ∇L_u by plain autograd (the engine's totals must equal ⟨∇R, ∇L_u⟩ formed this way);
* :func:`finite_difference` — [R(θ + h·d) − R(θ − h·d)] / 2h, the directional derivative without any autograd;
* :func:`second_directional` — dᵀH_R d by forward-over-forward AD: the second-order term of the Taylor picture
  R(θ − η∇L) − R(θ) = −η·e + ½η²·∇Lᵀ H ∇L + …, which tells when the first-order reading ΔR ≈ −η·e breaks;
* :func:`loop_instance_dots` — the per-instance "moved" view by one backward per instance.
"""
from __future__ import annotations

from typing import List

import torch

from .. import nll
from ..context import Context
from ..batching import select
from ..objectives import get_objective
from .dots import dot, named_params
from .forward_mode import Bound


def objective_gradient(model, objective, forget, retain=None, ref=None) -> List[torch.Tensor]:
    """∇L_u as a list of tensors aligned with :func:`~geffect_lite.engine.dots.named_params`."""
    objective = get_objective(objective)
    _, params = named_params(model)
    return list(torch.autograd.grad(objective.loss(Context(model, forget, retain, ref)), params, allow_unused=True))


def finite_difference(model, direction, batch, h: float = 1e-3, risk: str = "token_mean") -> float:
    """Central difference [R(θ + h·d) − R(θ − h·d)] / 2h along ``direction`` (the model is restored afterwards)."""
    _, params = named_params(model)

    def shift(s):
        for p, d in zip(params, direction):
            if d is not None:
                p.add_(d, alpha=s)
    with torch.no_grad():
        shift(h)
        rp = float(nll.risk(model, batch, risk))
        shift(-2 * h)
        rm = float(nll.risk(model, batch, risk))
        shift(h)
    return (rp - rm) / (2 * h)


def second_directional(model, direction, batch, risk: str = "token_mean") -> float:
    """dᵀ H_R d, the second directional derivative of R along ``direction``, by forward-over-forward AD."""
    names, params = named_params(model)
    tangent = tuple(torch.zeros_like(p) if d is None else d.detach() for p, d in zip(params, direction))

    def first(*ps):
        def f(*qs):
            return nll.risk_from(nll.forward(Bound(model, dict(zip(names, qs))), batch), risk)
        return torch.func.jvp(f, ps, tangent)[1]
    return float(torch.func.jvp(first, tuple(p.detach() for p in params), tangent)[1])


def loop_instance_dots(model, batch, direction, risk: str = "token_mean") -> List[float]:
    """The per-instance moved view by one backward per instance: ∇R(instance b)ᵀ·direction."""
    _, params = named_params(model)
    out = []
    for i in range(batch["input_ids"].shape[0]):
        g = torch.autograd.grad(nll.risk(model, select(batch, [i]), risk), params, allow_unused=True)
        out.append(float(sum(dot(a, d) for a, d in zip(g, direction) if a is not None and d is not None)))
    return out


__all__ = ["objective_gradient", "finite_difference", "second_directional", "loop_instance_dots"]
