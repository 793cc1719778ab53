"""The readings of notebook 05 (NPO): what the scoreboard's runs show next to the paper's Fig. 4 (NPO's G-effects,
β = 0.1 / 1 / 2), Fig. 5a (NPO's mean weight) and Fig. 5b (weight × PG-effect per answer, Eq. 5), and the notebook's
own reading, which no claim covers (AdamW against plain SGD), with its summary (notebook 06's TNPO readings:
:mod:`.tnpo`). "As in Fig. N" only through
:func:`.common.as_in` and the claim of ``geffect_lite.paper.rules_npo``; a check uses the rule's quantity and
threshold (its constants, or those below, which it writes inline); other sentences follow an explicit condition.
"""
from __future__ import annotations

import math

import numpy as np

from ..paper.rules_npo import BETAS, NPO_DIP, PAPER_WEIGHT, WEIGHT_TOL, _pooled
from ..paper.verdicts import at_dip, half_gap
from .common import Reading, as_in, at_end, end_states, head, num, pick, values_of, verdict_of

# thresholds that rules_npo writes inline, named once here (the same numbers)
GONE, EARLY = 0.1, 0.9             # npo_weight_decay: every weight ≤ 0.1 a third in; ≥ 90 % of Σ|e_u| in 1st half
GA_LIKE, NOT_GA_LIKE = 1.0, 0.75   # npo_beta_magnitudes: e_r/e_u at the dip ≥ 1 at β = 0.1, ≤ 0.75 at β = 1, 2
TOP, MID = 0.8, (0.4, 0.6)         # npo_weighting: the paper's top bin (w ≥ 0.8) and middle bin (0.4 ≤ w < 0.6)
NEAR_ZERO, DAMAGING = 0.2, 0.4     # npo_weighting: top median |PG_r| ≤ 20 %, a middle PG_r ≤ −40 % of max |PG_r|
FIG5B = (3, 14, 17)                # Fig. 5b read off (≈): top bin within ±3, a 0.4–0.6 point at −14, range ±17
DEAD = 1e-3                        # the notebooks' "the mean weight has died" (no claim)
_keeps = lambda x: x is not None and x["end"] > 1.2 * x["at"]   # forget risk ends > 1.2 × where the weights died
_steps = lambda runs: {b: runs.steps(f"npo_b{b}") for b in BETAS}      # NPO's three runs' recorded steps, by β


def _untestable(live, cid: str) -> str:
    """A plain sentence when the rule of ``cid`` could not decide on this run, else ''."""
    return "" if verdict_of(live, cid) in ("reproduced", "not reproduced") else (
        f"The rule cannot decide on this run ({live.loc[cid, 'reason']}), so its checks are not read here.")


def _dies(s):                   # the first step whose mean weight is below DEAD, or "never"
    d = s[s.w_mean_weight < DEAD]
    return int(d.step.iloc[0]) if len(d) else "never"


