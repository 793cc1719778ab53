"""The one cached entry for a protocol run: :func:`protocol_run` (``gl.protocol_run``).

``gl.run`` computes any run (uncached); ``gl.protocol_run("ga", S)`` is *the* way to get the trajectory of an
objective under a protocol :class:`~geffect_lite.protocol.Setting` — the notebooks, the demo, the explorer and the
claims' :class:`~geffect_lite.paper.runs.Runs` all call it. It loads the setting's model (:func:`loaded`, once per
process), unlearns a copy with ``gl.run`` recording the G-effects e = ∇R(D;θ)ᵀ∇L_u(D_u;θ) of every step
(Definition 1; the paper's Figs. 3–8 are such trajectories), measures the final model (:func:`final_measures`) and
keeps the trajectory

* in this process (up to :data:`MEMORY_RUNS` runs; every caller gets its own copy), and
* on disk, ``$GEFFECT_CACHE/runs/<key>.pkl`` (:mod:`geffect_lite.run_store`: a checksummed file stamped with the
  code version; a truncated, corrupted or outdated file is reported, deleted and recomputed, never read),

keyed by the model's weights, every field of the setting, the objective (and a user objective's code), its
hyper-parameters and what is recorded (:func:`cache_key`).

**Diverged runs.** A run *diverged* at the first step whose status is not "ok" (a NaN/inf loss or gradient stopped
it), whose risk or recorded G-effect is not finite, or whose forget risk exceeds :data:`DIVERGED_FACTOR`·ln|V| nats
per answer token (10·ln|V|: ten times the NLL of a uniform guess over the vocabulary, 69 nats for the 1,024-token
tiny models; under the ``seq_sum`` risk the bound is scaled by the mean answer length). It is stored as such —
``traj.config["diverged"] = {"step", "why", "bound"}`` (:func:`diverged`) — and each time it is computed or read
from disk one log line says so.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import hashlib
import json
import marshal
import math
import time
from typing import Optional

from . import run_store
from .protocol import Setting

__all__ = ["protocol_run", "cache_key", "final_measures", "loaded", "dataset", "diverged", "divergence",
           "clear_memory", "CACHE_VERSION", "DIVERGED_FACTOR", "MEMORY_RUNS"]

CACHE_VERSION = 1          # part of every key (and of the Table 1 analogue's): bump to abandon every cached run
DIVERGED_FACTOR = 10.0     # a run diverged once its forget risk exceeds this × ln|V| nats per answer token
MEMORY_RUNS = 128          # trajectories kept in this process (least recently used dropped first)
_MEMORY: "collections.OrderedDict[str, object]" = collections.OrderedDict()
CACHE_MODES = (True, "memory", False)


def loaded(model_name: str):
    """(model, tokenizer) of a setting, loaded once per process on :func:`config.device` (``--device``); runs work on
    copies (never modify it)."""
    from .config import device
    return _loaded(model_name, device())


@functools.lru_cache(maxsize=2)
def _loaded(model_name: str, device: str):
    from .models import load_model
    return load_model(model_name, device=None if device == "cpu" else device)


@functools.lru_cache(maxsize=1)
def dataset():
    """The synthetic TOFU-shaped data set (``gl.load_data()``), built once per process."""
    from .data import load_data
    return load_data()


def clear_memory() -> int:
    """Forget the trajectories kept in this process; returns how many there were."""
    n = len(_MEMORY)
    _MEMORY.clear()
    return n


def _request(objective: str, hparams: dict, S: Setting, record: dict) -> dict:
    """Everything that names a run except the model's weights: defaults filled in, probes by their code."""
    from .objectives import OBJECTIVES
    from .trajectory import Recording
    rec = dataclasses.asdict(Recording.from_kwargs({k: v for k, v in record.items() if k != "tokenizer"}))
    rec = {k: _fingerprint(v) if callable(v) else v for k, v in rec.items() if k != "tokenizer"}
    cls = OBJECTIVES.get(objective.split("+")[0])
    if cls is not None and getattr(cls, "fn", None) is not None:     # a user objective: keyed by its code too
        objective = f"{objective}:{_fingerprint(cls.fn)}"
    from .config import device
    dev = device()
    where = {} if dev == "cpu" else dict(device=dev.split(":")[0])    # a GPU run is never served on CPU
    return dict(v=CACHE_VERSION, setting=S.key(), objective=objective, hparams=hparams, record=rec, **where)


