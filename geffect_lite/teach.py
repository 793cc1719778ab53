"""Small helpers that keep a notebook's prose true of the run it sits beside.

* :func:`setup_notebook` is every notebook's first call (offline switches, threads, seed, plot theme, clock);
* :func:`say` renders Markdown from computed values — a number in prose is never typed;
* :func:`pick` chooses between two sentences by what the run actually shows (a pattern that is not shown is
  written as not shown);
* :func:`check` is an exercise checker: it prints expected vs actual and raises on a mismatch;
* :func:`claim_rows` is a notebook's rows of the claims scoreboard, from the committed three-scale results, with
  the diagnosis of each miss; :func:`committed_note` prints a committed result's provenance;
* :func:`footer` records how the notebook was executed (mode, model, seconds, git commit) in its last cell.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import math
import os
import random
import sys
import time
from typing import Callable, Iterable, Optional

import numpy as np
import pandas as pd

from . import plots, results
from .config import fast_mode, set_threads

_T0 = [time.time()]


def setup_notebook(seed: int = 0, threads: int | None = None) -> bool:
    """The notebooks' one-line set-up: offline switches, threads, seed, plot theme, the clock of :func:`footer`.
    Returns whether fast mode (the CI switch) is on. It imports no torch (seconds on a busy machine): torch's seed
    and thread count are set the moment torch is first imported (at once when it already is)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    random.seed(seed)
    np.random.seed(seed)
    when_imported("torch", lambda torch: (set_threads(threads), torch.manual_seed(seed)))
    try:
        import transformers        # lazy: only to quieten its progress bars when it is installed (imports no torch)
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:
        pass
    plots.setup()
    _T0[0] = time.time()
    return fast_mode()


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``then(module)`` right after ``name`` is first imported (one pending hook per module name). A spec that
    is only looked up (``importlib.util.find_spec``, as transformers does for torch) executes nothing, so the hook
    stays until the module is really executed."""

    def __init__(self, name: str, then: Callable):
        self.name, self.then, self.busy = name, then, False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self.busy:
            return None
        self.busy = True                                 # find the real spec without finding ourselves again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.busy = False
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            load(module)
            self.then(module)
        spec.loader.exec_module = exec_module
        return spec


def when_imported(name: str, then: Callable) -> None:
    """Call ``then(module)`` now if ``name`` is imported, else right after its first import (replacing a pending
    call for the same module, so a second :func:`setup_notebook` wins, as it would with torch imported)."""
    if name in sys.modules:
        then(sys.modules[name])
        return
    sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, _AfterImport) and f.name == name)]
    sys.meta_path.insert(0, _AfterImport(name, then))


def num(x, digits: int = 3) -> str:
    """A number for prose: 3 significant digits, scientific notation as ×10^k when very large or small."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{int(x):,}"
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        m, e = f"{x:.{digits - 1}e}".split("e")
        return f"{m} × 10^{int(e)}"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    s = f"{x:.{digits}g}"
    if float(s) != x and "." not in s and "e" not in s:   # 1.0024 must not read as the exact 1
        for more in range(digits + 1, digits + 4):
            if "." in (t := f"{x:.{more}g}"):
                return t
        return f"{x:#.{digits}g}"                          # 1.00: rounded, not exact
    return s


def say(template: str, states: dict = None, **values) -> None:
    """Display ``template`` as Markdown with ``{name}`` fields filled from ``values`` (numbers via :func:`num`).
    ``states``: the quantities of runs the sentence states ({"<run key>: <quantity>": value}, see
    ``gl.lessons.run_key``), kept in the output's metadata so that a test can compare them across notebooks."""
    from IPython.display import Markdown, display
    fmt = {k: (num(v) if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else v)
           for k, v in values.items()}
    md = {"geffect_lite": {"states": {str(k): float(v) for k, v in states.items()}}} if states else None
    display(Markdown(template.format(**fmt)), metadata=md)


def pick(condition: bool, if_true: str, if_false: str) -> str:
    """``if_true`` when the run shows it, else ``if_false`` (use inside :func:`say`)."""
    return if_true if bool(condition) else if_false