def _decay(live, runs) -> str:
    """The bullet on claim npo_weight_decay (Fig. 5a): the weights a sixth and a third into the run."""
    cid, st = "npo_weight_decay", _steps(runs)
    lead = (f"- **The weights fall** (claim `{cid}`: *{verdict_of(live, cid)}*). The mean weight drops below "
            f"$10^{{-3}}$ at steps {', '.join(str(_dies(st[b])) for b in BETAS)} for $\\beta$ = 0.1, 1, 2. ")
    if _untestable(live, cid):
        return lead + _untestable(live, cid)
    v, s1 = values_of(live, cid), st["1"]
    w = {b: float(v[f"w β={b}"]) for b in BETAS}
    order = w["0.1"] >= w["1"] >= w["2"]
    off = {b: w[b] - PAPER_WEIGHT[b] for b in BETAS if abs(w[b] - PAPER_WEIGHT[b]) > WEIGHT_TOL}
    late, early = float(v["max w at a third"]), float(v["share of Σ|e_u| in 1st half (β=1)"])
    fails = [t for t, bad in (("the order", not order), ("the paper's timing", off),
                              ("≈ 0 a third in", late > GONE), ("early G-effects", early < EARLY)) if bad]
    timing = "all within it." if not off else ("outside it for " + ", ".join(
        f"$\\beta$ = {b} ({pick(d < 0, 'lower: faster decay', 'higher: slower decay')})" for b, d in off.items())
        + ".")
    return lead + (
        f"A sixth of the way in, at step {int(s1.step.iloc[int(v['row (a sixth)'])])} of {int(s1.step.max())}, the "
        f"mean weights are {', '.join(num(w[b]) for b in BETAS)}: "
        + pick(order, "larger $\\beta$, faster decay. ", "**not** in the order larger $\\beta$, faster decay. ")
        + f"The paper's at step 10 of 60 are {' / '.join(num(PAPER_WEIGHT[b]) for b in BETAS)} and the rule accepts "
        f"±{num(WEIGHT_TOL)}: {timing} A third of the way in (step {int(s1.step.iloc[int(v['row (a third)'])])}) "
        f"the largest mean weight is {num(late)}, "
        + pick(late <= GONE, f"at most {num(GONE)}: gone. ", f"above {num(GONE)}: still alive. ")
        + f"{num(100 * early)} % of NPO ($\\beta$ = 1)'s $\\sum_t|e_u|$ falls in the first half of the run: "
        + pick(early >= EARLY, "its G-effects are confined to the early steps. ",
               f"under {num(100 * EARLY)} %, so its G-effects are **not** confined to the early steps. ")
        + as_in(live, cid, "Fig. 5a", "The weights die early, in the order of $\\beta$ and on the paper's timing",
                f"So the paper's decay is **not shown** here (missed: {', '.join(fails)})."))


def _ga_like(v, runs) -> str:
    """e_r/e_u at each β's dip against the rule's GA-like thresholds, and GA's own ratio on this model."""
    r = {b: float(v[f"e_r/e_u at dip β={b}"]) for b in BETAS}
    paper = {b: NPO_DIP[b][1] / NPO_DIP[b][0] for b in BETAS}
    ga = at_dip(runs.steps("ga"))["ratio"]
    return (f"$e_r/e_u$ at the dip is {num(r['0.1'])} at $\\beta$ = 0.1 (the rule asks ≥ {num(GA_LIKE)}, the "
            f"paper's ≈ {num(paper['0.1'])}) and {num(r['1'])}, {num(r['2'])} at $\\beta$ = 1, 2 (the rule asks ≤ "
            f"{num(NOT_GA_LIKE)}, the paper's ≈ {num(paper['1'])}, {num(paper['2'])}): "
            + pick(r["0.1"] >= GA_LIKE, "$\\beta$ = 0.1 is GA-like, $|e_r|\\ge|e_u|$; ",
                   "$\\beta$ = 0.1 is **not** GA-like here; ")
            + pick(max(r["1"], r["2"]) <= NOT_GA_LIKE, "$\\beta\\ge1$ has $|e_u|>|e_r|$. ",
                   f"$\\beta\\ge1$ is above {num(NOT_GA_LIKE)}. ")
            + (f"(Our reading) GA's own $e_r/e_u$ at its dip is {num(ga)} on this model"
               + pick(ga < GA_LIKE, ": GA itself does not have $|e_r|>|e_u|$ here. ",
                                              ": GA itself has $|e_r|\\ge|e_u|$ here. ")
               if math.isfinite(ga) else ""))


