"""Claims about Table 1 and the paper's five insights (Wang et al. 2025, arXiv 2502.19301: Table 1 and the
conclusions drawn from Figs. 3–8).

Table 1's numbers are unknown here (docs/paper.md), so its rules compare orderings with margins stated as such;
the insights' thresholds come from the figures' numbers (≈) where the paper gives them, with the source next to each.
"""
from __future__ import annotations

import math

from .claims import claim, result
from .rules_ga import GA_DIP, WGA_DIP
from .rules_npo import NPO_DIP, TNPO_RATIO
from .table import ZERO_UTILITY, compare, tables
from .verdicts import at_dip, guard, half_gap, not_testable

INSIGHT_RUNS = ("ga", "wga", "npo_b1", "tnpo", "po", "ga+gd", "ga+kl")
RETENTION_RUNS = ("ga", "wga", "npo_b0.1", "npo_b1", "npo_b2", "tnpo", "po", "rmu_middle", "ga+gd", "ga+kl")
FQ_FACTOR = 10          # table1_kl_helps: forget quality may fall at most 10× (no number in the paper: margin)
MU_MARGIN = 0.02        # table1_kl_helps: utility must rise by ≥ 0.02 (no number in the paper: margin)
NLL_MARGIN = 0.05       # insight_kl_best: KL's held-out NLL ≥ 5 % below the others' (no number: margin)
GA_RATIO = GA_DIP["e_r"] / GA_DIP["e_u"]
# e_r/e_u at each weighted objective's dip (Fig. 3c, Fig. 4 β = 1, Fig. 5c; read off, ≈)
WEIGHTED_RATIO = {"wga": WGA_DIP["e_r"] / WGA_DIP["e_u"], "npo_b1": NPO_DIP["1"][1] / NPO_DIP["1"][0],
                  "tnpo": TNPO_RATIO}


def _table(runs):
    """The Table 1 analogue at this Runs' seed and learning-rate scale (None without a retain-only twin)."""
    if runs.table is None and runs.model_name in ("tiny", "deep"):
        runs.table = tables(runs.model_name, seeds=(runs.seed,), lr_scale=runs.lr_scale, fast=runs.fast,
                            progress=runs.progress)
    return runs.table


@claim("table1_tradeoff", "Table 1: WGA and WTNPO give a better forget-quality–utility trade-off than GA and NPO "
       "(no numbers known: orderings)", "end-metrics")
def table1_tradeoff(runs) -> dict:
    df = _table(runs)
    if df is None:
        return result(None, {}, f"{runs.model_name} has no retain-only twin, so forget quality is undefined")
    lacking = sorted({"ga", "npo", "wga", "wtnpo"} - set(df.objective))
    if lacking:
        return result(None, {}, f"the table lacks {', '.join(lacking)}")
    d = df[(df.kind == "unlearned") & ~df.kl].set_index("objective")
    nums = {f"{o} (FQ, MU)": f"({d.loc[o, 'forget_quality']:.2g}, {d.loc[o, 'model_utility']:.2g})"
            for o in ("ga", "npo", "wga", "wtnpo")}
    if d.loc[["ga", "npo", "wga", "wtnpo"], ["forget_quality", "model_utility"]].isna().any().any():
        return not_testable("a Table 1 run diverged (its metrics are NaN)", nums)
    cmp = {}
    for a in ("wga", "wtnpo"):
        for b in ("ga", "npo"):
            dead = max(d.loc[a, "model_utility"], d.loc[b, "model_utility"]) < ZERO_UTILITY
            cmp[f"{a} vs {b}"] = "both collapsed" if dead else compare(df, a, b)
    if all(v == "better" for v in cmp.values()):
        ok = True
    elif any(v not in ("better", "both collapsed") for v in cmp.values()):
        ok = False
    else:
        return not_testable("the remaining pairs are both at collapsed utility (< "
                            f"{ZERO_UTILITY}): no ordering", {**nums, **cmp})
    return result(ok, {**nums, **cmp},
                  "trade-off = mean of the ranks by forget quality and by model utility among the unregularised "
                  "objectives; WGA and WTNPO each rank strictly better than GA and than NPO (no number in the "
                  "paper; a tie or a worse rank is a miss; pairs where both are at collapsed utility decide nothing: "
                  "if only such pairs stand between the rule and a pass, not testable)",
                  ", ".join(f"{k}: {v}" for k, v in cmp.items() if v != "better"))


