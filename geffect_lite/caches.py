"""Every cache of the package, named and listed in one place, and :func:`clear_caches` (``gl.clear_caches()``).

A cache keeps a computed value so it is not computed again — a loaded model, a trajectory of G-effects (Definition
1), a fingerprint. Each is listed in :data:`CACHES` with where it lives, what keys it, and how it is cleared:

* ``memory`` — process-wide, in a module; ``disk`` — files under ``$GEFFECT_CACHE``: :func:`clear_caches`
  clears all of them (``models (disk)`` only when named: the converted SmolLM2 models take minutes to rebuild);
* ``object`` — held by one object and gone with it (a :class:`~geffect_lite.context.Context`'s forward passes, a
  :class:`~geffect_lite.reference.Reference`'s θ_ref tensors, the engine's note on an objective); listed with the
  call that clears one object's cache.

Clearing never imports a heavy module: a cache whose module was never imported is empty.

Not caches, so not listed: RMU's random direction u (a pure function of (seed, d), drawn afresh:
``objectives.rmu.direction``) and the record of which tokenizer each loaded model came with
(``batching.loaded_tokenizer``: the only source of the tokenizer-mismatch check, gone with its model).
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd

__all__ = ["Cache", "CACHES", "clear_caches", "caches_frame", "prepare"]


@dataclass(frozen=True)
class Cache:
    """One cache: its name, where it lives (``memory`` | ``disk`` | ``object``), what keys it, the module that
    holds it, and its clear function (``clear()`` for memory and disk; ``clear(obj)`` for object caches; None
    when the object's lifetime is the only way it ends)."""
    name: str
    where: str
    keyed_by: str
    module: str
    clear: Optional[Callable]
    by_default: bool = True        # cleared by clear_caches() without naming it


def _loaded(module: str):
    """The module if it was imported, else None (an unimported module's caches are empty)."""
    return sys.modules.get(f"geffect_lite.{module}")


def _lru(module: str, fn: str) -> Callable:
    def clear():
        m = _loaded(module)
        if m is not None:
            getattr(m, fn).cache_clear()
    return clear


def _call(module: str, fn: str) -> Callable:
    def clear():
        m = _loaded(module)
        if m is not None:
            getattr(m, fn)()
    return clear


def _weak(module: str, attr: str) -> Callable:
    def clear():
        m = _loaded(module)
        if m is not None:
            getattr(m, attr).clear()
    return clear


def _rouge() -> None:
    m = _loaded("metrics.scoring")
    if m is not None:
        m._ROUGE = None


def _learning_rates() -> None:
    m = _loaded("protocol")
    if m is not None:
        m.LR.clear()


def _folder(*names: str) -> Callable:
    def clear():
        from .config import cache_dir
        for name in names:
            p = cache_dir() / name
            if p.is_dir():
                shutil.rmtree(p)
    return clear


def _clear_runs() -> None:
    from .run_store import clear
    clear()


CACHES = (
    Cache("runs (disk)", "disk", "model weights, setting fields, objective (+ a user objective's code), "
          "hyper-parameters, recording options; checked: format, code version, SHA-256", "run_store", _clear_runs),
    Cache("runs (memory)", "memory", "the same request as runs (disk), within this process (≤ MEMORY_RUNS)",
          "run_cache", _call("run_cache", "clear_memory")),
    Cache("loaded models", "memory", "model name, device (2 most recent)", "run_cache", _lru("run_cache", "_loaded")),
    Cache("dataset", "memory", "(none: one synthetic data set)", "run_cache", _lru("run_cache", "dataset")),
    Cache("code version", "memory", "(none: the package's source files, hashed once)", "run_store",
          _lru("run_store", "code_version")),
    Cache("learning rates", "memory", "(setting, model, fast), filled from results/calibration.json on first use",
          "protocol", _learning_rates),
    Cache("tokenizer fingerprints", "memory", "tokenizer object (weak: dropped with it)", "batching",
          _weak("batching", "_FINGERPRINTS")),
    Cache("ROUGE scorer", "memory", "(none: one scorer)", "metrics.scoring", _rouge),
    Cache("tables (disk)", "disk", "model and twin weights, setting, objectives, rows evaluated "
          "($GEFFECT_CACHE/tables)", "paper.table", _folder("tables")),
    Cache("models (disk)", "disk", "the installed GGUF and transformers version, recorded in the converted SmolLM2 "
          "folder ($GEFFECT_CACHE/smollm2; another source is converted again; smollm2-tofu adds the shipped delta)",
          "models", _folder("smollm2", "smollm2-tofu"), by_default=False),
    Cache("context forwards", "object", "batch name (forget | idk | retain) of one Context (one θ)", "context",
          lambda ctx: ctx.clear()),
    Cache("θ_ref tensors", "object", "batch fingerprint of one Reference (they are θ_ref: rebuild with "
          "reference_for)", "reference", None),
    Cache("objective kinds", "object", "one objective: is its forget term token/instance decomposable "
          "(engine.views)", "engine.views", lambda obj: obj.__dict__.pop("_kinds", None)),
)


def clear_caches(*names: str) -> list:
    """Clear the named caches (default: every ``memory`` and ``disk`` cache of :data:`CACHES` except ``models
    (disk)``); returns the names cleared. ValueError naming the valid names for an unknown or object cache."""
    valid = [c.name for c in CACHES if c.where != "object"]
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"unknown cache(s) {', '.join(map(repr, bad))}; valid: {', '.join(valid)} (object caches "
                         "are cleared on their object)")
    chosen = [c for c in CACHES if c.name in names] if names else \
        [c for c in CACHES if c.where != "object" and c.by_default]
    for c in chosen:
        c.clear()
    return [c.name for c in chosen]


def caches_frame() -> pd.DataFrame:
    """The registry as a table: name, where, keyed_by, module, cleared by clear_caches()."""
    return pd.DataFrame([dict(name=c.name, where=c.where, keyed_by=c.keyed_by, module=f"geffect_lite.{c.module}",
                              cleared=(c.where != "object" and c.by_default)) for c in CACHES])


def prepare(model: str) -> bool:
    """Build ``model``'s on-disk cache in a child process, so the calling process (a notebook's kernel) never holds
    the build's transient memory: SmolLM2's one-time GGUF → safetensors conversion (≈ 30 s) peaks near 2 GB, and a
    kernel's peak resident memory never comes back down. True when a build ran; False when the cache was ready or
    ``model`` has no on-disk build. OSError (with the child's last lines) when the build fails."""
    import os
    import subprocess
    if model not in ("smollm2", "smollm2-tofu"):
        return False
    from .config import cache_dir
    from .models.smollm2 import valid_cached
    if valid_cached(cache_dir() / "smollm2"):
        return False
    print("SmolLM2: converting the GGUF once into the cache (≈ 30 s, in a child process) …", flush=True)
    child = subprocess.run([sys.executable, "-c", "from geffect_lite.models.smollm2 import convert_smollm2; "
                            "convert_smollm2()"], capture_output=True, text=True, env=dict(os.environ, TQDM_DISABLE="1"))
    if child.returncode:
        tail = "\n".join((child.stderr or child.stdout).strip().splitlines()[-5:])
        raise OSError(f"the SmolLM2 conversion failed (exit {child.returncode}); its last lines:\n{tail}")
    return True
