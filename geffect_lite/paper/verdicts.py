"""Verdicts that can be trusted: whether one run can test a rule at all, and one verdict per claim over replications
and learning rates, with bootstrap intervals — for the claims of Wang et al. 2025 (arXiv 2502.19301, Figs. 3–8,
Table 1) as ``rules_*.py`` state them.

**Per run** (called by the rules). A run whose G-effects or risks are non-finite, whose trajectory recorded a
non-finite step, or whose forget risk exceeds ``10·ln|V|`` nats per token (ten times a uniform guess over the
vocabulary; the paper's GA saturates near 90 nats for ln 32,000 ≈ 10.4, i.e. ≈ 8.7·ln|V|, Fig. 3a's appendix
panel) has diverged: for a rule reading it, the verdict is **"not testable"** — never evidence for or against.
:func:`testable` is the check on a step frame, :func:`guard` applies it to the runs a rule reads.

Two shared quantities: :func:`at_dip` (e_u, e_r and e_r/e_u at the step of the most negative e_u — the value the
paper's figures show at each objective's dip) and :func:`half_gap` (the threshold for "A exceeds B by the paper's
factor F": at least √F, half the paper's gap in orders of magnitude; docs/rules.md).

**Over replications** (pure functions on a tidy frame with columns ``claim, replication, lr_scale, verdict`` and
the numbers): per learning-rate scale, k of n where n counts the *testable* runs only. A claim is

* **reproduced** iff it holds in ≥ 80 % of the testable replications at EACH rate of :data:`RATES`;
* **not reproduced** iff it holds in none of the testable runs;
* **fragile** otherwise;
* **not testable** if some rate has no testable run (a rate that was not run counts as none);
* **not applicable** if every run says so (e.g. a tied lm_head), **not run** if there are no runs at all.

:func:`intervals` gives a seeded bootstrap 90 % interval (2000 resamples of the replications) of the mean of every
number a verdict compares, per claim and rate.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from ..run_cache import DIVERGED_FACTOR
from .claims import fmt

FORGET_RISK_BOUND = DIVERGED_FACTOR  # × ln|V| per answer token: above it a run has diverged (the run cache's bound)
RATES = (0.5, 1.0, 2.0)             # the learning-rate scales every claim must hold at
SHARE = 0.8                         # "holds" at a rate: in ≥ 80 % of its testable replications
N_BOOT, LEVEL, SEED = 2000, 0.90, 0
FINAL = ("reproduced", "not reproduced", "fragile", "not testable", "not applicable", "not run")
TESTED = ("reproduced", "not reproduced")          # the per-run verdicts that count as testable runs


# --- one run ------------------------------------------------------------------------------------------------------
def testable(steps: pd.DataFrame, vocab: int, tokens_per_unit: float = 1.0) -> tuple:
    """(ok, why): can a rule read this step frame? Not when a step is marked non-finite (``status``), when e_u, e_r,
    risk_u or risk_r is NaN/inf at a step, or when the forget risk exceeds FORGET_RISK_BOUND·ln|V| per answer token.
    ``tokens_per_unit``: answer tokens per unit of the risk (1 for token_mean; the mean answer length for seq_sum,
    whose risks are per sequence), so that the bound is the same per token in either unit."""
    if not isinstance(vocab, (int, np.integer)) or vocab < 2:
        raise ValueError(f"vocab must be an int ≥ 2 (the vocabulary size), got {vocab!r}")
    if "status" in steps and (steps.status != "ok").any():
        t = steps.step[steps.status != "ok"].iloc[0] if "step" in steps else "?"
        return False, f"the run diverged (non-finite at step {t})"
    for col in ("e_u", "e_r", "risk_u", "risk_r"):
        if col in steps:
            x = steps[col].to_numpy(dtype=float)
            if not np.isfinite(x).all():
                t = steps.step.to_numpy()[~np.isfinite(x)][0] if "step" in steps else "?"
                return False, f"{col} is not finite at step {t}"
    bound = FORGET_RISK_BOUND * math.log(vocab) * float(tokens_per_unit)
    if "risk_u" in steps and len(steps) and float(steps.risk_u.max()) > bound:
        unit = "nats/token" if tokens_per_unit == 1 else f"nats/sequence ({float(tokens_per_unit):.3g} tokens)"
        return False, (f"the forget risk reaches {float(steps.risk_u.max()):.3g} {unit} > "
                       f"{FORGET_RISK_BOUND:g}·ln|V| per token = {bound:.3g} (diverged)")
    return True, ""


def not_testable(why: str, numbers: Optional[dict] = None) -> dict:
    """A rule's result when its runs cannot decide it (same keys as ``claims.result``)."""
    nums = "; ".join(f"{k}={fmt(v)}" for k, v in (numbers or {}).items()) or "–"
    return dict(verdict="not testable", numbers=nums, reason=f"not testable: {why}", values=dict(numbers or {}))


