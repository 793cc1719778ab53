"""Claims about GA and WGA — Eqs. 1–2 and Fig. 3a–c of Wang et al. 2025 (arXiv 2502.19301)."""
from __future__ import annotations

import numpy as np
import torch

from ..context import Context
from ..objectives import get_objective
from .claims import claim, damage_ratio, result, spike


@claim("ga_spike", "Fig. 3a: GA's G-effects are ≈ 0 at first, then one sharp negative spike as confidence "
       "collapses, with e_r as negative as e_u (the paper's ≈ −3.5e5 vs −1.8e5); afterwards small but non-zero",
       runs=("ga",))
def ga_spike(runs) -> dict:
    s = runs.steps("ga")
    k = spike(s)
    peak_u, peak_r = float(s.e_u.min()), float(s.e_r.min())
    first, last = float(s.e_u.iloc[0]), float(s.e_u.iloc[-1])
    checks = {"quiet start": abs(first) <= 0.01 * abs(peak_u), "spike inside the run": 0 < k < len(s) - 1,
              "decays": abs(last) <= 0.5 * abs(peak_u) and last != 0, "e_r as deep": peak_r <= 0.8 * peak_u}
    seen = {"quiet start": f"|e_u(0)| = {abs(first) / abs(peak_u):.2g} of the peak",
            "spike inside the run": f"the most negative e_u is at step {k} (an end of the run)",
            "decays": f"last |e_u| = {abs(last) / abs(peak_u):.2g} of the peak",
            "e_r as deep": f"min e_r / min e_u = {peak_r / peak_u:.2g}"}
    return result(all(checks.values()), {"spike step": int(s.step[k]), "min e_u": peak_u, "min e_r": peak_r,
                                         "min e_r/min e_u": peak_r / peak_u, "e_u(0)": first, "e_u(T)": last},
                  "|e_u(0)| ≤ 1 % of |min e_u|; the minimum is inside the run; |e_u(T)| ≤ 50 % of it but ≠ 0; "
                  "min e_r ≤ 0.8·min e_u", "; ".join(seen[c] for c, ok in checks.items() if not ok))


@claim("ga_inverse_confidence", "Eq. 1 (the paper's appendix plots for GA): the mean inverse confidence 1/p grows "
       "by many orders of magnitude (≈ 3 → 1e18) and the forget NLL saturates (≈ 90 nats/token)", runs=("ga",))
