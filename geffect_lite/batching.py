"""Tokenisation and collation: QA rows → padded batches with question tokens masked out of the labels.

Format (TOFU's Phi style, plain text, no chat template so every model sees the same string)::

    [bos] Question: {question}\\nAnswer: {answer}[eos]

The prompt ``Question: …\\nAnswer:`` and the answer `` {answer}`` are tokenised separately and concatenated, so
the prompt/answer boundary is exact. Labels are −100 on the prompt and on padding, and the answer ids plus
``eos`` elsewhere. Padding is on the right. The answer-token mask per instance and per token is exposed by
:func:`answer_mask` (and as ``Forward.mask`` in :mod:`geffect_lite.nll`).

A batch is a dict: ``input_ids, attention_mask, labels`` ([B, T] tensors), ``ids`` (instance ids),
``tokenizer`` (a fingerprint used to catch mismatched tokenizers) and, with ``idk=True``, ``idk``: the same
questions with a refusal answer (for PO / IdkDPO).
"""
from __future__ import annotations

import hashlib
import weakref
from typing import Iterable, List, Optional

import torch

PROMPT = "Question: {question}\nAnswer:"


#: tokenizer → its fingerprint (weak keys: an entry goes with its tokenizer; registered in ``caches.CACHES``)
_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
#: model → (its tokenizer's fingerprint, the name it was loaded by), written by ``load_model`` (weak keys: an entry
#: goes with its model). What the tokenizer-mismatch check reads — nothing is patched onto the model.
_LOADED_WITH: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tokenizer_fingerprint(tok) -> str:
    """A short hash identifying a tokenizer's vocabulary (to catch model/tokenizer mismatches)."""
    try:
        cached = _FINGERPRINTS.get(tok)
    except TypeError:                   # a tokenizer that cannot be weakly referenced: computed each time
        cached = None
    if cached:
        return cached
    v = tok.get_vocab()
    h = hashlib.sha1(str(len(v)).encode())
    for k in sorted(v)[:: max(1, len(v) // 2000)]:
        h.update(f"{k}:{v[k]};".encode())
    fp = h.hexdigest()[:12]
    try:
        _FINGERPRINTS[tok] = fp
    except TypeError:
        pass
    return fp


def remember_tokenizer(model, tok, name: Optional[str] = None) -> None:
    """Record that ``model`` was loaded with ``tok`` (and by ``name``), for :func:`loaded_tokenizer`."""
    _LOADED_WITH[model] = (tokenizer_fingerprint(tok), name)


def loaded_tokenizer(model) -> Optional[str]:
    """The fingerprint of the tokenizer ``model`` was loaded with, or None when unknown. A copy of a loaded model
    (``copy.deepcopy``) or a wrapper sharing its ``config`` is recognised by an equal config, when every loaded
    model with that config had the same tokenizer."""
    rec = _loaded_record(model)
    return rec[0] if rec else None


def loaded_name(model) -> Optional[str]:
    """The name ``load_model`` loaded ``model`` by (None when unknown or ambiguous)."""
    rec = _loaded_record(model)
    return rec[1] if rec else None


def _loaded_record(model):
    try:
        rec = _LOADED_WITH.get(model)
    except TypeError:
        rec = None
    if rec is not None:
        return rec
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    found = {r for m, r in list(_LOADED_WITH.items()) if getattr(m, "config", None) is cfg
             or _same_config(getattr(m, "config", None), cfg)}
    fps = {r[0] for r in found}
    if len(fps) != 1:
        return None
    rec = next(iter(found)) if len(found) == 1 else (fps.pop(), None)
    try:
        _LOADED_WITH[model] = rec      # recognised once: found directly from now on
    except TypeError:
        pass
    return rec


def _same_config(a, b) -> bool:
    try:
        return a is not None and type(a) is type(b) and a.to_dict() == b.to_dict()
    except Exception:
        return False


def encode(tok, question: str, answer: str, max_length: int = 128):
    """Return (input_ids, labels) lists for one QA pair."""
    p = tok(PROMPT.format(question=question), add_special_tokens=True)["input_ids"]
    a = tok(" " + answer.strip(), add_special_tokens=False)["input_ids"]
    if tok.eos_token_id is not None:
        a = a + [tok.eos_token_id]
    # a post-processor may append eos to the prompt too: strip it
    if tok.eos_token_id is not None and len(p) > 0 and p[-1] == tok.eos_token_id:
        p = p[:-1]
    ids = (p + a)[:max_length]
    labels = ([-100] * len(p) + a)[:max_length]
    return ids, labels


def prompt_ids(tok, question: str) -> List[int]:
    p = tok(PROMPT.format(question=question), add_special_tokens=True)["input_ids"]
    if tok.eos_token_id is not None and p and p[-1] == tok.eos_token_id:
        p = p[:-1]
    return p


def _pad_id(tok) -> int:
    if tok.pad_token_id is not None:
        return tok.pad_token_id
    if tok.eos_token_id is not None:
        return tok.eos_token_id
    return 0


def collate(rows: Iterable[dict], tok, answer_key: str = "answer", question_key: str = "question",
            max_length: int = 128, idk: bool = False) -> dict:
    """Tokenise QA rows into one right-padded batch.

    Args:
        rows: dicts with at least ``question`` and ``answer`` (TOFU schema); ``answer_key`` picks another answer
            field (``paraphrased_answer``, ``idk``) and ``question_key`` another question.
        idk: also build ``batch["idk"]``: the same questions answered with each row's refusal (``row["idk"]``).
    """
    rows = list(rows)
    if not rows:
        from .nll import EmptyBatchError
        raise EmptyBatchError("cannot collate an empty list of rows: pass at least one question–answer pair.")
    enc = []
    for r in rows:
        ans = r[answer_key]
        if isinstance(ans, list):
            raise TypeError(f"field {answer_key!r} holds a list; use collate_many for perturbed answers")
        enc.append(encode(tok, r[question_key], ans, max_length))
    T = max(len(i) for i, _ in enc)
    pad = _pad_id(tok)
    ids = torch.full((len(enc), T), pad, dtype=torch.long)
    lab = torch.full((len(enc), T), -100, dtype=torch.long)
    att = torch.zeros((len(enc), T), dtype=torch.long)
    for b, (i, l) in enumerate(enc):
        ids[b, : len(i)] = torch.tensor(i)
        lab[b, : len(l)] = torch.tensor(l)
        att[b, : len(i)] = 1
    batch = dict(input_ids=ids, attention_mask=att, labels=lab,
                 ids=[r.get("id", str(k)) for k, r in enumerate(rows)], tokenizer=tokenizer_fingerprint(tok))
    if idk:
        if not all("idk" in r for r in rows):
            raise KeyError("idk=True needs an 'idk' refusal answer in every row (the synthetic data has one).")
        batch["idk"] = collate(rows, tok, answer_key="idk", question_key=question_key, max_length=max_length)
    return batch


def answer_mask(batch: dict) -> torch.Tensor:
    """[B, T-1] bool: True where the shifted label is an answer token (the set T_b of each instance)."""
    return batch["labels"][:, 1:] != -100


def answer_tokens(batch: dict, tok) -> List[List[str]]:
    """The answer tokens of each instance as strings (for per-token tables and heat maps)."""
    out = []
    for lab in batch["labels"]:
        ids = [int(i) for i in lab[1:] if i != -100]
        out.append([tok.decode([i]) for i in ids])
    return out


def select(batch: dict, index) -> dict:
    """Sub-batch of the instances in ``index`` (list of ints or a slice)."""
    if isinstance(index, int):
        index = [index]
    idx = torch.as_tensor(list(range(batch["input_ids"].shape[0]))[index] if isinstance(index, slice) else index)
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v[idx]
        elif isinstance(v, dict):
            out[k] = select(v, idx.tolist())
        elif isinstance(v, list):
            out[k] = [v[i] for i in idx.tolist()]
        else:
            out[k] = v
    return out


__all__ = ["collate", "encode", "prompt_ids", "answer_mask", "answer_tokens", "select", "tokenizer_fingerprint",
           "remember_tokenizer", "loaded_tokenizer", "loaded_name", "PROMPT"]
