"""What an objective does to each forget token: its weight next to the token's probability (Eqs. 1, 2, 4, 6).

For an objective of the weighted-NLL form ∇L = Σ w_bt ∇log p_bt, the weight on ∇p is w_bt/p_bt. GA has w = 1, so
its weight on ∇p is the *inverse-confidence term* 1/p (Eq. 1), which grows without bound as unlearning drives p to 0.
WGA multiplies by p^α (Eq. 2), NPO by a sequence weight (Eq. 4), TNPO by a token weight (Eq. 6). These two functions
tabulate exactly that, from the forward pass already cached in the objective's :class:`~geffect_lite.context.Context`.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import pandas as pd
import torch


def weight_view(objective, ctx) -> pd.DataFrame:
    """One row per forget answer token: id, instance, position (index t in the [B, T-1] frame of ``token_terms``),
    answer_pos (index within the answer), token_id, logp, p, inverse_confidence (1/p), weight (the unnormalised
    weight on ∇log p; NaN when the objective is not of that form) and seq_weight (NaN if none).
    ``logp`` stays informative after p underflows (GA drives it below 1e-300); it is computed in fp64."""
    f = ctx.fwd("forget", who=objective.name)
    mask = f.mask.detach().bool()
    bt = mask.nonzero(as_tuple=False)
    b, t = bt[:, 0], bt[:, 1]
    logp = f.logp.detach()[b, t].double()
    tw, sw = objective.token_weight(ctx), objective.seq_weight(ctx)
    nan = torch.full_like(logp, float("nan"))
    weight = tw.detach()[b, t] if tw is not None else (sw.detach()[b] if sw is not None else nan)
    seqw = sw.detach()[b] if sw is not None else nan
    ids = f.batch.get("ids") or [str(i) for i in range(mask.shape[0])]
    labels = f.batch.get("labels")
    token_id = labels[:, 1:][b, t].cpu().numpy() if labels is not None else np.full(len(b), -1)
    answer_pos = (mask.long().cumsum(1) - 1)[b, t]
    return pd.DataFrame(dict(
        id=[ids[i] for i in b.tolist()], instance=b.cpu().numpy().astype(int),
        position=t.cpu().numpy().astype(int), answer_pos=answer_pos.cpu().numpy().astype(int),
        token_id=token_id, logp=logp.cpu().numpy(), p=logp.exp().cpu().numpy(),
        inverse_confidence=(-logp).exp().cpu().numpy(),
        weight=weight.double().cpu().numpy(), seq_weight=seqw.double().cpu().numpy()))


def summary(objective, ctx) -> Dict[str, float]:
    """Scalars to log per step: loss, each term, mean_weight (token weights: mean over answer tokens; sequence
    weights: mean over instances, Fig. 5a), mean_seq_weight, mean_p, mean_inverse_confidence and n_tokens — over
    forget answer tokens only (the official code's log also counts masked positions, as 1)."""
    terms = {k: float(v.detach()) for k, v in objective.terms(ctx).items()}
    out = {"loss": sum(terms.values()), **terms}
    f = ctx.fwd("forget", who=objective.name)
    m = f.mask.detach().bool()
    logp = f.logp.detach()[m].double()     # fp64: 1/p stays finite after a GA collapse (down to p ≈ 1e-300)
    tw, sw = objective.token_weight(ctx), objective.seq_weight(ctx)
    if tw is not None:
        out["mean_weight"] = float(tw.detach()[m].mean())
    elif sw is not None:
        out["mean_weight"] = float(sw.detach().mean())
    else:
        out["mean_weight"] = float("nan")
    out["mean_seq_weight"] = float(sw.detach().mean()) if sw is not None else float("nan")
    out["mean_p"] = float(logp.exp().mean())
    out["mean_inverse_confidence"] = float((-logp).exp().mean())
    out["n_tokens"] = float(m.sum())
    return out


__all__ = ["weight_view", "summary"]
