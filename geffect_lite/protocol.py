"""The experimental protocol: how every trajectory of the project is run, fixed once, per model, by a stated rule.

Every notebook, the demo, the explorer and the claims scoreboard take their settings from here; a notebook deviates
only where the deviation is the lesson, and says so. Five settings:

* ``paper`` — the paper's optimiser, AdamW (no weight decay, no schedule), one learning rate for every objective,
  **full batch** on the forget set: the G-effect is then measured on exactly the gradient that makes the step, and
  the paper's figures are trajectories of one objective at one learning rate (Figs. 3–8).
* ``theory`` — plain SGD, θ ← θ − η∇L: the G-effect's own assumption (ΔR ≈ −η·e), where the optimiser-aware and the
  raw G-effect coincide.
* ``table1`` — the paper's Table 1 recipe scaled down: AdamW, mini-batches of ≤ 16 forget rows each paired with as
  many random retain rows (the official code's effective batch 16), linear warm-up over one epoch then linear decay
  to 0, 5 epochs.
* ``official`` — the figures' runs as the official code makes them (docs/paper.md): AdamW, an effective batch of
  16 forget rows (the official 4 × 4 gradient accumulation) each paired with a random retain row, warm-up over the
  first epoch then linear decay to 0, 5 epochs (forget05 = 50 rows → 4 mini-batches an epoch → 20 steps), token-mean
  risks. It is the setting behind the paper's Figs. 3–8 as the official scripts produce them (the figures plot the
  G-effect along such a run), where ``paper`` is the same trajectories at full batch and a constant rate. Its rate
  is the ``paper`` setting's calibrated rate — a choice, so that the two settings differ only in batching and
  schedule; calibrating ``official`` by the same rule on its own schedule would be the alternative. G-effects are
  measured on each step's mini-batch (the gradient that makes the step). RMU's objective is not changed here. Ours
  averages the squared distance over the hidden size, then over each answer's positions, then over the batch
  (``objectives/rmu.py``); a flat ``.mean()`` over all [batch, position, hidden] elements equals it only when every
  sequence counts the same number of positions, so with answers of unequal length the two weight sequences
  differently (docs/paper.md lists the official reductions; ``paper/parity.py`` measures G-effects as the official
  code does).
* ``eval`` — what the Table 1 analogue evaluates (``EVAL``).

**Replications** (``Setting.replication``): what a second lab would change — a different set of fictitious authors to
forget (same size, always inside forget10, which the retain-only twins never saw, so forget quality stays defined)
and different retain rows; replication r also sets the seed to r unless one is given. What a replication does NOT
change: the model and its training seed (the tiers were not retrained per replication). Replication 0 is the
protocol as it always was (same rows, same cache keys). ``setting_data.replication_authors`` is the one place the
authors are chosen.

**Learning rates.** Each learning rate is fixed by one stated, re-derivable rule (:data:`RULE`, ``calibrate``,
printed by ``python -m geffect_lite protocol``): on a ×2 grid, the rate at which GA's forget risk first exceeds
ln |V| closest to the middle of the run, as the paper's GA does. The rule was not written blind. It was introduced on
2026-11-30 (a2a40d6), three days after verdicts of an earlier version of the claims had been computed and committed
in notebook 13 (a41e8a8, 0812dd7, 410c4c7: 14–15 reproduced, 10–11 not). Before that, an earlier claims module had
set tiny's Table 1 rate to 1.5e-3 because "at 2e-3 every unregularised objective but NPO ends at utility 0"; the rule
picks 2e-3 for that table. What the project does guarantee is that every setting and model gets its rate by the same
criterion, and that the rules judging the claims (docs/rules.md) were revised, with thresholds taken from the paper's
own numbers, in a commit that precedes every run that judges them.

**The paper's figure settings** are :data:`FIGURES` — one entry per objective and hyper-parameters of Figs. 3–8 —
which both the demo (:data:`DEMO`, a selection of them) and the claims scoreboard's runs read.

Models (``TIERS``): ``tiny`` (6 blocks), ``deep`` (24 blocks, hidden 64: depth for the layer claims) and
``smollm2-tofu`` (30 layers, tied embeddings). Fast mode (CI, ``GEFFECT_FAST=1``) shrinks the tiny tier only
(fewer steps and rows), with learning rates fixed by the same rule for the shrunk runs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Tuple


from .config import fast_mode

SETTINGS = ("paper", "theory", "table1")          # the calibrated settings (each has its own rate by the rule)
ALL_SETTINGS = SETTINGS + ("official",)           # official: the paper setting's rate (see the docstring)
FIGURE_SETTINGS = ("paper", "official")           # where the claims' figure runs can be made
GRID_FACTOR = 2.0

#: per model: the forget rows (split, and the last |n| of them when n < 0), retain rows drawn per seed, steps
TIERS: Dict[str, dict] = {
    "tiny": dict(split="forget05", n_forget=None, n_retain=16, steps=24, table1=True),
    "deep": dict(split="forget05", n_forget=None, n_retain=16, steps=24, table1=True),
    "smollm2-tofu": dict(split="smollm2", n_forget=-10, n_retain=8, steps=12, table1=False),  # 1 author: ≤ 45 min
}
FAST_TIER = dict(split="forget05", n_forget=-30, n_retain=8, steps=12, table1=True)   # tiny under GEFFECT_FAST
TABLE1 = dict(batch=16, epochs=5, warmup_epochs=1)
OFFICIAL = dict(TABLE1)      # the official code's recipe (effective batch 16, 1 warm-up epoch, 5 epochs), any tier
FAST_TABLE1 = dict(batch=16, epochs=3, warmup_epochs=1)
#: evaluation of the Table 1 analogue: rows per split (None = all), generation budget, seeds reported
EVAL = dict(n_eval=None, fast_n_eval=20, seeds=(0, 1, 2))

RULE = ("The rule that fixes each learning rate (``calibrate`` re-derives it; it was introduced after verdicts of an "
        "earlier version of the claims had been seen — the protocol module's docstring gives the history): on a ×2 grid, take the learning rate at which GA's forget risk first exceeds ln |V| — the NLL of a "
        "uniform guess over the vocabulary — closest to the middle of the run (ties: the smaller rate). The paper's "
        "GA (Llama-2-7B, lr 1e-5, AdamW, ≈ 60 steps) crosses that level between steps 25 and 30 of 60: its forget "
        "NLL is ≈ 5 nats at step 25 and ≈ 40 at step 30, for ln(32,000) ≈ 10.4. Each setting and model gets its own "
        "rate by the same rule, so \"the middle of the run\" means the same thing on a 1.5 M-parameter model and on "
        "SmolLM2; every other objective then runs at that rate, as in the paper. For ``table1`` the run is its whole "
        "schedule (GA crosses ln |V| in the middle epoch).")


class Figure(NamedTuple):
    """One of the paper's figure settings: a label, the objective, its hyper-parameters (RMU's ``layer`` is a named
    depth, "shallow" / "middle" / "deep", resolved per model by ``layers.paper_layer``) and the figure."""
    label: str
    objective: str
    hparams: dict
    figure: str


#: the paper's figure settings, Figs. 3–8 (RMU's scale c = 5, as in Fig. 7), keyed as the scoreboard's runs are
FIGURES: Dict[str, Figure] = {
    "ga": Figure("GA", "ga", {}, "Fig. 3a–b"),
    "wga": Figure("WGA (α=0.5)", "wga", {"alpha": 0.5}, "Fig. 3c"),
    "npo_b0.1": Figure("NPO (β=0.1)", "npo", {"beta": 0.1}, "Fig. 4"),
    "npo_b1": Figure("NPO (β=1)", "npo", {"beta": 1.0}, "Figs. 4, 5a–b"),
    "npo_b2": Figure("NPO (β=2)", "npo", {"beta": 2.0}, "Fig. 4"),
    "tnpo": Figure("TNPO (β=1)", "tnpo", {"beta": 1.0}, "Fig. 5c"),
    "wtnpo": Figure("WTNPO", "wtnpo", {}, "proposed with Eq. 6 (no figure of its own)"),
    "po": Figure("PO", "po", {}, "Fig. 6"),
    "rmu_shallow": Figure("RMU (shallow)", "rmu", {"layer": "shallow", "c": 5.0}, "Fig. 7"),
    "rmu_middle": Figure("RMU (middle)", "rmu", {"layer": "middle", "c": 5.0}, "Fig. 7"),
    "rmu_deep": Figure("RMU (deep)", "rmu", {"layer": "deep", "c": 5.0}, "Fig. 7"),
    "ga+gd": Figure("GA+GD", "ga+gd", {}, "Fig. 8a"),
    "ga+kl": Figure("GA+KL", "ga+kl", {}, "Fig. 8b"),
    "ga+rr": Figure("GA+RR", "ga+rr", {}, "Fig. 8c"),
}

#: the figures the demo runs (``make demo``), in its panel order
DEMO_FIGURES = ("ga", "wga", "npo_b1", "tnpo", "wtnpo", "po", "rmu_middle", "ga+gd", "ga+kl")


def objective_hparams(hparams: dict) -> dict:
    """A figure's hyper-parameters as an objective takes them without a model at hand: RMU's ``layer="middle"`` is
    its default (None, the middle layer by ``layers.paper_layer``); "shallow" / "deep" need the model (the
    scoreboard's ``Runs.spec`` resolves them)."""
    return {k: v for k, v in hparams.items() if not (k == "layer" and v == "middle")}


#: the demo's objectives: label → (objective, hyper-parameters), read from :data:`FIGURES`
DEMO = {FIGURES[k].label: (FIGURES[k].objective, objective_hparams(FIGURES[k].hparams)) for k in DEMO_FIGURES}

#: the learning rates fixed by the rule, with the calibration that chose them (``calibrate``; data in
#: geffect_lite/results/calibration.json). Keyed by (setting, model, fast).
LR: Dict[Tuple[str, str, bool], float] = {}


@dataclass(frozen=True)
class Setting:
    """One experimental setting: the optimiser and the data of a trajectory (a frozen, hashable record)."""
    name: str                      # paper | theory | table1
    model: str                     # a geffect_lite.load_model name
    optimizer: str                 # adamw | sgd
    lr: float                      # from LR (the rule), unless an ablation changes it
    steps: int                     # optimiser steps (table1: epochs × mini-batches)
    split: str                     # forget split ("smollm2": smollm2-tofu's own two authors)
    n_forget: Optional[int]        # None: the whole split; n < 0: its last |n| rows (the last authors)
    n_retain: int                  # retain rows, drawn with the seed from the matching retain pool
    batch: Optional[int] = None    # None: full batch; else mini-batches of this many forget rows
    warmup: int = 0                # linear warm-up steps
    decay: bool = False            # linear decay to 0 after the warm-up
    risk: str = "token_mean"       # the risk's reduction (token_mean = the official code; seq_sum = the equations)
    seed: int = 0                  # retain rows, mini-batch order, RMU's random direction
    fast: bool = False
    replication: int = 0           # which authors are forgotten (setting_data.replication_authors); 0 = the protocol's

    def replace(self, **changes) -> "Setting":
        """A copy with some fields changed (an ablation), e.g. ``S.replace(lr=S.lr * 2)``."""
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """A stable short hash of every field (for caches). Replication 0 is left out, so the keys of the protocol's
        own runs are those they had before replications existed."""
        fields = dataclasses.asdict(self)
        if not fields["replication"]:
            del fields["replication"]
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]

    def run_kwargs(self) -> dict:
        """The optimisation arguments of ``gl.run`` for this setting."""
        return dict(steps=self.steps, lr=self.lr, optimizer=self.optimizer, warmup=self.warmup, decay=self.decay,
                    risk=self.risk, seed=self.seed)

    def describe(self) -> str:
        batch = "full batch" if self.batch is None else f"mini-batches of {self.batch}"
        sched = f", warm-up {self.warmup} steps then linear decay" if self.decay else ""
        return (f"{self.name}: {self.optimizer} lr {self.lr:g}, {self.steps} steps, {batch}{sched}, model "
                f"{self.model}, forget {self.split}{'' if self.n_forget is None else f' (last {-self.n_forget})'}, "
                f"{self.n_retain} retain rows, risk {self.risk}, seed {self.seed}"
                + (f", replication {self.replication}" if self.replication else ""))


