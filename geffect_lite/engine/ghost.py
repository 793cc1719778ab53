"""Gradient dot products without forming the gradients ("ghost" dots) — how totals and groups stay cheap.

**The trick and its source.** A weight used as y = x·Wᵀ (``nn.Linear``; GPT-2's ``Conv1D`` is the transpose) has
∇_W A = Σ_t δ^A_t x_tᵀ for any scalar A, where δ^A_t = ∂A/∂y_t is the gradient at the layer's output at position t.
Goodfellow (2015, arXiv 1510.01799) used this to get *per-example gradient norms* from x and δ alone, and "ghost
clipping" (Li et al. 2022, arXiv 2110.05679) extended it to sequences: ‖∇_W‖² = Σ_{t,s}(δ_t·δ_s)(x_t·x_s), two
N×N Gram matrices, no gradient ever formed. Differentially private training needs it to clip each example.

**How it differs here.** We need the inner product of the gradients of *two different* scalars — a risk A and the
objective B (Definition 1, split per tensor) — over the whole batch, not a norm per example:

    ⟨∇_W A, ∇_W B⟩ = Σ_{t,s} (δ^A_t · δ^B_s)(x_t · x_s).

An embedding lookup y_s = W[id_s] has ∇_W B = Σ_s e_{id_s} δ^B_sᵀ, so embedding/embedding pairs use
[id_t = id_s]·(δ^A_t·δ^B_s), and a tied lm_head/embedding pair uses δ^A_t[id_s]·(x_t·δ^B_s). One backward pass per
scalar then only produces the layer-output gradients (the cheap half of a backward), and neither ∇R nor ∇L is ever
formed. This pays when the number of positions N is small next to the layer width (cost N²·(in+out) against
N·in·out); :func:`plan` routes each tensor to the cheaper route, and every tensor used in any other way (a bias, a
norm weight, a weight also used outside its module, Gemma's scaled embedding) gets a formed gradient, so the result
is exact for any architecture. A trajectory still needs ∇L itself for its update: :meth:`GhostDots.gradient` forms
it from the same δ and x (the half of a backward that was skipped), and :meth:`GhostDots.against` also dots a risk
with any other direction Δ (the optimiser's step) as Σ_t δ_t·(Δ x_t).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from .dots import Direction, dot, resolve

KINDS = ("linear", "conv1d", "embedding")


def module_kind(m) -> Optional[str]:
    """The layer's kind if its forward is exactly the stock one (a subclass that rescales its output changes the
    gradient: such tensors are formed instead)."""
    f = type(m).forward
    if isinstance(m, torch.nn.Linear) and f is torch.nn.Linear.forward:
        return "linear"
    if isinstance(m, torch.nn.Embedding) and f is torch.nn.Embedding.forward:
        return None if (m.max_norm is not None or m.scale_grad_by_freq or m.sparse) else "embedding"
    if type(m).__name__ == "Conv1D" and type(m).__module__ == "transformers.pytorch_utils":   # GPT-2's layers
        return "conv1d"
    return None


class Record:
    """One call of a hooked module: which parameter, its input (x [N, in], or ids [N]), its output y (in the
    autograd graph; released once its gradient has been taken) and the number of batch rows its N positions hold
    (``rows``: the output's leading size, for the per-instance split of ``ghost_rows.py``)."""
    __slots__ = ("index", "kind", "inp", "out", "pad", "rows")

    def __init__(self, index, kind, inp, out, pad=None):
        self.index, self.kind, self.inp, self.out, self.pad = index, kind, inp, out, pad
        self.rows = out.shape[0] if out.dim() >= 3 else None


class Recorder:
    """Context manager: while active, every call of a Linear / Conv1D / Embedding module whose weight is one of
    ``params`` is recorded — only when its output is part of an autograd graph."""

    def __init__(self, model, params: Sequence[torch.Tensor]):
        self.model = model
        self.index = {id(p): i for i, p in enumerate(params)}
        self.records: List[Record] = []
        self._handles = []

    def __enter__(self):
        for m in self.model.modules():
            kind, w = module_kind(m), getattr(m, "weight", None)
            if kind is not None and w is not None and id(w) in self.index:
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


def count_uses(roots: Sequence[torch.Tensor], params: Sequence[torch.Tensor], seen: Optional[set] = None
               ) -> Dict[int, int]:
    """How many graph edges lead into each parameter's gradient accumulator, over the graphs of ``roots``
    (``seen``, if given, is filled with the graph's nodes)."""
    want = {id(p): i for i, p in enumerate(params)}
    seen = set() if seen is None else seen
    stack, cnt = [r.grad_fn for r in roots if r.grad_fn is not None], {}
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
    """The tensors to treat by Gram matrices: those whose every use is a recorded call and for which that is cheaper
    than forming the gradients (every eligible one if ``force``). Returns {tensor index: its records}."""
    by_param: Dict[int, List[Record]] = {}
    for r in records:
        by_param.setdefault(r.index, []).append(r)
    chosen = {}
    for i, recs in by_param.items():
        kinds = {r.kind for r in recs}
        if uses.get(i, 0) != len(recs) or ("conv1d" in kinds and len(kinds) > 1):
            continue                                 # used outside the hooked modules: form its gradient
        p = params[i]
        n = sum(r.inp.shape[0] for r in recs)
        width = sum(p.shape) if p.dim() == 2 else p.numel()
        ghost_cost = (1 + n_dirs) * n * n * width                          # Gram matrices per (risk, direction)
        dense_cost = (1 + n_dirs) * n * p.numel() + 2 * p.numel()         # forming the gradients, plus the dots
        if force or ghost_cost < dense_cost:
            chosen[i] = recs
    return chosen


def _flat(g: torch.Tensor) -> torch.Tensor:
    return g.reshape(-1, g.shape[-1])


def _pad_mask(rec: Record, dtype) -> Optional[torch.Tensor]:
    return None if rec.kind != "embedding" or rec.pad is None else (rec.inp != rec.pad).to(dtype)


def pair_dot(a: Record, da: torch.Tensor, b: Record, db: torch.Tensor) -> torch.Tensor:
    """⟨∇_W from call a with output gradient da, ∇_W from call b with output gradient db⟩ (fp64 scalar)."""
    return pair_product(a, da, b, db).sum(dtype=torch.float64)


def pair_product(a: Record, da: torch.Tensor, b: Record, db: torch.Tensor) -> torch.Tensor:
    """The summands of :func:`pair_dot` before the sum: P[t, s] = (δ_t·δ'_s)(x_t·x_s), [N_a, N_b]."""
    da, db = _flat(da), _flat(db)                                        # [N_a, out], [N_b, out]
    if a.kind != "embedding" and b.kind != "embedding":
        U = da @ db.T                                                    # δ_t·δ'_s
    elif a.kind == "embedding" and b.kind == "embedding":
        U = (a.inp[:, None] == b.inp[None, :]).to(da.dtype)             # [id_t = id_s]
    elif a.kind == "embedding":
        U = db[:, a.inp].T                                               # δ'_s[id_t]
    else:
        U = da[:, b.inp]                                                 # δ_t[id_s]
    V = (da if a.kind == "embedding" else a.inp) @ (db if b.kind == "embedding" else b.inp).T   # x_t·x_s
    for m, side in ((_pad_mask(a, U.dtype), 0), (_pad_mask(b, U.dtype), 1)):   # the padding row gets no gradient
        if m is not None:
            U = U * (m[:, None] if side == 0 else m[None, :])
    return U * V


def record_grad(rec: Record, g: torch.Tensor, shape) -> torch.Tensor:
    """This call's contribution to ∇_W: δᵀx (linear), xᵀδ (conv1d), or δ rows added at the ids (embedding)."""
    g = _flat(g)
    if rec.kind == "linear":
        return g.T @ rec.inp                                             # [out, in]
    if rec.kind == "conv1d":
        return rec.inp.T @ g                                             # [in, out]
    m = _pad_mask(rec, g.dtype)
    return torch.zeros(shape, dtype=g.dtype, device=g.device).index_add_(0, rec.inp, g if m is None else g * m[:, None])


def record_dot(rec: Record, g: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """⟨this call's contribution to ∇_W, Δ⟩ = Σ_t δ_t·(Δ x_t), without forming ∇_W (fp64 scalar)."""
    g = _flat(g)
    if rec.kind == "linear":
        y = rec.inp @ direction.T
    elif rec.kind == "conv1d":
        y = rec.inp @ direction
    else:
        y = direction[rec.inp]
        m = _pad_mask(rec, g.dtype)
        y = y if m is None else y * m[:, None]
    return (g * y).sum(dtype=torch.float64)


def output_grads(scalar: torch.Tensor, recs: List[Record], dense: List[torch.Tensor], retain_graph: bool):
    """One backward pass of ``scalar``: gradients at the recorded outputs (None where unused or released) and the
    gradients of the ``dense`` parameters."""
    live = [j for j, r in enumerate(recs) if r.out is not None]
    inputs = [recs[j].out for j in live] + list(dense)
    if not inputs:
        return [None] * len(recs), []
    gs = torch.autograd.grad(scalar, inputs, retain_graph=retain_graph, allow_unused=True)
    outs = [None] * len(recs)
    for j, g in zip(live, gs[: len(live)]):
        outs[j] = g
    return outs, list(gs[len(live):])


def risk_grads_hooked(scalar: torch.Tensor, recs: List[Record], dense: List[torch.Tensor], on_dense,
                      retain_graph: bool = False):
    """One backward pass of ``scalar`` (a risk): the gradients at the recorded outputs are returned, and each dense
    parameter's gradient is handed to ``on_dense(j, grad)`` the moment it is accumulated, then freed — the risk's
    full gradient never exists at once (what keeps a tracked step near the plain step's memory)."""
    live = [j for j, r in enumerate(recs) if r.out is not None]
    outs: List[Optional[torch.Tensor]] = [None] * len(recs)
    handles = [recs[j].out.register_hook(lambda g, j=j: outs.__setitem__(j, g)) for j in live]
    index = {id(p): j for j, p in enumerate(dense)}
    old = [p.grad for p in dense]
    for p in dense:
        p.grad = None

    def hook(p):
        on_dense(index[id(p)], p.grad)
        p.grad = None
    handles += [p.register_post_accumulate_grad_hook(hook) for p in dense]
    try:
        inputs = [recs[j].out for j in live] + list(dense)
        if inputs:
            torch.autograd.backward(scalar, inputs=inputs, retain_graph=retain_graph)
    finally:
        for h in handles:
            h.remove()
        for j in live:
            recs[j].out.grad = None
        for p, g in zip(dense, old):
            p.grad = g
    return outs


class GhostDots:
    """Per-tensor dot products of risks with some directions (the objective or its terms), Gram-matrix route for the
    tensors in ``by_param`` and formed gradients for the others.

    ``GhostDots(by_param, params, directions)`` runs one output-gradient backward per direction (graphs retained);
    :meth:`against` runs one backward of a risk and returns D[k, i] = ⟨∇_{θ_i} risk, ∇_{θ_i} direction_k⟩ (then
    the same for any extra direction tensors); :meth:`gradient` forms ∇ direction_k itself.
    """

    def __init__(self, by_param: Dict[int, List[Record]], params, directions: List[torch.Tensor], catch=None):
        self.by_param, self.params = by_param, params
        self.recs = [r for rs in by_param.values() for r in rs]
        self.pos = {id(r): j for j, r in enumerate(self.recs)}
        self.dense = [i for i in range(len(params)) if i not in by_param]
        self._dense_p = [params[i] for i in self.dense]
        self.per_dir, self.caught = [], None     # catch = (k, calls): also keep direction k's δ at those outputs
        for k, d in enumerate(directions):
            more = list(catch[1]) if catch is not None and k == catch[0] else []
            outs, grads = output_grads(d, self.recs + more, self._dense_p, retain_graph=True)
            if more:
                self.caught = outs[len(self.recs):]
            self.per_dir.append((outs[:len(self.recs)], grads))

    def finite(self) -> bool:
        return all(g is None or bool(torch.isfinite(g).all()) for o, d in self.per_dir for g in (*o, *d))

    def gradient(self, k: Optional[int] = None) -> list:
        """The formed gradient of direction ``k`` (all directions summed when None), one entry per parameter."""
        ks = range(len(self.per_dir)) if k is None else [k]
        out = [None] * len(self.params)
        for kk in ks:
            d_out, d_dense = self.per_dir[kk]
            for j, i in enumerate(self.dense):
                if d_dense[j] is not None:
                    out[i] = d_dense[j] if out[i] is None else out[i] + d_dense[j]
            for i, rs in self.by_param.items():
                for r in rs:
                    g = d_out[self.pos[id(r)]]
                    if g is not None:
                        c = record_grad(r, g, self.params[i].shape)
                        out[i] = c if out[i] is None else out[i] + c
        return out

    def against(self, risk: torch.Tensor, extra_dirs: Sequence[Direction] = (), retain_graph: bool = False,
                extra_recs: Sequence[Record] = (), split=None) -> torch.Tensor:
        """D[k, i] for one risk: rows for the directions, then one row per extra direction (Δθ). ``extra_recs``:
        records of a forward the directions never saw (a chunk of the retain batch), used for this risk only.
        ``split`` (``ghost_rows.RiskRows``): also split the dots per instance, from the same products."""
        extra_recs = [r for r in extra_recs if r.index in self.by_param]
        recs = self.recs + extra_recs
        calls = list(split.calls) if split is not None else []
        out = torch.zeros(len(self.per_dir) + len(extra_dirs), len(self.params), dtype=torch.float64)

        def on_dense(j, g):                      # a dense tensor's risk gradient: dot it now, then it is freed
            i = self.dense[j]
            if split is not None:
                split.on_dense(i, g)
            for k, (_, d_dense) in enumerate(self.per_dir):
                if d_dense[j] is not None:
                    out[k, i] = float(dot(g, d_dense[j]))
            for k, d in enumerate(extra_dirs, start=len(self.per_dir)):
                di = resolve(d[i])
                if di is not None:
                    out[k, i] = float(dot(g, di))
        r_out = risk_grads_hooked(risk, recs + calls, self._dense_p, on_dense, retain_graph=retain_graph)
        r_out, c_out = r_out[:len(recs)], r_out[len(recs):]
        if split is not None:
            split.on_calls(c_out)
        for r, g in zip(recs, r_out):   # this forward's outputs are done with: drop them (activation memory)
            if g is not None:
                r.out = None
        r_of = {id(r): g for r, g in zip(recs, r_out)}
        mine: Dict[int, List[Record]] = {}
        for r in extra_recs:
            mine.setdefault(r.index, []).append(r)
        for i, rs in self.by_param.items():
            here = [(a, r_of[id(a)]) for a in rs + mine.get(i, []) if r_of[id(a)] is not None]
            for k, (d_out, _) in enumerate(self.per_dir):
                acc = torch.zeros((), dtype=torch.float64, device=self.params[i].device)
                for a, da in here:
                    for b in rs:
                        db = d_out[self.pos[id(b)]]
                        if db is None:
                            continue
                        if split is None:
                            acc += pair_dot(a, da, b, db)
                        else:
                            P = pair_product(a, da, b, db)                       # [N_a, N_b]
                            acc += P.sum(dtype=torch.float64)
                            split.on_pair(k, a, b, P)
                out[k, i] = float(acc)
            for k, d in enumerate(extra_dirs, start=len(self.per_dir)):
                di = resolve(d[i])
                if di is not None:
                    out[k, i] = float(sum(record_dot(a, da, di) for a, da in here))
        return out


def uses_match(records: Sequence[Record], routed, uses: Dict[int, int]) -> bool:
    """Every routed tensor is used in this forward exactly as often as it was recorded (else: form gradients)."""
    n: Dict[int, int] = {}
    for r in records:
        n[r.index] = n.get(r.index, 0) + 1
    return all(uses.get(i, 0) == n.get(i, 0) for i in routed)


__all__ = ["KINDS", "Record", "Recorder", "count_uses", "plan", "pair_dot", "pair_product", "record_grad", "record_dot",
           "output_grads", "risk_grads_hooked", "GhostDots", "uses_match", "module_kind"]
