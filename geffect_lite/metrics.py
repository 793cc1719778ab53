"""TOFU-style evaluation: how much a model still knows the forget set, and how much else it kept.

Every metric is computed per question (a tidy DataFrame with the row ``id``) and then summarised by a mean,
so any number can be recomputed from the per-row table. Notation (``paper.md`` §6.4): for an answer y of
|y| tokens (answer tokens plus ``eos``, exactly the tokens the models are trained on),
NLL(y) = −(1/|y|) Σ_t log p(y_t | x, y_<t) and the *normalised probability* P̄(y) = exp(−NLL(y)).

=========================  ===================================================================  ================
metric (function)          formula (per question, then mean over questions)                     better
=========================  ===================================================================  ================
answer NLL (answer_nll)    NLL(y) = mean token NLL of the gold answer                           forget: higher;
                                                                                                 retain: lower
answer prob (answer_prob)  P̄(y) = exp(−NLL(y))                                                  forget: lower;
                                                                                                 retain: higher
ROUGE-L recall             LCS(greedy generation, y) / |y| in words (``rouge_score``,           forget: lower;
(rouge_l_recall)           ``rougeL``, Porter stemmer)                                           retain: higher
truth ratio R              R = P̄_pert / P̄_para, P̄_para = P̄(paraphrased answer),               see below
(truth_ratio)              P̄_pert = exp(−mean_k NLL(perturbed_k)) (geometric mean over k)
truth-ratio score          forget split: mean min(R, 1/R)  (1 = true and false answers equally   forget: higher
(truth_ratio_score)        likely, i.e. forgotten); other splits: mean max(0, 1 − R)             retain: higher
forget quality             p-value of the two-sample KS test between the per-question R of the   higher
(forget_quality)           unlearned model and of a retain-only model on the forget split
model utility              harmonic mean of 9 numbers {retain, real authors, world facts} ×     higher
(model_utility)            {probability, ROUGE-L recall, truth-ratio score max(0, 1 − R)}
extraction strength        ES = 1 − k*/|y|, k* = first answer position from which every         forget: lower;
(extraction_strength)      teacher-forced argmax prediction equals the answer token              retain: higher
=========================  ===================================================================  ================

Conventions, stated once (TOFU = ``tofu_evaluation.py`` / ``aggregate_stat_eval.py`` of the TOFU code):

* **Truth ratio.** We report R = P̄_pert / P̄_para = exp(NLL_para − NLL_pert) as the paper writes it; TOFU's
  code stores the inverse, exp(NLL_pert − NLL_para) = 1/R (our column ``tofu_stat``). The forget summary
  mean min(R, 1/R) is the same under either convention; TOFU's non-forget score max(0, 1 − 1/stat) equals our
  max(0, 1 − R). The KS p-value of forget quality is unchanged too (1/R is monotone on both samples).
  As in TOFU, the paraphrased and perturbed answers are scored after the *original* question, and the
  perturbed answers must be false versions *of the paraphrased answer* (same wording, wrong fact): the ratio
  compares facts only if the wording is shared (otherwise a model that memorised the answer's wording scores
  R ≫ 1 whatever it knows).
* **Model utility.** TOFU's retain set is ``retain_perturbed`` (400 rows); here ``retain_eval`` plays that role
  (the first 10 synthetic authors' 100 rows: trained on, never used as unlearning's retain batches). Our real-
  authors (14) and world-facts (26) sets are much smaller than TOFU's (100 / 117), with 3 perturbed answers
  each, so utility is noisier. Retain probability is P̄(answer); real-authors and world-facts
  probability is P̄_true / (P̄_true + Σ_k P̄_false,k) (a choice among the options). Generations are greedy and
  capped at ``max_new_tokens`` (40 by default, ample for our one-sentence answers; TOFU uses 200).
* **Extraction strength** (open-unlearning's teacher-forced ES). k* ∈ {0, …, |y|}: k* = 0 when every
  answer token is the argmax (ES = 1, fully extractable), k* = |y| when even the last token (``eos``) is not
  (ES = 0). open-unlearning's loop never tries the empty suffix, so its ES bottoms out at 1/|y| where ours is 0;
  the two agree whenever the last token is predicted.
* **Forget quality** needs the truth ratios of a model never trained on the forget split (``tiny-retain``);
  pass it (or its precomputed ratios) as ``retain_model`` to :func:`evaluate`.

Everything runs under ``torch.no_grad`` in batches; identical (question, answer) pairs are scored once per call
(e.g. world facts, whose paraphrased answer is the answer), and :func:`evaluate` shares those scores across
metrics, so a full evaluation of the tiny model takes seconds on 2 CPU cores (≈ 10 s on a busy machine).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from .batching import collate
from .nll import forward

#: direction of each summary metric of :func:`evaluate` ("higher" / "lower" is better for an unlearned model)
DIRECTIONS = {
    "forget_nll": "higher", "forget_prob": "lower", "forget_rougeL_recall": "lower",
    "forget_truth_ratio": "higher", "forget_quality": "higher", "extraction_strength_forget": "lower",
    "model_utility": "higher", "retain_nll": "lower", "extraction_strength_retain": "higher",
}
UTILITY_SPLITS = ("retain_eval", "real_authors", "world_facts")
UTILITY_PARTS = ("prob", "rougeL_recall", "truth_ratio")


# --------------------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------------------
def _rows(rows, fields: Sequence[str] = ("question", "answer"), what: str = "rows") -> List[dict]:
    """Validate rows (list of dicts or a DataFrame) and return them as a list; clear errors for bad input."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    if rows is None:
        raise ValueError(f"{what} is None: pass a non-empty list of question–answer rows (e.g. data['forget05']).")
    rows = list(rows)
    if not rows:
        raise ValueError(f"{what} is empty: pass at least one question–answer row (e.g. data['forget05']).")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise TypeError(f"{what}[{i}] is a {type(r).__name__}, not a dict in TOFU's schema.")
        for f in fields:
            v = r.get(f)
            if f == "perturbed_answer":
                v = [v] if isinstance(v, str) else list(v) if v is not None else []
                if not v or not all(isinstance(x, str) and x.strip() for x in v):
                    raise ValueError(
                        f"{what}[{i}] (id {r.get('id', i)!r}) has no usable 'perturbed_answer' field (a list of false "
                        "answers is needed for the truth ratio and the utility probability). TOFU provides it only "
                        "in the *_perturbed splits; the synthetic data has it in every split.")
            elif not isinstance(v, str) or not v.strip():
                raise ValueError(f"{what}[{i}] (id {r.get('id', i)!r}) is missing the field {f!r} "
                                 f"(or it is empty); needed fields: {', '.join(fields)}.")
    return rows


