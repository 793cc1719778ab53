"""The claims scoreboard's committed data (Wang et al. 2025, arXiv 2502.19301): storing a tier's sensitivity runs with
their provenance, merging re-judged claims into them, reading them back, and the three-scale table built from them.

* :func:`save` — a tier's runs and their aggregate as ``results/scoreboard-<model>.json`` (writing goes through
  :mod:`geffect_lite.tooling.results`, imported when saving);
* :func:`merge_rejudged` — the committed runs with a few claims' rows replaced by re-judged ones;
* :func:`committed` / :func:`three_scales` — the committed runs of a tier, and claim | paper | one column per tier.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd

from .. import results
from .claims import CLAIMS
from .scoreboard import TIER_MODELS, aggregate


def save(model: str, long: pd.DataFrame, command: str, seconds: float) -> None:
    """Commit a tier's sensitivity runs and their aggregate as ``results/scoreboard-<model>.json``."""
    from ..tooling.results import save as write      # writing is tooling (git, provenance)
    cfg = long.attrs.get("config", {})
    write(f"scoreboard-{model}", dict(model=model, rows=long.drop(columns=["values"]).to_dict("records"),
                                       values=long["values"].tolist(), config=cfg,
                                       aggregate=aggregate(long).to_dict("records")), command, seconds)


def merge_rejudged(model: str, new: pd.DataFrame, command: str):
    """The committed runs of ``model`` with the rows of the re-judged claims replaced by ``new``'s (same seeds and
    rates required, committed run order kept); returns (long, the command recording both steps, the committed
    seconds)."""
    d = results.load(f"scoreboard-{model}")
    if d is None:
        raise ValueError(f"no committed scoreboard for {model!r} to merge into; run without --claims first")
    old = pd.DataFrame(d["rows"]).assign(values=d.get("values"))
    grid = lambda df: sorted(set(zip(df.seed, df.lr_scale)))
    if grid(old) != grid(new):
        raise ValueError(f"the re-judged runs {grid(new)} are not the committed ones {grid(old)}")
    runs = {r: i for i, r in enumerate(dict.fromkeys(zip(old.seed, old.lr_scale)))}     # the committed run order
    order = {c.id: i for i, c in enumerate(CLAIMS)}
    long = pd.concat([old[~old.claim.isin(set(new.claim))], new], ignore_index=True)
    long = long.assign(_run=[runs[r] for r in zip(long.seed, long.lr_scale)], _claim=long.claim.map(order))
    long = long.sort_values(["_run", "_claim"], kind="stable").drop(columns=["_run", "_claim"]).reset_index(drop=True)
    long.attrs["config"] = dict(d.get("config", {}), rejudged=dict(claims=sorted(set(new.claim)),
                                                                   config=new.attrs.get("config", {})))
    prov = d.get("provenance", {})
    return long, f"{prov.get('command', '?')}; then {command}", float(prov.get("seconds", 0.0))


def committed(model: str) -> Optional[pd.DataFrame]:
    """A tier's committed runs (long format) with ``attrs["provenance"]``, or None."""
    d = results.load(f"scoreboard-{model}")
    if d is None:
        return None
    df = pd.DataFrame(d["rows"]).assign(values=d.get("values"))
    df.attrs["provenance"] = d.get("provenance", {})
    return df


def three_scales(models=TIER_MODELS) -> pd.DataFrame:
    """claim | paper | one column per tier ("reproduced (5 of 5)" …), from the committed results."""
    table = None
    for m in models:
        long = committed(m)
        col = aggregate(long)[["claim", "paper", "summary"]].rename(columns={"summary": m}) if long is not None \
            else pd.DataFrame(dict(claim=[c.id for c in CLAIMS], paper=[c.paper for c in CLAIMS], **{m: "not run"}))
        table = col if table is None else table.merge(col.drop(columns="paper"), on="claim", how="outer")
    order = {c.id: i for i, c in enumerate(CLAIMS)}
    return table.sort_values("claim", key=lambda s: s.map(order)).reset_index(drop=True)


__all__ = ["save", "merge_rejudged", "committed", "three_scales"]
