"""Unlearning objectives — one module per family, each naming its equations in Wang et al. 2025 (arXiv 2502.19301):

=====================  =========================================  =====================  ========
module                 objectives                                 paper                  notebook
=====================  =========================================  =====================  ========
``base``               Objective, TokenWeighted, validators       the weighted-NLL form  01
``ga``                 GA, WGA                                    Eqs. 1–2, Fig. 3       03–04
``npo``                NPO, TNPO, WTNPO                           Eqs. 3–6, Figs. 4–5    05–06
``po``                 PO, IdkDPO                                 Eq. 7, Fig. 6          07
``rmu``                RMU                                        Eq. 8, Fig. 7          08
``regularisers``       GD, KL, RR, Regularised                    Fig. 8                 09
``beyond``             SimNPO, SatImp, CE-U, UNDIAL, your own     —                      10
``weights``            weight_view, summary (1/p next to w)       Eqs. 1, 2, 4, 6        03–06
``registry``           get_objective, list_objectives, register   —                      —
=====================  =========================================  =====================  ========

Every objective is a loss that is *minimised*; its terms (:meth:`Objective.terms`) are what the G-effect engine
differentiates. ``python -m geffect_lite objectives`` prints the table of all of them.
"""
from __future__ import annotations

from ..context import Context
from .base import Objective, TokenWeighted
from .beyond import CEU, UNDIAL, SatImp, SimNPO, UserObjective, simnpo_loss
from .ga import GA, WGA
from .npo import NPO, TNPO, WTNPO, npo_loss, tnpo_weight
from .po import PO, IdkDPO, dpo_loss
from .registry import (ALIASES, OBJECTIVES, get_objective, list_objectives, register_objective,
                       unregister_objective, valid_names)
from .regularisers import GD, KLGA, REGULARISERS, GDReg, KLReg, Regularised, Regulariser, RRReg
from .rmu import RMU

__all__ = [
    "Context", "Objective", "TokenWeighted", "Regularised", "Regulariser", "UserObjective",
    "GA", "GD", "KLGA", "WGA", "NPO", "SimNPO", "TNPO", "WTNPO", "PO", "IdkDPO", "RMU", "UNDIAL", "SatImp", "CEU",
    "GDReg", "KLReg", "RRReg", "REGULARISERS", "OBJECTIVES", "ALIASES",
    "get_objective", "list_objectives", "register_objective", "unregister_objective", "valid_names",
    "npo_loss", "simnpo_loss", "dpo_loss", "tnpo_weight",
]
