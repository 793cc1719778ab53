"""Unlearning runs that record G-effects step by step — the paper's Figs. 3–8 are such trajectories.

:func:`run` unlearns for ``steps`` optimiser steps and, at every recorded step, measures the G-effects at the
parameters *before* that step with the same engine as ``gl.geffect`` (``engine.routes.measure``, Definition 1's numbers). What a
trajectory adds is only what depends on the step:

* the **optimiser step** itself: plain SGD, θ ← θ − η∇L (the G-effect's own assumption), or AdamW (the paper's
  experiments), optionally with linear warm-up and decay, on the full batch or on a mini-batch ``plan``;
* the **optimiser-aware G-effect** e_opt = −∇RᵀΔθ/η: the dot product with the change the optimiser actually made
  (equal to e for plain full-batch SGD); AdamW's step is formed on a shadow copy of θ between the objective's
  backward and the risks', so nothing is recomputed and θ itself is only touched once the step is taken;
* the **first-order check**: predicted ΔR = ∇RᵀΔθ (= −η·e for SGD) next to the realised R(θ_{t+1}) − R(θ_t), and,
  with ``second_order=True``, the Taylor term ½ΔθᵀH_RΔθ (``engine.checks.second_directional``);
* the objective's **weights** (GA's inverse confidence, NPO's weights …) and, on request, the per-instance and
  per-token views (``engine.views``) from the step's own gradients.

A step whose objective or gradient turns NaN/inf is recorded with ``status="non-finite"``, a warning names the
objective, and the run stops cleanly. The model is changed in place (pass a copy to keep the original); the shadow
copy and the optimiser's state are freed when the run ends.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Optional

import pandas as pd
import torch
from tqdm.auto import tqdm

from . import nll
from .config import flush_denormal, set_seed
from .context import Context
from .engine.checks import second_directional
from .engine.dots import named_params
from .engine.result import RISK_SETS, groups_frame
from .engine.routes import DOTS, measure
from .engine.validate import check_choice, resolve_objective, user_objective
from .engine.views import instance_views

OPTIMIZERS = ("sgd", "adamw")


@dataclass
class Recording:
    """What a run records (the keyword arguments of :func:`run` beyond the optimisation itself)."""
    every: Optional[int] = 1                # record the G-effects at steps 0, k, 2k, … (None: never — a plain run)
    groups: bool = True                     # per-block and paper-group tables
    instances: bool = False                 # per-instance views ("moved", "contribution")
    tokens: bool = False                    # per-token views
    instances_every: Optional[int] = None   # the views only at steps that are multiples of this (default: every)
    second_order: bool = False              # ½ΔθᵀH_RΔθ at each recorded step
    weights: bool = True                    # the objective's weight summary and per-token weight view
    tokenizer: object = None                # labels the token table
    dots: str = "auto"                      # the engine's dot-product route
    probe: object = None                    # f(model, t) -> DataFrame, at θ_t on the views' steps (e.g. pg_effects)

    def __post_init__(self):
        for name in ("every", "instances_every"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer ≥ 1, got {v!r}")
        check_choice("dots route", self.dots, DOTS)
        self.instances_every = self.instances_every or self.every or 1

    @classmethod
    def from_kwargs(cls, kw: dict) -> "Recording":
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(kw) - set(valid))
        if unknown:
            raise TypeError(f"run() got unknown argument(s) {', '.join(unknown)}; recording options are "
                            f"{', '.join(valid)}")
        return cls(**kw)

    def records(self, t: int) -> bool:
        return self.every is not None and t % self.every == 0

    def views_at(self, t: int) -> bool:
        return (self.instances or self.tokens) and t % self.instances_every == 0

    def probe_at(self, t: int) -> bool:
        return self.probe is not None and t % self.instances_every == 0


@dataclass
class Trajectory:
    """Tidy DataFrames of one unlearning run.

    ``steps``: one row per step — step, lr, loss, risk_u, risk_r, status and, at recorded steps, e_u, e_r, e_u_opt,
    e_r_opt, pred_du / real_du / pred_dr / real_dr (first-order check; realised = change over the following step),
    second_u / second_r, w_* (weight summaries). ``terms``: step, term, risk_set, value. ``groups``: step, term,
    risk_set, scheme, group, value. ``instances`` / ``tokens`` / ``weights``: as in ``GEffect``, with a step column.
    ``probes``: what the ``probe`` option returned, with a step column.
    """
    steps: pd.DataFrame
    terms: pd.DataFrame
    groups: pd.DataFrame = None
    instances: pd.DataFrame = None
    tokens: pd.DataFrame = None
    weights: pd.DataFrame = None
    probes: pd.DataFrame = None
    config: dict = field(default_factory=dict)


class Stepper:
    """The optimiser. Plain SGD steps θ directly; any other optimiser steps a shadow copy, so Δθ is known (lazily,
    per tensor) before θ changes. ``lr_at(t)`` applies linear warm-up over ``warmup`` steps, then linear decay to 0
    over the remaining ones when ``decay`` (the Hugging Face "linear" schedule)."""

    def __init__(self, params, name: str, lr: float, steps: int, warmup: int = 0, decay: bool = False, **kw):
        check_choice("optimizer", name, OPTIMIZERS)
        self.params, self.base_lr, self.steps, self.warmup, self.decay = params, lr, steps, warmup, decay
        self.plain = name == "sgd" and not any(kw.get(k) for k in ("momentum", "weight_decay", "nesterov"))
        self.shadow, self.opt, self.grad = None, None, None
        if not self.plain:
            self.shadow = [p.detach().clone() for p in params]
            kw = {"weight_decay": 0.0, **kw} if name == "adamw" else kw
            self.opt = (torch.optim.AdamW if name == "adamw" else torch.optim.SGD)(self.shadow, lr=lr, **kw)

    def lr_at(self, t: int) -> float:
        if t < self.warmup:
            return self.base_lr * (t + 1) / self.warmup
        if self.decay:
            return self.base_lr * max(0.0, (self.steps - t) / max(1, self.steps - self.warmup))
        return self.base_lr

    def propose(self, grad, t: int):
        """Prepare the step from ∇L; returns Δθ as lazy per-tensor callables (None for plain SGD: Δθ = −η∇L)."""
        self.grad, self.lr = grad, self.lr_at(t)
        if self.plain:
            return None
        for s, g in zip(self.shadow, grad):
            s.grad = g
        for group in self.opt.param_groups:
            group["lr"] = self.lr
        self.opt.step()
        for s in self.shadow:
            s.grad = None
        return [(lambda s=s, p=p: s - p.detach()) for s, p in zip(self.shadow, self.params)]

    def delta(self):
        """Δθ formed (for the second-order term)."""
        if self.plain:
            return [None if g is None else -self.lr * g for g in self.grad]
        return [s - p.detach() for s, p in zip(self.shadow, self.params)]

    @torch.no_grad()
    def take(self):
        for i, p in enumerate(self.params):
            if self.plain:
                if self.grad[i] is not None:
                    p.add_(self.grad[i], alpha=-self.lr)
            else:
                p.copy_(self.shadow[i])
        self.grad = None

    def close(self):
        """Free the shadow copy and the optimiser state."""
        self.shadow, self.opt, self.grad = None, None, None


def run(model, objective, forget: dict, retain: dict, ref=None, *, steps: int = 10, lr: float = 1e-3,
        optimizer: str = "sgd", optimizer_kwargs: Optional[dict] = None, warmup: int = 0, decay: bool = False,
        plan=None, risk: str = "token_mean", seed: int = 0, progress: bool = True, desc: Optional[str] = None,
        flush_subnormals: bool = True, **record) -> Trajectory:
    """Unlearn ``model`` with ``objective`` for ``steps`` steps, recording G-effects (see the module docstring).

    ``forget``/``retain``: the batches the G-effects are measured on (and, without a ``plan``, trained on: the
    full-batch update of the theory). ``ref``: θ_ref, built *before* the run, covering every batch used.
    ``plan``: optional list of (forget, retain) mini-batches, step t trains on ``plan[t % len(plan)]``.
    ``warmup``/``decay``: linear warm-up steps / linear decay to 0. ``flush_subnormals``: flush floats below 1e-38
    to zero during the run (NPO's vanishing weights otherwise make a CPU crawl). ``record``: the
    :class:`Recording` options — every, groups, instances, tokens, instances_every, second_order, weights,
    tokenizer, dots.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= steps:
        raise ValueError(f"warmup must be an integer in [0, steps={steps}], got {warmup!r}")
    check_choice("risk reduction", risk, nll.RISK_REDUCTIONS)
    if plan is not None and (not isinstance(plan, (list, tuple)) or not plan):
        raise ValueError("plan must be a non-empty list of (forget, retain) batch pairs")
    objective = resolve_objective(objective).bind(model)
    rec = Recording.from_kwargs(record)
    set_seed(seed)
    names, params = named_params(model)
    stepper = Stepper(params, optimizer, float(lr), steps, warmup, decay, **(optimizer_kwargs or {}))
    log = _Log(rec)
    model.eval()   # no dropout: the G-effect is a property of θ, not of a dropout mask
    bar = tqdm(range(steps), desc=desc or f"{objective.name} ({optimizer}, lr={lr:g})", disable=not progress)
    try:
        with flush_denormal(flush_subnormals):
            for t in bar:
                try:
                    row = _step(model, objective, forget, retain, ref, plan, stepper, rec, risk, names, log, t)
                except nll.NonFiniteError as e:
                    log.blowup(t, objective, e)
                    break
                bar.set_postfix(e_u=f"{row.get('e_u', float('nan')):.3g}", R_u=f"{row['risk_u']:.3g}")
            else:
                log.close(_risks(model, forget, retain, risk))
    finally:
        bar.close()
        stepper.close()
    return log.trajectory(dict(objective=objective.name, hparams=dict(objective.hparams), steps=steps, lr=lr,
                               optimizer=optimizer, warmup=warmup, decay=decay, every=rec.every, risk=risk,
                               minibatches=len(plan) if plan else None, seed=seed))


def _step(model, objective, forget, retain, ref, plan, stepper, rec, risk, names, log, t) -> dict:
    """One step t: measure at θ_t if it is a recorded step, then take the optimiser step. Returns the step's row."""
    train = plan[t % len(plan)] if plan else None
    if not rec.records(t):
        loss, grad = _gradient(model, objective, train or (forget, retain), ref)
        stepper.propose(grad, t)
        R = _risks(model, forget, retain, risk)
        row = log.add(dict(step=t, lr=stepper.lr, loss=loss, risk_u=R["forget"], risk_r=R["retain"], status="ok"))
        stepper.take()
        return row
    seen, weights = {}, {}

    def then(grad):   # ∇L on the measured batches is formed: the optimiser proposes its step
        g = grad
        if train is not None:
            seen["loss"], g = _gradient(model, objective, train, ref)
        delta = stepper.propose(g, t)
        if delta is None and train is None:
            return [], []                                                 # plain full-batch SGD: Δθ = −η∇L
        return ["step"], [delta if delta is not None else [None if x is None else -stepper.lr * x for x in g]]

    def inspect(ctx):   # the weights, from the forward passes the measurement has just run
        if rec.weights:
            try:
                weights["summary"], weights["view"] = objective.summary(ctx), objective.weight_view(ctx)
            except Exception as e:   # a weight view is a nicety: say why it is missing, never kill the run
                weights["summary"], weights["view"] = {"error": f"{type(e).__name__}: {e}"}, None

    views = rec.views_at(t)
    per_row = views and not rec.tokens and not user_objective(objective)   # instances only: the Gram route's split
    m = measure(model, objective, forget, retain, ref, risk=risk, dots="formed" if views and not per_row else rec.dots,
                keep_grad=views, keep_risk_grads=views and not per_row, keep_rows=per_row, per_row=per_row,
                then=then, inspect=inspect)
    row = log.record(t, m, stepper.lr, seen.get("loss", m.loss), model, names, weights)
    if rec.second_order:
        d = stepper.delta()
        row.update(second_u=0.5 * second_directional(model, d, forget, risk),
                   second_r=0.5 * second_directional(model, d, retain, risk))
    if views:
        inst, tok = instance_views(model, objective, forget, retain, ref, m.grad, m.risk_grads, risk=risk,
                                   tokenizer=rec.tokenizer, tokens=rec.tokens, capture=m.capture, rows=m.rows)
        log.views(t, inst if rec.instances else None, tok if rec.tokens else None)
    if rec.probe_at(t):
        log.probes.append(rec.probe(model, t).assign(step=t))
    del m
    stepper.take()
    return row


def _gradient(model, objective, batches, ref):
    """(loss, ∇L) on one (forget, retain) pair; NonFiniteError naming the objective if either is NaN/inf."""
    _, params = named_params(model)
    loss = objective.loss(Context(model, batches[0], batches[1], ref))
    grad = list(torch.autograd.grad(loss, params, allow_unused=True))
    if not all(g is None or bool(torch.isfinite(g).all()) for g in grad):
        raise nll.NonFiniteError(f"the gradient of {objective.name!r} is not finite (NaN/inf)")
    return float(loss.detach()), grad


@torch.no_grad()
def _risks(model, forget, retain, risk):
    return {rs: float(nll.risk(model, b, risk)) for rs, b in (("forget", forget), ("retain", retain))}


class _Log:
    """The rows and tables of a run, filled step by step."""

    def __init__(self, rec: Recording):
        self.rec = rec
        self.rows, self.terms, self.groups, self.inst, self.tok, self.weights = [], [], [], [], [], []
        self.probes = []

    def add(self, row: dict) -> dict:
        """Append a step's row, closing the previous row's first-order check with this step's risks."""
        self.close({"forget": row["risk_u"], "retain": row["risk_r"]})
        self.rows.append(row)
        return row

    def close(self, R: dict) -> None:
        if self.rows and self.rows[-1].get("status") == "ok":
            prev = self.rows[-1]
            prev["real_du"], prev["real_dr"] = R["forget"] - prev["risk_u"], R["retain"] - prev["risk_r"]

    def record(self, t, m, lr, loss, model, names, weights) -> dict:
        """The row and tables of a recorded step from the engine's measurement ``m``."""
        row = dict(step=t, lr=lr, loss=loss, risk_u=m.risks["forget"], risk_r=m.risks["retain"], status="ok")
        j = m.labels.index("step") if "step" in m.labels else None
        for rs, s in (("forget", "u"), ("retain", "r")):
            e = float(m.D[rs][0].sum())
            dd = -lr * e if j is None else float(m.D[rs][j].sum())       # predicted ΔR = ∇RᵀΔθ
            row.update({f"e_{s}": e, f"e_{s}_opt": -dd / lr, f"pred_d{s}": dd})
        keep = [k for k, lab in enumerate(m.labels) if lab != "step"]
        labels = [m.labels[k] for k in keep]
        self.terms += [dict(step=t, term=m.labels[k], risk_set=rs, value=float(m.D[rs][k].sum()))
                       for rs in RISK_SETS for k in keep]
        if self.rec.groups:
            gf = groups_frame(model, names, {rs: m.D[rs][keep] for rs in RISK_SETS}, labels)
            gf.insert(0, "step", t)
            self.groups.append(gf)
        if "summary" in weights:
            row.update({f"w_{k}": v for k, v in weights["summary"].items() if k != "loss"})
            if weights["view"] is not None and len(weights["view"]):
                self.weights.append(weights["view"].assign(step=t))
        return self.add(row)

    def views(self, t, inst, tok) -> None:
        if inst is not None:
            self.inst.append(inst.assign(step=t))
        if tok is not None:
            self.tok.append(tok.assign(step=t))

    def blowup(self, t, objective, err) -> None:
        warnings.warn(f"step {t}: {objective.name} became non-finite ({err}); the run stops here. Lower the "
                      "learning rate or the number of steps.", RuntimeWarning)
        self.rows.append(dict(step=t, status="non-finite", message=str(err)))

    def trajectory(self, config: dict) -> Trajectory:
        def cat(fs, first="step"):
            if not fs:
                return None
            df = pd.concat(fs, ignore_index=True)
            return df[[first] + [c for c in df.columns if c != first]]
        return Trajectory(steps=pd.DataFrame(self.rows), terms=pd.DataFrame(self.terms),
                          groups=cat(self.groups) if self.rec.groups else None, instances=cat(self.inst),
                          tokens=cat(self.tok), weights=cat(self.weights), probes=cat(self.probes), config=config)


__all__ = ["run", "Trajectory", "Recording", "Stepper", "OPTIMIZERS"]
