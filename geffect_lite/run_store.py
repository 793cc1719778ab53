"""The on-disk run cache, ``$GEFFECT_CACHE/runs/<key>.pkl``: files that cannot lie.

A protocol run (a trajectory of G-effects, Definition 1, under a protocol setting — :func:`geffect_lite.run_cache.
protocol_run`) is stored as one file::

    GEFFECT-RUN {"format": 2, "code": "…", "sha256": "…", "bytes": n, "key": "…", "objective": "…", …}\\n<pickle>

The one-line JSON header records the file format, the **code version** (:func:`code_version`: a hash of the source
of every module a run's numbers depend on), the payload's length and SHA-256, and what the run is (objective,
setting, model, seconds, whether it diverged) so ``python -m geffect_lite cache --list`` can show it without
unpickling. :func:`read` returns a file's payload only if every check passes; a foreign, truncated, corrupted
(checksum) or outdated (other format or code version) file is reported in one log line (which file, why,
"recomputing"), deleted, and None is returned, so the caller recomputes — a stale number is never read.

This module imports no torch: the command line lists and clears the cache in well under a second.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import pickle
import re
import time
from pathlib import Path
from typing import List, Optional, Tuple

from .config import PACKAGE_DIR, cache_dir

__all__ = ["FORMAT_VERSION", "CODE_SOURCES", "NOTICE", "is_notice", "code_version", "runs_dir", "write", "read",
           "check", "entries", "table", "clear", "clear_stale", "parse_age", "LOG"]

FORMAT_VERSION = 2            # 1: a bare pickle (no header); 2: magic, JSON header, checksummed pickle
MAGIC = b"GEFFECT-RUN "
#: how every line this module logs begins. Such a line is a notice about this machine's cache (a file found foreign,
#: truncated, corrupted or outdated, deleted and recomputed), not part of the lesson: committed notebooks hold none,
#: and a notebook run that shows one (on stderr, after an upgrade) has not failed.
NOTICE = "run cache: "
#: what a run's numbers depend on (package-relative files and folders): the engine, the objectives, the trajectory
#: loop, the NLL and its context, θ_ref, tokenisation, layer groups, model loading, the data, a setting's data and
#: the final measures (run_cache). Docstrings and comments are not part of the version (see :func:`code_version`).
CODE_SOURCES = ("engine", "objectives", "models", "trajectory.py", "nll.py", "context.py", "reference.py",
                "batching.py", "layers.py", "data.py", "setting_data.py", "run_cache.py")
LOG = logging.getLogger("geffect_lite.runs")
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$")
_UNIT = {"d": 86400, "h": 3600, "m": 60}


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A 12-hex-digit hash of the code of :data:`CODE_SOURCES`: each file's syntax tree with its docstrings removed
    (so editing a docstring, a comment or blank lines keeps cached runs; any change to code invalidates them).
    Computed from the files' contents, once per process."""
    h = hashlib.sha256()
    files = []
    for name in CODE_SOURCES:
        p = PACKAGE_DIR / name
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    for f in files:
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        h.update(_code_only(f.read_text(encoding="utf-8")).encode() + b"\0")
    return h.hexdigest()[:12]


def _code_only(src: str) -> str:
    """The syntax tree of ``src`` without docstrings and without positions (comments are never in the tree)."""
    tree = ast.parse(src)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def runs_dir() -> Path:
    """``$GEFFECT_CACHE/runs`` (created on demand)."""
    p = cache_dir() / "runs"
    p.mkdir(parents=True, exist_ok=True)
    return p


def write(path: Path, obj, meta: dict) -> dict:
    """Pickle ``obj`` to ``path`` behind a header (``meta`` plus format, code version, length, SHA-256, time of
    writing); written to a temporary file first and renamed, so a crash never leaves a half file under the key."""
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    header = dict(meta, format=FORMAT_VERSION, code=code_version(), bytes=len(blob),
                  sha256=hashlib.sha256(blob).hexdigest(), created=time.time())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(MAGIC + json.dumps(header, sort_keys=True, default=str).encode() + b"\n" + blob)
    tmp.replace(path)
    return header


def _parse(raw: bytes) -> Tuple[Optional[dict], bytes, Optional[str]]:
    """(header, payload, why-not) of a file's bytes."""
    if not raw.startswith(MAGIC):
        return None, b"", "not a run file of this format (no header: an older format or a foreign file)"
    end = raw.find(b"\n")
    if end < 0:
        return None, b"", "truncated inside its header"
    try:
        header = json.loads(raw[len(MAGIC):end])
    except ValueError:
        return None, b"", "unreadable header (corrupted)"
    return (header, raw[end + 1:], None) if isinstance(header, dict) else (None, b"", "unreadable header")


