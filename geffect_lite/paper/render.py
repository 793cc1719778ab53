"""The claims scoreboard in Markdown: the three-scale tables claim | paper | tiny | deep | SmolLM2 of Wang et al. 2025
(arXiv 2502.19301) — one for the paper's claims, one for the implementation checks, one for the project's extensions,
each with its verdict counts per tier — with the line that says which runs stand behind each column (and, for a file
committed before replications existed, that it was judged under the previous rules), and the README block it fills;
Table 1 as a frontier (``frontier.py``), one table for every tier whose frontier is committed; and the paper's claims
in the paper setting beside the official recipe's (``scoreboard_io.settings_table``).
"""
from __future__ import annotations

import pandas as pd

from .. import results
from . import frontier as F
from .claims import GROUPS
from .scoreboard import FINAL, TIER_MODELS
from .scoreboard_io import LEGACY_NOTE, PREVIOUS, committed, settings_table, three_scales

GROUP_TITLES = {"claim": "The paper's claims", "check": "Implementation checks (not claims of the paper)",
                "extension": "Extensions (the project's own inferences, not claims of the paper)"}


def markdown(models=TIER_MODELS) -> str:
    """The three-scale tables as Markdown (the README's, between its ``claims`` markers; a test keeps them equal):
    one per group (GROUPS), each followed by its verdict counts per tier."""
    t = three_scales(models)
    lines = []
    if t[list(models)].astype(str).apply(lambda c: c.str.endswith(PREVIOUS)).to_numpy().any():
        lines += ["Verdicts marked *previous rule* were judged by the earlier, weaker rules over seeds (not "
                  "replications); they have not been re-judged under the rules now stated in the *paper* column "
                  "(docs/rules.md lists each previous rule beside its present one). They stay here as the record of "
                  "that round, not as tests of these statements.", ""]
    for g in ("claim", "check", "extension"):
        part = t[t.group == g]
        if part.empty:
            continue
        lines += [f"**{GROUP_TITLES[g]}** ({len(part)})", "", "| claim | paper | " + " | ".join(models) + " |",
                  "|---|---|" + "---|" * len(models)]
        lines += [f"| `{r['claim']}` | {r['paper']} | " + " | ".join(str(r[m]) for m in models) + " |"
                  for r in part.to_dict("records")]
        lines += ["", "Counts: " + "; ".join(f"`{m}`: {tally(part[m])}" for m in models) + ".", ""]
    lines += ["Runs behind each column: " + "; ".join(f"`{m}`: {runs_line(m)}" for m in models) + "."]
    return "\n".join(lines) + "\n"


def tally(col) -> str:
    """"3 reproduced, 1 fragile, 6 not reproduced" from a column of summaries ("reproduced (12 of 15)", …)."""
    seen = col.astype(str).str.replace(r" \(.*$", "", regex=True).value_counts()
    return ", ".join(f"{seen[v]} {v}" for v in FINAL if v in seen) or "none"


def compute_seconds(model: str) -> float:
    """How long a tier's committed runs took: the saving command's time, or — when the trajectories came from the disk
    cache — the sum of their own recorded compute times (each run's ``run_seconds``; Table 1's time is not in it),
    whichever is larger."""
    d = results.load(f"scoreboard-{model}") or {}
    cfg = d.get("config", {})
    trajectories = sum(sum(r.get("run_seconds", {}).values()) for r in cfg.get("runs", [cfg]))
    return max(float(d.get("provenance", {}).get("seconds", 0.0)), float(trajectories))


def runs_line(model: str) -> str:
    """The committed runs of a tier in words ("replications 0–4 at ×0.5, ×1, ×2 (15 runs, 41 min); rules of
    <commit>"); a file committed before replications: its seeds and rates, then :data:`LEGACY_NOTE`."""
    long = committed(model)
    if long is None:
        return "none committed"
    if "replication" in long:
        n = len(set(zip(long.replication, long.lr_scale)))
        rules = long.attrs["provenance"].get("rules_commit", "unknown")[:7]
        return (_grid_words(long) + f" ({n} run{'s' if n > 1 else ''}, "
                f"{compute_seconds(model) / 60:.0f} min; rules of {rules})" + _build_note(long, model))
    return _legacy_line(long, model) + _build_note(long, model)


def _grid_words(long) -> str:
    """Each set of replications with the rates run at it, the largest set first: "replications 0, 1 at ×0.5, ×1", or
    for an uneven grid "replications 0, 1, 2 at ×1; ×0.5, ×2 at replication 0"."""
    rates = {}
    for k, g in long.groupby("lr_scale"):
        rates.setdefault(tuple(sorted(set(g.replication))), []).append(f"×{k:g}")
    parts = [(f"replication{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}", ", ".join(ks))
             for rs, ks in sorted(rates.items(), key=lambda g: -len(g[0]))]
    return "; ".join(f"{r} at {k}" if i == 0 else f"{k} at {r}" for i, (r, k) in enumerate(parts))


def _build_note(long, model: str) -> str:
    """", on an earlier build of the model" when the committed runs' model is not the one shipped now."""
    from ..models import model_fingerprint
    fp = long.attrs["provenance"].get("model_fingerprint")
    if fp is None and model in ("tiny", "deep"):                                        # shipped, never rebuilt
        return ""
    if model == "smollm2-tofu":     # its fingerprint hashes the converted base: convert it (once, offline), or a
        from ..models.smollm2 import convert_smollm2    # machine that has not would call every build "earlier"
        convert_smollm2()
    if fp == model_fingerprint(model):
        return ""
    return ", on an earlier build of the model"


