"""Running a protocol setting: its data, its mini-batch plan, its θ_ref, and its trajectories — computed once and
cached on disk — plus the calibration that fixes each learning rate by the protocol's rule (``protocol.py``).

``trajectory("ga", S)`` is what notebooks and the claims call: it loads the setting's model, unlearns a copy with
``gl.run`` and caches the resulting :class:`~geffect_lite.trajectory.Trajectory` under ``$GEFFECT_CACHE/runs``, keyed
by the model's weights, every field of the setting, the objective, its hyper-parameters and what is recorded. GA
under the paper setting, used by five notebooks, is therefore computed once per machine.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import marshal
import math
import pickle
import time
from typing import Optional

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import nll
from . import protocol as P
from .context import Context
from .engine import geffect
from .engine.dots import named_params
from .batching import collate
from .config import cache_dir, flush_denormal
from .data import load_data
from .models import load_model, model_fingerprint
from .models.train import smollm2_tofu_rows
from .objectives import OBJECTIVES, get_objective
from .reference import reference_for
from .trajectory import Recording, Trajectory, run

CACHE_VERSION = 1          # bump when the engine's numbers change, so old cached trajectories are not reused


# --------------------------------------------------------------------------------------------------------------
# Data of a setting
# --------------------------------------------------------------------------------------------------------------
def forget_rows(data, S: P.Setting) -> list:
    """The rows ``S`` unlearns: its split (smollm2-tofu's own two authors for "smollm2"), or the last |n| of them."""
    rows = smollm2_tofu_rows(data)[1] if S.split == "smollm2" else data[S.split]
    return rows if S.n_forget is None else (rows[S.n_forget:] if S.n_forget < 0 else rows[:S.n_forget])


def retain_pool(data, S: P.Setting) -> list:
    """Where retain rows are drawn: the split's retain pool, or the smollm2-tofu authors it learned and keeps."""
    if S.split == "smollm2":
        ids = {r["id"] for r in forget_rows(data, S)}
        return [r for r in smollm2_tofu_rows(data)[0] if r["id"] not in ids]
    return data[data.retain_pool_of(S.split)]


def retain_rows(data, S: P.Setting) -> list:
    pool = retain_pool(data, S)
    idx = np.random.default_rng(S.seed).choice(len(pool), size=min(S.n_retain, len(pool)), replace=False)
    return [pool[i] for i in sorted(idx.tolist())]


def heldout_rows(data, S: P.Setting) -> list:
    """Retain rows never used for unlearning (held out): ``retain_eval``, or for smollm2-tofu the kept authors'
    rows outside this seed's retain batch."""
    if S.split == "smollm2":
        used = {r["id"] for r in retain_rows(data, S)}
        return [r for r in retain_pool(data, S) if r["id"] not in used]
    return data["retain_eval"]


def batches(data, tok, S: P.Setting):
    """(forget, retain) batches the G-effects are measured on: the whole forget rows and the seed's retain rows."""
    return collate(forget_rows(data, S), tok, idk=True), collate(retain_rows(data, S), tok)


def plan(data, tok, S: P.Setting) -> Optional[list]:
    """The mini-batch plan of a mini-batch setting (None for full batch): per epoch, the forget rows in balanced
    chunks of ≤ ``S.batch`` in a seeded order, each paired with as many fresh random retain rows."""
    if S.batch is None:
        return None
    rows, pool = forget_rows(data, S), retain_pool(data, S)
    k = max(1, math.ceil(len(rows) / S.batch))
    edges = np.linspace(0, len(rows), k + 1).round().astype(int)
    chunks = [collate(rows[a:b], tok, idk=True) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    rng = np.random.default_rng(S.seed)
    out = []
    while len(out) < S.steps:
        for i in rng.permutation(len(chunks)).tolist():
            n = chunks[i]["input_ids"].shape[0]
            ridx = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
            out.append((chunks[i], collate([pool[j] for j in sorted(ridx.tolist())], tok)))
    return out[:S.steps]


@functools.lru_cache(maxsize=2)
def loaded(model_name: str):
    """(model, tokenizer) of a setting, loaded once per process; runs work on copies."""
    return load_model(model_name)


@functools.lru_cache(maxsize=1)
def dataset():
    return load_data()


# --------------------------------------------------------------------------------------------------------------
# Trajectories, cached on disk
# --------------------------------------------------------------------------------------------------------------
def reference(model, objective, S: P.Setting, forget, retain, steps_plan=None):
    """θ_ref for a run of ``objective`` under ``S`` (the model before unlearning, on every batch the run uses);
    None when the objective needs none. ``objective=None``: what any objective may need."""
    if objective is None:                      # everything any objective may need (a table of objectives)
        return reference_for(model, None, forget, retain, steps_plan or [])
    obj = get_objective(objective)
    return reference_for(model, obj, forget, retain, steps_plan or []) if obj.needs_ref else None


def cache_key(objective: str, hparams: dict, S: P.Setting, record: dict) -> str:
    """The disk-cache key of a run: the model's weights, every field of the setting, the objective, its
    hyper-parameters, and what is recorded (defaults filled in, so equal requests share one run)."""
    rec = dataclasses.asdict(Recording.from_kwargs({k: v for k, v in record.items() if k not in ("tokenizer",)}))
    rec = {k: _fingerprint(v) if callable(v) else v for k, v in rec.items() if k != "tokenizer"}
    cls = OBJECTIVES.get(objective.split("+")[0])
    if cls is not None and getattr(cls, "fn", None) is not None:     # a user objective: keyed by its code too
        objective = f"{objective}:{_fingerprint(cls.fn)}"
    blob = json.dumps(dict(v=CACHE_VERSION, model=model_fingerprint(S.model), setting=S.key(), objective=objective,
                           hparams=hparams, record=rec), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _fingerprint(fn) -> str:
    """A probe's identity for the cache: its name and a hash of its compiled code and constants (editing the body
    changes the key)."""
    code = getattr(fn, "__code__", None)
    blob = marshal.dumps((code.co_code, code.co_consts, code.co_names)) if code is not None else repr(fn).encode()
    return f"{getattr(fn, '__name__', 'fn')}:{hashlib.sha1(blob).hexdigest()[:10]}"


def final_measures(model, forget, retain, heldout) -> dict:
    """Measured on every run's final model (then freed): GA's identity at θ_T by two routes (e_u and −‖∇R_u‖²), the
    mean inverse confidence 1/p on the forget answers, and the NLL of held-out retain rows."""
    e_u = geffect(model, "ga", forget, retain, groups=False).e_u
    _, params = named_params(model)
    g = torch.autograd.grad(nll.risk(model, forget), params, allow_unused=True)
    with torch.no_grad():
        ic = get_objective("ga").summary(Context(model, forget, retain))["mean_inverse_confidence"]
        held = float(nll.risk(model, heldout))
    return dict(e_u=e_u, grad_sq=float(sum((x.double() ** 2).sum() for x in g if x is not None)),
                inverse_confidence=ic, heldout_nll=held)


def trajectory(objective: str, S: P.Setting, hparams: Optional[dict] = None, *, cache: bool = True,
               progress: bool = True, **record) -> Trajectory:
    """The trajectory of ``objective`` (with ``hparams``) under setting ``S``, from the disk cache when it exists.

    ``record``: ``gl.run``'s recording options (groups, instances, tokens, every …; the tokenizer is supplied).
    ``traj.config["final"]`` holds :func:`final_measures` of the final model (the model itself is freed).
    ``probe`` may be given as ``probe(model, t, forget, retain, ref)``: it is bound to the setting's batches and θ_ref
    here.
    """
    hparams = dict(hparams or {})
    key = cache_key(objective, hparams, S, record)
    f = cache_dir() / "runs" / f"{key}.pkl"
    if cache and f.exists():
        try:
            with open(f, "rb") as fh:
                return pickle.load(fh)
        except Exception:
            f.unlink(missing_ok=True)              # a partial or stale file: recompute
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
    if cache:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(tr, fh)
        tmp.replace(f)
    return tr


# --------------------------------------------------------------------------------------------------------------
# Calibration: the protocol's rule, applied
# --------------------------------------------------------------------------------------------------------------
def crossing_step(traj: Trajectory, vocab: int) -> Optional[int]:
    """The first step whose forget risk exceeds ln |V| (None if it never does)."""
    s = traj.steps
    over = s[s.risk_u > math.log(vocab)]
    return int(over.step.iloc[0]) if len(over) else None


def calibrate(name: str, model: str, fast: bool = False, start: Optional[float] = None, max_tries: int = 12,
              progress: bool = True) -> pd.DataFrame:
    """Apply the rule: on a ×2 grid around ``start``, GA's first step with forget risk > ln |V|, closest to the
    middle of the run. Returns one row per tried lr (lr, crossing, distance, chosen)."""
    S0 = P.setting(name, model, fast=fast, lr=start or (1e-3 if name != "theory" else 0.1))
    base, tok = loaded(model)
    V, mid = base.config.vocab_size, S0.steps / 2
    tried = {}

    def measure(lr):
        if lr not in tried:
            tr = trajectory("ga", S0.replace(lr=lr), cache=False, progress=False, every=None, weights=False)
            tried[lr] = crossing_step(tr, V)
        return tried[lr]
    lr = S0.lr
    bar = tqdm(range(max_tries), desc=f"calibrate {name} · {model}", disable=not progress)
    for _ in bar:
        c = measure(lr)
        bar.set_postfix(lr=f"{lr:.3g}", crossing=c)
        up = c is None or c > mid                  # crosses too late (or never): a larger rate
        nxt = lr * P.GRID_FACTOR if up else lr / P.GRID_FACTOR
        if nxt in tried:                           # bracketed: both neighbours known
            break
        lr = nxt
    rows = [dict(lr=l, crossing=c, distance=abs(c - mid) if c is not None else math.inf) for l, c in tried.items()]
    df = pd.DataFrame(rows).sort_values("lr").reset_index(drop=True)
    best = df.sort_values(["distance", "lr"]).index[0]
    df["chosen"] = df.index == best
    df.attrs.update(setting=name, model=model, fast=fast, steps=S0.steps, middle=mid, vocab=V)
    return df


__all__ = ["forget_rows", "retain_pool", "retain_rows", "batches", "plan", "loaded", "dataset", "reference",
           "trajectory", "final_measures", "crossing_step", "calibrate", "cache_key", "CACHE_VERSION", "heldout_rows"]


#: where the ×2 grid search begins (the grid is start × 2^k: the start is part of the protocol)
START = {"paper": 1e-3, "theory": 0.25, "table1": 1e-3}
START_LARGE = {"paper": 1e-4, "theory": 0.02, "table1": 1e-4}     # SmolLM2-sized models


def calibrate_models(models=("tiny",), settings=P.SETTINGS, fast_too: bool = True, progress: bool = True) -> dict:
    """Calibrate every (setting, model[, fast]) and merge each result into ``results/calibration.json`` as soon as
    it is found (with provenance)."""
    grids = {}
    for model in models:
        for fast in ((False, True) if fast_too and model == "tiny" else (False,)):
            for name in settings:
                if name == "table1" and not P.tier(model, fast)["table1"]:
                    continue                   # no retain-only twin: no Table 1 analogue for this model
                t0 = time.time()
                start = (START_LARGE if model.startswith("smollm2") else START)[name]
                df = calibrate(name, model, fast=fast, start=start, progress=progress)
                grids[(name, model, fast)] = _save_grid(df, time.time() - t0, models)
    P.LR.clear()
    return grids


def _save_grid(df: pd.DataFrame, seconds: float, models) -> dict:
    from .tooling import results
    a = df.attrs
    g = dict(setting=a["setting"], model=a["model"], fast=a["fast"], steps=a["steps"], middle=a["middle"],
             vocab=a["vocab"], grid=df.to_dict("records"), lr=float(df[df.chosen].lr.iloc[0]), seconds=seconds)
    old = results.load("calibration") or {}
    grids = {(x["setting"], x["model"], bool(x["fast"])): x for x in old.get("grids", [])}
    grids[(g["setting"], g["model"], bool(g["fast"]))] = g
    chosen = [dict(setting=x["setting"], model=x["model"], fast=x["fast"], lr=x["lr"]) for x in grids.values()]
    results.save("calibration", dict(rule=P.rule(),
                                     grids=list(grids.values()), chosen=chosen),
                 command=f"python -m geffect_lite protocol --calibrate --models {' '.join(models)}",
                 seconds=sum(x.get("seconds", 0) for x in grids.values()))
    return g
