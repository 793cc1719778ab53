"""Token log-likelihoods, answer masks and the risk R — the quantities every other module builds on.

Conventions (docs/paper.md, "The setting"):

* A **batch** is a plain dict of tensors produced by :func:`geffect_lite.batching.collate`:
  ``input_ids`` [B, T], ``attention_mask`` [B, T], ``labels`` [B, T] (−100 on question and padding
  tokens), ``ids`` (list of instance ids) and, for forget batches, optionally ``idk`` — a nested batch
  holding a refusal answer to the same questions (PO / IdkDPO).
* After the causal shift, position t of a :class:`Forward` predicts token t+1. ``logp[b, t]`` is
  log p_θ(y_{b,t} | x_b, y_{b,<t}) and ``mask[b, t]`` is 1 on answer positions T_b.
* The **risk** is the NLL. ``reduction="token_mean"`` is Hugging Face's ``outputs.loss`` and the official
  G-effect code's choice (1/N Σ_b Σ_t ℓ_bt, pooled over the batch); ``reduction="seq_sum"`` is the
  paper's equations (1/B Σ_b S_b with S_b the sequence NLL; Eqs. 1–6 sum over a sequence's tokens).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .batching import loaded_tokenizer

RISK_REDUCTIONS = ("token_mean", "seq_sum")


class EmptyBatchError(ValueError):
    """Raised when a batch has no answer tokens (every label is −100)."""


class NonFiniteError(FloatingPointError):
    """Raised when a loss or gradient is NaN/inf (e.g. after a gradient-ascent blow-up)."""


@dataclass
class Forward:
    """One forward pass of a causal LM on a batch, shifted so that position t predicts token t+1.

    Attributes:
        logits: [B, T-1, V] logits at the predicting positions.
        logp:   [B, T-1] log-probability of each label token (0 where masked).
        mask:   [B, T-1] float, 1.0 on answer tokens.
        hidden_states: tuple of [B, T, d] (HF convention: index 0 = embedding output) or None.
        batch:  the batch it was computed on.
    """

    logits: torch.Tensor
    logp: torch.Tensor
    mask: torch.Tensor
    hidden_states: Optional[tuple]
    batch: dict

    @property
    def n_tokens(self) -> torch.Tensor:
        """N = number of answer tokens in the batch."""
        return self.mask.sum()

    @property
    def seq_len(self) -> torch.Tensor:
        """|y_b| for each sequence, shape [B]."""
        return self.mask.sum(dim=1)

    @property
    def seq_logp(self) -> torch.Tensor:
        """log π_θ(y_b | x_b) = −S_θ(y_b), shape [B]."""
        return (self.logp * self.mask).sum(dim=1)

    @property
    def token_nll(self) -> torch.Tensor:
        """ℓ_bt = −log p_bt, zero off the answer, shape [B, T-1]."""
        return -self.logp * self.mask


def check_batch(batch: dict, what: str = "batch") -> None:
    """Raise a clear error for an empty or fully masked batch."""
    if not isinstance(batch, dict) or "input_ids" not in batch or "labels" not in batch:
        raise TypeError(f"{what} must be a dict with 'input_ids', 'attention_mask' and 'labels' "
                        "(build it with geffect_lite.batching.collate).")
    if batch["input_ids"].numel() == 0 or batch["input_ids"].shape[0] == 0:
        raise EmptyBatchError(f"{what} is empty (0 instances). Pass at least one question–answer pair.")
    if not bool((batch["labels"][:, 1:] != -100).any()):
        raise EmptyBatchError(
            f"{what} has no answer tokens: every label is -100, so the NLL (and every G-effect) would be "
            "0/0 = NaN. Check that the answers are not empty and that max_length does not cut them off."
        )


def check_compatible(model, batch: dict, what: str = "batch") -> None:
    """Catch a batch tokenised for another model: tokenizer fingerprint and vocabulary range."""
    fp_model = loaded_tokenizer(model)
    fp_batch = batch.get("tokenizer")
    if fp_model and fp_batch and fp_model != fp_batch:
        raise ValueError(f"{what} was tokenised with a different tokenizer ({fp_batch}) than the model's "
                         f"({fp_model}). Re-collate the rows with the tokenizer returned by load_model.")
    V = getattr(getattr(model, "config", None), "vocab_size", None)
    if V is not None and int(batch["input_ids"].max()) >= V:
        raise ValueError(f"{what} holds token id {int(batch['input_ids'].max())} but the model's vocabulary has "
                         f"{V} entries: the batch was made with another tokenizer.")


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def to_device(batch: dict, device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device)
        elif isinstance(v, dict):
            out[k] = to_device(v, device)
        else:
            out[k] = v
    return out


def shifted_logp(logits: torch.Tensor, labels: torch.Tensor):
    """Shift logits/labels by one and gather log p of each label. Returns (logits[:, :-1], logp, mask)."""
    logits = logits[:, :-1, :]
    tgt = labels[:, 1:]
    mask = (tgt != -100)
    safe = tgt.clamp_min(0)
    logp = torch.log_softmax(logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits, -1)
    logp = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    maskf = mask.to(logp.dtype)
    return logits, logp * maskf, maskf


def forward(model, batch: dict, hidden: bool = False, what: str = "batch") -> Forward:
    """Run ``model`` on ``batch`` and return the shifted token log-probabilities (a :class:`Forward`)."""
    check_batch(batch, what)
    check_compatible(model, batch, what)
    dev = model_device(model)
    b = to_device(batch, dev)
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                output_hidden_states=hidden, use_cache=False)
    logits, logp, mask = shifted_logp(out.logits, b["labels"])
    return Forward(logits=logits, logp=logp, mask=mask,
                   hidden_states=out.hidden_states if hidden else None, batch=b)


def risk_normaliser(mask: torch.Tensor, reduction: str = "token_mean"):
    """The denominator of R for a [B, T'] answer mask: N answer tokens (token_mean) or B instances (seq_sum).
    A risk over a batch is Σ ℓ / this, so a batch's rows can be summed chunk by chunk with the whole batch's value."""
    if reduction == "token_mean":
        return mask.sum()
    if reduction == "seq_sum":
        return mask.shape[0]
    raise ValueError(f"unknown risk reduction {reduction!r}; valid: {', '.join(RISK_REDUCTIONS)}")


def risk_from(fwd: Forward, reduction: str = "token_mean") -> torch.Tensor:
    """The risk R (NLL) from a forward pass.

    token_mean: R = (1/N) Σ_b Σ_{t∈T_b} ℓ_bt   (HF ``outputs.loss``; official G-effect code)
    seq_sum:    R = (1/B) Σ_b S_θ(y_b)           (the paper's equations)
    """
    return fwd.token_nll.sum() / risk_normaliser(fwd.mask, reduction)


def risk(model, batch: dict, reduction: str = "token_mean") -> torch.Tensor:
    """R(batch; θ), differentiable."""
    return risk_from(forward(model, batch), reduction)


def check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """``x`` unchanged, or NonFiniteError naming ``what`` (say which objective and which quantity)."""
    if not torch.isfinite(x).all():
        raise NonFiniteError(
            f"{what} is not finite (NaN or inf): unlearning has blown up — the parameters grew until a probability, "
            "a logit or a hidden state overflowed. Lower the learning rate or the number of steps."
        )
    return x


def kl_ref_to_model(logits: torch.Tensor, ref_logprobs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_positions weight · KL(π_ref ‖ π_θ) at each position; logits/ref_logprobs [B, T', V], weights [B, T']."""
    logq = torch.log_softmax(logits, -1)
    kl = (ref_logprobs.exp() * (ref_logprobs - logq)).sum(-1)
    return (kl * weights).sum()


__all__ = [
    "Forward", "forward", "risk", "risk_from", "risk_normaliser", "check_batch", "check_compatible", "check_finite",
    "EmptyBatchError", "NonFiniteError", "shifted_logp", "to_device", "model_device", "RISK_REDUCTIONS",
    "kl_ref_to_model",
]
