"""The G-effect engine (paper Definition 1): e = ∇R(D;θ)ᵀ ∇L_u(D_u;θ), total and broken down.

Sign convention (paper §2.2): under a gradient step θ ← θ − η∇L_u the risk changes by ΔR ≈ −η·e, so

* the **unlearning G-effect** e_u (D = forget set) should be strongly **negative** (forget risk rises);
* the **retaining G-effect**  e_r (D = retain set) should be **≥ 0** (retain risk does not rise).

The risk is the NLL with an explicit reduction: ``risk="token_mean"`` (1/N Σ ℓ, Hugging Face ``outputs.loss``, the
official code) or ``risk="seq_sum"`` (1/B Σ_b S_b, the paper's equations). Breakdowns, all exact:

* **groups** — per parameter tensor, summed into blocks and the paper's embed/shallow/middle/deep/lm (Eq. of
  §2.5: e = Σ_ℓ ∇_{θ_ℓ}Rᵀ∇_{θ_ℓ}L). Two routes, chosen per tensor (``dots=``): *ghost* dot products
  (ghost.py: for y = x·Wᵀ, ⟨∇_W R, ∇_W L⟩ = Σ_{t,s}(δ^R_t·δ^L_s)(x_t·x_s) from two N×N Gram matrices, so no
  gradient is formed and the backward passes skip the weight gradients) where that is cheaper, and *formed*
  gradients otherwise — the objective gradient formed once, each risk gradient dotted *while* it is produced
  (a post-accumulate-grad hook takes the dot product and frees it). Both are exact; tests compare them.
* **instances / tokens, "moved"** — how each instance's (token's) risk is moved: ∇ℓ_btᵀ∇L_u, for forget and retain
  instances. With c_bt the risk's token weights (1/N or 1/B), e = Σ_bt c_bt·(∇ℓ_btᵀ∇L_u).
* **instances / tokens, "contribution"** — each forget instance's (token's) share of the set's G-effect: with the
  objective written as a sum of per-instance terms L = Σ_b L_b (per-token terms for token-decomposable ones),
  contribution_b = ∇R(D)ᵀ∇L_b, and e = Σ_b contribution_b. For NPO, L_b's gradient is W_b∇log π(y_b), so the
  contribution is W_b·PG_b with the paper's PG-effect (Eq. 5, Fig. 5b).

Both per-instance views are computed by **forward-mode AD** (one ``torch.func.jvp`` gives every instance's and
every token's directional derivative at the cost of ~3 forward passes); if the model does not support forward AD
(e.g. SDPA attention) the engine falls back to a backward loop automatically (``method="loop"`` forces it).
No per-instance gradient is ever stored.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

from . import nll
from . import ghost
from .batching import select
from .groups import group_names, group_order

RISK_SETS = ("unlearn", "retain")
METHODS = ("auto", "jvp", "loop")
DOTS = ("auto", "ghost", "formed")


# ----------------------------------------------------------------------------------------------------------------
# Small utilities
# ----------------------------------------------------------------------------------------------------------------
def named_params(model):
    """(names, params) of trainable parameters, tied tensors once."""
    names, params = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            names.append(n)
            params.append(p)
    return names, params


_DOT_K = 256          # fp32 partial sums over 256 products (error ≈ 1e-13 of Σ|a·b|), then fp64
_DOT_ROWS = 4096      # rows of 256 per slab: a 4 MB temporary whatever the tensor's size


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨a, b⟩ as an fp64 scalar, accurate to ~1e-12 of Σ|a_i·b_i| and ~8× faster than ``(a*b).sum(float64)``.

    fp64 tensors: one ``torch.dot``. fp32: products summed in fp32 over rows of 256 (short sums, tiny rounding),
    row sums accumulated in fp64; slabs of 4096 rows keep the temporary at 4 MB (a 113 MB embedding gradient never
    gets a full-size product copy).
    """
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


