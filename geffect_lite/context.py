"""The forward passes an objective and the risk share — one :class:`Context` per θ.

An objective (``geffect_lite.objectives``) asks the context for the forward pass on the forget batch, the refusal
(``idk``) batch or the retain batch, and for θ_ref's quantities (``geffect_lite.reference``). The G-effect engine
then takes the risks R(forget) and R(retain) (``geffect_lite.nll``) from the *same* cached forwards, so a G-effect
costs one forward per batch. Contexts are cheap: build a new one whenever θ changes.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from . import nll
from .batching import select
from .nll import EmptyBatchError, Forward

WHICH = ("forget", "idk", "retain")


class Context:
    """Lazily computes and caches forward passes so objective and risk share them.

    Args:
        model: the model being unlearned (θ).
        forget: the forget batch (from :func:`geffect_lite.batching.collate`; ``idk=True`` for PO / IdkDPO).
        retain: the retain batch (regularisers, GD).
        ref: a :class:`geffect_lite.reference.Reference` (θ_ref) for NPO, TNPO, WTNPO, IdkDPO, UNDIAL, KL, RR.

    ``ctx.fwd("forget" | "idk" | "retain")`` returns a cached :class:`nll.Forward` (build a new context after
    changing the model). A backward pass through a cached forward frees its graph: to take several gradients from
    one context, pass ``retain_graph=True``. ``ctx.forward(which, rows)`` is the one road to the model: ``fwd``
    caches what it returns, and the engine's retain chunks call it for a few rows at a time.
    """

    def __init__(self, model, forget: dict, retain: Optional[dict] = None, ref=None):
        self.model = model
        self.forget = forget
        self.retain = retain
        self.ref = ref
        self._fwd: Dict[str, Forward] = {}
        self._ref_logp: Dict[str, torch.Tensor] = {}   # only for contexts built by from_logp

    # ---------------------------------------------------------------------------------------------------------
    def batch(self, which: str = "forget", who: Optional[str] = None) -> dict:
        """The raw batch behind ``which`` (``"idk"`` = ``forget["idk"]``), with a clear error if missing."""
        obj = f"objective {who!r}" if who else "this objective"
        if which == "forget":
            if self.forget is None:
                raise ValueError(f"{obj} needs a forget batch: Context(model, forget, ...).")
            return self.forget
        if which == "idk":
            if self.forget is None or not isinstance(self.forget, dict) or self.forget.get("idk") is None:
                raise KeyError(f"{obj} needs refusal answers: the forget batch has no 'idk' entry. Build it with "
                               "collate(rows, tok, idk=True).")
            return self.forget["idk"]
        if which == "retain":
            if self.retain is None:
                raise ValueError(f"{obj} needs a retain batch: Context(model, forget, retain=retain_batch, ...).")
            return self.retain
        raise ValueError(f"unknown batch {which!r}; valid: {', '.join(WHICH)}")

    def fwd(self, which: str = "forget", hidden: bool = False, who: Optional[str] = None) -> Forward:
        """The (cached) forward pass on ``which``; recomputed with hidden states if ``hidden`` and not yet there."""
        f = self._fwd.get(which)
        if f is not None and (not hidden or f.hidden_states is not None):
            return f
        f = self.forward(which, hidden=hidden, who=who)
        self._fwd[which] = f
        return f

    def forward(self, which: str = "forget", rows=None, hidden: bool = False, who: Optional[str] = None) -> Forward:
        """A fresh (uncached) forward pass on ``which``, or on its ``rows`` only (trailing all-padding columns
        trimmed: a chunk has its own width) — every forward of the model on a context's batches comes through here."""
        if self.model is None:
            raise ValueError(f"this context has no model, so it cannot compute the {which!r} forward pass "
                             f"{'with hidden states' if hidden else ''} (it was built by Context.from_logp).")
        batch = self.batch(which, who)
        if rows is not None:
            batch = trim(select(batch, rows))
        return nll.forward(self.model, batch, hidden=hidden, what=f"{which} batch")

    def ref_logp(self, which: str = "forget", who: Optional[str] = None) -> torch.Tensor:
        """[B, T-1] θ_ref token log-probs of ``which`` (detached constants), on the model's device."""
        if which in self._ref_logp:
            return self._ref_logp[which]
        return self._ref(who).logp(self.batch(which, who)).to(**self._like(which))

    def ref_full_logprobs(self, which: str = "retain", who: Optional[str] = None) -> torch.Tensor:
        """[B, T-1, V] θ_ref log-softmax of ``which`` (KL regulariser, UNDIAL)."""
        return self._ref(who).full_logprobs(self.batch(which, who)).to(**self._like(which))

    def ref_hidden(self, which: str, layer: int, who: Optional[str] = None) -> torch.Tensor:
        """[B, T, d] θ_ref ``hidden_states[layer]`` of ``which`` (RR regulariser)."""
        return self._ref(who).hidden(self.batch(which, who), layer).to(**self._like(which))

    def cached(self, which: str) -> bool:
        """Has the forward pass on ``which`` been run (and kept) in this context?"""
        return which in self._fwd

    def clear(self) -> None:
        """Forget every cached forward (the context's only state; ``caches.py`` lists it)."""
        self._fwd.clear()

    def release(self, which: str) -> None:
        """Drop one cached forward pass (its logits and graph are freed once nothing else holds them)."""
        self._fwd.pop(which, None)

    # ---------------------------------------------------------------------------------------------------------
    def _ref(self, who):
        if self.ref is None:
            name = f"objective {who!r}" if who else "this objective"
            raise ValueError(
                f"{name} needs θ_ref (the model before unlearning): build it once, before unlearning, with "
                f"ref = gl.reference_for(model, objective, forget, retain), and pass it as ref=ref.")
        return self.ref

    def _like(self, which) -> dict:
        """device and dtype of ``which``'s forward, so θ_ref tensors mix with it (a cache built in fp32 works
        after model.double())."""
        f = self._fwd.get(which)
        if f is not None:
            return dict(device=f.logp.device, dtype=f.logp.dtype)
        if self.model is not None:
            p = next(self.model.parameters())
            dt = torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype
            return dict(device=p.device, dtype=dt)
        return dict(device=torch.device("cpu"))

    @classmethod
    def from_logp(cls, logp, mask=None, ref_logp=None) -> "Context":
        """A model-free context from known token log-probs — for checking closed forms by hand.

        Args:
            logp: a [B, T'] tensor (the forget answer) or a dict ``{"forget": …, "idk": …, "retain": …}``.
            mask: same structure, 1 on answer positions (default: all ones).
            ref_logp: same structure, θ_ref log-probs.
        Only objectives that need nothing but token log-probs work on it (GA, WGA, NPO, TNPO, SimNPO, IdkDPO…).
        """
        def as_dict(x):
            return x if isinstance(x, dict) or x is None else {"forget": x}
        logp, mask, ref_logp = as_dict(logp), as_dict(mask) or {}, as_dict(ref_logp) or {}
        ctx = cls(None, None)
        for which, lp in logp.items():
            lp = torch.as_tensor(lp)
            if not lp.is_floating_point():
                lp = lp.double()
            m = torch.as_tensor(mask.get(which, torch.ones_like(lp))).to(lp.dtype)
            if m.sum() == 0:
                raise EmptyBatchError(f"the {which} log-probs have no answer positions (mask is all 0).")
            B = lp.shape[0]
            batch = dict(ids=[str(i) for i in range(B)])
            ctx._fwd[which] = Forward(logits=None, logp=lp * m, mask=m, hidden_states=None, batch=batch)
        ctx.forget = ctx._fwd["forget"].batch if "forget" in ctx._fwd else {}
        if "idk" in ctx._fwd:
            ctx.forget["idk"] = ctx._fwd["idk"].batch
        if "retain" in ctx._fwd:
            ctx.retain = ctx._fwd["retain"].batch
        for which, r in ref_logp.items():
            r = torch.as_tensor(r)
            f = ctx._fwd.get(which)
            ctx._ref_logp[which] = r.to(f.logp.dtype) * f.mask if f is not None else r
        return ctx


def trim(batch: dict) -> dict:
    """Drop trailing columns that are padding in every row (right padding: a row chunk's own width)."""
    am = batch["attention_mask"]
    keep = int(am.any(0).nonzero().max()) + 1 if am.any() else am.shape[1]
    if keep == am.shape[1]:
        return batch
    return {k: (v[:, :keep] if isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] == am.shape[1] else v)
            for k, v in batch.items()}


__all__ = ["Context", "WHICH", "trim"]
