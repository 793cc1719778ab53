"""The command line, run as a user would (subprocesses, offline)."""
import json
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1", MPLBACKEND="Agg",
           OMP_WAIT_POLICY="PASSIVE")


def _run(*args, timeout=600):
    out = subprocess.run([sys.executable, "-m", "geffect_lite", *args], capture_output=True, text=True, env=ENV,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_objectives_json():
    rows = json.loads(_run("objectives", "--json"))
    names = {r["name"] for r in rows}
    assert {"ga", "gd", "npo", "po", "rmu", "wga", "tnpo", "wtnpo", "idkdpo", "simnpo", "undial", "satimp"} <= names


def test_demo_small(tmp_path):
    out = json.loads(_run("demo", "--steps", "2", "--objectives", "ga", "npo", "--json", "--out", str(tmp_path)))
    assert {s["objective"] for s in out["summary"]} == {"GA", "NPO (β=1)"}
    for f in ("geffects_grid.png", "steps.csv", "groups.csv", "summary.csv"):
        assert (tmp_path / f).exists() and (tmp_path / f).stat().st_size > 0
    import pandas as pd
    steps = pd.read_csv(tmp_path / "steps.csv")
    assert set(steps.objective) == {"GA", "NPO (β=1)"} and (steps[steps.status == "ok"].e_u.iloc[:1] < 0).all()


def test_unknown_model_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "geffect_lite", "demo", "--model", "nope", "--steps", "1"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert out.returncode != 0 and "valid names" in out.stderr
