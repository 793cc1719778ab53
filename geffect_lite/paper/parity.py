"""Parity mode: G-effects computed the way the official code does (docs/paper.md, "The official code's choices"),
to compare knowingly.

The official pass (``dataloader_ge.py``) walks the forget set in micro-batches of 4 QA pairs, each paired with 4
random retain pairs, and per micro-batch takes three separate gradients — g_u = ∇NLL(forget), g_obj = ∇L_u(forget),
g_r = ∇NLL(retain) — then smooths each *gradient* across micro-batches with an EMA, ḡ ← 0.6·ḡ + 0.4·g (the first
micro-batch initialises ḡ), and on every fourth call starting with the third (calls 3, 7, 11, …) prints
e_u = ⟨ḡ_obj, ḡ_u⟩ and e_r = ⟨ḡ_obj, ḡ_r⟩ per bucket: ``embed``, ``module1`` (blocks 0–9), ``module2`` (10–19),
``module3`` (blocks ≥ 20 and the final norm) and ``lm``. How the paper turns the prints of one checkpoint into one
plotted value is unknown, so every print is returned, with their mean and the last one.

Differences from :func:`geffect_lite.geffect` that a reader must keep in mind:

* the dot product of EMAs is **not** the EMA of dot products, and neither is the full-batch G-effect; with one micro-batch all three coincide (tested);
* the official code works in bf16 on a GPU; this runs in the model's dtype (fp32);
* the buckets are fixed for 32-block Llama-2-7B; for a 6-block model everything lands in ``module1``. Use
  ``layers.group_names(model, "official")`` to see the mapping.
"""
from __future__ import annotations

import random
from typing import List

import torch

import pandas as pd
from tqdm.auto import tqdm

from .. import nll
from ..batching import collate
from ..context import Context
from ..engine.validate import resolve_objective
from ..engine.dots import dot, named_params
from ..layers import group_names
from ..reference import reference_for

EMA = (0.6, 0.4)
OFFICIAL_NAMES = {"embed": "embed", "embed+lm (tied)": "embed", "shallow": "module1", "middle": "module2",
                  "deep": "module3", "lm": "lm"}


def parity(model, objective, forget_rows: List[dict], retain_rows: List[dict], tok, ref=None, *,
           micro_batch: int = 4, seed: int = 42, ema=EMA, print_every: int = 4, first_print: int = 3,
           progress: bool = False):
    """Official-code G-effects at the current θ. Returns (prints DataFrame, summary DataFrame).

    ``ref``: a Reference covering the micro-batches (for NPO-family objectives), or ``"auto"`` to build one from
    the current model (i.e. θ is θ_ref, the step-0 checkpoint).
    """
    obj = resolve_objective(objective)
    if not forget_rows or not retain_rows:
        raise ValueError("parity needs non-empty forget_rows and retain_rows")
    rng = random.Random(seed)
    names, params = named_params(model)
    gmap = group_names(model, "official")
    buckets = [OFFICIAL_NAMES[gmap[n]] for n in names]
    mbs = []
    for s in range(0, len(forget_rows), micro_batch):
        f = collate(forget_rows[s: s + micro_batch], tok, idk=True)
        r = collate(rng.sample(retain_rows, min(micro_batch, len(retain_rows))), tok)
        mbs.append((f, r))
    if ref == "auto" or (ref is None and (obj.needs_ref or obj.ref_requirements(model).get("full_logprobs"))):
        if ref is None:
            raise ValueError(f"objective {obj.name!r} needs θ_ref: pass ref='auto' (θ_ref = the current model) or "
                             "a Reference covering the micro-batches")
        ref = reference_for(model, obj, mbs)
    avg = {"u": None, "obj": None, "r": None}
    rows, n_print = [], 0
    a, b = ema
    for call, (f, r) in enumerate(tqdm(mbs, desc="parity", disable=not progress), start=1):
        ctx = Context(model, f, r, ref)
        g = {"obj": torch.autograd.grad(obj.loss(ctx), params, allow_unused=True),
             "u": torch.autograd.grad(nll.risk(model, f), params, allow_unused=True),
             "r": torch.autograd.grad(nll.risk(model, r), params, allow_unused=True)}
        for k, gk in g.items():
            gk = [torch.zeros_like(p) if x is None else x.detach() for p, x in zip(params, gk)]
            avg[k] = gk if avg[k] is None else [a * m + b * x for m, x in zip(avg[k], gk)]
        if call >= first_print and (call - first_print) % print_every == 0:
            n_print += 1
            for rs, key in (("forget", "u"), ("retain", "r")):
                acc = {}
                for bk, x, y in zip(buckets, avg["obj"], avg[key]):
                    acc[bk] = acc.get(bk, 0.0) + float(dot(x, y))
                rows += [dict(print=n_print, call=call, risk_set=rs, group=k, value=v) for k, v in acc.items()]
                rows.append(dict(print=n_print, call=call, risk_set=rs, group="total", value=sum(acc.values())))
    prints = pd.DataFrame(rows)
    if prints.empty:
        raise ValueError(f"{len(mbs)} micro-batches give no print (the official code prints from call {first_print} "
                         f"on, every {print_every}); pass more forget rows or first_print=1")
    summ = prints.groupby(["risk_set", "group"]).value.agg(mean="mean", last="last").reset_index()
    return prints, summ


__all__ = ["parity", "EMA", "OFFICIAL_NAMES"]
