"""NPO and its token-wise variants — Eqs. 3–6 of Wang et al. 2025 (arXiv 2502.19301); notebooks 05–06.

NPO (Eq. 3) compares the forget answer's likelihood with the model before unlearning, θ_ref:

    L_NPO = (2/β) E_{s_u} log(1 + (p(s_u; θ) / p(s_u; θ_ref))^β)

Its gradient (Eq. 4) is GA's with a *sequence* weight, ∇L = E w^npo ∇log p(s_u), w^npo = 2p^β / (p^β + p_ref^β)
— 1 at θ = θ_ref, shrinking as p(s_u) falls, which stops unlearning early (Fig. 4, Fig. 5a). The G-effect therefore
splits into per-point G-effects of GA weighted by w^npo (Eq. 5, the **PG-effect**; ``geffect_lite.engine.pg_effects``).

TNPO (Eq. 6) moves the weight to each token: w_bt = 2p_bt^β / (p_bt^β + p_ref,bt^β) (Fig. 5c). WTNPO multiplies it by
WGA's p^α; the paper gives no equation for it, so the official code's formula is used.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Objective, TokenWeighted, n_answer, nonneg, positive, seq_log_ratio


def npo_loss(seq_logp: torch.Tensor, ref_seq_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-instance NPO loss (2/β)·log(1 + e^{β r_b}), r_b = seq_logp − ref_seq_logp; [B]."""
    return (2.0 / beta) * F.softplus(beta * (seq_logp - ref_seq_logp))


def tnpo_weight(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float, eps: float = 1e-5) -> torch.Tensor:
    """TNPO's token weight 2p^β / (p^β + p_ref^β + ε) (Eq. 6, with the official code's ε), in log space so large β
    does not underflow."""
    a, b = beta * logp, beta * ref_logp
    terms = [a, b] + ([torch.full_like(a, math.log(eps))] if eps > 0 else [])
    return 2.0 * torch.exp(a - torch.logsumexp(torch.stack(terms), 0))


class NPO(Objective):
    """Negative preference optimisation (Eqs. 3–4), with **sequence sums** then the batch mean:
    L = (2/β)(1/B) Σ_b log(1 + e^{β r_b}). Only θ_ref's log-probs are detached. Gradient: sequence weight
    (1/B)·2σ(β r_b) on ∇log π_θ(y_b). At θ = θ_ref: weights 1, L = (2/β) ln 2, gradient = sequence-summed GA.

    ``beta`` (> 0), default **0.1**: open-unlearning's and the NPO authors' default, and one of Fig. 4's values
    (0.1, 1, 2); the official code's default is 0.5. Needs θ_ref.
    """
    name = "npo"
    equation = "L = (2/β)(1/B) Σ_b log(1 + (π_θ(y_b)/π_ref(y_b))^β)   (Eq. 3; sequence sums)"
    weight = "2σ(β r_b) per sequence (Eq. 4)"
    notebook = "05"
    needs_ref = True
    defaults = {"beta": 0.1}
    checks = {"beta": positive}

    def instance_terms(self, ctx):
        f, r = seq_log_ratio(ctx, "forget", self.name)
        n_answer(f)
        return npo_loss(r, torch.zeros_like(r), self.hparams["beta"]) / r.shape[0]

    def seq_weight(self, ctx):
        _, r = seq_log_ratio(ctx, "forget", self.name)
        return 2.0 * torch.sigmoid(self.hparams["beta"] * r.detach())

    def grad_weights(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        W = self.seq_weight(ctx)
        return {"forget": (W / W.shape[0]).unsqueeze(1) * f.mask.detach()}


class TNPO(TokenWeighted):
    """Token-wise NPO (Eq. 6): L = (1/N) Σ_bt w_bt log p_bt, w_bt = sg(2p^β / (p^β + p_ref^β + ε)) (token mean, as
    the official code's ``tnpo``; Eq. 6 has per-sequence sums and no ε). With ε = 0 its gradient equals that of the
    token-wise NPO loss (1/N) Σ (2/β) log(1 + (p/p_ref)^β).

    ``beta`` (> 0), default **1** (Fig. 5c; the official code's default is 4). ``eps`` (≥ 0), default **1e-5** (the
    official code): with ε > 0 the weight at θ = θ_ref is 2p^β/(2p^β + ε), ≈ 1 only for confident tokens, so use
    ε = 0 for exact identities. Needs θ_ref.
    """
    name = "tnpo"
    equation = "L = (1/N) Σ_bt sg(2p^β/(p^β + p_ref^β + ε)) log p_bt   (Eq. 6; token mean)"
    weight = "2p^β/(p^β + p_ref^β + ε)"
    notebook = "06"
    needs_ref = True
    defaults = {"beta": 1.0, "eps": 1e-5}
    checks = {"beta": positive, "eps": nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        ref = ctx.ref_logp("forget", who=self.name)
        return tnpo_weight(f.logp.detach(), ref, self.hparams["beta"], self.hparams["eps"]).detach() * f.mask


class WTNPO(TokenWeighted):
    """Weighted token-wise NPO (the official code's formula; the paper gives none):
    L = (1/N) Σ_bt w_bt log p_bt, w_bt = sg(2p^{β+α} / (p^β + p_ref^β + ε)) = WGA's p^α × TNPO's weight.

    ``beta`` (> 0) default **1** and ``alpha`` (≥ 0) default **1**: the TNPO and WGA defaults here, so WTNPO =
    WGA × TNPO out of the box. The official code's latest version uses β = 4, α = 1.5 (earlier versions changed
    the meaning of its arguments). ``eps`` default 1e-5. Needs θ_ref.
    """
    name = "wtnpo"
    equation = "L = (1/N) Σ_bt sg(2p^(β+α)/(p^β + p_ref^β + ε)) log p_bt   (official code; token mean)"
    weight = "p^α · 2p^β/(p^β + p_ref^β + ε)"
    notebook = "06"
    needs_ref = True
    defaults = {"beta": 1.0, "alpha": 1.0, "eps": 1e-5}
    checks = {"beta": positive, "alpha": nonneg, "eps": nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        ref = ctx.ref_logp("forget", who=self.name)
        lp = f.logp.detach()
        w = torch.exp(self.hparams["alpha"] * lp) * tnpo_weight(lp, ref, self.hparams["beta"], self.hparams["eps"])
        return w.detach() * f.mask


__all__ = ["NPO", "TNPO", "WTNPO", "npo_loss", "tnpo_weight"]
