"""Regularisers on the retain data — GD, KL and RR (Fig. 8 of Wang et al. 2025, arXiv 2502.19301); notebook 09.

A regularised objective is L = L_forget + Σ_r λ_r·L_r(D_retain). Its G-effect is the sum of its terms' G-effects, so
each term's own e_u and e_r can be read separately — the paper's Fig. 8:

* ``retain_nll`` (GD's term, gradient difference): L_r = R(D_retain), the retain NLL — it pulls the retain risk
  down (e_r > 0);
* ``retain_kl`` (KL's term): L_r = KL(π_ref ‖ π_θ) on retain data — zero with zero gradient at θ = θ_ref, growing
  as θ drifts;
* ``rr`` (representation retention, RMU's retain term): ‖h_θ − h_ref‖² at one layer.

The regulariser names differ from every objective name; ``gd`` and ``kl`` are accepted as aliases of the first two
(``"npo+kl"`` = ``"npo+retain_kl"``). :class:`Regularised` builds any ``<objective>+<regulariser>[+<regulariser>…]``;
its terms are named ``"forget"`` and after each regulariser's Fig. 8 label (``term``: ``"gd"``, ``"kl"``, ``"rr"``),
as are its λ's when there are several (``lam_gd``, ``lam_kl``, ``lam_rr``).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from .. import nll
from ..layers import paper_layer
from .base import Objective, choice, layer_or_none, logits_of, n_answer, nonneg, validate
from .ga import GA
from .rmu import check_layer


class Regulariser:
    """A retain-side term L_r; :class:`Regularised` adds λ·L_r to a forget objective."""
    name = "reg"
    term = "reg"             # the term's label in ``terms()`` and in λ's name (Fig. 8's)
    equation = ""
    needs_ref = False
    ref_full = False
    defaults: dict = {}
    checks: dict = {}

    def __init__(self, base=None, **hp):
        self.base = base              # the forget objective it is added to (RR reads RMU's layer from it)
        self.hparams = validate(f"regulariser {self.name!r}", self.defaults, self.checks, hp)

    def bind(self, model, base=None) -> "Regulariser":
        return self

    @property
    def hidden_layers(self) -> tuple:
        return ()

    def value(self, ctx, who) -> torch.Tensor:
        raise NotImplementedError

    def grad_weights(self, ctx, lam, who) -> Optional[Dict[str, torch.Tensor]]:
        return None


class GDReg(Regulariser):
    """Gradient difference's retain term: R(D_retain) = −(1/N_R) Σ log p, the token-mean retain NLL."""
    name = "retain_nll"
    term = "gd"
    equation = "L_gd = −(1/N_R) Σ_bt log p_bt(retain)"

    def value(self, ctx, who):
        r = ctx.fwd("retain", who=who)
        return r.token_nll.sum() / n_answer(r, "retain batch")

    def grad_weights(self, ctx, lam, who):
        r = ctx.fwd("retain", who=who)
        return {"retain": (-lam * r.mask / n_answer(r, "retain batch")).detach()}


class KLReg(Regulariser):
    """KL(π_ref ‖ π_θ) on the retain batch. ``kl_positions="all"`` (default; the official code, open-unlearning and
    TOFU): every position — prompt and padding included — over the number of positions (here the B·(T−1) predicting
    positions; they use all B·T, a relative difference of order 1/T). ``"answer"``: token mean over retain answer
    positions. Gradient w.r.t. the logits: λ(π_θ − π_ref)/#positions, exactly 0 at θ = θ_ref. Needs θ_ref's full
    log-softmax of the retain batch."""
    name = "retain_kl"
    term = "kl"
    equation = "L_kl = (1/#pos) Σ_pos KL(π_ref(·|pos) ‖ π_θ(·|pos))   (retain batch)"
    needs_ref = True
    ref_full = True
    defaults = {"kl_positions": "all"}
    checks = {"kl_positions": choice("all", "answer")}

    def value(self, ctx, who):
        r = ctx.fwd("retain", who=who)
        logits = logits_of(r, who)
        lref = ctx.ref_full_logprobs("retain", who=who).to(logits.dtype)
        if self.hparams["kl_positions"] == "all":
            w = torch.full_like(r.mask, 1.0 / r.mask.numel())
        else:
            w = r.mask / n_answer(r, "retain batch")
        return nll.kl_ref_to_model(logits, lref, w)