@claim("table1_kl_helps", "Table 1: KL regularisation helps retention (higher model utility) — read here as: at no "
       "large cost in forget quality", "end-metrics")
def table1_kl_helps(runs) -> dict:
    df = _table(runs)
    if df is None:
        return result(None, {}, f"{runs.model_name} has no retain-only twin for the Table 1 analogue")
    u = df[df.kind == "unlearned"].set_index("objective")
    pairs = [b for b in u.index if not b.endswith("+kl") and b + "+kl" in u.index
             and u.loc[[b, b + "+kl"], ["model_utility", "forget_quality"]].notna().all().all()]
    if not pairs:
        return not_testable("no objective with a finite X and X+kl in the table")
    helped, nums = [], {}
    for b in pairs:
        mu, mk = float(u.loc[b, "model_utility"]), float(u.loc[b + "+kl", "model_utility"])
        fq, fk = float(u.loc[b, "forget_quality"]), float(u.loc[b + "+kl", "forget_quality"])
        nums[f"{b} → +kl (MU; FQ)"] = f"{mu:.2g} → {mk:.2g}; {fq:.2g} → {fk:.2g}"
        if mk - mu >= MU_MARGIN and fk * FQ_FACTOR >= fq:
            helped.append(b)
    return result(len(helped) > len(pairs) / 2, nums,
                  f"for a majority of the table's objectives X: MU(X+kl) ≥ MU(X) + {MU_MARGIN} AND FQ(X+kl) ≥ "
                  f"FQ(X)/{FQ_FACTOR} (utility rises, forget quality falls at most {FQ_FACTOR}×; the paper gives no "
                  f"number: both are margins)", f"KL helped {len(helped)} of {len(pairs)}: {', '.join(helped)}")


@claim("insight_shallow_layers", "insight 1 (Figs. 3b, 3c, 5c): unlearning affects shallow layers more than deep ones "
       "(GA's dip: shallow ≈ 3e5 vs deep ≈ 5e3)", "insight", runs=INSIGHT_RUNS)
def insight_shallow(runs) -> dict:
    if runs.n_blocks < 3:
        return result(None, {"blocks": runs.n_blocks}, "needs ≥ 3 decoder blocks for shallow / deep")
    bad = guard(runs, INSIGHT_RUNS)
    if bad:
        return bad
    ratios = {}
    for key in INSIGHT_RUNS:
        g = runs.groups(key).abs()
        sh = float(sum(g[c].sum() for c in g.columns if c[1] == "shallow"))
        dp = float(sum(g[c].sum() for c in g.columns if c[1] == "deep"))
        ratios[key] = sh / max(dp, 1e-300)
    wins = sum(v >= 2 for v in ratios.values())
    return result(wins > len(ratios) / 2, {f"shallow/deep {k}": v for k, v in ratios.items()},
                  "Σ over steps and risk sets of |G-effect| is ≥ 2× larger for the shallow than the deep third of "
                  "the blocks for a majority of GA, WGA, NPO, TNPO, PO, GA+GD, GA+KL (the paper gives a number for "
                  "GA only, ≈ 60× at its dip; 2× is a margin)", f"shallow ≥ 2× deep for {wins} of {len(ratios)}")


@claim("insight_retention", "insight 2: every current objective compromises retention (e_r clearly < 0 at some point; "
       "the mildest in the figures, TNPO, still has e_r ≈ 0.055·e_u at its dip)", "insight", runs=RETENTION_RUNS)
def insight_retention(runs) -> dict:
    bad = guard(runs, RETENTION_RUNS)
    if bad:
        return bad
    rel = {}
    for k in RETENTION_RUNS:
        s = runs.steps(k)
        rel[k] = float(s.e_r.min()) / max(abs(float(s.e_u.min())), 1e-300)
    bad_ = [k for k, v in rel.items() if v > -TNPO_RATIO / 2]
    return result(not bad_, {f"min e_r / |min e_u| {k}": v for k, v in rel.items()},
                  f"min_t e_r ≤ −{TNPO_RATIO / 2:.3f}·|min_t e_u| for every objective run (half of the mildest "
                  f"retention damage in the paper's figures, TNPO's ≈ 18/325 at its dip, Fig. 5c)",
                  f"not clearly negative for {', '.join(bad_)}")


@claim("insight_excessive", "insight 3 (Eq. 1, Fig. 3a): excessive unlearning is harmful — once the forget set is "
       "unlearned, further GA steps damage retention more than they improve removal", "insight", runs=("ga",))
