"""Claims about NPO and TNPO — Eqs. 3–6, Figs. 4 and 5a–c of Wang et al. 2025 (arXiv 2502.19301).

Thresholds come from the paper's numbers read off its figures (≈; docs/paper.md), with the source next to each;
"half the gap" = at least √F where the paper shows a factor F (``verdicts.half_gap``).
"""
from __future__ import annotations

import math

import numpy as np

from .claims import claim, result
from .verdicts import at_dip, guard, half_gap, not_testable

BETAS = ("0.1", "1", "2")
NPO_KEYS = tuple(f"npo_b{b}" for b in BETAS)
# the mean NPO weight at step 10 of 60 (a sixth of the run), read off the paper's appendix figure for NPO with
# β = 0.1 / 1 / 2 (≈; β = 1 also Fig. 5a); ± WEIGHT_TOL ≈ one paper step of timing (β = 1 falls 0.75 → 0 over
# steps 10–15, ≈ 0.15 per step)
PAPER_WEIGHT = {"0.1": 0.97, "1": 0.75, "2": 0.58}
WEIGHT_TOL = 0.2
# Fig. 4, read off (≈): e_u and e_r at each β's dip
NPO_DIP = {"0.1": (-2.8e3, -3.5e3), "1": (-84.0, -31.0), "2": (-42.0, -16.0)}
# Fig. 5c (TNPO, β = 1), read off (≈): e_u ≈ −325 and e_r ≈ −15…−18 at its dip (step 20)
TNPO_RATIO = 18 / 325                               # ≈ 0.055
NPO1_RATIO = NPO_DIP["1"][1] / NPO_DIP["1"][0]      # ≈ 0.37


def _weights(runs) -> dict:
    return {b: runs.steps(f"npo_b{b}")["w_mean_weight"].to_numpy(dtype=float) for b in BETAS}


@claim("npo_weight_decay", "Figs. 4 and 5a (and the appendix figure for β = 0.1 / 1 / 2): NPO's mean weight drops "
       "from 1 to ≈ 0 by step 15–20 of 60 and its G-effects are confined to the early steps; larger β decays faster "
       "(step 10 of 60: 0.97 / 0.75 / 0.58)", runs=NPO_KEYS)
