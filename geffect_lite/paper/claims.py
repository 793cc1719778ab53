"""The paper's claims as stated rules — the machinery. The rules themselves live in ``rules_*.py``, one module per
part of Wang et al. 2025 (arXiv 2502.19301): identities, GA and WGA (Fig. 3), NPO and TNPO (Figs. 4–5), PO, RMU and
the regularisers (Figs. 6–8), Table 1 and the five insights.

A rule takes a :class:`~geffect_lite.paper.runs.Runs` and returns :func:`result`: a verdict ("reproduced", "not
reproduced", "not applicable", or "not testable" for a diverged run, ``verdicts.py``), the numbers that decided it,
the rule in words and — when it misses — what was seen instead. Nothing is hard-coded: another model, seed,
learning rate or setting can change a verdict. Across seeds and learning rates the scoreboard adds "fragile"
(``scoreboard.py``; the replication-aware rule is ``verdicts.py``). Each claim has a group (GROUPS: an implementation
check, a claim of the paper, or an extension — the project's own inference; docs/rules.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np
import pandas as pd

VERDICTS = ("reproduced", "not reproduced", "not applicable", "not testable")
KINDS = ("identity", "dynamics", "end-metrics", "insight")
GROUPS = ("check", "claim", "extension")   # implementation check / claim of the paper / the project's own inference


@dataclass
class Claim:
    id: str
    paper: str                       # what the paper says, with its figure / equation / table
    fn: Callable
    kind: str = "dynamics"           # identity / dynamics / end-metrics / insight
    runs: tuple = ()                 # the RUN_SPECS keys it reads (for ablations that rerun only those)
    group: str = "claim"             # check / claim / extension (GROUPS; docs/rules.md says why)


CLAIMS: List[Claim] = []


def claim(id: str, paper: str, kind: str = "dynamics", runs: tuple = (), group: str = "claim"):
    """Register a rule (in order of appearance)."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r} for claim {id!r}; valid: {', '.join(GROUPS)}")

    def deco(fn):
        CLAIMS.append(Claim(id, paper, fn, kind, tuple(runs), group))
        return fn
    return deco


def claims_in(group: str) -> List[Claim]:
    """The registered rules of one group ("check", "claim" or "extension"), in registration order."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; valid: {', '.join(GROUPS)}")
    return [c for c in CLAIMS if c.group == group]


def by_id(cid: str) -> Claim:
    for c in CLAIMS:
        if c.id == cid:
            return c
    raise KeyError(f"unknown claim {cid!r}; valid: {', '.join(c.id for c in CLAIMS)}")


def fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:.3g}")
    return str(v)


def result(ok: Optional[bool], numbers: dict, rule: str, seen: str = "") -> dict:
    """A claim's result. ``ok`` None = not applicable (``rule`` then says why)."""
    nums = "; ".join(f"{k}={fmt(v)}" for k, v in numbers.items()) if numbers else "–"
    if ok is None:
        return dict(verdict="not applicable", numbers=nums, reason=rule, values=dict(numbers))
    reason = f"rule: {rule}" + ("" if ok or not seen else f"; seen instead: {seen}")
    return dict(verdict="reproduced" if ok else "not reproduced", numbers=nums, reason=reason, values=dict(numbers))


# --- quantities several rules share ------------------------------------------------------------------------------
def neg_area(x) -> float:
    """Σ max(−x, 0): how much a G-effect series pushes the risk up."""
    return float(np.clip(-np.asarray(x, dtype=float), 0, None).sum())


def damage_ratio(steps: pd.DataFrame) -> float:
    """ρ = Σ_t max(−e_r, 0) / Σ_t max(−e_u, 0): retention damage per unit of removal over a run (lower is better).
    G-effects are unnormalised, so the ratio within one objective is what compares across objectives."""
    den = neg_area(steps.e_u)
    return neg_area(steps.e_r) / den if den > 0 else math.inf


def spike(steps: pd.DataFrame) -> int:
    """Row index of the most negative e_u."""
    return int(steps.e_u.to_numpy(dtype=float).argmin())


def late_mass(x) -> float:
    """Share of Σ|x| in the second half of a series (how slowly it decays)."""
    a = np.abs(np.asarray(x, dtype=float))
    return float(a[len(a) // 2:].sum() / max(a.sum(), 1e-300))


__all__ = ["Claim", "CLAIMS", "claim", "claims_in", "GROUPS", "by_id", "result", "fmt", "VERDICTS", "KINDS",
           "neg_area", "damage_ratio", "spike", "late_mass"]