def _magnitudes(live, runs) -> str:
    """The bullet on claim npo_beta_magnitudes (Fig. 4): |e_u| at each β's dip, and e_r/e_u there."""
    cid = "npo_beta_magnitudes"
    lead = f"- **Magnitudes at the dip** (claim `{cid}`: *{verdict_of(live, cid)}*). "
    if _untestable(live, cid):
        return lead + _untestable(live, cid)
    v, D = values_of(live, cid), {b: at_dip(runs.steps(f"npo_b{b}")) for b in BETAS}
    g = (float(v["|e_u| dip β=0.1/β=1"]), float(v["|e_u| dip β=1/β=2"]))
    paper = (NPO_DIP["0.1"][0] / NPO_DIP["1"][0], NPO_DIP["1"][0] / NPO_DIP["2"][0])
    need = tuple(half_gap(f) for f in paper)
    r = {b: float(v[f"e_r/e_u at dip β={b}"]) for b in BETAS}
    fails = [t for t, bad in (("the gap β = 0.1 / 1", g[0] < need[0]), ("the gap β = 1 / 2", g[1] < need[1]),
                              ("β = 0.1 GA-like", r["0.1"] < GA_LIKE),
                              ("β ≥ 1 with |e_u| > |e_r|", max(r["1"], r["2"]) > NOT_GA_LIKE)) if bad]
    return lead + (
        f"At each run's dip, its most negative $e_u$ (steps {', '.join(str(D[b]['step']) for b in BETAS)}), $e_u$ is "
        f"{', '.join(num(D[b]['e_u']) for b in BETAS)} for $\\beta$ = 0.1, 1, 2 (Fig. 4, read off: "
        f"{', '.join(num(NPO_DIP[b][0]) for b in BETAS)}). $|e_u|$ at $\\beta$ = 0.1 is {num(g[0])} times that at "
        f"$\\beta$ = 1, and at $\\beta$ = 1 {num(g[1])} times that at $\\beta$ = 2; the rule asks at least "
        f"{num(need[0])} and {num(need[1])}, half the paper's gaps of {num(paper[0])}× and {num(paper[1])}×: "
        + pick(not any(x < n for x, n in zip(g, need)), "both are met. ", "not both are met. ")
        + _ga_like(v, runs)
        + as_in(live, cid, "Fig. 4", "Larger $\\beta$ gives smaller G-effects and only $\\beta$ = 0.1 is GA-like",
                f"So Fig. 4's pattern is **not shown** here (missed: {', '.join(fails)})."))


def npo_beta(live, runs) -> Reading:
    """Notebook 05, Figs. 4 and 5a: NPO at β = 0.1, 1, 2 (claims npo_weight_decay and npo_beta_magnitudes)."""
    e0 = [float(s.e_u.iloc[0]) for s in _steps(runs).values()]
    start = pick(np.allclose(e0, e0[0], rtol=1e-5),
                 f"At step 0 the three runs have the same $e_u$ ({num(e0[0])}): at $\\theta_o$ NPO's gradient does not "
                 "depend on $\\beta$.", f"At step 0 the three runs' $e_u$ differ ({', '.join(map(num, e0))}).")
    return Reading("**What this run shows, next to Fig. 4 and Fig. 5a**\n\n"
                   f"- **A shared start.** {start}\n{_decay(live, runs)}\n{_magnitudes(live, runs)}")


def npo_pool(runs):
    """(pool, steps): NPO (β = 1)'s ``probes`` at the checkpoints claim npo_weighting pools (nearest steps 5/10/15)."""
    pool, steps = _pooled(runs["npo_b1"].probes, int(runs.steps("npo_b1").step.max()))
    return pool.copy(), steps


def _weighting_checks(v, pool) -> str:
    """The two bullets on the checks of claim npo_weighting, with its numbers and thresholds."""
    near, med_top, med_mid = (float(v[f"median|PG_r| {k}"]) for k in ("top / max|PG_r|", "top", "middle"))
    worst, top_min, mid_min = float(v["min PG_r middle / max|PG_r|"]), float(v["min PG_r top"]), float(
        pool.retain[pool.weight.between(*MID, inclusive="left")].min())
    return (f"- **Large weights at a near-zero retaining PG-effect:** the weight ≥ {num(TOP)} answers have a median "
            f"$|\\mathrm{{PG}}_r|$ of {num(med_top)}, {num(100 * near)} % of the pooled max (the rule asks ≤ "
            f"{num(100 * NEAR_ZERO)} %; the paper's ≈ {FIG5B[0]}/{FIG5B[2]}): "
            + pick(near <= NEAR_ZERO, "near zero, ", "**not** near zero, ")
            + pick(med_top < med_mid, f"and below the 0.4–0.6 bin's {num(med_mid)}.",
                   f"and **not** below the 0.4–0.6 bin's {num(med_mid)}.")
            + "\n- **The paper's failure case, a mid-weight answer that clearly hurts retention:** the most negative "
            f"$\\mathrm{{PG}}_r$ of the 0.4–0.6 bin is {num(mid_min)}, {num(100 * worst)} % of the pooled max "
            f"$|\\mathrm{{PG}}_r|$ (the rule asks ≤ −{num(100 * DAMAGING)} % and below the top bin's {num(top_min)}; "
            f"the paper's ≈ −{FIG5B[1]}/{FIG5B[2]}): "
            + pick(mid_min < top_min and worst <= -DAMAGING, "shown, yet NPO still gives that answer about half "
                   "weight.", "**not shown**: "
                   + pick(mid_min < top_min, "it is below the top bin's, but by too little of the range.",
                          "no mid-weight answer hurts retention more than the top bin's worst.")))