def guard(runs, keys: Iterable[str]) -> Optional[dict]:
    """None when every run in ``keys`` is testable (:func:`testable` on all its steps), else the "not testable"
    result naming the first run that is not."""
    vocab = int(runs.model.config.vocab_size)
    for key in keys:
        raw = runs[key].steps
        unit = runs.tokens_per_unit(key)
        if "status" in raw and (raw.status != "ok").any():
            ok, why = testable(raw[raw.status != "ok"], vocab, unit)
        else:
            ok, why = testable(runs.steps(key), vocab, unit)
        if not ok:
            return not_testable(f"{key}: {why}")
    return None


def at_dip(steps: pd.DataFrame) -> dict:
    """At the step of the most negative e_u: step, row index, e_u, e_r and e_r/e_u (> 0 when both are negative)."""
    i = int(steps.e_u.to_numpy(dtype=float).argmin())
    eu, er = float(steps.e_u.iloc[i]), float(steps.e_r.iloc[i])
    return dict(step=int(steps.step.iloc[i]), i=i, e_u=eu, e_r=er, ratio=er / eu if eu != 0 else math.inf)


def half_gap(factor: float) -> float:
    """√factor: "A exceeds B by the paper's factor F" is tested as A/B ≥ √F (half the gap in orders of magnitude)."""
    if not factor > 0:
        raise ValueError(f"a gap factor must be > 0, got {factor!r}")
    return math.sqrt(factor)


# --- over replications --------------------------------------------------------------------------------------------
def tidy(long: pd.DataFrame) -> pd.DataFrame:
    """A scoreboard's stacked runs (claim, seed, lr_scale, verdict, values) → the tidy frame of this module: claim,
    replication (the seed), lr_scale, verdict and one column per numeric value a rule reported."""
    for col in ("claim", "seed", "lr_scale", "verdict"):
        if col not in long:
            raise ValueError(f"the scoreboard frame lacks column {col!r}; it has {', '.join(map(str, long.columns))}")
    vals = long["values"] if "values" in long else pd.Series([{}] * len(long), index=long.index)
    nums = pd.DataFrame([{k: float(v) for k, v in (d or {}).items()
                          if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}
                         for d in vals], index=long.index)
    base = long[["claim", "seed", "lr_scale", "verdict"]].rename(columns={"seed": "replication"})
    return pd.concat([base, nums], axis=1)


def _check(df: pd.DataFrame) -> None:
    for col in ("claim", "replication", "lr_scale", "verdict"):
        if col not in df:
            raise ValueError(f"the frame lacks column {col!r}; it has {', '.join(map(str, df.columns))}")
    bad = sorted(set(df.verdict) - {"reproduced", "not reproduced", "not applicable", "not testable", "not run"})
    if bad:
        raise ValueError(f"unknown per-run verdict(s) {bad}; valid: reproduced, not reproduced, not applicable, "
                         f"not testable, not run")


def per_rate(df: pd.DataFrame, rates: Sequence[float] = RATES) -> pd.DataFrame:
    """One row per claim and rate: k (runs where the rule holds), n (testable runs), runs (all runs)."""
    _check(df)
    rows = []
    for cid in dict.fromkeys(df.claim):
        g = df[df.claim == cid]
        for r in rates:
            at = g[np.isclose(g.lr_scale.astype(float), r)]
            rows.append(dict(claim=cid, lr_scale=float(r), k=int((at.verdict == "reproduced").sum()),
                             n=int(at.verdict.isin(TESTED).sum()), runs=int((at.verdict != "not run").sum())))
    return pd.DataFrame(rows, columns=["claim", "lr_scale", "k", "n", "runs"])


