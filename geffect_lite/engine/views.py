"""Per-instance and per-token G-effects — the "moved" and "contribution" views (``result.py``), and the PG-effect
of Eq. 5 (Wang et al. 2025, arXiv 2502.19301).

Both views are directional derivatives, so one forward-mode pass (``forward_mode.py``) gives every instance and
every token at once (``method="jvp"``):

* moved = ∇ℓ_btᵀ∇L: the jvp of the token NLLs along ∇L, on the forget and on the retain batch;
* contribution = ∇R(D)ᵀ∇L_bt: the jvp of the objective's per-token (or per-instance) terms along ∇R(D);
* PG-effect (Eq. 5) = ∇R(D)ᵀ∇log p(s_u): the jvp of the sequence log-likelihoods along ∇R(D). NPO's G-effect is
  E_s w^npo_s·PG_s, so NPO's contribution view equals (W_b/B)·PG_b.

Without the per-token table (``tokens=False``) the instance views need no forward mode: one backward pass of the
batch and one local tangent per layer (``rows.py``: a matmul per linear layer) give ⟨∇s_b, V⟩ for every instance b
(``method="rows"``; ``"auto"`` takes it whenever it is exact, else forward mode). If the model does not support
forward-mode AD (SDPA attention), a backward loop takes over: one backward per token or instance (``method="loop"``
forces it; the checks in ``checks.py`` use it as the independent reference).
"""
from __future__ import annotations

import warnings
from typing import Dict, Optional

import pandas as pd
import torch

from .. import nll
from ..batching import answer_tokens
from ..context import Context
from ..objectives import UserObjective
from .dots import dot, named_params
from .forward_mode import is_forward_ad_error, jvp_many, jvp_of
from .result import RISK_SETS
from .rows import CallRecorder, TaggedContext, row_dots

METHODS = ("auto", "jvp", "loop", "rows")


def decomposable(objective, model, forget, retain, ref):
    """(token-decomposable, instance-decomposable): can the forget term be split over tokens / instances? A
    property of the objective, not of θ: found once (two forwards without grad) and kept on the objective."""
    if "_kinds" not in objective.__dict__:
        with torch.no_grad():
            has_tok = objective.token_terms(Context(model, forget, retain, ref)) is not None
            has_inst = has_tok or objective.instance_terms(Context(model, forget, retain, ref)) is not None
        objective.__dict__["_kinds"] = (has_tok, has_inst)
    return objective.__dict__["_kinds"]


def instance_views(model, objective, forget, retain, ref, grad, risk_grads, *, risk="token_mean", method="auto",
                   tokenizer=None, tokens=True, capture=None, rows=None):
    """(instances, tokens) DataFrames of both views at θ, from the formed ∇L (``grad``) and ∇R (``risk_grads``).
    With ``tokens=False`` the token table is empty and the instances may come by the one-backward route (``rows``):
    split from the Gram route's own products when the measurement did so (``rows``, see
    ``routes.measure(per_row=True)``), or from its backwards when it kept them (``capture``, ``keep_rows=True``)."""
    kinds = decomposable(objective, model, forget, retain, ref)
    if method == "rows" and tokens:
        raise ValueError("method='rows' gives per-instance views only: the per-token views need method='jvp', "
                         "'loop' or 'auto'")
    if rows is not None and method in ("auto", "rows") and not tokens \
            and not isinstance(getattr(objective, "base", None) or objective, UserObjective):
        inst, tok = _tables(forget, retain, rows["moved"], rows["contribution"] if kinds[1] else {}, kinds[0],
                            risk, tokenizer)
        inst.attrs["method"] = tok.attrs["method"] = "rows"
        return inst, tok
    got = None
    if method in ("auto", "rows") and not tokens:
        got = _from_capture(capture, objective, forget, retain, grad, risk_grads, kinds[1], risk) or \
            _by_rows(model, objective, forget, retain, ref, grad, risk_grads, kinds[1])
        if got is None and method == "rows":
            raise ValueError(f"method='rows' is not exact for {objective.name!r} on this model (a parameter is used "
                             "outside the module that owns it, or a term mixes instances): use 'auto' or 'jvp'")
    m = "rows" if got is not None else ("loop" if method == "loop" else "jvp")
    try:
        moved, contrib = got or _directional(model, objective, forget, retain, ref, grad, risk_grads, kinds, m)
    except Exception as e:
        if not (method == "auto" and is_forward_ad_error(e)):
            raise
        warnings.warn(f"forward-mode AD failed ({type(e).__name__}); using the backward loop instead. Load the "
                      "model with attn_implementation='eager' for the fast path.")
        m = "loop"
        moved, contrib = _directional(model, objective, forget, retain, ref, grad, risk_grads, kinds, m)
    inst, tok = _tables(forget, retain, moved, contrib, kinds[0], risk, tokenizer)
    inst.attrs["method"] = tok.attrs["method"] = m
    return inst, tok


