"""Unlearning objectives of Wang et al. 2025 (arXiv 2502.19301) and beyond — one module per family, each naming its
equations in its own docstring:

* ``base`` — Objective, TokenWeighted, the validators; ``weights`` — weight_view and summary (1/p next to w);
* ``ga`` (GA, WGA), ``npo`` (NPO, TNPO, WTNPO), ``po`` (PO, IdkDPO), ``rmu`` (RMU), ``beyond`` (SimNPO, SatImp,
  CE-U, UNDIAL, your own);
* ``regularisers`` — the retain-side terms ``retain_nll`` (GD's), ``retain_kl`` (KL's) and ``rr``, and the
  composites ``<objective>+<regulariser>`` (``gd`` and ``kl`` are aliases after a "+");
* ``registry`` — get_objective, list_objectives, register_objective, and the one check of a composite.

Which equation and figure each objective implements, and which notebook teaches it: docs/paper.md, "Where each
equation lives in the code" (the project's only copy of that map). Every objective is a loss that is *minimised*;
its terms (:meth:`Objective.terms`) are what the G-effect engine differentiates. ``python -m geffect_lite
objectives`` prints the table of all of them.
"""
from __future__ import annotations

from ..context import Context
from .base import Objective, TokenWeighted
from .beyond import CEU, UNDIAL, SatImp, SimNPO, UserObjective, simnpo_loss
from .ga import GA, WGA
from .npo import NPO, TNPO, WTNPO, npo_loss, tnpo_weight
from .po import PO, IdkDPO, dpo_loss
from .registry import (ALIASES, OBJECTIVES, check_composite, get_objective, list_objectives, register_objective,
                       regulariser_name, unregister_objective, valid_names)
from .regularisers import GD, KLGA, REGULARISER_ALIASES, REGULARISERS, GDReg, KLReg, Regularised, Regulariser, RRReg
from .rmu import RMU

__all__ = [
    "Context", "Objective", "TokenWeighted", "Regularised", "Regulariser", "UserObjective",
    "GA", "GD", "KLGA", "WGA", "NPO", "SimNPO", "TNPO", "WTNPO", "PO", "IdkDPO", "RMU", "UNDIAL", "SatImp", "CEU",
    "GDReg", "KLReg", "RRReg", "REGULARISERS", "REGULARISER_ALIASES", "OBJECTIVES", "ALIASES",
    "get_objective", "list_objectives", "register_objective", "unregister_objective", "valid_names",
    "check_composite", "regulariser_name",
    "npo_loss", "simnpo_loss", "dpo_loss", "tnpo_weight",
]
