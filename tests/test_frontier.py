"""Table 1 as a frontier (``paper/frontier.py``): the rule on hand-made frontiers whose answer is known, and one small
real sweep in fast mode whose rows are checked against a direct evaluation."""
import numpy as np
import pandas as pd
import pytest

from geffect_lite.paper import frontier as F


def _df(rows, u0=0.8):
    """rows: (replication, objective, utility, quality); the original model added per replication."""
    out = [dict(replication=r, objective="original", lr_scale=0.0, model_utility=u0, forget_quality=1e-5)
           for r in sorted({r for r, *_ in rows})]
    out += [dict(replication=r, objective=o, lr_scale=1.0, model_utility=u, forget_quality=q) for r, o, u, q in rows]
    return pd.DataFrame(out)


def test_best_quality_keeps_the_utility_level():
    d = _df([(0, "ga", 0.79, 0.01), (0, "ga", 0.5, 0.3), (0, "ga", 0.1, 0.9)])
    assert F.best_quality(d, "ga", 0.9) == 0.01          # 0.79 ≥ 0.72 only
    assert F.best_quality(d, "ga", 0.5) == 0.3           # 0.5 ≥ 0.4
    assert np.isnan(F.best_quality(d, "wga", 0.5))


def test_compare_better_worse_mixed_and_skipped_cells():
    better = _df([(r, o, u, q) for r in (0, 1) for o, u, q in
                  (("wga", 0.78, 0.5), ("wga", 0.6, 0.8), ("ga", 0.78, 0.1), ("ga", 0.6, 0.2))])
    c = F.compare(better, "wga", "ga")
    assert (c["wins"], c["losses"], c["ties"], c["cells"], c["verdict"]) == (6, 0, 0, 6, "better")
    assert F.compare(better, "ga", "wga")["verdict"] == "worse"
    mixed = _df([(0, "wga", 0.78, 0.5), (0, "ga", 0.78, 0.1), (1, "wga", 0.78, 0.1), (1, "ga", 0.78, 0.5)])
    assert F.compare(mixed, "wga", "ga")["verdict"] == "mixed"
    # only the new objective keeps 0.9 × utility: it wins those cells; collapsed runs reach no level: skipped
    only = _df([(0, "wga", 0.75, 0.01), (0, "ga", 0.0, 0.9)])
    c = F.compare(only, "wga", "ga")
    assert (c["wins"], c["cells"], c["verdict"]) == (3, 3, "better")
    none = _df([(0, "wga", 0.0, 0.5), (0, "ga", 0.0, 0.5)])
    assert F.compare(none, "wga", "ga")["verdict"] == "not comparable"
    ties = _df([(0, "wga", 0.78, 0.2), (0, "ga", 0.78, 0.2)])
    assert F.compare(ties, "wga", "ga")["ties"] == 3 and F.compare(ties, "wga", "ga")["verdict"] == "mixed"


def test_bad_objective_is_named():
    with pytest.raises(ValueError, match="valid objectives: ga, wga"):
        F.points("tiny", objectives=("ga", "po"), fast=True)


def test_a_small_sweep_matches_a_direct_evaluation(tmp_path, monkeypatch):
    from geffect_lite import results as R
    from geffect_lite.tooling import results as tres
    monkeypatch.setenv("GEFFECT_CACHE", str(tmp_path))
    real = R.path
    where = lambda name: tmp_path / f"{name}.json" if name.startswith("frontier") else real(name)
    monkeypatch.setattr(R, "path", where)
    monkeypatch.setattr(tres, "path", where)
    df = F.points("tiny", replication=1, scales=(0.5,), objectives=("wga",), fast=True, progress=False,
                  keep_partial=True)
    assert list(df.objective) == ["original", "wga"] and (df.replication == 1).all()
    import geffect_lite as gl
    from geffect_lite.paper import table
    S = gl.protocol.setting("table1", "tiny", fast=True, seed=1, replication=1)
    t = table.table1("tiny", fast=True, objectives=(), kl=False, cache=False, progress=False,
                     changes=dict(replication=1, seed=1))
    orig = t.set_index("objective").loc["original"]
    assert df.iloc[0].model_utility == pytest.approx(orig.model_utility, rel=1e-9)
    assert df.iloc[0].forget_quality == pytest.approx(orig.forget_quality, rel=1e-9)
    assert df.iloc[1].lr == pytest.approx(S.lr * 0.5) and not df.iloc[1].diverged
    assert 0 <= df.iloc[1].model_utility <= 1 and 0 <= df.iloc[1].forget_quality <= 1
    again = F.points("tiny", replication=1, scales=(0.5,), objectives=("wga",), fast=True, progress=False)
    pd.testing.assert_frame_equal(df, again)                       # from the disk cache
    monkeypatch.setenv("GEFFECT_CACHE", str(tmp_path / "another-machine"))     # no disk cache there …
    monkeypatch.setattr(table, "unlearn", lambda *a: pytest.fail("a committed point was recomputed"))
    carried = F.points("tiny", replication=1, scales=(0.5,), objectives=("wga",), fast=True, progress=False)
    pd.testing.assert_frame_equal(df, carried, check_dtype=False)  # … but the committed partial file


