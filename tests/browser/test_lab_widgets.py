"""The notebooks' widgets, clicked in JupyterLab in a real (headless) chromium.

For every notebook that shows ipywidgets (found from the notebooks themselves: a committed widget output or a cell that
builds one), the test

1. opens it in JupyterLab (one page, one tab and one kernel per notebook), waits until the kernel is idle and runs all
   cells (``GEFFECT_FAST=1``); all the notebooks are started at once, quickest first, so the slower ones are still
   running while the first ones are being clicked;
2. finds every control in the rendered outputs (dropdowns, sliders, toggle buttons, check boxes, radio buttons) — no
   cell numbers are hard-coded;
3. drives each one: every option of a dropdown (or toggle/radio group), each slider to its minimum, maximum and
   middle (clicks on the track), each toggle twice; a control disabled by an earlier choice (the
   explorer's hyper-parameter slider) is brought to life through the dropdowns before it; after each action the test
   waits until the kernel is idle and the plot in that cell has settled;
4. asserts that the plot's PNG changed after every action, that each action was answered within ``RESPONSE_LIMIT_S``
   (``$GEFFECT_BROWSER_RESPONSE_S``, default 10 s), that every control could be driven at least once, and that no
   error, traceback or stderr output appears in any cell (in the cell models and in the page, which also shows what a
   widget's Output area captured). The run cache's notices are the one exception: a machine whose cache an older
   version of the code wrote shows one per stale run while it recomputes it (``lab_driver.without_cache_notices``).

Screenshots of each state, a ``timings.csv`` and the server log go to ``outputs/browser/``.
"""
from __future__ import annotations

import csv
import os
import sys
import time

import pytest

from lab_driver import OUT, REPO, TIMINGS, Lab, widget_notebooks, without_cache_notices

from geffect_lite.tooling.notebook_timings import recorded  # noqa: E402

RESPONSE_LIMIT_S = float(os.environ.get("GEFFECT_BROWSER_RESPONSE_S", "10"))
RUN_ALL_LIMIT_S = float(os.environ.get("GEFFECT_BROWSER_RUN_ALL_S", "240"))


def _recorded_seconds(p):
    recs = recorded(p)
    return recs[0]["seconds"] if recs else float("inf")


# quickest first: while the first notebooks are being clicked, the slower ones are still running in their kernels.
# $GEFFECT_BROWSER_NOTEBOOKS="11,04" restricts the test to notebooks whose names start with those prefixes.
NOTEBOOKS = sorted(widget_notebooks(REPO / "notebooks"), key=_recorded_seconds)
ONLY = [x.strip() for x in os.environ.get("GEFFECT_BROWSER_NOTEBOOKS", "").split(",") if x.strip()]
if ONLY:
    NOTEBOOKS = [p for p in NOTEBOOKS if any(p.name.startswith(x) for x in ONLY)]


def test_the_run_cache_notices_are_not_problems_and_the_rest_are():
    """A machine whose cache an older version of the code wrote (CI's, after a code change) shows one notice per
    stale run while the notebook recomputes it: not a failure. Anything else on stderr, and every error, still is."""
    notice = ("run cache: /root/.cache/geffect_lite/runs/f49305ccf8b43e1e.pkl: outdated: written by code version "
              "9e4509f0ff92, this is 649fe0c5c597; deleted, recomputing\n")
    found = [dict(cell=9, text=notice), dict(cell=9, text="rendered: " + notice),
             dict(cell=9, text="WARNING:geffect_lite.runs:" + notice),
             dict(cell=3, text=notice + "UserWarning: something else\n"),
             dict(cell=4, text="error output: " + notice),
             dict(cell=5, text="rendered: Traceback (most recent call last):\n" + notice),
             dict(cell=6, text="Error displaying widget: model not found")]
    assert without_cache_notices(found) == [
        dict(cell=3, text="UserWarning: something else"), dict(cell=4, text="error output: " + notice),
        dict(cell=5, text="rendered: Traceback (most recent call last):"),
        dict(cell=6, text="Error displaying widget: model not found")]
    assert without_cache_notices([dict(cell=1, text="x" * 2000)]) == [dict(cell=1, text="x" * 800)]


