"""Unlearning runs that record G-effects step by step (the paper's Figs. 3–8 are such trajectories).

:func:`run` unlearns for ``steps`` optimiser steps on a forget batch (full-batch by default: the theory's update)
with plain SGD (θ ← θ − η∇L_u, the G-effect's own assumption) or AdamW (the paper's experiments), and every
``every`` steps records, at the parameters *before* that step:

* e_u and e_r — total, per term (forget / regulariser, Fig. 8), per block and per paper group;
* forget and retain risks, the objective value, the objective's weights summary (GA's inverse confidence, NPO's
  weights, …) and, on request, per-instance and per-token G-effects;
* **optimiser-aware G-effect** ``e_*_opt = −∇Rᵀ Δθ / η``: the same dot product with the parameter change the
  optimiser actually made (equal to e for plain SGD; for AdamW it shows what the preconditioned step really does);
* **first-order check**: the predicted risk change ∇RᵀΔθ (= −η e for SGD) next to the realised change
  R(θ_{t+1}) − R(θ_t), and, with ``second_order=True``, the Taylor term ½ΔθᵀH_RΔθ from forward-over-forward AD.

A step whose objective or gradient turns NaN/inf (GA blow-up) is recorded with ``status="non-finite"``, a warning
is issued, and the run stops cleanly. The model is changed in place (pass a copy to keep the original).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch

from . import nll
from .geffect import RISK_SETS, _add, _dot, _group_frame, _resolve_objective, dots_by_backward, jvp_of, named_params

OPTIMIZERS = ("sgd", "adamw")


@dataclass
class Trajectory:
    """Tidy DataFrames of one unlearning run.

    ``steps``: one row per recorded step — step, e_u, e_r (objective), e_u_opt, e_r_opt, risk_u, risk_r, loss,
    pred_du / real_du / pred_dr / real_dr (first-order check; realised = change over the following step),
    second_u / second_r (½ΔθᵀHΔθ), weight summaries, status.
    ``terms``: step, term, risk_set, value. ``groups``: step, term, risk_set, scheme, group, value.
    ``instances`` / ``tokens``: as in :class:`~geffect_lite.geffect.GEffect`, with a step column.
    """
    steps: "object"
    terms: "object"
    groups: "object"
    instances: "object" = None
    tokens: "object" = None
    weights: "object" = None
    config: dict = field(default_factory=dict)

    def long(self):
        """steps as long format (step, quantity, value) for seaborn."""
        return self.steps.melt(id_vars=["step"], var_name="quantity", value_name="value")


def _make_optimizer(name, params, lr, **kw):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, **kw)
    if name == "adamw":
        kw.setdefault("weight_decay", 0.0)
        return torch.optim.AdamW(params, lr=lr, **kw)
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")


def _is_plain_sgd(opt):
    if not isinstance(opt, torch.optim.SGD):
        return False
    g = opt.param_groups[0]
    return g.get("momentum", 0) == 0 and g.get("weight_decay", 0) == 0 and not g.get("nesterov", False)


def run(model, objective, forget: dict, retain: dict, ref=None, *, steps: int = 10, lr: float = 1e-3,
        optimizer: str = "sgd", every: int = 1, risk: str = "token_mean", groups: bool = True,
        instances: bool = False, tokens: bool = False, second_order: bool = False, weights: bool = True,
        tokenizer=None, progress: bool = True, desc: Optional[str] = None, optimizer_kwargs: Optional[dict] = None,
        seed: int = 0, instances_every: Optional[int] = None, flush_subnormals: bool = True) -> Trajectory:
    """Unlearn ``model`` with ``objective`` for ``steps`` steps, recording G-effects every ``every`` steps.

    ``forget``/``retain``: batches (the objective's gradient and e_u use ``forget``; e_r and regularisers use
    ``retain``). ``ref``: a Reference built *before* the run for objectives that need θ_ref.
    ``instances_every``: record the per-instance / per-token tables only every k-th recorded step (default:
    ``every``; they cost ~4 jvps each). ``flush_subnormals``: flush floats below 1e-38 to zero during the run (NPO's
    vanishing weights otherwise make a CPU crawl; values change only below 1e-38).
    """
    import pandas as pd
    from tqdm.auto import tqdm
    from .config import flush_denormal, set_seed
    from .geffect import compute
    from .objectives import Context
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if every < 1:
        raise ValueError(f"every must be ≥ 1, got {every!r}")
    instances_every = every if instances_every is None else instances_every
    if instances_every < 1:
        raise ValueError(f"instances_every must be ≥ 1, got {instances_every!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    objective = _resolve_objective(objective)
    set_seed(seed)
    names, params = named_params(model)
    opt = _make_optimizer(optimizer, params, lr, **(optimizer_kwargs or {}))
    plain = _is_plain_sgd(opt)
    model.eval()   # no dropout: the G-effect is a property of θ, not of a dropout mask
    step_rows, term_rows, group_frames, inst_frames, tok_frames, weight_frames = [], [], [], [], [], []
    prev = None
    bar = tqdm(range(steps + 1), desc=desc or f"{objective.name} ({optimizer}, lr={lr:g})", disable=not progress)
    with flush_denormal(flush_subnormals):   # NPO-family weights → 0 would otherwise crawl (config.py)
        for t in bar:
            ctx = Context(model, forget, retain, ref)
            try:
                parts = objective.parts(ctx)
                loss = sum(parts.values())
                nll.check_finite(loss.detach(), f"objective {objective.name!r}")
            except (nll.NonFiniteError, FloatingPointError) as e:
                _blowup(step_rows, t, objective, str(e))
                break
            f_fwd, r_fwd = ctx.fwd("forget"), ctx.fwd("retain")
            R = {"unlearn": nll.risk_from(f_fwd, risk), "retain": nll.risk_from(r_fwd, risk)}
            # close the previous step's first-order check with the realised change
            if prev is not None:
                prev["real_du"] = float(R["unlearn"].detach()) - prev["risk_u"]
                prev["real_dr"] = float(R["retain"].detach()) - prev["risk_r"]
            if t == steps:
                break
            record = (t % every == 0)
            multi = len(parts) > 1
            keys = list(parts)
            grads = {k: list(torch.autograd.grad(parts[k], params, retain_graph=True, allow_unused=True)) for k in keys} \
                if (multi and record) else {}
            g_obj = [_add(*(grads[k][i] for k in keys)) for i in range(len(params))] if grads else \
                list(torch.autograd.grad(loss, params, retain_graph=record, allow_unused=True))
            if not all(g is None or torch.isfinite(g).all() for g in g_obj):
                _blowup(step_rows, t, objective, "the objective gradient is NaN/inf")
                break
            # the parameter change this step makes (exact for plain SGD; by stepping and swapping back otherwise)
            new = None
            if plain:
                delta = [None if g is None else g * (-lr) for g in g_obj] if (record and second_order) else None
            else:
                old = [p.detach().clone() for p in params]
                for p, g in zip(params, g_obj):
                    p.grad = g
                opt.step()
                for p in params:
                    p.grad = None
                new = [p.data for p in params]
                for p, o in zip(params, old):
                    p.data = o                # model back at θ_t, θ_{t+1} kept in `new`
                del old
                # Δθ = θ_{t+1} − θ_t, formed per tensor when the hook needs it (a full copy only for the 2nd order)
                delta = None
                if record:
                    delta = [n - p.detach() for n, p in zip(new, params)] if second_order else \
                        [(lambda n=n, p=p: n - p.detach()) for n, p in zip(new, params)]
                if record:   # the step touched the parameters in place: redo the risk forwards at θ_t for backward
                    ctx = Context(model, forget, retain, ref)
                    f_fwd, r_fwd = ctx.fwd("forget"), ctx.fwd("retain")
                    R = {"unlearn": nll.risk_from(f_fwd, risk), "retain": nll.risk_from(r_fwd, risk)}
            row = dict(step=t, loss=float(loss.detach()), risk_u=float(R["unlearn"].detach()), risk_r=float(R["retain"].detach()),
                       status="ok")
            if record:
                dirs = [g_obj] + [grads[k] for k in keys if grads] + ([delta] if delta is not None and not plain else [])
                labels = ["objective"] + ([k for k in keys] if grads else [])
                D = {}
                for j, rs in enumerate(RISK_SETS):
                    D[rs] = dots_by_backward(R[rs], params, dirs, retain_graph=(j == 0))
                for rs, short in (("unlearn", "u"), ("retain", "r")):
                    e = float(D[rs][0].sum())
                    row[f"e_{short}"] = e
                    if plain:
                        row[f"e_{short}_opt"] = e
                        row[f"pred_d{short}"] = -lr * e
                    else:
                        dd = float(D[rs][-1].sum())
                        row[f"e_{short}_opt"] = -dd / lr
                        row[f"pred_d{short}"] = dd
                    for k, lab in enumerate(labels):
                        term_rows.append(dict(step=t, term=lab, risk_set=rs, value=float(D[rs][k].sum())))
                if groups:
                    gf = _group_frame(model, names, {rs: D[rs][: len(labels)] for rs in RISK_SETS}, labels,
                                      ("block", "paper"))
                    gf.insert(0, "step", t)
                    group_frames.append(gf)
                if second_order:
                    d2 = delta if delta is not None else [None if g is None else g * (-lr) for g in g_obj]
                    from .geffect import second_directional
                    row["second_u"] = 0.5 * second_directional(model, d2, forget, risk)
                    row["second_r"] = 0.5 * second_directional(model, d2, retain, risk)
                if weights:
                    try:   # reuse this step's forward passes (the context caches them)
                        row.update({f"w_{k}": v for k, v in objective.summary(ctx).items() if k != "loss"})
                        wv = objective.weight_view(ctx)
                        if wv is not None and len(wv):
                            wv.insert(0, "step", t)
                            weight_frames.append(wv)
                    except Exception as e:  # a weight view is a nicety; never let it kill a run
                        row["w_error"] = f"{type(e).__name__}: {e}"
                if (instances or tokens) and t % instances_every == 0:
                    g = compute(model, objective, forget, retain, ref, risk=risk, groups=False, instances=instances,
                                tokens=tokens, split_terms=False, tokenizer=tokenizer)
                    if g.instances is not None:
                        g.instances.insert(0, "step", t)
                        inst_frames.append(g.instances)
                    if g.tokens is not None:
                        g.tokens.insert(0, "step", t)
                        tok_frames.append(g.tokens)
            # take the step
            if plain:
                with torch.no_grad():
                    for p, g in zip(params, g_obj):
                        if g is not None:
                            p.add_(g, alpha=-lr)
            else:
                for p, n in zip(params, new):
                    p.data = n
            del ctx, f_fwd, r_fwd, R, parts, loss, g_obj, grads, delta, new
            step_rows.append(row)
            prev = row
            bar.set_postfix(e_u=f"{row.get('e_u', float('nan')):.3g}", e_r=f"{row.get('e_r', float('nan')):.3g}",
                            R_u=f"{row['risk_u']:.3g}")
    bar.close()
    cat = lambda fs: pd.concat(fs, ignore_index=True) if fs else None
    steps_df = pd.DataFrame(step_rows)
    return Trajectory(steps=steps_df, terms=pd.DataFrame(term_rows), groups=cat(group_frames) if groups else None,
                      instances=cat(inst_frames), tokens=cat(tok_frames), weights=cat(weight_frames),
                      config=dict(objective=objective.name, hparams=dict(getattr(objective, "hparams", {})),
                                  steps=steps, lr=lr, optimizer=optimizer, every=every, risk=risk))


def _blowup(rows, t, objective, msg):
    warnings.warn(f"step {t}: {objective.name} became non-finite ({msg}); the run stops here. Lower the learning "
                  "rate or the number of steps.", RuntimeWarning)
    rows.append(dict(step=t, status="non-finite", message=msg))
