"""The claims scoreboard's committed data (Wang et al. 2025, arXiv 2502.19301): storing a tier's sensitivity runs with
their provenance, merging re-judged claims into them, reading them back, and the three-scale table built from them.

* :func:`save` — a tier's runs (replications × rates), their aggregate and bootstrap intervals as ``results/scoreboard-<model>.json``, with
  ``rules_commit`` in the provenance: the last commit touching the rules (``paper/rules_*.py``, ``claims.py``,
  ``verdicts.py``) when the runs were judged (writing goes through :mod:`geffect_lite.tooling.results`);
* :func:`merge_rejudged` — the committed runs with a few claims' rows replaced by re-judged ones;
* :func:`committed` / :func:`three_scales` — the committed runs of a tier, and claim | paper | group | one column per
  tier. Files committed before replications existed (rows with ``seed``, no ``replication``: :func:`is_legacy`) are
  shown with the verdicts they were committed with (:data:`LEGACY_NOTE`), never re-judged by today's rules.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

import pandas as pd

from .. import results
from .claims import CLAIMS
from .scoreboard import TIER_MODELS, aggregate, intervals

RULES_PATHS = ("geffect_lite/paper/rules_*.py", "geffect_lite/paper/claims.py", "geffect_lite/paper/verdicts.py")
LEGACY_NOTE = "committed under the previous rules (seeds, not replications)"
#: appended to a verdict judged by a previous rule, so it is never read as a test of the statement shown beside it
PREVIOUS = " · previous rule"


def rules_commit() -> str:
    """The full hash of the last commit touching the rules (:data:`RULES_PATHS`; ``git log -1 --format=%H``), with
    "+changes" when those files differ from it; "unknown" outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H", "--", *RULES_PATHS], cwd=root, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *RULES_PATHS],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        sha = out.stdout.strip()
        return sha + ("+changes" if dirty else "") if out.returncode == 0 and sha else "unknown"
    except Exception:
        return "unknown"


def save(model: str, long: pd.DataFrame, command: str, seconds: float, setting: str = "paper") -> None:
    """Commit a tier's sensitivity runs and their aggregate as ``results/scoreboard-<model>.json`` (the paper
    setting, what every table reads) or ``results/scoreboard-<model>-<setting>.json`` (another figure setting, e.g.
    the official recipe: never mixed into the tier's verdicts)."""
    import json
    from ..tooling.results import save as write      # writing is tooling (git, provenance)
    cfg = long.attrs.get("config", {})
    name = f"scoreboard-{model}" + ("" if setting == "paper" else f"-{setting}")
    p = write(name, dict(model=model, rows=long.drop(columns=["values"]).to_dict("records"),
                                           values=long["values"].tolist(), config=cfg,
                                           aggregate=aggregate(long).to_dict("records"),
                                           intervals=intervals(long).to_dict("records")), command, seconds)
    d = json.loads(p.read_text())
    d["provenance"]["rules_commit"] = rules_commit()
    from ..models import model_fingerprint
    d["provenance"]["model_fingerprint"] = model_fingerprint(model)   # which build of the model judged it
    p.write_text(json.dumps(d, indent=1) + "\n")


def _unit(df: pd.DataFrame) -> str:
    return "replication" if "replication" in df else "seed"


def merge_rejudged(model: str, new: pd.DataFrame, command: str):
    """The committed runs of ``model`` with the rows of the re-judged claims replaced by ``new``'s (same replications
    and rates required, committed run order kept); returns (long, the command recording both steps, the committed
    seconds). A file committed under the previous rules cannot be merged into (its runs are seeds)."""
    d = results.load(f"scoreboard-{model}")
    if d is None:
        raise ValueError(f"no committed scoreboard for {model!r} to merge into; run without --claims first")
    old = pd.DataFrame(d["rows"]).assign(values=d.get("values"))
    if _unit(old) != _unit(new):
        raise ValueError(f"the committed scoreboard of {model!r} is {LEGACY_NOTE}; rerun the whole grid instead of "
                         "re-judging a few claims")
    u = _unit(old)
    grid = lambda df: sorted(set(zip(df[u], df.lr_scale)))
    if grid(old) != grid(new):
        raise ValueError(f"the re-judged runs {grid(new)} are not the committed ones {grid(old)}")
    runs = {r: i for i, r in enumerate(dict.fromkeys(zip(old[u], old.lr_scale)))}     # the committed run order
    order = {c.id: i for i, c in enumerate(CLAIMS)}
    long = pd.concat([old[~old.claim.isin(set(new.claim))], new], ignore_index=True)
    long = long.assign(_run=[runs[r] for r in zip(long[u], long.lr_scale)], _claim=long.claim.map(order))
    long = long.sort_values(["_run", "_claim"], kind="stable").drop(columns=["_run", "_claim"]).reset_index(drop=True)
    long.attrs["config"] = dict(d.get("config", {}), rejudged=dict(claims=sorted(set(new.claim)),
                                                                   config=new.attrs.get("config", {})))
    prov = d.get("provenance", {})
    return long, f"{prov.get('command', '?')}; then {command}", float(prov.get("seconds", 0.0))


