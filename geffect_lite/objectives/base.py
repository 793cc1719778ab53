"""The Objective: a loss that is *minimised*, whose gradient ∇L_u the G-effect measures (Definition 1).

Every objective implements :meth:`Objective.terms` — its additive **terms** by name: ``{"forget": L_forget}``, plus
one term per regulariser (``{"forget": …, "kl": λ·KL}``, Fig. 8). Most also split the forget term exactly over
instances (:meth:`~Objective.instance_terms`, [B]) or tokens (:meth:`~Objective.token_terms`, [B, T-1]), which the
per-instance G-effect views use.

Notation: p_bt = π_θ(y_bt | x_b, y_b,<t) on answer positions (``Forward.mask``), N the number of answer tokens of the
batch, B the number of instances, |y_b| the answer length, r_b = log π_θ(y_b) − log π_ref(y_b) with sequence sums,
sg = stop-gradient. Many objectives have the **weighted-NLL form**

    ∇L = Σ_b Σ_t w_bt ∇log p_bt      (w > 0 unlearns: pushes p down; w < 0 learns)

— GA is w = 1/N, and since ∇log p = ∇p / p, its weight on ∇p is the *inverse-confidence term* 1/p (Eq. 1).
:meth:`Objective.grad_weights` returns those w (normalisation included); :meth:`Objective.weight_view` shows the
paper's *un*normalised weight per token next to p and 1/p.

Hyper-parameters are validated in one style: a class lists ``defaults`` and ``checks`` (name → validator below); a
bad value raises ValueError naming it, an unknown name raises TypeError listing the valid ones.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from .. import nll
from ..context import Context
from ..nll import EmptyBatchError, Forward
from .weights import summary as _summary
from .weights import weight_view as _weight_view


# --------------------------------------------------------------------------------------------------------------
# Validators: (name, value) → the cleaned value, or ValueError naming the bad value and what is valid
# --------------------------------------------------------------------------------------------------------------
def number(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def positive(name, v):
    v = number(name, v)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return v


def nonneg(name, v):
    v = number(name, v)
    if v < 0:
        raise ValueError(f"{name} must be ≥ 0, got {v!r}")
    return v


def integer(name, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an int, got {v!r}")
    return v


def nonneg_int(name, v):
    if integer(name, v) < 0:
        raise ValueError(f"{name} must be an int ≥ 0, got {v!r}")
    return v


def layer_or_none(name, v):
    """None (the model's middle layer, bound later) or an int ≥ 0 indexing ``hidden_states``."""
    return None if v is None else nonneg_int(name, v)


def choice(*options):
    def check(name, v):
        if v not in options:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {v!r}")
        return v
    return check


def validate(owner: str, defaults: dict, checks: dict, given: dict) -> dict:
    """``defaults`` updated with ``given``, each value passed through its check; unknown names → TypeError."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f"{owner} has no hyper-parameter(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(defaults) or '(none)'}")
    hp = {**defaults, **given}
    for k, check in checks.items():
        hp[k] = check(k, hp[k])
    return hp


# --------------------------------------------------------------------------------------------------------------
# Small shared pieces
# --------------------------------------------------------------------------------------------------------------
def logits_of(fwd: Forward, who: str) -> torch.Tensor:
    """The forward's logits, upcast from half precision (a log-softmax over V in bf16 loses too much)."""
    if fwd.logits is None:
        raise ValueError(f"{who} needs logits (a Context with a model, not Context.from_logp).")
    lg = fwd.logits
    return lg.float() if lg.dtype in (torch.float16, torch.bfloat16) else lg


def n_answer(fwd: Forward, what: str = "forget batch") -> torch.Tensor:
    """N, the number of answer tokens (EmptyBatchError when 0)."""
    N = fwd.mask.sum()
    if float(N) == 0:
        raise EmptyBatchError(f"the {what} has no answer tokens.")
    return N


def seq_log_ratio(ctx: Context, which: str, who: str):
    """(forward, r_b) with r_b = log π_θ(y_b) − log π_ref(y_b), sequence sums over answer tokens (NPO, DPO)."""
    f = ctx.fwd(which, who=who)
    return f, f.seq_logp - (ctx.ref_logp(which, who=who) * f.mask).sum(1)


def seq_lengths(fwd: Forward, who: str) -> torch.Tensor:
    """|y_b| per instance (EmptyBatchError naming the instances without answer tokens)."""
    L = fwd.seq_len
    if bool((L == 0).any()):
        bad = [fwd.batch.get("ids", list(range(len(L))))[i] for i in torch.nonzero(L == 0).flatten().tolist()]
        raise EmptyBatchError(f"{who}: instances {bad} have no answer tokens, so their per-sequence mean NLL is "
                              "0/0. Drop them or check max_length.")
    return L


def keep_fwd(f: Forward, keep: torch.Tensor) -> Forward:
    """A Forward view restricted to the positions in ``keep`` (only the mask changes)."""
    if keep is f.mask:
        return f
    return Forward(logits=f.logits, logp=f.logp, mask=keep, hidden_states=f.hidden_states, batch=f.batch)


# --------------------------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------------------------
class Objective:
    """Base class. Subclasses set the class attributes below and implement :meth:`forget_loss` (or
    :meth:`token_terms` / :meth:`instance_terms`, from which the default ``forget_loss`` sums)."""

    name: str = "objective"
    equation: str = ""              # the loss, with the paper's equation number
    weight: str = "—"               # the unnormalised weight on ∇log p (objective table); "—" = not of that form
    notebook: str = ""              # the notebook that teaches it
    needs_ref: bool = False         # needs θ_ref (geffect_lite.reference)
    needs_retain: bool = False      # uses the retain batch
    ref_full: bool = False          # needs θ_ref's full log-softmax (KL, UNDIAL)
    defaults: dict = {}
    checks: dict = {}               # hyper-parameter → validator

    def __init__(self, **hparams):
        self.hparams = validate(f"objective {self.name!r}", self.defaults, self.checks, hparams)

    def __getattr__(self, key):     # hyper-parameters read as attributes: obj.beta
        hp = self.__dict__.get("hparams")
        if hp is not None and key in hp:
            return hp[key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.hparams.items())})"

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.loss(ctx)

    # --- model-dependent settings ---------------------------------------------------------------------------
    @property
    def hidden_layers(self) -> tuple:
        """``hidden_states`` indices this objective reads (RMU) or needs θ_ref's values of (RR)."""
        return ()

    def bind(self, model) -> "Objective":
        """Resolve model-dependent defaults (RMU's middle layer) and validate them; returns self."""
        return self

    def ref_requirements(self, model=None) -> dict:
        """What θ_ref must provide: ``full_logprobs`` (bool) and ``hidden_layers`` (tuple)."""
        if model is not None:
            self.bind(model)
        return dict(full_logprobs=self.ref_full, hidden_layers=())

    # --- the loss ---------------------------------------------------------------------------------------------
    def token_terms(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B, T-1] per answer token, summing to the forget term; None if not token-decomposable."""
        return None

    def instance_terms(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B] per forget instance, summing to the forget term; None if not decomposable."""
        t = self.token_terms(ctx)
        return None if t is None else t.sum(1)

    def forget_loss(self, ctx: Context) -> torch.Tensor:
        t = self.instance_terms(ctx)
        if t is None:
            raise NotImplementedError(f"{type(self).__name__} must define forget_loss, instance_terms or token_terms")
        return t.sum()

    def terms(self, ctx: Context) -> Dict[str, torch.Tensor]:
        """The objective's additive terms by name; their sum is the loss."""
        return {"forget": self.forget_loss(ctx)}

    def loss(self, ctx: Context) -> torch.Tensor:
        """The minimised loss, Σ terms (NonFiniteError if NaN/inf)."""
        return nll.check_finite(sum(self.terms(ctx).values()), f"the {self.name} loss")

    # --- weights ----------------------------------------------------------------------------------------------
    def grad_weights(self, ctx: Context) -> Optional[Dict[str, torch.Tensor]]:
        """Detached w[batch] [B, T-1] with ∇loss = Σ w ∇log p (normalisation included), or None."""
        return None

    def token_weight(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B, T-1] the paper's unnormalised weight on ∇log p per forget answer token (detached), or None."""
        return None

    def seq_weight(self, ctx: Context) -> Optional[torch.Tensor]:
        """[B] the sequence weight (NPO's w^npo of Eq. 4, SimNPO, IdkDPO), detached, or None."""
        return None

    def weight_view(self, ctx: Context):
        """One row per forget answer token: see :func:`geffect_lite.objectives.weights.weight_view`."""
        return _weight_view(self, ctx)

    def summary(self, ctx: Context) -> Dict[str, float]:
        """Scalars logged per step: see :func:`geffect_lite.objectives.weights.summary`."""
        return _summary(self, ctx)


class TokenWeighted(Objective):
    """Token-mean weighted GA: L = (1/N) Σ_bt sg(w_bt) log p_bt, so ∇L = Σ (w_bt/N) ∇log p_bt.

    Subclasses define :meth:`token_weight` (detached, unnormalised); GA is w = 1. :meth:`kept` may drop positions
    (CE-U drops the first answer tokens).
    """

    def kept(self, f: Forward) -> torch.Tensor:
        return f.mask

    def token_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        keep = self.kept(f)
        N = n_answer(keep_fwd(f, keep))
        return self.token_weight(ctx).detach() * f.logp * keep / N

    def grad_weights(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        keep = self.kept(f)
        return {"forget": (self.token_weight(ctx) * keep / n_answer(keep_fwd(f, keep))).detach()}


__all__ = ["Objective", "TokenWeighted", "Context", "number", "positive", "nonneg", "integer", "nonneg_int",
           "layer_or_none", "choice", "validate", "logits_of", "n_answer", "seq_log_ratio", "seq_lengths", "keep_fwd"]
