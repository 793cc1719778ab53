"""Unlearning objectives of the G-effect paper and beyond, each one small class that states its equation.

Every objective is a loss that is *minimised*; its gradient is what the G-effect measures. The cards in
``objectives.md`` are the specification: reductions, defaults and what is detached follow them, and where the
paper's figures, the official code (GE, ``tmlr-group/G-effect``) and open-unlearning (OU) disagree the docstring
says so.

Notation (objectives.md §0): p_bt = π_θ(y_bt | x_b, y_b,<t) on answer positions (``Forward.mask``), N the number of
answer tokens in the batch, B the number of instances, |y_b| the answer length, r_b = log π_θ(y_b) − log π_ref(y_b)
(sequence sums), sg = stop-gradient. Many objectives have the **weighted-NLL form** (objectives.md §0.3)

    ∇L = Σ_b Σ_t w_bt ∇log p_bt      (w > 0: unlearning, pushes p down; w < 0: learning)

:meth:`Objective.grad_weights` returns those w, normalisation included; :meth:`Objective.weight_view` shows the
paper's *un*normalised weight per token (GA 1, WGA p^α, NPO 2σ(βr_b), …) next to p and 1/p (the inverse
confidence term).

=============  ================================  ==========================  ======  =============================
name           hyper-parameters (defaults)       forget-term reduction       θ_ref   weight on ∇log p (unnorm.)
=============  ================================  ==========================  ======  =============================
ga             —                                 token mean                  no      1
gd (= ga+gd)   lam=1                             token means                 no      1; retain −λ
kl (= ga+kl)   lam=1, kl_positions="all"         token mean + KL             yes     1 (+ KL, logit space)
wga            alpha=1                           token mean                  no      p^α
npo            beta=0.1                          sequence sum, batch mean    yes     2σ(β r_b)
simnpo         beta=4.5, delta=0                 per-sequence mean           no      2σ(−β(S̄_b − δ)), /|y_b|
tnpo           beta=1, eps=1e-5                  token mean                  yes     2p^β/(p^β+p_ref^β+ε)
wtnpo          beta=1, alpha=1, eps=1e-5         token mean                  yes     p^α × TNPO's
satimp         beta1=5, beta2=1                  token mean                  no      p^β1 (1−p)^β2
po (= idk)     —                                 token mean on refusal       no      −1 on the refusal tokens
idkdpo         beta=0.1                          sequence sum, batch mean    yes     ±2σ(β(r_l − r_w))
rmu            layer=mid, c=2, target="raw"      pooled over answer pos.     no      — (hidden-state MSE)
undial         beta=10, positions="answer"       token mean                  yes     — (logit space)
ce-u           n=1                               mean over kept positions    no      p/(1−p)
=============  ================================  ==========================  ======  =============================

Usage::

    from geffect_lite.reference import Reference
    obj = get_objective("npo", beta=0.1)
    ref = Reference.from_model(model, [forget, retain])          # before unlearning
    ctx = Context(model, forget, retain, ref)
    obj.loss(ctx).backward()

Composites: ``get_objective("npo+kl")``, ``"wga+gd"``, ``"rmu+rr"`` → :class:`Regularised` (``parts()`` returns
the forget term and λ·regulariser separately, for the paper's Fig. 8). Your own objective:
:func:`register_objective`. The table: :func:`list_objectives`.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

from . import nll
from .nll import EmptyBatchError, Forward

WHICH = ("forget", "idk", "retain")


# ==============================================================================================================
# Context: the forward passes an objective and the risk share
# ==============================================================================================================
class Context:
    """Lazily computes and caches forward passes so objective and risk share them.

    Args:
        model: the model being unlearned (θ).
        forget: the forget batch (from :func:`geffect_lite.data.collate`; ``idk=True`` for PO / IdkDPO).
        retain: the retain batch (regularisers, GD).
        ref: a :class:`geffect_lite.reference.Reference` (θ_ref) for NPO, TNPO, WTNPO, IdkDPO, UNDIAL, KL, RR.

    ``ctx.fwd("forget" | "idk" | "retain")`` returns a cached :class:`nll.Forward`; ``ctx.clear()`` drops the
    cache (do it after changing the model). A backward pass through a cached forward frees its graph: to take
    several gradients from one context, pass ``retain_graph=True`` or call ``clear()`` in between.
    """

    def __init__(self, model, forget: dict, retain: Optional[dict] = None, ref=None):
        self.model = model
        self.forget = forget
        self.retain = retain
        self.ref = ref
        self._fwd: Dict[str, Forward] = {}
        self._ref_logp: Dict[str, torch.Tensor] = {}   # only for contexts built by from_logp

    # ---------------------------------------------------------------------------------------------------------
    def batch(self, which: str = "forget", who: Optional[str] = None) -> dict:
        """The raw batch behind ``which`` (``"idk"`` = ``forget["idk"]``), with a clear error if missing."""
        obj = f"objective {who!r}" if who else "this objective"
        if which == "forget":
            if self.forget is None:
                raise ValueError(f"{obj} needs a forget batch: Context(model, forget, ...).")
            return self.forget
        if which == "idk":
            if self.forget is None or not isinstance(self.forget, dict) or self.forget.get("idk") is None:
                raise KeyError(f"{obj} needs refusal answers: the forget batch has no 'idk' entry. Build it with "
                               "collate(rows, tok, idk=True).")
            return self.forget["idk"]
        if which == "retain":
            if self.retain is None:
                raise ValueError(f"{obj} needs a retain batch: Context(model, forget, retain=retain_batch, ...).")
            return self.retain
        raise ValueError(f"unknown batch {which!r}; valid: {', '.join(WHICH)}")

    def fwd(self, which: str = "forget", hidden: bool = False, who: Optional[str] = None) -> Forward:
        """The (cached) forward pass on ``which``; recomputed with hidden states if ``hidden`` and not yet there."""
        f = self._fwd.get(which)
        if f is not None and (not hidden or f.hidden_states is not None):
            return f
        if self.model is None:
            raise ValueError(f"this context has no model, so it cannot compute the {which!r} forward pass "
                             f"{'with hidden states' if hidden else ''} (it was built by Context.from_logp).")
        f = nll.forward(self.model, self.batch(which, who), hidden=hidden, what=f"{which} batch")
        self._fwd[which] = f
        return f

    def ref_logp(self, which: str = "forget", who: Optional[str] = None) -> torch.Tensor:
        """[B, T-1] θ_ref token log-probs of ``which`` (detached constants), on the model's device."""
        if which in self._ref_logp:
            return self._ref_logp[which]
        return self._ref(who).logp(self.batch(which, who)).to(**self._like(which))

    def ref_full_logprobs(self, which: str = "retain", who: Optional[str] = None) -> torch.Tensor:
        """[B, T-1, V] θ_ref log-softmax of ``which`` (KL regulariser, UNDIAL)."""
        return self._ref(who).full_logprobs(self.batch(which, who)).to(**self._like(which))

    def ref_hidden(self, which: str, layer: int, who: Optional[str] = None) -> torch.Tensor:
        """[B, T, d] θ_ref ``hidden_states[layer]`` of ``which`` (RR regulariser)."""
        return self._ref(who).hidden(self.batch(which, who), layer).to(**self._like(which))

    def clear(self) -> None:
        """Forget the cached forward passes (call after the model changed)."""
        self._fwd.clear()

    def cached(self, which: str) -> bool:
        """Has the forward pass on ``which`` been run (and kept) in this context?"""
        return which in self._fwd

    def release(self, which: str) -> None:
        """Drop one cached forward pass (its logits and graph are freed once nothing else holds them)."""
        self._fwd.pop(which, None)

    # ---------------------------------------------------------------------------------------------------------
    def _ref(self, who):
        if self.ref is None:
            name = f"objective {who!r}" if who else "this objective"
            raise ValueError(
                f"{name} needs θ_ref (the model before unlearning): build it once, before unlearning, "
                f"with ref = Reference.from_model(model, [forget, retain]) (geffect_lite.reference) — or "
                f"Reference.for_objective(obj, model, [forget, retain]) — and pass Context(model, forget, retain, "
                f"ref=ref).")
        return self.ref

    def _like(self, which) -> dict:
        """device and dtype of ``which``'s forward, so θ_ref tensors mix with it (a cache built in fp32 works
        after model.double())."""
        f = self._fwd.get(which)
        if f is not None:
            return dict(device=f.logp.device, dtype=f.logp.dtype)
        if self.model is not None:
            p = next(self.model.parameters())
            dt = torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype
            return dict(device=p.device, dtype=dt)
        return dict(device=torch.device("cpu"))

    @classmethod
    def from_logp(cls, logp, mask=None, ref_logp=None) -> "Context":
        """A model-free context from known token log-probs — for checking closed forms by hand.

        Args:
            logp: a [B, T'] tensor (the forget answer) or a dict ``{"forget": …, "idk": …, "retain": …}``.
            mask: same structure, 1 on answer positions (default: all ones).
            ref_logp: same structure, θ_ref log-probs.
        Only objectives that need nothing but token log-probs work on it (GA, WGA, NPO, TNPO, SimNPO, IdkDPO…).
        """
        def as_dict(x):
            return x if isinstance(x, dict) or x is None else {"forget": x}
        logp, mask, ref_logp = as_dict(logp), as_dict(mask) or {}, as_dict(ref_logp) or {}
        ctx = cls(None, None)
        for which, lp in logp.items():
            lp = torch.as_tensor(lp)
            if not lp.is_floating_point():
                lp = lp.double()
            m = torch.as_tensor(mask.get(which, torch.ones_like(lp))).to(lp.dtype)
            if m.sum() == 0:
                raise EmptyBatchError(f"the {which} log-probs have no answer positions (mask is all 0).")
            B = lp.shape[0]
            batch = dict(ids=[str(i) for i in range(B)])
            ctx._fwd[which] = Forward(logits=None, logp=lp * m, mask=m, hidden_states=None, batch=batch)
        ctx.forget = ctx._fwd["forget"].batch if "forget" in ctx._fwd else {}
        if "idk" in ctx._fwd:
            ctx.forget["idk"] = ctx._fwd["idk"].batch
        if "retain" in ctx._fwd:
            ctx.retain = ctx._fwd["retain"].batch
        for which, r in ref_logp.items():
            r = torch.as_tensor(r)
            f = ctx._fwd.get(which)
            ctx._ref_logp[which] = r.to(f.logp.dtype) * f.mask if f is not None else r
        return ctx


