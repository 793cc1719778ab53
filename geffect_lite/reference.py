"""θ_ref without a second model: the frozen reference model's quantities, computed once before unlearning.

NPO, TNPO, WTNPO, IdkDPO, UNDIAL and the KL / RR regularisers compare the current model π_θ with the model
before unlearning, π_ref. The official code keeps a second full copy of the model for that. Here
:meth:`Reference.from_model` runs the model once on every batch that unlearning (or a G-effect evaluation)
will see and caches what the objectives need, keyed by a fingerprint of the batch:

=====================  ==============  ==================================================  =====================
quantity               shape           used by                                             cost (floats)
=====================  ==============  ==================================================  =====================
token log-probs        [B, T-1]        NPO, TNPO, WTNPO, IdkDPO (also the nested ``idk``)  B·T per batch
full log-softmax       [B, T-1, V]     KL regulariser (retain batch), UNDIAL (forget)       B·T·V per batch
hidden states [L]      [B, T, d]       RR regulariser (retain batch)                        B·T·d per layer
=====================  ==============  ==================================================  =====================

The full log-softmax is the expensive one: KL costs B·T·V floats per retain batch. For SmolLM2 (V = 49,152) a
batch of 4 sequences × 40 positions is 4·40·49,152·4 bytes ≈ 31 MB; for the tiny model (V = 1,024) it is
≈ 0.7 MB. A whole unlearning run over many batches can therefore exceed memory: ``max_bytes`` (1 GiB by default)
guards against that, and ``keep_model=True`` keeps a frozen deep copy instead (doubling model memory, as the
official code does) and computes anything that is not cached on demand.

Everything is computed under ``torch.no_grad``, detached and cloned, so it is a constant for autograd (every
objective treats θ_ref's quantities as detached). :func:`reference_for` is the one builder every caller uses.
"""
from __future__ import annotations

import copy
import hashlib
from typing import Dict, Iterable, Optional, Sequence, Union

import torch

from . import nll
from .layers import paper_layer
from .objectives import get_objective


def fingerprint(batch: dict) -> str:
    """A hash of a batch's ``input_ids``, ``attention_mask`` and ``labels`` (device- and dtype-independent)."""
    h = hashlib.sha1()
    for k in ("input_ids", "attention_mask", "labels"):
        t = batch.get(k)
        if t is None:
            continue
        h.update(f"{k}{tuple(t.shape)};".encode())
        h.update(_plain(t).tobytes())
    return h.hexdigest()


def _plain(t: torch.Tensor):
    """int64 numpy copy of ``t``; inside torch.func transforms (jvp) every new tensor is wrapped, so unwrap first."""
    f = torch._C._functorch
    while f.is_functorch_wrapped_tensor(t):
        t = f.get_unwrapped(t)
    with torch.no_grad(), torch._C._DisableFuncTorch():
        return t.detach().cpu().to(torch.int64).contiguous().numpy()


def _is_half(dtype) -> bool:
    return dtype in (torch.float16, torch.bfloat16)


def _full_logprobs(fwd: nll.Forward) -> torch.Tensor:
    lg = fwd.logits
    return torch.log_softmax(lg.float() if _is_half(lg.dtype) else lg, -1)


def _describe_batch(batch: dict) -> str:
    ids = batch.get("ids")
    shape = tuple(batch["input_ids"].shape) if "input_ids" in batch else "?"
    if ids:
        shown = ", ".join(map(str, ids[:4])) + (", …" if len(ids) > 4 else "")
        return f"batch of shape {shape} with ids [{shown}]"
    return f"batch of shape {shape}"


def _todo(batches) -> list:
    """(key, batch, is_main) to compute: every batch and its nested ``idk`` batch, duplicates dropped."""
    todo, seen = [], set()
    for k, b in enumerate(batches):
        nll.check_batch(b, f"reference batch {k}")
        for bb, big in ((b, True), (b.get("idk"), False)):
            if bb is not None and fingerprint(bb) not in seen:
                seen.add(fingerprint(bb))
                todo.append((fingerprint(bb), bb, big))
    return todo


class CacheTooLarge(ValueError, MemoryError):
    """The θ_ref cache would exceed ``max_bytes`` (a ValueError for callers, a MemoryError for the auto fallback)."""


