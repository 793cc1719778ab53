"""Writing committed results (``geffect_lite/results/<name>.json``) with their provenance: the command, the git
commit (``git rev-parse``, "+changes" when the tree is dirty), the date, the seconds and the machine. Reading them is
the library's :mod:`geffect_lite.results` (``load``, ``path`` and ``provenance_line`` are re-exported here, so a
writer reads and writes through one module).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

from ..results import HERE, load, path, provenance_line


#: a resumable job's progress file (``results/<name>-partial.json``) is an output being written, not a change of code
PARTIAL_SPEC = ":(top,exclude,glob)geffect_lite/results/*-partial.json"


def git_commit(where: Path = HERE) -> str:
    """The repository's short commit ("+changes" when tracked files other than a resumable job's progress file
    differ from it; "unknown" outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                                PARTIAL_SPEC], cwd=where, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+changes" if dirty else "") if out.returncode == 0 else "unknown"
    except Exception:
        return "unknown"


def machine() -> str:
    """The machine in words: OS, CPUs, torch threads and version, Python."""
    import torch
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
            f"threads, torch {torch.__version__}, Python {platform.python_version()}")


def provenance(command: str, seconds: float) -> dict:
    """The provenance record stored beside a result."""
    return dict(command=command, commit=git_commit(), date=datetime.datetime.now().isoformat(timespec="seconds"),
                seconds=round(float(seconds), 1), machine=machine())


def save(name: str, payload: dict, command: str, seconds: float) -> Path:
    """Write ``payload`` with its provenance to ``results/<name>.json``."""
    out = dict(payload, provenance=provenance(command, seconds))
    p = path(name)
    p.write_text(json.dumps(out, indent=1, default=_jsonable) + "\n")
    return p


def _jsonable(x):
    import numpy as np
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


__all__ = ["save", "provenance", "git_commit", "machine", "load", "path", "provenance_line"]
