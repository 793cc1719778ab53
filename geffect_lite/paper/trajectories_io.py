"""Committed trajectories: the per-step G-effects and risks of a tier's paper-objective runs, kept beside its
scoreboard (``results/trajectories-<model>.json``) so that a notebook can show a tier whose runs take an hour on
2 cores (SmolLM2: Wang et al. 2025, arXiv 2502.19301, Figs. 3–8 are drawn from such per-step rows).

* :func:`save` — read the runs of :data:`RUNS` from the run cache (``Runs(model)``: the scoreboard's own runs, so a
  scoreboard run just before makes this a read; otherwise they are computed) and write their step rows with
  provenance (the commit, and the model build's fingerprint);
* :func:`committed` — the committed rows as one tidy frame (run, objective, figure, step, e_u, e_r, risks, …), or
  None. ``attrs["provenance"]`` says where they came from.

``python -m geffect_lite.paper.trajectories_io --model smollm2-tofu`` writes the file.
"""
from __future__ import annotations

import argparse
import time
from typing import Optional, Sequence

import pandas as pd

RUNS = ("ga", "wga", "npo_b1", "tnpo", "po", "rmu_middle", "ga+gd", "ga+kl", "ga+rr")
COLUMNS = ("step", "lr", "e_u", "e_r", "risk_u", "risk_r", "real_du", "real_dr", "w_mean_weight")


def _name(model: str, replication: int) -> str:
    return f"trajectories-{model}" + (f"-r{replication}" if replication else "")


def save(model: str = "smollm2-tofu", replication: int = 0, runs: Sequence[str] = RUNS, progress: bool = True):
    """Write the step rows of ``runs`` (paper setting, rate ×1) for ``model`` at ``replication``; returns the path."""
    from ..models import model_fingerprint
    from ..tooling.results import save as write
    from .runs import RUN_SPECS, Runs
    bad = [r for r in runs if r not in RUN_SPECS]
    if bad:
        raise ValueError(f"unknown runs {bad}; valid: {', '.join(RUN_SPECS)}")
    t0, R = time.time(), Runs(model, replication=replication, fast=False, progress=progress)
    rows = []
    for name in runs:
        s = R.steps(name)
        keep = [c for c in COLUMNS if c in s]
        for r in s[keep].to_dict("records"):
            rows.append(dict(run=name, objective=RUN_SPECS[name].objective, figure=RUN_SPECS[name].figure,
                             **{k: (None if v != v else float(v)) for k, v in r.items()}))
    cmd = f"python -m geffect_lite.paper.trajectories_io --model {model} --replication {replication}"
    payload = dict(model=model, replication=replication, setting=R.setting("paper").describe(), runs=list(runs),
                   rows=rows, model_fingerprint=model_fingerprint(model))
    return write(_name(model, replication), payload, cmd, time.time() - t0)


def committed(model: str = "smollm2-tofu", replication: int = 0) -> Optional[pd.DataFrame]:
    """The committed step rows of ``model`` (None when not committed), with ``attrs`` provenance, setting and
    model_fingerprint."""
    from ..results import load
    d = load(_name(model, replication))
    if d is None:
        return None
    df = pd.DataFrame(d["rows"])
    df.attrs.update(provenance=d["provenance"], setting=d["setting"], model_fingerprint=d["model_fingerprint"])
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run of committed step rows: the step of the dip (most negative e_u), e_u and e_r/e_u there, and
    the risks at θ_0 and θ_T (the model after the last step, ``gl.lessons.at_end``)."""
    from ..lessons.common import at_end
    out = []
    for run, s in df.groupby("run", sort=False):
        s = s.sort_values("step").reset_index(drop=True)
        d, end = s.loc[s.e_u.idxmin()], at_end(s)
        out.append(dict(run=run, objective=s.objective.iloc[0], steps=end["step"], e_u_0=float(s.e_u.iloc[0]),
                        dip_step=int(d.step),
                        e_u_at_dip=float(d.e_u), e_r_over_e_u_at_dip=float(d.e_r / d.e_u),
                        forget_risk_0=float(s.risk_u.iloc[0]), forget_risk_T=end["forget_risk"],
                        retain_risk_0=float(s.risk_r.iloc[0]), retain_risk_T=end["retain_risk"]))
    return pd.DataFrame(out).set_index("run")


def tiers(**frames) -> pd.DataFrame:
    """:func:`summary` of several tiers' committed rows side by side (columns: quantity, then tier), the runs they
    share only; e.g. ``tiers(**{"smollm2-tofu": a, "tiny": b})``."""
    parts = {k: summary(v).drop(columns="objective") for k, v in frames.items() if v is not None}
    runs = [r for r in next(iter(parts.values())).index if all(r in p.index for p in parts.values())]
    out = pd.concat({k: p.loc[runs] for k, p in parts.items()}, axis=1).swaplevel(axis=1)
    return out[[c for q in next(iter(parts.values())).columns for c in out.columns if c[0] == q]]


def plot(df: pd.DataFrame, runs: Sequence[str] = ("ga", "wga", "npo_b1", "tnpo", "po", "rmu_middle"), title=""):
    """e_u and e_r of ``runs`` over the steps, one panel per risk set, symmetric-log scale, one colour per objective
    (the series palette); returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from ..plots import colour
    d = df[df.run.isin(runs)]
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6), sharex=True)
    panels = (("e_u", "$e_u$ (forget set; want < 0)"), ("e_r", "$e_r$ (retain set; want ≥ 0)"))
    for ax, (col, what) in zip(axes, panels):
        for run, g in d.groupby("run", sort=False):
            ax.plot(g.step, g[col], "-o", ms=3, color=colour(g.objective.iloc[0]),
                    label=run.replace("_b1", " (β = 1)"))
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(yscale="symlog", xlabel="step t (θ_t, before step t's update)", ylabel="G-effect", title=what)
        sns.despine(ax=ax)
    axes[1].legend(frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m geffect_lite.paper.trajectories_io",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-tofu")
    ap.add_argument("--replication", type=int, default=0)
    a = ap.parse_args(argv)
    print(save(a.model, a.replication))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["RUNS", "save", "committed", "summary", "tiers", "plot"]
