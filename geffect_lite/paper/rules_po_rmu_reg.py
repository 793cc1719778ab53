"""Claims about PO, RMU and the regularisers — Eqs. 7–8, Figs. 6–8 of Wang et al. 2025 (arXiv 2502.19301)."""
from __future__ import annotations

import numpy as np

from .claims import claim, late_mass, result


@claim("po_relearning", "Fig. 6: PO's e_u < 0 only in the first steps, then e_u > 0 (re-learning), with e_r also "
       "turning positive", runs=("po",))
def po_relearning(runs) -> dict:
    s = runs.steps("po")
    n3 = max(2, len(s) // 3)
    eu = s.e_u.to_numpy(dtype=float)
    neg_early = bool((eu[:n3] < 0).any())
    later = s.iloc[int(np.argmax(eu < 0)) + 1 if neg_early else 0:]
    pos_u, pos_r = bool((later.e_u > 0).any()), bool((later.e_r > 0).any())
    return result(neg_early and pos_u and pos_r,
                  {"e_u(0)": eu[0], "min e_u (first third)": float(eu[:n3].min()), "max e_u": float(eu.max()),
                   "first step e_u>0 after the dip": int(later.step[later.e_u > 0].iloc[0]) if pos_u else -1,
                   "max e_r later": float(later.e_r.max()) if len(later) else float("nan")},
                  "e_u < 0 at some step of the first third, then e_u > 0 and e_r > 0 at some later step",
                  "e_u is never negative early (re-learning from the start)" if not neg_early else
                  f"later positive e_u {pos_u}, positive e_r {pos_r}")


@claim("rmu_layers", "Fig. 7 and Eq. 8: RMU (c = 5) is most effective at the middle layer (largest e_u, "
       "|e_u| > |e_r|); a shallow layer gives |e_r| ≥ |e_u|; the deepest layer turns e_u positive later",
       runs=("rmu_shallow", "rmu_middle", "rmu_deep"))
def rmu_layers(runs) -> dict:
    if runs.n_blocks < 3:
        return result(None, {"blocks": runs.n_blocks}, "needs ≥ 3 decoder blocks for shallow / middle / deep")
    S = {w: runs.steps(f"rmu_{w}") for w in ("shallow", "middle", "deep")}
    mins = {w: float(s.e_u.min()) for w, s in S.items()}
    area = {w: (float(s.e_u.abs().sum()), float(s.e_r.abs().sum())) for w, s in S.items()}
    last = S["deep"]
    n3 = max(1, len(last) // 3)
    checks = {"middle not the most negative": mins["middle"] < min(mins["shallow"], mins["deep"]),
              "middle |e_u| ≤ |e_r|": area["middle"][0] > area["middle"][1],
              "shallow |e_r| < |e_u|": area["shallow"][1] >= area["shallow"][0],
              "deepest layer never e_u > 0 later": bool((last.e_u.iloc[n3:] > 0).any())}
    return result(all(checks.values()),
                  {"layers": "/".join(str(runs.layer(w)) for w in S), **{f"min e_u {w}": v for w, v in mins.items()},
                   "Σ|e_u|/Σ|e_r| middle": area["middle"][0] / max(area["middle"][1], 1e-300),
                   "Σ|e_r|/Σ|e_u| shallow": area["shallow"][1] / max(area["shallow"][0], 1e-300),
                   "max e_u deep (after 1st third)": float(last.e_u.iloc[n3:].max())},
                  "min e_u most negative at the middle layer; there Σ|e_u| > Σ|e_r|; at the shallow layer Σ|e_r| ≥ "
                  "Σ|e_u|; at the deepest layer e_u > 0 at some step after the first third",
                  "; ".join(c for c, ok in checks.items() if not ok))


def _reg_series(runs, key: str, reg: str):
    t = runs.terms(key)
    return (t[("forget", reg)].to_numpy(dtype=float)[1:], t[("retain", reg)].to_numpy(dtype=float)[1:],
            t[("forget", "forget")].to_numpy(dtype=float)[1:])


@claim("reg_gd_term", "Fig. 8a: the GD term has positive e_r and positive e_u, e_r decaying more slowly",
       runs=("ga+gd",))
def reg_gd_term(runs) -> dict:
    eu, er, _ = _reg_series(runs, "ga+gd", "gd")
    pos_r, pos_u = float((er > 0).mean()), float((eu > 0).mean())
    lu, lr_ = late_mass(eu), late_mass(er)
    return result(pos_r > 0.5 and pos_u > 0.5 and er.sum() > 0 and eu.sum() > 0 and lr_ > lu,
                  {"share e_r>0": pos_r, "share e_u>0": pos_u, "late mass e_r": lr_, "late mass e_u": lu},
                  "the GD term's e_r and e_u are > 0 on most steps (after step 0) and in sum, and e_r keeps more of "
                  "its mass in the second half of the run than e_u",
                  f"positive shares {pos_r:.2g}/{pos_u:.2g}, late mass {lr_:.2g} vs {lu:.2g}")


@claim("reg_kl_term", "Fig. 8b: the KL term has positive e_r and e_u that decay to ≈ 0 by mid-run",
       runs=("ga+kl",))
def reg_kl_term(runs) -> dict:
    eu, er, _ = _reg_series(runs, "ga+kl", "kl")
    pos_r, pos_u = float((er > 0).mean()), float((eu > 0).mean())
    end_r = abs(er[-1]) / max(np.abs(er).max(), 1e-300)
    end_u = abs(eu[-1]) / max(np.abs(eu).max(), 1e-300)
    return result(pos_r > 0.5 and pos_u > 0.5 and er.sum() > 0 and eu.sum() > 0 and end_r <= 0.05 and end_u <= 0.05,
                  {"share e_r>0": pos_r, "share e_u>0": pos_u, "last/peak e_r": end_r, "last/peak e_u": end_u},
                  "the KL term's e_r and e_u are > 0 on most steps (after step 0) and in sum, and both end ≤ 5 % of "
                  "their peak", f"positive shares {pos_r:.2g}/{pos_u:.2g}, last/peak {end_r:.2g}/{end_u:.2g}")


@claim("reg_rr_term", "Fig. 8c: the RR term has negligible magnitude and turns e_r negative", runs=("ga+rr",))
def reg_rr_term(runs) -> dict:
    eu, er, ef = _reg_series(runs, "ga+rr", "rr")
    rel = float(max(np.abs(eu).max(), np.abs(er).max()) / max(np.abs(ef).max(), 1e-300))
    return result(rel <= 0.05 and bool((er < 0).any()),
                  {"peak |RR term| / peak |forget term|": rel, "min e_r (RR)": float(er.min())},
                  "the RR term's peak |G-effect| ≤ 5 % of the forget term's, and its e_r < 0 at some step",
                  f"relative magnitude {rel:.2g}, min e_r {er.min():.3g}")


__all__ = ["po_relearning", "rmu_layers", "reg_gd_term", "reg_kl_term", "reg_rr_term"]
