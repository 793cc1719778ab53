"""paper/verdicts.py on hand-made frames: per-run testability (non-finite, diverged, forget risk above 10·ln|V|),
the replication-aware verdict (each branch, the 80 % edge, not-testable runs left out of n, "not run"), and the
bootstrap intervals against percentiles computed here independently (a loop over resamples, and exact cases)."""
import math

import numpy as np
import pandas as pd
import pytest

from geffect_lite.paper import verdicts as V


def frame(spec, claim="c"):
    """spec: {lr_scale: [per-replication verdicts]} → tidy rows with a number x = replication index."""
    return pd.DataFrame([dict(claim=claim, replication=i, lr_scale=r, verdict=v, x=float(i))
                         for r, vs in spec.items() for i, v in enumerate(vs)])


R, N, T = "reproduced", "not reproduced", "not testable"


# --- one run ------------------------------------------------------------------------------------------------------
def steps(**over):
    d = dict(step=[0, 1, 2], e_u=[-1.0, -2.0, -1.0], e_r=[0.1, -0.2, 0.0], risk_u=[0.1, 2.0, 5.0],
             risk_r=[0.1, 0.2, 0.3], status=["ok"] * 3)
    d.update(over)
    return pd.DataFrame(d)


def test_testable_flags_each_kind_of_divergence():
    assert V.testable(steps(), 1024) == (True, "")
    assert V.testable(steps(e_r=[0.1, np.nan, 0.0]), 1024) == (False, "e_r is not finite at step 1")
    assert V.testable(steps(risk_u=[0.1, np.inf, 5.0]), 1024)[1] == "risk_u is not finite at step 1"
    assert V.testable(steps(status=["ok", "ok", "non-finite"]), 1024)[1] == "the run diverged (non-finite at step 2)"
    bound = 10 * math.log(1024)                                            # 69.3 nats/token
    assert V.testable(steps(risk_u=[0.1, 2.0, bound - 0.01]), 1024)[0]
    ok, why = V.testable(steps(risk_u=[0.1, 2.0, bound + 0.01]), 1024)
    assert not ok and "10·ln|V| per token = 69.3" in why
    assert V.testable(steps(risk_u=[0.1, 2.0, bound + 0.01]), 32000)[0]    # a larger vocabulary, a higher bound
    # seq_sum risks are per sequence: the same per-token bound, times the answer tokens per sequence
    assert V.testable(steps(risk_u=[0.1, 2.0, 10 * bound]), 1024, tokens_per_unit=14.8)[0]
    ok, why = V.testable(steps(risk_u=[0.1, 2.0, 15 * bound]), 1024, tokens_per_unit=14.8)
    assert not ok and "nats/sequence (14.8 tokens)" in why
    with pytest.raises(ValueError, match="vocab must be an int ≥ 2"):
        V.testable(steps(), 0)


def test_not_testable_result_and_dip():
    r = V.not_testable("why", {"a": 1.5})
    assert r["verdict"] == "not testable" and r["reason"] == "not testable: why" and r["numbers"] == "a=1.5"
    d = V.at_dip(steps())
    assert (d["step"], d["e_u"], d["e_r"], d["ratio"]) == (1, -2.0, -0.2, pytest.approx(0.1))
    assert V.half_gap(16) == 4.0
    with pytest.raises(ValueError, match="gap factor must be > 0"):
        V.half_gap(0)


# --- over replications --------------------------------------------------------------------------------------------
def test_each_branch():
    assert V.replicated(frame({0.5: [R], 1.0: [R, R, R], 2.0: [R]}))[0] == "reproduced"
    assert V.replicated(frame({0.5: [N], 1.0: [N, N, N], 2.0: [N]}))[0] == "not reproduced"
    assert V.replicated(frame({0.5: [R], 1.0: [R, N, R], 2.0: [R]}))[0] == "fragile"
    assert V.replicated(frame({0.5: [N], 1.0: [R, R, R], 2.0: [R]}))[0] == "fragile"        # one rate misses
    assert V.replicated(frame({0.5: ["not applicable"], 1.0: ["not applicable"] * 3}))[0] == "not applicable"
    assert V.replicated(frame({0.5: ["not run"], 1.0: ["not run"]})) == ("not run", "no runs")


