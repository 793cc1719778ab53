"""Definition 1's numbers by cheaper exact routes — what ``gl.geffect`` and ``gl.run`` actually call.

``definition.py`` states Definition 1 of Wang et al. 2025 (arXiv 2502.19301), e = ∇R(D;θ)ᵀ∇L_u(D_u;θ), in plain
autograd. This module computes exactly the same numbers (a test holds them equal, totals and groups) without paying
for two formed gradients and two extra forwards per risk set. For an objective L_u = Σ_k L_k (its terms: the forget
term, regularisers), a forget batch D_u and a retain batch D_r, :func:`measure` returns the per-tensor dot products

    D[risk set][row, i] = ⟨∇_{θ_i} R(D), ∇_{θ_i} direction_row⟩,   rows = ∇L_u, each ∇L_k, then any extra direction,

so that every total (Σ_i) and every layer group (a sub-sum over i) is exact. A trajectory adds one extra direction,
the optimiser's step Δθ, which gives the optimiser-aware G-effect −∇RᵀΔθ/η; it is formed *between* the objective's
backward and the risks' (``then=``), so the forward passes are shared and nothing is recomputed.

Each tensor goes by the cheaper exact route (``dots="auto"``): Gram matrices of layer inputs and output gradients
(``ghost.py``; no gradient formed) or a formed gradient dotted as it is produced (``dots.py``). The retain risk, when
the objective does not use the retain batch, is backpropagated in row chunks (R is a sum over rows: same numbers,
one chunk's activations alive). The per-instance views need ∇L and the risk gradients as tangents: ``keep_grad`` and
``keep_risk_grads`` return them formed.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch

from .. import nll
from ..context import Context, trim
from . import ghost, ghost_rows
from .rows import CallRecorder, Capture, TaggedContext
from .dots import add, dots_by_backward, dots_of_grads, named_params
from .result import RISK_SETS

DOTS = ("auto", "ghost", "formed")


@dataclass
class Measurement:
    """What :func:`measure` found at θ: ``labels`` name the rows of ``D[risk_set]`` ([rows, n_tensors], fp64);
    ``risks`` R(forget), R(retain); ``loss``; ``grad`` (∇L, formed when asked); ``risk_grads`` (∇R per risk set,
    when asked); ``route`` (how the dots were taken); ``capture`` (the backwards' output gradients for the instance
    views, ``rows.Capture``, when asked); ``rows`` (the instance views themselves, when the Gram route split them:
    {"moved": {risk set: [B]}, "contribution": {risk set: [B_forget]}}, fp64)."""
    labels: List[str]
    D: Dict[str, torch.Tensor]
    risks: Dict[str, float]
    loss: float
    grad: Optional[list] = None
    risk_grads: Optional[Dict[str, list]] = None
    route: str = ""
    capture: Optional[Capture] = None
    rows: Optional[Dict[str, Dict[str, torch.Tensor]]] = None


class _Once:
    """``then(grad)`` called at most once, its (labels, directions) remembered (a fallback must not step twice)."""

    def __init__(self, fn):
        self.fn, self.value = fn, None

    def __call__(self, grad):
        if self.fn is None:
            return [], []
        if self.value is None:
            self.value = self.fn(grad)
        return self.value


def blown(objective) -> str:
    return (f"the gradient of {objective.name!r} is not finite (NaN/inf): unlearning has blown up. Lower the "
            "learning rate or the number of steps.")


def measure(model, objective, forget: dict, retain: dict, ref=None, *, risk: str = "token_mean",
            split_terms: bool = True, dots: str = "auto", keep_grad: bool = False, keep_risk_grads: bool = False,
            then: Optional[Callable] = None, inspect: Optional[Callable] = None,
            chunk_tokens: Optional[int] = None, keep_rows: bool = False, per_row: bool = False) -> Measurement:
    """The per-tensor G-effect matrices at the model's current θ (see the module docstring).

    ``then(grad) -> (labels, directions)``: extra directions to dot with the risk gradients, computed from the formed
    ∇L before any risk is backpropagated. ``inspect(ctx)``: called (without grad) once the objective's forward
    passes are in the context, e.g. to read the objective's weights without another forward. ``chunk_tokens``: on
    the Gram route, retain rows are backpropagated in chunks of at most this many positions (default: the forget
    batch's positions, at least 64). ``keep_rows`` (with ``keep_risk_grads``): keep the layer outputs' gradients of
    the backwards for the instance views (``Measurement.capture``). ``per_row``: the instance views by the Gram
    route's own products (``Measurement.rows``, ``ghost_rows.py``) where exact; elsewhere (and with
    ``dots="formed"``) the formed route with ``keep_grad``, ``keep_risk_grads`` and ``keep_rows``.
    """
    then = _Once(then)
    if per_row and dots != "formed":
        m = _by_ghost(model, objective, forget, retain, ref, risk, split_terms, dots == "ghost",
                      keep_grad or then.fn is not None, then, inspect, chunk_tokens, per_row=True)
        if m is not None:
            return m
        inspect, dots = None, "formed"          # inspect: already called once
    if per_row:
        keep_grad = keep_risk_grads = keep_rows = True
    if dots == "ghost" or (dots == "auto" and not keep_risk_grads):
        m = _by_ghost(model, objective, forget, retain, ref, risk, split_terms, dots == "ghost",
                      keep_grad or then.fn is not None, then, inspect, chunk_tokens)
        if m is not None:
            return m
        inspect = None                          # already called once
    capture = Capture(model, named_params(model)[1]) if keep_rows and keep_risk_grads else None
    with capture.recorder if capture is not None else nullcontext():
        return _by_formed(model, objective, forget, retain, ref, risk, split_terms, keep_risk_grads, then, inspect,
                          capture)


def _terms(objective, ctx, split_terms, inspect=None):
    terms = objective.terms(ctx)
    for k, v in terms.items():
        nll.check_finite(v.detach(), f"objective {objective.name!r} ({k} term)")
    ctx.fwd("forget")                           # the forget risk's forward, with grad, before anything reads it
    if inspect is not None:
        with torch.no_grad():
            inspect(ctx)
    keys = list(terms) if (split_terms and len(terms) > 1) else []
    return terms, keys, sum(terms.values())


def _rows(mats: torch.Tensor, n_dirs: int, split: bool) -> torch.Tensor:
    """[directions…, extras…] → [objective, terms…, extras…] (the objective row is the terms' sum)."""
    return torch.cat([mats[:n_dirs].sum(0, keepdim=True), mats]) if split else mats


def _by_ghost(model, objective, forget, retain, ref, risk, split_terms, force, want_grad, then, inspect,
              chunk_tokens, per_row=False):
    """The Gram route; with ``per_row`` also the instance views from the same products (``ghost_rows.py``). None
    where it is not exact (the caller then takes the formed route)."""
    names, params = named_params(model)
    calls = CallRecorder(model, params) if per_row else None
    ctx = TaggedContext(calls, model, forget, retain, ref) if per_row else Context(model, forget, retain, ref)
    recorder = ghost.Recorder(model, params)
    with recorder, calls if per_row else nullcontext():   # the objective's forwards, the layers' inputs recorded
        terms, keys, loss = _terms(objective, ctx, split_terms, inspect)
    Ru = nll.risk_from(ctx.fwd("forget"), risk)
    directions = [terms[k] for k in keys] or [loss]
    routed = ghost.plan(recorder.records, params, ghost.count_uses(list(terms.values()) + [Ru], params),
                        len(directions), force=force)
    n_forget = forget["input_ids"].shape[0]
    split = ghost_rows.start(params, routed, calls.calls, terms, keys, n_forget) if per_row else None
    if per_row and split is None:
        return None
    ghost_dots = ghost.GhostDots(routed, params, directions, catch=split[1] if split else None)
    if not ghost_dots.finite():
        raise nll.NonFiniteError(blown(objective))
    if split:
        split = split[0]
        if not split.direction_done(ghost_dots):
            return None
    grad = ghost_dots.gradient() if want_grad else None
    extra_labels, extra = then(grad)
    loss_value = float(loss.detach())
    del directions, terms, loss
    against, R, mats, views = _against(ghost_dots, extra, split, calls, risk), {}, {}, {}
    try:
        mats["forget"], views["forget"] = against("forget", Ru, forget)
        R["forget"] = float(Ru.detach())
        del Ru
        shared = ctx.cached("retain")           # the objective used the retain batch: its graph is alive anyway
        ctx.release("forget")
        ctx.release("idk")
        if shared:
            Rr = nll.risk_from(ctx.fwd("retain"), risk)
            mats["retain"], views["retain"] = against("retain", Rr, retain)
            R["retain"] = float(Rr.detach())
        else:
            got = _retain_in_chunks(ctx, params, forget, risk, against, routed, recorder, chunk_tokens, calls)
            if got is None:                     # a routed tensor was used in an unrecorded way: redo, formed
                return None
            R["retain"], mats["retain"], views["retain"] = got
    except _Inexact:
        return None
    n = len(ghost_dots.per_dir)
    D = {rs: _rows(m, n, bool(keys)) for rs, m in mats.items()}
    rows = None
    if split:
        dense = split.dense_contributions()
        rows = dict(moved={rs: v[0] for rs, v in views.items()},
                    contribution={rs: v[1] + dense.get(rs, 0.0) for rs, v in views.items()})
    return Measurement(["objective"] + keys + list(extra_labels), D, R, loss_value, grad=grad,
                       route=f"ghost ({len(routed)}/{len(params)} tensors by Gram matrices)", rows=rows)


class _Inexact(Exception):
    """The per-row split is not exact for this model or objective: take the formed route."""


def _against(ghost_dots, extra, split, calls, risk):
    """against(rs, r, batch, n_rows=None, extra_recs=(), calls_here=None) -> (D rows, (moved_b, contribution_b) or
    None): one backward of the risk r on ``batch`` (or ``n_rows`` of its rows), split per row when ``split`` is set."""
    def against(rs, r, batch, n_rows=None, extra_recs=(), calls_here=None):
        acc = split.risk(r, calls.calls if calls_here is None else calls_here,
                         n_rows or batch["input_ids"].shape[0], (rs,)) if split else None
        if split and acc is None:
            raise _Inexact
        mat = ghost_dots.against(r, extra, extra_recs=extra_recs, split=acc)
        if acc is None:
            return mat, None
        if acc.finish() is None:
            raise _Inexact
        c = float(nll.risk_normaliser(batch["labels"][:, 1:] != -100, risk))   # R = Σ_b S_b / c
        return mat, (acc.moved * c, acc.contribution)
    return against


def _retain_in_chunks(ctx, params, forget, risk, against, routed, recorder, chunk_tokens, calls=None):
    """(R(retain), D rows, (moved_b, contribution_b) or None) with the retain rows backpropagated chunk by chunk,
    or None if the forward used a routed tensor in a way the recorder did not see."""
    retain = ctx.batch("retain")
    nll.check_batch(retain, "retain batch")
    nll.check_compatible(ctx.model, retain, "retain batch")
    mask = retain["labels"][:, 1:] != -100
    denom = nll.risk_normaliser(mask, risk)
    budget = chunk_tokens or max(64, int(forget["attention_mask"].numel()))
    total, mats, moved, contribution = 0.0, 0.0, torch.zeros(mask.shape[0], dtype=torch.float64), 0.0
    for rows in row_chunks(retain, budget):
        n_seen, n_calls = len(recorder.records), len(calls.calls) if calls is not None else 0
        with recorder, calls if calls is not None else nullcontext():
            f = ctx.forward("retain", rows)
        rr = f.token_nll.sum() / denom
        new = recorder.records[n_seen:]
        del recorder.records[n_seen:], f
        if not ghost.uses_match(new, routed, ghost.count_uses([rr], params)):
            return None
        total += float(rr.detach())
        new_calls = calls.calls[n_calls:] if calls is not None else None
        if calls is not None:
            del calls.calls[n_calls:]
        mat, got = against("retain", rr, retain, len(rows), extra_recs=new, calls_here=new_calls)
        mats = mats + mat
        if got is not None:
            moved[rows] = got[0]
            contribution = contribution + got[1]
    return total, mats, ((moved, contribution) if calls is not None else None)


def _by_formed(model, objective, forget, retain, ref, risk, split_terms, keep_risk_grads, then, inspect=None,
               capture=None):
    names, params = named_params(model)
    ctx = Context(model, forget, retain, ref) if capture is None else capture.context(model, forget, retain, ref)
    terms, keys, loss = _terms(objective, ctx, split_terms, inspect)
    catch = _catcher(capture, forget, retain)
    term_grads = []
    for k in keys:
        with catch("contribution" if k == "forget" else None, terms[k]):
            term_grads.append(list(torch.autograd.grad(terms[k], params, retain_graph=True, allow_unused=True)))
    if not keys:
        with catch("contribution" if list(terms) == ["forget"] else None, loss):
            grad = list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))
    else:
        grad = [add(*gs) for gs in zip(*term_grads)]
    if not all(g is None or bool(torch.isfinite(g).all()) for g in grad):
        raise nll.NonFiniteError(blown(objective))
    extra_labels, extra = then(grad)
    dirs = [grad] + term_grads + list(extra)
    loss_value = float(loss.detach())
    del terms, loss
    ctx.release("idk")        # the objective's graph is no longer needed: free what only it used
    R, D, risk_grads = {}, {}, {}
    for rs in RISK_SETS:      # one risk set at a time: its graph is released before the next forward
        r = nll.risk_from(ctx.fwd(rs), risk)
        R[rs] = float(r.detach())
        ctx.release(rs)
        if keep_risk_grads:
            with catch(f"moved:{rs}", r, [grad]):    # ∇L is known: the moved view is reduced as δ arrives
                risk_grads[rs] = list(torch.autograd.grad(r, params, allow_unused=True))
            D[rs] = dots_of_grads(risk_grads[rs], dirs)
        else:
            D[rs] = dots_by_backward(r, params, dirs)
        del r
    return Measurement(["objective"] + keys + list(extra_labels), D, R, loss_value, grad=grad,
                       risk_grads=risk_grads or None, route="formed", capture=capture)


def _catcher(capture, forget, retain):
    """catch(phase, scalar): a context around one backward that keeps its layer-output gradients (or nothing)."""
    rows = {"contribution": (forget, ("forget", "idk")), "moved:forget": (forget, ("forget",)),
            "moved:retain": (retain, ("retain",))}

    def catch(phase, scalar, directions=None):
        if capture is None or phase is None:
            return nullcontext()
        batch, tags = rows[phase]
        return capture.catching(phase, scalar, batch["input_ids"].shape[0], tags, directions)
    return catch


def row_chunks(batch: dict, max_tokens: int) -> List[List[int]]:
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
    return chunks + ([cur] if cur else [])


__all__ = ["Measurement", "measure", "DOTS", "row_chunks", "trim", "blown"]
