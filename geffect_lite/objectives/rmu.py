"""RMU's forget term — Eq. 8 of Wang et al. 2025 (arXiv 2502.19301); notebook 08.

RMU does not touch the likelihood: it pushes the hidden representation h at one layer towards a fixed random vector,
L = E ‖h(s_u) − c·u‖², so only the parameters *before* that layer get a gradient. Which layer, and how large c, decide
its G-effect: the paper finds the middle layer the most effective (its 22nd of 33, Fig. 7). "Middle" is defined once
for the whole package: :func:`geffect_lite.layers.paper_layer`.
"""
from __future__ import annotations

import torch

from ..layers import paper_layer
from .base import Objective, choice, integer, layer_or_none, n_answer, positive


def check_layer(name: str, layer: int, model) -> int:
    """``layer`` if it indexes ``hidden_states`` of ``model`` (0 … num_hidden_layers), else ValueError."""
    L = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if L is None:
        raise ValueError("cannot tell the model's number of layers (config.num_hidden_layers is missing); pass an "
                         "explicit layer.")
    if not 0 <= layer <= L:
        raise ValueError(f"{name}={layer!r} is out of range: this model has hidden_states[0..{L}] "
                         f"(0 = embedding output, {L} = last block).")
    return layer


def direction(seed: int, d: int) -> torch.Tensor:
    """RMU's random direction u ~ U[0, 1)^d in float64, drawn from a generator seeded with ``seed``: the same
    (seed, d) always gives the same u (recomputed on each call — d random numbers — so nothing is kept)."""
    return torch.rand(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class RMU(Objective):
    """RMU's forget term (Eq. 8, the official code's form):
    L = (1/|P|) Σ_{(b,t)∈P} (1/d) ‖h_bt − target‖², h = ``hidden_states[layer]`` (0 = embedding output), P = the
    positions whose *next* token is an answer token, pooled over the batch. The target is a constant. Not a
    weighted-NLL form; parameters after ``layer`` get exactly zero gradient. ``token_terms`` [B, T-1] are the
    per-position distances / |P| (position t predicts answer token t+1, the frame of every other objective).

    Hyper-parameters:
      * ``layer`` (int ≥ 0 or None), default **None = the middle layer**, :func:`~geffect_lite.layers.paper_layer`
        (tiny: 4; SmolLM2: 20; Llama-2-7B: 21, the paper's 22nd layer). open-unlearning's "layer 7" (a block
        output) is ``hidden_states[8]``.
      * ``c`` (> 0), default **2** (official code, open-unlearning); Fig. 7 uses 5.
      * ``target``: **"raw"** (official code and paper: c·u, ‖c·u‖ ≈ c·√(d/3)) or "unit" (open-unlearning: c·u/‖u‖).
      * ``seed`` (int), default 0: u ~ U[0, 1)^d is drawn from a generator seeded with ``seed``, in float64 — a
        pure function of (seed, d) (:func:`direction`), so training and G-effects see the same target.

    The loss never changes the objective: the layer is resolved from ``ctx.model`` on each call
    (:meth:`layer_for`); :meth:`bind` stores it in ``hparams`` once, before a run, for the record.
    """
    name = "rmu"
    equation = "L = (1/|P|) Σ_(b,t)∈P ‖h_bt − c·u‖²/d,  h = hidden_states[layer]   (Eq. 8)"
    weight = "— (hidden-state distance)"
    notebook = "08"
    defaults = {"layer": None, "c": 2.0, "target": "raw", "seed": 0}
    checks = {"layer": layer_or_none, "c": positive, "target": choice("raw", "unit"), "seed": integer}

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self._layer_arg = self.hparams["layer"]

    def layer_for(self, model) -> int:
        """The ``hidden_states`` index read for ``model``: the given layer, or the model's middle layer (checked)."""
        L = self._layer_arg if self._layer_arg is not None else paper_layer(model, "middle")
        return check_layer("layer", L, model)

    def bind(self, model):
        self.hparams["layer"] = self.layer_for(model)
        return self

    @property
    def hidden_layers(self):
        L = self.hparams["layer"]
        return () if L is None else (L,)

    def u(self, d: int) -> torch.Tensor:
        """The random direction u ~ U[0, 1)^d (float64) of this objective's seed: :func:`direction`."""
        return direction(self.hparams["seed"], d)

    def target_vector(self, d: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """c·u (``target="raw"``) or c·u/‖u‖ (``"unit"``)."""
        u = self.u(d)
        if self.hparams["target"] == "unit":
            u = u / u.norm()
        return (self.hparams["c"] * u).to(dtype=dtype, device=device)

    def token_terms(self, ctx):
        layer = self.layer_for(ctx.model) if ctx.model is not None else self.hparams["layer"]
        f = ctx.fwd("forget", hidden=True, who=self.name)
        h = f.hidden_states[layer][:, :-1, :]                             # [B, T-1, d]: position t predicts t+1
        dist = ((h - self.target_vector(h.shape[-1], h.dtype, h.device)) ** 2).mean(-1)   # [B, T-1]
        return dist * f.mask / n_answer(f)


__all__ = ["RMU", "check_layer", "direction"]