def npo_weight_decay(runs) -> dict:
    bad = guard(runs, NPO_KEYS)
    if bad:
        return bad
    w = _weights(runs)
    n = min(len(v) for v in w.values())
    k, k3 = max(1, round(n / 6)), min(n - 1, max(2, round(n / 3)))   # step 10 and step 20 of 60
    order = w["0.1"][k] >= w["1"][k] >= w["2"][k]
    regime = {b: abs(w[b][k] - PAPER_WEIGHT[b]) <= WEIGHT_TOL for b in BETAS}
    gone = all(v[k3] <= 0.1 for v in w.values())
    a = runs.steps("npo_b1").e_u.abs().to_numpy()
    early = a[: max(1, len(a) // 2)].sum() / max(a.sum(), 1e-300)
    ok = order and all(regime.values()) and gone and early >= 0.9
    return result(ok, {"row (a sixth)": k, "w β=0.1": w["0.1"][k], "w β=1": w["1"][k], "w β=2": w["2"][k],
                       "row (a third)": k3, "max w at a third": max(v[k3] for v in w.values()),
                       "share of Σ|e_u| in 1st half (β=1)": early},
                  "a sixth into the run the mean weights are ordered β=0.1 ≥ 1 ≥ 2 AND each within ±0.2 of the "
                  "paper's 0.97 / 0.75 / 0.58 (step 10 of 60; ±0.2 ≈ one paper step of timing); a third into the run "
                  "every mean weight is ≤ 0.1 (paper: 0.10 / 0 / 0 at step 15, ≈ 0 at step 20); ≥ 90 % of "
                  "NPO(β=1)'s Σ|e_u| falls in the first half (paper: ≈ 0 from step 25 of 60)",
                  f"ordered {order}, in the paper's regime {', '.join(f'β={b}: {v}' for b, v in regime.items())}, "
                  f"≤ 0.1 at a third {gone}, early share {early:.2g}")


@claim("npo_beta_magnitudes", "Fig. 4: larger β gives smaller G-effects (e_u at the dip ≈ −2.8e3 / −84 / −42 for "
       "β = 0.1 / 1 / 2); β = 0.1 is GA-like (e_r/e_u at the dip ≈ 1.25), β ≥ 1 has |e_u| > |e_r| (≈ 0.37, 0.38)",
       runs=NPO_KEYS)
def npo_beta_magnitudes(runs) -> dict:
    bad = guard(runs, NPO_KEYS)
    if bad:
        return bad
    D = {b: at_dip(runs.steps(f"npo_b{b}")) for b in BETAS}
    g01 = D["0.1"]["e_u"] / D["1"]["e_u"] if D["1"]["e_u"] else math.inf
    g12 = D["1"]["e_u"] / D["2"]["e_u"] if D["2"]["e_u"] else math.inf
    need01 = half_gap(NPO_DIP["0.1"][0] / NPO_DIP["1"][0])    # √33 ≈ 5.8
    need12 = half_gap(NPO_DIP["1"][0] / NPO_DIP["2"][0])      # √2 ≈ 1.41
    checks = {"β 0.1 vs 1": g01 >= need01, "β 1 vs 2": g12 >= need12, "β=0.1 GA-like": D["0.1"]["ratio"] >= 1,
              "β=1 |e_u|>|e_r|": D["1"]["ratio"] <= 0.75, "β=2 |e_u|>|e_r|": D["2"]["ratio"] <= 0.75}
    return result(all(checks.values()),
                  {"|e_u| dip β=0.1/β=1": g01, "|e_u| dip β=1/β=2": g12,
                   **{f"e_r/e_u at dip β={b}": d["ratio"] for b, d in D.items()}},
                  f"at each β's own dip: |e_u(β=0.1)| ≥ {need01:.1f}·|e_u(β=1)| and |e_u(β=1)| ≥ {need12:.2f}·"
                  f"|e_u(β=2)| (half the paper's gaps 2.8e3/84 ≈ 33× and 84/42 = 2×); e_r/e_u ≥ 1 at β = 0.1 (paper "
                  f"≈ 1.25, the stated GA-like |e_r| > |e_u|) and ≤ 0.75 at β = 1 and 2 (paper ≈ 0.37, 0.38, within "
                  f"a factor 2)", ", ".join(c for c, ok in checks.items() if not ok))


def _pooled(pg, T: int):
    """The probes at the checkpoints nearest steps 5, 10, 15 of 60 (1/12, 2/12, 3/12 of the run), pooled (Fig. 5b)."""
    have = np.array(sorted(pg.step.unique()))
    want = {int(have[np.abs(have - f * T).argmin()]) for f in (1 / 12, 2 / 12, 3 / 12)}
    return pg[pg.step.isin(want)], sorted(want)


@claim("npo_weighting", "Fig. 5b and Eq. 5 (β = 1, steps 5–15 pooled): NPO gives its high weights (0.8–1) to points "
       "with near-zero retaining PG-effect (within ≈ ±3 of a ±17 range); the 0.4–0.6 bin holds a point with a notably "
       "negative one (≈ −14)", runs=("npo_b1",))
def npo_weighting(runs) -> dict:
    bad = guard(runs, ["npo_b1"])
    if bad:
        return bad
    pool, steps = _pooled(runs["npo_b1"].probes, int(runs.steps("npo_b1").step.max()))
    W, pg_r = pool.weight.to_numpy(dtype=float), pool.retain.to_numpy(dtype=float)
    top, mid = W >= 0.8, (W >= 0.4) & (W < 0.6)
    if top.sum() < 2 or mid.sum() < 2:
        return not_testable(f"the pooled checkpoints {steps} hold {int(top.sum())} points with weight ≥ 0.8 and "
                            f"{int(mid.sum())} in 0.4–0.6 (need ≥ 2 each)", {"points": len(W)})
    scale = float(np.abs(pg_r).max())
    med_top, med_mid = float(np.median(np.abs(pg_r[top]))), float(np.median(np.abs(pg_r[mid])))
    checks = {"top near zero": med_top <= 0.2 * scale, "top below middle": med_top < med_mid,
              "middle damaging": pg_r[mid].min() < pg_r[top].min() and pg_r[mid].min() <= -0.4 * scale}
    return result(all(checks.values()),
                  {"checkpoints": "/".join(map(str, steps)), "points top/middle": f"{top.sum()}/{mid.sum()}",
                   "median|PG_r| top / max|PG_r|": med_top / max(scale, 1e-300), "median|PG_r| top": med_top,
                   "median|PG_r| middle": med_mid, "min PG_r top": float(pg_r[top].min()),
                   "min PG_r middle / max|PG_r|": float(pg_r[mid].min()) / max(scale, 1e-300)},
                  "NPO (β = 1), the checkpoints nearest steps 5, 10, 15 of 60 pooled, the paper's bins: the median "
                  "|retaining PG-effect| of the weight ≥ 0.8 points is ≤ 20 % of the pooled max |PG_r| (paper ≈ 3/17 "
                  "≈ 18 %) and below the 0.4–0.6 bin's; the 0.4–0.6 bin holds a point more negative than any of the "
                  "top bin and ≤ −40 % of the max |PG_r| (paper ≈ −14/17 ≈ −80 %, within a factor 2)",
                  ", ".join(c for c, ok in checks.items() if not ok))


@claim("tnpo_vs_npo", "Fig. 5c vs Fig. 4: TNPO (β = 1) unlearns with e_r near 0 — e_r/e_u at its dip ≈ 18/325 ≈ "
       "0.055 against NPO's (β = 1) ≈ 31/84 ≈ 0.37", runs=("tnpo", "npo_b1"))
def tnpo_vs_npo(runs) -> dict:
    bad = guard(runs, ["tnpo", "npo_b1"])
    if bad:
        return bad
    t, n = at_dip(runs.steps("tnpo")), at_dip(runs.steps("npo_b1"))
    gap = n["ratio"] / t["ratio"] if t["ratio"] > 0 else math.inf
    need = half_gap(NPO1_RATIO / TNPO_RATIO)                  # √6.7 ≈ 2.6
    ok = t["ratio"] <= 2 * TNPO_RATIO and gap >= need
    return result(ok, {"e_r/e_u at dip TNPO": t["ratio"], "e_r/e_u at dip NPO": n["ratio"], "NPO/TNPO": gap,
                       "e_u at dip TNPO": t["e_u"], "e_u at dip NPO": n["e_u"]},
                  f"e_r/e_u at each objective's own dip: TNPO's ≤ {2 * TNPO_RATIO:.2f} (paper ≈ 0.055, within a "
                  f"factor 2) and NPO's ≥ {need:.1f}× TNPO's (half the paper's ≈ 6.7× gap); raw magnitudes are not "
                  f"compared (NPO sums over tokens, TNPO averages)",
                  f"ratios {t['ratio']:.2g} (TNPO) vs {n['ratio']:.2g} (NPO)")


__all__ = ["npo_weight_decay", "npo_beta_magnitudes", "npo_weighting", "tnpo_vs_npo", "PAPER_WEIGHT", "NPO_DIP"]