# ==============================================================================================================
# Closed forms (used by the classes; also for checking them on hand-computed numbers)
# ==============================================================================================================
def npo_loss(seq_logp: torch.Tensor, ref_seq_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-instance NPO loss (2/β)·log(1 + e^{β r_b}) = −(2/β)·log σ(−β r_b), r_b = seq_logp − ref_seq_logp; [B]."""
    return (2.0 / beta) * F.softplus(beta * (seq_logp - ref_seq_logp))


def simnpo_loss(seq_logp: torch.Tensor, lengths: torch.Tensor, beta: float, delta: float = 0.0) -> torch.Tensor:
    """Per-instance SimNPO loss −(2/β)·log σ(β(S̄_b − δ)) with S̄_b = −seq_logp/|y_b|; [B]."""
    mean_nll = -seq_logp / lengths
    return -(2.0 / beta) * F.logsigmoid(beta * (mean_nll - delta))


def dpo_loss(r_w: torch.Tensor, r_l: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-instance DPO loss with OU's 2/β factor: −(2/β)·log σ(β(r_w − r_l)); [B]."""
    return -(2.0 / beta) * F.logsigmoid(beta * (r_w - r_l))


def tnpo_weight(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float, eps: float = 1e-5) -> torch.Tensor:
    """TNPO token weight 2p^β / (p^β + p_ref^β + ε), computed in log space (no underflow at large β)."""
    a, b = beta * logp, beta * ref_logp
    terms = [a, b]
    if eps > 0:
        terms.append(torch.full_like(a, math.log(eps)))
    return 2.0 * torch.exp(a - torch.logsumexp(torch.stack(terms), 0))


# ==============================================================================================================
# Hyper-parameter checks
# ==============================================================================================================
def _number(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def _positive(name, v):
    v = _number(name, v)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return v


def _nonneg(name, v):
    v = _number(name, v)
    if v < 0:
        raise ValueError(f"{name} must be ≥ 0, got {v!r}")
    return v


def _choice(name, v, options):
    if v not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {v!r}")
    return v


def _n_layers(model) -> int:
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if n is None:
        raise ValueError("cannot tell the model's number of layers (config.num_hidden_layers is missing); pass "
                         "an explicit layer.")
    return int(n)


def _check_layer(name, layer, model):
    L = _n_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= L:
        raise ValueError(f"{name}={layer!r} is out of range: this model has hidden_states[0..{L}] "
                         f"(0 = embedding output, {L} = last block{', after the final norm' if L else ''}).")
    return layer


def _logits(fwd: Forward, who: str) -> torch.Tensor:
    """The forward's logits, upcast from half precision (log-softmax over V in bf16 loses too much)."""
    if fwd.logits is None:
        raise ValueError(f"{who} needs logits (a Context with a model, not Context.from_logp).")
    lg = fwd.logits
    return lg.float() if lg.dtype in (torch.float16, torch.bfloat16) else lg


def _n(fwd: Forward, what: str = "forget batch") -> torch.Tensor:
    N = fwd.mask.sum()
    if float(N) == 0:
        raise EmptyBatchError(f"the {what} has no answer tokens.")
    return N


def _seq_log_ratio(ctx, which: str, who: str):
    """(forward, r_b) with r_b = log π_θ(y_b) − log π_ref(y_b), sequence sums over answer tokens (NPO, DPO)."""
    f = ctx.fwd(which, who=who)
    return f, f.seq_logp - (ctx.ref_logp(which, who=who) * f.mask).sum(1)


def _seq_lengths(fwd: Forward, who: str) -> torch.Tensor:
    L = fwd.seq_len
    if bool((L == 0).any()):
        bad = [fwd.batch.get("ids", list(range(len(L))))[i] for i in torch.nonzero(L == 0).flatten().tolist()]
        raise EmptyBatchError(f"{who}: instances {bad} have no answer tokens, so their per-sequence mean NLL is "
                              "0/0. Drop them or check max_length.")
    return L


# ==============================================================================================================
# Base class
# ==============================================================================================================
class Objective:
    """Base class. Subclasses set ``name``, ``equation``, ``defaults`` and implement :meth:`forget_loss`.

    Interface (used by the G-effect engine): ``forget_terms``, ``token_terms``, ``parts``, ``loss``,
    ``grad_weights``, ``weight_view``, ``summary``, ``hparams``, ``needs_ref``, ``needs_retain``,
    ``hidden_layers``.
    """

    name: str = "objective"
    equation: str = ""
    needs_ref: bool = False
    needs_retain: bool = False
    ref_full: bool = False          # needs θ_ref's full log-softmax (UNDIAL)
    defaults: dict = {}
    checks: dict = {}               # hyper-parameter → validator (e.g. _positive); applied by _validate

    def __init__(self, **hparams):
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            valid = ", ".join(self.defaults) or "(none)"
            raise TypeError(f"objective {self.name!r} has no hyper-parameter(s) {', '.join(unknown)}; "
                            f"valid: {valid}")
        hp = dict(self.defaults)
        hp.update(hparams)
        self.hparams = self._validate(hp)

    def _validate(self, hp: dict) -> dict:
        for k, check in self.checks.items():
            hp[k] = check(k, hp[k])
        return hp

    def __getattr__(self, key):
        # hyper-parameters read as attributes: obj.beta
        hp = self.__dict__.get("hparams")
        if hp is not None and key in hp:
            return hp[key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __repr__(self):
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({hp})"

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.loss(ctx)

    # --- model-dependent defaults / checks --------------------------------------------------------------------
    @property
    def hidden_layers(self) -> tuple:
        """hidden_states indices whose reference values are needed (RR) or that are used (RMU)."""
        return ()

    def bind(self, model) -> "Objective":
        """Resolve model-dependent defaults (e.g. RMU's middle layer) and validate them; returns self."""
        return self

    def ref_requirements(self, model=None) -> dict:
        """What :class:`Reference` must cache for this objective: ``full_logprobs`` and ``hidden_layers``."""
        if model is not None:
            self.bind(model)
        return dict(full_logprobs=self.ref_full, hidden_layers=())

    # --- the loss ---------------------------------------------------------------------------------------------
    def forget_loss(self, ctx: Context) -> torch.Tensor:
        raise NotImplementedError

    def token_terms(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B, T-1] per answer token; sums to the forget part. None if not token-decomposable."""
        return None

    def forget_terms(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B] per forget instance; sums to the forget part. None if not decomposable."""
        t = self.token_terms(ctx)
        return None if t is None else t.sum(1)

    def parts(self, ctx: Context) -> Dict[str, torch.Tensor]:
        return {"forget": self.forget_loss(ctx)}

    def loss(self, ctx: Context) -> torch.Tensor:
        """The minimised loss: the sum of :meth:`parts`. Raises NonFiniteError if NaN/inf."""
        L = sum(self.parts(ctx).values())
        return nll.check_finite(L, f"the {self.name} loss")

    def grad_weights(self, ctx: Context) -> Optional[Dict[str, torch.Tensor]]:
        """Detached w[which] [B, T-1] with ∇loss = Σ w ∇log p (normalisation included), or None."""
        return None

    # --- per-token view ---------------------------------------------------------------------------------------
    def token_weight(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B, T-1] the paper's unnormalised weight on ∇log p of each forget answer token (detached), or None."""
        return None

    def seq_weight(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B] the sequence weight (NPO, SimNPO, IdkDPO), detached, or None."""
        return None

    def weight_view(self, ctx: Context):
        """Tidy DataFrame, one row per forget answer token: id, instance, position (index t in the [B, T-1]
        frame of ``token_terms``), answer_pos (index within the answer), token_id, logp, p, inverse_confidence
        (1/p), weight (unnormalised weight on ∇log p; NaN when not of that form), seq_weight (NaN if none).
        ``logp`` stays informative after p underflows (GA drives it below 1e-300)."""
        import numpy as np
        import pandas as pd
        f = ctx.fwd("forget", who=self.name)
        mask = f.mask.detach().bool()
        bt = mask.nonzero(as_tuple=False)
        b, t = bt[:, 0], bt[:, 1]
        logp = f.logp.detach()[b, t].double()   # fp64: p = e^logp underflows in fp32 once GA has collapsed it
        p = logp.exp()
        tw, sw = self.token_weight(ctx), self.seq_weight(ctx)
        nan = torch.full_like(p, float("nan"))
        weight = tw.detach()[b, t] if tw is not None else (sw.detach()[b] if sw is not None else nan)
        seqw = sw.detach()[b] if sw is not None else nan
        ids = f.batch.get("ids") or [str(i) for i in range(mask.shape[0])]
        labels = f.batch.get("labels")
        token_id = labels[:, 1:][b, t].cpu().numpy() if labels is not None else np.full(len(b), -1)
        answer_pos = (mask.long().cumsum(1) - 1)[b, t]
        return pd.DataFrame(dict(
            id=[ids[i] for i in b.tolist()], instance=b.cpu().numpy().astype(int),
            position=t.cpu().numpy().astype(int), answer_pos=answer_pos.cpu().numpy().astype(int),
            token_id=token_id, logp=logp.cpu().numpy(), p=p.cpu().numpy(),
            inverse_confidence=(-logp).exp().cpu().numpy(),
            weight=weight.double().cpu().numpy(), seq_weight=seqw.double().cpu().numpy()))

    def summary(self, ctx: Context) -> Dict[str, float]:
        """Scalars to log per step: loss, each part, mean_weight, mean_seq_weight, mean_p,
        mean_inverse_confidence (over forget answer tokens only; GE's log counts masked positions as 1)."""
        parts = {k: float(v.detach()) for k, v in self.parts(ctx).items()}
        out = {"loss": sum(parts.values())}
        out.update(parts)
        f = ctx.fwd("forget", who=self.name)
        m = f.mask.detach().bool()
        logp = f.logp.detach()[m].double()     # fp64 so 1/p stays finite after a GA collapse (up to p ≈ 1e-300)
        p = logp.exp()
        tw, sw = self.token_weight(ctx), self.seq_weight(ctx)
        if tw is not None:        # token weights: mean over answer tokens
            out["mean_weight"] = float(tw.detach()[m].mean())
        elif sw is not None:      # sequence weights: mean over instances (the paper's Fig. 5a)
            out["mean_weight"] = float(sw.detach().mean())
        else:
            out["mean_weight"] = float("nan")
        out["mean_seq_weight"] = float(sw.detach().mean()) if sw is not None else float("nan")
        out["mean_p"] = float(p.mean())
        out["mean_inverse_confidence"] = float((-logp).exp().mean())
        out["n_tokens"] = float(m.sum())
        return out


class TokenWeighted(Objective):
    """Token-mean weighted GA: L = (1/N) Σ_bt sg(w_bt) log p_bt, so ∇L = Σ (w_bt/N) ∇log p_bt.

    Subclasses define :meth:`token_weight` (detached, unnormalised). GA is w = 1.
    """

    def _keep(self, f: Forward) -> torch.Tensor:
        return f.mask

    def token_weight(self, ctx):
        raise NotImplementedError

    def token_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        keep = self._keep(f)
        N = _n(keep_fwd(f, keep))
        return self.token_weight(ctx).detach() * f.logp * keep / N

    def forget_loss(self, ctx):
        return self.token_terms(ctx).sum()

    def grad_weights(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        keep = self._keep(f)
        N = _n(keep_fwd(f, keep))
        return {"forget": (self.token_weight(ctx) * keep / N).detach()}


def keep_fwd(f: Forward, keep: torch.Tensor) -> Forward:
    """A Forward view restricted to the positions in ``keep`` (only the mask changes)."""
    if keep is f.mask:
        return f
    return Forward(logits=f.logits, logp=f.logp, mask=keep, hidden_states=f.hidden_states, batch=f.batch)


# ==============================================================================================================
# The objectives
# ==============================================================================================================
class GA(TokenWeighted):
    """Gradient ascent (objectives.md §1; paper Eq. 1).

    L = −R(F) = (1/N) Σ_bt log p_bt — token mean, as GE/OU/TOFU (``-outputs.loss``); the paper's Eq. 1 writes
    per-sequence sums. Nothing detached. Weight on ∇log p: 1/N, i.e. 1/(N·p) on ∇p — the inverse confidence
    term that amplifies already-unlearned tokens. No hyper-parameters.
    """
    name = "ga"
    equation = "L = (1/N) Σ_bt log p_bt   (Eq. 1; token mean)"
    defaults = {}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        return torch.ones_like(f.logp).detach() * f.mask


class WGA(TokenWeighted):
    """Weighted gradient ascent (objectives.md §7; paper Eq. 2).

    L = (1/N) Σ_bt sg(p_bt)^α log p_bt (token mean; GE and OU identical; Eq. 2 uses per-sequence sums).
    The weight p^α is detached. Weight on ∇log p: p^α/N (= p^{α−1}/N on ∇p; α = 1 cancels the inverse
    confidence term; α = 0 is GA).

    Hyper-parameter ``alpha`` (≥ 0), default **1**: OU's default and what OU's WGA README says the paper used.
    GE's code default is 5 (named ``beta`` there, as in OU — OU's ``alpha`` is the retain weight); the paper's
    Fig. 3c uses 0.5.
    """
    name = "wga"
    equation = "L = (1/N) Σ_bt sg(p_bt)^α log p_bt   (Eq. 2; token mean)"
    defaults = {"alpha": 1.0}

    checks = {"alpha": _nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        return torch.exp(self.hparams["alpha"] * f.logp.detach()) * f.mask


class TNPO(TokenWeighted):
    """Token-wise NPO (objectives.md §6; paper Eq. 6).

    L = (1/N) Σ_bt w_bt log p_bt,  w_bt = sg(2 p^β / (p^β + p_ref^β + ε))  — token mean (GE ``tnpo``/``ins_npo``;
    Eq. 6 uses per-sequence sums and no ε). p and p_ref inside the weight are detached. Weight on ∇log p: w/N.
    With ε = 0 the gradient equals that of the token-wise NPO loss (1/N) Σ (2/β) log(1 + (p/p_ref)^β); the value
    here is GE's weighted surrogate, not that loss.

    Hyper-parameters: ``beta`` (> 0), default **1** (paper Fig. 5c; GE's code default is 4); ``eps`` (≥ 0),
    default **1e-5** (GE parity). With ε > 0 the weight at θ = θ_ref is 2p^β/(2p^β + ε), ≈ 1 only for confident
    tokens (β = 4, p = 1e-3 gives ≈ 1e-6): use ε = 0 for identities.
    Needs θ_ref.
    """
    name = "tnpo"
    equation = "L = (1/N) Σ_bt sg(2p^β/(p^β + p_ref^β + ε)) log p_bt   (Eq. 6; token mean)"
    needs_ref = True
    defaults = {"beta": 1.0, "eps": 1e-5}

    checks = {"beta": _positive, "eps": _nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        ref = ctx.ref_logp("forget", who=self.name)
        return tnpo_weight(f.logp.detach(), ref, self.hparams["beta"], self.hparams["eps"]).detach() * f.mask


class WTNPO(TokenWeighted):
    """Weighted token-wise NPO (objectives.md §8; GE code — the paper gives no equation).

    L = (1/N) Σ_bt w_bt log p_bt,  w_bt = sg(2 p^{β+α} / (p^β + p_ref^β + ε)) = WGA's p^α × TNPO's weight.
    Token mean; the whole weight is detached. Weight on ∇log p: w/N.

    Hyper-parameters: ``beta`` (> 0) default **1** and ``alpha`` (≥ 0) default **1** — the TNPO and WGA defaults
    here, so WTNPO = WGA × TNPO with default settings. GE HEAD (``wtnpo_<α>``) uses β = 4, α = 1.5; earlier GE
    versions used β = 0.1 or β = α (the meanings changed across versions). ``eps`` default 1e-5 (GE).
    Needs θ_ref.
    """
    name = "wtnpo"
    equation = "L = (1/N) Σ_bt sg(2p^(β+α)/(p^β + p_ref^β + ε)) log p_bt   (GE code; token mean)"
    needs_ref = True
    defaults = {"beta": 1.0, "alpha": 1.0, "eps": 1e-5}

    checks = {"beta": _positive, "alpha": _nonneg, "eps": _nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        ref = ctx.ref_logp("forget", who=self.name)
        lp = f.logp.detach()
        w = torch.exp(self.hparams["alpha"] * lp) * tnpo_weight(lp, ref, self.hparams["beta"], self.hparams["eps"])
        return w.detach() * f.mask


class SatImp(TokenWeighted):
    """Saturation × importance weighting (objectives.md §13; OU ``SatImp``, ``tmlr-group/SatImp``).

    L = (1/N) Σ_bt sg(p)^{β1} sg(1 − p)^{β2} log p_bt (token mean). The weight is detached; on ∇log p it is
    p^{β1}(1 − p)^{β2}/N. β2 = 0 is WGA with α = β1; β1 = β2 = 0 is GA.

    Hyper-parameters ``beta1`` = **5**, ``beta2`` = **1** (≥ 0; OU ``SatImp.yaml``). OU's forget/retain
    coefficients (YAML γ = 0.1, α = 1; README says γ = 1, α = 0.1 — they disagree) are not part of this term:
    compose with ``+gd``.
    """
    name = "satimp"
    equation = "L = (1/N) Σ_bt sg(p^β1 (1−p)^β2) log p_bt   (OU; token mean)"
    defaults = {"beta1": 5.0, "beta2": 1.0}

    checks = {"beta1": _nonneg, "beta2": _nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        lp = f.logp.detach()
        p = lp.exp()
        w = torch.exp(self.hparams["beta1"] * lp) * torch.pow((1.0 - p).clamp_min(0), self.hparams["beta2"])
        return w * f.mask


class CEU(TokenWeighted):
    """CE-U, cross-entropy unlearning (objectives.md §14; OU ``CE_U``, arXiv 2503.01224).

    Drop the first ``n`` answer tokens of each sequence. At each kept position the target is the detached current
    distribution with the true token removed, q_v = sg(p_v)/(1 − sg(p_y)) (v ≠ y), q_y = 0; the loss is the mean
    over the N' kept positions of −Σ_v q_v log π_θ(v). Gradient (derived): token-weighted GA with w = p/(1 − p)
    on ∇log p, divided by N' — the gradient of the mean of −log(1 − p). (objectives.md writes the logit gradient
    as p/(1−p)·(π − e_y); the sign is (e_y − π): it is GA-like, as the card concludes.)

    Hyper-parameter ``n`` (int ≥ 0), default **1** (OU ``ignore_first_n_answer_tokens``).
    """
    name = "ce-u"
    equation = "L = mean_{kept bt} −Σ_v q_v log π_θ(v),  q = sg(softmax(z with z_y = −∞))   (OU)"
    defaults = {"n": 1}

    def _validate(self, hp):
        n = hp["n"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int ≥ 0, got {n!r}")
        return hp

    def _keep(self, f):
        m = f.mask
        return m * ((m.cumsum(1) > self.hparams["n"]).to(m.dtype))

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        p = f.logp.detach().exp()
        keep = self._keep(f)
        # masked positions hold logp = 0 (p = 1): select, don't multiply, or inf·0 = NaN
        return torch.where(keep > 0, p / (1.0 - p), torch.zeros_like(p))

    def token_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        logits = _logits(f, self.name)
        keep = self._keep(f)
        N = _n(keep_fwd(f, keep), "forget batch after dropping the first n answer tokens")
        tgt = f.batch["labels"][:, 1:].clamp_min(0)
        logq = torch.log_softmax(logits, -1)
        z = logits.detach().scatter(-1, tgt.unsqueeze(-1), float("-inf"))
        q = torch.softmax(z, -1)
        ce = -(q * logq.masked_fill(q == 0, 0.0)).sum(-1)
        return ce * keep / N


class NPO(Objective):
    """Negative preference optimisation (objectives.md §4; paper Eq. 3–4).

    L = (2/β)·(1/B) Σ_b log(1 + e^{β r_b}),  r_b = log π_θ(y_b) − log π_ref(y_b) with **sequence sums** over
    answer tokens, then the batch mean. Reference log-probs detached; nothing else (the weight arises from the
    analytic loss). Gradient: sequence weight (1/B)·2σ(β r_b) on ∇log π_θ(y_b) (Eq. 4). At θ = θ_ref: weights 1,
    L = (2/β) ln 2, gradient = sequence-summed GA.

    Hyper-parameter ``beta`` (> 0), default **0.1**: OU and the NPO repository, and one of the paper's figure
    values (0.1, 1, 2). GE's training default is 0.5. OU's NPO also adds a retain NLL by default: that is
    ``npo+gd`` here. Needs θ_ref.
    """
    name = "npo"
    equation = "L = (2/β)(1/B) Σ_b log(1 + (π_θ(y_b)/π_ref(y_b))^β)   (Eq. 3; sequence sums)"
    needs_ref = True
    defaults = {"beta": 0.1}

    checks = {"beta": _positive}

    def _r(self, ctx):
        return _seq_log_ratio(ctx, "forget", self.name)

    def forget_terms(self, ctx):
        f, r = self._r(ctx)
        _n(f)
        return npo_loss(r, torch.zeros_like(r), self.hparams["beta"]) / r.shape[0]

    def forget_loss(self, ctx):
        return self.forget_terms(ctx).sum()

    def seq_weight(self, ctx):
        _, r = self._r(ctx)
        return 2.0 * torch.sigmoid(self.hparams["beta"] * r.detach())

    def grad_weights(self, ctx):
        f, _ = self._r(ctx)
        W = self.seq_weight(ctx)
        return {"forget": (W / W.shape[0]).unsqueeze(1) * f.mask.detach()}


class SimNPO(Objective):
    """SimNPO, reference-free NPO (objectives.md §5; Fan et al. 2024; OU ``SimNPO``).

    L = −(2/β)·(1/B) Σ_b log σ(β(S̄_b − δ)),  S̄_b = S_θ(y_b)/|y_b| the **per-sequence mean** NLL; batch mean.
    Nothing detached, no θ_ref. Gradient (derived): sequence weight (1/B)·(2/|y_b|)·p̄_b^β/(p̄_b^β + e^{−βδ})
    on ∇log π_θ(y_b), with p̄_b = e^{−S̄_b}. ``weight``/``seq_weight`` in :meth:`weight_view` are
    2σ(−β(S̄_b − δ)) (the NPO-like factor; the 1/|y_b| is normalisation).

    Hyper-parameters: ``beta`` (> 0) default **4.5**, ``delta`` default **0** (OU; OU's δ is the SimNPO
    repository's ``gamma``). OU scales the term by γ = 0.125 and adds a retain NLL (α = 1): scaling is linear
    (G-effects scale with it); the retain term is ``simnpo+gd``.
    """
    name = "simnpo"
    equation = "L = −(2/β)(1/B) Σ_b log σ(β(S_θ(y_b)/|y_b| − δ))   (per-sequence mean NLL)"
    defaults = {"beta": 4.5, "delta": 0.0}

    checks = {"beta": _positive, "delta": _number}

    def forget_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        L = _seq_lengths(f, self.name)
        return simnpo_loss(f.seq_logp, L, self.hparams["beta"], self.hparams["delta"]) / L.shape[0]

    def forget_loss(self, ctx):
        return self.forget_terms(ctx).sum()

    def seq_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        L = _seq_lengths(f, self.name)
        mean_nll = -f.seq_logp.detach() / L
        return 2.0 * torch.sigmoid(-self.hparams["beta"] * (mean_nll - self.hparams["delta"]))

    def grad_weights(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        L = _seq_lengths(f, self.name)
        W = self.seq_weight(ctx) / (L * L.shape[0])
        return {"forget": W.unsqueeze(1).detach() * f.mask.detach()}


class IdkDPO(Objective):
    """DPO with the refusal as the preferred answer (objectives.md §10; OU ``DPO``, ``unlearn/tofu/idk.yaml``).

    L = −(2/β)·(1/B) Σ_b log σ(β(r_w,b − r_l,b)),  y_w = refusal (``forget["idk"]``), y_l = original answer,
    r = sequence-sum log-ratio to θ_ref (detached). Gradient (derived): (1/B) Σ_b W_b [∇log π(y_l) − ∇log π(y_w)]
    with W_b = 2σ(β(r_l,b − r_w,b)): GA on the original answer and NLL descent on the refusal, one shared
    sequence weight. At θ = θ_ref: W = 1, L = (2/β) ln 2.

    Hyper-parameter ``beta`` (> 0), default **0.1** (OU, TOFU). The **2/β factor** is OU's (also the NPO and
    SimNPO repositories'); legacy TOFU's DPO and standard DPO lack it, so at β = 0.1 this gradient (and G-effect)
    is 20× TOFU's. Needs θ_ref and ``collate(..., idk=True)``.
    """
    name = "idkdpo"
    equation = "L = −(2/β)(1/B) Σ_b log σ(β(r_w,b − r_l,b)),  y_w = IDK answer, y_l = forget answer"
    needs_ref = True
    defaults = {"beta": 0.1}

    checks = {"beta": _positive}

    def _r(self, ctx):
        fl = ctx.fwd("forget", who=self.name)
        fw = ctx.fwd("idk", who=self.name)
        if fw.logp.shape[0] != fl.logp.shape[0]:
            raise ValueError(f"idkdpo: the idk batch has {fw.logp.shape[0]} instances, the forget batch "
                             f"{fl.logp.shape[0]}; they must be the same questions.")
        _n(fl), _n(fw, "idk batch")
        _, r_l = _seq_log_ratio(ctx, "forget", self.name)
        _, r_w = _seq_log_ratio(ctx, "idk", self.name)
        return fl, fw, r_w, r_l

    def forget_terms(self, ctx):
        _, _, r_w, r_l = self._r(ctx)
        return dpo_loss(r_w, r_l, self.hparams["beta"]) / r_l.shape[0]

    def forget_loss(self, ctx):
        return self.forget_terms(ctx).sum()

    def seq_weight(self, ctx):
        _, _, r_w, r_l = self._r(ctx)
        return 2.0 * torch.sigmoid(self.hparams["beta"] * (r_l - r_w).detach())

    def grad_weights(self, ctx):
        fl, fw, _, _ = self._r(ctx)
        W = (self.seq_weight(ctx) / fl.logp.shape[0]).unsqueeze(1)
        return {"forget": W * fl.mask.detach(), "idk": -W * fw.mask.detach()}


class PO(Objective):
    """Preference optimisation with "I don't know" answers — IDK fine-tuning (objectives.md §9; paper Eq. 7).

    L = R(x_b, y_b^idk) = −(1/N_idk) Σ log p(y^idk_bt): the token-mean NLL of the refusal answer
    ``forget["idk"]`` (GE ``idk``). Nothing detached. Gradient: w = −1/N_idk on ∇log p of the refusal tokens
    (plain fine-tuning); no direct term on the original answer's tokens, so ``weight`` is NaN in
    :meth:`weight_view` and ``token_terms`` is None (the terms live on the refusal tokens); ``forget_terms`` is the
    per-question share of the loss. TOFU's ``idk`` also mixes a retain NLL into the same token mean: that is
    close to ``po+gd`` (which keeps the two means separate). No hyper-parameters.
    """
    name = "po"
    equation = "L = −(1/N_idk) Σ_bt log p(y^idk_bt | x_b, y^idk_b,<t)   (Eq. 7; token mean)"
    defaults = {}

    def forget_terms(self, ctx):
        f = ctx.fwd("idk", who=self.name)
        return f.token_nll.sum(1) / _n(f, "idk batch")

    def forget_loss(self, ctx):
        return self.forget_terms(ctx).sum()

    def grad_weights(self, ctx):
        f = ctx.fwd("idk", who=self.name)
        return {"idk": (-f.mask / _n(f, "idk batch")).detach()}


class RMU(Objective):
    """RMU's forget term: misdirect a hidden representation to a fixed random target (objectives.md §11; Eq. 8).

    L = (1/|P|) Σ_{(b,t)∈P} (1/d) ‖h_bt − target‖², h = ``hidden_states[layer]`` (HF convention: 0 = embedding
    output), P = positions whose *next* token is an answer token, pooled over the batch (GE ``rmu_<L>``). The
    target is a constant. Not an NLL-weighted form (``grad_weights`` is None); parameters after ``layer`` get
    exactly zero gradient. ``token_terms`` [B, T-1] are the per-position distances / |P| (position t predicts
    answer token t+1, the frame of every other objective).

    Hyper-parameters:
      * ``layer`` (int, 0 … num_hidden_layers), default **None = num_hidden_layers // 2** (the middle, which the
        paper found best). The paper's 11th/22nd/33rd layers are GE's ``rmu_10/21/32``; OU/WMDP "layer 7" (block
        output) is ``hidden_states[8]``.
      * ``c`` (> 0), default **2** (GE; OU ``RMU.yaml``); the paper's Fig. 7 uses 5, WMDP 6.5–20.
      * ``target``: **"raw"** (default; GE and the paper: c·u, ‖c·u‖ ≈ c·√(d/3)) or "unit" (OU, WMDP:
        c·u/‖u‖, norm c).
      * ``seed`` (int), default 0: u ~ U[0, 1)^d is drawn once per hidden size d from
        ``torch.Generator().manual_seed(seed)`` in float64 and kept, so training and G-effect use the same target
        (GE draws it separately in each process).
    OU's distance is a per-sequence mean over answer positions, WMDP's an element MSE over all positions; GE's
    September-2024 code used L1. Only GE's form is implemented.
    """
    name = "rmu"
    equation = "L = (1/|P|) Σ_(b,t)∈P ‖h_bt − c·u‖²/d,  h = hidden_states[layer]   (Eq. 8; GE form)"
    defaults = {"layer": None, "c": 2.0, "target": "raw", "seed": 0}

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self._layer_arg = self.hparams["layer"]
        self._u: Dict[int, torch.Tensor] = {}

    def _validate(self, hp):
        hp["c"] = _positive("c", hp["c"])
        _choice("target", hp["target"], ("raw", "unit"))
        L = hp["layer"]
        if L is not None and (isinstance(L, bool) or not isinstance(L, int) or L < 0):
            raise ValueError(f"layer must be None or an int ≥ 0 (an index into hidden_states), got {L!r}")
        if isinstance(hp["seed"], bool) or not isinstance(hp["seed"], int):
            raise ValueError(f"seed must be an int, got {hp['seed']!r}")
        return hp

    def bind(self, model):
        L = self._layer_arg if self._layer_arg is not None else _n_layers(model) // 2
        self.hparams["layer"] = _check_layer("layer", L, model)
        return self

    @property
    def hidden_layers(self):
        L = self.hparams["layer"]
        return () if L is None else (L,)

    def u(self, d: int) -> torch.Tensor:
        """The random direction u ~ U[0, 1)^d (float64, CPU), drawn once per d from the seeded generator."""
        if d not in self._u:
            g = torch.Generator().manual_seed(self.hparams["seed"])
            self._u[d] = torch.rand(d, generator=g, dtype=torch.float64)
        return self._u[d]

    def target_vector(self, d: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """c·u (``target="raw"``) or c·u/‖u‖ (``"unit"``)."""
        u = self.u(d)
        if self.hparams["target"] == "unit":
            u = u / u.norm()
        return (self.hparams["c"] * u).to(dtype=dtype, device=device)

    def token_terms(self, ctx):
        if ctx.model is not None:
            self.bind(ctx.model)
        L = self.hparams["layer"]
        f = ctx.fwd("forget", hidden=True, who=self.name)
        h = f.hidden_states[L][:, :-1, :]            # position t predicts token t+1
        tgt = self.target_vector(h.shape[-1], h.dtype, h.device)
        dist = ((h - tgt) ** 2).mean(-1)
        return dist * f.mask / _n(f)

    def forget_loss(self, ctx):
        return self.token_terms(ctx).sum()


class UNDIAL(Objective):
    """UNDIAL: self-distillation towards an adjusted teacher (objectives.md §12; OU ``UNDIAL``).

    q_bt = softmax(z^ref_bt − β e_{y_bt}) (θ_ref's logits with the true token's logit lowered by β; detached);
    L = mean over positions of −Σ_v q_v log π_θ(v). Gradient w.r.t. each position's logits: (π_θ − q)/#positions.
    Not an NLL-weighted form in general (``grad_weights`` None); at θ = θ_ref on an answer position it is
    token-weighted GA with w = pk/(1 − pk), k = 1 − e^{−β}.

    Hyper-parameters: ``beta`` (≥ 0; 0 gives a zero gradient at θ_ref), default **10** (OU; README grid 3/10/30).
    ``positions``: **"answer"** (default) = token mean over answer positions; "all" = OU parity: the mean over all
    B·(T−1) shifted positions, prompt and padding included, where OU's label −100 indexes vocabulary entry V−100
    (a wrap-around that pushes down an arbitrary token) — reproduced here on purpose, for parity only. OU's
    retain weight defaults to 0. Needs θ_ref with ``full_logprobs=True``.
    """
    name = "undial"
    equation = "L = mean_bt −Σ_v q_v log π_θ(v),  q = softmax(z_ref − β·e_y)   (OU)"
    needs_ref = True
    ref_full = True
    defaults = {"beta": 10.0, "positions": "answer"}

    def _validate(self, hp):
        hp["beta"] = _nonneg("beta", hp["beta"])
        _choice("positions", hp["positions"], ("answer", "all"))
        return hp

    def token_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        logits = _logits(f, self.name)
        lref = ctx.ref_full_logprobs("forget", who=self.name).to(logits.dtype)
        labels = f.batch["labels"][:, 1:].to(logits.device)
        V = logits.shape[-1]
        N = _n(f)
        if self.hparams["positions"] == "answer":
            idx = labels.clamp_min(0)
            pos_w = f.mask / N
        else:  # OU parity: every position, −100 wraps to V − 100
            idx = torch.where(labels == -100, torch.full_like(labels, V - 100), labels)
            pos_w = torch.full_like(f.mask, 1.0 / f.mask.numel())
        adj = lref.scatter_add(-1, idx.unsqueeze(-1), torch.full_like(lref[..., :1], -self.hparams["beta"]))
        q = torch.softmax(adj, -1).detach()
        ce = -(q * torch.log_softmax(logits, -1)).sum(-1)
        return ce * pos_w

    def forget_loss(self, ctx):
        return self.token_terms(ctx).sum()


# ==============================================================================================================
# Regularisers and Regularised objectives
# ==============================================================================================================
class Regulariser:
    """A retain-side term L_reg; :class:`Regularised` adds λ·L_reg to a forget objective."""
    name = "reg"
    equation = ""
    needs_ref = False
    ref_full = False
    defaults: dict = {}

    def __init__(self, **hp):
        unknown = sorted(set(hp) - set(self.defaults))
        if unknown:
            raise TypeError(f"regulariser {self.name!r} has no hyper-parameter(s) {', '.join(unknown)}; valid: "
                            f"{', '.join(self.defaults) or '(none)'}")
        self.hparams = dict(self.defaults)
        self.hparams.update(hp)
        self._validate()

    def _validate(self):
        pass

    def bind(self, model, base=None):
        return self

    @property
    def hidden_layers(self) -> tuple:
        return ()

    def value(self, ctx, who) -> torch.Tensor:
        raise NotImplementedError

    def grad_weights(self, ctx, lam, who) -> Optional[Dict[str, torch.Tensor]]:
        return None


class GDReg(Regulariser):
    """Gradient difference's retain term: R(R) = −(1/N_R) Σ log p (token-mean NLL on the retain batch)."""
    name = "gd"
    equation = "L_reg = −(1/N_R) Σ_bt log p_bt(retain)"

    def value(self, ctx, who):
        r = ctx.fwd("retain", who=who)
        return r.token_nll.sum() / _n(r, "retain batch")

    def grad_weights(self, ctx, lam, who):
        r = ctx.fwd("retain", who=who)
        return {"retain": (-lam * r.mask / _n(r, "retain batch")).detach()}


class KLReg(Regulariser):
    """KL(π_ref ‖ π_θ) on the retain batch (objectives.md §3).

    ``kl_positions="all"`` (default; GE/OU/TOFU parity): every position of the batch — prompt and padding
    included — divided by the number of positions. Our forward passes are shifted, so that is the B·(T−1)
    predicting positions; GE/OU use all B·T unshifted positions (one more per row, the last one, which
    predicts nothing): a relative difference of order 1/T. ``"answer"``: token mean over retain answer
    positions. θ_ref's distribution is detached. Gradient w.r.t. logits: λ(π_θ − π_ref)/#positions; exactly 0 at
    θ = θ_ref. Needs θ_ref with ``full_logprobs=True`` for the retain batch.
    """
    name = "kl"
    equation = "L_reg = (1/#pos) Σ_pos KL(π_ref(·|pos) ‖ π_θ(·|pos))   (retain batch)"
    needs_ref = True
    ref_full = True
    defaults = {"kl_positions": "all"}

    def _validate(self):
        _choice("kl_positions", self.hparams["kl_positions"], ("all", "answer"))

    def value(self, ctx, who):
        r = ctx.fwd("retain", who=who)
        logits = _logits(r, who)
        lref = ctx.ref_full_logprobs("retain", who=who).to(logits.dtype)
        if self.hparams["kl_positions"] == "all":
            w = torch.full_like(r.mask, 1.0 / r.mask.numel())
        else:
            w = r.mask / _n(r, "retain batch")
        return nll.kl_ref_to_model(logits, lref, w)


class RRReg(Regulariser):
    """Representation retention, RMU's retain term (paper §3.8; OU ``EMBED_DIFF``).

    L_reg = mean over attended retain positions (attention_mask = 1) of ‖h_θ − h_ref‖²/d at ``hidden_states
    [rr_layer]``; h_ref detached. ``rr_layer`` default None = the base objective's layer when it has one (RMU),
    else num_hidden_layers // 2. 0 with zero gradient at θ = θ_ref. Needs θ_ref with ``hidden_layers=(L,)``.
    """
    name = "rr"
    equation = "L_reg = mean_attended ‖h_θ − h_ref‖²/d at hidden_states[rr_layer]   (retain batch)"
    needs_ref = True
    defaults = {"rr_layer": None}

    def _validate(self):
        L = self.hparams["rr_layer"]
        if L is not None and (isinstance(L, bool) or not isinstance(L, int) or L < 0):
            raise ValueError(f"rr_layer must be None or an int ≥ 0, got {L!r}")
        self._layer_arg = L

    def bind(self, model, base=None):
        L = self._layer_arg
        if L is None:
            L = base.hparams.get("layer") if base is not None and "layer" in base.hparams else None
            if L is None:
                L = _n_layers(model) // 2
        self.hparams["rr_layer"] = _check_layer("rr_layer", L, model)
        return self

    @property
    def hidden_layers(self):
        L = self.hparams["rr_layer"]
        return () if L is None else (L,)

    def value(self, ctx, who):
        L = self.hparams["rr_layer"]
        r = ctx.fwd("retain", hidden=True, who=who)
        h = r.hidden_states[L]
        href = ctx.ref_hidden("retain", L, who=who).to(h.dtype)
        att = r.batch["attention_mask"].to(device=h.device, dtype=h.dtype)
        return (((h - href) ** 2).mean(-1) * att).sum() / att.sum()


REGULARISERS = {"gd": GDReg, "kl": KLReg, "rr": RRReg}


class Regularised(Objective):
    """A forget objective plus λ·regulariser on retain data: L = L_forget + λ·L_reg (paper §3.8).

    ``reg``: "gd" (retain NLL), "kl" (KL(π_ref ‖ π_θ)), "rr" (representation retention). ``lam`` (≥ 0), default
    **1** (GE, OU, TOFU). ``parts()`` returns ``{"forget": L_forget, "reg": λ·L_reg}`` so each G-effect can be
    reported separately (paper Fig. 8). ``forget_terms``/``token_terms``/``weight_view`` are the base
    objective's; ``grad_weights`` exists when both parts are weighted-NLL forms (any base + "gd").
    """

    base_cls = None      # set by named subclasses (GD, KLGA)
    reg_name = None

    def __init__(self, base=None, reg=None, lam: float = 1.0, **reg_hp):
        if base is None:
            base = self.base_cls() if self.base_cls is not None else None
        if base is None:
            raise TypeError("Regularised needs a base objective: Regularised(get_objective('npo'), 'kl', lam=1)")
        if isinstance(base, str):
            base = get_objective(base)
        if isinstance(base, Regularised):
            raise ValueError(f"cannot add a second regulariser to {base.name!r}: one regulariser per objective.")
        reg = reg or self.reg_name
        if reg not in REGULARISERS:
            raise KeyError(f"unknown regulariser {reg!r}; valid: {', '.join(REGULARISERS)}")
        rcls = REGULARISERS[reg]
        unknown = sorted(set(reg_hp) - set(rcls.defaults))
        if unknown:
            valid = ["lam", *rcls.defaults] if self.base_cls is not None else \
                [*base.defaults, "lam", *rcls.defaults]
            raise TypeError(f"objective {base.name + '+' + reg!r} has no hyper-parameter(s) {', '.join(unknown)}; "
                            f"valid: {', '.join(valid)}")
        self.base = base
        self.reg = rcls(**reg_hp)
        self.hparams = {**base.hparams, "lam": _nonneg("lam", lam), **self.reg.hparams}
        if type(self).name == Objective.name or type(self) is Regularised:
            self.name = f"{base.name}+{reg}"
        self.needs_ref = bool(base.needs_ref or self.reg.needs_ref)
        self.needs_retain = True
        self.ref_full = bool(base.ref_full or self.reg.ref_full)
        if type(self) is Regularised:
            self.equation = f"{base.equation}  +  λ·[{self.reg.equation}]"

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in self.reg.hparams.items())
        return f"Regularised({self.base!r}, {self.reg.name!r}, lam={self.hparams['lam']!r}{extra})"

    def _sync(self):
        self.hparams.update(self.base.hparams)
        self.hparams.update(self.reg.hparams)

    def bind(self, model):
        self.base.bind(model)
        self.reg.bind(model, self.base)
        self._sync()
        return self

    @property
    def hidden_layers(self):
        return tuple(dict.fromkeys(self.base.hidden_layers + self.reg.hidden_layers))

    def ref_requirements(self, model=None):
        if model is not None:
            self.bind(model)
        return dict(full_logprobs=self.ref_full, hidden_layers=self.reg.hidden_layers)

    def forget_loss(self, ctx):
        return self.base.forget_loss(ctx)

    def reg_loss(self, ctx):
        """λ·L_reg."""
        if ctx.model is not None:
            self.bind(ctx.model)
        return self.hparams["lam"] * self.reg.value(ctx, self.name)

    def parts(self, ctx):
        return {"forget": self.base.forget_loss(ctx), "reg": self.reg_loss(ctx)}

    def forget_terms(self, ctx):
        return self.base.forget_terms(ctx)

    def token_terms(self, ctx):
        return self.base.token_terms(ctx)

    def token_weight(self, ctx):
        return self.base.token_weight(ctx)

    def seq_weight(self, ctx):
        return self.base.seq_weight(ctx)

    def grad_weights(self, ctx):
        wb = self.base.grad_weights(ctx)
        wr = self.reg.grad_weights(ctx, self.hparams["lam"], self.name)
        if wb is None or wr is None:
            return None
        out = dict(wb)
        for k, v in wr.items():
            out[k] = out[k] + v if k in out else v
        return out


class GD(Regularised):
    """Gradient difference (objectives.md §2): GA + λ·R(retain), both token means.

    Gradient: forget tokens w = 1/N, retain tokens w = −λ/N_R. ``lam`` default **1** (GE ``gd``, OU
    ``GradDiff``, TOFU). Also reachable as ``"ga+gd"``.
    """
    name = "gd"
    equation = "L = (1/N) Σ_bt log p_bt(forget) + λ·(−(1/N_R) Σ_bt log p_bt(retain))   (token means)"
    base_cls = GA
    reg_name = "gd"
    defaults = {"lam": 1.0}


class KLGA(Regularised):
    """KL-regularised GA, TOFU's "KL" (objectives.md §3): GA + λ·KL(π_ref ‖ π_θ) on retain data.

    ``lam`` default **1**; ``kl_positions`` default "all" (GE/OU/TOFU parity; see :class:`KLReg`). Same as
    ``"ga+kl"``. Needs θ_ref with ``full_logprobs=True``.
    """
    name = "kl"
    equation = "L = (1/N) Σ_bt log p_bt(forget) + λ·(1/#pos) Σ_pos KL(π_ref ‖ π_θ)(retain)"
    base_cls = GA
    reg_name = "kl"
    defaults = {"lam": 1.0, "kl_positions": "all"}


# ==============================================================================================================
# User-defined objectives
# ==============================================================================================================
class UserObjective(Objective):
    """An objective from a user function ``fn(out, batch)`` (or ``fn(out, batch, ref_logp)`` with needs_ref).

    ``out`` is the forget :class:`nll.Forward` (``out.logp``, ``out.mask``, ``out.seq_logp``, …), ``batch`` the
    forget batch (on the model's device). With ``needs_retain=True`` the retain Forward is passed as
    ``retain=``. The function returns the loss to minimise: a scalar, or a [B] vector of per-instance terms (then
    the loss is their sum and ``forget_terms`` is the vector).
    """
    fn: Callable = None
    defaults = {}

    def _call(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        args = [f, f.batch]
        if self.needs_ref:
            args.append(ctx.ref_logp("forget", who=self.name))
        kw = {"retain": ctx.fwd("retain", who=self.name)} if self.needs_retain else {}
        out = type(self).fn(*args, **kw)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"user objective {self.name!r} must return a torch.Tensor (a scalar or [B]); got "
                            f"{type(out).__name__}")
        B = f.logp.shape[0]
        if out.dim() == 0 or tuple(out.shape) == (B,):
            return out
        raise ValueError(f"user objective {self.name!r} returned shape {tuple(out.shape)}; expected a scalar or "
                         f"a per-instance vector of shape ({B},)")

    def forget_loss(self, ctx):
        out = self._call(ctx)
        return out.sum() if out.dim() else out

    def forget_terms(self, ctx):
        out = self._call(ctx)
        return out if out.dim() else None


# ==============================================================================================================
# Registry
# ==============================================================================================================
OBJECTIVES: Dict[str, type] = {
    "ga": GA, "gd": GD, "kl": KLGA, "npo": NPO, "po": PO, "idk": PO, "rmu": RMU, "wga": WGA, "tnpo": TNPO,
    "wtnpo": WTNPO, "idkdpo": IdkDPO, "simnpo": SimNPO, "undial": UNDIAL, "satimp": SatImp, "ce-u": CEU,
}
ALIASES = {"idk": "po", "ga+gd": "gd", "ga+kl": "kl"}
_BUILTIN = frozenset(OBJECTIVES) | frozenset(ALIASES)


def _valid_names() -> str:
    base = sorted(OBJECTIVES)
    return (", ".join(base) + "; aliases: " + ", ".join(f"{a} = {b}" for a, b in ALIASES.items())
            + "; and any '<objective>+<regulariser>' with regulariser in " + ", ".join(REGULARISERS)
            + " (e.g. npo+kl, wga+gd, rmu+rr)")


def get_objective(name, **hparams) -> Objective:
    """An objective by registry name, e.g. ``get_objective("npo", beta=0.1)``, ``get_objective("npo+kl", lam=2)``.

    Raises KeyError for an unknown name (listing all valid ones), TypeError for an unknown hyper-parameter
    (listing the valid ones), ValueError for an invalid value (naming the parameter).
    """
    if isinstance(name, Objective):
        if hparams:
            raise TypeError("hyper-parameters cannot be passed with an Objective instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"objective name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in OBJECTIVES:
        return OBJECTIVES[key](**hparams)
    if "+" in key:
        base, reg = key.rsplit("+", 1)
        base = ALIASES.get(base.strip(), base.strip())
        reg = reg.strip()
        if reg in REGULARISERS and base in OBJECTIVES:
            bcls, rcls = OBJECTIVES[base], REGULARISERS[reg]
            if issubclass(bcls, Regularised):
                raise ValueError(f"{name!r}: {base!r} already has a regulariser; use one regulariser per objective "
                                 f"(e.g. 'ga+{reg}').")
            reg_keys = {"lam", *rcls.defaults}
            valid = [*bcls.defaults, *sorted(reg_keys)]
            unknown = sorted(k for k in hparams if k not in valid)
            if unknown:
                raise TypeError(f"objective {key!r} has no hyper-parameter(s) {', '.join(unknown)}; valid: "
                                f"{', '.join(valid)}")
            base_hp = {k: v for k, v in hparams.items() if k not in reg_keys}
            reg_hp = {k: v for k, v in hparams.items() if k in reg_keys}
            return Regularised(bcls(**base_hp), reg, **reg_hp)
    raise KeyError(f"unknown objective {name!r}; valid names: {_valid_names()}")


def list_objectives(include_regularisers: bool = True):
    """A DataFrame: name, equation, needs_ref, needs_retain, hparams (defaults), alias_of, kind."""
    import pandas as pd
    rows = []
    for name, cls in OBJECTIVES.items():
        alias = next((b for a, b in ALIASES.items() if a == name), None)
        rows.append(dict(name=name, equation=cls.equation, needs_ref=bool(cls.needs_ref or
                         (issubclass(cls, Regularised) and REGULARISERS[cls.reg_name].needs_ref)),
                         needs_retain=bool(cls.needs_retain or issubclass(cls, Regularised)),
                         hparams=dict(cls.defaults), alias_of=alias,
                         kind="user" if issubclass(cls, UserObjective) else "objective"))
    if include_regularisers:
        for name, rcls in REGULARISERS.items():
            rows.append(dict(name=f"<objective>+{name}", equation=rcls.equation, needs_ref=rcls.needs_ref,
                             needs_retain=True, hparams={"lam": 1.0, **rcls.defaults}, alias_of=None,
                             kind="regulariser"))
    return pd.DataFrame(rows)


def register_objective(name: str, fn: Optional[Callable] = None, *, needs_ref: bool = False,
                       needs_retain: bool = False, equation: Optional[str] = None, overwrite: bool = False):
    """Register ``fn(out, batch)`` (``fn(out, batch, ref_logp)`` if needs_ref) as objective ``name``.

    Usable directly, ``register_objective("mine", fn)``, or as a decorator, ``@register_objective("mine")``;
    returns ``fn``. The result works everywhere a built-in does (``get_objective("mine+kl")`` …). Registering
    over a built-in name raises ValueError unless ``overwrite=True``; re-registering a user name replaces it.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    key = name.strip().lower()
    if "+" in key:
        raise ValueError(f"objective names cannot contain '+' (reserved for regularisers): {name!r}")
    if key in REGULARISERS and key not in OBJECTIVES:
        raise ValueError(f"{key!r} is a regulariser name")
    if key in _BUILTIN and not overwrite:
        raise ValueError(f"{key!r} is a built-in objective; pass overwrite=True to replace it.")

    def deco(f):
        if not callable(f):
            raise TypeError("fn must be callable: fn(out, batch) -> scalar or [B] tensor")
        doc = (inspect.getdoc(f) or "").strip().splitlines()
        cls = type(f"UserObjective_{key}", (UserObjective,), dict(
            name=key, fn=staticmethod(f), needs_ref=bool(needs_ref), needs_retain=bool(needs_retain),
            equation=equation or (doc[0] if doc else f"user-defined: {getattr(f, '__name__', 'fn')}(out, batch)"),
            __doc__=inspect.getdoc(f) or UserObjective.__doc__))
        OBJECTIVES[key] = cls
        ALIASES.pop(key, None)
        return f

    return deco if fn is None else deco(fn)


def unregister_objective(name: str) -> None:
    """Remove a user-registered objective (built-ins cannot be removed)."""
    key = name.strip().lower()
    cls = OBJECTIVES.get(key)
    if cls is None:
        raise KeyError(f"no objective {name!r} is registered")
    if not issubclass(cls, UserObjective):
        raise ValueError(f"{key!r} is a built-in objective and cannot be removed")
    del OBJECTIVES[key]


__all__ = [
    "Context", "Objective", "TokenWeighted", "Regularised", "Regulariser", "UserObjective",
    "GA", "GD", "KLGA", "WGA", "NPO", "SimNPO", "TNPO", "WTNPO", "PO", "IdkDPO", "RMU", "UNDIAL", "SatImp", "CEU",
    "GDReg", "KLReg", "RRReg", "REGULARISERS", "OBJECTIVES", "ALIASES",
    "get_objective", "list_objectives", "register_objective", "unregister_objective",
    "npo_loss", "simnpo_loss", "dpo_loss", "tnpo_weight",
]
