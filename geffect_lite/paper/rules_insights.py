"""Claims about Table 1 and the paper's five insights (Wang et al. 2025, arXiv 2502.19301: Table 1 and the
conclusions drawn from Figs. 3–8)."""
from __future__ import annotations

from .claims import claim, damage_ratio, result, spike
from .table import compare, tables

INSIGHT_RUNS = ("ga", "wga", "npo_b1", "tnpo", "po", "ga+gd", "ga+kl")


def _table(runs):
    """The Table 1 analogue at this Runs' seed and learning-rate scale (None without a retain-only twin)."""
    if runs.table is None and runs.model_name in ("tiny", "deep"):
        runs.table = tables(runs.model_name, seeds=(runs.seed,), lr_scale=runs.lr_scale, fast=runs.fast,
                            progress=runs.progress)
    return runs.table


@claim("table1_tradeoff", "Table 1: WGA and WTNPO give a better forget-quality–utility trade-off than GA and NPO",
       "end-metrics")
def table1_tradeoff(runs) -> dict:
    df = _table(runs)
    if df is None:
        return result(None, {}, f"{runs.model_name} has no retain-only twin, so forget quality is undefined")
    lacking = sorted({"ga", "npo", "wga", "wtnpo"} - set(df.objective))
    if lacking:
        return result(None, {}, f"the table lacks {', '.join(lacking)}")
    cmp = {f"{a} vs {b}": compare(df, a, b) for a in ("wga", "wtnpo") for b in ("ga", "npo")}
    d = df[df.kind == "unlearned"].set_index("objective")
    nums = {f"{o} (FQ, MU)": f"({d.loc[o, 'forget_quality']:.2g}, {d.loc[o, 'model_utility']:.2g})"
            for o in ("ga", "npo", "wga", "wtnpo")}
    return result(all(v == "better" for v in cmp.values()), {**nums, **cmp},
                  "trade-off = mean of the ranks by forget quality and by model utility among the unregularised "
                  "objectives; WGA and WTNPO each rank strictly better than GA and than NPO (a tie, or both at "
                  "collapsed utility, is not 'better')",
                  ", ".join(f"{k}: {v}" for k, v in cmp.items() if v != "better"))


@claim("table1_kl_helps", "Table 1: KL regularisation helps retention (higher model utility)", "end-metrics")
def table1_kl_helps(runs) -> dict:
    df = _table(runs)
    if df is None:
        return result(None, {}, f"{runs.model_name} has no retain-only twin for the Table 1 analogue")
    u = df[df.kind == "unlearned"].set_index("objective")
    pairs = [(b, float(u.loc[b, "model_utility"]), float(u.loc[b + "+kl", "model_utility"]))
             for b in u.index if not b.endswith("+kl") and b + "+kl" in u.index]
    helped = [b for b, a, k in pairs if k > a]
    return result(len(helped) > len(pairs) / 2, {f"MU {b} → +kl": f"{a:.2g} → {k:.2g}" for b, a, k in pairs},
                  "MU(X+kl) > MU(X) for a majority of the table's objectives X",
                  f"KL kept more utility for {len(helped)} of {len(pairs)}")


@claim("insight_shallow_layers", "insight 1 (Figs. 3b, 5c): unlearning affects shallow layers more than deep ones",
       "insight", runs=INSIGHT_RUNS)
def insight_shallow(runs) -> dict:
    if runs.n_blocks < 3:
        return result(None, {"blocks": runs.n_blocks}, "needs ≥ 3 decoder blocks for shallow / deep")
    ratios = {}
    for key in INSIGHT_RUNS:
        g = runs.groups(key).abs()
        sh = float(sum(g[c].sum() for c in g.columns if c[1] == "shallow"))
        dp = float(sum(g[c].sum() for c in g.columns if c[1] == "deep"))
        ratios[key] = sh / max(dp, 1e-300)
    wins = sum(v > 1 for v in ratios.values())
    return result(wins > len(ratios) / 2, {f"shallow/deep {k}": v for k, v in ratios.items()},
                  "Σ over steps and risk sets of |G-effect| is larger for the shallow than the deep third of the "
                  "blocks for a majority of the objectives GA, WGA, NPO, TNPO, PO, GA+GD, GA+KL",
                  f"shallow > deep for {wins} of {len(ratios)}")


