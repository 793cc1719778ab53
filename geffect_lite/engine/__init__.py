"""The G-effect engine — Definition 1 of Wang et al. 2025 (arXiv 2502.19301), e = ∇R(D;θ)ᵀ∇L_u(D_u;θ), total and
broken down exactly over parameter groups, instances and tokens.

==================  ===========================================================================================
module              idea
==================  ===========================================================================================
``dots``            per-tensor fp64 dot products; the formed-gradient route (hooks dot each gradient and free it)
``ghost``           the Gram-matrix route: dot products of two gradients from layer inputs and output gradients
``ghost_rows``      the Gram route's products split per instance: the instance views at the totals' price
``definition``      :func:`definition_1` — Definition 1 in plain autograd, totals and groups (read this first)
``routes``          :func:`measure` — the same numbers, every tensor by its cheaper route, forwards shared
``result``          :class:`GEffect` — totals, groups, and the "moved" / "contribution" views, defined
``forward_mode``    jvps along parameter-space directions (one pass → every token)
``rows``            per-instance dots with a fixed direction from one backward (a matmul per linear layer)
``views``           per-instance and per-token G-effects; the PG-effect of Eq. 5 (:func:`pg_effects`)
``checks``          independent routes: plain autograd, finite differences, second order, backward loops
``validate``        argument checks shared by both entries
``compute``         :func:`geffect` — the public entry point (``gl.geffect``)
==================  ===========================================================================================

``gl.geffect`` and ``gl.run`` (``geffect_lite.trajectory``) both call :func:`~routes.measure` and
:func:`~views.instance_views`; a trajectory adds only the optimiser step and what depends on it.
"""
from .checks import finite_difference, loop_instance_dots, objective_gradient, second_directional
from .compute import geffect
from .definition import definition_1
from .routes import DOTS, Measurement, measure
from .dots import dot, named_params
from .result import RISK_SETS, VIEWS, GEffect
from .views import METHODS, instance_views, pg_effects, risk_gradients

__all__ = ["geffect", "GEffect", "definition_1", "measure", "Measurement", "instance_views", "pg_effects",
           "risk_gradients", "finite_difference", "second_directional", "objective_gradient", "loop_instance_dots", "named_params",
           "dot", "RISK_SETS", "VIEWS", "METHODS", "DOTS"]
