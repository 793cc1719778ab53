"""The objective registry: names → objectives, composites ``<objective>+<regulariser>…``, and your own.

``get_objective("npo", beta=1)``, ``get_objective("wga+retain_kl", lam=2)``, ``get_objective("ga+gd+kl")``;
objective names and regulariser names are disjoint (``retain_nll``, ``retain_kl``, ``rr``; after a "+", ``gd`` and
``kl`` are aliases of the first two), and :func:`check_composite` is the one check of a composite's parts;
:func:`list_objectives` is the table of every objective (equation, weight on ∇log p, whether it needs θ_ref or a
retain batch, defaults, the notebook that teaches it); :func:`register_objective` adds a user function.
"""
from __future__ import annotations

import inspect
from typing import Callable, Dict, Optional

from .base import Objective
from .beyond import CEU, UNDIAL, SatImp, SimNPO, UserObjective
from .ga import GA, WGA
from .npo import NPO, TNPO, WTNPO
from .po import PO, IdkDPO
from .regularisers import GD, KLGA, REGULARISER_ALIASES, REGULARISERS, Regularised
from .rmu import RMU

OBJECTIVES: Dict[str, type] = {
    "ga": GA, "wga": WGA, "npo": NPO, "tnpo": TNPO, "wtnpo": WTNPO, "po": PO, "idkdpo": IdkDPO, "rmu": RMU,
    "gd": GD, "kl": KLGA, "simnpo": SimNPO, "satimp": SatImp, "ce-u": CEU, "undial": UNDIAL,
}
ALIASES = {"idk": "po", "ga+gd": "gd", "ga+kl": "kl"}
_BUILTIN = frozenset(OBJECTIVES) | frozenset(ALIASES)


def valid_names() -> str:
    """Every valid objective name, for error messages."""
    return (", ".join(sorted(OBJECTIVES)) + "; aliases: " + ", ".join(f"{a} = {b}" for a, b in ALIASES.items())
            + "; and '<objective>+<regulariser>' with regularisers " + ", ".join(REGULARISERS) + " (aliases "
            + ", ".join(f"{a} = {b}" for a, b in REGULARISER_ALIASES.items())
            + "; e.g. npo+kl, wga+gd, rmu+rr, ga+gd+kl)")


def regulariser_name(name: str) -> str:
    """The regulariser's name (an alias resolved), or KeyError listing the valid ones."""
    key = REGULARISER_ALIASES.get(name, name)
    if key not in REGULARISERS:
        raise KeyError(f"unknown regulariser {name!r}; valid: {', '.join(REGULARISERS)} (aliases "
                       + ", ".join(f"{a} = {b}" for a, b in REGULARISER_ALIASES.items()) + ")")
    return key


def check_composite(base: Objective, regs, hparams: dict, name: Optional[str] = None):
    """The one check of a composite ``base + regs`` with ``hparams`` (the base's own already taken): every regulariser
    known (aliases resolved) and used at most once, every hyper-parameter a λ or a regulariser's own. Returns (the
    regulariser classes, λ name per term — ``lam`` for one regulariser, ``lam_<term>`` for several —, the composite's
    name, ``<base>+<term>…`` unless given). KeyError / TypeError naming the bad value and the valid ones."""
    regs = tuple([regs] if isinstance(regs, str) else regs)
    try:
        canon = [regulariser_name(r) for r in regs]
    except KeyError:
        canon = None
    if not regs or canon is None or len(set(canon)) != len(canon):
        raise KeyError(f"regularisers {regs!r}: each must be one of {', '.join(REGULARISERS)} (or an alias: "
                       f"{', '.join(REGULARISER_ALIASES)}), at most once")
    classes = [REGULARISERS[r] for r in canon]
    lams = {g.term: ("lam" if len(classes) == 1 else f"lam_{g.term}") for g in classes}
    name = name or "+".join([base.name] + [g.term for g in classes])
    valid = [*lams.values(), *sorted({n for g in classes for n in g.defaults})]
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise TypeError(f"objective {name!r} has no hyper-parameter(s) {', '.join(unknown)}; valid: "
                        f"{', '.join([*base.defaults, *valid])}")
    return classes, lams, name


def _composite(key: str):
    """(base class, [regulariser names]) for ``"a+r1+r2"``, or None. A named composite as the base (``gd`` = GA+GD)
    contributes its own base and regularisers: ``"gd+kl"`` is GA + retain_nll + retain_kl."""
    parts = [p.strip() for p in key.split("+")]
    base, regs = ALIASES.get(parts[0], parts[0]), parts[1:]
    if base not in OBJECTIVES or not regs:
        return None
    cls = OBJECTIVES[base]
    if issubclass(cls, Regularised):
        if cls.base_cls is None:
            return None
        cls, regs = cls.base_cls, [*cls.reg_names, *regs]
    if not all(REGULARISER_ALIASES.get(r, r) in REGULARISERS for r in regs):
        return None
    return cls, regs


