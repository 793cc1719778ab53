"""Committed results — the heavy runs (calibration, the scoreboards at three scales, Table 1 over seeds, the
diagnoses) stored as JSON with their provenance, so that notebooks and the README can show them without anyone
re-running 45 minutes. Each file records the command, the git commit, the date, the seconds and the machine.

``load(name)`` returns the stored dict (None if absent); ``save(name, payload, command=..., seconds=...)`` writes it
with provenance; ``provenance_line(d)`` is the one-line citation a notebook prints under a committed result.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    return HERE / f"{name}.json"


def load(name: str) -> Optional[dict]:
    p = path(name)
    return json.loads(p.read_text()) if p.exists() else None


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+changes" if dirty else "") if out.returncode == 0 else "unknown"
    except Exception:
        return "unknown"


def machine() -> str:
    import torch
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
            f"threads, torch {torch.__version__}, Python {platform.python_version()}")


def provenance(command: str, seconds: float) -> dict:
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


def provenance_line(d: dict) -> str:
    p = (d or {}).get("provenance", {})
    return (f"committed result: `{p.get('command', '?')}` at commit {p.get('commit', '?')} on {p.get('date', '?')}, "
            f"{p.get('seconds', float('nan')) / 60:.1f} min on {p.get('machine', '?')}")


__all__ = ["load", "save", "path", "provenance", "provenance_line", "git_commit", "machine"]
