"""Execute the notebook series in place (``python -m geffect_lite notebooks --execute``), the way their committed
outputs are made: the **full protocol** by default (``--fast`` is the CI switch, never for committed outputs), one
fresh kernel per notebook, from a clean commit only (a dirty tree is refused, and every footer names the commit the
run started from, although each notebook written back dirties the tree), and in each notebook's metadata a record of how it was executed —
``metadata["geffect_lite"]["execution"] = {mode, seconds, commit, date, python, torch}`` — which the tests and the
course's timing table read.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[2] / "notebooks"


def paths(only: Optional[Sequence[str]] = None, root: Path = ROOT):
    nbs = sorted(root.glob("*.ipynb"))
    return [p for p in nbs if not only or any(p.name.startswith(o) for o in only)]


def execute(only: Optional[Sequence[str]] = None, timeout: int = 900, fast: bool = False, root: Path = ROOT):
    """Execute the notebooks whose names start with ``only`` (all by default) and write them back."""
    import nbclient
    import nbformat
    import torch
    from .results import git_commit
    commit = git_commit()
    if commit.endswith("+changes") or commit == "unknown":
        raise SystemExit(f"refusing to execute the notebooks from {commit!r}: commit first, so that every footer "
                         "names a commit that exists in the history (committed outputs come from a clean commit)")
    os.environ["GEFFECT_EXECUTED_FROM"] = commit     # the footers name it, although each written notebook dirties
    os.environ["GEFFECT_FAST"] = "1" if fast else "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    from ..run_store import clear_stale
    stale, _ = clear_stale()   # recomputed anyway; deleted now so that their one-line notices (this machine's cache
    if stale:                  # paths) stay out of the committed outputs
        print(f"deleted {stale} cached run(s) that would be recomputed (outdated or damaged)", flush=True)
    total = time.time()
    for p in paths(only, root):
        t = time.time()
        print(f"executing {p.name} ({'fast' if fast else 'full protocol'}) …", flush=True)
        nb = nbformat.read(str(p), as_version=4)
        nb.metadata["kernelspec"] = dict(name="python3", display_name="Python 3", language="python")
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(root)}}).execute()
        nb.metadata.setdefault("geffect_lite", {})["execution"] = dict(
            mode="fast" if fast else "full", seconds=round(time.time() - t, 1), commit=commit,
            date=time.strftime("%Y-%m-%d %H:%M"), python=platform.python_version(), torch=torch.__version__)
        nbformat.write(nb, str(p))
        print(f"  done in {time.time() - t:.0f} s", flush=True)
    print(f"all done in {time.time() - total:.0f} s")


__all__ = ["execute", "paths", "ROOT"]
