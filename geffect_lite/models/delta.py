"""Low-rank weight deltas: train one, ship it as a small file, merge it into a model.

A delta changes each targeted ``nn.Linear`` weight ``W`` (out × in) into ``W + s·B·A`` with ``A`` (r × in),
``B`` (out × r) and ``s = alpha / r`` (the low-rank adaptation of Hu et al. 2021, arXiv 2106.09685). During
training the base weights stay frozen and forward hooks add ``s·B(Ax)`` to each targeted layer's output; ``A``
starts as a seeded Gaussian (std ``1/√in``) and ``B`` at zero, so training starts from the base model exactly.
:func:`merge` folds the factors into the weights in place; the merged model is an ordinary Hugging Face model.
Factors are stored as float16 safetensors (keys ``<module>.A`` / ``<module>.B``); :func:`read_delta` checks the
file's sha256 before using it. This is how ``smollm2-tofu`` ships (see ``models.train``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import torch

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")   # attention + MLP

Factors = Dict[str, Tuple[torch.Tensor, torch.Tensor]]      # module name → (A, B)


def target_linears(model, targets: Iterable[str] = TARGETS) -> Dict[str, torch.nn.Linear]:
    """The model's ``nn.Linear`` modules whose last name component is in ``targets`` (in model order)."""
    targets = tuple(targets)
    found = {n: m for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in targets}
    if not found:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(f"no linear layer named {', '.join(targets)} in {type(model).__name__}; "
                         f"its linear layers are named: {', '.join(names)}")
    return found


def init_factors(model, rank: int, seed: int = 0, targets: Iterable[str] = TARGETS) -> Factors:
    """Fresh trainable float32 factors: ``A`` ~ N(0, 1/in) from ``seed``, ``B`` = 0 (so the delta starts at 0)."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive integer, got {rank!r}")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for n, lin in target_linears(model, targets).items():
        a = torch.randn(rank, lin.in_features, generator=gen) / lin.in_features ** 0.5
        b = torch.zeros(lin.out_features, rank)
        out[n] = (a.requires_grad_(True), b.requires_grad_(True))
    return out


def attach(model, factors: Factors, scale: float) -> List:
    """Freeze the model's parameters and add ``scale·B(Ax)`` to each targeted layer's output through forward hooks.
    Returns the hook handles; :func:`detach` removes them (the model is then unchanged)."""
    for p in model.parameters():
        p.requires_grad_(False)
    mods = dict(model.named_modules())
    handles = []
    for n, (a, b) in factors.items():
        def hook(mod, args, out, a=a, b=b):
            return out + scale * torch.nn.functional.linear(torch.nn.functional.linear(args[0], a), b)
        handles.append(mods[n].register_forward_hook(hook))
    return handles


def detach(model, handles: List) -> None:
    """Remove the hooks of :func:`attach` and make the model's parameters trainable again."""
    for h in handles:
        h.remove()
    for p in model.parameters():
        p.requires_grad_(True)


@torch.no_grad()
def merge(model, factors: Factors, scale: float) -> None:
    """``W ← W + scale·B·A`` for every factor pair, in place, in the weight's own dtype (float32 for smollm2)."""
    mods = dict(model.named_modules())
    missing = sorted(set(factors) - set(mods))
    if missing:
        raise ValueError(f"the delta names {len(missing)} module(s) this model lacks, e.g. {missing[0]!r}: it was "
                         f"made for another architecture")
    for n, (a, b) in factors.items():
        w = mods[n].weight
        if tuple(w.shape) != (b.shape[0], a.shape[1]):
            raise ValueError(f"delta for {n} has shape {b.shape[0]}×{a.shape[1]}, the weight is "
                             f"{w.shape[0]}×{w.shape[1]}")
        w.add_(b.to(w) @ a.to(w), alpha=scale)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(2 ** 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rounded(factors: Factors) -> Factors:
    """Detached float16 copies (what a delta file stores)."""
    return {n: (a.detach().to(torch.float16).contiguous(), b.detach().to(torch.float16).contiguous())
            for n, (a, b) in factors.items()}


def write_delta(path, factors: Factors) -> str:
    """Save the factors as float16 safetensors at ``path``; returns the file's sha256."""
    from safetensors.torch import save_file
    flat = {}
    for n, (a, b) in rounded(factors).items():
        flat[f"{n}.A"], flat[f"{n}.B"] = a, b
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(flat, str(path))
    return sha256_file(path)


def read_delta(path, sha256: str) -> Factors:
    """Load a delta file after checking that its sha256 is ``sha256``; a mismatch raises a ValueError naming the
    file and both hashes."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"delta file {path} not found")
    got = sha256_file(path)
    if got != sha256:
        raise ValueError(f"delta file {path} is damaged or was replaced: its sha256 is {got}, expected {sha256} "
                         "(reinstall the package, or rebuild with `python -m geffect_lite build smollm2-tofu`)")
    flat = load_file(str(path))
    names = sorted({k.rsplit(".", 1)[0] for k in flat})
    return {n: (flat[f"{n}.A"], flat[f"{n}.B"]) for n in names}


__all__ = ["TARGETS", "target_linears", "init_factors", "attach", "detach", "merge", "sha256_file", "rounded",
           "write_delta", "read_delta"]
