"""Argument checks shared by both entries, ``gl.geffect`` (``engine.compute``) and ``gl.run`` (``trajectory``).

Bad input gets an error that names the bad value and lists the valid ones; nothing here computes a G-effect.
"""
from __future__ import annotations

from ..objectives import UserObjective, get_objective, valid_names


def check_choice(name, value, valid):
    """ValueError naming ``value`` and the ``valid`` choices when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, valid))}")


def resolve_objective(objective):
    """An Objective from a registry name or an Objective (KeyError/TypeError listing the valid names)."""
    try:
        return get_objective(objective)
    except TypeError as e:
        raise TypeError(f"objective must be a registered name ({valid_names()}) or an Objective; {e}") from None


def user_objective(objective) -> bool:
    """A user's objective (or one built on it): its terms are not known to keep instances apart, so no per-instance
    split of a batch's backward is assumed for it."""
    return isinstance(getattr(objective, "base", None) or objective, UserObjective)


__all__ = ["check_choice", "resolve_objective", "user_objective"]