def get_objective(name, **hparams) -> Objective:
    """An objective by name. KeyError for an unknown name (listing the valid ones), TypeError for an unknown
    hyper-parameter (listing the valid ones), ValueError for a bad value (naming it)."""
    if isinstance(name, Objective):
        if hparams:
            raise TypeError("hyper-parameters cannot be passed with an Objective instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"objective name must be a string, got {type(name).__name__}")
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key in OBJECTIVES:
        return OBJECTIVES[key](**hparams)
    found = _composite(key) if "+" in key else None
    if found is None:
        raise KeyError(f"unknown objective {name!r}; valid names: {valid_names()}")
    bcls, regs = found
    base = bcls(**{k: v for k, v in hparams.items() if k in bcls.defaults})
    return Regularised(base, regs, **{k: v for k, v in hparams.items() if k not in bcls.defaults})  # checked there


def list_objectives(include_regularisers: bool = True):
    """The objective table (a DataFrame): name, equation, weight (on ∇log p), needs_ref, needs_retain, hparams
    (defaults), notebook, alias_of, kind — generated from the classes, so it cannot drift from the code."""
    import pandas as pd
    rows = []
    for name, cls in OBJECTIVES.items():
        ref = cls.needs_ref or (issubclass(cls, Regularised) and any(REGULARISERS[r].needs_ref for r in cls.reg_names))
        rows.append(dict(name=name, equation=cls.equation, weight=cls.weight, needs_ref=bool(ref),
                         needs_retain=bool(cls.needs_retain or issubclass(cls, Regularised)),
                         hparams=dict(cls.defaults), notebook="09" if issubclass(cls, Regularised) else cls.notebook,
                         alias_of=None, kind="user" if issubclass(cls, UserObjective) else "objective"))
    rows += [dict(name=a, equation=OBJECTIVES[b].equation, weight=OBJECTIVES[b].weight,
                  needs_ref=None, needs_retain=None, hparams=dict(OBJECTIVES[b].defaults), notebook=None,
                  alias_of=b, kind="alias") for a, b in ALIASES.items()]
    if include_regularisers:
        rows += [dict(name=f"<objective>+{n}", equation=r.equation, weight="—", needs_ref=r.needs_ref,
                      needs_retain=True, hparams={"lam": 1.0, **r.defaults}, notebook="09", alias_of=None,
                      kind="regulariser") for n, r in REGULARISERS.items()]
    return pd.DataFrame(rows)


def register_objective(name: str, fn: Optional[Callable] = None, *, needs_ref: bool = False,
                       needs_retain: bool = False, equation: Optional[str] = None, overwrite: bool = False):
    """Register ``fn(out, batch)`` (``fn(out, batch, ref_logp)`` with needs_ref) as objective ``name``; usable
    directly or as a decorator, returns ``fn``. It then works everywhere a built-in does (``"mine+kl"`` …).
    Registering over a built-in name raises ValueError unless ``overwrite=True``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    key = name.strip().lower()
    if "+" in key:
        raise ValueError(f"objective names cannot contain '+' (reserved for regularisers): {name!r}")
    if key in REGULARISERS:
        raise ValueError(f"{key!r} is a regulariser name")
    if key in _BUILTIN and not overwrite:
        raise ValueError(f"{key!r} is a built-in objective; pass overwrite=True to replace it.")

    def deco(f):
        if not callable(f):
            raise TypeError("fn must be callable: fn(out, batch) -> scalar or [B] tensor")
        doc = (inspect.getdoc(f) or "").strip().splitlines()
        OBJECTIVES[key] = type(f"UserObjective_{key}", (UserObjective,), dict(
            name=key, fn=staticmethod(f), needs_ref=bool(needs_ref), needs_retain=bool(needs_retain),
            equation=equation or (doc[0] if doc else f"user-defined: {getattr(f, '__name__', 'fn')}(out, batch)"),
            __doc__=inspect.getdoc(f) or UserObjective.__doc__))
        ALIASES.pop(key, None)
        return f

    return deco if fn is None else deco(fn)


def unregister_objective(name: str) -> None:
    """Remove a user-registered objective (built-ins cannot be removed)."""
    key = name.strip().lower()
    cls = OBJECTIVES.get(key)
    if cls is None:
        raise KeyError(f"no objective {name!r} is registered")
    if not issubclass(cls, UserObjective):
        raise ValueError(f"{key!r} is a built-in objective and cannot be removed")
    del OBJECTIVES[key]


__all__ = ["OBJECTIVES", "ALIASES", "get_objective", "list_objectives", "register_objective",
           "unregister_objective", "valid_names", "check_composite", "regulariser_name"]
