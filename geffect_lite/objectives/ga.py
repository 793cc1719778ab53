"""Gradient ascent and weighted gradient ascent — Eqs. 1–2 of Wang et al. 2025 (arXiv 2502.19301); notebooks 03–04.

GA minimises log p(s_u), i.e. raises the forget risk. Its gradient (Eq. 1) is

    ∇L_GA = E_{s_u} Σ_i (1 / p(s_u^i | s_u^{<i})) ∇p(s_u^i | s_u^{<i})

— the factor 1/p is the **inverse-confidence term**: as unlearning drives p → 0 it amplifies the updates on tokens
that are already unlearned, the paper's explanation of GA's *excessive unlearning* (Fig. 3a–b).

WGA (Eq. 2) weights each token by its own confidence, w = p^α, so the weight on ∇p becomes p^{α−1}: α = 1 cancels
the inverse-confidence term, α = 0 is GA (Fig. 3c).

Both are token means here, as in the official code (``-outputs.loss``); the paper's equations write per-sequence sums.
"""
from __future__ import annotations

import torch

from .base import TokenWeighted, nonneg


class GA(TokenWeighted):
    """Gradient ascent (Eq. 1): L = (1/N) Σ_bt log p_bt (token mean). Nothing detached; weight on ∇log p is 1/N,
    i.e. 1/(N·p) on ∇p. No hyper-parameters."""
    name = "ga"
    equation = "L = (1/N) Σ_bt log p_bt   (Eq. 1; token mean)"
    weight = "1"
    notebook = "03"
    defaults = {}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        return torch.ones_like(f.logp).detach() * f.mask


class WGA(TokenWeighted):
    """Weighted gradient ascent (Eq. 2): L = (1/N) Σ_bt sg(p_bt)^α log p_bt (token mean; weight detached).

    Weight on ∇log p: p^α/N (p^{α−1}/N on ∇p). ``alpha`` (≥ 0), default **1** — the value open-unlearning's WGA
    documentation reports for the paper's runs; Fig. 3c uses 0.5; the official code's default is 5, under the name
    ``beta``.
    """
    name = "wga"
    equation = "L = (1/N) Σ_bt sg(p_bt)^α log p_bt   (Eq. 2; token mean)"
    weight = "p^α"
    notebook = "04"
    defaults = {"alpha": 1.0}
    checks = {"alpha": nonneg}

    def token_weight(self, ctx):
        f = ctx.fwd("forget", who=self.name)
        return torch.exp(self.hparams["alpha"] * f.logp.detach()) * f.mask


__all__ = ["GA", "WGA"]