def insight_excessive(runs) -> dict:
    bad = guard(runs, ["ga"])
    if bad:
        return bad
    s = runs.steps("ga")
    k = at_dip(s)["i"]
    if k >= len(s) - 1:
        return result(None, {"dip row": k}, "GA's dip is at the last recorded step: no 'after'")
    ru, rr = s.risk_u.to_numpy(dtype=float), s.risk_r.to_numpy(dtype=float)
    before = (rr[k] - rr[0]) / max(ru[k] - ru[0], 1e-300)
    after = (rr[-1] - rr[k]) / max(ru[-1] - ru[k], 1e-300)
    return result(bool(after >= 2 * before and after > 0),
                  {"dip step": int(s.step[k]), "ΔR_r/ΔR_u before": before, "after": after},
                  "in the GA run, the retain-risk rise per unit of forget-risk rise after the dip is ≥ 2× the one up "
                  "to it (the paper gives no number for the realised risks: 2× is a margin)",
                  f"{after:.3g} after vs {before:.3g} before")


@claim("insight_weighting", "insight 4 (Eqs. 2, 4, 6): risk weighting (WGA, NPO, TNPO) is powerful — e_r/e_u at the dip "
       "≈ 0.18 / 0.37 / 0.055 against GA's ≈ 1.9 (Figs. 3a, 3c, 4, 5c)", "insight",
       runs=("ga", "wga", "npo_b1", "tnpo"))
def insight_weighting(runs) -> dict:
    bad = guard(runs, ("ga", "wga", "npo_b1", "tnpo"))
    if bad:
        return bad
    r = {k: at_dip(runs.steps(k))["ratio"] for k in ("ga", "wga", "npo_b1", "tnpo")}
    need = {k: half_gap(GA_RATIO / v) for k, v in WEIGHTED_RATIO.items()}
    gap = {k: (r["ga"] / r[k] if r[k] > 0 else math.inf) for k in WEIGHTED_RATIO}
    worse = [k for k in WEIGHTED_RATIO if gap[k] < need[k]]
    return result(not worse, {**{f"e_r/e_u at dip {k}": v for k, v in r.items()},
                              **{f"GA / {k}": v for k, v in gap.items()}},
                  "e_r/e_u at each objective's own dip: GA's ≥ √(paper gap) × each weighted objective's — "
                  + ", ".join(f"{k} {need[k]:.1f}×" for k in need) + " (half the paper's gaps 1.9/0.18, 1.9/0.37, "
                  "1.9/0.055 in orders of magnitude)", f"gap too small for: {', '.join(worse)}")


@claim("insight_kl_best", "insight 5 (Fig. 8): among the regularisers GD, KL and RR, KL is best for retention",
       "insight", runs=("ga+gd", "ga+kl", "ga+rr"))
def insight_kl_best(runs) -> dict:
    keys = ("ga+gd", "ga+kl", "ga+rr")
    bad = guard(runs, keys)
    if bad:
        return bad
    nll = {k: float(runs.final(k).get("heldout_nll", math.nan)) for k in keys}
    nums = {f"held-out retain NLL {k}": v for k, v in nll.items()}
    bound = math.log(runs.model.config.vocab_size)
    if any(not math.isfinite(v) for v in nll.values()):
        return not_testable("a held-out NLL is not finite", nums)
    live = {k: v for k, v in nll.items() if v <= bound}
    if "ga+kl" not in live and not live:
        return not_testable(f"every model's held-out NLL exceeds ln|V| = {bound:.3g} (collapsed: no ordering)",
                            nums)
    others = [v for k, v in nll.items() if k != "ga+kl"]
    ok = "ga+kl" in live and nll["ga+kl"] <= (1 - NLL_MARGIN) * min(others)
    return result(ok, nums,
                  f"after the same GA run with each regulariser (λ = 1), GA+KL's NLL on held-out retain rows (never "
                  f"used for unlearning) is ≤ {1 - NLL_MARGIN:.2f}× the lowest of the others' (no number in the "
                  f"paper: a 5 % margin) and ≤ ln|V| (a model above a uniform guess has collapsed; when all three "
                  f"have, not testable)", f"lowest: {min(nll, key=nll.get)}")


__all__ = ["table1_tradeoff", "table1_kl_helps", "insight_shallow", "insight_retention", "insight_excessive",
           "insight_weighting", "insight_kl_best"]
