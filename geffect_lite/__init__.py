"""geffect_lite — the G-effect of LLM unlearning objectives, computed live on a CPU.

A teaching toolkit for Wang, Zhou, Zhou, Shin, Han, Weinberger, *Rethinking LLM Unlearning Objectives: A Gradient
Perspective and Go Beyond*, ICLR 2025 (arXiv 2502.19301). The G-effect of an objective L_u on data D is
e = ∇R(D;θ)ᵀ∇L_u(D_u;θ) (Definition 1); a step of size η changes R by ≈ −η·e, so we want e_u ≪ 0 on the forget
set and e_r ≥ 0 on the retain set. The paper in our words: docs/paper.md.

Python API in five lines::

    import geffect_lite as gl
    model, tok = gl.load_model("tiny"); data = gl.load_data()
    forget, retain = gl.batches(data, tok, "forget05")      # or a protocol setting: gl.batches(data, tok, S)
    ge = gl.geffect(model, "npo", forget, retain, ref=gl.reference_for(model, "npo", forget, retain))
    print(ge.e_u, ge.e_r); ge.group_table()

Which function computes each equation and figure of the paper, and which notebook teaches it: the table "Where each
equation lives in the code" in docs/paper.md (the project's only copy of that map).

paper                                    function
=======================================  ===========================================================================
Definition 1 (e_u, e_r, per layer)       ``gl.geffect`` → ``engine.routes.measure``
the layer groups of Figs. 2–3            ``layers.group_names`` (thirds), ``layers.paper_layer`` ("middle")
Eq. 1 (GA, inverse confidence 1/p)       ``objectives.ga.GA``, ``objectives.weights.weight_view``
Eq. 2 (WGA)                              ``objectives.ga.WGA``
Eqs. 3–4 (NPO and its weights)           ``objectives.npo.NPO`` (``.seq_weight``)
Eq. 5 (PG-effect)                        ``engine.views.pg_effects``
Eq. 6 (TNPO), WTNPO                      ``objectives.npo.TNPO``, ``objectives.npo.WTNPO``
Eq. 7 (PO), IdkDPO                       ``objectives.po.PO``, ``objectives.po.IdkDPO``
Eq. 8 (RMU)                              ``objectives.rmu.RMU``
regularisers GD, KL, RR (Fig. 8)         ``objectives.regularisers``
trajectories (Figs. 3–8), ΔR ≈ −η·e      ``gl.run`` → ``trajectory.run`` (any run, uncached)
a protocol run, cached (Figs. 3–8)       ``gl.protocol_run`` → ``run_cache.protocol_run``
every cache, and clearing them           ``gl.clear_caches`` → ``caches.CACHES``
the paper's claims, Table 1              ``paper`` (``gl.paper.scoreboard``, ``gl.paper.table1``)
=======================================  ===========================================================================
=======
Which to use when: ``gl.run`` for any run on your own model and batches (uncached); ``gl.protocol_run`` for the
protocol's runs (cached on disk); ``gl.geffect`` for one measurement. The tooling (benchmark, notebook execution,
writing results, the course tools) is apart, in ``geffect_lite.tooling``.
"""
from __future__ import annotations

import importlib as _importlib
import os as _os

# Idle OpenMP threads must sleep, not spin: with spinning threads a busy 2-core machine runs torch ~50× slower.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.3.0"      # the one version (pyproject.toml reads it)

# Every name is loaded on first use, on purpose: importing torch costs seconds (15 s on a busy 2-core machine), and the
# command line must check its arguments — and ``import geffect_lite`` must return — before paying for it.
_NAMES = {
    "geffect": "engine", "GEffect": "engine", "pg_effects": "engine", "definition_1": "engine",
    "run": "trajectory", "Trajectory": "trajectory",
    "load_model": "models", "MODEL_NAMES": "models",
    "load_data": "data", "load_tofu": "data", "synthetic": "data",
    "collate": "batching", "forward": "nll", "risk": "nll", "EmptyBatchError": "nll", "NonFiniteError": "nll",
    "get_objective": "objectives", "list_objectives": "objectives", "register_objective": "objectives",
    "unregister_objective": "objectives", "Objective": "objectives", "Context": "context",
    "reference_for": "reference", "Reference": "reference",
    "setup_notebook": "teach", "fast_mode": "config", "set_seed": "config", "offline": "config",
    "cache_dir": "config", "batches": "setting_data", "protocol_run": "run_cache", "clear_caches": "caches",
}
_MODULES = ("plots", "widgets", "lessons", "metrics", "paper", "protocol", "setting_data", "run_cache", "run_store",
            "calibration", "caches", "teach", "models", "layers", "engine", "objectives", "results", "demo",
            "trajectory", "reference", "nll", "data", "batching", "config", "context")


def __getattr__(name):
    if name in _NAMES:
        return getattr(_importlib.import_module(f".{_NAMES[name]}", __name__), name)
    if name in _MODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'geffect_lite' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_MODULES))


__all__ = ["geffect", "run", "load_model", "load_data", "batches", "reference_for", "collate", "forward", "risk",
           "get_objective", "list_objectives", "register_objective", "unregister_objective", "Objective", "Context",
           "GEffect", "Trajectory", "Reference", "pg_effects", "setup_notebook", "fast_mode", "set_seed", "offline",
           "cache_dir", "load_tofu", "synthetic", "MODEL_NAMES", "EmptyBatchError", "NonFiniteError", "protocol_run",
           "clear_caches", "__version__"]