def _weighting_extra(pool, vocab_size: int) -> str:
    """Our reading (no claim): the answers NPO drops, and how the two PG-effects go together."""
    W = pool.weight.to_numpy(dtype=float)
    top, low = pool[W >= TOP], pool[W < 0.2]
    rho = float(pool.forget.corr(pool.retain, method="spearman"))
    drop = "the lowest bin (weight < 0.2) is empty here."
    if len(low) and len(top):
        drop = (pick(low.forget.median() < top.forget.median(), "the lowest bin (weight < 0.2) holds the more "
                     "negative unlearning PG-effects", "the lowest bin (weight < 0.2) does **not** hold the more "
                     "negative unlearning PG-effects")
                + f" (median {num(low.forget.median())} against {num(top.forget.median())} in the top bin). "
                + (pick(low.token_nll.mean() > top.token_nll.mean(), "They are answers unlearning has already "
                        "reached", "They are **not** more unlearned than the top bin's")
                   + f": mean token NLL {num(low.token_nll.mean())} nats against {num(top.token_nll.mean())} "
                   f"($\\ln|V|$ = {num(math.log(vocab_size))} for a uniform guess)." if "token_nll" in pool else ""))
    n1 = int((W > 1).sum())
    return (f"- **Answers that would unlearn well but get little weight** (our reading): {drop}\n"
            f"- **Why the weights cannot do better** (our reading): across the pooled answers the two PG-effects "
            + pick(rho > 0.5, f"go together (Spearman ρ = {num(rho)}); a weight that tracks only the answer's own "
                   "likelihood switches both off together.", f"are only weakly related (Spearman ρ = {num(rho)}), so "
                   "a weighting that separates them could exist; NPO's, which tracks only the likelihood, does not "
                   "look for it.")
            + (f" ({n1} points have a weight just above 1, answers more likely than at $\\theta_o$; they count in "
               "the top bin.)" if n1 else ""))


def npo_weight_bins(live, pool, vocab_size: int) -> Reading:
    """Notebook 05, Fig. 5b and Eq. 5 (claim npo_weighting) on ``pool`` (:func:`npo_pool`, maybe with token_nll)."""
    cid, W = "npo_weighting", pool.weight.to_numpy(dtype=float)
    n_top, n_mid = int((W >= TOP).sum()), int(((W >= MID[0]) & (W < MID[1])).sum())
    text = [f"{head(live, cid, 'Fig. 5b')}: steps {', '.join(map(str, sorted(pool.step.unique())))} pooled, "
            f"{len(pool)} points: {n_top} with weight ≥ {num(TOP)} and {n_mid} in 0.4–0.6.\n"]
    if _untestable(live, cid):
        text.append(f"- {_untestable(live, cid)}")
    else:
        v = values_of(live, cid)
        text += [_weighting_checks(v, pool), "- " + as_in(
            live, cid, "Fig. 5b", "NPO's large weights sit at near-zero retaining PG-effect while a mid-weight answer "
            "clearly hurts retention", "So Fig. 5b's pattern, as the rule reads it, is **not shown** on this run.")]
    return Reading("\n".join(text + [_weighting_extra(pool, vocab_size)]))


def _after_death(s):
    """Forget risk when the mean weight first drops below DEAD, at the end, and the predicted and realised rises."""
    d = _dies(s)
    if d == "never":
        return None
    tail = s[s.step >= d].dropna(subset=["real_du"])
    return dict(step=d, at=float(s.risk_u[s.step == d].iloc[0]), end=at_end(s)["forget_risk"],   # θ_T
                raw=float((-tail.lr * tail.e_u).sum()), opt=float(tail.pred_du.sum()), real=float(tail.real_du.sum()))


