"""Parameter groups for layer-wise G-effects, found without knowing the architecture.

The G-effect is a sum over parameters, so it splits exactly over any partition of them (``paper.md`` §2.5):
e = Σ_ℓ ∇_{θ_ℓ}Rᵀ ∇_{θ_ℓ}L. Two partitions are provided:

* **per block** — ``embed``, ``block 0 … block L-1``, ``final_norm``, ``lm_head`` (or ``embed (+tied lm_head)``
  when input embedding and output unembedding are one tensor, as in SmolLM2/Gemma/Qwen2-small);
* **paper groups** — ``embed / shallow / middle / deep / lm``: blocks split in thirds (the paper's Fig. 2 for
  Llama-2-7B: layers 1–11 / 12–22 / 23–33 in hidden-state numbering). The final norm joins ``deep`` — where the
  official code puts it (its ``module3``). The official code's fixed buckets (blocks 0–9 / 10–19 / 20+, for
  32-block Llama-2-7B) are available as ``scheme="official"``; they differ from the paper's thirds by one block
  at the middle/deep boundary (paper: 0–9 / 10–20 / 21–31 in 0-based blocks).

Blocks are found as the longest ``nn.ModuleList`` of identical modules (``model.layers`` in Llama/Qwen2/Gemma/Phi,
``transformer.h`` in GPT-2, ``gpt_neox.layers`` in Pythia). Embeddings and ``lm_head`` come from
``get_input_embeddings()`` / ``get_output_embeddings()``; anything else before the blocks (e.g. GPT-2's position
embedding) is ``embed``, anything after is ``final_norm``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import torch

SCHEMES = ("paper", "official", "block")
PAPER_GROUPS = ("embed", "shallow", "middle", "deep", "lm")


class UnsupportedModelError(TypeError):
    """The model's decoder blocks could not be found."""


@dataclass
class ParamInfo:
    name: str
    block: str        # "embed", "block 3", "final_norm", "lm_head", "embed (+tied lm_head)"
    index: int        # block index, or -1 before the blocks, n_blocks after them
    numel: int


def find_blocks(model):
    """Return (prefix, ModuleList) of the decoder blocks: the longest ModuleList of same-type modules."""
    best = None
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) > 0:
            types = {type(m) for m in mod}
            if len(types) == 1 and any(True for _ in mod[0].parameters()):
                if best is None or len(mod) > len(best[1]):
                    best = (name, mod)
    if best is None:
        raise UnsupportedModelError(
            f"could not find the decoder blocks of {type(model).__name__}: no nn.ModuleList of identical modules "
            "with parameters. geffect_lite supports Hugging Face causal LMs (Llama, GPT-2, GPT-NeoX, Phi, Qwen2, "
            "Gemma, …).")
    return best


def param_table(model) -> List[ParamInfo]:
    """One :class:`ParamInfo` per (deduplicated) parameter tensor, in ``named_parameters`` order."""
    prefix, blocks = find_blocks(model)
    n = len(blocks)
    emb = model.get_input_embeddings()
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    emb_ids = {id(p) for p in emb.parameters()} if emb is not None else set()
    head_ids = {id(p) for p in out_emb.parameters()} if out_emb is not None else set()
    tied = bool(emb_ids & head_ids)
    seen_blocks = False
    table = []
    for name, p in model.named_parameters():   # tied tensors appear once
        if name.startswith(prefix + "."):
            idx = int(name[len(prefix) + 1:].split(".")[0])
            table.append(ParamInfo(name, f"block {idx}", idx, p.numel()))
            seen_blocks = True
            continue
        if id(p) in emb_ids:
            table.append(ParamInfo(name, "embed (+tied lm_head)" if tied else "embed", -1, p.numel()))
        elif id(p) in head_ids:
            table.append(ParamInfo(name, "lm_head", n + 1, p.numel()))
        elif not seen_blocks:
            table.append(ParamInfo(name, "embed", -1, p.numel()))
        else:
            table.append(ParamInfo(name, "final_norm", n, p.numel()))
    return table


def n_blocks(model) -> int:
    return len(find_blocks(model)[1])


def is_tied(model) -> bool:
    return any(pi.block == "embed (+tied lm_head)" for pi in param_table(model))


def paper_group(info: ParamInfo, n: int, scheme: str = "paper") -> str:
    """Map a parameter to embed / shallow / middle / deep / lm."""
    if info.block.startswith("embed"):
        return "embed" if info.block == "embed" else "embed+lm (tied)"
    if info.block == "lm_head":
        return "lm"
    if info.block == "final_norm":
        return "deep"
    i = info.index
    if scheme == "official":
        return "shallow" if i < 10 else ("middle" if i < 20 else "deep")
    # thirds of the blocks, extra blocks going to the later groups: 32 → 10/11/11 = 0-based blocks 0–9 / 10–20 /
    # 21–31, exactly the paper's hidden-state layers 1–11 / 12–22 / 23–33 (paper.md §2.5); 6 → 2/2/2; 30 → 10/10/10
    a = n // 3
    b = a + (n - a) // 2
    return "shallow" if i < a else ("middle" if i < b else "deep")


def group_names(model, scheme: str = "paper") -> Dict[str, str]:
    """parameter name → group name under ``scheme`` ("paper", "official" or "block")."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown grouping scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    table = param_table(model)
    n = n_blocks(model)
    if scheme == "block":
        return {pi.name: pi.block for pi in table}
    return {pi.name: paper_group(pi, n, scheme) for pi in table}


def group_order(model, scheme: str = "paper") -> List[str]:
    """Group names in model order (for plots and tables)."""
    seen = []
    for g in group_names(model, scheme).values():
        if g not in seen:
            seen.append(g)
    if scheme != "block":
        order = ["embed", "embed+lm (tied)", "shallow", "middle", "deep", "lm"]
        seen = [g for g in order if g in seen]
    return seen


def block_groups_frame(model):
    """A DataFrame: parameter, block, paper group, official group, size — the grouping made visible."""
    import pandas as pd
    n = n_blocks(model)
    return pd.DataFrame([dict(parameter=pi.name, block=pi.block, paper_group=paper_group(pi, n, "paper"),
                              official_group=paper_group(pi, n, "official"), numel=pi.numel)
                         for pi in param_table(model)])