def test_eighty_percent_edge():
    assert V.replicated(frame({0.5: [R] * 4 + [N], 1.0: [R] * 5, 2.0: [R] * 5}))[0] == "reproduced"   # 4/5 = 80 %
    assert V.replicated(frame({0.5: [R] * 3 + [N], 1.0: [R] * 5, 2.0: [R] * 5}))[0] == "fragile"      # 3/4 = 75 %
    assert V.replicated(frame({0.5: [R] * 7 + [N] * 2, 1.0: [R], 2.0: [R]}))[0] == "fragile"          # 7/9 < 80 %
    assert V.replicated(frame({0.5: [R] * 8 + [N] * 2, 1.0: [R], 2.0: [R]}))[0] == "reproduced"       # 8/10


def test_not_testable_runs_leave_n():
    v, s = V.replicated(frame({0.5: [R, T], 1.0: [R, R, T], 2.0: [R]}))
    assert v == "reproduced" and s == "×0.5: 1 of 1 (1 not testable); ×1: 2 of 2 (1 not testable); ×2: 1 of 1"
    v, s = V.replicated(frame({0.5: [T, T], 1.0: [R, R, R], 2.0: [R]}))
    assert v == "not testable" and s.startswith("no testable run at ×0.5")
    v, s = V.replicated(frame({1.0: [R, R, R], 2.0: [R]}))                  # ×0.5 never ran
    assert v == "not testable" and "×0.5: 0 of 0" in s
    pr = V.per_rate(frame({0.5: [R, T, N], 1.0: [N], 2.0: [T]}))
    assert pr[["lr_scale", "k", "n", "runs"]].values.tolist() == [[0.5, 1, 2, 3], [1.0, 0, 1, 1], [2.0, 0, 0, 1]]


def test_verdict_table_says_not_run_for_missing_claims_and_checks_input():
    df = pd.concat([frame({0.5: [R], 1.0: [R], 2.0: [R]}, "a"), frame({0.5: [N], 1.0: [N], 2.0: [N]}, "b")])
    t = V.verdict_table(df, claims=["a", "b", "table1_kl_helps"])
    assert t.verdict.tolist() == ["reproduced", "not reproduced", "not run"]
    with pytest.raises(ValueError, match="unknown per-run verdict"):
        V.replicated(frame({1.0: ["fragile"]}))
    with pytest.raises(ValueError, match="lacks column 'replication'"):
        V.per_rate(df.drop(columns="replication"))
    with pytest.raises(ValueError, match="judges one claim"):
        V.replicated(df)


def test_tidy_from_scoreboard_rows():
    long = pd.DataFrame([dict(claim="c", seed=0, lr_scale=1.0, verdict=R, values={"ρ": 0.5, "label": "x", "ok": True,
                                                                                   "k": 3})])
    t = V.tidy(long)
    assert t.columns.tolist() == ["claim", "replication", "lr_scale", "verdict", "ρ", "k"]
    assert t.loc[0, "ρ"] == 0.5 and t.loc[0, "k"] == 3.0


def test_bootstrap_against_independent_percentiles():
    x = np.array([0.2, 1.7, 0.9, 3.1, 2.2])
    mean, lo, hi = V.bootstrap_interval(x, n_boot=500, level=0.9, seed=7)
    rng = np.random.default_rng(7)                           # the documented draws, resample by resample
    draws = rng.integers(0, len(x), size=(500, len(x)))
    means = [sum(x[j] for j in row) / len(x) for row in draws]
    assert mean == pytest.approx(x.mean())
    assert (lo, hi) == pytest.approx(tuple(np.percentile(means, [5, 95])))
    assert lo < x.mean() < hi
    assert V.bootstrap_interval([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)        # no spread, no interval
    # two values: the resampled mean is 0, ½ or 1 with probabilities ¼, ½, ¼: the 90 % interval is [0, 1]
    assert V.bootstrap_interval([0.0, 1.0], n_boot=4000)[1:] == (0.0, 1.0)
    assert all(math.isnan(v) for v in V.bootstrap_interval([np.nan]))
    with pytest.raises(ValueError, match="level must be in"):
        V.bootstrap_interval(x, level=90)


def test_intervals_over_testable_replications_only():
    df = frame({0.5: [R, R], 1.0: [R, N, T, R], 2.0: [R]})
    iv = V.intervals(df, n_boot=300, seed=1).set_index("lr_scale")
    assert iv.loc[1.0, "n"] == 3 and iv.loc[1.0, "mean"] == pytest.approx((0 + 1 + 3) / 3)   # replication 2 left out
    _, lo, hi = V.bootstrap_interval([0.0, 1.0, 3.0], n_boot=300, seed=1)
    assert (iv.loc[1.0, "lo"], iv.loc[1.0, "hi"]) == (lo, hi)
    assert iv.loc[2.0, ["mean", "lo", "hi"]].tolist() == [0.0, 0.0, 0.0]