def _fate(x) -> str:
    return "never sees its mean weight fall below $10^{-3}$" if x is None else pick(
        _keeps(x), "keeps unlearning after its weights have died", "stops with its weights")


def _after_sentence(name: str, s) -> str:
    x = _after_death(s)
    if x is None:
        return (f"**{name}**: the run {_fate(x)} (its mean weight at the last recorded step is "
                f"{num(s.w_mean_weight.iloc[-1])}).")
    return (f"**{name}**: the mean weight drops below $10^{{-3}}$ at step {x['step']}, when the forget risk is "
            f"{num(x['at'])} nats; it ends at {num(x['end'])}. From that step on, the raw G-effects predict a further "
            f"rise of {num(x['raw'])}, the optimiser-aware ones {num(x['opt'])}, and the realised rise is "
            f"{num(x['real'])}. The run {_fate(x)}.")


def npo_adam_vs_sgd(runs) -> Reading:
    """Notebook 05: does NPO stop itself? Its β = 1 run under AdamW (paper setting) against plain SGD (theory)."""
    A, G = _after_death(runs.steps("npo_b1")), _after_death(runs.steps("npo_b1_sgd"))
    moral = pick(_keeps(A) and G is not None and not _keeps(G), "So NPO's \"automatic early stopping\" holds for its "
                 "*gradient* and a plain-SGD run, not for an AdamW run: Adam's momentum and per-coordinate scaling "
                 "(our reading) keep stepping on a vanished gradient. The raw G-effect (the paper's) describes the "
                 "objective; the optimiser-aware one the run.", "Here the two optimisers do not differ that way.")
    states = {**end_states(runs.key("npo_b1_sgd"), runs.steps("npo_b1_sgd")),
              **end_states(runs.key("npo_b1"), runs.steps("npo_b1"))}
    return Reading(states=states, text=f"- {_after_sentence('Plain SGD', runs.steps('npo_b1_sgd'))}\n"
                   f"- {_after_sentence('AdamW', runs.steps('npo_b1'))}\n\n{moral}")


def _fig(live, cid: str, fig: str, shown: str) -> str:     # one summary line through the claim's verdict
    v = verdict_of(live, cid)
    return f"{fig} (claim `{cid}`: *{v}*): " + as_in(live, cid, fig, shown, pick(
        v == "not reproduced", "**not shown** here.", "the rule cannot decide on this run."))


def npo_summary(live, runs, rel: float, n_per_answer: float) -> Reading:
    """Notebook 05's summary: the identities at θ_o, then one line per figure, each through its claim's verdict."""
    st, A, G = _steps(runs), _after_death(runs.steps("npo_b1")), _after_death(runs.steps("npo_b1_sgd"))
    return Reading(
        "- NPO's gradient is GA with one weight per answer, $w^{\\rm npo}=2\\sigma(\\beta r)$ (Eqs. 3–4). At "
        "$\\theta_o$ the weights are $1$ and the gradient is sequence-summed GA (independent route, "
        + pick(rel == 0, "identical to the last bit", f"relative error {num(rel)}")
        + f"), so $e_u^{{\\rm NPO}}=(N/B)\\,e_u^{{\\rm GA}}$ with $N/B$ = {num(n_per_answer)} here: a factor of answer "
        "length, not of weighting.\n"
        f"- The mean weight falls below $10^{{-3}}$ at steps {', '.join(str(_dies(st[b])) for b in BETAS)} for "
        f"$\\beta$ = 0.1, 1, 2. {_fig(live, 'npo_weight_decay', 'Fig. 5a', 'the weights die early, in β order')}\n"
        f"- {_fig(live, 'npo_beta_magnitudes', 'Fig. 4', 'larger β gives smaller G-effects, β = 0.1 GA-like')}\n"
        f"- {_fig(live, 'npo_weighting', 'Fig. 5b', 'large weights at near-zero retaining PG-effect')}\n"
        f"- With AdamW the run {_fate(A)}; with plain SGD it {_fate(G)}.\n"
        "- This run's verdicts: " + ", ".join(f"`{c}` *{verdict_of(live, c)}*" for c in live.index) + ".")


__all__ = ["npo_beta", "npo_pool", "npo_weight_bins", "npo_adam_vs_sgd", "npo_summary"]
