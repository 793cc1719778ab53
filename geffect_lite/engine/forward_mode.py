"""Forward-mode AD along a direction in parameter space — one pass gives every token's directional derivative.

The G-effect of a direction d on a per-token quantity f_bt is ∇f_btᵀd = d/dε f_bt(θ + εd) at ε = 0: a jvp. One
``torch.func.jvp`` therefore gives the "moved" view of *every* instance and token at once (how much ∇L moves each
token's risk), at the cost of about three forward passes; the backward alternative needs one pass per token. Several
tangents can share the primal pass through ``torch.func.vmap`` (small models only: the tangents are stacked).
"""
from __future__ import annotations

import warnings
from typing import Callable, List, Sequence

import torch

#: stack the tangents for one vmap'd jvp while the stacked copy stays under this size (small models, where sharing
#: the primal pass saves ~1/3 of the time); beyond it, one jvp per tangent (for SmolLM2 the stack would add
#: 3 × 513 MB to save ~10 %).
VMAP_MAX_BYTES = 256 * 2 ** 20


class Bound(torch.nn.Module):
    """The model called with substituted parameters (for torch.func)."""

    def __init__(self, model, params: dict):
        super().__init__()
        object.__setattr__(self, "_m", model)
        object.__setattr__(self, "_p", params)
        self.config = getattr(model, "config", None)

    def parameters(self, recurse=True):
        return self._m.parameters(recurse)

    def forward(self, **kw):
        return torch.func.functional_call(self._m, self._p, (), kw, strict=False)


def _tangent(params, direction):
    return tuple(torch.zeros_like(p) if t is None else t.detach() for p, t in zip(params, direction))


def jvp_of(model, names, params, direction, fn: Callable):
    """(fn(θ), d/dε fn(θ + ε·direction)); ``fn`` takes a model-like callable."""
    def f(*ps):
        return fn(Bound(model, dict(zip(names, ps))))
    return torch.func.jvp(f, tuple(p.detach() for p in params), _tangent(params, direction))


def jvp_many(model, names, params, directions: Sequence, fn: Callable) -> List:
    """[d/dε fn(θ + ε·t) for t in directions]: one vmap'd jvp sharing the primal pass when the stacked tangents fit
    in :data:`VMAP_MAX_BYTES` and vmap supports every op of the model, else one jvp per direction."""
    if len(directions) == 1:
        return [jvp_of(model, names, params, directions[0], fn)[1]]
    nbytes = sum(p.numel() * p.element_size() for p in params) * len(directions)
    if nbytes <= VMAP_MAX_BYTES:
        primals = tuple(p.detach() for p in params)
        stacked = tuple(torch.stack(ts) for ts in zip(*(_tangent(params, d) for d in directions)))

        def f(*ps):
            return fn(Bound(model, dict(zip(names, ps))))

        def one(*tang):
            return torch.func.jvp(f, primals, tang)[1]
        try:
            out = torch.func.vmap(one)(*stacked)
        except Exception as e:   # an op without a batching rule: fall back to one jvp per tangent
            if is_forward_ad_error(e):
                raise
            warnings.warn(f"vmap over tangents failed ({type(e).__name__}: {str(e)[:120]}); one jvp per tangent.")
        else:
            return [tuple(o[k] for o in out) if isinstance(out, tuple) else out[k] for k in range(len(directions))]
    return [jvp_of(model, names, params, d, fn)[1] for d in directions]


def is_forward_ad_error(e: Exception) -> bool:
    """Is this the error of a model that does not support forward-mode AD (e.g. SDPA attention)?"""
    s = f"{type(e).__name__}: {e}".lower()
    return isinstance(e, (NotImplementedError, RuntimeError)) and any(w in s for w in ("forward", "jvp", "dual"))


__all__ = ["Bound", "jvp_of", "jvp_many", "is_forward_ad_error", "VMAP_MAX_BYTES"]