def check(path: Path) -> Tuple[Optional[dict], bytes, Optional[str]]:
    """(header, payload, why it must not be read — None when every check passes) of one cache file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        return None, b"", f"unreadable ({e.strerror or e})"
    header, blob, why = _parse(raw)
    if why:
        return header, blob, why
    if header.get("format") != FORMAT_VERSION:
        return header, blob, f"format {header.get('format')!r}, this code reads format {FORMAT_VERSION}"
    if len(blob) != header.get("bytes"):
        return header, blob, f"truncated: {len(blob)} of {header.get('bytes')} payload bytes"
    if hashlib.sha256(blob).hexdigest() != header.get("sha256"):
        return header, blob, "checksum mismatch (corrupted)"
    if header.get("key") not in (None, Path(path).stem):
        return header, blob, f"holds run {header.get('key')!r}, not {Path(path).stem!r}"
    if header.get("code") != code_version():
        return header, blob, f"outdated: written by code version {header.get('code')}, this is {code_version()}"
    return header, blob, None


def read(path: Path):
    """(payload, header) of a cache file that passes every check of :func:`check`; else None after one log line
    (file, why, "deleted, recomputing") and deleting the file. None too when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    header, blob, why = check(path)
    if why is None:
        try:
            return pickle.loads(blob), header
        except Exception as e:                     # a payload that passed its checksum but not unpickling
            why = f"unpicklable ({type(e).__name__}: {e})"
    LOG.warning(NOTICE + "%s: %s; deleted, recomputing", path, why)
    path.unlink(missing_ok=True)
    return None


def is_notice(line: str) -> bool:
    """Whether one line of output is this cache's notice: it holds :data:`NOTICE` (anywhere, so that a logging
    format's prefix, e.g. ``WARNING:geffect_lite.runs:``, does not hide it)."""
    return NOTICE in line


def entries(folder: Optional[Path] = None) -> List[dict]:
    """One row per cache file (oldest first): key, objective, setting, model, bytes, age (s), code (does its code
    version match this code's), diverged (step or None), check ("ok" or why it would be recomputed)."""
    folder = Path(folder) if folder is not None else runs_dir()
    rows, now = [], time.time()
    for f in sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime):
        header, _, why = check(f)
        h = header or {}
        div = h.get("diverged")
        rows.append(dict(key=f.stem, objective=h.get("objective", "?"), setting=h.get("setting", "?"),
                         model=h.get("model", "?"), bytes=f.stat().st_size, age=now - f.stat().st_mtime,
                         code=h.get("code") == code_version(), diverged=div.get("step") if div else None,
                         check=why or "ok"))
    return rows


def table(rows: List[dict]) -> str:
    """:func:`entries` as an aligned text table (one line per file, then a total)."""
    if not rows:
        return f"no cached runs in {runs_dir()}"
    cols = ("key", "objective", "setting", "model", "size", "age", "code", "diverged", "check")
    cells = [[r["key"], r["objective"], r["setting"], r["model"], _size(r["bytes"]), _age(r["age"]),
              "match" if r["code"] else "OTHER", "-" if r["diverged"] is None else f"step {r['diverged']}",
              r["check"]] for r in rows]
    w = [max(len(c), *(len(str(x[i])) for x in cells)) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(str(x).ljust(n) for x, n in zip(xs, w)).rstrip()   # noqa: E731
    total = sum(r["bytes"] for r in rows)
    return "\n".join([line(cols)] + [line(c) for c in cells] +
                     [f"{len(rows)} runs, {_size(total)} in {runs_dir()} (this code version: {code_version()})"])


def clear(older_than: Optional[float] = None, folder: Optional[Path] = None) -> Tuple[int, int]:
    """Delete cached runs (and left-over temporary files) last written more than ``older_than`` seconds ago (all
    when None). Returns (files deleted, bytes freed)."""
    folder = Path(folder) if folder is not None else runs_dir()
    n = size = 0
    now = time.time()
    for f in list(folder.glob("*.pkl")) + list(folder.glob("*.tmp")):
        st = f.stat()
        if older_than is None or now - st.st_mtime > older_than:
            f.unlink(missing_ok=True)
            n, size = n + 1, size + st.st_size
    return n, size


def clear_stale(folder: Optional[Path] = None) -> Tuple[int, int]:
    """Delete the cached runs :func:`read` would not serve (outdated, truncated, corrupted) without a notice each.
    Returns (files deleted, bytes freed)."""
    folder = Path(folder) if folder is not None else runs_dir()
    n = size = 0
    for f in folder.glob("*.pkl"):
        if check(f)[2] is not None:
            size += f.stat().st_size
            f.unlink(missing_ok=True)
            n += 1
    return n, size


def parse_age(text: str) -> float:
    """Seconds in an age such as ``7d``, ``12h``, ``30m`` (a non-negative number and d, h or m); ValueError
    naming the bad value otherwise."""
    m = _AGE.match(str(text))
    if not m:
        raise ValueError(f"bad age {text!r}: expected a number followed by d, h or m (e.g. 7d, 12h, 30m)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _size(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MB" if n >= 2 ** 20 else f"{n / 2 ** 10:.0f} kB"


def _age(s: float) -> str:
    for unit, secs in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= secs:
            return f"{s / secs:.0f}{unit}"
    return f"{s:.0f}s"
