"""Per-question scores of a model on question–answer rows: answer NLL and probability, ROUGE-L recall of greedy
generations, and teacher-forced extraction strength — one batched, cached pass per distinct (question, answer).
The formulas are in the package docstring (``geffect_lite.metrics``)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from ..batching import collate
from ..models.train import greedy_answers
from ..nll import forward


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


__all__ = ["answer_nll", "split_nll", "answer_prob", "rouge_recall", "rouge_l_recall", "extraction_strength"]