class RRReg(Regulariser):
    """Representation retention, RMU's retain term: mean over attended retain positions of ‖h_θ − h_ref‖²/d at
    ``hidden_states[rr_layer]`` (h_ref detached). ``rr_layer`` default None = the base objective's layer when it has
    one (RMU), else the middle layer (:func:`~geffect_lite.layers.paper_layer`). Zero with zero gradient at θ_ref."""
    name = "rr"
    term = "rr"
    equation = "L_rr = mean_attended ‖h_θ − h_ref‖²/d at hidden_states[rr_layer]   (retain batch)"
    needs_ref = True
    defaults = {"rr_layer": None}
    checks = {"rr_layer": layer_or_none}

    def __init__(self, base=None, **hp):
        super().__init__(base, **hp)
        self._layer_arg = self.hparams["rr_layer"]

    def layer_for(self, model, base=None) -> int:
        """The ``hidden_states`` index compared for ``model``: the given layer, else ``base``'s layer (RMU), else
        the middle layer (checked). A pure function: the loss never changes the regulariser."""
        L = self._layer_arg
        if L is None and base is not None:
            L = base.layer_for(model) if hasattr(base, "layer_for") else base.hparams.get("layer")
        return check_layer("rr_layer", paper_layer(model) if L is None else L, model)

    def bind(self, model, base=None):
        self.hparams["rr_layer"] = self.layer_for(model, base)
        return self

    @property
    def hidden_layers(self):
        L = self.hparams["rr_layer"]
        return () if L is None else (L,)

    def value(self, ctx, who):
        L = self.layer_for(ctx.model, self.base) if ctx.model is not None else self.hparams["rr_layer"]
        r = ctx.fwd("retain", hidden=True, who=who)
        h = r.hidden_states[L]                                              # [B, T, d]
        href = ctx.ref_hidden("retain", L, who=who).to(h.dtype)
        att = r.batch["attention_mask"].to(device=h.device, dtype=h.dtype)  # [B, T]
        return (((h - href) ** 2).mean(-1) * att).sum() / att.sum()


REGULARISERS = {"retain_nll": GDReg, "retain_kl": KLReg, "rr": RRReg}
#: the regularisers' old names (they are also objective names: "gd" = GA+GD, "kl" = GA+KL), still accepted after "+"
REGULARISER_ALIASES = {"gd": "retain_nll", "kl": "retain_kl"}