def test_widget_notebooks_found():
    """The series has interactive notebooks; an empty list would make the browser tests pass vacuously."""
    assert NOTEBOOKS, "no notebook with ipywidgets found under notebooks/"


@pytest.fixture(scope="module")
def started(browser_context, lab_server):
    """Every widget notebook open as a tab of one JupyterLab page, 'run all' fired in each (they run side by side)."""
    t0 = time.time()
    lab = Lab(browser_context, lab_server)
    TIMINGS.append(("load JupyterLab in the page", time.time() - t0))
    books = {p.stem: lab.open(f"notebooks/{p.name}", OUT) for p in NOTEBOOKS}
    for nb in books.values():
        nb.wait_kernel_idle()
        nb.start_run_all()
    TIMINGS.append(("open the widget notebooks, start their kernels, fire run-all", time.time() - t0))
    yield books
    rows = [m for nb in books.values() for m in nb.moves]
    with open(OUT / "timings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["notebook", "control", "value", "seconds", "plot_changed", "screenshot"])
        for m in rows:
            w.writerow([m.notebook, m.control, m.value, f"{m.seconds:.2f}", m.changed, os.path.basename(m.screenshot)])
    if rows:
        slow = max(rows, key=lambda m: m.seconds)
        TIMINGS.append((f"slowest control response ({slow.notebook}: {slow.control}={slow.value})", slow.seconds))
    lab.page.close()


@pytest.mark.parametrize("notebook", [p.stem for p in NOTEBOOKS])
def test_widgets_respond_in_jupyterlab(started, notebook):
    nb = started[notebook]
    nb.wait_run_all(RUN_ALL_LIMIT_S)
    t0 = time.time()
    TIMINGS.append((f"{notebook}: run all cells (side by side with the others)", nb.run_seconds))
    nb.activate()
    nb.screenshot("after_run_all")
    assert not nb.problems(), f"{notebook}: error/stderr output after running all cells: {nb.problems()}"

    controls = nb.controls()
    assert controls, f"{notebook}: the notebook builds widgets but no control was found in the rendered outputs"
    driven = set()

    def drive(c, value):
        m = nb.move(c, value, RESPONSE_LIMIT_S)
        if m is None:                # disabled just now, or already at that value: nothing to observe
            return None
        driven.add(c["id"])
        assert m.changed, (f"{notebook}: setting {c['kind']} {c['label']!r} (cell {c['cell']}) to {value!r} did not "
                           f"change the plot within {RESPONSE_LIMIT_S:g} s (load average {os.getloadavg()[0]:.1f}; "
                           f"screenshot {m.screenshot})")
        assert m.seconds <= RESPONSE_LIMIT_S
        problems = nb.problems()
        assert not problems, f"{notebook}: error/stderr output after setting {c['label']!r}={value!r}: {problems}"
        return m

    for i, c in enumerate(controls):
        if not nb.drivable(c):
            # disabled by an earlier choice (the explorer's hyper-parameter slider for an objective without one):
            # try the options of the dropdowns before it in the same cell until it comes alive
            for d in [d for d in controls[:i] if d["cell"] == c["cell"] and d["kind"] == "dropdown"]:
                for option in d["options"]:
                    drive(d, option)
                    if nb.drivable(c):
                        break
                if nb.drivable(c):
                    break
        for value in nb.targets(c):
            drive(c, value)
    never = [f"{c['kind']} {c['label']!r} (cell {c['cell']})" for c in controls if c["id"] not in driven]
    assert not never, f"{notebook}: these controls could never be driven (always disabled, or one position): {never}"
    TIMINGS.append((f"{notebook}: drive {len(controls)} controls, {len(nb.moves)} actions", time.time() - t0))
