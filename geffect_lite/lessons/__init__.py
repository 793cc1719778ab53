"""What each notebook says about its run, out of the student's way: one function per reading (e.g.
``gl.lessons.ga_spike(live, runs)``) returns Markdown whose every sentence about the run is chosen by the rule of the
claim it describes (:mod:`.common`), or by an explicit condition on the number it prints.

Modules: :mod:`.ga` (notebooks 03–04: GA and WGA), :mod:`.npo` (05: NPO), :mod:`.tnpo` (06: TNPO, WTNPO),
:mod:`.po_rmu_reg` (07–08: PO and RMU), :mod:`.regularisers` (09) and :mod:`.tiers` (12: SmolLM2 against tiny);
``*_checks`` hold the shared checks, which raise if a reading ever disagrees with its claim's verdict.
"""
from .common import (as_in, at_end, end_states, head, num, pick, rate_note, Reading, run_key, values_of, verdict_of,
                     with_end)
from .ga import (
    confidence_at_start, ga_spike, ga_collapse, ga_layers, ga_lm_head, ga_raw_vs_adam, ga_summary, weight_growth,
    partly_unlearned, wga_vs_ga, wga_alphas, risk_weighting, wga_summary,
)
from .npo import npo_beta, npo_pool, npo_weight_bins, npo_adam_vs_sgd, npo_summary
from .tnpo import tnpo_balance, tnpo_forgotten_weight, ga_moved_tokens, tnpo_token_drivers, tnpo_summary
from .tiers import tier_contrast
from .po_rmu_reg import (
    po_at_start, po_relearning, idkdpo_run, po_summary, rmu_target, rmu_layers_at_start, rmu_layers, rmu_c_sweep,
    rmu_summary, kl_positions, reg_at_start, reg_terms, gd_geometry, gd_cancel, gd_utility, kl_best, reg_summary,
)

__all__ = [
    "verdict_of", "values_of", "head", "as_in", "Reading", "num", "pick", "rate_note", "at_end", "run_key",
    "end_states", "with_end", "confidence_at_start", "ga_spike",
    "ga_collapse", "ga_layers", "ga_lm_head", "ga_raw_vs_adam", "ga_summary", "weight_growth", "partly_unlearned",
    "wga_vs_ga", "wga_alphas", "risk_weighting", "wga_summary", "npo_beta", "npo_pool", "npo_weight_bins",
    "npo_adam_vs_sgd", "npo_summary", "tnpo_balance", "tnpo_forgotten_weight", "ga_moved_tokens",
    "tnpo_token_drivers", "tnpo_summary", "po_at_start", "po_relearning", "idkdpo_run", "po_summary", "rmu_target",
    "rmu_layers_at_start", "rmu_layers", "rmu_c_sweep", "rmu_summary", "kl_positions", "reg_at_start", "reg_terms",
    "gd_geometry", "gd_cancel", "gd_utility", "kl_best", "reg_summary", "tier_contrast",
]
