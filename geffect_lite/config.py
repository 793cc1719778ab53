"""Environment switches, paths and seeding — one place for everything read from the environment.

* ``GEFFECT_FAST`` (or ``CI``): shrink heavy work (fewer steps, smaller grids) — notebooks and the demo read
  :func:`fast_mode`.
* ``GEFFECT_CACHE``: where the converted SmolLM2 and the runs are cached (default ``~/.cache/geffect_lite``).
* ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``: set by :func:`offline` so a hub id fails fast.
* ``GEFFECT_DEVICE``: where the commands load their models (``cpu``, the default; ``cuda`` or ``cuda:N`` on a GPU
  machine) — :func:`device`; every computing command's ``--device`` sets it.
* ``GEFFECT_MEMORY_GB``: the memory a notebook may plan for (default: the smallest of the machine's RAM, the cgroup
  limits over the process, e.g. Binder's ≈ 2 GB, and ``ulimit -v``) — :func:`memory_budget_gb`.
"""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS = PACKAGE_DIR / "assets"


def fast_mode() -> bool:
    """True under CI or when ``GEFFECT_FAST=1``: notebooks and the demo shrink their work."""
    v = os.environ.get("GEFFECT_FAST")
    if v is not None:
        return v.strip().lower() not in ("0", "false", "no", "")
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def cache_dir() -> Path:
    """The model cache folder (``$GEFFECT_CACHE`` or ``~/.cache/geffect_lite``), created on demand."""
    p = Path(os.environ.get("GEFFECT_CACHE", Path.home() / ".cache" / "geffect_lite")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


DEVICES = ("cpu", "cuda", "cuda:N")


def check_device(name: str) -> str:
    """``name`` if it is a device this machine has (``cpu``, ``cuda``, ``cuda:N``), else a ValueError naming the valid
    ones. The project never needs a GPU: the same code runs on either."""
    import torch
    s = str(name).strip().lower()
    ok = s == "cpu" or s == "cuda" or (s.startswith("cuda:") and s[5:].isdigit())
    if not ok:
        raise ValueError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")
    if s != "cpu":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(s[5:]) if ":" in s else 0
        if index >= n:
            have = "no CUDA device" if n == 0 else f"{n} CUDA device(s), cuda:0…cuda:{n - 1}"
            valid = ", ".join(["cpu"] + [f"cuda:{i}" for i in range(n)])
            raise ValueError(f"device {name!r} asked for, but this machine has {have} (torch {torch.__version__}); "
                             f"valid here: {valid}")
    return s


def device() -> str:
    """The device the commands load their models on: ``$GEFFECT_DEVICE`` (checked), default ``cpu``."""
    return check_device(os.environ.get("GEFFECT_DEVICE", "cpu") or "cpu")


def offline(on: bool = True) -> None:
    """Set the Hugging Face offline switches (hub ids then fail in seconds instead of ~47 s of retries)."""
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        if on:
            os.environ[k] = "1"
        else:
            os.environ.pop(k, None)


def is_offline() -> bool:
    return any(os.environ.get(k, "").strip() in ("1", "true", "TRUE", "True")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def set_seed(seed: int = 0) -> None:
    """Seed ``random``, NumPy and torch together (minGPT's ``set_seed``)."""
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> None:
    """Use ``n`` torch threads (default: ``$GEFFECT_THREADS`` or 2, the project's machine)."""
    import torch
    n = n or int(os.environ.get("GEFFECT_THREADS", "2"))
    torch.set_num_threads(n)


@contextmanager
def flush_denormal(on: bool = True):
    """Flush subnormal floats (< 1.2e-38) to zero inside the block: once NPO's weights reach ~1e-20 its gradients
    underflow into subnormals, which x86 CPUs process ~10× slower (an NPO run took 3–6× longer than GA's).
    Numbers change only below 1e-38. Turned back off afterwards (PyTorch's default)."""
    import torch
    enabled = bool(on) and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if enabled:
            torch.set_flush_denormal(False)


def memory_budget_gb() -> float:
    """The memory (GB, 10⁹ bytes) this process may plan for: ``$GEFFECT_MEMORY_GB`` if set, else the smallest of the
    machine's RAM, the cgroup limits over this process (Binder: ≈ 2 GB; :func:`cgroup_limits`) and ``ulimit -v``.
    Notebook 12 sizes its live cells by it."""
    env = os.environ.get("GEFFECT_MEMORY_GB")
    if env:
        try:
            v = float(env)
        except ValueError:
            v = -1.0
        if not v > 0:
            raise ValueError(f"GEFFECT_MEMORY_GB={env!r} is not a positive number of gigabytes (e.g. 2 or 12.5)")
        return v
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 2 ** 62
    limits = [ram] + cgroup_limits()
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]           # ``ulimit -v``: address space, a ceiling
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) / 1e9


def cgroup_limits(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> list:
    """The memory limits (bytes) of this process's cgroup and of every cgroup above it, v2 (``memory.max``) and v1
    (``memory.limit_in_bytes``): a container's own limit (Binder, Docker) and a limit set on the process's own group
    (``systemd-run -p MemoryMax=2G``, ``cgexec``) alike. "max" (none) is left out."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    places = [(Path(root), "memory.max"), (Path(root) / "memory", "memory.limit_in_bytes")]   # the namespace's own
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":                                         # v2: 0::/path
            places.append((Path(root) / path.lstrip("/"), "memory.max"))
        elif "memory" in controllers.split(","):                      # v1: N:memory:/path
            places.append((Path(root) / "memory" / path.lstrip("/"), "memory.limit_in_bytes"))
    limits = []
    for folder, name in places:
        for d in [folder, *folder.parents]:
            if not str(d).startswith(root):
                break
            try:
                text = (d / name).read_text().strip()
            except OSError:
                continue
            if text.isdigit():
                limits.append(int(text))
    return limits


__all__ = ["fast_mode", "cache_dir", "offline", "is_offline", "set_seed", "set_threads", "flush_denormal",
           "memory_budget_gb", "cgroup_limits", "ASSETS", "PACKAGE_DIR"]
