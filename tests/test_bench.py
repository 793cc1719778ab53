"""The benchmark's own logic: its values agree (speed is *measured* by `python -m geffect_lite bench`, never asserted
in a test), it times gl.run as users call it, and its verdicts read the targets the right way round."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from geffect_lite import bench  # noqa: E402


def test_forward_mode_values_agree_on_tiny():
    r = bench.bench_instances("tiny", repeats=1, token_sample=4)
    assert r["n_instances"] == 32 and r["n_tokens"] > 32
    assert r["rel_diff_instances"] <= 1e-4
    assert r["tokens_reference"] == "fp64 loop" and r["rel_diff_tokens"] <= 1e-4
    assert r["forward_s"] > 0 and r["forward_mode_s"] > 0 and r["loop_instance_s"] > 0


def test_run_rows_time_the_users_path():
    r = bench.bench_run("tiny", "ga", "sgd", repeats=1)
    for k in ("plain_step_s", "run_step_s", "run_full_step_s", "geffect_s"):
        assert r[k] > 0, k
    assert r["ratio_run"] == r["run_step_s"] / r["plain_step_s"]
    assert r["ratio_notebook_run"] > 0


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
