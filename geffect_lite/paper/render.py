"""The claims scoreboard in Markdown: the three-scale table claim | paper | tiny | deep | SmolLM2 of Wang et al. 2025
(arXiv 2502.19301) with the line that says which runs stand behind each column, and the README block it fills.
"""
from __future__ import annotations

from .. import results
from .scoreboard import TIER_MODELS
from .scoreboard_io import committed, three_scales


def markdown(models=TIER_MODELS) -> str:
    """The three-scale table as Markdown (the README's, between its ``claims`` markers; a test keeps them equal)."""
    t = three_scales(models)
    lines = ["| claim | paper | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    lines += [f"| `{r['claim']}` | {r['paper']} | " + " | ".join(str(r[m]) for m in models) + " |"
              for r in t.to_dict("records")]
    lines += ["", "Runs behind each column: " + "; ".join(f"`{m}`: {runs_line(m)}" for m in models) + "."]
    return "\n".join(lines) + "\n"


def compute_seconds(model: str) -> float:
    """How long a tier's committed runs took: the saving command's time, or — when the trajectories came from the disk
    cache — the sum of their own recorded compute times (each run's ``run_seconds``; Table 1's time is not in it),
    whichever is larger."""
    d = results.load(f"scoreboard-{model}") or {}
    cfg = d.get("config", {})
    trajectories = sum(sum(r.get("run_seconds", {}).values()) for r in cfg.get("runs", [cfg]))
    return max(float(d.get("provenance", {}).get("seconds", 0.0)), float(trajectories))


def runs_line(model: str) -> str:
    """The committed runs of a tier in words ("seeds 0, 1, 2 at the protocol's rate; ×0.5, ×2 at seed 0; 41 min")."""
    long = committed(model)
    if long is None:
        return "none committed"
    seeds = sorted(set(long[long.lr_scale == 1.0].seed))
    scales = sorted(set(long.lr_scale) - {1.0})
    out = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} at the protocol's rate"
    if scales:
        out += f"; {', '.join(f'×{k:g}' for k in scales)} the rate at seed {min(long.seed)}"
    minutes = compute_seconds(model) / 60
    n = len(set(zip(long.seed, long.lr_scale)))
    return out + f" ({n} run{'s' if n > 1 else ''}, {minutes:.0f} min)"


def readme_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced by ``body``."""
    a, b = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    i, j = text.index(a) + len(a), text.index(b)
    return text[:i] + body + text[j:]


__all__ = ["markdown", "compute_seconds", "runs_line", "readme_block"]
