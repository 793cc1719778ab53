"""The benchmark's own logic: its values agree (speed is *measured* by `python -m geffect_lite bench`, never asserted
in a test), and its verdicts read the targets the right way round."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from geffect_lite import bench  # noqa: E402


def test_instances_benchmark_values_agree_on_tiny():
    r = bench.bench_instances("tiny", repeats=1, token_sample=4)
    assert r["n_instances"] == 32 and r["n_tokens"] > 32
    assert r["rel_diff_instances"] <= 1e-4
    assert r["tokens_reference"] == "fp64 loop" and r["rel_diff_tokens"] <= 1e-4
    assert r["forward_s"] > 0 and r["forward_mode_s"] > 0 and r["loop_instance_s"] > 0


def test_verdicts():
    assert bench._verdict("ratio_tracked", 2.0).startswith("meets")
    assert bench._verdict("ratio_tracked", 3.5).startswith("MISSES")
    assert bench._verdict("speedup_vs_token_loop", 25.0).startswith("meets")
    assert bench._verdict("speedup_vs_token_loop", 5.0).startswith("MISSES")
    assert "no target" in bench._verdict("ratio", 60.0, dict(param_mb=6.0))
    assert "informational" in bench._verdict("ratio", 5.0, dict(param_mb=513.0, instances=True))
    assert bench._verdict("ratio", 2.2, dict(param_mb=513.0, instances=False)).startswith("meets")
    assert bench._verdict("not_a_target", 1.0) == ""
