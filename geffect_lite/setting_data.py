"""A protocol setting's data: the rows it unlearns and keeps, the batches its G-effects (Definition 1) are measured
on, its mini-batch plan, and θ_ref for a run under it.

* :func:`replication_authors` — which fictitious authors a replication forgets (the one place they are chosen);
* :func:`forget_rows` — D_u, the rows the setting unlearns; :func:`retain_rows` — the seed's retain rows (D_r);
  :func:`heldout_rows` — retain rows never used for unlearning (the held-out NLL of every run's final model).
* :func:`batches` — the ONE way to get (forget, retain) batches, from a split name (``gl.batches(data, tok,
  "forget05")``) or from a protocol :class:`~geffect_lite.protocol.Setting` (``gl.batches(data, tok, S)``).
* :func:`plan` — the mini-batch plan of a mini-batch setting (``table1``), None for full batch.
* :func:`reference` — θ_ref (the model before unlearning, on every batch a run uses) for objectives that need it.

Everything here is a pure function of (data, tokenizer, setting): nothing is cached in this module.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .batching import collate
from .data import FORGET_AUTHORS, N_AUTHORS, SMOL_TOFU_AUTHORS
from .protocol import Setting

__all__ = ["replication_authors", "forget_rows", "retain_pool", "retain_rows", "heldout_rows", "batches", "plan", "reference"]


def replication_authors(split: str, r: int) -> tuple:
    """The author indices replication ``r`` forgets for the forget split ``split`` (synthetic data).

    A replication changes what a second lab would change: WHICH fictitious authors are forgotten (the same number of
    them) and, through its seed, the retain rows and the mini-batch order. It does not change the model: the tiers
    were trained once, with one training seed; rebuilding ``tiny`` per replication was not done, so variation from
    the model's own training is not covered.

    * ``forget01`` / ``forget05`` (tiny, deep): r = 0 is the split itself (its last authors, as TOFU takes them);
      r > 0 draws as many authors from the 10 forget10 authors — the ones the retain-only twins never saw, so forget
      quality stays defined — with ``numpy.random.default_rng(r)``, redrawing (same generator) until the set differs
      from those of replications 0 … r−1: distinct sets while any remain (252 for forget05, 10 for forget01).
    * ``forget10``: only r = 0 (no author outside it is unseen by the twins).
    * ``smollm2`` (smollm2-tofu learned authors 92–99; the protocol forgets the last): r = 0 … 7 is author 99 − r.
    """
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
        raise ValueError(f"a replication is an int ≥ 0, got {r!r}")
    r = int(r)
    if split == "smollm2":
        if r >= SMOL_TOFU_AUTHORS:
            raise ValueError(f"smollm2-tofu learned {SMOL_TOFU_AUTHORS} authors: expected a replication in 0–"
                             f"{SMOL_TOFU_AUTHORS - 1}, got {r}")
        return (N_AUTHORS - 1 - r,)
    if split not in FORGET_AUTHORS:
        raise ValueError(f"no replications for split {split!r}; valid: smollm2, {', '.join(FORGET_AUTHORS)}")
    k, pool = FORGET_AUTHORS[split], list(range(N_AUTHORS - 10, N_AUTHORS))
    chosen = [tuple(range(N_AUTHORS - k, N_AUTHORS))]
    if r > 0 and k == len(pool):
        raise ValueError(f"{split} forgets all 10 authors the retain-only twins never saw: only replication 0")
    if r >= math.comb(len(pool), k):
        raise ValueError(f"{split} has {math.comb(len(pool), k)} distinct author sets: expected a replication in "
                         f"0–{math.comb(len(pool), k) - 1}, got {r}")
    for q in range(1, r + 1):
        rng = np.random.default_rng(q)
        pick = tuple(sorted(pool[i] for i in rng.choice(len(pool), size=k, replace=False).tolist()))
        while pick in chosen:
            pick = tuple(sorted(pool[i] for i in rng.choice(len(pool), size=k, replace=False).tolist()))
        chosen.append(pick)
    return chosen[r]


def _synthetic(data, S: Setting) -> None:
    if S.replication and data.source != "synthetic":
        raise ValueError(f"replication {S.replication} needs the synthetic data's author indices; {data.source} "
                         "data has only replication 0")


def forget_rows(data, S: Setting) -> list:
    """The rows ``S`` unlearns: its split (smollm2-tofu's own two authors for "smollm2"), or the last |n| of them;
    for replication r > 0 the same count from the replication's authors (:func:`replication_authors`)."""
    _synthetic(data, S)
    if S.split == "smollm2":
        from .data import smollm2_tofu_rows
        rows = smollm2_tofu_rows(data)[1]
        if S.replication:
            who = set(replication_authors(S.split, S.replication))
            rows = [r for r in smollm2_tofu_rows(data)[0] if r["author"] in who]
    elif S.replication:
        who = set(replication_authors(S.split, S.replication))
        rows = [r for r in _unseen_and_pool(data, S.split) if r["author"] in who]
    else:
        rows = data[S.split]
    return rows if S.n_forget is None else (rows[S.n_forget:] if S.n_forget < 0 else rows[:S.n_forget])


def _unseen_and_pool(data, split: str) -> list:
    """The split's retain pool and the forget10 rows, in author order (never ``retain_eval``)."""
    pool = data[data.retain_pool_of(split)]
    ids = {r["id"] for r in pool}
    return sorted(pool + [r for r in data["forget10"] if r["id"] not in ids], key=lambda r: r["author"])


def retain_pool(data, S: Setting) -> list:
    """Where retain rows are drawn: the split's retain pool, or the smollm2-tofu authors it learned and keeps. For
    replication r > 0: the retain pool plus the forget10 authors not forgotten, minus the forgotten ones."""
    _synthetic(data, S)
    if S.split == "smollm2":
        from .data import smollm2_tofu_rows
        ids = {r["id"] for r in forget_rows(data, S)}
        who = set(replication_authors(S.split, S.replication))
        return [r for r in smollm2_tofu_rows(data)[0] if r["id"] not in ids and r["author"] not in who]
    if S.replication:
        who = set(replication_authors(S.split, S.replication))
        return [r for r in _unseen_and_pool(data, S.split) if r["author"] not in who]
    return data[data.retain_pool_of(S.split)]


def retain_rows(data, S: Setting) -> list:
    """``S.n_retain`` rows of the retain pool, drawn without replacement with the setting's seed (in pool order)."""
    pool = retain_pool(data, S)
    idx = np.random.default_rng(S.seed).choice(len(pool), size=min(S.n_retain, len(pool)), replace=False)
    return [pool[i] for i in sorted(idx.tolist())]


def heldout_rows(data, S: Setting) -> list:
    """Retain rows never used for unlearning (held out): ``retain_eval``, or for smollm2-tofu the kept authors'
    rows outside this seed's retain batch."""
    if S.split == "smollm2":
        used = {r["id"] for r in retain_rows(data, S)}
        return [r for r in retain_pool(data, S) if r["id"] not in used]
    return data["retain_eval"]


def batches(data, tok, split_or_setting="forget05", n_forget=None, n_retain: int = 32, retain_split=None,
            max_length: int = 128):
    """(forget, retain) batches — the forget batch with refusal answers (``idk``, for PO/IdkDPO) and a retain batch.

    ``split_or_setting`` is either
      * a forget split name (``"forget01"``, ``"forget05"``, ``"forget10"``): the split (its first ``n_forget``
        rows when given) and the first ``n_retain`` rows of the matching retain pool (``retain_split`` to choose
        another; never the held-out ``retain_eval``); or
      * a protocol :class:`~geffect_lite.protocol.Setting`: the setting's whole forget rows and its seed's retain
        rows — everything is fixed by the setting, so the other arguments must stay at their defaults.
    """
    if isinstance(split_or_setting, Setting):
        extra = {k: v for k, v in dict(n_forget=n_forget, n_retain=n_retain, retain_split=retain_split,
                                       max_length=max_length).items() if v != _SPLIT_DEFAULTS[k]}
        if extra:
            raise TypeError(f"batches(data, tok, setting) takes its rows from the setting; drop "
                            f"{', '.join(f'{k}={v!r}' for k, v in extra.items())} (or change the setting: "
                            "S.replace(n_forget=..., n_retain=...))")
        S = split_or_setting
        return collate(forget_rows(data, S), tok, idk=True), collate(retain_rows(data, S), tok)
    if not isinstance(split_or_setting, str):
        raise TypeError(f"batches() takes a forget split name (e.g. 'forget05') or a protocol Setting "
                        f"(gl.protocol.setting(...)); got {type(split_or_setting).__name__} {split_or_setting!r}")
    retain_split = retain_split or data.retain_pool_of(split_or_setting)
    f = collate(data.split(split_or_setting, n_forget), tok, idk=True, max_length=max_length)
    r = collate(data.split(retain_split, n_retain), tok, max_length=max_length)
    return f, r


_SPLIT_DEFAULTS = dict(n_forget=None, n_retain=32, retain_split=None, max_length=128)


def plan(data, tok, S: Setting) -> Optional[list]:
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


def reference(model, objective, S: Setting, forget, retain, steps_plan=None):
    """θ_ref for a run of ``objective`` under ``S`` (the model before unlearning, on every batch the run uses);
    None when the objective needs none. ``objective=None``: what any objective may need (a table of objectives)."""
    from .objectives import get_objective
    from .reference import reference_for
    if objective is None:
        return reference_for(model, None, forget, retain, steps_plan or [])
    obj = get_objective(objective)
    return reference_for(model, obj, forget, retain, steps_plan or []) if obj.needs_ref else None
