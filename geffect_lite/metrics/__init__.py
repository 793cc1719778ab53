"""TOFU-style evaluation (``scoring``: per-question scores; ``tofu``: forget quality, utility, ``evaluate``): how much a model still knows the forget set, and how much else it kept.

Every metric is computed per question (a tidy DataFrame with the row ``id``) and then summarised by a mean,
so any number can be recomputed from the per-row table. Notation (TOFU, Maini et al. 2024, arXiv 2401.06121): for an answer y of
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

* **Truth ratio.** We report R = P̄_pert / P̄_para = exp(NLL_para − NLL_pert) as the TOFU paper writes it; TOFU's
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

from .scoring import answer_nll, answer_prob, extraction_strength, rouge_l_recall, rouge_recall, split_nll
from .tofu import (DIRECTIONS, UTILITY_PARTS, UTILITY_SPLITS, as_dict, evaluate, forget_quality, harmonic_mean,
                   model_utility, truth_ratio, truth_ratio_score)

__all__ = ["answer_nll", "split_nll", "answer_prob", "rouge_recall", "rouge_l_recall", "truth_ratio",
           "truth_ratio_score", "forget_quality", "extraction_strength", "harmonic_mean", "model_utility",
           "evaluate", "as_dict", "DIRECTIONS", "UTILITY_SPLITS", "UTILITY_PARTS"]
