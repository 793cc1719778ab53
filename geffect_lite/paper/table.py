"""The Table 1 analogue: every objective of Wang et al. 2025 (arXiv 2502.19301, Table 1) unlearns the forget set
under the protocol's ``table1`` setting, then is evaluated TOFU-style (``geffect_lite.metrics``): forget quality
(a KS test against the retain-only twin), model utility, forget ROUGE-L, forget probability, extraction strength.

The paper's numbers are not known here, so :func:`agreement` compares *orderings* with what the paper states. Over
several seeds a comparison counts only if it holds at every seed; objectives that tie, or that all end at utility 0,
read "tie / not comparable" — never "yes".
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from types import SimpleNamespace
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import metrics, protocol, results, run_cache, setting_data
from ..config import cache_dir, flush_denormal
from ..models import RETAIN_TWINS, model_fingerprint
from ..objectives import get_objective
from ..trajectory import run

PAPER_OBJECTIVES = ("ga", "wga", "npo", "tnpo", "wtnpo", "po", "rmu", "ga+gd")
METRICS = ("forget_quality", "model_utility", "forget_rougeL", "forget_prob", "extraction_strength",
           "forget_truth_ratio", "forget_nll", "retain_nll")
ZERO_UTILITY = 0.01           # below this, model utility counts as collapsed: orderings there are "not comparable"
TABLE_VERSION = 2             # bump when the evaluation changes (2: metrics on exactly the unlearned rows)


def _evaluate(model, tok, data, S, twin_ratios, n_eval) -> dict:
    """TOFU-style metrics on exactly the unlearned forget rows (the first ``n_eval`` of them) and the utility sets."""
    splits = dict(data.splits, unlearned=setting_data.forget_rows(data, S))
    s = metrics.as_dict(metrics.evaluate(model, tok, splits, "unlearned", retain_model=twin_ratios, n=n_eval))
    return dict(forget_quality=s.get("forget_quality", float("nan")), model_utility=s["model_utility"],
                forget_rougeL=s["forget_rougeL_recall"], forget_prob=s["forget_prob"],
                extraction_strength=s["extraction_strength_forget"], forget_truth_ratio=s["forget_truth_ratio"],
                forget_nll=s["forget_nll"], retain_nll=s["retain_nll"])


def table1(model: str = "tiny", seed: int = 0, lr_scale: float = 1.0, objectives: Sequence[str] = PAPER_OBJECTIVES,
           kl: bool = True, fast: Optional[bool] = None, cache: bool = True, progress: bool = True,
           changes: Optional[dict] = None, n_eval: Optional[int] = None) -> pd.DataFrame:
    """One Table 1 analogue: one row per model (the original, the retain-only twin, each objective and its +kl).

    Columns: objective, base, kl, kind ("reference" / "unlearned"), the :data:`METRICS`, steps, seconds, seed.
    Cached on disk by model weights, setting and objectives. ``changes``: setting fields to change (a reduced
    table); ``n_eval``: evaluate the first rows of each split only. ValueError for a model without a retain twin.
    """
    if model not in RETAIN_TWINS:
        raise ValueError(f"the Table 1 analogue needs a retain-only twin for forget quality; models with one: "
                         f"{', '.join(RETAIN_TWINS)} (got {model!r})")
    S = protocol.setting("table1", model, fast=fast, seed=seed)
    S = S.replace(lr=S.lr * lr_scale, **(changes or {}))
    names = [x for n in objectives for x in ((n, n + "+kl") if kl else (n,))]
    n_eval = n_eval or (protocol.EVAL["fast_n_eval"] if S.fast else protocol.EVAL["n_eval"])
    key = hashlib.sha1(json.dumps(dict(v=run_cache.CACHE_VERSION, t1=TABLE_VERSION, m=model_fingerprint(model), t=model_fingerprint(
        RETAIN_TWINS[model]), s=S.key(), names=names, n=n_eval)).encode()).hexdigest()[:16]
    f = cache_dir() / "tables" / f"{key}.pkl"
    if cache and f.exists():
        return pd.read_pickle(f)
    I = inputs(model, S, n_eval)
    base, tok, data, forget, retain, plan, twin_ratios = I.base, I.tok, I.data, I.forget, I.retain, I.plan, I.twin_ratios
    rows = []
    for name, m in (("original", base), ("retain model", I.twin)):
        t0 = time.time()
        rows.append(dict(objective=name, base=name, kl=False, kind="reference", steps=0,
                         **_evaluate(m, tok, data, S, twin_ratios, n_eval), seconds=time.time() - t0))
    ref = setting_data.reference(base, None, S, forget, retain, plan) if any(get_objective(n).needs_ref for n in names) \
        else None
    for name in tqdm(names, desc=f"Table 1 · {model} · seed {seed}", disable=not progress):
        t0 = time.time()
        obj = get_objective(name)
        m, tr, finite = unlearn(I, obj, ref, S)
        ev = _evaluate(m, tok, data, S, twin_ratios, n_eval) if finite else {k: float("nan") for k in METRICS}
        rows.append(dict(objective=name, base=name.removesuffix("+kl"), kl=name.endswith("+kl"), kind="unlearned",
                         steps=len(tr.steps), **ev, seconds=time.time() - t0))
        del m, tr
    df = pd.DataFrame(rows).assign(seed=seed)
    df.attrs["setting"] = S.describe()
    if cache:
        f.parent.mkdir(parents=True, exist_ok=True)
        df.to_pickle(f)
    return df


def inputs(model: str, S, n_eval: Optional[int]) -> SimpleNamespace:
    """What every Table 1 evaluation of one setting needs: the model and its retain-only twin, the data, the forget
    and retain batches, the mini-batch plan and the twin's truth ratios on the evaluated forget rows (forget quality
    compares against them)."""
    base, tok = run_cache.loaded(model)
    twin, _ = run_cache.loaded(RETAIN_TWINS[model])
    data = run_cache.dataset()
    forget, retain = setting_data.batches(data, tok, S)
    rows = setting_data.forget_rows(data, S)
    twin_ratios = metrics.truth_ratio(twin, tok, rows[:n_eval] if n_eval else rows)["truth_ratio"].to_numpy()
    return SimpleNamespace(base=base, twin=twin, tok=tok, data=data, forget=forget, retain=retain,
                           plan=setting_data.plan(data, tok, S), twin_ratios=twin_ratios)


def unlearn(I: SimpleNamespace, obj, ref, S, **record):
    """A copy of ``I.base`` unlearned with ``obj`` under ``S``: (model, trajectory, finite), where ``finite`` says
    that every step was ok and every parameter is finite (otherwise the run diverged). ``record``: what ``gl.run``
    records (default: nothing but the risks, ``every=None``)."""
    m = copy.deepcopy(I.base)
    with flush_denormal(), np.errstate(all="ignore"):
        tr = run(m, obj, I.forget, I.retain, ref if obj.needs_ref else None, plan=I.plan, progress=False,
                 **{"every": None, "weights": False, **record}, **S.run_kwargs())
    finite = bool((tr.steps.status == "ok").all()) and all(bool(torch.isfinite(p).all()) for p in m.parameters())
    return m, tr, finite


def tables(model: str = "tiny", seeds=protocol.EVAL["seeds"], **kw) -> pd.DataFrame:
    """The Table 1 analogue at several seeds, stacked (a ``seed`` column)."""
    df = pd.concat([table1(model, seed=s, **kw) for s in seeds], ignore_index=True)
    df.attrs["setting"] = protocol.setting("table1", model, fast=kw.get("fast")).describe()
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (min–max) over seeds of forget quality and model utility, one row per objective."""
    g = df.groupby("objective", sort=False)
    out = g[["forget_quality", "model_utility"]].agg(["mean", "min", "max"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index().merge(df.drop_duplicates("objective")[["objective", "kind", "kl"]], on="objective")


def tradeoff_ranks(plain: pd.DataFrame) -> pd.Series:
    """Mean of the ranks by forget quality and by model utility (1 = best; ties share a rank), by objective."""
    r_fq = plain["forget_quality"].rank(ascending=False, method="average")
    r_mu = plain["model_utility"].rank(ascending=False, method="average")
    return ((r_fq + r_mu) / 2).rename("tradeoff_rank")


def compare(df: pd.DataFrame, a: str, b: str) -> str:
    """"better", "worse" or "tie / not comparable": is ``a``'s trade-off rank better than ``b``'s at every seed?
    Both at collapsed utility (< ZERO_UTILITY), or a tie at any seed, or a flip between seeds: not comparable."""
    verdicts = set()
    for _, d in df[(df.kind == "unlearned") & ~df.kl].groupby("seed"):
        d = d.set_index("objective")
        if a not in d.index or b not in d.index:
            return "n/a"
        if max(d.loc[a, "model_utility"], d.loc[b, "model_utility"]) < ZERO_UTILITY:
            return "tie / not comparable"
        r = tradeoff_ranks(d)
        verdicts.add("better" if r[a] < r[b] else "worse" if r[a] > r[b] else "tie")
    return verdicts.pop() if len(verdicts) == 1 and "tie" not in verdicts else "tie / not comparable"


def agreement(df: pd.DataFrame) -> pd.DataFrame:
    """Where the Table 1 analogue agrees with what the paper *states* (orderings only; its numbers are unknown).
    Columns: statement, paper, ours, agree ("yes", "no", "tie / not comparable" or "n/a")."""
    rows = []

    def add(statement, paper, ours, agree):
        rows.append(dict(statement=statement, paper=paper, ours=ours, agree=agree))

    for new, old in (("wga", "ga"), ("wtnpo", "npo"), ("wga", "npo"), ("wtnpo", "ga")):
        c = compare(df, new, old)
        add(f"{new.upper()} has a better forget-quality–utility trade-off than {old.upper()}",
            "Table 1: WGA and WTNPO are the new state of the art", f"{new} vs {old}: {c}",
            {"better": "yes", "worse": "no"}.get(c, c))
    u = df[df.kind == "unlearned"]
    per_seed = []
    for _, d in u.groupby("seed"):
        d = d.set_index("objective")
        pairs = [(b, d.loc[b, "model_utility"], d.loc[b + "+kl", "model_utility"]) for b in d.index
                 if not b.endswith("+kl") and b + "+kl" in d.index]
        live = [(b, a, k) for b, a, k in pairs if max(a, k) >= ZERO_UTILITY]
        per_seed.append((sum(k > a for _, a, k in live), len(live)))
    helped = all(h > n / 2 for h, n in per_seed) if per_seed else None
    add("KL regularisation keeps more model utility (a majority of objectives, at every seed)",
        "the paper's insight 5: KL is the best regulariser for retention",
        "; ".join(f"{h}/{n}" for h, n in per_seed) + " objectives gain utility with +kl (collapsed pairs left out)",
        "n/a" if helped is None else ("yes" if helped else "no"))
    lows = []
    for _, d in u[~u.kl].groupby("seed"):
        low = d.model_utility.min()
        lows.append("ga" in set(d[d.model_utility <= low + 1e-12].objective) and (d.model_utility <= low + 1e-12).sum() == 1)
    add("GA over-unlearns: the lowest model utility of the unregularised objectives, alone, at every seed",
        "Eq. 1: GA's inverse-confidence term causes excessive unlearning",
        f"GA alone lowest at {sum(lows)} of {len(lows)} seeds", "yes" if lows and all(lows) else
        ("tie / not comparable" if any(lows) else "no"))
    return pd.DataFrame(rows)


def plot_fq_mu(df: pd.DataFrame, ax=None, title: Optional[str] = None):
    """Forget quality (log) against model utility: one point per objective (mean over seeds) with min–max bars;
    circles = objectives, crosses = their +kl variants, stars = the original and the retain-only model."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from ..plots import colour
    ax = ax or plt.subplots(figsize=(9, 5.5))[1]
    s = summary(df)
    floor = 1e-12
    for r in s.itertuples():
        x, y = r.model_utility_mean, max(r.forget_quality_mean, floor)
        if r.kind == "reference":
            ax.scatter(x, y, marker="*", s=320, zorder=4, edgecolor="white",
                       color="black" if r.objective == "original" else "dimgray")
            ax.annotate(r.objective, (x, y), textcoords="offset points", xytext=(8, 6), fontsize=11, weight="bold")
            continue
        c = colour(r.objective.removesuffix("+kl"))
        ax.errorbar(x, y, xerr=[[x - r.model_utility_min], [r.model_utility_max - x]],
                    yerr=[[y - max(r.forget_quality_min, floor)], [max(r.forget_quality_max, floor) - y]],
                    fmt="X" if r.kl else "o", color=c, ms=9, mec="black", mew=0.5, elinewidth=1, capsize=2, zorder=3)
    spot = {}                                   # points a reader cannot tell apart: name them once, together
    for r in s[s.kind != "reference"].itertuples():
        key = (round(r.model_utility_mean, 2), round(float(np.log10(max(r.forget_quality_mean, floor))), 1))
        spot.setdefault(key, []).append(r.objective)
    for (x, ly), names in spot.items():
        if len(names) > 1:
            ax.annotate(" = ".join(names), (x, 10 ** ly), textcoords="offset points", xytext=(10, -14), fontsize=10)
    ax.set_yscale("log")
    ax.margins(x=0.12, y=0.15)
    ax.set_xlabel("model utility (higher = more kept)")
    ax.set_ylabel("forget quality (KS p-value, log)")
    ax.set_title(title or f"Table 1 analogue: mean over {df.seed.nunique()} seed(s), bars = min–max")
    bases = list(dict.fromkeys(df[df.kind == "unlearned"].base))
    handles = [Line2D([], [], marker="o", ls="", color=colour(b), label=b) for b in bases]
    handles += [Line2D([], [], marker="X", ls="", color="grey", label="+ KL"),
                Line2D([], [], marker="*", ls="", color="black", ms=12, label="original"),
                Line2D([], [], marker="*", ls="", color="dimgray", ms=12, label="retain model")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def save_table(model: str, df: pd.DataFrame, command: str, seconds: float) -> None:
    """Commit a Table 1 analogue over seeds as ``results/table1-<model>.json``."""
    seeds = sorted(df.seed.unique().tolist())
    setting = df.attrs.get("setting", "").rsplit(", seed", 1)[0] + f", seeds {', '.join(map(str, seeds))}"
    from ..tooling.results import save      # writing is tooling (git, provenance)
    save(f"table1-{model}", dict(model=model, rows=df.to_dict("records"), setting=setting),
         command, max(seconds, float(df.seconds.sum())))     # the tables' own compute time, cached or not


def committed_table(model: str = "tiny") -> Optional[pd.DataFrame]:
    """The committed Table 1 analogue of ``model`` (all seeds), with ``attrs["provenance"]``, or None."""
    d = results.load(f"table1-{model}")
    if d is None:
        return None
    df = pd.DataFrame(d["rows"])
    df.attrs.update(provenance=d.get("provenance", {}), setting=d.get("setting", ""))
    return df


__all__ = ["table1", "tables", "save_table", "committed_table", "summary", "tradeoff_ranks", "compare", "agreement", "plot_fq_mu",
           "PAPER_OBJECTIVES", "METRICS", "ZERO_UTILITY"]