class Reference:
    """Quantities of the frozen reference model θ_ref, cached per batch (see the module docstring).

    Build it with :meth:`from_model` *before* unlearning changes the model. Look-ups:
    :meth:`logp`, :meth:`full_logprobs`, :meth:`hidden`; costs: :meth:`memory_bytes`, :meth:`describe`.
    """

    def __init__(self):
        self._cache: Dict[str, dict] = {}
        self.model = None                 # frozen deep copy when keep_model=True
        self.full = False                 # were full log-softmaxes cached?
        self.hidden_layers: tuple = ()    # which hidden_states indices were cached
        self.n_layers: Optional[int] = None

    # ------------------------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, batches: Union[dict, Iterable[dict]], full_logprobs: bool = False,
                   hidden_layers: Sequence[int] = (), keep_model: bool = False,
                   max_bytes: int = 2 ** 30) -> "Reference":
        """Run ``model`` (as it is now: θ_ref) on every batch and cache what objectives need.

        Args:
            model: the model before unlearning.
            batches: one batch or an iterable of batches (forget and retain). A forget batch's nested
                ``batch["idk"]`` is cached too (token log-probs only: IdkDPO needs nothing else).
            full_logprobs: also cache the full log-softmax [B, T-1, V] (KL regulariser, UNDIAL).
            hidden_layers: also cache ``hidden_states[L]`` [B, T, d] for these L (HF convention: 0 = embedding
                output, num_hidden_layers = last block, after the final norm for Llama) — RR regulariser.
            keep_model: keep a frozen deep copy of the model (doubles model memory). Then only the token
                log-probs are cached up front; full log-softmaxes and hidden states, and anything for a batch
                not listed here, are computed on demand (and not cached, so memory stays flat over a run).
            max_bytes: refuse (ValueError) to build a cache larger than this.
        """
        if isinstance(batches, dict):
            batches = [batches]
        batches = list(batches)
        ref = cls()
        ref.full = bool(full_logprobs)
        cfg = getattr(model, "config", None)
        ref.n_layers = getattr(cfg, "num_hidden_layers", None)
        layers = tuple(int(L) for L in hidden_layers)
        for L in layers:
            if ref.n_layers is not None and not 0 <= L <= ref.n_layers:
                raise ValueError(f"hidden_layers: layer {L} is out of range; the model has hidden_states[0.."
                                 f"{ref.n_layers}] (0 = embedding output).")
        ref.hidden_layers = layers

        todo = _todo(batches)
        need = ref._estimate_bytes(model, todo, keep_model)
        if need > max_bytes:
            raise CacheTooLarge(
                f"the θ_ref cache would need {need:,} bytes ({need / 2**20:.1f} MiB) for {len(todo)} batches "
                f"(full_logprobs={ref.full}, hidden_layers={layers}), more than max_bytes={max_bytes:,}. Pass "
                "fewer batches, drop full_logprobs (only KL and UNDIAL need it), raise max_bytes, or use "
                "keep_model=True (keeps a frozen copy of the model instead: doubles model memory).")

        ref._fill(model, todo, layers, keep_model)
        return ref

    def _fill(self, model, todo, layers, keep_model) -> None:
        """Run the model (eval mode, no grad) on every batch of ``todo``; keep a frozen copy if ``keep_model``."""
        was_training = model.training
        model.eval()                       # θ_ref is a deterministic function: no dropout while caching it
        try:
            with torch.no_grad():
                for key, bb, big in todo:
                    self._cache[key] = self._compute(model, bb, full=big and self.full and not keep_model,
                                                     layers=layers if (big and not keep_model) else ())
        finally:
            model.train(was_training)
        if keep_model:
            m = copy.deepcopy(model)
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
            self.model = m

    # ------------------------------------------------------------------------------------------------------
    def _estimate_bytes(self, model, todo, keep_model) -> int:
        p = next(model.parameters())
        es_logp = 4 if _is_half(p.dtype) else p.element_size()   # shifted_logp upcasts half precision
        cfg = getattr(model, "config", None)
        V = getattr(cfg, "vocab_size", None)
        d = getattr(cfg, "hidden_size", None)
        total = 0
        for _, b, big in todo:
            B, T = b["input_ids"].shape
            total += B * (T - 1) * es_logp
            if big and not keep_model:
                if self.full:
                    total += B * (T - 1) * (V or 0) * es_logp
                total += len(self.hidden_layers) * B * T * (d or 0) * p.element_size()
        return total

    def _compute(self, model, batch, full: bool, layers: tuple) -> dict:
        fwd = nll.forward(model, batch, hidden=bool(layers), what="reference batch")
        entry = {"logp": fwd.logp.detach().clone(), "ids": list(batch.get("ids") or [])}
        if full:
            entry["full"] = _full_logprobs(fwd).detach().clone()
        if layers:
            entry["hidden"] = {L: fwd.hidden_states[L].detach().clone() for L in layers}
        return entry

    def _on_demand(self, batch, what: str, full=False, layers=()):
        with torch.no_grad():
            return self._compute(self.model, batch, full=full, layers=layers)

    def _miss(self, batch, what: str, why: str):
        raise KeyError(
            f"θ_ref {what} for this {_describe_batch(batch)} {why}. A Reference only knows the batches given to "
            "Reference.from_model(model, batches, ...) before unlearning: include this batch there (forget and "
            "retain batches, built once and reused), or build it with keep_model=True to compute misses "
            "from a frozen copy of the model.")

    # ------------------------------------------------------------------------------------------------------
    def __contains__(self, batch) -> bool:
        return fingerprint(batch) in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def logp(self, batch: dict) -> torch.Tensor:
        """[B, T-1] token log-probs of θ_ref (0 off the answer), as ``nll.forward(ref_model, batch).logp``."""
        e = self._cache.get(fingerprint(batch))
        if e is not None:
            return e["logp"]
        if self.model is not None:
            return self._on_demand(batch, "log-probs")["logp"]
        self._miss(batch, "log-probs", "were not cached")

    def full_logprobs(self, batch: dict) -> torch.Tensor:
        """[B, T-1, V] log-softmax of θ_ref at every predicting position (KL regulariser, UNDIAL)."""
        e = self._cache.get(fingerprint(batch))
        if e is not None and "full" in e:
            return e["full"]
        if self.model is not None:
            return self._on_demand(batch, "full log-probs", full=True)["full"]
        if e is None:
            self._miss(batch, "full log-probs", "were not cached")
        self._miss(batch, "full log-probs", "were not cached (the Reference was built with full_logprobs=False;"
                   " KL and UNDIAL need full_logprobs=True)")

    def hidden(self, batch: dict, layer: int) -> torch.Tensor:
        """[B, T, d] ``hidden_states[layer]`` of θ_ref (RR regulariser)."""
        e = self._cache.get(fingerprint(batch))
        if e is not None and layer in e.get("hidden", {}):
            return e["hidden"][layer]
        if self.model is not None:
            return self._on_demand(batch, "hidden states", layers=(layer,))["hidden"][layer]
        if e is None:
            self._miss(batch, f"hidden states (layer {layer})", "were not cached")
        self._miss(batch, f"hidden states at layer {layer}",
                   f"were not cached (cached layers: {self.hidden_layers}; pass hidden_layers=({layer},))")

    # ------------------------------------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes held by the cache (plus the kept model's parameters when keep_model=True)."""
        return self.describe()["total_bytes"]

    def describe(self) -> dict:
        """What is cached and what it costs, in bytes."""
        lp = sum(e["logp"].numel() * e["logp"].element_size() for e in self._cache.values())
        fu = sum(e["full"].numel() * e["full"].element_size() for e in self._cache.values() if "full" in e)
        hi = sum(h.numel() * h.element_size() for e in self._cache.values() for h in e.get("hidden", {}).values())
        mb = 0
        if self.model is not None:
            mb = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return dict(batches=len(self._cache), full_logprobs=self.full, hidden_layers=self.hidden_layers,
                    keep_model=self.model is not None, logp_bytes=lp, full_logprobs_bytes=fu, hidden_bytes=hi,
                    model_bytes=mb, total_bytes=lp + fu + hi + mb)

    def __repr__(self) -> str:
        d = self.describe()
        return (f"Reference(batches={d['batches']}, full_logprobs={d['full_logprobs']}, "
                f"hidden_layers={d['hidden_layers']}, keep_model={d['keep_model']}, "
                f"{d['total_bytes'] / 2**20:.2f} MiB)")


