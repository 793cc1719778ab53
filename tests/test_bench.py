"""The benchmark's own logic: its values agree (speed is *measured* by `python -m geffect_lite bench`, never asserted
in a test), it times gl.run as users call it, and its verdicts read the targets the right way round."""
import inspect
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import geffect_lite as gl  # noqa: E402
from geffect_lite.tooling import bench  # noqa: E402


def test_forward_mode_values_agree_on_tiny():
    r = bench.bench_instances("tiny", repeats=1, token_sample=4)
    assert r["n_instances"] == 32 and r["n_tokens"] > 32
    assert r["rel_diff_instances"] <= 1e-4
    assert r["tokens_reference"] == "fp64 loop" and r["rel_diff_tokens"] <= 1e-4
    assert r["forward_s"] > 0 and r["forward_mode_s"] > 0 and r["loop_instance_s"] > 0


def test_run_rows_time_the_users_path(monkeypatch):
    """The gl.run rows call the user's entry (gl.run itself, as the notebooks do: model, objective, forget, retain,
    ref, steps, lr, optimizer), time what happens inside it, and divide by a plain step measured on its own."""
    assert bench.run is gl.run                     # the bench imports the public entry, not a private path
    calls, real = [], bench.run

    def spy(*args, **kwargs):
        calls.append(inspect.signature(real).bind(*args, **kwargs).arguments)
        time.sleep(0.2)                            # a known cost inside gl.run must show in the run rows
        return real(*args, **kwargs)
    monkeypatch.setattr(bench, "run", spy)
    monkeypatch.setattr(bench, "_plain_steps", lambda *a, **k: 0.125)     # the plain step, measured separately
    r = bench.bench_run("tiny", "ga", "sgd", repeats=1)
    assert [c["steps"] for c in calls] == [4, 4, 4, 10]       # totals + groups; + instances; + tokens; notebook-like
    for c in calls:
        assert c["objective"].name == "ga" and c["optimizer"] == "sgd" and c["progress"] is False
        assert c["forget"]["input_ids"].shape[0] == 32 and c["retain"]["input_ids"].shape[0] == 8
    assert not calls[0].get("record", {}).get("instances")
    assert calls[1]["record"]["instances"] and not calls[1]["record"].get("tokens")
    assert calls[2]["record"]["instances"] and calls[2]["record"]["tokens"]
    assert r["plain_step_s"] == 0.125
    assert r["run_step_s"] >= 0.2 / 4 and r["run_instances_step_s"] >= 0.2 / 4 and r["run_full_step_s"] >= 0.2 / 4
    assert r["ratio_run"] == r["run_step_s"] / 0.125 and r["ratio_run_full"] == r["run_full_step_s"] / 0.125
    assert r["ratio_run_instances"] == r["run_instances_step_s"] / 0.125
    assert r["ratio_notebook_run"] >= (0.2 / 10) / 0.125
    assert r["geffect_s"] > 0


def test_verdicts():
    assert bench.verdict("ratio_run", 2.0).startswith("meets")
    assert bench.verdict("ratio_run", 3.5).startswith("MISSES")
    assert bench.verdict("speedup_vs_token_loop", 25.0).startswith("meets")
    assert bench.verdict("speedup_vs_token_loop", 5.0).startswith("MISSES")
    assert bench.verdict("ratio_forward_mode_vs_forward", 3.8, dict(model="tiny")).startswith("meets")
    assert bench.verdict("ratio_forward_mode_vs_forward", 3.8, dict(model="smollm2")).startswith("MISSES")
    assert "no target" in bench.verdict("ratio", 60.0, dict(param_mb=6.0))
    assert "informational" in bench.verdict("ratio", 5.0, dict(param_mb=513.0, instances=True))
    assert "informational" in bench.verdict("ratio", 5.0, dict(param_mb=513.0, optimizer="adamw"))
    assert bench.verdict("ratio", 2.2, dict(param_mb=513.0, instances=False, optimizer="sgd")).startswith("meets")
    assert bench.verdict("not_a_target", 1.0) == ""