def ga_inverse_confidence(runs) -> dict:
    with torch.no_grad():
        ic0 = get_objective("ga").summary(Context(runs.model, runs.forget, runs.retain))["mean_inverse_confidence"]
    ic1 = runs.final("ga")["inverse_confidence"]
    growth = float(np.log10(ic1 / ic0)) if np.isfinite(ic1) else float("inf")
    r = runs["ga"].steps.risk_u.dropna().to_numpy(dtype=float)
    n4 = max(1, len(r) // 4)
    late = (r[-1] - r[-1 - n4]) / max(r[-1] - r[0], 1e-30)
    return result(growth >= 6 and r[-1] >= 10 and late <= 0.25,
                  {"mean 1/p at θ_o": ic0, "after GA": ic1, "log10 growth": growth, "forget NLL first": r[0],
                   "forget NLL last": r[-1], "share of rise in last quarter": late},
                  "mean 1/p over the forget answer tokens grows ≥ 10⁶× over the GA run, and the forget NLL ends ≥ 10 "
                  "nats/token with ≤ 25 % of its rise in the last quarter of the run (saturation)",
                  f"1/p grew 10^{growth:.1f}×, forget NLL {r[-1]:.3g}, last-quarter share {late:.2g}")


@claim("ga_layers", "Fig. 3b: in GA's spike the shallow layers carry most of the G-effect; the input embedding "
       "is ≈ 0", runs=("ga",))
def ga_layers(runs) -> dict:
    if runs.n_blocks < 3:
        return result(None, {"blocks": runs.n_blocks}, "needs ≥ 3 decoder blocks for shallow / middle / deep")
    s = runs.steps("ga")
    k = int(s.step[spike(s)])
    g = runs.groups("ga").loc[k]
    nums, ok_sh = {"spike step": k}, True
    for rs in ("forget", "retain"):
        blocks = {b: abs(float(g[(rs, b)])) for b in ("shallow", "middle", "deep")}
        tot = sum(abs(float(v)) for (r, _), v in g.items() if r == rs)
        nums[f"shallow share of blocks ({rs})"] = blocks["shallow"] / max(sum(blocks.values()), 1e-300)
        ok_sh &= max(blocks, key=blocks.get) == "shallow"
        if not runs.tied:
            nums[f"embed share ({rs})"] = abs(float(g[(rs, "embed")])) / max(tot, 1e-300)
    emb = [v for kk, v in nums.items() if kk.startswith("embed")]
    ok_emb = all(v <= 0.1 for v in emb) if emb else True
    seen = (["shallow is not the largest block group"] if not ok_sh else []) + \
        ([f"the embedding carries {max(emb):.0%}"] if not ok_emb else [])
    return result(ok_sh and ok_emb, nums,
                  "at the spike, shallow has the largest |G-effect| of the three block groups for e_u and e_r, and "
                  "the embedding's share of Σ|group| is ≤ 10 % (skipped when tied to lm_head)", "; ".join(seen))


@claim("ga_lm_head", "Fig. 3b: after GA's spike, lm_head keeps a persistent negative retaining G-effect while the "
       "other groups decay", runs=("ga",))
def ga_lm_head(runs) -> dict:
    if runs.tied:
        return result(None, {"tied embeddings": True}, "the input embedding and lm_head are one tensor (tied), so "
                                                        "lm_head's G-effect cannot be separated")
    s = runs.steps("ga")
    k = spike(s)
    g = runs.groups("ga")
    after = g.iloc[k + 1:]
    if len(after) < 2:
        return result(None, {"steps after spike": len(after)}, "fewer than 2 recorded steps after the spike")
    lm = after[("retain", "lm")]
    others = [c for c in g.columns if c[0] == "retain" and c[1] != "lm"]
    o_spike, o_last = float(g.iloc[k][others].abs().sum()), float(after.iloc[-1][others].abs().sum())
    lm_share = abs(float(lm.iloc[-1])) / max(abs(float(lm.iloc[-1])) + o_last, 1e-300)
    ok = bool((lm < 0).all()) and o_last <= 0.25 * o_spike and lm_share >= 0.5
    return result(ok, {"lm e_r after spike (max)": float(lm.max()), "lm e_r (last)": float(lm.iloc[-1]),
                       "lm share of |e_r| (last)": lm_share, "others last/spike": o_last / max(o_spike, 1e-300)},
                  "lm's e_r < 0 at every step after the spike, the other groups' Σ|e_r| falls to ≤ 25 % of its "
                  "spike value, and lm holds ≥ 50 % of |e_r| at the end",
                  f"lm e_r max {float(lm.max()):.3g}, others fell to {o_last / max(o_spike, 1e-300):.2g}, lm share "
                  f"{lm_share:.2g}")


@claim("wga_vs_ga", "Fig. 3c: WGA (α = 0.5) has far smaller G-effects than GA, spikes no later, and has a much "
       "smaller |e_r|/|e_u| (≈ 0.2 vs ≈ 2)", runs=("ga", "wga"))
def wga_vs_ga(runs) -> dict:
    ga, wga = runs.steps("ga"), runs.steps("wga")
    mag = float(wga.e_u.min()) / float(ga.e_u.min())
    rho_ga, rho_wga = damage_ratio(ga), damage_ratio(wga)
    k_ga, k_wga = int(ga.step[spike(ga)]), int(wga.step[spike(wga)])
    return result(mag <= 0.5 and rho_wga < rho_ga and k_wga <= k_ga,
                  {"min e_u WGA/GA": mag, "ρ GA": rho_ga, "ρ WGA": rho_wga, "spike GA": k_ga, "spike WGA": k_wga},
                  "|min e_u| of WGA ≤ 50 % of GA's, ρ = Σmax(−e_r,0)/Σmax(−e_u,0) smaller for WGA, and WGA's "
                  "spike no later than GA's",
                  f"magnitude ratio {mag:.2g}, ρ {rho_wga:.2g} vs {rho_ga:.2g}, spikes at {k_wga} vs {k_ga}")


__all__ = ["ga_spike", "ga_inverse_confidence", "ga_layers", "ga_lm_head", "wga_vs_ga"]