def _flatten(batches) -> list:
    out = []
    for b in batches:
        if b is None:
            continue
        if isinstance(b, dict):
            out.append(b)
        elif isinstance(b, (list, tuple)):
            out += _flatten(b)
        else:
            raise TypeError(f"expected batches (dicts from collate), lists of them or (forget, retain) pairs; got "
                            f"{type(b).__name__}")
    return list({id(b): b for b in out}.values())


def reference_for(model, objective, *batches, keep_model: Optional[bool] = None,
                  max_bytes: int = 2 ** 30) -> Reference:
    """θ_ref — the model *as it is now* — caching what ``objective`` needs on ``batches`` (forget and retain
    batches, or a whole mini-batch plan of (forget, retain) pairs). ``objective=None`` caches what any objective
    may need (full log-probs and the middle layer's hidden states). ``keep_model``: keep a frozen copy instead of
    the cache (None: only when the cache would exceed ``max_bytes``, e.g. KL over SmolLM2's 49k-token vocabulary)."""
    if objective is None:
        req = dict(full_logprobs=True, hidden_layers=(paper_layer(model),))
    else:
        req = get_objective(objective).ref_requirements(model)
    bs = _flatten(batches)
    if not bs:
        raise ValueError("reference_for needs at least one batch (the forget batch, and the retain batch)")
    kw = dict(full_logprobs=req["full_logprobs"], hidden_layers=tuple(req["hidden_layers"] or ()))
    if keep_model is None:
        try:
            return Reference.from_model(model, bs, max_bytes=max_bytes, **kw)
        except CacheTooLarge:
            keep_model = True
    return Reference.from_model(model, bs, keep_model=keep_model, max_bytes=max_bytes, **kw)


__all__ = ["Reference", "fingerprint", "reference_for"]