# --------------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------------
def rule() -> str:
    """The rule that fixes the learning rates (:data:`RULE`, one paragraph)."""
    return RULE


def tier(model: str, fast: bool = False) -> dict:
    """The data and step budget of a model tier (fast mode: the shrunk tiny tier)."""
    if model not in TIERS:
        raise ValueError(f"no protocol for model {model!r}; tiers: {', '.join(TIERS)}")
    return dict(FAST_TIER) if fast and model == "tiny" else dict(TIERS[model])


def setting(name: str = "paper", model: str = "tiny", fast: Optional[bool] = None, seed: Optional[int] = None,
            lr: Optional[float] = None, replication: int = 0) -> Setting:
    """The protocol's setting ``name`` for ``model`` (fast mode from the environment unless given). ``replication``
    r chooses the forgotten authors (``setting_data.replication_authors``) and, unless ``seed`` is given, the seed r."""
    if name not in ALL_SETTINGS:
        raise ValueError(f"unknown setting {name!r}; valid: {', '.join(ALL_SETTINGS)}")
    if isinstance(replication, bool) or not isinstance(replication, numbers.Integral) or replication < 0:
        raise ValueError(f"replication must be an int ≥ 0 (0 = the protocol's own forget set), got {replication!r}")
    replication = int(replication)
    seed = replication if seed is None else seed
    fast = fast_mode() if fast is None else bool(fast)
    fast = fast and model == "tiny"
    t = tier(model, fast)
    if lr is None:
        lr = calibrated_lr("paper" if name == "official" else name, model, fast)
    common = dict(name=name, model=model, lr=float(lr), split=t["split"], n_forget=t["n_forget"],
                  n_retain=t["n_retain"], seed=seed, fast=fast, replication=replication)
    if name in ("table1", "official"):
        tb = OFFICIAL if name == "official" else FAST_TABLE1 if fast else TABLE1
        per_epoch = max(1, math.ceil(n_forget_rows(t) / tb["batch"]))
        return Setting(optimizer="adamw", steps=tb["epochs"] * per_epoch, batch=tb["batch"],
                       warmup=tb["warmup_epochs"] * per_epoch, decay=True, **common)
    return Setting(optimizer="adamw" if name == "paper" else "sgd", steps=t["steps"], **common)


