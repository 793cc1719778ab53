"""geffect_lite — the G-effect of LLM unlearning objectives, computed live on a CPU.

Python API in five lines::

    import geffect_lite as gl
    model, tok = gl.load_model("tiny"); data = gl.load_data()
    forget, retain = gl.batches(data, tok, "forget05")
    ge = gl.geffect(model, "npo", forget, retain, ref=gl.reference_for(model, "npo", forget, retain))
    print(ge.e_u, ge.e_r); ge.group_table()

Modules: ``data`` (TOFU-shaped data) · ``batching`` (tokenise + collate) · ``models`` (tiny, SmolLM2, any HF id) ·
``nll`` (token log-probs, risk) · ``objectives`` (registry) · ``reference`` (θ_ref without a second model) ·
``groups`` (layer groups) · ``geffect`` (the engine) · ``trajectory`` (unlearning runs) · ``metrics`` (TOFU
evaluation) · ``claims`` (the paper's claims, checked live) · ``plots`` · ``widgets`` · ``cli``.
"""
from __future__ import annotations

import os as _os

# Idle OpenMP threads must sleep, not spin: with spinning threads a busy 2-core machine runs torch ~50× slower.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from .config import cache_dir, fast_mode, offline, set_seed, setup_notebook  # noqa: F401
from .data import load_data, load_tofu, synthetic  # noqa: F401
from .batching import collate  # noqa: F401
from .models import MODEL_NAMES, load_model  # noqa: F401
from .nll import EmptyBatchError, NonFiniteError, forward, risk  # noqa: F401
from .geffect import GEffect, compute  # noqa: F401  (loads the submodule first…)
from .trajectory import Trajectory, run  # noqa: F401

geffect = compute   # …so that this name stays the function, not the submodule


def batches(data, tok, forget_split: str = "forget05", n_forget=None, n_retain: int = 32, retain_split=None,
            max_length: int = 128):
    """(forget, retain) batches: the forget split (with refusal answers for PO) and the first ``n_retain`` pairs of
    the matching retain pool (never the held-out ``retain_eval``)."""
    retain_split = retain_split or ("retain_pool_" + forget_split[-2:] if forget_split.startswith("forget")
                                    else "retain_pool_05")
    f = collate(data.split(forget_split, n_forget), tok, idk=True, max_length=max_length)
    r = collate(data.split(retain_split, n_retain), tok, max_length=max_length)
    return f, r


_SUBMODULES = ("bench", "claims", "metrics", "parity", "plots", "train", "widgets", "groups", "reference",
               "objectives", "batching", "data", "models", "config", "cli")


def __getattr__(name):  # lazy: keep `import geffect_lite` light
    if name in _SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    if name in ("get_objective", "list_objectives", "register_objective", "OBJECTIVES", "Objective", "Context"):
        from . import objectives
        return getattr(objectives, name)
    if name == "Reference":
        from .reference import Reference
        return Reference
    raise AttributeError(f"module 'geffect_lite' has no attribute {name!r}")


def reference_for(model, objective, forget, retain=None, keep_model: bool = False):
    """A Reference (θ_ref = the model *now*) caching exactly what ``objective`` needs on these batches."""
    from .objectives import Objective, get_objective
    from .reference import Reference
    obj = get_objective(objective) if isinstance(objective, str) else objective
    req = obj.ref_requirements(model)
    bs = [b for b in (forget, retain) if b is not None]
    return Reference.from_model(model, bs, full_logprobs=req.get("full_logprobs", False),
                                hidden_layers=tuple(req.get("hidden_layers", ()) or ()), keep_model=keep_model)
