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
    monkeypatch.setenv("GEFFECT_CACHE", str(tmp_path))
    df = F.points("tiny", replication=1, scales=(0.5,), objectives=("wga",), fast=True, progress=False)
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