def check(name: str, actual, expected, rtol: float = 1e-6, atol: float = 0.0) -> bool:
    """Exercise checker: prints expected vs actual and raises AssertionError on a mismatch."""
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    ok = a.shape == e.shape and bool(np.allclose(a, e, rtol=rtol, atol=atol))
    show = lambda v: num(float(v)) if np.ndim(v) == 0 else np.array2string(np.asarray(v, dtype=float), precision=4)
    print(f"{'✔' if ok else '✘'} {name}: expected {show(e)}, got {show(a)}")
    if not ok:
        raise AssertionError(f"{name}: expected {show(e)}, got {show(a)} (rtol={rtol}, atol={atol})")
    return True


class ClaimRows(pd.DataFrame):
    """Claims rows that display whole: an HTML table with wrapped, never-cut text (a plain DataFrame would cut the
    paper and diagnosis columns at pandas' ``max_colwidth``). Otherwise a DataFrame."""

    @property
    def _constructor(self):
        return ClaimRows

    def _repr_html_(self):
        return (pd.DataFrame(self).style.hide(axis="index")
                .set_properties(**{"text-align": "left", "white-space": "normal", "vertical-align": "top"})
                .set_table_styles([dict(selector="th", props=[("text-align", "left")])]).to_html())


def claim_rows(ids: Optional[Iterable[str]] = None, models=("tiny", "deep", "smollm2-tofu")) -> ClaimRows:
    """The notebook's rows of the scoreboard (claim | paper | one column per tier | diagnosis) from the committed
    results — the same rule, runs and verdicts as notebook 13. ``ids=None``: every claim, in the scoreboard's order.
    Displays whole (:class:`ClaimRows`)."""
    from .paper.diagnoses import diagnosis_text          # lazy: the paper package imports torch
    from .paper.scoreboard_io import three_scales
    t = three_scales(models).set_index("claim")
    ids = list(t.index) if ids is None else list(ids)
    missing = [i for i in ids if i not in t.index]
    if missing:
        raise KeyError(f"unknown claim(s) {missing}; valid: {', '.join(t.index)}")
    out = t.loc[ids].reset_index()
    out["diagnosis"] = [diagnosis_text(i) for i in ids]
    return ClaimRows(out)


def committed_note(name: str) -> str:
    """The provenance line of a committed result (printed under every committed number)."""
    d = results.load(name)
    return "not committed yet" if d is None else results.provenance_line(d)


def peak_memory_gb() -> float:
    """This process's peak resident memory so far, in GB (10⁹ bytes; Linux: VmHWM, elsewhere ru_maxrss)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9             # kB -> GB
    except OSError:
        pass
    import resource
    import sys
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1e9 if sys.platform == "darwin" else r * 1024 / 1e9      # bytes on macOS, kB on Linux


def committed_model_note(name: str, model: str) -> str:
    """'' when the committed result ``name`` was computed on the model that ``model`` loads today (its provenance
    records the model's fingerprint); otherwise one sentence saying that it comes from an earlier build."""
    from .models import model_fingerprint
    d = results.load(name)
    if d is None:
        return ""
    prov = d.get("provenance", {})
    if prov.get("model_fingerprint") == model_fingerprint(model):
        return ""
    return (f"These committed results were computed on {str(prov.get('date', '?'))[:10]} on an earlier build of "
            f"`{model}`; the `{model}` shipped now is a different model, so they are that earlier model's verdicts "
            "until the scoreboard is rerun on this one.")


def footer(model: str = "tiny") -> dict:
    """Print and return how this notebook was executed: mode, model, seconds, git commit (the one
    ``python -m geffect_lite notebooks --execute`` started from, else the working tree's), date."""
    from .tooling.results import git_commit             # lazy: provenance is tooling (it runs git)
    rec = dict(mode="fast" if fast_mode() else "full", model=model, seconds=round(time.time() - _T0[0], 1),
               commit=os.environ.get("GEFFECT_EXECUTED_FROM") or git_commit(), date=time.strftime("%Y-%m-%d %H:%M"))
    print("executed: " + ", ".join(f"{k} = {v}" for k, v in rec.items()))
    return rec


__all__ = ["setup_notebook", "when_imported", "num", "say", "pick", "check", "claim_rows", "ClaimRows", "committed_note",
           "committed_model_note", "peak_memory_gb", "footer"]
