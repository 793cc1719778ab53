"""Gradient dot products without the gradients ("ghost" dots) — how the total and group G-effects stay cheap.

A weight used as y = x·Wᵀ (``nn.Linear``, GPT-2's ``Conv1D``) has the gradient ∇_W A = Σ_t δ^A_t x_tᵀ, where
δ^A_t = ∂A/∂y_t is the gradient at the layer's output for position t. So, for two scalars A (a risk) and B (the
objective), the per-tensor term of the G-effect (paper §2.5, e = Σ_ℓ ∇_{θ_ℓ}Aᵀ∇_{θ_ℓ}B) is

    ⟨∇_W A, ∇_W B⟩ = Σ_{t,s} (δ^A_t · δ^B_s) (x_t · x_s)          — two N×N Gram matrices, no gradient.

An embedding row lookup y_s = W[id_s] has ∇_W B = Σ_s e_{id_s} ε^B_sᵀ, so embedding/embedding pairs use
[id_t = id_s]·(ε^A_t·ε^B_s) and a tied lm_head/embedding pair uses δ^A_t[id_s]·(x_t·ε^B_s). One backward pass per
scalar then only has to produce the layer-output gradients (the cheap half of a backward: no weight gradients), and
neither the objective gradient nor the risk gradients are ever formed — peak memory stays near the model plus its
activations. This pays when the number of positions N is small next to the layer width (cost N²·(in+out) against
N·in·out); each tensor is routed to the cheaper of the two (ghost or formed gradient), and every tensor that
is used in any other way (a bias, a norm weight, a weight used outside its module) gets a formed gradient, so the result is
exact for any architecture. ``tests/test_geffect.py`` checks it against plain autograd on six architectures.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

KINDS = ("linear", "conv1d", "embedding")


def _module_kind(m) -> Optional[str]:
    """The layer's kind if its forward is exactly the stock one (a subclass that rescales its output, e.g. Gemma's
    scaled embedding, changes the gradient: such tensors are formed instead)."""
    f = type(m).forward
    if isinstance(m, torch.nn.Linear) and f is torch.nn.Linear.forward:
        return "linear"
    if isinstance(m, torch.nn.Embedding) and f is torch.nn.Embedding.forward:
        if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
            return None
        return "embedding"
    if type(m).__name__ == "Conv1D" and type(m).__module__ == "transformers.pytorch_utils":   # GPT-2's layers
        return "conv1d"
    return None


class Record:
    """One call of a hooked module: which parameter, its input (x or ids) and its output y (in the graph)."""
    __slots__ = ("index", "kind", "inp", "out", "pad")

    def __init__(self, index, kind, inp, out, pad=None):
        self.index, self.kind, self.inp, self.out, self.pad = index, kind, inp, out, pad

    @property
    def n(self) -> int:
        return self.inp.shape[0]


class Recorder:
    """Context manager: while active, every call of a Linear / Conv1D / Embedding module whose weight is one of
    ``params`` is recorded (input, output) — only when the output is part of an autograd graph."""

    def __init__(self, model, params: Sequence[torch.Tensor]):
        self.model = model
        self.index = {id(p): i for i, p in enumerate(params)}
        self.records: List[Record] = []
        self._handles = []

    def __enter__(self):
        for m in self.model.modules():
            kind = _module_kind(m)
            w = getattr(m, "weight", None)
            if kind is None or w is None or id(w) not in self.index:
                continue
            self._handles.append(m.register_forward_hook(self._hook(kind, self.index[id(w)])))
        return self

    def _hook(self, kind, i):
        def hook(mod, args, out):
            if not (torch.is_grad_enabled() and isinstance(out, torch.Tensor) and out.requires_grad) or not args:
                return
            x = args[0]
            if kind == "embedding":
                self.records.append(Record(i, kind, x.reshape(-1), out, getattr(mod, "padding_idx", None)))
            else:
                self.records.append(Record(i, kind, x.detach().reshape(-1, x.shape[-1]), out))
        return hook

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []
        return False


def count_uses(roots: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> Dict[int, int]:
    """How many graph edges lead into each parameter's gradient accumulator, over the graphs of ``roots``."""
    want = {id(p): i for i, p in enumerate(params)}
    seen, stack, cnt = set(), [r.grad_fn for r in roots if r.grad_fn is not None], {}
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            if type(nxt).__name__ == "AccumulateGrad":
                i = want.get(id(nxt.variable))
                if i is not None:
                    cnt[i] = cnt.get(i, 0) + 1
            elif nxt not in seen:
                stack.append(nxt)
    return cnt


def plan(records: List[Record], params, uses: Dict[int, int], n_dirs: int, force: bool = False
         ) -> Dict[int, List[Record]]:
    """Which parameters to treat by ghost dots: those whose every use is a recorded call and for which the Gram
    route is cheaper than forming the gradients (every eligible one if ``force``). Returns {index: its records}."""
    by_param: Dict[int, List[Record]] = {}
    for r in records:
        by_param.setdefault(r.index, []).append(r)
    chosen = {}
    for i, recs in by_param.items():
        if uses.get(i, 0) != len(recs):        # used outside the hooked modules (or not at all): form it
            continue
        kinds = {r.kind for r in recs}
        if "conv1d" in kinds and len(kinds) > 1:
            continue
        p = params[i]
        n = sum(r.n for r in recs)
        width = sum(p.shape) if p.dim() == 2 else p.numel()
        ghost_cost = (1 + n_dirs) * n * n * width           # Gram matrices for every (risk, direction) pair
        dense_cost = (1 + n_dirs) * n * p.numel() + 2 * p.numel()   # forming the gradients, plus the dots
        if force or ghost_cost < dense_cost:
            chosen[i] = recs
    return chosen


