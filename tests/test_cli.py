"""The command line, run as a user would (subprocesses, offline): real jobs on small inputs, and a battery of bad
input — every subcommand must exit with status 2 and one line naming the bad value, never a traceback."""
import json
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1", MPLBACKEND="Agg",
           OMP_WAIT_POLICY="PASSIVE")


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "geffect_lite", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def _ok(*args, **kw):
    out = _cli(*args, **kw)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_objectives_json():
    rows = json.loads(_ok("objectives", "--json"))
    names = {r["name"] for r in rows}
    assert {"ga", "gd", "npo", "po", "rmu", "wga", "tnpo", "wtnpo", "idkdpo", "simnpo", "undial", "satimp"} <= names
    assert all(r["notebook"] for r in rows if r["kind"] == "objective")


def test_demo_small(tmp_path):
    out = json.loads(_ok("demo", "--steps", "2", "--objectives", "ga", "npo", "--json", "--out", str(tmp_path)))
    assert {s["objective"] for s in out["summary"]} == {"GA", "NPO (β=1)"}
    assert "paper:" in out["setting"]
    for f in ("geffects_grid.png", "steps.csv", "groups.csv", "summary.csv"):
        assert (tmp_path / f).exists() and (tmp_path / f).stat().st_size > 0


def test_protocol_lists_the_settings():
    """Each setting's fields as the protocol states them: optimiser, batch, schedule, steps, and a learning rate
    that is the calibration's committed choice (read here from the JSON file itself)."""
    import math
    from geffect_lite import protocol
    from geffect_lite.results import path
    rows = {r["setting"]: r for r in json.loads(_ok("protocol", "--models", "tiny", "--json"))}
    assert set(rows) == {"paper", "theory", "table1"}
    chosen = {c["setting"]: c["lr"] for c in json.loads(path("calibration").read_text())["chosen"]
              if c["model"] == "tiny" and not c["fast"]}
    per_epoch = math.ceil(50 / protocol.TABLE1["batch"])             # forget05: 50 rows
    want = {"paper": dict(optimizer="adamw", batch=None, warmup=0, decay=False, steps=protocol.TIERS["tiny"]["steps"]),
            "theory": dict(optimizer="sgd", batch=None, warmup=0, decay=False, steps=protocol.TIERS["tiny"]["steps"]),
            "table1": dict(optimizer="adamw", batch=protocol.TABLE1["batch"], warmup=protocol.TABLE1["warmup_epochs"] * per_epoch,
                           decay=True, steps=protocol.TABLE1["epochs"] * per_epoch)}
    for name, fields in want.items():
        r = rows[name]
        assert {k: r[k] for k in fields} == fields, (name, r)
        assert r["lr"] == chosen[name] and "calibration.json" in r["lr_source"], (name, r)
        assert f"{r['optimizer']} lr {r['lr']:g}" in r["description"] and f"{r['steps']} steps" in r["description"]


def test_demo_out_that_cannot_be_written_fails_at_once(tmp_path):
    """--out is checked with the other arguments: before any model, run or torch is loaded."""
    from geffect_lite.cli import parser
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as e:
            parser().parse_args(["demo", "--out", str(bad)])
        assert e.value.code == 2
        out = _cli("demo", "--out", str(bad), timeout=120)
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert out.returncode == 2 and len(lines) == 1 and str(bad) in lines[0], out.stderr
        assert "Traceback" not in out.stderr and "expected a folder" in lines[0]
    assert parser().parse_args(["demo", "--out", str(tmp_path / "new" / "deeper")]).out.endswith("deeper")
    assert not (tmp_path / "new").exists()                    # checking creates nothing


def test_claim_ids_are_the_registered_rules():
    """The CLI checks --claims against a list it can read before importing torch; it must be the scoreboard's."""
    from geffect_lite.cli import CLAIM_IDS
    from geffect_lite.paper.scoreboard import CLAIMS
    assert list(CLAIM_IDS) == [c.id for c in CLAIMS]


BAD = [
    (["demo", "--objectives", "bogus"], "bogus"),
    (["demo", "--steps", "-3"], "-3"),
    (["demo", "--steps", "two"], "two"),
    (["demo", "--model", "nope"], "nope"),
    (["demo", "--setting", "table1"], "table1"),
    (["report", "--model", "nope"], "nope"),
    (["bench", "--models", "gpt9"], "gpt9"),
    (["bench", "--repeats", "0"], "0"),
    (["claims", "--model", "huge"], "huge"),
    (["claims", "--seed", "-1"], "-1"),
    (["claims", "--models", "x"], "x"),
    (["claims", "--sensitivity", "--claims", "ga_spik"], "ga_spik"),
    (["claims", "--sensitivity", "--replications", "-2"], "-2"),
    (["claims", "--sensitivity", "--replications", "1", "1"], "[1, 1]"),
    (["claims", "--sensitivity", "--lr-scales", "2", "2"], "[2.0, 2.0]"),
    (["claims", "--replication", "x"], "x"),
    (["claims", "--setting", "theory"], "theory"),
    (["claims", "--model", "smollm2-tofu", "--replication", "8"], "got 8"),
    (["claims", "--sensitivity", "--lr-scales", "0"], "0"),
    (["table1", "--model", "smollm2-tofu"], "smollm2-tofu"),
    (["table1", "--seeds", "a"], "a"),
    (["protocol", "--models", "nope"], "nope"),
    (["build", "everything"], "everything"),
    (["notebooks", "--execute", "--only", "99"], "99"),
    (["notebooks"], "--execute"),
    (["frobnicate"], "frobnicate"),
    (["demo", "--device", "tpu"], "tpu"),
    (["claims", "--device", "cuda:x"], "cuda:x"),
] + ([] if __import__("torch").cuda.is_available() else [(["report", "--device", "cuda"], "cuda")])


@pytest.mark.parametrize("args,bad", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_status_2(args, bad):
    out = _cli(*args, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert bad in lines[0] and "Traceback" not in out.stderr
    assert any(w in lines[0] for w in ("valid", "expected", "required", "invalid choice")), lines[0]
