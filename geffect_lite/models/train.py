"""Fine-tuning on QA pairs (answer tokens only), the memorisation report, and the builders of the models that
ship or are cached: ``tiny``/``tiny-retain``, ``deep``/``deep-retain`` and ``smollm2-tofu``.

Recipe (every builder): AdamW (β = 0.9/0.98, no weight decay), linear warm-up over half an epoch then cosine decay,
gradient clipping at 1, until the teacher-forced answer-token accuracy reaches the target (checked every epoch).
Deterministic from the seed on one machine. ``memorisation`` reports answer-token accuracy and greedy exact match.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import List, Optional

import torch
from tqdm.auto import tqdm

from ..batching import collate, prompt_ids
from ..config import ASSETS, cache_dir, set_seed, set_threads
from ..data import N_AUTHORS, synthetic
from ..nll import forward, risk_from
from .smollm2 import SMOL_TOFU_AUTHORS, _valid_cached, load_smollm2
from .tiny import RECIPES, SHIPPED, build_tokenizer, corpus_texts, load_folder, load_tiny_tokenizer, tiny_config


def train_qa(model, tok, rows: List[dict], lr: float = 3e-3, batch_size: int = 32, max_epochs: int = 60,
             seed: int = 0, target_acc: float = 0.999, min_epochs: int = 5, progress: bool = True,
             weight_decay: float = 0.0, desc: str = "train", check_rows: Optional[List[dict]] = None,
             time_budget_s: Optional[float] = None):
    """Fine-tune on the answer tokens of ``rows`` until ``target_acc`` teacher-forced accuracy on ``check_rows``
    (default: the training rows), checked after every epoch from ``min_epochs`` on. Returns a log (list of dicts).

    AdamW (β = 0.9/0.98), linear warm-up over half an epoch then cosine decay over ``max_epochs``, gradient
    clipping at 1. A progress bar counts optimiser steps.
    """
    set_seed(seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(rows) / batch_size)
    total = steps_per_epoch * max_epochs
    warm = max(1, steps_per_epoch // 2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    rng = random.Random(seed)
    log, t0 = [], time.time()
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="step")
    for epoch in range(max_epochs):
        order = list(range(len(rows)))
        rng.shuffle(order)
        tot = 0.0
        model.train()
        for s in range(0, len(order), batch_size):
            b = collate([rows[i] for i in order[s: s + batch_size]], tok)
            loss = risk_from(forward(model, b))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach())
            bar.update()
        acc = None
        if epoch + 1 >= min_epochs:
            acc = token_accuracy(model, tok, check_rows or rows)
        log.append(dict(epoch=epoch + 1, loss=tot / steps_per_epoch, acc=acc, seconds=time.time() - t0))
        bar.set_postfix(epoch=epoch + 1, loss=f"{tot / steps_per_epoch:.3f}", acc="-" if acc is None else f"{acc:.4f}")
        if acc is not None and acc >= target_acc:
            break
        if time_budget_s is not None and time.time() - t0 > time_budget_s:
            break
    bar.close()
    opt.zero_grad(set_to_none=True)
    del opt
    model.eval()
    return log


@torch.no_grad()
def token_accuracy(model, tok, rows: List[dict], batch_size: int = 64) -> float:
    """Teacher-forced answer-token accuracy: fraction of answer tokens (incl. eos) that are the argmax."""
    model.eval()
    hit = n = 0
    for s in range(0, len(rows), batch_size):
        f = forward(model, collate(rows[s: s + batch_size], tok))
        tgt = f.batch["labels"][:, 1:]
        pred = f.logits.argmax(-1)
        m = f.mask.bool()
        hit += int(((pred == tgt) & m).sum())
        n += int(m.sum())
    return hit / max(n, 1)


@torch.no_grad()
def greedy_answers(model, tok, questions: List[str], max_new_tokens: int = 40, batch_size: int = 32) -> List[str]:
    """Greedy answers to ``questions`` (left-padded batched decoding, stops at eos)."""
    model.eval()
    dev = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    outs = []
    for s in range(0, len(questions), batch_size):
        ps = [prompt_ids(tok, q) for q in questions[s: s + batch_size]]
        T = max(len(p) for p in ps)
        ids = torch.full((len(ps), T), pad, dtype=torch.long)
        att = torch.zeros((len(ps), T), dtype=torch.long)
        for i, p in enumerate(ps):
            ids[i, T - len(p):] = torch.tensor(p)
            att[i, T - len(p):] = 1
        gen = model.generate(input_ids=ids.to(dev), attention_mask=att.to(dev), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=pad, eos_token_id=tok.eos_token_id)
        for g in gen[:, T:]:
            outs.append(tok.decode(g, skip_special_tokens=True).strip())
    return outs


def exact_match(model, tok, rows: List[dict], **kw) -> float:
    ans = greedy_answers(model, tok, [r["question"] for r in rows], **kw)
    return sum(a == r["answer"].strip() for a, r in zip(ans, rows)) / max(len(rows), 1)


def memorisation(model, tok, data, splits=("forget01", "forget05", "forget10", "retain90", "retain_eval",
                                          "world_facts", "real_authors"), greedy: bool = True):
    """A DataFrame: per split, teacher-forced answer-token accuracy and greedy exact match."""
    import pandas as pd
    rows = []
    for s in splits:
        r = data.split(s)
        rows.append(dict(split=s, n_pairs=len(r), token_accuracy=token_accuracy(model, tok, r),
                         greedy_exact_match=exact_match(model, tok, r) if greedy else float("nan")))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------------------
def build_shipped(family: str = "tiny", out_root: Optional[Path] = None, seed: int = 0, progress: bool = True,
                  lr: Optional[float] = None):
    """Rebuild a shipped family (``"tiny"``: tiny + tiny-retain; ``"deep"``: deep + deep-retain) from the seed into
    ``out_root`` (default: the package assets). ``"tiny"`` also rebuilds the shared tokenizer."""
    from transformers import LlamaForCausalLM   # lazy: transformers costs ~5 s to import
    names = [n for n, (preset, _) in SHIPPED.items() if preset == family]
    if not names:
        raise ValueError(f"unknown model family {family!r}; valid: {', '.join(sorted({p for p, _ in SHIPPED.values()}))}")
    set_threads()
    out_root = Path(out_root or ASSETS)
    data = synthetic()
    if family == "tiny":
        tok = build_tokenizer(corpus_texts(data))
        (out_root / "tokenizer").mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(out_root / "tokenizer"))
    else:
        tok = load_tiny_tokenizer()
    reports = {}
    for name in names:
        preset, split = SHIPPED[name]
        set_seed(seed)
        model = LlamaForCausalLM(tiny_config(len(tok), preset))
        model.config._attn_implementation = "eager"
        log = train_qa(model, tok, data.split(split), seed=seed, desc=f"build {name}", progress=progress,
                       **{**RECIPES[preset], **({"lr": lr} if lr else {})})
        d = out_root / name
        d.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(d))
        reports[name] = dict(epochs=len(log), seconds=log[-1]["seconds"], final_acc=log[-1]["acc"])
    return reports


def smollm2_tofu_rows(data=None):
    """(training rows, forget rows) of ``smollm2-tofu``: the last :data:`SMOL_TOFU_AUTHORS` synthetic authors;
    its forget split is the last 2 of them."""
    data = data or synthetic()
    keep = set(range(N_AUTHORS - SMOL_TOFU_AUTHORS, N_AUTHORS))
    rows = [r for r in data.split("full") if r["author"] in keep]
    return rows, [r for r in rows if r["author"] >= N_AUTHORS - 2]


def build_smollm2_tofu(out: Path, progress: bool = True, seed: int = 0, time_budget_s: float = 540.0):
    """Fine-tune SmolLM2 on :func:`smollm2_tofu_rows` into ``out`` (a few minutes on 2 cores): AdamW lr 3e-4, batch
    8, until ≥ 97 % answer-token accuracy on its forget split or ``time_budget_s``; the accuracy is stored in
    ``train_log.json``."""
    set_threads()
    rows, forget = smollm2_tofu_rows()
    model, tok = load_smollm2()
    log = train_qa(model, tok, rows, lr=3e-4, batch_size=8, max_epochs=8, seed=seed, target_acc=0.97,
                   min_epochs=2, progress=progress, desc="fine-tune smollm2-tofu", check_rows=forget,
                   time_budget_s=time_budget_s)
    acc = log[-1]["acc"] if log[-1]["acc"] is not None else token_accuracy(model, tok, forget)
    if acc < 0.9:
        warnings.warn(f"smollm2-tofu reached only {acc:.3f} answer-token accuracy on its forget split "
                      f"within {time_budget_s:.0f} s (target ≥ 0.90); the machine may be busy. Rebuild with "
                      "`python -m geffect_lite build smollm2-tofu`.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / "train_log.json").write_text(json.dumps(dict(log=log, forget_token_accuracy=acc), indent=1))
    (out / ".complete").write_text("ok\n")
    return dict(log=log, forget_token_accuracy=acc, seconds=log[-1]["seconds"])


def load_smollm2_tofu(device=None, dtype=torch.float32, progress: bool = True):
    """``smollm2-tofu`` from the cache, built on first use."""
    folder = cache_dir() / "smollm2-tofu"
    if not _valid_cached(folder):
        build_smollm2_tofu(folder, progress=progress)
    try:
        return load_folder(folder, device, dtype)
    except Exception as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise OSError(f"the smollm2-tofu cache at {folder} could not be loaded ({e}); it was removed — call again "
                      "to rebuild it.") from e


__all__ = ["train_qa", "token_accuracy", "greedy_answers", "exact_match", "memorisation", "build_shipped",
           "smollm2_tofu_rows", "build_smollm2_tofu", "load_smollm2_tofu"]