def _u_gram(a: Record, da: torch.Tensor, b: Record, db: torch.Tensor) -> torch.Tensor:
    """Gram of the 'output side' factors: δ·δ' (dense), δ[id'] (dense vs one-hot) or [id = id'] (one-hot)."""
    if a.kind != "embedding" and b.kind != "embedding":
        return da @ db.T
    if a.kind == "embedding" and b.kind == "embedding":
        return (a.inp[:, None] == b.inp[None, :]).to(da.dtype)
    if a.kind == "embedding":            # (ids_a, dense δ_b): δ_b[s, id_a[t]] → [N_a, N_b]
        return db[:, a.inp].T
    return da[:, b.inp]                  # (dense δ_a, ids_b): δ_a[t, id_b[s]]


def _v(rec: Record, d: torch.Tensor) -> torch.Tensor:
    """The 'input side' factor: x for Linear/Conv1D, the output gradient ε for an embedding."""
    return d if rec.kind == "embedding" else rec.inp


def _flat_grad(rec: Record, g: torch.Tensor) -> torch.Tensor:
    return g.reshape(-1, g.shape[-1])


def pair_dot(a: Record, da: torch.Tensor, b: Record, db: torch.Tensor) -> torch.Tensor:
    """⟨∇_W from call a with output gradient da, ∇_W from call b with output gradient db⟩ (fp64 scalar)."""
    da, db = _flat_grad(a, da), _flat_grad(b, db)
    U = _u_gram(a, da, b, db)
    V = _v(a, da) @ _v(b, db).T
    if a.kind == "embedding" and a.pad is not None:        # the padding row gets no gradient
        U = U * (a.inp != a.pad).to(U.dtype)[:, None]
    if b.kind == "embedding" and b.pad is not None:
        U = U * (b.inp != b.pad).to(U.dtype)[None, :]
    return (U * V).sum(dtype=torch.float64)


def output_grads(scalar: torch.Tensor, recs: List[Record], dense: List[torch.Tensor], retain_graph: bool):
    """One backward pass of ``scalar``: gradients at the recorded outputs (None where unused) and the gradients of
    the ``dense`` parameters."""
    live = [j for j, r in enumerate(recs) if r.out is not None]   # released outputs get no gradient
    inputs = [recs[j].out for j in live] + list(dense)
    if not inputs:
        return [None] * len(recs), []
    gs = torch.autograd.grad(scalar, inputs, retain_graph=retain_graph, allow_unused=True)
    outs = [None] * len(recs)
    for j, g in zip(live, gs[: len(live)]):
        outs[j] = g
    return outs, list(gs[len(live):])



class GhostDots:
    """Per-tensor dot products of several risks with the gradients of some directions (the objective, its terms),
    by ghost dots for the tensors in ``records_by_param`` and formed gradients for the others.

    ``GhostDots(records_by_param, params, directions)`` runs one backward per direction (graphs retained);
    ``.against(risk)`` runs one backward of ``risk`` and returns D[k, i] = ⟨∇_{θ_i} risk, ∇_{θ_i} direction_k⟩.
    """

    def __init__(self, records_by_param: Dict[int, List[Record]], params, directions: List[torch.Tensor]):
        self.by_param = records_by_param
        self.params = params
        self.recs = [r for rs in records_by_param.values() for r in rs]
        self.pos = {id(r): j for j, r in enumerate(self.recs)}
        self.dense = [i for i in range(len(params)) if i not in records_by_param]
        self._dense_p = [params[i] for i in self.dense]
        self.per_dir = [output_grads(d, self.recs, self._dense_p, retain_graph=True) for d in directions]

    def finite(self) -> bool:
        return all(g is None or bool(torch.isfinite(g).all()) for o, d in self.per_dir for g in (*o, *d))

    def against(self, risk: torch.Tensor, retain_graph: bool = False, extra: Sequence[Record] = ()) -> torch.Tensor:
        """D[k, i] for one risk. ``extra``: records of a forward the directions never saw (a chunk of the retain
        batch), used for this risk only and not kept."""
        from .geffect import _dot
        extra = [r for r in extra if r.index in self.by_param]
        recs = self.recs + extra
        r_out, r_dense = output_grads(risk, recs, self._dense_p, retain_graph=retain_graph)
        for r, g in zip(recs, r_out):   # this forward's outputs are done with: drop them (activation memory)
            if g is not None:
                r.out = None
        r_of = {id(r): g for r, g in zip(recs, r_out)}
        mine = {}
        for r in extra:
            mine.setdefault(r.index, []).append(r)
        out = torch.zeros(len(self.per_dir), len(self.params), dtype=torch.float64)
        for k, (d_out, d_dense) in enumerate(self.per_dir):
            for i, rs in self.by_param.items():
                acc = torch.zeros((), dtype=torch.float64, device=self.params[i].device)
                for a in rs + mine.get(i, []):
                    da = r_of[id(a)]
                    if da is None:
                        continue
                    for b in rs:
                        db = d_out[self.pos[id(b)]]
                        if db is not None:
                            acc += pair_dot(a, da, b, db)
                out[k, i] = float(acc)
            for j, i in enumerate(self.dense):
                if r_dense[j] is not None and d_dense[j] is not None:
                    out[k, i] = float(_dot(r_dense[j], d_dense[j]))
        return out


def uses_match(records: Sequence[Record], routed, uses: Dict[int, int]) -> bool:
    """Every routed tensor is used in this forward exactly as often as it was recorded (else: form gradients)."""
    n: Dict[int, int] = {}
    for r in records:
        n[r.index] = n.get(r.index, 0) + 1
    return all(uses.get(i, 0) == n.get(i, 0) for i in routed)