def committed(model: str) -> Optional[pd.DataFrame]:
    """A tier's committed runs (long format) with ``attrs["provenance"]``, ``attrs["legacy"]`` (committed under the
    previous rules) and ``attrs["aggregate"]`` (the verdicts it was committed with), or None."""
    d = results.load(f"scoreboard-{model}")
    if d is None:
        return None
    df = pd.DataFrame(d["rows"]).assign(values=d.get("values"))
    df.attrs["provenance"] = d.get("provenance", {})
    df.attrs["legacy"] = is_legacy(df)
    df.attrs["aggregate"] = d.get("aggregate", [])
    return df


def is_legacy(long: pd.DataFrame) -> bool:
    """Whether committed rows predate replications (a ``seed`` column and no ``replication``)."""
    return "replication" not in long and "seed" in long


def verdicts_of(model: str) -> Optional[pd.DataFrame]:
    """One verdict per claim of a tier's committed runs: today's :func:`~.scoreboard.aggregate` for files committed
    under these rules; for a legacy file the aggregate stored with it (its data and verdicts are not changed)."""
    long = committed(model)
    if long is None:
        return None
    if not long.attrs["legacy"]:
        return aggregate(long)
    agg = pd.DataFrame(long.attrs["aggregate"])
    if agg.empty:
        raise ValueError(f"results/scoreboard-{model}.json is {LEGACY_NOTE} and stores no aggregate")
    from .scoreboard import _group
    return agg.assign(group=agg.claim.map(_group))


def three_scales(models=TIER_MODELS) -> pd.DataFrame:
    """claim | paper | group | one column per tier ("reproduced (12 of 15)" …), from the committed results; a tier
    with no committed runs (or a claim absent from them) reads "not run". A verdict from a file committed under the
    previous rules ends in :data:`PREVIOUS`: it was judged by the earlier, weaker rule, not by the statement (and
    threshold) in the ``paper`` column."""
    order = {c.id: i for i, c in enumerate(CLAIMS)}
    table = pd.DataFrame(dict(claim=[c.id for c in CLAIMS], paper=[c.paper for c in CLAIMS],
                              group=[c.group for c in CLAIMS]))
    for m in models:
        agg = verdicts_of(m)
        mark = PREVIOUS if agg is not None and committed(m).attrs["legacy"] else ""
        col = {} if agg is None else {c: f"{v}{mark}" for c, v in zip(agg.claim, agg.summary)}
        table[m] = table.claim.map(col).fillna("not run")
    return table.sort_values("claim", key=lambda s: s.map(order)).reset_index(drop=True)



def settings_table(model: str = "tiny", other: str = "official") -> Optional[pd.DataFrame]:
    """The paper's claims judged in the paper setting and in ``other`` on the same replications at the protocol's
    rate (×1): claim | paper setting | <other> setting, each "k of n" with the verdict verdicts.py gives that
    single-rate grid. None when either file is not committed (the paper one must be a present-rule file)."""
    base, alt = committed(model), results.load(f"scoreboard-{model}-{other}")
    if base is None or alt is None or base.attrs.get("legacy"):
        return None
    alt = pd.DataFrame(alt["rows"]).assign(values=alt.get("values"))
    reps = sorted(set(alt.replication))
    base = base[(base.lr_scale == 1.0) & base.replication.isin(reps)]
    alt = alt[alt.lr_scale == 1.0]
    cols, verdicts = {}, {}
    for name, long in (("paper setting", base), (f"{other} setting", alt)):
        a = aggregate(long, rates=(1.0,)).set_index("claim")
        cols[name], verdicts[name] = a.summary, a.verdict
    kind = base.drop_duplicates("claim").set_index("claim").group
    keep = [c for c in kind.index if kind[c] == "claim"]
    out = pd.DataFrame(cols).loc[keep]
    out.attrs["replications"] = reps
    out.attrs["verdicts"] = pd.DataFrame(verdicts).loc[keep]     # the bare verdicts, in the table's row order
    return out.reset_index()


__all__ = ["settings_table", "save", "merge_rejudged", "committed", "is_legacy", "verdicts_of", "three_scales", "rules_commit",
           "RULES_PATHS", "LEGACY_NOTE", "PREVIOUS"]