@claim("insight_retention", "insight 2: every current objective compromises retention (e_r < 0 at some point)",
       "insight", runs=("ga", "wga", "npo_b0.1", "npo_b1", "npo_b2", "tnpo", "po", "rmu_middle", "ga+gd", "ga+kl"))
def insight_retention(runs) -> dict:
    keys = ("ga", "wga", "npo_b0.1", "npo_b1", "npo_b2", "tnpo", "po", "rmu_middle", "ga+gd", "ga+kl")
    mins = {k: float(runs.steps(k).e_r.min()) for k in keys}
    bad = [k for k, v in mins.items() if v >= 0]
    return result(not bad, {f"min e_r {k}": v for k, v in mins.items()}, "min_t e_r < 0 for every objective run",
                  f"never negative for {', '.join(bad)}")


@claim("insight_excessive", "insight 3 (Eq. 1, Fig. 3a): excessive unlearning is harmful — once the forget set is "
       "unlearned, further GA steps damage retention more than they improve removal", "insight", runs=("ga",))
def insight_excessive(runs) -> dict:
    s = runs.steps("ga")
    k = spike(s)
    ru, rr = s.risk_u.to_numpy(dtype=float), s.risk_r.to_numpy(dtype=float)
    before = (rr[k] - rr[0]) / max(ru[k] - ru[0], 1e-300)
    after = (rr[-1] - rr[k]) / max(ru[-1] - ru[k], 1e-300) if k < len(s) - 1 else float("nan")
    return result(bool(after > before), {"spike step": int(s.step[k]), "ΔR_r/ΔR_u before": before, "after": after},
                  "in the GA run, the retain-risk rise per unit of forget-risk rise is larger after the spike than "
                  "up to it", f"{after:.3g} after vs {before:.3g} before")


@claim("insight_weighting", "insight 4 (Eqs. 2, 4, 6): risk weighting (WGA, NPO, TNPO) is powerful — less retention "
       "damage per unit of removal than GA", "insight", runs=("ga", "wga", "npo_b1", "tnpo"))
def insight_weighting(runs) -> dict:
    rho = {k: damage_ratio(runs.steps(k)) for k in ("ga", "wga", "npo_b1", "tnpo")}
    worse = [k for k in ("wga", "npo_b1", "tnpo") if rho[k] >= rho["ga"]]
    return result(not worse, {f"ρ {k}": v for k, v in rho.items()},
                  "ρ = Σmax(−e_r,0)/Σmax(−e_u,0) of WGA, NPO (β = 1) and TNPO each below GA's",
                  f"not below GA: {', '.join(worse)}")


@claim("insight_kl_best", "insight 5 (Fig. 8): among the regularisers GD, KL and RR, KL is best for retention",
       "insight", runs=("ga+gd", "ga+kl", "ga+rr"))
def insight_kl_best(runs) -> dict:
    nll = {k: runs.final(k)["heldout_nll"] for k in ("ga+gd", "ga+kl", "ga+rr")}
    best = min(nll, key=nll.get)
    return result(best == "ga+kl", {f"held-out retain NLL {k}": v for k, v in nll.items()},
                  "after the same GA run with each regulariser (λ = 1), GA+KL has the lowest NLL on held-out retain "
                  "rows (never used for unlearning)", f"lowest: {best}")


__all__ = ["table1_tradeoff", "table1_kl_helps", "insight_shallow", "insight_retention", "insight_excessive", "insight_weighting", "insight_kl_best"]
