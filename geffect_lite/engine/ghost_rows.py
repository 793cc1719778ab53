"""Per-instance G-effects on the Gram route — the instance views for the price of the totals.

``ghost.py`` takes ⟨∇_W A, ∇_W B⟩ = Σ_{t,s} (δ^A_t·δ^B_s)(x_t·x_s) for a risk A and a direction B as the sum of a
matrix of summands P[t, s] over the risk's positions t and the direction's positions s. A causal LM keeps the rows of
a batch apart, so the partial sums of that same matrix split the G-effect per instance (``views.py`` names the two
views; the paper's instance-wise G-effects, Wang et al. 2025, arXiv 2502.19301):

    moved_b        = ⟨∇S_b, ∇L⟩  = c · Σ_{t ∈ row b} Σ_s P[t, s]     row sums, over every term of L
    contribution_b = ⟨∇R, ∇L_b⟩ =     Σ_t Σ_{s ∈ row b} P[t, s]     column sums, over the forget term only

where S_b = Σ_t ℓ_bt is instance b's summed NLL and c is R's normaliser (R = Σ_b S_b / c: tokens or instances).
A tensor that is not routed (a norm weight, a bias) gets the same split from the local tangents of ``rows.py``: δ at
its module's output, dotted per row with the output moved along ∇L (moved) or along ∇R (contribution); its ∇L and
∇R are formed anyway (they are small) and the forget term's δ at those outputs is kept from its backward.

Exact under the conditions of ``rows.exact_calls`` (every use of every tensor inside a recorded call of the module
that owns it, each call on a batch whose rows are the instances), checked for each backward before it runs, and
when every routed record has one row per instance. Otherwise :func:`start` or :meth:`Split.risk` returns None and
the measurement takes the formed route (``routes.measure``). The caller vouches that term b reads row b only
(every built-in objective; never assumed for a user's objective).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from .rows import Call, call_rows, dots_into, exact_calls

FORGET_TAGS = ("forget", "idk")        # the batches whose rows are the forget instances


class Split:
    """The per-instance state of one measurement: the tensors' split into routed / dense, the forget term's
    direction index ``k_f`` (None: no contribution view), ∇L on the dense tensors, the forget term's δ at the dense
    calls, and the running contribution sums."""

    def __init__(self, params, routed, calls: List[Call], k_f: Optional[int], n_forget: int):
        self.params, self.routed, self.k_f, self.n_forget = params, routed, k_f, n_forget
        self.all_calls = calls
        self.kept: List = []                                         # (call, δ of the forget term) on dense calls
        self.grad_dense: List = [None] * len(params)                 # ∇L on the dense tensors (V for moved)
        self.f_calls: List[Call] = []                                # the forget term's dense calls
        self.risk_dense: Dict[str, List] = {}                        # ∇R on the dense tensors, per risk set

    def dense(self, calls: Sequence[Call]) -> List[Call]:
        """The calls that own a tensor not on the Gram route (their per-row dots need the local tangents)."""
        return [c for c in calls if any(i not in self.routed for i in c.index)]

    def direction_done(self, ghost_dots) -> bool:
        """After the directions' backwards: keep the forget term's δ at the dense calls, form ∇L's dense part, and
        check that every routed record of the forget term has one row per instance."""
        for k, (outs, d_dense) in enumerate(ghost_dots.per_dir):
            for j, i in enumerate(ghost_dots.dense):
                g = d_dense[j]
                if g is not None:
                    self.grad_dense[i] = g if self.grad_dense[i] is None else self.grad_dense[i] + g
            if k == self.k_f and any(g is not None and r.rows != self.n_forget
                                     for r, g in zip(ghost_dots.recs, outs)):
                return False
        if self.k_f is not None:
            self.kept = [(c, g) for c, g in zip(self.f_calls, ghost_dots.caught or []) if g is not None]
        return True

    def risk(self, scalar: torch.Tensor, calls: Sequence[Call], n_rows: int, tags: Sequence[str]
             ) -> Optional["RiskRows"]:
        """The per-row accumulator for one backward of a risk (or a chunk of it) over ``n_rows`` rows, or None where
        the split is not exact for it. Call it before the backward."""
        live = exact_calls(calls, scalar, self.params, n_rows, tags)
        return None if live is None else RiskRows(self, live, n_rows, tags[0])

    def dense_contributions(self) -> Dict[str, torch.Tensor]:
        """The dense tensors' share of contribution_b for each risk set, once every risk's backward is done: the kept
        δ of the forget term along ∇R_u and ∇R_r, both directions in one pass over the kept calls (ẏ is linear in
        V, so a risk taken in row chunks enters once, summed)."""
        sets = list(self.risk_dense)
        acc = dots_into(torch.zeros(len(sets), self.n_forget, dtype=torch.float64), self.kept,
                        [self.risk_dense[rs] for rs in sets], self.n_forget)
        self.kept, self.risk_dense = [], {}
        return dict(zip(sets, acc))


class RiskRows:
    """Per-row sums for one backward of a risk: ``moved`` ([n_rows], over the risk's rows, before the normaliser)
    and ``contribution`` ([n_forget], over the forget instances: the routed tensors' share; the dense tensors' comes
    from :meth:`Split.dense_contributions`), fed by ``ghost.GhostDots.against``."""

    def __init__(self, split: Split, live: List[Call], n_rows: int, risk_set: str):
        self.split, self.n_rows, self.live = split, n_rows, live
        self.calls = split.dense(live)                               # whose δ the risk's backward must catch
        self.moved = torch.zeros(n_rows, dtype=torch.float64)
        self.contribution = torch.zeros(split.n_forget, dtype=torch.float64)
        self.grad_dense = split.risk_dense.setdefault(risk_set, [None] * len(split.params))   # ∇R, dense, summed
        self.ok = True

    def on_dense(self, i: int, g: torch.Tensor):
        self.grad_dense[i] = g if self.grad_dense[i] is None else self.grad_dense[i] + g

    def on_calls(self, gs: Sequence[Optional[torch.Tensor]]):
        """The risk's δ at the dense calls: their share of moved_b, along ∇L."""
        for c, g in zip(self.calls, gs):
            if g is not None:
                r = call_rows(c, g.detach(), self.split.grad_dense, self.n_rows)
                if r is not None:
                    self.moved += r.cpu()

    def on_pair(self, k: int, a, b, P: torch.Tensor):
        """One routed (risk record a, direction record b) product P [N_a, N_b]: row sums by a's rows; column sums by
        b's rows for the forget term."""
        if a.rows != self.n_rows:
            self.ok = False
            return
        self.moved += P.sum(1).reshape(self.n_rows, -1).sum(1, dtype=torch.float64).cpu()
        if k == self.split.k_f:
            self.contribution += P.sum(0).reshape(b.rows, -1).sum(1, dtype=torch.float64).cpu()

    def finish(self) -> Optional["RiskRows"]:
        """Release this backward's calls; None if a routed record's rows were not the risk's."""
        for c in self.live:                                          # done with: let the graph go
            c.out = c.stops = None
        return self if self.ok else None


def start(params, routed, calls: List[Call], terms: Dict[str, torch.Tensor], keys: List[str], n_forget: int):
    """(Split, the catch for ``ghost.GhostDots``) before the directions' backwards, or None where not exact: the
    forget term must be a direction of its own (or the whole objective) whose graph reads the forget instances
    only."""
    k_f = keys.index("forget") if "forget" in keys else (0 if list(terms) == ["forget"] else None)
    if k_f is None:
        return None
    live = exact_calls(calls, terms["forget"], params, n_forget, FORGET_TAGS)
    if live is None:
        return None
    split = Split(params, routed, calls, k_f, n_forget)
    split.f_calls = split.dense(live)
    return split, (k_f, split.f_calls)


__all__ = ["Split", "RiskRows", "start", "FORGET_TAGS"]