def dots_by_backward(loss: torch.Tensor, params: Sequence[torch.Tensor], directions: Sequence[Sequence],
                     retain_graph: bool = False) -> torch.Tensor:
    """Backpropagate ``loss`` and return D[k, i] = ⟨∂loss/∂θ_i, directions[k][i]⟩ per parameter tensor i.

    Each parameter's gradient is dotted with the directions as soon as it is accumulated and then freed, so the
    full gradient of ``loss`` never exists at once. ``directions[k][i]`` may be a tensor, None (zero), or a
    callable returning a tensor (e.g. a lazily formed parameter change).
    """
    out = torch.zeros(len(directions), len(params), dtype=torch.float64)
    handles = []
    idx = {id(p): i for i, p in enumerate(params)}
    old = [p.grad for p in params]
    for p in params:
        p.grad = None

    def hook(p):
        i = idx[id(p)]
        g = p.grad
        for k, d in enumerate(directions):
            di = d[i]
            if callable(di):
                di = di()
            if di is not None:
                out[k, i] = float(_dot(g, di))   # a Python float: the table lives on the CPU whatever the device
        p.grad = None

    for p in params:
        handles.append(p.register_post_accumulate_grad_hook(hook))
    try:
        loss.backward(retain_graph=retain_graph)
    finally:
        for h in handles:
            h.remove()
        for p, g in zip(params, old):
            p.grad = g
    return out


class _Bound(torch.nn.Module):
    """The model called with substituted parameters (for torch.func)."""

    def __init__(self, model, params: dict):
        super().__init__()
        object.__setattr__(self, "_m", model)
        object.__setattr__(self, "_p", params)
        self.config = getattr(model, "config", None)
        for k in ("_geffect_tokenizer",):
            if hasattr(model, k):
                object.__setattr__(self, k, getattr(model, k))

    def parameters(self, recurse=True):
        return self._m.parameters(recurse)

    def forward(self, **kw):
        return torch.func.functional_call(self._m, self._p, (), kw, strict=False)


def jvp_of(model, names, params, tangents, fn):
    """(fn(θ), d/dε fn(θ + ε·tangent)) with fn taking a model-like callable; forward-mode AD."""
    def f(*ps):
        return fn(_Bound(model, dict(zip(names, ps))))
    primals = tuple(p.detach() for p in params)
    tang = tuple(torch.zeros_like(p) if t is None else t.detach() for p, t in zip(params, tangents))
    return torch.func.jvp(f, primals, tang)


# Stack the tangents for one vmap'd jvp while the stacked copy stays under this size (small models, where sharing
# the primal pass saves ~1/3 of the time); beyond it one jvp per tangent (for SmolLM2 the stack would add
# 3 × 513 MB to save ~10 %).
VMAP_MAX_BYTES = 256 * 2 ** 20


def jvp_many(model, names, params, tangents, fn):
    """[d/dε fn(θ + ε·t) for t in tangents] — one forward pass with all tangents (``torch.func.vmap`` over the
    tangents of a jvp: the primal computation is shared), or one jvp per tangent when the stacked tangents would
    exceed :data:`VMAP_MAX_BYTES` or vmap does not support an operation of the model."""
    if len(tangents) == 1:
        return [jvp_of(model, names, params, tangents[0], fn)[1]]
    nbytes = sum(p.numel() * p.element_size() for p in params) * len(tangents)
    if nbytes <= VMAP_MAX_BYTES:
        primals = tuple(p.detach() for p in params)
        stacked = tuple(torch.stack([torch.zeros_like(p) if t[i] is None else t[i].detach() for t in tangents])
                        for i, p in enumerate(params))

        def f(*ps):
            return fn(_Bound(model, dict(zip(names, ps))))

        def one(*tang):
            return torch.func.jvp(f, primals, tang)[1]
        try:
            out = torch.func.vmap(one)(*stacked)
        except Exception as e:   # an op without a batching rule: fall back to one jvp per tangent
            if _is_forward_ad_error(e):
                raise
            warnings.warn(f"vmap over tangents failed ({type(e).__name__}: {str(e)[:120]}); one jvp per tangent.")
        else:
            del stacked
            return [tuple(o[k] for o in out) if isinstance(out, tuple) else out[k] for k in range(len(tangents))]
    return [jvp_of(model, names, params, t, fn)[1] for t in tangents]


def _is_forward_ad_error(e: Exception) -> bool:
    s = f"{type(e).__name__}: {e}"
    return isinstance(e, (NotImplementedError, RuntimeError)) and ("forward" in s.lower() or "jvp" in s.lower()
                                                                  or "dual" in s.lower())


