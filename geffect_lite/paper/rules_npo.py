"""Claims about NPO and TNPO — Eqs. 3–6, Figs. 4 and 5a–c of Wang et al. 2025 (arXiv 2502.19301)."""
from __future__ import annotations

import numpy as np

from .claims import claim, damage_ratio, result

BETAS = ("0.1", "1", "2")


def _weights(runs) -> dict:
    return {b: runs.steps(f"npo_b{b}")["w_mean_weight"].to_numpy(dtype=float) for b in BETAS}


@claim("npo_weight_decay", "Figs. 4 and 5a: NPO's mean weight drops from 1 towards 0 and its G-effects are "
       "confined to the early steps; larger β decays faster (step 10 of 60: 0.97 / 0.75 / 0.58 for β = 0.1 / 1 / 2)",
       runs=("npo_b0.1", "npo_b1", "npo_b2"))
def npo_weight_decay(runs) -> dict:
    w = _weights(runs)
    k = max(1, round(min(len(v) for v in w.values()) / 6))   # the paper reads step 10 of 60: a sixth of the run
    order = w["0.1"][k] >= w["1"][k] >= w["2"][k]
    decayed = all(v[-1] <= 0.5 * v[0] for v in w.values())
    a = runs.steps("npo_b1").e_u.abs().to_numpy()
    early = a[: max(1, len(a) // 2)].sum() / max(a.sum(), 1e-300)
    return result(order and decayed and early >= 0.9,
                  {"step": k, "w β=0.1": w["0.1"][k], "w β=1": w["1"][k], "w β=2": w["2"][k],
                   "last w β=1": w["1"][-1], "share of Σ|e_u| in 1st half (β=1)": early},
                  "every β's mean weight ends ≤ half its start, the weights a sixth into the run are ordered "
                  "β=0.1 ≥ 1 ≥ 2, and ≥ 90 % of NPO(β=1)'s Σ|e_u| falls in the first half of the run",
                  f"ordered {order}, decayed {decayed}, early share {early:.2g}")


@claim("npo_beta_magnitudes", "Fig. 4: larger β gives smaller G-effects; β = 0.1 is GA-like (|e_r| > |e_u|), "
       "β ≥ 1 has |e_u| > |e_r|", runs=("npo_b0.1", "npo_b1", "npo_b2"))
def npo_beta_magnitudes(runs) -> dict:
    S = {b: runs.steps(f"npo_b{b}") for b in BETAS}
    area = {b: float(s.e_u.abs().sum()) for b, s in S.items()}
    ratio = {b: float(s.e_r.abs().sum() / max(s.e_u.abs().sum(), 1e-300)) for b, s in S.items()}
    mono = area["0.1"] >= area["1"] >= area["2"]
    return result(mono and ratio["0.1"] > 1 and ratio["1"] < 1 and ratio["2"] < 1,
                  {**{f"Σ|e_u| β={b}": v for b, v in area.items()},
                   **{f"Σ|e_r|/Σ|e_u| β={b}": v for b, v in ratio.items()}},
                  "Σ_t|e_u| decreasing in β; Σ|e_r|/Σ|e_u| > 1 at β = 0.1 and < 1 at β = 1 and 2",
                  f"magnitudes ordered {mono}; ratios {', '.join(f'{b}: {v:.2g}' for b, v in ratio.items())}")


@claim("npo_weighting", "Fig. 5b and Eq. 5: NPO gives its high weights to points with near-zero retaining "
       "PG-effect; middle weights include retention-damaging points", runs=("npo_b1",))
def npo_weighting(runs) -> dict:
    pg = runs["npo_b1"].probes
    means = pg.groupby("step").weight.mean()
    k = int((means - 0.5).abs().idxmin())           # the checkpoint where the weights spread most (mean ≈ ½)
    at = pg[pg.step == k]
    W, pg_r = at.weight.to_numpy(), at.retain.to_numpy()
    order = np.argsort(-W, kind="stable")
    n3 = max(1, len(W) // 3)
    top, mid = order[:n3], order[n3: 2 * n3]
    med_top, med_mid = float(np.median(np.abs(pg_r[top]))), float(np.median(np.abs(pg_r[mid])))
    damaging = bool(pg_r[mid].min() < pg_r[top].min())    # a middle-weight point hurts retention more than any top one
    return result(med_top < med_mid and damaging,
                  {"step": k, "weights": f"{W.min():.2g}–{W.max():.2g}", "median|PG_r| top third": med_top,
                   "middle third": med_mid, "min PG_r top": float(pg_r[top].min()),
                   "min PG_r middle": float(pg_r[mid].min())},
                  "at the NPO (β = 1) checkpoint whose mean weight is nearest ½, the highest-weight third of forget "
                  "points has a smaller median |retaining PG-effect| than the middle third, and the middle third "
                  "holds a point with a more negative retaining PG-effect than any of the top third",
                  f"medians {med_top:.3g} (top) vs {med_mid:.3g} (middle); most negative PG_r middle "
                  f"{pg_r[mid].min():.3g} vs top {pg_r[top].min():.3g}")


@claim("tnpo_vs_npo", "Fig. 5c vs Fig. 4: TNPO (β = 1) unlearns with e_r near 0: a better e_r/e_u ratio than NPO "
       "at the same β", runs=("tnpo", "npo_b1"))
def tnpo_vs_npo(runs) -> dict:
    rt, rn = damage_ratio(runs.steps("tnpo")), damage_ratio(runs.steps("npo_b1"))
    return result(rt < rn, {"ρ TNPO": rt, "ρ NPO": rn, "min e_u TNPO": float(runs.steps("tnpo").e_u.min()),
                            "min e_u NPO": float(runs.steps("npo_b1").e_u.min())},
                  "ρ = Σmax(−e_r,0)/Σmax(−e_u,0) smaller for TNPO than for NPO (β = 1)", f"ρ {rt:.2g} vs {rn:.2g}")


__all__ = ["npo_weight_decay", "npo_beta_magnitudes", "npo_weighting", "tnpo_vs_npo"]