def _ids(rows: List[dict]) -> List[str]:
    return [str(r.get("id", i)) for i, r in enumerate(rows)]


def _perturbed(r: dict) -> List[str]:
    p = r["perturbed_answer"]
    return [p] if isinstance(p, str) else [str(x) for x in p]


@contextmanager
def _eval_mode(model):
    """Evaluate in eval mode without grad, then give the model back in the mode it came in (mid-training calls)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was)


# --------------------------------------------------------------------------------------------------------------
# one teacher-forced pass per distinct (question, answer): NLL and extraction strength together
# --------------------------------------------------------------------------------------------------------------
class _Scorer:
    """Scores (question, answer) pairs in batches and caches them, so metrics sharing a pair pay once."""

    def __init__(self, model, tok, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model, self.tok, self.batch_size = model, tok, batch_size
        self.cache: Dict[Tuple[str, str], Tuple[float, int, int]] = {}   # -> (sum NLL, |y|, k*)
        self.gen_cache: Dict[Tuple[str, int], str] = {}                   # (question, max_new_tokens) -> text

    def _run(self, pairs: List[Tuple[str, str]]) -> None:
        todo = sorted({p for p in pairs if p not in self.cache}, key=lambda p: len(p[0]) + len(p[1]))
        if not todo:
            return
        with _eval_mode(self.model):
            # sorted by length so each batch has little padding
            for s in range(0, len(todo), self.batch_size):
                chunk = todo[s: s + self.batch_size]
                b = collate([dict(question=q, answer=a, id=str(k)) for k, (q, a) in enumerate(chunk)], self.tok)
                f = forward(self.model, b)
                nll = (-f.logp * f.mask).sum(1)
                n = f.mask.sum(1)
                m = f.mask.bool()
                wrong = (f.logits.argmax(-1) != f.batch["labels"][:, 1:]) & m
                # k* = (index within the answer of the last wrong argmax) + 1, or 0 if none is wrong
                pos = torch.cumsum(m.long(), 1)                       # 1-based answer index at answer positions
                kstar = (pos * wrong.long()).amax(1)
                for p, a, c, k in zip(chunk, nll.tolist(), n.tolist(), kstar.tolist()):
                    self.cache[p] = (float(a), int(c), int(k))

    def generate(self, questions: Sequence[str], max_new_tokens: int) -> List[str]:
        """Greedy answers (``train.greedy_answers``), cached per question; one call for all splits is fastest."""
        from .models.train import greedy_answers
        todo = sorted({q for q in questions if (q, max_new_tokens) not in self.gen_cache}, key=len)
        if todo:
            was = self.model.training
            try:
                # generation is dominated by per-step overhead: big batches of similar-length prompts
                outs = greedy_answers(self.model, self.tok, todo, max_new_tokens=max_new_tokens,
                                      batch_size=2 * self.batch_size)
            finally:
                self.model.train(was)
            self.gen_cache.update({(q, max_new_tokens): g for q, g in zip(todo, outs)})
        return [self.gen_cache[(q, max_new_tokens)] for q in questions]

    def score(self, questions: Sequence[str], answers: Sequence[str]) -> pd.DataFrame:
        pairs = list(zip(questions, answers))
        self._run(pairs)
        vals = np.array([self.cache[p] for p in pairs], dtype=float).reshape(-1, 3)
        seq_nll, n, k = vals[:, 0], vals[:, 1], vals[:, 2]
        nll = seq_nll / n
        return pd.DataFrame(dict(n_tokens=n.astype(int), seq_nll=seq_nll, nll=nll, prob=np.exp(-nll),
                                 k_star=k.astype(int), extraction_strength=1.0 - k / n))


# --------------------------------------------------------------------------------------------------------------
# answer NLL / probability
# --------------------------------------------------------------------------------------------------------------
def answer_nll(model, tok, rows, answer_key: str = "answer", batch_size: int = 32, _scorer=None) -> pd.DataFrame:
    """Per-row mean token NLL of ``row[answer_key]`` after the question, and P̄ = exp(−NLL).

    Lower NLL / higher P̄ = the model knows the answer better (bad on forget data, good on retain data).
    A list field (``perturbed_answer``) gives one row per option, numbered by ``option``.

    Returns columns ``id, answer_key, option, n_tokens, seq_nll, nll, prob``.
    """
    rows = _rows(rows, ("question", answer_key))
    sc = _scorer or _Scorer(model, tok, batch_size)
    ids, qs, ans, opt = [], [], [], []
    for i, r in zip(_ids(rows), rows):
        v = r[answer_key]
        for k, a in enumerate([v] if isinstance(v, str) else v):
            ids.append(i), qs.append(r["question"]), ans.append(a), opt.append(k)
    s = sc.score(qs, ans)
    out = pd.DataFrame(dict(id=ids, answer_key=answer_key, option=opt))
    return pd.concat([out, s[["n_tokens", "seq_nll", "nll", "prob"]]], axis=1)


def split_nll(model, tok, rows, answer_key: str = "answer", batch_size: int = 32) -> float:
    """Mean over rows of the per-token answer NLL (TOFU's ``avg_gt_loss`` averaged)."""
    return float(answer_nll(model, tok, rows, answer_key, batch_size)["nll"].mean())


def answer_prob(model, tok, rows, answer_key: str = "answer", batch_size: int = 32) -> float:
    """Mean over rows of P̄ = exp(−NLL per token) (TOFU's "Prob." on the forget and retain splits)."""
    return float(answer_nll(model, tok, rows, answer_key, batch_size)["prob"].mean())


# --------------------------------------------------------------------------------------------------------------
# ROUGE-L recall of greedy generations
# --------------------------------------------------------------------------------------------------------------
_ROUGE = None


def _rouge():
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer
        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return _ROUGE


def rouge_recall(generations: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """ROUGE-L recall of each generation against its gold answer (``rouge_score``; target first, as TOFU)."""
    if len(generations) != len(answers):
        raise ValueError(f"{len(generations)} generations for {len(answers)} answers")
    sc = _rouge()
    return np.array([sc.score(a, g)["rougeL"].recall for g, a in zip(generations, answers)], dtype=float)


def rouge_l_recall(model, tok, rows, max_new_tokens: int = 40, batch_size: int = 32, _scorer=None) -> pd.DataFrame:
    """Greedy answer to each question and its ROUGE-L recall vs the gold answer (higher = more recalled).

    Returns columns ``id, question, answer, generation, rougeL_recall`` (the generation is kept so the score can
    be recomputed independently).
    """
    rows = _rows(rows, ("question", "answer"))
    sc = _scorer or _Scorer(model, tok, batch_size)
    qs = [r["question"] for r in rows]
    gens = sc.generate(qs, max_new_tokens)
    ans = [r["answer"] for r in rows]
    return pd.DataFrame(dict(id=_ids(rows), question=qs, answer=ans, generation=gens,
                             rougeL_recall=rouge_recall(gens, ans)))


# --------------------------------------------------------------------------------------------------------------
# truth ratio and forget quality
# --------------------------------------------------------------------------------------------------------------
def truth_ratio(model, tok, rows, batch_size: int = 32, _scorer=None) -> pd.DataFrame:
    """Per-question truth ratio R = P̄_pert / P̄_para (``paper.md`` §6.4).

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


# --------------------------------------------------------------------------------------------------------------
# extraction strength
# --------------------------------------------------------------------------------------------------------------
def extraction_strength(model, tok, rows, batch_size: int = 32, answer_key: str = "answer",
                        _scorer=None) -> pd.DataFrame:
    """Teacher-forced extraction strength ES = 1 − k*/|y| per row (open-unlearning style).

    k* is the first answer position from which every argmax prediction (given the question and the true
    prefix) equals the answer token; |y| counts the answer tokens and ``eos``. ES = 1: the whole answer is
    extractable from the question alone; ES = 0: not even the last token is. Lower is better on forget data.

    Returns columns ``id, n_tokens, k_star, extraction_strength``.
    """
    rows = _rows(rows, ("question", answer_key))
    sc = _scorer or _Scorer(model, tok, batch_size)
    s = sc.score([r["question"] for r in rows], [r[answer_key] for r in rows])
    return pd.concat([pd.DataFrame(dict(id=_ids(rows))), s[["n_tokens", "k_star", "extraction_strength"]]], axis=1)


# --------------------------------------------------------------------------------------------------------------
# model utility
# --------------------------------------------------------------------------------------------------------------
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
    summary = pd.DataFrame(out)
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


def as_dict(summary: pd.DataFrame) -> Dict[str, float]:
    """``{metric: value}`` from :func:`evaluate`'s summary (utility parts keyed ``utility_<part>/<split>``)."""
    out = {}
    for r in summary.itertuples():
        out[f"{r.metric}/{r.split}" if r.metric.startswith("utility_") else r.metric] = r.value
    return out


__all__ = ["answer_nll", "split_nll", "answer_prob", "rouge_recall", "rouge_l_recall", "truth_ratio",
           "truth_ratio_score", "forget_quality", "extraction_strength", "harmonic_mean", "model_utility",
           "evaluate", "as_dict", "DIRECTIONS", "UTILITY_SPLITS", "UTILITY_PARTS"]
