"""TOFU's summary metrics: the truth ratio and forget quality (a KS test against a retain-only model), model
utility (a harmonic mean of nine numbers), and :func:`evaluate`, everything in one batched sweep. The formulas and
the project's adaptations are in the package docstring (``geffect_lite.metrics``)."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch

from .scoring import _ids, _perturbed, _rows, _Scorer, answer_nll, extraction_strength, rouge_l_recall

#: direction of each summary metric of :func:`evaluate` ("higher" / "lower" is better for an unlearned model)
DIRECTIONS = {
    "forget_nll": "higher", "forget_prob": "lower", "forget_rougeL_recall": "lower",
    "forget_truth_ratio": "higher", "forget_quality": "higher", "extraction_strength_forget": "lower",
    "model_utility": "higher", "retain_nll": "lower", "extraction_strength_retain": "higher",
}
UTILITY_SPLITS = ("retain_eval", "real_authors", "world_facts")
UTILITY_PARTS = ("prob", "rougeL_recall", "truth_ratio")


def truth_ratio(model, tok, rows, batch_size: int = 32, _scorer=None) -> pd.DataFrame:
    """Per-question truth ratio R = P̄_pert / P̄_para (TOFU).

    P̄_para = exp(−NLL(paraphrased answer)); P̄_pert = exp(−mean_k NLL(perturbed_k)), the geometric mean of the
    options' P̄ (TOFU averages the per-token NLLs of the perturbed answers). R < 1: the model prefers the true
    answer; R ≈ 1: it cannot tell true from false. Summaries: :func:`truth_ratio_score`.

    Returns columns ``id, nll_para, nll_pert, p_para, p_pert, n_perturbed, truth_ratio`` (R) and ``tofu_stat``
    (1/R, what TOFU's code stores).
    """
    rows = _rows(rows, ("question", "paraphrased_answer", "perturbed_answer"))
    sc = _scorer or _Scorer(model, tok, batch_size)
    qs = [r["question"] for r in rows]
    para = sc.score(qs, [r["paraphrased_answer"] for r in rows])["nll"].to_numpy()
    pert = [_perturbed(r) for r in rows]
    flat = sc.score([q for q, p in zip(qs, pert) for _ in p], [a for p in pert for a in p])["nll"].to_numpy()
    bounds = np.cumsum([0] + [len(p) for p in pert])
    pert_nll = np.array([flat[bounds[i]: bounds[i + 1]].mean() for i in range(len(rows))])
    R = np.exp(para - pert_nll)
    return pd.DataFrame(dict(id=_ids(rows), nll_para=para, nll_pert=pert_nll, p_para=np.exp(-para),
                             p_pert=np.exp(-pert_nll), n_perturbed=[len(p) for p in pert], truth_ratio=R,
                             tofu_stat=1.0 / R))


def _ratios(x) -> np.ndarray:
    """Truth ratios from a truth_ratio DataFrame, a Series, or an array-like."""
    if isinstance(x, pd.DataFrame):
        if "truth_ratio" not in x:
            raise ValueError("the DataFrame has no 'truth_ratio' column (pass truth_ratio(...)'s output).")
        x = x["truth_ratio"]
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size == 0:
        raise ValueError("no truth ratios given (empty array).")
    if not np.isfinite(a).all() or (a <= 0).any():
        raise ValueError("truth ratios must be finite and > 0 (R = exp(NLL_para − NLL_pert)); "
                         "a NaN/inf usually means a blown-up model.")
    return a


def truth_ratio_score(tr, forget: bool) -> float:
    """TOFU's summary of truth ratios: forget split mean min(R, 1/R); other splits mean max(0, 1 − R).

    Both are higher-is-better in their own sense: on the forget split 1 means "true and false answers equally
    likely" (forgotten); elsewhere 1 means "false answers far less likely than the true one" (knowledge kept).
    """
    R = _ratios(tr)
    return float(np.mean(np.minimum(R, 1.0 / R)) if forget else np.mean(np.maximum(0.0, 1.0 - R)))


def forget_quality(tr_unlearned, tr_retain_model) -> float:
    """Forget quality: p-value of ``scipy.stats.ks_2samp`` between two per-question truth-ratio samples.

    ``tr_unlearned``: the unlearned model's truth ratios on the forget split; ``tr_retain_model``: those of a
    model never trained on it. Higher = the two distributions are indistinguishable = better unlearning
    (1.0 for identical samples). Accepts :func:`truth_ratio` DataFrames, Series or arrays (R or 1/R alike, as
    long as both use the same convention: the KS statistic is unchanged by a monotone map of both samples).
    """
    from scipy.stats import ks_2samp
    return float(ks_2samp(_ratios(tr_unlearned), _ratios(tr_retain_model)).pvalue)


def harmonic_mean(values: Iterable[float]) -> float:
    """Harmonic mean n / Σ 1/x; 0 if any value is 0 (one lost ability sinks utility, as TOFU intends)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        raise ValueError("harmonic mean of no values")
    if not np.isfinite(v).all() or (v < 0).any():
        raise ValueError(f"harmonic mean needs finite non-negative values, got {v.tolist()}")
    if (v == 0).any():
        return 0.0
    return float(v.size / np.sum(1.0 / v))


def _split(data, name: str, n: Optional[int]) -> List[dict]:
    try:
        rows = data[name]
    except KeyError as e:
        raise KeyError(f"the data has no split {name!r} (needed for model utility / evaluate).") from e
    rows = list(rows)
    return rows if n is None else rows[:n]


def _utility_parts(model, tok, data, n, max_new_tokens, batch_size, sc):
    """The 9 components and the per-row tables they come from (tables joined by position, not id)."""
    parts, tables = [], {}
    for name in UTILITY_SPLITS:
        rows = _rows(_split(data, name, n), ("question", "answer", "paraphrased_answer", "perturbed_answer"), name)
        true = answer_nll(model, tok, rows, _scorer=sc)
        if name == "retain_eval":
            prob = true["prob"].to_numpy()
        else:
            # a choice among the options: P̄_true / (P̄_true + Σ_k P̄_false,k)
            false = answer_nll(model, tok, rows, "perturbed_answer", _scorer=sc)["prob"].to_numpy()
            bounds = np.cumsum([0] + [len(_perturbed(r)) for r in rows])
            false_sum = np.array([false[bounds[i]: bounds[i + 1]].sum() for i in range(len(rows))])
            prob = true["prob"].to_numpy() / (true["prob"].to_numpy() + false_sum)
        rg = rouge_l_recall(model, tok, rows, max_new_tokens, _scorer=sc)
        tr = truth_ratio(model, tok, rows, _scorer=sc)
        tables[name] = pd.concat([true[["id", "nll", "prob"]].assign(utility_prob=prob),
                                  rg[["generation", "rougeL_recall"]], tr[["truth_ratio"]]], axis=1)
        parts += [dict(split=name, component="prob", value=float(np.mean(prob))),
                  dict(split=name, component="rougeL_recall", value=float(rg["rougeL_recall"].mean())),
                  dict(split=name, component="truth_ratio", value=truth_ratio_score(tr, forget=False))]
    return pd.DataFrame(parts), tables


def model_utility(model, tok, data, n: Optional[int] = None, max_new_tokens: int = 40,
                  batch_size: int = 32) -> Tuple[float, pd.DataFrame]:
    """TOFU's model utility: the harmonic mean of 9 numbers (higher is better, in [0, 1]).

    {``retain_eval``, ``real_authors``, ``world_facts``} × {probability, ROUGE-L recall, truth-ratio score
    max(0, 1 − R)}. Retain probability is mean P̄(answer); real-authors / world-facts probability is the mean of
    P̄_true / (P̄_true + Σ_k P̄_false,k). ``data`` is a :class:`~geffect_lite.data.TofuData` (or a dict of
    splits); ``n`` keeps the first n rows of each split. See the module docstring for the adaptation to our
    smaller sets.

    Returns ``(utility, components)`` with components columns ``split, component, value`` (9 rows).
    """
    sc = _Scorer(model, tok, batch_size)
    parts, _ = _utility_parts(model, tok, data, n, max_new_tokens, batch_size, sc)
    return harmonic_mean(parts["value"]), parts


# --------------------------------------------------------------------------------------------------------------
# everything at once
# --------------------------------------------------------------------------------------------------------------
def _retain_ratios(retain_model, tok, forget_rows, batch_size):
    if retain_model is None:
        return None
    if isinstance(retain_model, torch.nn.Module):
        return truth_ratio(retain_model, tok, forget_rows, batch_size)
    if isinstance(retain_model, tuple) and len(retain_model) == 2 and isinstance(retain_model[0], torch.nn.Module):
        return truth_ratio(retain_model[0], retain_model[1], forget_rows, batch_size)
    return _ratios(retain_model)


def evaluate(model, tok, data, forget_split: str = "forget05", retain_model=None, n: Optional[int] = None,
             retain_split: str = "retain_eval", max_new_tokens: int = 40, batch_size: int = 32,
             details: bool = False):
    """Evaluate a model TOFU-style on ``forget_split`` plus the utility sets, in one batched sweep.

    Args:
        data: a :class:`~geffect_lite.data.TofuData` (or dict of splits) with ``forget_split``, ``retain_eval``,
            ``real_authors`` and ``world_facts``.
        retain_model: for forget quality — a model never trained on the forget split (same tokenizer as
            ``model``), a ``(model, tokenizer)`` pair, or its precomputed truth ratios on the forget split
            (a :func:`truth_ratio` DataFrame or an array). None: forget quality is left out.
        n: keep only the first ``n`` rows of every split (speed).
        retain_split: where retain NLL and retain extraction strength are measured.
        details: also return the per-row tables.

    Returns a tidy DataFrame with columns ``metric, split, value, better`` (one row per summary number: forget
    NLL / prob / ROUGE-L recall / truth ratio / forget quality / extraction strength, retain NLL / extraction
    strength, model utility and its 9 parts); with ``details=True`` a pair ``(summary, per_row)`` where
    ``per_row`` maps ``"forget"``, ``"retain"``, ``"retain_truth_ratio"`` and each utility split to DataFrames.
    """
    sc = _Scorer(model, tok, batch_size)
    forget = _rows(_split(data, forget_split, n), ("question", "answer", "paraphrased_answer", "perturbed_answer"),
                   forget_split)
    retain = _rows(_split(data, retain_split, n), ("question", "answer"), retain_split)

    # all greedy generations in one sweep (forget + utility questions), then every metric reads the caches
    sc.generate([r["question"] for r in forget] +
                [r["question"] for s in UTILITY_SPLITS for r in _split(data, s, n)], max_new_tokens)
    f_nll = answer_nll(model, tok, forget, _scorer=sc)
    f_rouge = rouge_l_recall(model, tok, forget, max_new_tokens, _scorer=sc)
    f_tr = truth_ratio(model, tok, forget, _scorer=sc)
    f_es = extraction_strength(model, tok, forget, _scorer=sc)
    r_nll = answer_nll(model, tok, retain, _scorer=sc)
    r_es = extraction_strength(model, tok, retain, _scorer=sc)
    parts, util_tables = _utility_parts(model, tok, data, n, max_new_tokens, batch_size, sc)
    ret_tr = _retain_ratios(retain_model, tok, forget, batch_size)

    summary = _summary(forget_split, retain_split, f_nll, f_rouge, f_tr, f_es, r_nll, r_es, parts, ret_tr)
    if not details:
        return summary
    per_row = dict(
        forget=pd.concat([f_nll[["id", "n_tokens", "nll", "prob"]], f_rouge[["generation", "rougeL_recall"]],
                          f_tr[["truth_ratio"]], f_es[["k_star", "extraction_strength"]]], axis=1),
        retain=pd.concat([r_nll[["id", "n_tokens", "nll", "prob"]], r_es[["k_star", "extraction_strength"]]], axis=1),
        **util_tables)
    if isinstance(ret_tr, pd.DataFrame):
        per_row["retain_truth_ratio"] = ret_tr
    return summary, per_row


def _summary(forget_split, retain_split, f_nll, f_rouge, f_tr, f_es, r_nll, r_es, parts, ret_tr) -> pd.DataFrame:
    """The summary rows of :func:`evaluate` (metric, split, value, better) from its per-row tables."""
    def row(metric, split, value, better=None):
        return dict(metric=metric, split=split, value=float(value), better=better or DIRECTIONS.get(metric, "higher"))

    out = [row("forget_nll", forget_split, f_nll["nll"].mean()),
           row("forget_prob", forget_split, f_nll["prob"].mean()),
           row("forget_rougeL_recall", forget_split, f_rouge["rougeL_recall"].mean()),
           row("forget_truth_ratio", forget_split, truth_ratio_score(f_tr, forget=True))]
    if ret_tr is not None:
        out.append(row("forget_quality", forget_split, forget_quality(f_tr, ret_tr)))
    out += [row("extraction_strength_forget", forget_split, f_es["extraction_strength"].mean()),
            row("retain_nll", retain_split, r_nll["nll"].mean()),
            row("extraction_strength_retain", retain_split, r_es["extraction_strength"].mean()),
            row("model_utility", "utility", harmonic_mean(parts["value"]))]
    out += [row(f"utility_{p.component}", p.split, p.value, "higher") for p in parts.itertuples()]
    return pd.DataFrame(out)


def as_dict(summary: pd.DataFrame) -> Dict[str, float]:
    """``{metric: value}`` from :func:`evaluate`'s summary (utility parts keyed ``utility_<part>/<split>``)."""
    out = {}
    for r in summary.itertuples():
        out[f"{r.metric}/{r.split}" if r.metric.startswith("utility_") else r.metric] = r.value
    return out


__all__ = ["truth_ratio", "truth_ratio_score", "forget_quality", "harmonic_mean", "model_utility", "evaluate",
           "as_dict", "DIRECTIONS", "UTILITY_SPLITS", "UTILITY_PARTS"]
