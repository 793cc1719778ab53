"""Preference optimisation with refusals — Eq. 7 of Wang et al. 2025 (arXiv 2502.19301); notebook 07.

PO fine-tunes the model to answer each forget question with a refusal ("I don't know"): L = R(x, y^idk), the NLL of
the refusal. It has no term on the original answer at all, so whatever it does to the forget risk comes through
shared parameters — the paper finds that it *re-learns* the forget data after a few steps (e_u > 0, Fig. 6).
IdkDPO, the DPO form that prefers the refusal over the original answer, adds an explicit GA-like term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Objective, n_answer, positive, seq_log_ratio


def dpo_loss(r_w: torch.Tensor, r_l: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-instance DPO loss with open-unlearning's 2/β factor: −(2/β)·log σ(β(r_w − r_l)); [B]."""
    return -(2.0 / beta) * F.logsigmoid(beta * (r_w - r_l))


class PO(Objective):
    """PO, i.e. fine-tuning on refusals (Eq. 7): L = −(1/N_idk) Σ log p(y^idk_bt), the token-mean NLL of the refusal
    answers ``forget["idk"]`` (the official code's ``idk``). Weight −1/N_idk on ∇log p of the refusal tokens: plain
    fine-tuning, nothing on the original answer, so ``weight`` is NaN in the weight view and ``token_terms`` is None
    (the terms live on the refusal tokens); ``instance_terms`` are the per-question shares. TOFU's ``idk`` also
    mixes a retain NLL into the same mean; ``po+gd`` keeps the two means separate. No hyper-parameters."""
    name = "po"
    equation = "L = −(1/N_idk) Σ_bt log p(y^idk_bt | x_b, y^idk_b,<t)   (Eq. 7; token mean)"
    weight = "−1 on the refusal tokens"
    notebook = "07"
    defaults = {}

    def instance_terms(self, ctx):
        f = ctx.fwd("idk", who=self.name)
        return f.token_nll.sum(1) / n_answer(f, "idk batch")

    def grad_weights(self, ctx):
        f = ctx.fwd("idk", who=self.name)
        return {"idk": (-f.mask / n_answer(f, "idk batch")).detach()}


class IdkDPO(Objective):
    """DPO with the refusal as the preferred answer (open-unlearning ``DPO`` on TOFU's idk data):
    L = −(2/β)(1/B) Σ_b log σ(β(r_w,b − r_l,b)), y_w = refusal, y_l = original answer, r = sequence-sum log-ratio to
    θ_ref (detached). Gradient: (1/B) Σ_b W_b [∇log π(y_l) − ∇log π(y_w)] with W_b = 2σ(β(r_l,b − r_w,b)) — GA on
    the original answer, NLL descent on the refusal, one shared weight. At θ = θ_ref: W = 1, L = (2/β) ln 2.

    ``beta`` (> 0), default **0.1** (open-unlearning, TOFU). The 2/β factor is open-unlearning's; TOFU's DPO and
    standard DPO lack it, so at β = 0.1 this gradient is 20× TOFU's. Needs θ_ref and ``collate(..., idk=True)``.
    """
    name = "idkdpo"
    equation = "L = −(2/β)(1/B) Σ_b log σ(β(r_w,b − r_l,b)),  y_w = refusal, y_l = forget answer"
    weight = "±2σ(β(r_l − r_w)) per sequence"
    notebook = "07"
    needs_ref = True
    defaults = {"beta": 0.1}
    checks = {"beta": positive}

    def _ratios(self, ctx):
        fl, fw = ctx.fwd("forget", who=self.name), ctx.fwd("idk", who=self.name)
        if fw.logp.shape[0] != fl.logp.shape[0]:
            raise ValueError(f"idkdpo: the idk batch has {fw.logp.shape[0]} instances, the forget batch "
                             f"{fl.logp.shape[0]}; they must be the same questions.")
        n_answer(fl), n_answer(fw, "idk batch")
        return fl, fw, seq_log_ratio(ctx, "idk", self.name)[1], seq_log_ratio(ctx, "forget", self.name)[1]

    def instance_terms(self, ctx):
        _, _, r_w, r_l = self._ratios(ctx)
        return dpo_loss(r_w, r_l, self.hparams["beta"]) / r_l.shape[0]

    def seq_weight(self, ctx):
        _, _, r_w, r_l = self._ratios(ctx)
        return 2.0 * torch.sigmoid(self.hparams["beta"] * (r_l - r_w).detach())

    def grad_weights(self, ctx):
        fl, fw, _, _ = self._ratios(ctx)
        W = (self.seq_weight(ctx) / fl.logp.shape[0]).unsqueeze(1)
        return {"forget": W * fl.mask.detach(), "idk": -W * fw.mask.detach()}


__all__ = ["PO", "IdkDPO", "dpo_loss"]