# ----------------------------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class GEffect:
    """G-effects of one objective at one θ. All tables are tidy pandas DataFrames.

    ``totals``: term (objective / forget / reg), risk_set (unlearn / retain), value.
    ``groups``: term, risk_set, scheme (block / paper), group, value — sums to the total per (term, risk_set, scheme).
    ``instances``: risk_set, view (moved / contribution), id, instance, n_tokens, value, share (= value's share of
    the total: moved × |T_b|/N for token_mean).  ``tokens``: the same per answer token, with the token text.
    """
    totals: "object"
    groups: "object" = None
    instances: "object" = None
    tokens: "object" = None
    risks: Dict[str, float] = field(default_factory=dict)
    info: Dict[str, object] = field(default_factory=dict)

    def value(self, risk_set: str = "unlearn", term: str = "objective") -> float:
        t = self.totals
        m = t[(t.risk_set == risk_set) & (t.term == term)]
        if m.empty:
            raise KeyError(f"no G-effect for risk_set={risk_set!r}, term={term!r}; "
                           f"available: {sorted(set(zip(t.risk_set, t.term)))}")
        return float(m.value.iloc[0])

    @property
    def e_u(self) -> float:
        """Unlearning G-effect ∇R(D_u)ᵀ∇L_u (want ≪ 0)."""
        return self.value("unlearn")

    @property
    def e_r(self) -> float:
        """Retaining G-effect ∇R(D_r)ᵀ∇L_u (want ≥ 0)."""
        return self.value("retain")

    def group_table(self, scheme: str = "paper", term: str = "objective"):
        """Wide table: groups × (unlearn, retain)."""
        g = self.groups[(self.groups.scheme == scheme) & (self.groups.term == term)]
        return g.pivot_table(index="group", columns="risk_set", values="value", sort=False)

    def __repr__(self):
        return f"GEffect(e_u={self.e_u:.6g}, e_r={self.e_r:.6g}, risk={self.info.get('risk')})"


# ----------------------------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------------------------
def _context(model, objective, forget, retain, ref):
    from .objectives import Context
    return Context(model, forget, retain, ref)


def _resolve_objective(objective):
    from .objectives import Objective, get_objective
    if isinstance(objective, str):
        return get_objective(objective)
    if not isinstance(objective, Objective):
        raise TypeError("objective must be a registered name (see geffect_lite.list_objectives()) or an Objective")
    return objective


def _token_texts(batch, tok):
    if tok is None:
        return None
    from .batching import answer_tokens
    return answer_tokens(batch, tok)


