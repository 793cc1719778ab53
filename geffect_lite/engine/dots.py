"""Dot products of gradients, tensor by tensor — the arithmetic under Definition 1.

The G-effect e = ∇R(D;θ)ᵀ∇L_u(D_u;θ) is a sum over parameter tensors, e = Σ_i ⟨∇_{θ_i}R, ∇_{θ_i}L⟩, and the engine
keeps those per-tensor terms (a matrix D[direction, tensor]) so that any grouping of the tensors — blocks, the
paper's layer groups — is an exact sub-sum. This module holds the *formed-gradient* route: a risk is backpropagated
and each parameter's gradient is dotted with the directions (∇L, its terms, the optimiser's step) the moment it is
accumulated, then freed — the whole risk gradient never exists at once. ``ghost.py`` is the other route.
"""
from __future__ import annotations

from typing import Callable, List, Sequence, Tuple, Union

import torch

_DOT_K = 256          # fp32 partial sums over 256 products (error ≈ 1e-13 of Σ|a·b|), then fp64
_DOT_ROWS = 4096      # rows of 256 per slab: a 4 MB temporary whatever the tensor's size

Direction = Sequence[Union[torch.Tensor, None, Callable[[], torch.Tensor]]]   # one entry per parameter tensor


def named_params(model) -> Tuple[List[str], List[torch.Tensor]]:
    """(names, params) of the trainable parameters, tied tensors once, in ``named_parameters`` order."""
    pairs = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [n for n, _ in pairs], [p for _, p in pairs]


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨a, b⟩ as an fp64 scalar, accurate to ~1e-12 of Σ|a_i·b_i| and ~8× faster than ``(a*b).sum(float64)``:
    fp64 tensors take one ``torch.dot``; fp32 products are summed in fp32 over rows of 256 and the row sums in fp64,
    in slabs of 4096 rows (a 113 MB embedding gradient never gets a full-size product copy)."""
    a, b = a.reshape(-1), b.reshape(-1)
    if a.dtype == torch.float64:
        return torch.dot(a, b.to(a.dtype))
    n = a.numel()
    m = n // _DOT_K
    out = torch.zeros((), dtype=torch.float64, device=a.device)
    if m:
        A, B = a[:m * _DOT_K].view(m, _DOT_K), b[:m * _DOT_K].view(m, _DOT_K)
        for i in range(0, m, _DOT_ROWS):
            out += (A[i:i + _DOT_ROWS] * B[i:i + _DOT_ROWS]).sum(1).sum(dtype=torch.float64)
    if m * _DOT_K < n:
        out += (a[m * _DOT_K:] * b[m * _DOT_K:]).sum(dtype=torch.float64)
    return out


def resolve(d):
    """A direction entry: a tensor, None (zero) or a callable forming the tensor on demand (a lazy Δθ)."""
    return d() if callable(d) else d


def dots_by_backward(loss: torch.Tensor, params: Sequence[torch.Tensor], directions: Sequence[Direction],
                     retain_graph: bool = False) -> torch.Tensor:
    """Backpropagate ``loss``; return D[k, i] = ⟨∂loss/∂θ_i, directions[k][i]⟩ (fp64, on the CPU).

    A post-accumulate-grad hook dots each parameter's gradient with every direction and frees it at once.
    """
    out = torch.zeros(len(directions), len(params), dtype=torch.float64)
    idx = {id(p): i for i, p in enumerate(params)}
    old = [p.grad for p in params]
    for p in params:
        p.grad = None

    def hook(p):
        i = idx[id(p)]
        for k, d in enumerate(directions):
            di = resolve(d[i])
            if di is not None:
                out[k, i] = float(dot(p.grad, di))   # a Python float: the table lives on the CPU whatever the device
        p.grad = None

    handles = [p.register_post_accumulate_grad_hook(hook) for p in params]
    try:
        loss.backward(retain_graph=retain_graph)
    finally:
        for h in handles:
            h.remove()
        for p, g in zip(params, old):
            p.grad = g
    return out


def dots_of_grads(grads: Sequence, directions: Sequence[Direction]) -> torch.Tensor:
    """D[k, i] = ⟨grads[i], directions[k][i]⟩ for an already formed gradient (None entries count as 0)."""
    out = torch.zeros(len(directions), len(grads), dtype=torch.float64)
    for k, d in enumerate(directions):
        for i, g in enumerate(grads):
            di = resolve(d[i]) if g is not None else None
            if di is not None:
                out[k, i] = float(dot(g, di))
    return out


def add(*xs):
    """The sum of the non-None arguments (None if all are None)."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


__all__ = ["named_params", "dot", "resolve", "dots_by_backward", "dots_of_grads", "add", "Direction"]
