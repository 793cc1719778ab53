"""Layers: the decoder blocks of any causal LM, the paper's layer groups, and the paper's "shallow / middle / deep"
layer — defined once, here.

The G-effect is a sum over parameters, so it splits exactly over any partition of them:
e = Σ_ℓ ∇_{θ_ℓ}Rᵀ∇_{θ_ℓ}L (Wang et al. 2025, arXiv 2502.19301, Fig. 2–3). Three partitions (``scheme``):

* ``"block"`` — ``embed``, ``block 0 … block n-1``, ``final_norm``, ``lm_head`` (``embed (+tied lm_head)`` when the
  input embedding and the output unembedding are one tensor, as in SmolLM2, Gemma and small Qwen2 models);
* ``"paper"`` — ``embed / shallow / middle / deep / lm``: the decoder blocks in **thirds**, extra blocks going to the
  later thirds (:func:`thirds`). For Llama-2-7B's 32 blocks that is blocks 0–9 / 10–20 / 21–31, the paper's Fig. 2
  layers 1–11 / 12–22 / 23–33 counted in hidden states. The final norm joins ``deep``, as in the official code;
* ``"official"`` — the official code's fixed buckets for 32 blocks (0–9 / 10–19 / 20+).

**"Middle" means one thing in this package:** the middle third of the decoder blocks. RMU's layer (Eq. 8, Fig. 7) is
a hidden state; the paper's 11th, 22nd and 33rd of 33 are exactly the hidden states *at the end of* the shallow,
middle and deep thirds (:func:`paper_layer`). The RMU default, the RR regulariser, the claims and the notebooks all
call :func:`paper_layer`.

Blocks are found as the longest ``nn.ModuleList`` of identical modules (``model.layers`` in Llama/Qwen2/Gemma/Phi,
``transformer.h`` in GPT-2, ``gpt_neox.layers`` in Pythia). Embeddings and ``lm_head`` come from
``get_input_embeddings()`` / ``get_output_embeddings()``; anything else before the blocks (GPT-2's position embedding)
is ``embed``, anything after is ``final_norm``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch

SCHEMES = ("paper", "official", "block")
PAPER_GROUPS = ("embed", "shallow", "middle", "deep", "lm")
DEPTHS = ("shallow", "middle", "deep")


class UnsupportedModelError(TypeError):
    """The model's decoder blocks could not be found."""


@dataclass
class ParamInfo:
    name: str
    block: str        # "embed", "block 3", "final_norm", "lm_head", "embed (+tied lm_head)"
    index: int        # block index, or -1 before the blocks, n_blocks after them
    numel: int


def find_blocks(model) -> Tuple[str, torch.nn.ModuleList]:
    """(prefix, ModuleList) of the decoder blocks: the longest ModuleList of same-type modules with parameters."""
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


def n_blocks(model) -> int:
    """Number of decoder blocks (accepts a model or an int; a wrapper without modules, such as the one forward-mode
    AD calls, is read from its ``config.num_hidden_layers``)."""
    if isinstance(model, int):
        return model
    try:
        return len(find_blocks(model)[1])
    except UnsupportedModelError:
        n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
        if n is None:
            raise
        return int(n)


def thirds(n: int) -> Tuple[int, int]:
    """(a, b): blocks [0, a) are shallow, [a, b) middle, [b, n) deep. 32 → (10, 21); 30 → (10, 20); 6 → (2, 4)."""
    a = n // 3
    return a, a + (n - a) // 2


def depth_of_block(i: int, n: int) -> str:
    """"shallow", "middle" or "deep" for 0-based block ``i`` of ``n``."""
    a, b = thirds(n)
    return "shallow" if i < a else ("middle" if i < b else "deep")


def paper_layer(model, where: str = "middle") -> int:
    """The ``hidden_states`` index of the paper's shallow / middle / deep layer: the output of the last block of that
    third (HF convention: 0 = embedding output, n = last block). 32 blocks → 10 / 21 / 32, the paper's 11th / 22nd /
    33rd layers of Fig. 7; 6 blocks (tiny) → 2 / 4 / 6; 30 (SmolLM2) → 10 / 20 / 30. ``"last"`` = ``"deep"``."""
    where = "deep" if where == "last" else where
    if where not in DEPTHS:
        raise ValueError(f"unknown layer position {where!r}; valid: shallow, middle, deep (or last)")
    n = n_blocks(model)
    if n < 3:
        raise ValueError(f"the model has {n} decoder block(s); shallow / middle / deep need at least 3")
    a, b = thirds(n)
    return {"shallow": a, "middle": b, "deep": n}[where]


def is_tied(model) -> bool:
    """Are the input embedding and the output unembedding one tensor?"""
    emb, out = model.get_input_embeddings(), model.get_output_embeddings()
    return emb is not None and out is not None and emb.weight is out.weight


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
        elif id(p) in emb_ids:
            table.append(ParamInfo(name, "embed (+tied lm_head)" if tied else "embed", -1, p.numel()))
        elif id(p) in head_ids:
            table.append(ParamInfo(name, "lm_head", n + 1, p.numel()))
        else:
            table.append(ParamInfo(name, "final_norm" if seen_blocks else "embed", n if seen_blocks else -1,
                                   p.numel()))
    return table


def group_of(info: ParamInfo, n: int, scheme: str = "paper") -> str:
    """The group of one parameter under ``scheme``."""
    if scheme == "block":
        return info.block
    if info.block.startswith("embed"):
        return "embed" if info.block == "embed" else "embed+lm (tied)"
    if info.block == "lm_head":
        return "lm"
    if info.block == "final_norm":
        return "deep"
    if scheme == "official":
        i = info.index
        return "shallow" if i < 10 else ("middle" if i < 20 else "deep")
    return depth_of_block(info.index, n)


def group_names(model, scheme: str = "paper") -> Dict[str, str]:
    """parameter name → group name under ``scheme`` ("paper", "official" or "block")."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown grouping scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    n = n_blocks(model)
    return {pi.name: group_of(pi, n, scheme) for pi in param_table(model)}


def group_order(model, scheme: str = "paper") -> List[str]:
    """Group names in model order (for plots and tables)."""
    seen = list(dict.fromkeys(group_names(model, scheme).values()))
    if scheme != "block":
        order = ["embed", "embed+lm (tied)", "shallow", "middle", "deep", "lm"]
        seen = [g for g in order if g in seen]
    return seen


def layer_table(model):
    """A DataFrame: parameter, block, paper group, official group, size — the grouping made visible."""
    import pandas as pd
    n = n_blocks(model)
    return pd.DataFrame([dict(parameter=pi.name, block=pi.block, paper_group=group_of(pi, n, "paper"),
                              official_group=group_of(pi, n, "official"), numel=pi.numel)
                         for pi in param_table(model)])


__all__ = ["SCHEMES", "PAPER_GROUPS", "DEPTHS", "UnsupportedModelError", "ParamInfo", "find_blocks", "n_blocks",
           "thirds", "depth_of_block", "paper_layer", "is_tied", "param_table", "group_of", "group_names",
           "group_order", "layer_table"]
