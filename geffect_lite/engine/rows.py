"""Per-instance dot products with a fixed direction from one backward pass — the instance views without forward mode.

An instance view (``views.py``, ``result.py``) is ⟨∇_θ s_b, V⟩ for every instance b, with V one tensor per parameter:
moved_b = ⟨∇S_b, ∇L_u⟩ (S_b = Σ_t ℓ_bt, instance b's summed NLL) and contribution_b = ⟨∇R(D), ∇L_b⟩ (for NPO,
W_b times the PG-effect of Eq. 5). The rows of a batch never mix in a causal LM's forward, so one backward pass of
Σ_b s_b leaves at each layer output y, on row b, exactly ∂s_b/∂y_b =: δ_b, and

    ⟨∇_θ s_b, V⟩ = Σ_{module calls} Σ_t δ_{b,t} · ẏ_{b,t},    ẏ = d/dε module(x; θ_m + ε·V_m) at ε = 0,

the module's output moved along V with its recorded input x held fixed: a *local* tangent, no pass through the
network. For a linear layer y = x Wᵀ + c it is x V_Wᵀ + V_c — one matmul, the cost of the layer's own forward, which
is ghost.py's Σ_t δ_tᵀ V x_t taken row by row; for an embedding V_W[ids] (the padding row gets no gradient); for a
module whose output is affine in its own parameters (every norm: LayerNorm n(x)⊙w + b, RMSNorm w⊙n(x), Gemma's
n(x)⊙(1 + w)) ẏ = f(x; V) − f(x; 0), two plain calls (the offset call skipped when f(x; 0) = 0), affinity checked
once per module on its first call; for any other module ``torch.func.jvp`` of that module alone.

Exact only when (checked on every call; otherwise :func:`row_dots` returns None and the caller uses forward mode):
every use of every parameter in the scalar's graph is inside a recorded call of a module that owns it (graph edges
counted), each such call is tagged with a batch whose rows are the instances, and its output has one row per
instance. The caller also vouches that term b reads row b only (true of every built-in objective).
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch

from ..context import Context
from .ghost import count_uses, module_kind


class Call:
    """One call of a module that owns parameters: its tensors' indices and names, its input (detached), its output
    (in the graph), the batch it ran on (``tag``) and the graph nodes of its inputs (where its own graph ends)."""
    __slots__ = ("module", "kind", "names", "index", "args", "kwargs", "out", "tag", "stops")

    def __init__(self, module, kind, names, index, args, kwargs, out, tag, stops):
        self.module, self.kind, self.names, self.index = module, kind, names, index
        self.args, self.kwargs, self.out, self.tag, self.stops = args, kwargs, out, tag, stops


def _detach(x):
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (tuple, list)):
        return type(x)(_detach(v) for v in x)
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


def _nodes(x, out: set):
    if isinstance(x, torch.Tensor) and x.grad_fn is not None:
        out.add(x.grad_fn)
    elif isinstance(x, (tuple, list)):
        for v in x:
            _nodes(v, out)
    elif isinstance(x, dict):
        for v in x.values():
            _nodes(v, out)
    return out


class CallRecorder:
    """Context manager: records every call (with grad) of a module owning one of ``params`` directly; ``tag`` is
    stamped on each call (the batch being run, set by the caller; None = unknown rows). With ``rows`` set (the
    batch's size), an output computed once for all rows (leading size 1, broadcast later) is expanded to one view
    per row — the same numbers downstream, and a gradient per row at the recorded output."""

    def __init__(self, model, params: Sequence[torch.Tensor]):
        self.model, self.index = model, {id(p): i for i, p in enumerate(params)}
        self.calls: List[Call] = []
        self.tag, self.rows, self.on_call = None, None, None
        self._handles = []

    def __enter__(self):
        for m in self.model.modules():
            own = [(n, p) for n, p in m.named_parameters(recurse=False) if id(p) in self.index]
            if own:
                self._handles.append(m.register_forward_hook(self._hook(m, own), with_kwargs=True))
        return self

    def _hook(self, m, own):
        kind = module_kind(m) or "module"
        names, index = [n for n, _ in own], [self.index[id(p)] for _, p in own]

        def hook(mod, args, kwargs, out):
            if torch.is_grad_enabled() and isinstance(out, torch.Tensor) and out.requires_grad:
                stops = _nodes(kwargs, _nodes(args, set()))
                if self.rows and out.dim() and out.shape[0] == 1 < self.rows:   # shared by every row (GPT-2's
                    out = out.expand(self.rows, *out.shape[1:])                  # positions): one view per row
                self.calls.append(Call(mod, kind, names, index, _detach(args), _detach(kwargs), out, self.tag, stops))
                if self.on_call is not None:
                    self.on_call(self.calls[-1])
                return out
        return hook

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []
        return False


def local_uses(call: Call) -> Dict[int, int]:
    """Graph edges into each of the call's parameters inside the call itself (from its output back to its inputs)."""
    own = dict(call.module.named_parameters(recurse=False))
    want = {id(own[n]): i for n, i in zip(call.names, call.index)}
    seen, stack, cnt = set(), [call.out.grad_fn], {}
    while stack:
        node = stack.pop()
        if node is None or node in seen or node in call.stops:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is not None and type(nxt).__name__ == "AccumulateGrad":
                i = want.get(id(nxt.variable))
                if i is not None:
                    cnt[i] = cnt.get(i, 0) + 1
            elif nxt is not None:
                stack.append(nxt)
    return cnt


STACK_NUMEL = 1 << 20    # directions' weights up to this many elements in all are stacked into one matmul (copy cheap)


def _linear_rows(call: Call, g: torch.Tensor, ws: Sequence, cs: Sequence, n_rows: int) -> torch.Tensor:
    """[Σ_t δ_tᵀ(V_W x_t + V_c) per row] for K directions ([K, n_rows]; ``ws``/``cs`` hold each direction's weight
    and bias, or None), on the narrow side of the layer: (δ V_W)·x when it widens (an lm_head: no [N, vocab]
    product), (x V_Wᵀ)·δ otherwise. Small weights are stacked into one matmul; large ones go one matmul each, as
    transposed views, so that no weight is copied (a copy of SmolLM2's 28 M-element embedding costs more than the
    matmul). fp32 sums per position, fp64 over positions."""
    x, g = call.args[0].reshape(-1, call.args[0].shape[-1]), g.reshape(-1, g.shape[-1])   # [N, in], [N, out]
    N, d_out, d_in = g.shape[0], g.shape[1], x.shape[1]
    per_pos = torch.zeros(len(ws), N, dtype=g.dtype, device=g.device)                     # [K, N]
    have = [k for k, w in enumerate(ws) if w is not None]
    Ws = [ws[k] if call.kind == "linear" else ws[k].T for k in have]                       # [out, in] views
    if len(have) > 1 and len(have) * d_out * d_in <= STACK_NUMEL:
        W = torch.stack(Ws)                                                                 # [K', out, in]
        if d_out > d_in:
            per_pos[have] = ((g @ W.permute(1, 0, 2).reshape(d_out, -1)).view(N, len(have), d_in)
                             * x[:, None, :]).sum(-1).T                                     # [N, K', in] · x
        else:
            per_pos[have] = ((x @ W.reshape(-1, d_in).T).view(N, len(have), d_out)
                             * g[:, None, :]).sum(-1).T                                     # [N, K', out] · δ
    else:
        for k, W in zip(have, Ws):
            per_pos[k] = ((g @ W) * x).sum(-1) if d_out > d_in else ((x @ W.T) * g).sum(-1)    # [N]
    for k, c in enumerate(cs):
        if c is not None:
            per_pos[k] += g @ c                                                             # [N]
    return per_pos.reshape(len(ws), n_rows, -1).sum(2, dtype=torch.float64)


def tangent(call: Call, V: Sequence) -> Optional[torch.Tensor]:
    """ẏ: the call's output moved along V (its own tensors only, input fixed); None if V is zero on them."""
    v = {n: V[i] for n, i in zip(call.names, call.index) if V[i] is not None}
    if not v:
        return None
    x = call.args[0] if call.args else None
    if call.kind in ("linear", "conv1d"):
        w, c = v.get("weight"), v.get("bias")
        y = None if w is None else (x @ (w.T if call.kind == "linear" else w))
        return c.expand_as(call.out) if y is None else (y if c is None else y + c)
    if call.kind == "embedding" and set(v) == {"weight"}:
        y = v["weight"][x]
        pad = call.module.padding_idx
        return y if pad is None else y * (x != pad).unsqueeze(-1).to(y.dtype)
    kind = _affine_kind(call)
    if kind is not None:                     # f affine in its own tensors: ẏ = f(V) − f(0), no forward mode
        y = _call_with(call, {n: v.get(n) for n in call.names})
        return y if kind == "linear" else y - _call_with(call, {n: None for n in call.names})
    params = dict(call.module.named_parameters(recurse=False))
    names = [n for n in call.names if n in v]

    def f(*ps):
        return torch.func.functional_call(call.module, dict(zip(names, ps)), call.args, call.kwargs, strict=False)
    return torch.func.jvp(f, tuple(params[n].detach() for n in names), tuple(v[n].detach() for n in names))[1]


# module → "linear" (f(0) = 0), "affine", or None (neither)
_AFFINE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _call_with(call: Call, values: Dict[str, Optional[torch.Tensor]]) -> torch.Tensor:
    """The recorded call re-run (input fixed) with its own tracked tensors set to ``values`` (None = zeros)."""
    own = dict(call.module.named_parameters(recurse=False))
    ps = {n: torch.zeros_like(own[n]) if t is None else t.detach() for n, t in values.items()}
    return torch.func.functional_call(call.module, ps, call.args, call.kwargs, strict=False)


def _affine_kind(call: Call) -> Optional[str]:
    """Is the module's output affine in its tracked tensors (input fixed)? Checked once, on its first call, by
    f(P₁+P₂) − f(P₁) − f(P₂) + f(0) = 0 at two random points (an affine map satisfies it exactly, up to rounding;
    anything curved fails it), and f(0) = 0 tells a linear map from an affine one."""
    m = call.module
    if m not in _AFFINE:
        own = dict(m.named_parameters(recurse=False))
        gen = torch.Generator(device="cpu").manual_seed(0)
        p1, p2 = ({n: torch.randn(own[n].shape, generator=gen, dtype=own[n].dtype).to(own[n].device)
                   for n in call.names} for _ in range(2))
        f12 = _call_with(call, {n: p1[n] + p2[n] for n in call.names})
        f0 = _call_with(call, {n: None for n in call.names})
        resid = f12 - _call_with(call, p1) - _call_with(call, p2) + f0
        scale = float(f12.abs().max()) + float(f0.abs().max())
        ok = bool(torch.isfinite(resid).all()) and float(resid.abs().max()) <= 1e-5 * max(scale, 1e-30)
        _AFFINE[m] = None if not ok else ("linear" if float(f0.abs().max()) == 0.0 else "affine")
    return _AFFINE[m]


def _weight_bias(call: Call, directions: Sequence[Sequence]):
    """([V's weight on this call], [V's bias on this call]) for each V in ``directions`` (None where absent)."""
    at = dict(zip(call.names, call.index))
    return ([V[at[n]] if n in at else None for V in directions] for n in ("weight", "bias"))


def call_rows(call: Call, g: torch.Tensor, V: Sequence, n_rows: int) -> Optional[torch.Tensor]:
    """[⟨this call's share of ∇s_b, V⟩ for each row b] (fp64), from its output gradient g; None if V is zero here."""
    if call.kind in ("linear", "conv1d"):
        (w,), (c,) = _weight_bias(call, [V])
        return None if w is None and c is None else _linear_rows(call, g, [w], [c], n_rows)[0]
    y = tangent(call, V)
    if y is None:
        return None
    prod = g * y
    prod = prod.sum(-1) if prod.dim() > 1 else prod          # fp32 over the features, fp64 over positions
    return prod.reshape(n_rows, -1).sum(1, dtype=torch.float64)


def exact_calls(calls: Sequence[Call], scalar: torch.Tensor, params, n_rows: int, tags: Sequence[str]
                ) -> Optional[List[Call]]:
    """The calls ``scalar``'s gradient flows through, if the route is exact for it (see the module docstring),
    else None. Call it before the backward frees the graph."""
    nodes: set = set()
    uses = count_uses([scalar], params, nodes)
    live = [c for c in calls if c.out is not None and c.out.grad_fn in nodes]
    if any(c.tag not in tags or c.out.shape[0] != n_rows for c in live):
        return None
    seen: Dict[int, int] = {}
    for c in live:
        for i, k in local_uses(c).items():
            seen[i] = seen.get(i, 0) + k
    return live if seen == uses else None       # else a parameter is used outside the modules that own it


def dots_into(acc: torch.Tensor, used, directions: Sequence[Sequence], n_rows: int) -> torch.Tensor:
    """``acc`` ([K, n_rows], fp64) plus, for each (call, output gradient) pair in ``used``, its per-row dots with
    each V in ``directions``."""
    with torch.no_grad():
        for c, g in used:
            if c.kind in ("linear", "conv1d"):
                acc += _linear_rows(c, g, *_weight_bias(c, directions), n_rows).cpu()
                continue
            for k, V in enumerate(directions):
                r = call_rows(c, g, V, n_rows)
                if r is not None:
                    acc[k] += r.cpu()
    return acc


def dots_from(used, directions: Sequence[Sequence], n_rows: int) -> List[torch.Tensor]:
    """[Σ over (call, output gradient) pairs of the per-row dots with V] for each V in ``directions``."""
    return list(dots_into(torch.zeros(len(directions), n_rows, dtype=torch.float64), used, directions, n_rows))


def row_dots(calls: Sequence[Call], scalar: torch.Tensor, params, directions: Sequence[Sequence], n_rows: int,
             tags: Sequence[str], retain_graph: bool = False) -> Optional[List[torch.Tensor]]:
    """[⟨∇_θ s_b, V⟩ for b in rows] (fp64, [n_rows]) for each V in ``directions``, with ``scalar`` = Σ_b s_b and
    the calls recorded during its forward, by a backward of its own; None where the route is not exact."""
    live = exact_calls(calls, scalar, params, n_rows, tags)
    if live is None:
        return None
    grads = torch.autograd.grad(scalar, [c.out for c in live], retain_graph=retain_graph, allow_unused=True)
    return dots_from([(c, g) for c, g in zip(live, grads) if g is not None], directions, n_rows)


class TaggedContext(Context):
    """A context whose forwards stamp their batch (and its size) on the recorder's calls."""

    def __init__(self, recorder: CallRecorder, *args):
        super().__init__(*args)
        self._recorder = recorder

    def forward(self, which="forget", rows=None, hidden=False, who=None):
        self._recorder.tag = which                                   # a chunk of rows: its rows are its instances
        self._recorder.rows = self.batch(which, who)["input_ids"].shape[0] if rows is None else len(rows)
        try:
            return super().forward(which, rows, hidden, who)
        finally:
            self._recorder.tag = self._recorder.rows = None


class Capture:
    """The output gradients of the backward passes a measurement runs anyway (``routes.measure``), kept per phase
    for the instance views: "contribution" (the forget term's backward), "moved:forget" / "moved:retain" (the
    risks' backwards: ∂R/∂y, i.e. the moved view's δ over R's normaliser). A phase whose route is not exact is
    recorded as None, and the views then take their own route."""

    def __init__(self, model, params):
        self.params, self.recorder = params, CallRecorder(model, params)
        self.recorder.on_call = self._watch
        self.phase, self.caught = None, {}

    def context(self, *args) -> TaggedContext:
        return TaggedContext(self.recorder, *args)

    def _watch(self, call):
        # The hook lives on the autograd graph (C++), which Python's collector cannot see: a hook holding the call
        # (whose output holds the graph) or this capture would make a cycle that is never freed, and every run with
        # instance views would leak its activations. It holds a weak reference and the call's index instead.
        me, i = weakref.ref(self), len(self.recorder.calls) - 1
        call.out.register_hook(lambda g: me() is not None and me()._catch(i, g))

    def _catch(self, i, g):
        if self.phase is None:
            return
        n_rows, kept, directions, acc = self.caught[self.phase]
        if directions is None:                   # directions not known yet: keep the gradient for later
            kept.append((self.recorder.calls[i], g.detach()))
        else:                                    # reduce it now and let it go (the activation-sized δ is not kept)
            dots_into(acc, [(self.recorder.calls[i], g.detach())], directions, n_rows)

    @contextmanager
    def catching(self, phase: Optional[str], scalar: torch.Tensor, n_rows: int, tags: Sequence[str],
                 directions: Optional[Sequence[Sequence]] = None):
        """Around one backward of ``scalar``: its gradients at the recorded outputs under ``phase`` — kept, or, when
        the ``directions`` are already known, reduced to the per-row dots as they arrive."""
        ok = phase is not None and exact_calls(self.recorder.calls, scalar, self.params, n_rows, tags) is not None
        if ok:
            acc = None if directions is None else torch.zeros(len(directions), n_rows, dtype=torch.float64)
            self.caught[phase] = (n_rows, [], directions, acc)
        elif phase is not None:
            self.caught[phase] = None
        self.phase = phase if ok else None
        try:
            yield
        finally:
            self.phase = None

    def dots(self, phase: str, directions: Sequence[Sequence]) -> Optional[List[torch.Tensor]]:
        got = self.caught.get(phase)
        if got is None:
            return None
        n_rows, kept, reduced_for, acc = got
        if reduced_for is not None:
            if len(reduced_for) != len(directions) or any(a is not b for a, b in zip(reduced_for, directions)):
                raise ValueError(f"phase {phase!r} was reduced along other directions than the ones asked for")
            return list(acc)
        return dots_from(kept, directions, n_rows)


__all__ = ["Call", "CallRecorder", "local_uses", "tangent", "call_rows", "exact_calls", "dots_from", "row_dots",
           "TaggedContext", "Capture"]
