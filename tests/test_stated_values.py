"""Two notebooks never state different values for one quantity of one run (geffect_lite.tooling.stated_values)."""
import json
from pathlib import Path

import pytest

from geffect_lite.lessons import Reading, end_states, run_key
from geffect_lite.tooling import stated_values as sv

ROOT = Path(__file__).resolve().parents[1]
SERIES = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _nb(tmp_path, name, outputs):
    """A notebook with one code cell whose markdown outputs are ``outputs`` ([(text, states)])."""
    outs = []
    for text, states in outputs:
        o = {"output_type": "display_data", "data": {"text/markdown": text, "text/plain": repr(text)}, "metadata": {}}
        if states:
            o["metadata"] = {"geffect_lite": {"states": states}}
        outs.append(o)
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": outs, "execution_count": 1}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / name
    p.write_text(json.dumps(nb))
    return p


def test_the_series_states_one_value_per_quantity():
    assert len(sv.states(SERIES)) >= 20, "the readings no longer record what they state"
    assert sv.conflicts(SERIES) == []


def test_every_ends_at_number_in_the_series_is_a_stated_quantity():
    assert sv.unbacked(SERIES) == []


def test_a_conflict_between_two_notebooks_is_found(tmp_path):
    k = run_key("ga") + ": forget risk at θ_T"
    a = _nb(tmp_path, "a.ipynb", [("GA's forget risk ends at 35.3.", {k: 35.3})])
    b = _nb(tmp_path, "b.ipynb", [("GA's forget risk ends at 34.6.", {k: 34.6})])
    assert sv.conflicts([a]) == []
    found = sv.conflicts([a, b])
    assert len(found) == 1 and "35.3 (a.ipynb [0])" in found[0] and "34.6 (b.ipynb [0])" in found[0]


def test_an_ends_at_number_without_its_state_is_found(tmp_path):
    k = run_key("ga") + ": forget risk at θ_T"
    ok = _nb(tmp_path, "ok.ipynb", [("its forget risk ends at 35.3 nats.", {k: 35.3}),
                                    ("lm's e_r ends at -304 at the last recorded step.", {})])
    bad = _nb(tmp_path, "bad.ipynb", [("its forget risk ends at 34.6 nats.", {k: 35.3}),
                                      ("GD ends with a forget risk of 1.97 × 10^-3 nats.", {})])
    assert sv.unbacked([ok]) == []
    found = sv.unbacked([bad])
    assert len(found) == 2 and "34.6" in found[0] and "1.97 × 10^-3" in found[1]
    assert sv.main([str(ok)]) == 0 and sv.main([str(bad)]) == 1


def test_a_reading_carries_its_states_in_the_output_metadata():
    from IPython.core.formatters import DisplayFormatter
    data, meta = DisplayFormatter().format(Reading("ends at 2", {"k: x": 2.0}))
    assert data["text/markdown"] == "ends at 2"
    assert meta["text/markdown"]["geffect_lite"]["states"] == {"k: x": 2.0}
    assert DisplayFormatter().format(Reading("plain"))[1] == {}


def test_end_states_are_theta_T_and_run_keys_name_the_setting():
    import pandas as pd
    s = pd.DataFrame(dict(step=[0, 1], status="ok", risk_u=[1.0, 2.0], risk_r=[0.5, 0.6], real_du=[1.0, 0.5],
                          real_dr=[0.1, -0.1]))
    st = end_states("k", s)
    assert st == {"k: forget risk at θ_T": 2.5, "k: retain risk at θ_T": 0.5}
    assert run_key("ga") != run_key("ga", setting="official") != run_key("ga", replication=1)
    with pytest.raises(ValueError, match="was not recorded"):
        end_states("k", s.assign(real_du=float("nan")))
