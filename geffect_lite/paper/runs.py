"""The trajectories the claims read — one :data:`RUN_SPECS` entry per run under the protocol's settings
(``geffect_lite.protocol``), with the figure of Wang et al. 2025 it reproduces.

A :class:`Runs` is the scoreboard's view of one tier (model), one replication (``protocol.Setting.replication``: the
forgotten authors and the seed), one learning-rate scale and one figure setting ("paper", or "official": the official
code's mini-batches and schedule, ``protocol``): it maps a run's
name to a ``gl.protocol_run`` call (the one cached entry for a protocol run — computed once, kept on disk and in the
process; Runs keeps nothing itself). ``runs["ga"]`` is GA's trajectory under the paper setting, ``runs.final("ga")``
what was measured on its final model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd
import torch

from .. import protocol, run_cache, setting_data
from ..context import Context
from ..engine import pg_effects
from ..layers import is_tied, n_blocks, paper_layer
from ..objectives import get_objective
from .parity import parity


def npo_pg(model, t, forget, retain, ref) -> pd.DataFrame:
    """Fig. 5b's data at one checkpoint: each forget point's PG-effects (Eq. 5) and its NPO weight (β = 1)."""
    with torch.enable_grad():
        pg = pg_effects(model, forget, retain)
    with torch.no_grad():
        w = get_objective("npo", beta=1.0).seq_weight(Context(model, forget, retain, ref))
    return pg.assign(weight=w.detach().double().cpu().numpy())


OFFICIAL_AS_PAPER = {"embed": "embed", "module1": "shallow", "module2": "middle", "module3": "deep", "lm": "lm"}


def parity_probe(objective: str, hparams: dict, S: protocol.Setting):
    """A probe measuring, at each step, the official code's G-effects (``parity.py``) of ``objective``."""
    def probe(model, t, forget, retain, ref):
        obj = get_objective(objective, **hparams)
        if obj.needs_ref:
            raise ValueError(f"parity mode needs θ_ref on the official micro-batches; {objective} is not supported")
        _, tok = run_cache.loaded(S.model)
        data = run_cache.dataset()
        with torch.enable_grad():
            prints, _ = parity(model, obj, setting_data.forget_rows(data, S), setting_data.retain_rows(data, S), tok, seed=S.seed)
        return prints
    probe.__name__ = f"parity_{objective}_{sorted(hparams.items())}"
    return probe


@dataclass
class RunSpec:
    """One shared run: objective, hyper-parameters (``layer`` may be "shallow"/"middle"/"deep"), the protocol
    setting and what to record."""
    objective: str
    hparams: dict = field(default_factory=dict)
    setting: str = "paper"
    record: dict = field(default_factory=dict)
    figure: str = ""
    lr_factor: float = 1.0               # × the setting's learning rate (the first-order check's small steps)
    steps: Optional[int] = None          # instead of the setting's steps


RUN_SPECS = {
    "ga": RunSpec("ga", figure="Fig. 3a–b"),
    "wga": RunSpec("wga", {"alpha": 0.5}, figure="Fig. 3c"),
    "npo_b0.1": RunSpec("npo", {"beta": 0.1}, figure="Fig. 4"),
    "npo_b1": RunSpec("npo", {"beta": 1.0}, record=dict(probe=npo_pg), figure="Figs. 4, 5a–b"),
    "npo_b2": RunSpec("npo", {"beta": 2.0}, figure="Fig. 4"),
    "tnpo": RunSpec("tnpo", {"beta": 1.0}, figure="Fig. 5c"),
    "po": RunSpec("po", figure="Fig. 6"),
    "rmu_shallow": RunSpec("rmu", {"layer": "shallow", "c": 5.0}, figure="Fig. 7"),
    "rmu_middle": RunSpec("rmu", {"layer": "middle", "c": 5.0}, figure="Fig. 7"),
    "rmu_deep": RunSpec("rmu", {"layer": "deep", "c": 5.0}, figure="Fig. 7"),
    "ga+gd": RunSpec("ga+gd", figure="Fig. 8a"),
    "ga+kl": RunSpec("ga+kl", figure="Fig. 8b"),
    "ga+rr": RunSpec("ga+rr", figure="Fig. 8c"),
    "ga_sgd": RunSpec("ga", setting="theory", figure="the first-order reading ΔR ≈ −η·e"),
    "ga_sgd_small": RunSpec("ga", setting="theory", lr_factor=1 / 256, steps=3, figure="ΔR ≈ −η·e for small η"),
    "npo_b1_sgd": RunSpec("npo", {"beta": 1.0}, setting="theory", figure="the first-order reading ΔR ≈ −η·e"),
}