def _from_capture(capture, objective, forget, retain, grad, risk_grads, has_inst, risk):
    """moved and contrib from the output gradients the measurement caught (``rows.Capture``), or None. The risks'
    gradients at the layer outputs are the moved view's over R's normaliser (N tokens or B instances)."""
    if capture is None or isinstance(getattr(objective, "base", None) or objective, UserObjective):
        return None
    moved = {}
    for rs, b in (("forget", forget), ("retain", retain)):
        got = capture.dots(f"moved:{rs}", [grad])
        if got is None:
            return None
        moved[rs] = got[0] * float(nll.risk_normaliser(b["labels"][:, 1:] != -100, risk))
    contrib = capture.dots("contribution", [risk_grads[rs] for rs in RISK_SETS]) if has_inst else []
    return None if contrib is None else (moved, dict(zip(RISK_SETS, contrib)))


def _by_rows(model, objective, forget, retain, ref, grad, risk_grads, has_inst):
    """moved[rs] and contrib[rs] as [B] vectors by one backward each (``rows.py``), or None where not exact: a user
    objective's terms are not known to keep instances apart."""
    if isinstance(getattr(objective, "base", None) or objective, UserObjective):
        return None
    _, params = named_params(model)
    B = forget["input_ids"].shape[0]
    rec = CallRecorder(model, params)
    ctx = TaggedContext(rec, model, forget, retain, ref)
    with rec:                         # token NLLs (moved) and per-instance terms (contribution): one forward
        tn = ctx.fwd("forget").token_nll
        terms = objective.instance_terms(ctx) if has_inst else None
    moved = row_dots(rec.calls, tn.sum(), params, [grad], B, ("forget",), retain_graph=has_inst)
    contrib = row_dots(rec.calls, terms.sum(), params, [risk_grads[rs] for rs in RISK_SETS], B,
                       ("forget", "idk")) if has_inst and moved is not None else []
    if moved is None or contrib is None:
        return None
    del rec, ctx, tn, terms
    rec = CallRecorder(model, params)
    with rec:
        tr = TaggedContext(rec, model, forget, retain, ref).fwd("retain").token_nll
    moved_r = row_dots(rec.calls, tr.sum(), params, [grad], retain["input_ids"].shape[0], ("retain",))
    if moved_r is None:
        return None
    return {"forget": moved[0], "retain": moved_r[0]}, dict(zip(RISK_SETS, contrib))


def _directional(model, objective, forget, retain, ref, grad, risk_grads, kinds, method):
    """moved[rs] ([B, T-1] token derivatives along ∇L) and contrib[rs] (forget terms' derivatives along ∇R(rs))."""
    has_tok, has_inst = kinds
    names, params = named_params(model)

    def terms_of(c):
        return objective.token_terms(c) if has_tok else objective.instance_terms(c)

    if method == "loop":
        moved = {rs: loop_token_dots(model, b, grad) for rs, b in (("forget", forget), ("retain", retain))}
        contrib = {rs: loop_term_dots(model, terms_of(Context(model, forget, retain, ref)), risk_grads[rs])
                   for rs in RISK_SETS} if has_inst else {}
        return moved, contrib

    def fn(m):   # forget side: token NLLs (moved) and the objective's terms (contribution) in one forward
        c = Context(m, forget, retain, ref)
        tn = c.fwd("forget").token_nll
        return (tn, terms_of(c)) if has_inst else (tn,)

    tangents = [grad] + ([risk_grads[rs] for rs in RISK_SETS] if has_inst else [])
    outs = jvp_many(model, names, params, tangents, fn)                   # one primal pass, 1 or 3 tangents
    moved = {"forget": outs[0][0].detach()}
    contrib = {rs: outs[k][1].detach() for k, rs in enumerate(RISK_SETS, start=1)} if has_inst else {}
    moved["retain"] = jvp_of(model, names, params, grad, lambda m: nll.forward(m, retain).token_nll)[1].detach()
    return moved, contrib