def _m(rows):
    """rows: (replication, objective, reached, utility) → a matched frame (official set)."""
    return pd.DataFrame([dict(replication=r, objective=o, reached=ok, model_utility=u, hparams="official")
                         for r, o, ok, u in rows])


def test_matched_rule_wins_losses_and_skipped_cells():
    m = _m([(0, "wga", True, 0.6), (0, "ga", True, 0.4), (1, "wga", True, 0.5), (1, "ga", True, 0.1),
            (2, "wga", False, float("nan")), (2, "ga", True, 0.3)])
    c = F.compare_matched(m, "wga", "ga")
    assert (c["wins"], c["losses"], c["ties"], c["cells"], c["verdict"]) == (2, 0, 0, 2, "better")
    assert F.compare_matched(m, "ga", "wga")["verdict"] == "worse"
    mixed = _m([(0, "wga", True, 0.6), (0, "ga", True, 0.4), (1, "wga", True, 0.1), (1, "ga", True, 0.5)])
    assert F.compare_matched(mixed, "wga", "ga")["verdict"] == "mixed"
    none = _m([(0, "wga", False, float("nan")), (0, "ga", True, 0.4)])
    assert F.compare_matched(none, "wga", "ga")["verdict"] == "not comparable"
    assert set(F.matched_claims(m).new) == {"wga"}            # only the pairs whose objectives are in the frame


def test_hyper_parameter_sets_are_named_and_ga_is_shared():
    with pytest.raises(ValueError, match="valid: official, figures"):
        F.points("tiny", hparams="paper", fast=True)
    assert F.FIGURES["ga"] == F.OFFICIAL["ga"] == {} and F.FIGURES["wga"] != F.OFFICIAL["wga"]
    assert len(F.SCALES) >= 5 and F.SCALES == tuple(sorted(F.SCALES))
    d = pd.DataFrame([dict(replication=0, objective="original", model_utility=0.8, forget_quality=1e-5),
                      dict(replication=0, objective="wga", model_utility=0.7, forget_quality=0.1),
                      dict(replication=0, objective="ga", model_utility=0.7, forget_quality=0.01)])
    both = pd.concat([d.assign(hparams="official"), d.assign(hparams="figures")], ignore_index=True)
    c = F.claims(both)
    assert list(c.hparams) == ["official", "figures"] and (c.verdict == "better").all()


def test_matched_stops_at_the_twins_forget_risk(tmp_path, monkeypatch):
    monkeypatch.setenv("GEFFECT_CACHE", str(tmp_path))
    import torch
    import geffect_lite as gl
    from geffect_lite import nll
    from geffect_lite.paper import table
    m = F.matched("tiny", replication=0, objectives=("ga",), fast=True, progress=False)
    r = m.iloc[0]
    S = gl.protocol.setting("table1", "tiny", fast=True, seed=0, replication=0)
    I = table.inputs("tiny", S, 2)
    with torch.no_grad():
        assert r.target == pytest.approx(float(nll.risk(I.twin, I.forget, S.risk)), rel=1e-9)
    if r.reached:      # the first θ_t at or above the twin's forget risk, evaluated there
        assert r.step >= 1 and r.forget_risk >= r.target
        assert 0 <= r.model_utility <= 1 and 0 <= r.forget_quality <= 1
        _, tr, _ = table.unlearn(I, gl.get_objective("ga"), None, S)
        s = tr.steps.set_index("step").risk_u
        assert s[r.step] == pytest.approx(r.forget_risk, rel=1e-6) and (s[s.index < r.step] < r.target).all()
    else:
        assert r.step == -1 and np.isnan(r.model_utility)


@pytest.mark.parametrize("model", ["tiny", "deep"])
def test_committed_verdicts_follow_from_the_committed_points(model):
    """A committed frontier's comparisons (what the README and notebook 13 show) are the rule applied to its own
    committed points: recomputed here from the rows, for both hyper-parameter sets and the matched level."""
    from geffect_lite import results
    d = results.load(f"frontier-{model}")
    if d is None:
        pytest.skip(f"no frontier committed for {model}")
    again = F.claims(pd.DataFrame(d["rows"])).to_dict("records")
    assert again == d["claims"]
    if d.get("matched"):
        assert F.matched_claims(pd.DataFrame(d["matched"])).to_dict("records") == d["matched_claims"]