class Regularised(Objective):
    """A forget objective plus regularisers: L = L_forget + Σ_r λ_r·L_r (Fig. 8).

    ``Regularised(base, "kl", lam=1)`` or ``Regularised(base, ("gd", "kl"), lam_gd=1, lam_kl=1)``. Each λ (≥ 0)
    defaults to **1** (official code, open-unlearning, TOFU). :meth:`terms` returns ``{"forget": L_forget,
    "<reg>": λ·L_reg, …}``; ``instance_terms``, ``token_terms`` and the weights are the base objective's;
    ``grad_weights`` exists when every term is a weighted-NLL form (any base + "gd").
    """
    base_cls = None      # set by the named composites GD and KLGA
    reg_names: tuple = ()

    def __init__(self, base=None, regs=None, **hp):
        base = base if base is not None else (self.base_cls() if self.base_cls is not None else None)
        if not isinstance(base, Objective) or isinstance(base, Regularised):
            raise TypeError("Regularised needs a plain base objective, e.g. Regularised(get_objective('npo'), 'kl')")
        from .registry import check_composite      # the one validation of a composite (names, λ's, hyper-parameters)
        classes, lams, name = check_composite(base, regs or self.reg_names, hp,
                                              self.name if self.base_cls is not None else None)
        self.base, self.name = base, name
        self.regs = {g.term: g(base, **{k: v for k, v in hp.items() if k in g.defaults}) for g in classes}
        self.lams = {r: nonneg(lams[r], hp.get(lams[r], 1.0)) for r in self.regs}
        self.hparams = {**base.hparams, **{lams[r]: self.lams[r] for r in self.regs}}
        self._sync()
        self.needs_ref = base.needs_ref or any(g.needs_ref for g in self.regs.values())
        self.ref_full = base.ref_full or any(g.ref_full for g in self.regs.values())
        self.needs_retain = True
        self.notebook = "09"
        if self.base_cls is None:
            self.equation = base.equation + "".join(f"  +  λ·[{g.equation}]" for g in self.regs.values())

    def __repr__(self):
        return f"Regularised({self.base!r}, {tuple(self.regs)!r}, {self.hparams!r})"

    def _sync(self):
        for g in self.regs.values():
            self.hparams.update(g.hparams)

    def bind(self, model):
        self.base.bind(model)
        for g in self.regs.values():
            g.bind(model, self.base)
        self.hparams.update(self.base.hparams)
        self._sync()
        return self

    @property
    def hidden_layers(self):
        return tuple(dict.fromkeys(self.base.hidden_layers + sum((g.hidden_layers for g in self.regs.values()), ())))

    def ref_requirements(self, model=None):
        if model is not None:
            self.bind(model)
        layers = tuple(dict.fromkeys(sum((g.hidden_layers for g in self.regs.values()), ())))
        return dict(full_logprobs=self.ref_full, hidden_layers=layers)

    def forget_loss(self, ctx):
        return self.base.forget_loss(ctx)

    def terms(self, ctx):
        out = {"forget": self.base.forget_loss(ctx)}
        out.update({r: self.lams[r] * g.value(ctx, self.name) for r, g in self.regs.items()})
        return out

    def instance_terms(self, ctx):
        return self.base.instance_terms(ctx)

    def token_terms(self, ctx):
        return self.base.token_terms(ctx)

    def token_weight(self, ctx):
        return self.base.token_weight(ctx)

    def seq_weight(self, ctx):
        return self.base.seq_weight(ctx)

    def grad_weights(self, ctx):
        out = self.base.grad_weights(ctx)
        for r, g in self.regs.items():
            w = g.grad_weights(ctx, self.lams[r], self.name)
            if out is None or w is None:
                return None
            out = {**out, **{k: out[k] + v if k in out else v for k, v in w.items()}}
        return out


class GD(Regularised):
    """Gradient difference: GA + λ·R(retain), both token means (``"ga+gd"``). Forget tokens w = 1/N, retain tokens
    w = −λ/N_R. ``lam`` default **1** (official code, open-unlearning, TOFU)."""
    name = "gd"
    equation = "L = (1/N) Σ_bt log p_bt(forget) + λ·(−(1/N_R) Σ_bt log p_bt(retain))   (token means)"
    weight = "1; retain −λ"
    base_cls = GA
    reg_names = ("retain_nll",)
    defaults = {"lam": 1.0}


class KLGA(Regularised):
    """KL-regularised GA, TOFU's "KL" (``"ga+kl"``): GA + λ·KL(π_ref ‖ π_θ) on retain data. ``lam`` default **1**,
    ``kl_positions`` default "all" (see :class:`KLReg`). Needs θ_ref's full log-probs."""
    name = "kl"
    equation = "L = (1/N) Σ_bt log p_bt(forget) + λ·(1/#pos) Σ_pos KL(π_ref ‖ π_θ)(retain)"
    weight = "1 (+ KL, in logit space)"
    base_cls = GA
    reg_names = ("retain_kl",)
    defaults = {"lam": 1.0, "kl_positions": "all"}
    needs_ref = True
    ref_full = True


__all__ = ["Regulariser", "GDReg", "KLReg", "RRReg", "REGULARISERS", "REGULARISER_ALIASES", "Regularised", "GD",
           "KLGA"]
