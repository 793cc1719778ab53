"""The accumulated G-effect — the claim behind using G-effects at all (inferred from Definition 1's Taylor reading,
not derived in the paper): summed over a run, the first-order predictions −Σ_t η_t·e_t (raw G-effect) and
Σ_t ∇R_tᵀΔθ_t (optimiser-aware) should track the realised change R(θ_T) − R(θ_0) while the steps stay small, and
stop tracking it where they are not (GA's spike). :func:`table` says, per run and risk set, how far they drift and
from which step; the ``accumulated`` claim (``rules_identities``) is the scoreboard's rule.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import pandas as pd

TOLERANCE = 0.25          # a cumulative prediction "tracks" while within 25 % of the realised change


def per_step(s: pd.DataFrame, short: str) -> Dict[str, pd.Series]:
    """The three per-step changes of risk ``short`` ("u" forget, "r" retain) that the sums add up: the raw
    prediction −η_t·e_t, the optimiser-aware prediction ∇R_tᵀΔθ_t and the realised R(θ_{t+1}) − R(θ_t)."""
    return {"raw": -s.lr * s[f"e_{short}"], "aware": s[f"pred_d{short}"], "real": s[f"real_d{short}"]}


def totals(steps: pd.DataFrame) -> dict:
    """Σ_t −η_t·e_t (raw), Σ_t ∇R_tᵀΔθ_t (optimiser-aware) and the realised R_T − R_0, per risk set (keys
    ``raw_u``, ``aware_u``, ``real_u``, ``raw_r`` …), over the steps whose realised change was measured."""
    s = steps.dropna(subset=["real_du"])
    return {f"{kind}_{short}": float(v.sum()) for short in ("u", "r") for kind, v in per_step(s, short).items()}


def curves(steps: pd.DataFrame) -> pd.DataFrame:
    """Per step t: the cumulative raw and optimiser-aware predictions and the realised change up to θ_{t+1}."""
    s = steps[(steps.status == "ok") & steps.e_u.notna()].dropna(subset=["real_du"]) if "status" in steps else steps
    out = {"step": s.step.to_numpy() + 1}
    for short, rs in (("u", "forget"), ("r", "retain")):
        out.update({f"{kind}_{rs}": np.cumsum(v.to_numpy()) for kind, v in per_step(s, short).items()})
    return pd.DataFrame(out)


NEGLIGIBLE = 1e-3        # nats: a realised change smaller than this is not judged


def breaks_at(c: pd.DataFrame, rs: str, kind: str = "aware"):
    """The first step after which the cumulative prediction is off by more than :data:`TOLERANCE` of the realised
    change (None if it never is; steps whose realised change is below :data:`NEGLIGIBLE` nats are not judged)."""
    real, pred = c[f"real_{rs}"].to_numpy(), c[f"{kind}_{rs}"].to_numpy()
    off = (np.abs(real) >= NEGLIGIBLE) & (np.abs(pred - real) > TOLERANCE * np.abs(real))
    return int(c.step.iloc[int(np.argmax(off))]) if off.any() else None


def table(trajectories: Dict[str, "object"]) -> pd.DataFrame:
    """One row per (run, risk set): Σ raw, Σ optimiser-aware, realised, their ratios and where each breaks."""
    rows = []
    for name, tr in trajectories.items():
        c = curves(tr.steps)
        if not len(c):
            continue
        for rs in ("forget", "retain"):
            real = float(c[f"real_{rs}"].iloc[-1])
            rows.append(dict(run=name, risk_set=rs, raw=float(c[f"raw_{rs}"].iloc[-1]),
                             aware=float(c[f"aware_{rs}"].iloc[-1]), realised=real,
                             raw_over_real=float(c[f"raw_{rs}"].iloc[-1]) / real if real else np.nan,
                             aware_over_real=float(c[f"aware_{rs}"].iloc[-1]) / real if real else np.nan,
                             raw_breaks_at=breaks_at(c, rs, "raw"), aware_breaks_at=breaks_at(c, rs, "aware"),
                             steps=int(c.step.iloc[-1])))
    return pd.DataFrame(rows)


__all__ = ["per_step", "totals", "curves", "breaks_at", "table", "TOLERANCE", "NEGLIGIBLE"]
