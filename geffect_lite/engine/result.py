"""The result of a G-effect computation, and what each of its tables means.

Definition 1 (Wang et al. 2025, arXiv 2502.19301): e = ∇R(D;θ)ᵀ∇L_u(D_u;θ). Under a step θ ← θ − η∇L_u the risk
changes by ΔR ≈ −η·e, so the G-effect on the **forget** set, e_u, should be strongly negative (the forget risk
rises) and on the **retain** set, e_r, ≥ 0 (the retain risk does not rise). Every table below is exact: its rows sum
to the totals.

* ``totals`` — one value per (term, risk_set). ``term`` is ``"objective"`` (the whole loss) or one of the
  objective's additive terms (``"forget"``, ``"gd"``, ``"kl"``, ``"rr"``: Fig. 8).
* ``groups`` — the same per parameter group (``scheme`` "block" or "paper": embed / shallow / middle / deep / lm,
  ``geffect_lite.layers``).
* ``instances`` / ``tokens`` — two per-instance (per-token) **views**:

  - **moved**: how much the objective moves instance b's own risk, ∇ℓ_bᵀ∇L_u (per token: ∇ℓ_btᵀ∇L_u), for forget
    and retain instances. With c_b the risk's weights (|T_b|/N for ``token_mean``, 1/B for ``seq_sum``),
    e = Σ_b c_b·moved_b; the ``share`` column is c_b·moved_b.
  - **contribution**: forget instance b's share of the whole set's G-effect, ∇R(D)ᵀ∇L_b, when the forget term is a
    sum of per-instance terms L = Σ_b L_b (per-token terms when token-decomposable); e = Σ_b contribution_b. For
    NPO, ∇L_b = W_b∇log p(y_b), so the contribution is W_b·PG_b with the paper's PG-effect (Eq. 5, Fig. 5b).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Sequence

import pandas as pd

from ..layers import group_names, group_order

RISK_SETS = ("forget", "retain")
VIEWS = ("moved", "contribution")


@dataclass
class GEffect:
    """G-effects of one objective at one θ (tidy DataFrames; see the module docstring).

    ``totals``: term, risk_set, value. ``groups``: term, risk_set, scheme, group, value. ``instances``: risk_set,
    view, id, instance, n_tokens, value, share. ``tokens``: risk_set, view, id, instance, position, token, value,
    share. ``risks``: R(forget), R(retain). ``info``: objective, risk reduction, hyper-parameters, loss, route.
    """
    totals: pd.DataFrame
    groups: pd.DataFrame = None
    instances: pd.DataFrame = None
    tokens: pd.DataFrame = None
    risks: Dict[str, float] = field(default_factory=dict)
    info: Dict[str, object] = field(default_factory=dict)

    def value(self, risk_set: str = "forget", term: str = "objective") -> float:
        t = self.totals
        m = t[(t.risk_set == risk_set) & (t.term == term)]
        if m.empty:
            raise KeyError(f"no G-effect for risk_set={risk_set!r}, term={term!r}; "
                           f"available: {sorted(set(zip(t.risk_set, t.term)))}")
        return float(m.value.iloc[0])

    @property
    def e_u(self) -> float:
        """The G-effect on the forget set, ∇R(D_u)ᵀ∇L_u (want ≪ 0)."""
        return self.value("forget")

    @property
    def e_r(self) -> float:
        """The G-effect on the retain set, ∇R(D_r)ᵀ∇L_u (want ≥ 0)."""
        return self.value("retain")

    def group_table(self, scheme: str = "paper", term: str = "objective") -> pd.DataFrame:
        """Wide table: groups × (forget, retain)."""
        g = self.groups[(self.groups.scheme == scheme) & (self.groups.term == term)]
        return g.pivot_table(index="group", columns="risk_set", values="value", sort=False)[list(RISK_SETS)]

    def __repr__(self):
        return f"GEffect(e_u={self.e_u:.6g}, e_r={self.e_r:.6g}, risk={self.info.get('risk')})"


def totals_frame(D: Dict[str, "object"], labels: Sequence[str]) -> pd.DataFrame:
    """totals from the per-tensor matrices D[risk_set][row, tensor] (rows named by ``labels``)."""
    return pd.DataFrame([dict(term=lab, risk_set=rs, value=float(D[rs][k].sum())) for rs in RISK_SETS
                         for k, lab in enumerate(labels)])


def groups_frame(model, names: Sequence[str], D: Dict[str, "object"], labels: Sequence[str],
                 schemes=("block", "paper")) -> pd.DataFrame:
    """groups from the per-tensor matrices: each group is an exact sub-sum of its tensors."""
    rows = []
    for scheme in schemes:
        gmap, order = group_names(model, scheme), group_order(model, scheme)
        for rs in RISK_SETS:
            for k, lab in enumerate(labels):
                acc = dict.fromkeys(order, 0.0)
                for i, n in enumerate(names):
                    acc[gmap[n]] += float(D[rs][k, i])
                rows += [dict(term=lab, risk_set=rs, scheme=scheme, group=g, value=v) for g, v in acc.items()]
    return pd.DataFrame(rows)


__all__ = ["GEffect", "RISK_SETS", "VIEWS", "totals_frame", "groups_frame"]
