"""Committed results — the heavy runs (calibration, the scoreboards at three scales, Table 1 over seeds, the
diagnoses) stored as JSON with their provenance, so that notebooks and the README can show them without anyone
re-running 45 minutes. Each file records the command, the git commit, the date, the seconds and the machine.

This module only *reads* them: ``load(name)`` returns the stored dict (None if absent) and ``provenance_line(d)`` is
the one-line citation a notebook prints under a committed result. Writing them (with the git commit and the machine)
is tooling: :mod:`geffect_lite.tooling.results`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """Where the committed result ``name`` lives (``results/<name>.json``)."""
    return HERE / f"{name}.json"


def load(name: str) -> Optional[dict]:
    """The committed result ``name`` as a dict, or None when it was never committed."""
    p = path(name)
    return json.loads(p.read_text()) if p.exists() else None


def provenance_line(d: dict) -> str:
    """How a committed result was made, in one line (command, commit, date, minutes, machine)."""
    p = (d or {}).get("provenance", {})
    return (f"committed result: `{p.get('command', '?')}` at commit {p.get('commit', '?')} on {p.get('date', '?')}, "
            f"{p.get('seconds', float('nan')) / 60:.1f} min on {p.get('machine', '?')}")


__all__ = ["load", "path", "provenance_line", "HERE"]
