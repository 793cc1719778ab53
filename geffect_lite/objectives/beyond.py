"""Objectives from after the paper, and your own — notebook 10 ("beyond the paper").

SimNPO drops NPO's reference model; SatImp and CE-U are token-weighted GA with other weights; UNDIAL distils towards
θ_ref's distribution with the true token pushed down. Each is analysed here with the same G-effect machinery as the
paper's objectives (Wang et al. 2025, arXiv 2502.19301). :class:`UserObjective` wraps a plain function, so a student
can add an objective and get every G-effect view of it (``geffect_lite.register_objective``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .base import (Objective, TokenWeighted, choice, keep_fwd, logits_of, n_answer, nonneg, nonneg_int, number,
                   positive, seq_lengths)


def simnpo_loss(seq_logp: torch.Tensor, lengths: torch.Tensor, beta: float, delta: float = 0.0) -> torch.Tensor:
    """Per-instance SimNPO loss −(2/β)·log σ(β(S̄_b − δ)) with S̄_b = −seq_logp/|y_b|; [B]."""
    return -(2.0 / beta) * F.logsigmoid(beta * (-seq_logp / lengths - delta))


class SimNPO(Objective):
    """SimNPO, reference-free NPO (Fan et al. 2024; open-unlearning ``SimNPO``):
    L = −(2/β)(1/B) Σ_b log σ(β(S̄_b − δ)), S̄_b = S_θ(y_b)/|y_b| the **per-sequence mean** NLL. Nothing detached, no
    θ_ref. Gradient: sequence weight (1/B)(2/|y_b|)·p̄_b^β/(p̄_b^β + e^{−βδ}) on ∇log π(y_b), p̄_b = e^{−S̄_b};
    ``seq_weight`` is the NPO-like factor 2σ(−β(S̄_b − δ)) (the 1/|y_b| is normalisation).

    ``beta`` (> 0) default **4.5**, ``delta`` default **0** (open-unlearning). Its extra scale γ = 0.125 only rescales
    G-effects; its retain NLL is ``simnpo+gd``.
    """
    name = "simnpo"
    equation = "L = −(2/β)(1/B) Σ_b log σ(β(S_θ(y_b)/|y_b| − δ))   (per-sequence mean NLL)"
    weight = "2σ(−β(S̄_b − δ)) / |y_b| per sequence"
    notebook = "10"
    defaults = {"beta": 4.5, "delta": 0.0}
    checks = {"beta": positive, "delta": number}

    def instance_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        L = seq_lengths(f, self.name)
        return simnpo_loss(f.seq_logp, L, self.hparams["beta"], self.hparams["delta"]) / L.shape[0]

    def seq_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        mean_nll = -f.seq_logp.detach() / seq_lengths(f, self.name)
        return 2.0 * torch.sigmoid(-self.hparams["beta"] * (mean_nll - self.hparams["delta"]))

    def grad_weights(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        L = seq_lengths(f, self.name)
        W = self.seq_weight(ctx) / (L * L.shape[0])
        return {"forget": W.unsqueeze(1).detach() * f.mask.detach()}


class SatImp(TokenWeighted):
    """Saturation × importance weighting (open-unlearning ``SatImp``): L = (1/N) Σ_bt sg(p^{β1}(1 − p)^{β2}) log p_bt.
    β2 = 0 is WGA with α = β1; β1 = β2 = 0 is GA. ``beta1`` = **5**, ``beta2`` = **1** (≥ 0, open-unlearning)."""
    name = "satimp"
    equation = "L = (1/N) Σ_bt sg(p^β1 (1−p)^β2) log p_bt   (token mean)"
    weight = "p^β1 (1 − p)^β2"
    notebook = "10"
    defaults = {"beta1": 5.0, "beta2": 1.0}
    checks = {"beta1": nonneg, "beta2": nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        lp = f.logp.detach()
        w = torch.exp(self.hparams["beta1"] * lp) * torch.pow((1.0 - lp.exp()).clamp_min(0), self.hparams["beta2"])
        return w * f.mask


class CEU(TokenWeighted):
    """CE-U, cross-entropy unlearning (open-unlearning ``CE_U``, arXiv 2503.01224). Drop the first ``n`` answer tokens
    of each sequence; at each kept position the target is the detached current distribution with the true token
    removed, q_v = sg(p_v)/(1 − sg(p_y)), q_y = 0; L = mean over the N' kept positions of −Σ_v q_v log π_θ(v).
    Gradient (derived): token-weighted GA with w = p/(1 − p) on ∇log p, over N' — the gradient of the mean of
    −log(1 − p), so it is GA-like. ``n`` (int ≥ 0), default **1**."""
    name = "ce-u"
    equation = "L = mean_kept −Σ_v q_v log π_θ(v),  q = sg(softmax(z with z_y = −∞))"
    weight = "p/(1 − p)"
    notebook = "10"
    defaults = {"n": 1}
    checks = {"n": nonneg_int}

    def kept(self, f):
        m = f.mask
        return m * ((m.cumsum(1) > self.hparams["n"]).to(m.dtype))

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        p = f.logp.detach().exp()
        # masked positions hold logp = 0 (p = 1): select, don't multiply, or inf·0 = NaN
        return torch.where(self.kept(f) > 0, p / (1.0 - p), torch.zeros_like(p))

    def token_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        logits = logits_of(f, self.name)                                   # [B, T-1, V]
        keep = self.kept(f)
        N = n_answer(keep_fwd(f, keep), "forget batch after dropping the first n answer tokens")
        tgt = f.batch["labels"][:, 1:].clamp_min(0)
        q = torch.softmax(logits.detach().scatter(-1, tgt.unsqueeze(-1), float("-inf")), -1)
        ce = -(q * torch.log_softmax(logits, -1).masked_fill(q == 0, 0.0)).sum(-1)   # [B, T-1]
        return ce * keep / N


class UNDIAL(Objective):
    """UNDIAL, self-distillation towards an adjusted teacher (open-unlearning ``UNDIAL``):
    q_bt = softmax(z^ref_bt − β e_{y_bt}) (θ_ref's logits with the true token's lowered by β; detached);
    L = mean over positions of −Σ_v q_v log π_θ(v). Gradient w.r.t. each position's logits: (π_θ − q)/#positions —
    not a weighted-NLL form in general; at θ = θ_ref on an answer position it is token-weighted GA with
    w = pk/(1 − pk), k = 1 − e^{−β}.

    ``beta`` (≥ 0; 0 gives a zero gradient at θ_ref), default **10**. ``positions``: **"answer"** (token mean over
    answer positions) or "all" (open-unlearning parity: every B·(T−1) position, where its label −100 indexes
    vocabulary entry V−100 — reproduced for parity only). Needs θ_ref with full log-probs.
    """
    name = "undial"
    equation = "L = mean_bt −Σ_v q_v log π_θ(v),  q = softmax(z_ref − β·e_y)"
    notebook = "10"
    needs_ref = True
    ref_full = True
    defaults = {"beta": 10.0, "positions": "answer"}
    checks = {"beta": nonneg, "positions": choice("answer", "all")}

    def token_terms(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        logits = logits_of(f, self.name)                                   # [B, T-1, V]
        lref = ctx.ref_full_logprobs("forget", who=self.name).to(logits.dtype)
        labels = f.batch["labels"][:, 1:].to(logits.device)
        if self.hparams["positions"] == "answer":
            idx, pos_w = labels.clamp_min(0), f.mask / n_answer(f)
        else:   # open-unlearning parity: every position, −100 wraps to V − 100
            V = logits.shape[-1]
            idx = torch.where(labels == -100, torch.full_like(labels, V - 100), labels)
            pos_w = torch.full_like(f.mask, 1.0 / f.mask.numel())
        adj = lref.scatter_add(-1, idx.unsqueeze(-1), torch.full_like(lref[..., :1], -self.hparams["beta"]))
        q = torch.softmax(adj, -1).detach()
        return -(q * torch.log_softmax(logits, -1)).sum(-1) * pos_w


class UserObjective(Objective):
    """An objective from a user function ``fn(out, batch)`` — or ``fn(out, batch, ref_logp)`` with needs_ref.

    ``out`` is the forget :class:`~geffect_lite.nll.Forward` (``out.logp``, ``out.mask``, ``out.seq_logp`` …) and
    ``batch`` the forget batch. With ``needs_retain=True`` the retain Forward is passed as ``retain=``. ``fn`` returns
    the loss to minimise: a scalar, or a [B] vector of per-instance terms (the loss is then their sum).
    """
    fn: Callable = None
    notebook = "10"
    defaults = {}

    def _call(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        args = [f, f.batch] + ([ctx.ref_logp("forget", who=self.name)] if self.needs_ref else [])
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

    def instance_terms(self, ctx):
        out = self._call(ctx)
        return out if out.dim() else None


__all__ = ["SimNPO", "SatImp", "CEU", "UNDIAL", "UserObjective", "simnpo_loss"]
