#!/usr/bin/env python3
"""How long each notebook takes to run, read from what the notebooks recorded (or measured when they recorded nothing).

Where the seconds come from, first match wins:

1. **notebook metadata** ``metadata["geffect_lite"]["execution"]``;
2. **the last cell's metadata**, same key: ``cells[-1]["metadata"]["geffect_lite"]["execution"]``;
   either one is a record ``{"seconds": 41.2, "mode": "fast", "model": "tiny", "commit": "410c4c7", ...}`` or a list of
   such records (for example one per mode); ``seconds`` may also be spelled ``wall_seconds``/``wall_s``/``elapsed_s``;
   ``mode`` may be given as ``fast: true/false``; unknown keys are kept and ignored;
3. **cell timestamps** that nbclient/nbconvert write when executing (``cell.metadata.execution["iopub.execute_input"]``
   to ``["shell.execute_reply"]``): the sum over code cells (mode ``"unknown"``: the timestamps do not say whether
   ``GEFFECT_FAST`` was set);
4. with ``--measure``: a fresh nbclient run of a copy of the notebook under ``GEFFECT_FAST=1`` (mode ``"fast"``).

Usage::

    python -m geffect_lite.tooling.notebook_timings notebooks/*.ipynb                  # a table on stdout
    python -m geffect_lite.tooling.notebook_timings --markdown out.md notebooks/*.ipynb
    python -m geffect_lite.tooling.notebook_timings --measure notebooks/00_quickstart.ipynb

The course path (docs/course/path.md) gets this table at site build (``make site``), so its timings are the
notebooks' own.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

SECONDS_KEYS = ("seconds", "wall_seconds", "wall_s", "elapsed_s", "elapsed", "duration_s")


def _load(nb) -> dict:
    if isinstance(nb, (str, Path)):
        return json.loads(Path(nb).read_text(encoding="utf-8"))
    return nb


def _normalise(rec, source: str) -> Optional[dict]:
    """One execution record → {seconds, mode, model, commit, source} (None if it has no usable seconds)."""
    if not isinstance(rec, dict):
        return None
    sec = next((rec[k] for k in SECONDS_KEYS if isinstance(rec.get(k), (int, float))), None)
    if sec is None or sec < 0:
        return None
    mode = rec.get("mode")
    if mode is None and "fast" in rec:
        mode = "fast" if rec["fast"] else "full"
    return dict(seconds=float(sec), mode=str(mode or "unknown"), model=rec.get("model"), commit=rec.get("commit"),
                source=source)


def _records(meta, source: str) -> List[dict]:
    ex = (meta or {}).get("geffect_lite", {})
    ex = ex.get("execution") if isinstance(ex, dict) else None
    recs = ex if isinstance(ex, list) else [ex] if ex is not None else []
    return [r for r in (_normalise(x, source) for x in recs) if r]


def _parse_time(s: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(str(s).replace("Z", "+00:00"))


def cell_timestamp_seconds(nb) -> Optional[float]:
    """Sum over code cells of (execute_reply − execute_input) from nbclient's cell metadata; None if none has them."""
    total, found = 0.0, False
    for c in _load(nb).get("cells", []):
        ex = c.get("metadata", {}).get("execution", {})
        if c.get("cell_type") == "code" and "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            try:
                start, end = _parse_time(ex["iopub.execute_input"]), _parse_time(ex["shell.execute_reply"])
                total += (end - start).total_seconds()
                found = True
            except ValueError:
                continue
    return total if found else None


def recorded(nb) -> List[dict]:
    """Every execution record a notebook carries (see the module docstring), best source first; [] if none."""
    d = _load(nb)
    recs = _records(d.get("metadata"), "notebook metadata")
    if not recs and d.get("cells"):
        recs = _records(d["cells"][-1].get("metadata"), "last cell metadata")
    if not recs:
        s = cell_timestamp_seconds(d)
        if s is not None:
            recs = [dict(seconds=s, mode="unknown", model=None, commit=None, source="cell timestamps")]
    return recs


