"""The embedded tiny models: their tokenizer, named size presets and loaders, plus random toy models.

``tiny`` is a 6-block Llama (hidden 128, untied ``lm_head``, its own 1,024-token BPE tokenizer) trained on the
synthetic authors until memorised; ``tiny-retain`` is the same recipe without the ``forget10`` authors (the
retain-only twin that forget quality compares against). ``deep`` / ``deep-retain`` are the deep-narrow variant
(24 blocks, hidden 64) for the layer claims. They ship in the package (``assets/``) and rebuild deterministically
(``python -m geffect_lite build tiny``). ``random_model`` makes a small random model of six architectures for
architecture-agnostic tests.
"""
from __future__ import annotations

from pathlib import Path

import torch

# transformers and tokenizers are imported inside the functions that need them: importing transformers costs ~5 s
# and ``import geffect_lite`` should stay light.

from ..batching import PROMPT
from ..config import ASSETS

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
    "deep": dict(
        num_hidden_layers=24,       # deep and narrow: thirds of 8 blocks, so shallow / middle / deep have depth
        hidden_size=64,             # d
        num_attention_heads=4,      # 16-dim heads
        num_key_value_heads=4,
        intermediate_size=192,      # SwiGLU width (3 d)
        max_position_embeddings=128,
        tie_word_embeddings=False,  # untied, like tiny: the lm group exists
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
    ),
}
#: training recipe per preset (``train_qa`` arguments)
RECIPES = {"tiny": dict(lr=3e-3, max_epochs=60), "deep": dict(lr=2e-3, max_epochs=100)}
#: which preset and training split each shipped model uses
SHIPPED = {"tiny": ("tiny", "full"), "tiny-retain": ("tiny", "full_minus_forget10"),
           "deep": ("deep", "full"), "deep-retain": ("deep", "full_minus_forget10")}


def model_dir(name: str) -> Path:
    """Where a shipped model lives (``assets/<name>``)."""
    return ASSETS / name


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
    return prepare(model), tok


def prepare(model, device=None, dtype=torch.float32):
    model = model.to(dtype=dtype)
    if device is not None:
        model = model.to(device)
    model.eval()
    try:
        model.config.use_cache = False
    except Exception:
        pass
    return model


def load_folder(folder, device=None, dtype=torch.float32, **kw):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder = str(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager", **kw)
    return prepare(model, device, dtype), tok


def load_shipped(name: str = "tiny", device=None, dtype=torch.float32):
    """A shipped model (``tiny``, ``tiny-retain``, ``deep``, ``deep-retain``) and the tiny tokenizer."""
    from transformers import LlamaForCausalLM
    d = model_dir(name)
    build = "deep" if name.startswith("deep") else "tiny"
    if not (d / "model.safetensors").exists():
        raise FileNotFoundError(
            f"{d / 'model.safetensors'} is missing. Rebuild it with `python -m geffect_lite build {build}` "
            "(deterministic, a few minutes on 2 cores).")
    tok = load_tiny_tokenizer()
    try:
        model = LlamaForCausalLM.from_pretrained(str(d), dtype=dtype, attn_implementation="eager")
    except Exception as e:
        raise OSError(f"could not load {name!r} from {d} ({type(e).__name__}: {e}); the file may be corrupted — "
                      f"rebuild it with `python -m geffect_lite build {build}`.") from e
    return prepare(model, device, dtype), tok


__all__ = ["PRESETS", "RECIPES", "SHIPPED", "TOKENIZER_DIR", "model_dir", "build_tokenizer", "corpus_texts",
           "load_tiny_tokenizer", "tiny_config", "random_model", "prepare", "load_folder", "load_shipped"]