FIGURE_SETTINGS = protocol.FIGURE_SETTINGS      # where the figures' runs are made (protocol.py says how they differ)


class Runs:
    """The trajectories of one tier at one replication and one learning-rate scale (``gl.protocol_run`` calls).
    ``seed`` defaults to the replication (``protocol.setting``); ``setting`` is where the figures' runs are made."""

    replication, figure_setting, _table = 0, "paper", None       # class defaults (a test's Runs may skip __init__)

    def __init__(self, model: str = "tiny", seed: Optional[int] = None, lr_scale: float = 1.0,
                 fast: Optional[bool] = None, changes: Optional[dict] = None, progress: bool = False,
                 replication: int = 0, setting: str = "paper"):
        if setting not in FIGURE_SETTINGS:
            raise ValueError(f"unknown figure setting {setting!r}; valid: {', '.join(FIGURE_SETTINGS)}")
        base = protocol.setting("paper", model, fast=fast, seed=seed, replication=replication)
        setting_data.replication_authors(base.split, base.replication)      # a bad replication fails before loading
        self.model_name, self.seed, self.lr_scale, self.progress = model, base.seed, float(lr_scale), progress
        self.replication, self.figure_setting = base.replication, setting
        self.changes = dict(changes or {})         # an ablation: Setting fields to change in every run
        self.fast = base.fast
        self.base = self.setting("paper")         # the full-batch rows every run shares (official: the same rows)
        self.model, self.tok = run_cache.loaded(model)
        self.forget, self.retain = setting_data.batches(run_cache.dataset(), self.tok, self.base)
        self.n_blocks, self.tied = n_blocks(self.model), is_tied(self.model)
        self.seconds: dict = {}                    # each run's own compute time, as recorded with it
        self._table = None                         # the Table 1 analogue, when the end-metric claims need it

    @property
    def table(self):
        """The Table 1 analogue the end-metric rules read (set by them at replication 0, as before replications
        existed; at replication r > 0 computed here, on the replication's authors, for a tier with a twin)."""
        if self._table is None and self.replication:
            from .table import RETAIN_TWINS, tables
            if self.model_name in RETAIN_TWINS:
                self._table = tables(self.model_name, seeds=(self.seed,), lr_scale=self.lr_scale, fast=self.fast,
                                     progress=self.progress, changes={"replication": self.replication})
        return self._table

    @table.setter
    def table(self, df) -> None:
        self._table = df

    def setting(self, name: str = "paper") -> protocol.Setting:
        S = protocol.setting(name, self.model_name, fast=self.fast, seed=self.seed, replication=self.replication)
        return S.replace(lr=S.lr * self.lr_scale,
                         **{k: v for k, v in self.changes.items() if k not in ("setting", "parity")})

    @property
    def parity(self) -> bool:
        """Measure G-effects as the official code does (EMA'd micro-batch gradients, fixed buckets)."""
        return bool(self.changes.get("parity"))

    def spec(self, key: str):
        spec = RUN_SPECS[key]
        hp = dict(spec.hparams)
        if isinstance(hp.get("layer"), str):
            hp["layer"] = paper_layer(self.model, hp["layer"])
        return spec, hp

    def request(self, key: str):
        """(objective, setting, hyper-parameters, recording options) of the run named ``key``."""
        if key not in RUN_SPECS:
            raise KeyError(f"unknown run {key!r}; valid: {', '.join(RUN_SPECS)}")
        spec, hp = self.spec(key)
        name = self.changes.get("setting", self.figure_setting) if spec.setting == "paper" else spec.setting
        S = self.setting(name)
        S = S.replace(lr=S.lr * spec.lr_factor, steps=spec.steps or S.steps)
        record = dict(spec.record)
        if self.parity:
            record["probe"] = parity_probe(spec.objective, hp, S)
        return spec.objective, S, hp, record

    def __getitem__(self, key: str):
        objective, S, hp, record = self.request(key)
        tr = run_cache.protocol_run(objective, S, hp, progress=self.progress, **record)
        self.seconds[key] = tr.config.get("seconds", math.nan)
        return tr

    def steps(self, key: str) -> pd.DataFrame:
        """The run's recorded steps (status ok); in parity mode e_u and e_r are the official code's."""
        s = self[key].steps
        s = s[(s.status == "ok") & s.e_u.notna()].reset_index(drop=True) if "e_u" in s else s.iloc[:0]
        if self.parity:
            tot = self._parity(key)
            tot = tot[tot.group == "total"].pivot_table(index="step", columns="risk_set", values="value")
            s = s.assign(e_u=s.step.map(tot["forget"]), e_r=s.step.map(tot["retain"]))
        return s

    def _parity(self, key: str) -> pd.DataFrame:
        p = self[key].probes
        return p.groupby(["step", "risk_set", "group"], as_index=False).value.mean()   # the mean of the prints

    def tokens_per_unit(self, key: str) -> float:
        """Answer tokens per unit of the run's risks: 1 for token_mean; for seq_sum (a risk per sequence) the mean
        number of answer tokens per forget row, so that a per-token bound such as ln|V| can be put in its units."""
        if self.changes.get("risk", "token_mean") != "seq_sum":   # every run spec's own setting is token_mean
            return 1.0
        mask = self.forget["labels"][:, 1:] != -100            # [B, T-1]: the answer tokens a risk sums over
        return float(mask.sum()) / int(mask.shape[0])         # as run_cache.protocol_run scales its divergence bound

    def key(self, name: str) -> str:
        """The run's name in stated quantities (``gl.lessons.run_key``); an ablation's changes are part of it."""
        from ..lessons.common import run_key
        k = run_key(name, self.model_name, self.figure_setting, self.replication, self.lr_scale)
        return k + (f" · {sorted(self.changes.items())}" if self.changes else "")

    def final(self, key: str) -> dict:
        """What was measured on the run's final model (``run_cache.final_measures``)."""
        return self[key].config.get("final") or {}

    def groups(self, key: str, scheme: str = "paper", term: str = "objective") -> pd.DataFrame:
        """step × (risk_set, group) table of layer-group G-effects."""
        if self.parity:        # the official buckets, named as the paper groups they stand for
            g = self._parity(key)
            g = g[g.group != "total"].assign(group=lambda d: d.group.map(OFFICIAL_AS_PAPER))
        else:
            g = self[key].groups
            g = g[(g.scheme == scheme) & (g.term == term)]
        return g.pivot_table(index="step", columns=["risk_set", "group"], values="value", sort=False)

    def terms(self, key: str) -> pd.DataFrame:
        """step × (risk_set, term) table: objective, forget and each regulariser (Fig. 8)."""
        return self[key].terms.pivot_table(index="step", columns=["risk_set", "term"], values="value", sort=False)

    def layer(self, where: str) -> int:
        return paper_layer(self.model, where)


__all__ = ["RunSpec", "RUN_SPECS", "FIGURE_SETTINGS", "Runs", "npo_pg", "parity_probe"]
