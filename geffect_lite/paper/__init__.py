"""The paper's results, re-done: the claims scoreboard, the Table 1 analogue, the diagnoses of what does not
reproduce, the accumulated G-effect, and parity with the official code — for Wang et al. 2025 (arXiv 2502.19301).

==================  ==========================================================================================
module              what
==================  ==========================================================================================
``runs``            the trajectories the claims read (RUN_SPECS), under the protocol's settings
``claims``          the machinery: a claim is a stated rule returning a verdict, its numbers and its reason
``rules_*``         the rules, by part of the paper (identities; GA/WGA; NPO/TNPO; PO/RMU/regularisers; insights)
``scoreboard``      the verdicts: the scoreboard at one seed, over seeds and rates (fragile), aggregated
``scoreboard_io``   the committed scoreboards: save, merge re-judged claims, read, the three-scale table
``render``          the three-scale table in Markdown (the README's block) and the runs behind each column
``table``           the Table 1 analogue over seeds, with ties read as "not comparable"
``diagnoses``       for every miss, the ablation that varies one factor
``accumulated``     Σ_t −η_t·e_t against the realised change of the risk
``parity``          G-effects the way the official code computes them (EMA, buckets)
``trajectories_io`` committed per-step rows of a tier's paper-objective runs (SmolLM2's, for notebook 12)
==================  ==========================================================================================
"""
from . import accumulated, diagnoses
from .claims import CLAIMS, VERDICTS
from .runs import RUN_SPECS, Runs
from .render import runs_line
from .scoreboard import aggregate, scoreboard, sensitivity
from .scoreboard_io import committed, three_scales
from .table import agreement, committed_table, plot_fq_mu, table1, tables


def __getattr__(name):      # trajectories_io on first use, so `python -m geffect_lite.paper.trajectories_io` runs clean
    if name == "trajectories_io":
        import importlib
        return importlib.import_module(f"{__name__}.trajectories_io")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["accumulated", "diagnoses", "trajectories_io", "CLAIMS", "VERDICTS", "RUN_SPECS", "Runs", "scoreboard", "sensitivity", "aggregate", "committed", "runs_line",
           "three_scales", "table1", "tables", "committed_table", "agreement", "plot_fq_mu"]
