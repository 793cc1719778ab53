"""``--device``: every computing command loads its models where ``GEFFECT_DEVICE`` says (default: the CPU), and a run
made on a GPU is keyed apart, so a cache never serves it to a CPU run (or back)."""
import pytest
import torch

from geffect_lite import config, protocol, run_cache


def test_device_names_are_checked(monkeypatch):
    assert config.check_device("CPU") == "cpu"
    for bad in ("tpu", "cuda:x", "gpu0", ""):
        with pytest.raises(ValueError, match="valid"):
            config.check_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device.*valid here: cpu"):
            config.check_device("cuda")
    monkeypatch.setenv("GEFFECT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="'tpu'"):
        config.device()
    monkeypatch.delenv("GEFFECT_DEVICE")
    assert config.device() == "cpu"


def test_a_gpu_run_is_keyed_apart(monkeypatch):
    S = protocol.setting("paper", "tiny")
    cpu = run_cache._request("ga", {}, S, {})
    assert "device" not in cpu                        # the CPU keys are the ones every cached run already has
    monkeypatch.setattr(config, "device", lambda: "cuda:1")
    gpu = run_cache._request("ga", {}, S, {})
    assert gpu["device"] == "cuda" and {k: v for k, v in gpu.items() if k != "device"} == cpu


def test_models_are_loaded_on_the_chosen_device(monkeypatch):
    seen = []
    monkeypatch.setattr("geffect_lite.models.load_model", lambda name, device=None: seen.append((name, device)))
    monkeypatch.setattr(config, "device", lambda: "cuda:0")
    run_cache._loaded.cache_clear()
    try:
        run_cache.loaded("tiny")
        monkeypatch.setattr(config, "device", lambda: "cpu")
        run_cache.loaded("tiny")
    finally:
        run_cache._loaded.cache_clear()
    assert seen == [("tiny", "cuda:0"), ("tiny", None)]