def cache_key(objective: str, hparams: dict, S: Setting, record: dict) -> str:
    """The disk-cache key of a run: the model's weights, every field of the setting, the objective, its
    hyper-parameters, and what is recorded (defaults filled in, so equal requests share one run). The code version
    is not part of the key: it is checked when the file is read (:mod:`~geffect_lite.run_store`)."""
    from .models import model_fingerprint
    blob = json.dumps(dict(_request(objective, hparams, S, record), model=model_fingerprint(S.model)),
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _fingerprint(fn) -> str:
    """A probe's identity for the cache: its name and a hash of its compiled code and constants (editing the body
    changes the key)."""
    code = getattr(fn, "__code__", None)
    blob = marshal.dumps((code.co_code, code.co_consts, code.co_names)) if code is not None else repr(fn).encode()
    return f"{getattr(fn, '__name__', 'fn')}:{hashlib.sha1(blob).hexdigest()[:10]}"


def final_measures(model, forget, retain, heldout) -> dict:
    """Measured on every run's final model (then freed): GA's identity at θ_T by two routes (e_u and −‖∇R_u‖²), the
    mean inverse confidence 1/p on the forget answers (Eq. 1), and the NLL of held-out retain rows."""
    import torch
    from . import nll
    from .context import Context
    from .engine import geffect
    from .engine.dots import named_params
    from .objectives import get_objective
    e_u = geffect(model, "ga", forget, retain, groups=False).e_u
    _, params = named_params(model)
    g = torch.autograd.grad(nll.risk(model, forget), params, allow_unused=True)
    with torch.no_grad():
        ic = get_objective("ga").summary(Context(model, forget, retain))["mean_inverse_confidence"]
        held = float(nll.risk(model, heldout))
    return dict(e_u=e_u, grad_sq=float(sum((x.double() ** 2).sum() for x in g if x is not None)),
                inverse_confidence=ic, heldout_nll=held)


def diverged(traj) -> Optional[dict]:
    """``{"step", "why", "bound"}`` when the run diverged (see the module docstring), else None."""
    return (getattr(traj, "config", None) or {}).get("diverged")


def divergence(traj, vocab: int, tokens_per_unit: float = 1.0) -> Optional[dict]:
    """The first step at which ``traj`` diverged, and why (None if it never did). ``tokens_per_unit``: answer
    tokens per unit of the risk (1 for ``token_mean``, the mean answer length for ``seq_sum``)."""
    bound = DIVERGED_FACTOR * math.log(vocab) * tokens_per_unit
    every = traj.config.get("every")
    for row in traj.steps.to_dict("records"):
        t = int(row["step"])
        if row.get("status", "ok") != "ok":
            msg = row.get("message")
            why = f"status {row.get('status')!r}" + (f" ({msg})" if isinstance(msg, str) and msg else "")
            return dict(step=t, why=why, bound=bound)
        recorded = ("e_u", "e_r") if every and t % every == 0 else ()
        for k in ("risk_u", "risk_r") + recorded:
            v = row.get(k)
            if v is None or not math.isfinite(float(v)):
                return dict(step=t, why=f"{k} = {v} is not finite", bound=bound)
        if row["risk_u"] > bound:
            return dict(step=t, why=f"forget risk {row['risk_u']:.4g} > {DIVERGED_FACTOR:g}·ln|V| = {bound:.4g}",
                        bound=bound)
    return None


def _say_diverged(tr, where: str) -> None:
    d = diverged(tr)
    if d:
        c = tr.config
        run_store.LOG.warning("run %s · %s · %s (%s) diverged at step %s: %s", c.get("objective"),
                              c.get("setting", {}).get("name"), c.get("setting", {}).get("model"), where,
                              d["step"], d["why"])


def _compute(objective: str, S: Setting, hparams: dict, progress: bool, record: dict):
    """Run ``objective`` under ``S`` on a copy of the setting's model; the trajectory with its setting, seconds,
    final measures (runs that stayed finite) and divergence flag in ``config``."""
    from .batching import collate
    from .config import flush_denormal
    from .objectives import get_objective
    from .setting_data import batches, heldout_rows, plan, reference
    from .trajectory import run
    base, tok = loaded(S.model)
    data = dataset()
    forget, retain = batches(data, tok, S)
    steps_plan = plan(data, tok, S)
    obj = get_objective(objective, **hparams)
    if "seed" in obj.hparams and "seed" not in hparams:            # RMU's random direction follows the setting
        obj = get_objective(objective, **hparams, seed=S.seed)
    ref = reference(base, obj, S, forget, retain, steps_plan)
    if record.get("probe") is not None:
        fn = record["probe"]
        record = dict(record, probe=lambda m, t: fn(m, t, forget, retain, ref))
    model = copy.deepcopy(base)
    t0 = time.time()
    try:
        with flush_denormal():
            tr = run(model, obj, forget, retain, ref, plan=steps_plan, tokenizer=tok, progress=progress,
                     desc=f"{obj.name} · {S.name} · {S.model}", **S.run_kwargs(), **record)
        tr.config.update(setting=dict(S.__dict__), seconds=time.time() - t0,
                         final=final_measures(model, forget, retain, collate(heldout_rows(data, S), tok))
                         if (tr.steps.status == "ok").all() else None)
    finally:
        del model
    per_unit = 1.0 if S.risk == "token_mean" else float((forget["labels"][:, 1:] != -100).sum()) / len(forget["ids"])
    tr.config["diverged"] = divergence(tr, base.config.vocab_size, per_unit)
    return tr


def protocol_run(objective: str, S: Setting, hparams: Optional[dict] = None, *, cache=True, progress: bool = True,
                 **record):
    """The trajectory of ``objective`` (with ``hparams``) under protocol setting ``S`` — computed once, then kept.

    ``cache``: True (this process and the disk), "memory" (this process only) or False (compute afresh, keep
    nothing). ``record``: ``gl.run``'s recording options (groups, instances, tokens, every …; the tokenizer is
    supplied). ``traj.config["final"]`` holds :func:`final_measures` of the final model (the model itself is freed);
    ``traj.config["diverged"]`` says whether and where the run diverged (:func:`diverged`). ``probe`` may be given
    as ``probe(model, t, forget, retain, ref)``: it is bound to the setting's batches and θ_ref here.
    """
    if not isinstance(S, Setting):
        raise TypeError(f"protocol_run needs a protocol Setting (gl.protocol.setting('paper', 'tiny')), got "
                        f"{type(S).__name__}; for any other run use gl.run")
    if not any(cache is m for m in CACHE_MODES):
        raise ValueError(f"cache must be one of True, 'memory', False; got {cache!r}")
    hparams = dict(hparams or {})
    mkey = json.dumps(_request(objective, hparams, S, record), sort_keys=True, default=str)
    if cache and mkey in _MEMORY:
        _MEMORY.move_to_end(mkey)
        return copy.deepcopy(_MEMORY[mkey])
    tr = None
    if cache is True:
        key = cache_key(objective, hparams, S, record)
        f = run_store.runs_dir() / f"{key}.pkl"
        got = run_store.read(f)
        if got is not None:
            tr = got[0]
            _say_diverged(tr, f"read from {f.name}")
    if tr is None:
        tr = _compute(objective, S, hparams, progress, record)
        _say_diverged(tr, "just computed")
        if cache is True:
            run_store.write(f, tr, dict(key=key, objective=objective, hparams=hparams, setting=S.name,
                                        model=S.model, setting_key=S.key(), seconds=tr.config.get("seconds"),
                                        diverged=diverged(tr)))
    if not cache:
        return tr
    _MEMORY[mkey] = tr
    while len(_MEMORY) > MEMORY_RUNS:
        _MEMORY.popitem(last=False)
    return copy.deepcopy(tr)
