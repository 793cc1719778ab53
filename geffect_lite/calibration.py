"""Calibration: the protocol's rule that fixes each learning rate, applied (``python -m geffect_lite protocol
--calibrate``).

The rule (stated in :mod:`geffect_lite.protocol`): on a ×2 grid, the learning rate at which GA's forget risk first
exceeds ln |V| — the NLL of a uniform guess over the vocabulary — closest to the middle of the run. GA is Eq. 1 of
Wang et al. 2025; each trial is an uncached :func:`~geffect_lite.run_cache.protocol_run`.
"""
from __future__ import annotations

import math
import time
from typing import Optional

import pandas as pd
from tqdm.auto import tqdm

from . import protocol
from .run_cache import loaded, protocol_run
from .trajectory import Trajectory

__all__ = ["crossing_step", "calibrate", "calibrate_models", "START", "START_LARGE"]


def crossing_step(traj: Trajectory, vocab: int) -> Optional[int]:
    """The first step whose forget risk exceeds ln |V| (None if it never does)."""
    s = traj.steps
    over = s[s.risk_u > math.log(vocab)]
    return int(over.step.iloc[0]) if len(over) else None


def calibrate(name: str, model: str, fast: bool = False, start: Optional[float] = None, max_tries: int = 12,
              progress: bool = True) -> pd.DataFrame:
    """Apply the rule: on a ×2 grid around ``start``, GA's first step with forget risk > ln |V|, closest to the
    middle of the run. Returns one row per tried lr (lr, crossing, distance, chosen)."""
    S0 = protocol.setting(name, model, fast=fast, lr=start or (1e-3 if name != "theory" else 0.1))
    base, tok = loaded(model)
    V, mid = base.config.vocab_size, S0.steps / 2
    tried = {}

    def measure(lr):
        if lr not in tried:
            tr = protocol_run("ga", S0.replace(lr=lr), cache=False, progress=False, every=None, weights=False)
            tried[lr] = crossing_step(tr, V)
        return tried[lr]
    lr = S0.lr
    bar = tqdm(range(max_tries), desc=f"calibrate {name} · {model}", disable=not progress)
    for _ in bar:
        c = measure(lr)
        bar.set_postfix(lr=f"{lr:.3g}", crossing=c)
        up = c is None or c > mid                  # crosses too late (or never): a larger rate
        nxt = lr * protocol.GRID_FACTOR if up else lr / protocol.GRID_FACTOR
        if nxt in tried:                           # bracketed: both neighbours known
            break
        lr = nxt
    rows = [dict(lr=l, crossing=c, distance=abs(c - mid) if c is not None else math.inf) for l, c in tried.items()]
    df = pd.DataFrame(rows).sort_values("lr").reset_index(drop=True)
    best = df.sort_values(["distance", "lr"]).index[0]
    df["chosen"] = df.index == best
    df.attrs.update(setting=name, model=model, fast=fast, steps=S0.steps, middle=mid, vocab=V)
    return df


#: where the ×2 grid search begins (the grid is start × 2^k: the start is part of the protocol)
START = {"paper": 1e-3, "theory": 0.25, "table1": 1e-3}
START_LARGE = {"paper": 1e-4, "theory": 0.02, "table1": 1e-4}     # SmolLM2-sized models


def calibrate_models(models=("tiny",), settings=protocol.SETTINGS, fast_too: bool = True, progress: bool = True) -> dict:
    """Calibrate every (setting, model[, fast]) and merge each result into ``results/calibration.json`` as soon as
    it is found (with provenance)."""
    grids = {}
    for model in models:
        for fast in ((False, True) if fast_too and model == "tiny" else (False,)):
            for name in settings:
                if name == "table1" and not protocol.tier(model, fast)["table1"]:
                    continue                   # no retain-only twin: no Table 1 analogue for this model
                t0 = time.time()
                start = (START_LARGE if model.startswith("smollm2") else START)[name]
                df = calibrate(name, model, fast=fast, start=start, progress=progress)
                grids[(name, model, fast)] = _save_grid(df, time.time() - t0, models)
    protocol.LR.clear()
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
    results.save("calibration", dict(rule=protocol.rule(),
                                     grids=list(grids.values()), chosen=chosen),
                 command=f"python -m geffect_lite protocol --calibrate --models {' '.join(models)}",
                 seconds=sum(x.get("seconds", 0) for x in grids.values()))
    return g