def _tables(forget, retain, moved, contrib, per_token, risk, tokenizer):
    """The tidy tables from moved[rs] ([B, T-1] per token, or [B] per instance) and contrib[rs] (per token,
    [B, T-1], or per instance, [B])."""
    inst_rows, tok_rows = [], []
    for rs, b in (("forget", forget), ("retain", retain)):
        mask = b["labels"][:, 1:] != -100                                 # [B, T-1]
        c = 1.0 / int(mask.sum()) if risk == "token_mean" else 1.0 / mask.shape[0]
        texts = answer_tokens(b, tokenizer) if tokenizer is not None else None
        by_token = moved[rs].dim() == 2
        mt = moved[rs] * mask if by_token else None
        for i in range(mask.shape[0]):
            n_i = int(mask[i].sum())
            tot = float(mt[i].sum()) if by_token else float(moved[rs][i])
            inst_rows.append(dict(risk_set=rs, view="moved", id=b["ids"][i], instance=i, n_tokens=n_i,
                                  value=tot / n_i if risk == "token_mean" else tot, share=tot * c))
            if by_token:
                tok_rows += _token_rows(rs, "moved", b, i, mask, mt, texts, scale=c)
    mask = forget["labels"][:, 1:] != -100
    texts = answer_tokens(forget, tokenizer) if tokenizer is not None else None
    for rs, t in contrib.items():
        by_token = per_token and t.dim() == 2
        per_inst = t.sum(1) if by_token else t
        for i in range(mask.shape[0]):
            v = float(per_inst[i])
            inst_rows.append(dict(risk_set=rs, view="contribution", id=forget["ids"][i], instance=i,
                                  n_tokens=int(mask[i].sum()), value=v, share=v))
            if by_token:
                tok_rows += _token_rows(rs, "contribution", forget, i, mask, t, texts, scale=1.0)
    return pd.DataFrame(inst_rows), pd.DataFrame(tok_rows)


def _token_rows(rs, view, b, i, mask, values, texts, scale):
    pos = mask[i].nonzero().flatten().tolist()
    return [dict(risk_set=rs, view=view, id=b["ids"][i], instance=i, position=k,
                 token=texts[i][k] if texts else None, value=float(values[i, t]), share=float(values[i, t]) * scale)
            for k, t in enumerate(pos)]


def risk_gradients(model, forget, retain, risk="token_mean") -> Dict[str, list]:
    """∇R(forget) and ∇R(retain), formed (one backward each)."""
    _, params = named_params(model)
    return {rs: list(torch.autograd.grad(nll.risk(model, b, risk), params, allow_unused=True))
            for rs, b in (("forget", forget), ("retain", retain))}


def pg_effects(model, forget, retain, *, risk: str = "token_mean", risk_grads: Optional[dict] = None,
               method: str = "auto") -> pd.DataFrame:
    """The PG-effect of each forget point (Eq. 5): ∇R(D)ᵀ∇log p(s_u), for D = the forget set ("unlearning
    PG-effect", Fig. 5b's x-axis) and D = the retain set ("retaining PG-effect", its y-axis). One row per forget
    instance: id, instance, forget, retain. ``risk_grads`` (from :func:`risk_gradients`) may be passed to reuse them."""
    risk_grads = risk_grads or risk_gradients(model, forget, retain, risk)
    names, params = named_params(model)
    if method == "loop":
        seq = nll.forward(model, forget).seq_logp
        vals = [loop_term_dots(model, seq, risk_grads[rs]) for rs in RISK_SETS]
    else:
        vals = jvp_many(model, names, params, [risk_grads[rs] for rs in RISK_SETS],
                        lambda m: nll.forward(m, forget).seq_logp)
    return pd.DataFrame(dict(id=forget["ids"], instance=range(len(forget["ids"])),
                             **{rs: v.detach().double().cpu().numpy() for rs, v in zip(RISK_SETS, vals)}))


def loop_token_dots(model, batch, direction) -> torch.Tensor:
    """Backward-loop reference of the moved view: ∇ℓ_btᵀ·direction by one backward per answer token; [B, T-1]."""
    fwd = nll.forward(model, batch)
    return loop_term_dots(model, fwd.token_nll, direction).to(fwd.logp.dtype)


def loop_term_dots(model, terms: torch.Tensor, direction) -> torch.Tensor:
    """∇(terms)_jᵀ·direction for every non-zero entry of ``terms`` (any shape), one backward each; fp64."""
    _, params = named_params(model)
    out = torch.zeros_like(terms, dtype=torch.float64)
    flat = terms.reshape(-1)
    nz = [i for i in range(flat.numel()) if flat.requires_grad and bool(flat[i] != 0)]
    for n, i in enumerate(nz):
        g = torch.autograd.grad(flat[i], params, retain_graph=n < len(nz) - 1, allow_unused=True)
        out.view(-1)[i] = sum(dot(a, d) for a, d in zip(g, direction) if a is not None and d is not None)
    return out


__all__ = ["METHODS", "decomposable", "instance_views", "risk_gradients", "pg_effects", "loop_token_dots",
           "loop_term_dots"]