def replicated(df: pd.DataFrame, rates: Sequence[float] = RATES, share: float = SHARE) -> tuple:
    """(verdict, summary) of ONE claim's runs (see the module docstring); summary reads "×0.5: 1 of 1; ×1: 3 of 3…"."""
    _check(df)
    if df.claim.nunique() > 1:
        raise ValueError(f"replicated() judges one claim; got {sorted(df.claim.unique())}")
    ran = df[df.verdict != "not run"]
    if ran.empty:
        return "not run", "no runs"
    if (ran.verdict == "not applicable").all():
        return "not applicable", "not applicable in every run"
    pr = per_rate(ran, rates)
    summary = "; ".join(f"×{r.lr_scale:g}: {r.k} of {r.n}" + (f" ({r.runs - r.n} not testable)" if r.runs > r.n
                                                                 else "") for r in pr.itertuples())
    if (pr.n == 0).any():
        missing = ", ".join(f"×{r:g}" for r in pr.lr_scale[pr.n == 0])
        return "not testable", f"no testable run at {missing}; {summary}"
    if (pr.k >= share * pr.n - 1e-12).all():
        return "reproduced", summary
    if pr.k.sum() == 0:
        return "not reproduced", summary
    return "fragile", summary


def verdict_table(df: pd.DataFrame, claims: Optional[Sequence[str]] = None, rates: Sequence[float] = RATES,
                  share: float = SHARE) -> pd.DataFrame:
    """One row per claim (``claims`` in order, default those in ``df``): claim, verdict, summary. A claim with no
    runs in ``df`` (e.g. a Table 1 never committed for the tier) reads "not run"."""
    _check(df)
    claims = list(claims) if claims is not None else list(dict.fromkeys(df.claim))
    rows = []
    for cid in claims:
        v, s = replicated(df[df.claim == cid], rates, share) if (df.claim == cid).any() else ("not run", "no runs")
        rows.append(dict(claim=cid, verdict=v, summary=s))
    return pd.DataFrame(rows, columns=["claim", "verdict", "summary"])


def bootstrap_interval(x, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED) -> tuple:
    """(mean, lo, hi): the mean of ``x`` and the central ``level`` percentile interval of the means of ``n_boot``
    resamples with replacement. The resamples are ``default_rng(seed).integers(0, n, size=(n_boot, n))`` (one row
    per resample), the interval ``np.percentile`` at (1 − level)/2 and (1 + level)/2 (linear interpolation)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be ≥ 1, got {n_boot!r}")
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    means = x[idx].mean(axis=1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(x.mean()), float(lo), float(hi)


def intervals(df: pd.DataFrame, rates: Sequence[float] = RATES, n_boot: int = N_BOOT, level: float = LEVEL,
              seed: int = SEED) -> pd.DataFrame:
    """Per claim, rate and number: n (testable replications with a finite value), mean, lo, hi (bootstrap
    :func:`bootstrap_interval` over the testable replications)."""
    _check(df)
    numbers = [c for c in df.columns if c not in ("claim", "replication", "lr_scale", "verdict")
               and pd.api.types.is_numeric_dtype(df[c])]
    rows = []
    for cid in dict.fromkeys(df.claim):
        g = df[(df.claim == cid) & df.verdict.isin(TESTED)]
        for r in rates:
            at = g[np.isclose(g.lr_scale.astype(float), r)]
            for q in numbers:
                x = at[q].to_numpy(dtype=float)
                if not np.isfinite(x).any():
                    continue
                m, lo, hi = bootstrap_interval(x, n_boot, level, seed)
                rows.append(dict(claim=cid, lr_scale=float(r), quantity=q, n=int(np.isfinite(x).sum()),
                                 mean=m, lo=lo, hi=hi))
    return pd.DataFrame(rows, columns=["claim", "lr_scale", "quantity", "n", "mean", "lo", "hi"])


__all__ = ["testable", "not_testable", "guard", "at_dip", "half_gap", "tidy", "per_rate", "replicated",
           "verdict_table", "bootstrap_interval", "intervals", "FORGET_RISK_BOUND", "RATES", "SHARE", "N_BOOT",
           "LEVEL", "SEED", "FINAL", "TESTED"]
