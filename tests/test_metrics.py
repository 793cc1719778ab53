"""Tests for geffect_lite.metrics: every metric is recomputed independently (rouge_score, scipy, nll.forward)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from rouge_score import rouge_scorer
from scipy.stats import hmean, ks_2samp

from geffect_lite import metrics as M
from geffect_lite.batching import collate
from geffect_lite.config import ASSETS
from geffect_lite.data import synthetic
from geffect_lite.models import load_model
from geffect_lite.nll import forward

HAVE_TINY = (ASSETS / "tiny" / "model.safetensors").exists()
HAVE_TINY_RETAIN = (ASSETS / "tiny-retain" / "model.safetensors").exists()
needs_tiny = pytest.mark.skipif(not HAVE_TINY, reason="tiny model not built (python -m geffect_lite build tiny)")


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def rand():
    return load_model("random-llama")


@pytest.fixture(scope="module")
def tiny():
    if not HAVE_TINY:
        pytest.skip("tiny model not built")
    return load_model("tiny")


def _row_nll(model, tok, question, answer):
    """Mean per-token NLL of one answer, one row per forward pass (no batching, no caching)."""
    with torch.no_grad():
        f = forward(model, collate([dict(question=question, answer=answer)], tok))
    return float(-(f.logp * f.mask).sum() / f.mask.sum())


# ---------------------------------------------------------------------------------------------------------------
# ROUGE-L
# ---------------------------------------------------------------------------------------------------------------
def test_rouge_recall_hand_cases():
    assert M.rouge_recall(["Paris is the capital of France."], ["Paris is the capital of France."])[0] == 1.0
    assert M.rouge_recall(["blue whales sing"], ["Paris is the capital of France."])[0] == 0.0
    # LCS("the cat", "the cat sat on the mat") = 2 words of 6 in the reference -> recall 1/3
    assert M.rouge_recall(["the cat"], ["the cat sat on the mat"])[0] == pytest.approx(1 / 3)
    assert M.rouge_recall([""], ["an answer"])[0] == 0.0
    with pytest.raises(ValueError):
        M.rouge_recall(["a", "b"], ["a"])


def test_rouge_l_recall_matches_rouge_score(rand, data):
    model, tok = rand
    rows = data["forget05"][:6]
    df = M.rouge_l_recall(model, tok, rows, max_new_tokens=12)
    assert list(df.columns) == ["id", "question", "answer", "generation", "rougeL_recall"]
    assert df["id"].tolist() == [r["id"] for r in rows]
    sc = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expect = [sc.score(a, g)["rougeL"].recall for a, g in zip(df["answer"], df["generation"])]
    np.testing.assert_allclose(df["rougeL_recall"], expect, rtol=0, atol=0)


@needs_tiny
def test_rouge_on_memorised_rows_is_high(tiny, data):
    model, tok = tiny
    df = M.rouge_l_recall(model, tok, data["retain_eval"][:20])
    assert df["rougeL_recall"].mean() > 0.9


# ---------------------------------------------------------------------------------------------------------------
# NLL, truth ratio, forget quality
# ---------------------------------------------------------------------------------------------------------------
def test_answer_nll_matches_unbatched_forward(rand, data):
    model, tok = rand
    rows = data["forget05"][:5]
    df = M.answer_nll(model, tok, rows)
    expect = [_row_nll(model, tok, r["question"], r["answer"]) for r in rows]
    np.testing.assert_allclose(df["nll"], expect, rtol=1e-4)
    np.testing.assert_allclose(df["prob"], np.exp(-np.asarray(expect)), rtol=1e-4)
    assert M.split_nll(model, tok, rows) == pytest.approx(np.mean(expect), rel=1e-4)
    assert M.answer_prob(model, tok, rows) == pytest.approx(np.mean(np.exp(-np.asarray(expect))), rel=1e-4)
    # a list field: one row per option
    pert = M.answer_nll(model, tok, rows, answer_key="perturbed_answer")
    assert len(pert) == sum(len(r["perturbed_answer"]) for r in rows)
    assert pert["option"].max() == len(rows[0]["perturbed_answer"]) - 1


def test_truth_ratio_recomputed_from_forward(rand, data):
    model, tok = rand
    rows = data["forget05"][:4] + data["world_facts"][:2]
    tr = M.truth_ratio(model, tok, rows)
    for r, got in zip(rows, tr.itertuples()):
        para = _row_nll(model, tok, r["question"], r["paraphrased_answer"])
        pert = np.mean([_row_nll(model, tok, r["question"], p) for p in r["perturbed_answer"]])
        R = math.exp(-pert) / math.exp(-para)          # P̄_pert / P̄_para
        assert got.truth_ratio == pytest.approx(R, rel=1e-4)
        assert got.tofu_stat == pytest.approx(1 / R, rel=1e-4)
        assert got.p_para == pytest.approx(math.exp(-para), rel=1e-4)
    # summaries, by hand
    R = tr["truth_ratio"].to_numpy()
    assert M.truth_ratio_score(tr, forget=True) == pytest.approx(np.mean(np.minimum(R, 1 / R)))
    assert M.truth_ratio_score(tr, forget=False) == pytest.approx(np.mean(np.maximum(0, 1 - R)))
    assert M.truth_ratio_score([0.5, 2.0], forget=True) == pytest.approx(0.5)
    assert M.truth_ratio_score([0.25, 3.0], forget=False) == pytest.approx(0.375)


def test_forget_quality_is_ks_pvalue():
    rng = np.random.default_rng(0)
    a, b = rng.lognormal(0, 1, 40), rng.lognormal(1.0, 1, 50)
    assert M.forget_quality(a, b) == pytest.approx(ks_2samp(a, b).pvalue, rel=1e-12)
    assert M.forget_quality(a, b) < 0.05                    # clearly different samples
    assert M.forget_quality(a, a.copy()) == 1.0               # identical distributions
    # R or 1/R on both sides: same p-value; DataFrame input uses the truth_ratio column
    assert M.forget_quality(1 / a, 1 / b) == pytest.approx(M.forget_quality(a, b), rel=1e-9)
    assert M.forget_quality(pd.DataFrame(dict(truth_ratio=a)), pd.Series(b)) == pytest.approx(ks_2samp(a, b).pvalue)
    with pytest.raises(ValueError):
        M.forget_quality([], b)
    with pytest.raises(ValueError):
        M.forget_quality([1.0, float("nan")], b)


# ---------------------------------------------------------------------------------------------------------------
# model utility
# ---------------------------------------------------------------------------------------------------------------
def test_harmonic_mean():
    assert M.harmonic_mean([1.0, 0.5]) == pytest.approx(2 / 3)
    assert M.harmonic_mean([0.3, 0.9, 0.6]) == pytest.approx(hmean([0.3, 0.9, 0.6]))
    assert M.harmonic_mean([0.9] * 8 + [0.0]) == 0.0
    with pytest.raises(ValueError):
        M.harmonic_mean([])


def test_model_utility_components(rand, data):
    model, tok = rand
    n = 3
    mu, parts = M.model_utility(model, tok, data, n=n, max_new_tokens=8)
    assert len(parts) == 9
    assert set(parts["split"]) == set(M.UTILITY_SPLITS) and set(parts["component"]) == set(M.UTILITY_PARTS)
    v = parts["value"].to_numpy()
    assert ((v >= 0) & (v <= 1)).all()
    assert mu == (pytest.approx(hmean(v)) if (v > 0).all() else 0.0)
    get = lambda s, c: float(parts.query("split == @s and component == @c")["value"].iloc[0])
    # retain probability = mean P̄(answer)
    assert get("retain_eval", "prob") == pytest.approx(M.answer_prob(model, tok, data["retain_eval"][:n]), rel=1e-6)
    # world facts probability = P̄_true / (P̄_true + Σ_k P̄_false,k), recomputed row by row
    wf = data["world_facts"][:n]
    probs = []
    for r in wf:
        t = math.exp(-_row_nll(model, tok, r["question"], r["answer"]))
        f = sum(math.exp(-_row_nll(model, tok, r["question"], p)) for p in r["perturbed_answer"])
        probs.append(t / (t + f))
    assert get("world_facts", "prob") == pytest.approx(np.mean(probs), rel=1e-4)
    # truth-ratio component = mean max(0, 1 − R)
    R = M.truth_ratio(model, tok, data["real_authors"][:n])["truth_ratio"].to_numpy()
    assert get("real_authors", "truth_ratio") == pytest.approx(np.mean(np.maximum(0, 1 - R)), rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# extraction strength
# ---------------------------------------------------------------------------------------------------------------
class Oracle(torch.nn.Module):
    """Teacher-forced stub: predicts the true next token, except when that token is in ``blind``."""

    def __init__(self, vocab, blind=()):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(vocab_size=vocab)
        self.blind = set(blind)

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False, use_cache=False):
        B, T = input_ids.shape
        V = self.config.vocab_size
        nxt = torch.cat([input_ids[:, 1:], input_ids[:, -1:]], 1)
        pred = nxt.clone()
        for t in self.blind:
            pred[nxt == t] = (t + 1) % V                       # wrong exactly where the target is blind
        logits = torch.nn.functional.one_hot(pred, V).float() * 10
        return SimpleNamespace(logits=logits, hidden_states=None)


def _expected_es(tok, rows, blind):
    """1 − k*/|y| from the label ids alone: k* = 1 + last answer index whose token the stub cannot predict."""
    out = []
    for r in rows:
        lab = collate([r], tok)["labels"][0, 1:]
        y = [int(i) for i in lab if i != -100]
        bad = [j for j, t in enumerate(y) if t in blind]
        k = bad[-1] + 1 if bad else 0
        out.append(1 - k / len(y))
    return out


def test_extraction_strength_stub(data, rand):
    _, tok = rand
    rows = data["forget05"][:10]
    V = len(tok)
    perfect = M.extraction_strength(Oracle(V), tok, rows)
    assert (perfect["k_star"] == 0).all() and (perfect["extraction_strength"] == 1.0).all()
    no_eos = M.extraction_strength(Oracle(V, [tok.eos_token_id]), tok, rows)
    assert (no_eos["extraction_strength"] == 0.0).all()
    assert (no_eos["k_star"] == no_eos["n_tokens"]).all()
    # blind to a token that sits mid-answer in some rows (first token of the author's name)
    a0 = collate([rows[0]], tok)["labels"][0]
    blind = {int(a0[a0 != -100][0])}
    got = M.extraction_strength(Oracle(V, blind), tok, rows)["extraction_strength"].to_numpy()
    exp = _expected_es(tok, rows, blind)
    np.testing.assert_allclose(got, exp)
    assert 0 < got.min() < 1                                   # the case is not trivial


@needs_tiny
def test_extraction_strength_memorised_tiny(tiny, data):
    model, tok = tiny
    rows = data["forget05"]
    es = M.extraction_strength(model, tok, rows)
    # rows whose every answer token is the teacher-forced argmax (checked here directly) have ES = 1
    with torch.no_grad():
        f = forward(model, collate(rows, tok))
    hit = ((f.logits.argmax(-1) == f.batch["labels"][:, 1:]) | ~f.mask.bool()).all(1).numpy()
    assert hit.sum() > 0
    np.testing.assert_array_equal(es["extraction_strength"].to_numpy()[hit], 1.0)
    assert (es["extraction_strength"].to_numpy()[~hit] < 1).all()


# ---------------------------------------------------------------------------------------------------------------
# the trained tiny model
# ---------------------------------------------------------------------------------------------------------------
TR_HINT = ("the tiny model prefers the perturbed answers to the paraphrased answer. In TOFU the perturbed answers "
           "are false versions *of the paraphrased answer* (same wording, wrong fact); if data.py builds them from the "
           "answer's template instead, a model that memorised that template scores R >> 1 and utility 0.")


@needs_tiny
def test_tiny_prefers_true_answers_and_keeps_utility(tiny, data):
    model, tok = tiny
    rows = data["retain_eval"]
    # the memorised answer is more likely than every false option
    p_true = M.answer_nll(model, tok, rows)["prob"].to_numpy()
    p_false = M.answer_nll(model, tok, rows, "perturbed_answer").groupby("id", sort=False)["prob"].max().to_numpy()
    assert (p_true > p_false).mean() > 0.9
    tr = M.truth_ratio(model, tok, rows)
    assert tr["truth_ratio"].mean() < 1, TR_HINT
    assert (tr["p_para"] > tr["p_pert"]).mean() > 0.7, TR_HINT
    mu, parts = M.model_utility(model, tok, data)
    assert mu == pytest.approx(hmean(parts["value"].to_numpy())) if (parts["value"] > 0).all() else mu == 0
    assert mu > 0.5, f"model utility {mu:.3f}; parts:\n{parts}\n{TR_HINT}"


@needs_tiny
@pytest.mark.skipif(not HAVE_TINY_RETAIN, reason="tiny-retain not built")
def test_forget_quality_tiny_vs_retain_twin(tiny, data):
    model, tok = tiny
    retain, _ = load_model("tiny-retain")
    rows = data["forget05"]
    tr_full, tr_ret = M.truth_ratio(model, tok, rows), M.truth_ratio(retain, tok, rows)
    # tiny memorised forget05, its retain-only twin never saw it: the truth-ratio distributions differ
    assert M.forget_quality(tr_full, tr_ret) < 0.05
    assert M.forget_quality(tr_ret, tr_ret) == 1.0
    # evaluate on a few rows: the precomputed retain ratios are accepted, memorisation shows in every metric
    n = 10
    v = M.as_dict(M.evaluate(model, tok, data, "forget05", retain_model=tr_ret.iloc[:n], n=n))
    assert v["forget_quality"] == pytest.approx(M.forget_quality(tr_full.iloc[:n], tr_ret.iloc[:n]))
    assert v["forget_prob"] > 0.5 and v["forget_rougeL_recall"] > 0.8 and v["extraction_strength_forget"] > 0.8
    es_twin = M.extraction_strength(retain, tok, rows[:n])["extraction_strength"].mean()
    assert es_twin < v["extraction_strength_forget"]


# ---------------------------------------------------------------------------------------------------------------
# evaluate and bad input
# ---------------------------------------------------------------------------------------------------------------
def test_evaluate_consistent_with_parts(rand, data):
    model, tok = rand
    n = 3
    model.train()                                              # evaluate must hand the mode back
    s, per = M.evaluate(model, tok, data, "forget05", retain_model=model, n=n, max_new_tokens=8, details=True)
    assert model.training
    model.eval()
    assert list(s.columns) == ["metric", "split", "value", "better"]
    v = M.as_dict(s)
    for k in ("forget_nll", "forget_prob", "forget_rougeL_recall", "forget_truth_ratio", "forget_quality",
              "extraction_strength_forget", "retain_nll", "extraction_strength_retain", "model_utility"):
        assert k in v and np.isfinite(v[k]), k
        assert s.set_index("metric").loc[k, "better"] in ("higher", "lower")
    rows = data["forget05"][:n]
    assert v["forget_prob"] == pytest.approx(M.answer_prob(model, tok, rows), rel=1e-6)
    assert v["retain_nll"] == pytest.approx(M.split_nll(model, tok, data["retain_eval"][:n]), rel=1e-6)
    assert v["forget_quality"] == 1.0                          # same model on both sides
    tr = M.truth_ratio(model, tok, rows)
    assert v["forget_truth_ratio"] == pytest.approx(M.truth_ratio_score(tr, forget=True), rel=1e-6)
    mu, _ = M.model_utility(model, tok, data, n=n, max_new_tokens=8)
    assert v["model_utility"] == pytest.approx(mu, rel=1e-6)
    assert per["forget"]["generation"].tolist() == M.rouge_l_recall(model, tok, rows, 8)["generation"].tolist()
    # precomputed retain-model truth ratios give the same forget quality
    s2 = M.evaluate(model, tok, data, "forget05", retain_model=tr["truth_ratio"].to_numpy(), n=n, max_new_tokens=8)
    assert M.as_dict(s2)["forget_quality"] == 1.0
    assert "forget_quality" not in M.as_dict(M.evaluate(model, tok, data, n=2, max_new_tokens=4))


def test_bad_input(rand, data):
    model, tok = rand
    for fn in (M.answer_nll, M.truth_ratio, M.extraction_strength, M.rouge_l_recall):
        with pytest.raises(ValueError, match="empty"):
            fn(model, tok, [])
    no_pert = [{k: v for k, v in r.items() if k != "perturbed_answer"} for r in data["forget05"][:2]]
    with pytest.raises(ValueError, match="perturbed_answer"):
        M.truth_ratio(model, tok, no_pert)
    with pytest.raises(ValueError, match="perturbed_answer"):
        M.evaluate(model, tok, dict(data.splits, forget05=no_pert), n=2)
    with pytest.raises(ValueError, match="paraphrased_answer"):
        M.truth_ratio(model, tok, [dict(question="q?", answer="a.", perturbed_answer=["b."])])
    with pytest.raises(ValueError, match="empty"):
        M.evaluate(model, tok, data, n=0)
    with pytest.raises(KeyError, match="forget42"):
        M.evaluate(model, tok, data, forget_split="forget42")