def compute(model, objective, forget: dict, retain: Optional[dict] = None, ref=None, *, risk: str = "token_mean",
            groups: bool = True, instances: bool = False, tokens: bool = False, split_terms: bool = True,
            method: str = "auto", tokenizer=None, schemes=("block", "paper"), dots: str = "auto",
            chunk_tokens: Optional[int] = None) -> GEffect:
    """G-effects of ``objective`` at the model's current parameters.

    Args:
        model: a causal LM (float32 or float64).
        objective: a name (``"npo"``, ``"wga+kl"``…) or an :class:`~geffect_lite.objectives.Objective`.
        forget, retain: batches from :func:`geffect_lite.data.collate` (forget with ``idk=True`` for PO/IdkDPO).
        ref: a :class:`~geffect_lite.reference.Reference` for objectives that need θ_ref.
        risk: ``"token_mean"`` (official code) or ``"seq_sum"`` (paper's equations).
        groups: per-block and paper-group breakdown. instances / tokens: per-instance / per-token tables
            (both views, "moved" and "contribution"). split_terms: for L = L_forget + λL_reg also report the
            G-effect of each term (paper Fig. 8).
        method: ``"jvp"`` (forward-mode), ``"loop"`` (backward loop) or ``"auto"`` (jvp, falling back to loop).
        tokenizer: to label tokens in the token table.
        dots: how the per-tensor dot products are taken — ``"ghost"`` (Gram matrices of layer inputs and output
            gradients for every Linear/Conv1D/Embedding weight, no gradient formed; ghost.py), ``"formed"`` (∇L
            formed, risk gradients dotted by hooks as they are produced) or ``"auto"`` (per tensor, the cheaper of
            the two; formed when the per-instance views need ∇L as a tangent).
        chunk_tokens: on the ghost route, a retain batch the objective does not use is backpropagated in chunks of
            rows of at most this many positions (at least one row) — the retain risk is a sum over rows, so the
            result is the same and only one chunk's activations are alive at a time. Default: the forget batch's
            positions (at least 64), so the retain side never holds more activations than the forget side did.
    """
    import pandas as pd
    if risk not in nll.RISK_REDUCTIONS:
        raise ValueError(f"unknown risk reduction {risk!r}; valid: {', '.join(nll.RISK_REDUCTIONS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if dots not in DOTS:
        raise ValueError(f"unknown dots route {dots!r}; valid: {', '.join(DOTS)}")
    if dots == "ghost" and (instances or tokens):
        raise ValueError("the per-instance/per-token views need ∇L as a tangent: use dots='formed' or 'auto'")
    objective = _resolve_objective(objective)
    if retain is None:
        raise ValueError("compute() needs a retain batch for the retaining G-effect e_r "
                         "(e.g. collate(data.split('retain_pool_05')[:16], tok)).")
    names, params = named_params(model)
    was_training = model.training
    model.eval()
    ctx = _context(model, objective, forget, retain, ref)

    # 1) the objective and its terms; the forget/retain forwards are shared with the risks below
    use_ghost = dots == "ghost" or (dots == "auto" and not (instances or tokens))
    recorder = ghost.Recorder(model, params) if use_ghost else contextlib.nullcontext()
    with recorder:
        parts = objective.parts(ctx)
        if use_ghost:        # the forget forward runs while the layers' inputs are recorded
            ctx.fwd("forget")
    for k, v in parts.items():
        nll.check_finite(v.detach(), f"objective {objective.name!r} ({k} term)")
    terms = list(parts) if (split_terms and len(parts) > 1) else []
    loss = sum(parts.values())
    blown = (f"the gradient of {objective.name!r} is not finite (NaN/inf): unlearning has blown up. Lower the "
             "learning rate or use a bounded objective (WGA, NPO).")
    dots_used = None
    if use_ghost:
        # 2g) ghost dots (ghost.py): no gradient is formed for the tensors the Gram route serves. Forget side first;
        #     its graph is freed before the retain forward runs (unless the objective itself used the retain batch).
        labels = ["objective"] + terms
        loss_value = float(loss.detach())
        Ru = nll.risk_from(ctx.fwd("forget"), risk)
        directions = [parts[k] for k in terms] if terms else [loss]
        routed = ghost.plan(recorder.records, params, ghost.count_uses(list(parts.values()) + [Ru], params),
                            len(directions), force=dots == "ghost")
        gd = ghost.GhostDots(routed, params, directions)
        if not gd.finite():
            raise nll.NonFiniteError(blown)
        del directions
        R = {"unlearn": float(Ru.detach())}
        mats = {"unlearn": gd.against(Ru)}
        del Ru
        shared = ctx.cached("retain")          # the objective used the retain batch: its graph is alive anyway
        ctx.release("forget")
        ctx.release("idk")
        if shared:
            Rr = nll.risk_from(ctx.fwd("retain"), risk)
            R["retain"], mats["retain"] = float(Rr.detach()), gd.against(Rr)
            del Rr
        else:   # the retain risk is linear in its rows: backpropagate it chunk by chunk (bounded activations)
            nll.check_batch(retain, "retain batch")
            nll.check_compatible(model, retain, "retain batch")
            R["retain"], mats["retain"] = 0.0, 0.0
            denom = nll.risk_normaliser(retain["labels"][:, 1:] != -100, risk)
            budget = chunk_tokens or max(64, int(forget["attention_mask"].numel()))
            for rows in _row_chunks(retain, budget):
                n_seen = len(recorder.records)
                with recorder:
                    f = nll.forward(model, _trim(select(retain, rows)), what="retain batch")
                rr = f.token_nll.sum() / denom
                new = recorder.records[n_seen:]
                del recorder.records[n_seen:], f
                if not ghost.uses_match(new, routed, ghost.count_uses([rr], params)):
                    mats = None
                    break
                R["retain"] += float(rr.detach())
                mats["retain"] = mats["retain"] + gd.against(rr, extra=new)
                del rr, new
        if mats is not None:
            D = {rs: torch.cat([m.sum(0, keepdim=True), m]) if terms else m for rs, m in mats.items()}
            dots_used = f"ghost ({len(routed)}/{len(params)} tensors by Gram matrices)"
        del gd, recorder, mats
        if dots_used is None:   # the retain forward used a routed tensor in an unrecorded way: redo, formed
            ctx = _context(model, objective, forget, retain, ref)
            parts = objective.parts(ctx)
            loss = sum(parts.values())
            use_ghost = False
        else:
            del parts, loss
            ctx.clear()
    if not use_ghost:
        R, D, g_obj, risk_grads, labels, loss_value, kinds = _dots_formed(
            model, params, objective, ctx, parts, terms, loss, risk, instances or tokens, blown)
        del parts, loss
        dots_used = "formed"
    rows = [dict(term=lab, risk_set=rs, value=float(D[rs][k].sum())) for rs in RISK_SETS
            for k, lab in enumerate(labels)]
    res = GEffect(totals=pd.DataFrame(rows), risks=R,
                  info=dict(objective=objective.name, risk=risk, hparams=dict(getattr(objective, "hparams", {})),
                            loss=loss_value, method=None, dots=dots_used))
    if groups:
        res.groups = _group_frame(model, names, D, labels, schemes)

    # 3) per instance / per token (forward mode, or the backward loop)
    if instances or tokens:
        del ctx
        m = _choose_method(method)
        try:
            inst, tok_df = _per_instance(model, names, params, objective, forget, retain, ref, g_obj, risk_grads,
                                         risk, m, tokenizer, kinds)
            res.info["method"] = m
        except Exception as e:
            if method == "auto" and _is_forward_ad_error(e):
                warnings.warn(f"forward-mode AD failed ({type(e).__name__}); using the backward loop instead. "
                              "Load the model with attn_implementation='eager' for the fast path.")
                inst, tok_df = _per_instance(model, names, params, objective, forget, retain, ref, g_obj,
                                             risk_grads, risk, "loop", tokenizer, kinds)
                res.info["method"] = "loop"
            else:
                raise
        res.instances = inst if instances else None
        res.tokens = tok_df if tokens else None
    if was_training:
        model.train()
    return res


def _row_chunks(batch, max_tokens):
    """Consecutive row groups whose padded width × rows stays within ``max_tokens`` (≥ 1 row each)."""
    lens = batch["attention_mask"].sum(1).tolist()
    chunks, cur, width = [], [], 0
    for i, n in enumerate(lens):
        w = max(width, int(n))
        if cur and w * (len(cur) + 1) > max_tokens:
            chunks.append(cur)
            cur, w = [], int(n)
        cur.append(i)
        width = w
    if cur:
        chunks.append(cur)
    return chunks


def _trim(batch):
    """Drop trailing columns that are padding in every row (right padding: the chunk's own width)."""
    am = batch["attention_mask"]
    keep = int(am.any(0).nonzero().max()) + 1 if am.any() else am.shape[1]
    if keep == am.shape[1]:
        return batch
    return {k: (v[:, :keep] if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == am.shape[1] else v)
            for k, v in batch.items()}


def _dots_formed(model, params, objective, ctx, parts, terms, loss, risk, need_risk_grads, blown):
    """The formed-gradient route: ∇L (and its terms) formed, risk gradients dotted on the fly by hooks (or formed
    when the per-instance views need them as tangents)."""
    grads = {}
    if terms:
        for k in terms:
            grads[k] = list(torch.autograd.grad(parts[k], params, retain_graph=True, allow_unused=True))
        g_obj = [_add(*(grads[k][i] for k in terms)) for i in range(len(params))]
    else:
        g_obj = list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))
    for g in g_obj:
        if g is not None and not torch.isfinite(g).all():
            raise nll.NonFiniteError(blown)
    dirs = [g_obj] + [grads[k] for k in terms]
    labels = ["objective"] + terms
    loss_value = float(loss.detach())
    del parts, loss, grads
    kinds = None
    if need_risk_grads:
        with torch.no_grad():   # is the objective a sum of per-token / per-instance terms? (cached forwards)
            has_tok = objective.token_terms(ctx) is not None
            kinds = (has_tok, has_tok or objective.forget_terms(ctx) is not None)
    ctx.release("idk")   # the objective's graph is no longer needed: free what only it used

    # 2) risk gradients, dotted on the fly (full risk gradients kept only if the contribution view needs them).
    #    One risk set at a time: its forward (shared with the objective where it used it) is backpropagated without
    #    retaining the graph and released, so the forget and retain graphs are not alive together unless the
    #    objective itself needed both.
    R, D, risk_grads = {}, {}, {}
    for rs in RISK_SETS:
        which = "forget" if rs == "unlearn" else "retain"
        r = nll.risk_from(ctx.fwd(which), risk)
        R[rs] = float(r.detach())
        ctx.release(which)
        if need_risk_grads:
            gr = torch.autograd.grad(r, params, allow_unused=True)
            risk_grads[rs] = list(gr)
            D[rs] = torch.tensor([[float(_dot(a, b)) if (a is not None and b is not None) else 0.0
                                   for a, b in zip(gr, d)] for d in dirs], dtype=torch.float64)
            del gr
        else:
            D[rs] = dots_by_backward(r, params, dirs)
        del r
    return R, D, g_obj, risk_grads, labels, loss_value, kinds