def n_forget_rows(t: dict) -> int:
    """How many forget rows a tier unlearns (forget05: 50; smollm2-tofu's two authors: 20)."""
    whole = 20 if t["split"] == "smollm2" else 10 * int(t["split"][-2:])
    return whole if t["n_forget"] is None else min(whole, abs(t["n_forget"]))


def calibrated_lr(name: str, model: str, fast: bool) -> float:
    if not LR:
        LR.update(load_calibration())
    key = (name, model, bool(fast))
    if key not in LR:
        raise KeyError(f"no calibrated learning rate for setting {name!r} on {model!r} (fast={fast}); run "
                       f"`python -m geffect_lite protocol --calibrate --model {model}` or pass lr= explicitly")
    return LR[key]


def load_calibration() -> Dict[Tuple[str, str, bool], float]:
    from .results import load
    data = load("calibration") or {}
    return {(c["setting"], c["model"], bool(c["fast"])): float(c["lr"]) for c in data.get("chosen", [])}


__all__ = ["Setting", "Figure", "setting", "rule", "tier", "calibrated_lr", "load_calibration", "n_forget_rows",
           "objective_hparams", "SETTINGS", "ALL_SETTINGS", "FIGURE_SETTINGS", "OFFICIAL", "TIERS", "FAST_TIER", "TABLE1", "FAST_TABLE1", "EVAL", "RULE", "FIGURES",
           "DEMO_FIGURES", "DEMO", "LR", "GRID_FACTOR"]