def _legacy_line(long, model: str) -> str:
    seeds = sorted(set(long[long.lr_scale == 1.0].seed))
    scales = sorted(set(long.lr_scale) - {1.0})
    out = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} at the protocol's rate"
    if scales:
        out += f"; {', '.join(f'×{k:g}' for k in scales)} the rate at seed {min(long.seed)}"
    minutes = compute_seconds(model) / 60
    n = len(set(zip(long.seed, long.lr_scale)))
    return out + f" ({n} run{'s' if n > 1 else ''}, {minutes:.0f} min) — {LEGACY_NOTE}"


FRONTIER_COLUMNS = (("claims", "official"), ("claims", "figures"), ("matched_claims", "official"),
                    ("matched_claims", "figures"))


def frontier_markdown(models=TIER_MODELS) -> str:
    """The Table 1 frontier comparisons as Markdown (the README's, between its ``frontier`` markers; a test keeps
    them equal): for each tier with a committed ``results/frontier-<model>.json``, won / lost / tied cells and the
    verdict of each pair, by the frontier rule and at the matched forget level (recomputed from the committed
    points, as notebook 13 does), for both hyper-parameter sets; a tier without one is named as not run."""
    lines, missing = [], []
    for m in models:
        d = results.load(f"frontier-{m}")
        if d is None:
            missing.append(m)
            continue
        got = {"claims": F.claims(pd.DataFrame(d["rows"]))}             # the rules on the committed points
        if d.get("matched"):
            got["matched_claims"] = F.matched_claims(pd.DataFrame(d["matched"]))
        by = {(kind, r["hparams"], r["new"], r["old"]): r for kind, t in got.items() for r in t.to_dict("records")}
        pairs = list(dict.fromkeys(zip(got["claims"].new, got["claims"].old)))
        reps = sorted({int(r["replication"]) for r in d["rows"]})
        p = d.get("provenance", {})
        lines += [f"`{m}` ([results/frontier-{m}.json](geffect_lite/results/frontier-{m}.json): replications "
                  f"{', '.join(map(str, reps))}, {p.get('seconds', float('nan')) / 60:.0f} min of runs, committed from "
                  f"`{p.get('commit', '?')}`):", "",
                  "| new vs old | frontier, official (won / lost / tied) | frontier, figures' | matched level, official "
                  "| matched level, figures' |", "|---|---|---|---|---|"]
        for a, b in pairs:
            cells = []
            for kind, h in FRONTIER_COLUMNS:
                r = by.get((kind, h, a, b))
                cells.append("not run" if r is None else
                             f"{r['wins']} / {r['losses']} / {r['ties']} of {r['cells']} {r['verdict']}")
            lines.append(f"| {a.upper()} vs {b.upper()} | " + " | ".join(cells) + " |")
        lines.append("")
    if missing:
        lines.append("No frontier is committed for " + ", ".join(f"`{m}`" for m in missing) + ": "
                     + ("its" if len(missing) == 1 else "their") + " Table 1 comparisons read *not run*.")
    return "\n".join(lines).rstrip("\n") + "\n"


def settings_markdown(model: str = "tiny", other: str = "official") -> str:
    """The paper's claims in the paper setting and in ``other`` (the official recipe) as Markdown (the README's,
    between its ``settings`` markers; a test keeps them equal): :func:`scoreboard_io.settings_table` on the committed
    files, the claims whose verdict differs, and whether any claim that misses in the paper setting holds in ``other``
    (so whether the paper setting's misses could come from its full batch and constant rate)."""
    t = settings_table(model, other)
    if t is None:
        return f"No `{other}`-setting scoreboard is committed for `{model}`.\n"
    a, b = "paper setting", f"{other} setting"
    word = t.attrs["verdicts"]                          # settings_table's verdicts, not parsed back out of its text
    d = results.load(f"scoreboard-{model}-{other}")
    p = d.get("provenance", {})
    reps = t.attrs["replications"]
    lines = [f"`{model}`, replications {', '.join(map(str, reps))} at ×1 in both settings "
             f"([results/scoreboard-{model}-{other}.json](geffect_lite/results/scoreboard-{model}-{other}.json): "
             f"{p.get('seconds', float('nan')) / 60:.0f} min of runs, committed from `{p.get('commit', '?')[:7]}`, "
             f"rules of `{p.get('rules_commit', '?')[:7]}`):", "",
             f"| claim | {a} | {b} |", "|---|---|---|"]
    lines += [f"| `{r['claim']}` | {r[a]} | {r[b]} |" for r in t.to_dict("records")]
    differ = [c for c, x, y in zip(t.claim, word[a], word[b]) if x != y]
    only_other = [c for c, x, y in zip(t.claim, word[a], word[b]) if x == "not reproduced" and y in ("reproduced",
                                                                                                     "fragile")]
    lines += ["", f"The two settings give the same verdict on {len(t) - len(differ)} of the {len(t)} claims"
              + (f"; they differ on {_and(differ)}." if differ else ".")]
    lines.append(f"No claim that is not reproduced in the paper setting holds in the {other} one." if not only_other
                 else f"Not reproduced in the paper setting but holding in the {other} one: " + _and(only_other) + ".")
    return "\n".join(lines) + "\n"


def _and(names) -> str:
    """"`a`, `b` and `c`"."""
    q = [f"`{n}`" for n in names]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]


def readme_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced by ``body``."""
    a, b = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    i, j = text.index(a) + len(a), text.index(b)
    return text[:i] + body + text[j:]


__all__ = ["markdown", "frontier_markdown", "settings_markdown", "tally", "GROUP_TITLES", "compute_seconds", "runs_line", "readme_block"]