def _add(*xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _choose_method(method):
    return "jvp" if method in ("auto", "jvp") else "loop"


def _group_frame(model, names, D, labels, schemes):
    import pandas as pd
    rows = []
    for scheme in schemes:
        gmap = group_names(model, scheme)
        order = group_order(model, scheme)
        for rs, mat in D.items():
            for k, lab in enumerate(labels):
                acc = {g: 0.0 for g in order}
                for i, n in enumerate(names):
                    acc[gmap[n]] += float(mat[k, i])
                rows += [dict(term=lab, risk_set=rs, scheme=scheme, group=g, value=v) for g, v in acc.items()]
    return pd.DataFrame(rows)


def _per_instance(model, names, params, objective, forget, retain, ref, g_obj, risk_grads, risk, method, tok,
                  kinds):
    """Both per-instance views and the per-token table (see the module docstring)."""
    import pandas as pd
    from .objectives import Context
    batches = {"unlearn": forget, "retain": retain}
    has_tok, has_inst = kinds   # (token-decomposable, instance-decomposable), decided by compute()
    moved_tok, contrib_tok, contrib_inst = {}, {}, {}

    def terms_of(c):
        return objective.token_terms(c) if has_tok else objective.forget_terms(c)

    def keep(rs, t):
        t = t.detach()
        if has_tok:
            contrib_tok[rs] = t
            contrib_inst[rs] = t.sum(dim=1)
        else:
            contrib_inst[rs] = t

    if method == "jvp":
        # forget side: one forward with three tangents — g_obj ("moved") and ∇R_u, ∇R_r ("contribution") — so the
        # primal pass and the objective's forward are shared (vmap over the tangents of one jvp)
        tangents = [g_obj] + ([risk_grads[rs] for rs in RISK_SETS] if has_inst else [])

        def fn(m):
            c = Context(m, forget, retain, ref)
            tn = c.fwd("forget").token_nll
            return (tn, terms_of(c)) if has_inst else (tn,)
        outs = jvp_many(model, names, params, tangents, fn)
        moved_tok["unlearn"] = outs[0][0].detach()
        if has_inst:
            for k, rs in enumerate(RISK_SETS, start=1):
                keep(rs, outs[k][1])
        _, t = jvp_of(model, names, params, g_obj, lambda m: nll.forward(m, retain).token_nll)
        moved_tok["retain"] = t.detach()
    else:
        for rs, b in batches.items():
            moved_tok[rs] = _loop_token_dots(model, params, b, g_obj)
        if has_inst:
            for rs in RISK_SETS:
                keep(rs, _loop_term_dots(model, params, objective, forget, retain, ref, risk_grads[rs], has_tok))
    # tables
    inst_rows, tok_rows = [], []
    for rs, b in batches.items():
        lab = b["labels"][:, 1:]
        mask = (lab != -100)
        ntok = mask.sum(1)
        N = int(mask.sum())
        B = mask.shape[0]
        c = (1.0 / N) if risk == "token_mean" else (1.0 / B)
        texts = _token_texts(b, tok)
        mt = moved_tok[rs] * mask
        for i in range(B):
            per_inst_risk = float(mt[i].sum() / ntok[i]) if risk == "token_mean" else float(mt[i].sum())
            inst_rows.append(dict(risk_set=rs, view="moved", id=b["ids"][i], instance=i, n_tokens=int(ntok[i]),
                                  value=per_inst_risk, share=float(mt[i].sum()) * c))
            pos = mask[i].nonzero().flatten().tolist()
            for k, t in enumerate(pos):
                tok_rows.append(dict(risk_set=rs, view="moved", id=b["ids"][i], instance=i, position=k,
                                     token=texts[i][k] if texts else None, value=float(mt[i, t]),
                                     share=float(mt[i, t]) * c))
    for rs in contrib_inst:
        b = forget
        mask = (b["labels"][:, 1:] != -100)
        texts = _token_texts(b, tok)
        for i in range(mask.shape[0]):
            v = float(contrib_inst[rs][i])
            inst_rows.append(dict(risk_set=rs, view="contribution", id=b["ids"][i], instance=i,
                                  n_tokens=int(mask[i].sum()), value=v, share=v))
            if rs in contrib_tok:
                pos = mask[i].nonzero().flatten().tolist()
                for k, t in enumerate(pos):
                    v = float(contrib_tok[rs][i, t])
                    tok_rows.append(dict(risk_set=rs, view="contribution", id=b["ids"][i], instance=i, position=k,
                                         token=texts[i][k] if texts else None, value=v, share=v))
    return pd.DataFrame(inst_rows), pd.DataFrame(tok_rows)


def _loop_token_dots(model, params, batch, direction):
    """Backward-loop reference: one backward per answer token, dotted with ``direction``. [B, T-1]."""
    fwd = nll.forward(model, batch)
    out = torch.zeros_like(fwd.logp, dtype=torch.float64)
    idx = fwd.mask.nonzero().tolist()
    for n, (b, t) in enumerate(idx):
        g = torch.autograd.grad(fwd.token_nll[b, t], params, retain_graph=n < len(idx) - 1, allow_unused=True)
        out[b, t] = sum(_dot(a, d) for a, d in zip(g, direction) if a is not None and d is not None)
    return out.to(fwd.logp.dtype)


def _loop_term_dots(model, params, objective, forget, retain, ref, direction, per_token):
    from .objectives import Context
    c = Context(model, forget, retain, ref)
    terms = objective.token_terms(c) if per_token else objective.forget_terms(c)
    out = torch.zeros_like(terms, dtype=torch.float64)
    flat = terms.reshape(-1)
    nz = [i for i in range(flat.numel()) if flat[i].requires_grad and bool(flat[i] != 0)]
    for n, i in enumerate(nz):
        g = torch.autograd.grad(flat[i], params, retain_graph=n < len(nz) - 1, allow_unused=True)
        out.view(-1)[i] = sum(_dot(a, d) for a, d in zip(g, direction) if a is not None and d is not None)
    return out.to(terms.dtype)


def loop_instance_dots(model, batch, direction, risk="token_mean"):
    """Reference per-instance "moved" G-effects by one backward pass per instance (for tests and the benchmark)."""
    from .batching import select
    _, params = named_params(model)
    out = []
    for i in range(batch["input_ids"].shape[0]):
        sub = select(batch, [i])
        r = nll.risk_from(nll.forward(model, sub), "token_mean" if risk == "token_mean" else "seq_sum")
        g = torch.autograd.grad(r, params, allow_unused=True)
        out.append(float(sum(_dot(a, d) for a, d in zip(g, direction) if a is not None and d is not None)))
    return out


def objective_gradient(model, objective, forget, retain=None, ref=None) -> List[torch.Tensor]:
    """∇L_u as a list of tensors aligned with :func:`named_params`."""
    objective = _resolve_objective(objective)
    _, params = named_params(model)
    ctx = _context(model, objective, forget, retain, ref)
    return list(torch.autograd.grad(objective.loss(ctx), params, allow_unused=True))


def finite_difference(model, direction, batch, h: float = 1e-3, risk: str = "token_mean") -> float:
    """Central difference [R(θ+h·d) − R(θ−h·d)] / 2h — an independent route to the G-effect (identity 20)."""
    _, params = named_params(model)
    with torch.no_grad():
        def shift(s):
            for p, d in zip(params, direction):
                if d is not None:
                    p.add_(d, alpha=s)
        shift(h)
        rp = float(nll.risk(model, batch, risk))
        shift(-2 * h)
        rm = float(nll.risk(model, batch, risk))
        shift(h)
    return (rp - rm) / (2 * h)


def second_directional(model, direction, batch, risk: str = "token_mean") -> float:
    """dᵀ H_R d by forward-over-forward AD (the second-order term of the Taylor picture)."""
    names, params = named_params(model)

    def first(*ps):
        def f(*qs):
            return nll.risk_from(nll.forward(_Bound(model, dict(zip(names, qs))), batch), risk)
        return torch.func.jvp(f, ps, tuple(torch.zeros_like(p) if d is None else d.detach()
                                           for p, d in zip(params, direction)))[1]
    _, out = torch.func.jvp(first, tuple(p.detach() for p in params),
                            tuple(torch.zeros_like(p) if d is None else d.detach() for p, d in zip(params, direction)))
    return float(out)