def measure(path, timeout: int = 1200) -> dict:
    """Run a copy of the notebook with nbclient under GEFFECT_FAST=1 (offline) and time it."""
    import nbformat
    from nbclient import NotebookClient
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_keys = dict(GEFFECT_FAST="1", TQDM_DISABLE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                    OMP_WAIT_POLICY="PASSIVE")
    old = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)
    try:
        with tempfile.TemporaryDirectory():
            t0 = time.time()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            sec = time.time() - t0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return dict(seconds=sec, mode="fast", model=None, commit=None, source="measured now (nbclient, GEFFECT_FAST=1)")


def title(nb) -> str:
    for c in _load(nb).get("cells", []):
        if c.get("cell_type") == "markdown":
            for line in "".join(c.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


PREFER = ("full", "unknown", "fast")     # a class runs the full notebooks: their time is the one a teacher needs


def table(paths, measure_missing: bool = False, prefer=PREFER) -> List[dict]:
    """One row per notebook: notebook, title, seconds, mode, model, commit, source (seconds None if unknown).
    With several records, the first mode of ``prefer`` wins."""
    rows = []
    for p in paths:
        p = Path(p)
        recs = recorded(p)
        if not recs and measure_missing:
            recs = [measure(p)]
        rank = {m: i for i, m in enumerate(prefer)}
        recs = sorted(recs, key=lambda r: rank.get(r["mode"], len(rank)))
        r = (recs or [dict(seconds=None, mode="—", model=None, commit=None, source="no record")])[0]
        rows.append(dict(notebook=p.name, title=title(p), **r))
    return rows


def fmt_seconds(s) -> str:
    if s is None:
        return "—"
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def short(row) -> str:
    """One row's time for running text: '46 s (GEFFECT_FAST=1)', '2.1 min (full run)', '14 s (mode not recorded)'."""
    if row.get("seconds") is None:
        return "not recorded"
    mode = {"fast": "GEFFECT_FAST=1", "full": "full run"}.get(row.get("mode"), "mode not recorded")
    return f"{fmt_seconds(row['seconds'])} ({mode})"


def markdown(rows) -> str:
    lines = ["| notebook | run time | mode | recorded in |", "|---|---:|---|---|"]
    for r in rows:
        extra = ", ".join(x for x in (r.get("model") and f"model {r['model']}",
                                      r.get("commit") and f"commit {r['commit']}") if x)
        lines.append(f"| {r['notebook']} | {fmt_seconds(r['seconds'])} | {r['mode']} | {r['source']}"
                     f"{' (' + extra + ')' if extra else ''} |")
    known = [r["seconds"] for r in rows if r["seconds"] is not None]
    if known:
        lines.append(f"| **all** | **{fmt_seconds(sum(known))}** | | |")
    note = shared_runs_note()
    return "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")


def shared_runs_note() -> str:
    """What the recorded times leave out: the protocol's shared runs, computed once into the disk cache before the
    notebooks run (`make execute-notebooks` does it with `claims --model tiny`); their time is read from the committed
    tiny scoreboard, whose seed-0 run is that command."""
    try:
        from geffect_lite import results
        cfg = (results.load("scoreboard-tiny") or {}).get("config", {})
        minutes = float(cfg["seconds"]) / 60
    except Exception:
        return ""
    return (f"These times are with the protocol's shared runs already in the disk cache. `make execute-notebooks` "
            f"computes them first with `python -m geffect_lite claims --model tiny`, which took {minutes:.0f} min when "
            f"the committed tiny scoreboard was made; without that step, the first notebook that needs a run "
            f"computes it, once.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", help="notebook files")
    ap.add_argument("--measure", action="store_true", help="time a GEFFECT_FAST=1 run for notebooks with no record")
    ap.add_argument("--markdown", metavar="FILE", help="write the markdown table to FILE instead of stdout")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = ap.parse_args(argv)
    missing = [p for p in a.notebooks if not Path(p).is_file()]
    if missing:
        print(f"error: not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = table(a.notebooks, measure_missing=a.measure)
    if a.json:
        print(json.dumps(rows, indent=1))
    elif a.markdown:
        Path(a.markdown).write_text(markdown(rows), encoding="utf-8")
    else:
        print(markdown(rows), end="")
    return 0


__all__ = ["cell_timestamp_seconds", "recorded", "measure", "title", "table", "fmt_seconds", "short", "markdown",
           "shared_runs_note", "main"]


if __name__ == "__main__":
    sys.exit(main())
