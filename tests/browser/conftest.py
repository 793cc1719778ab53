"""Browser tests: shared fixtures, and the rule for a missing browser.

* ``GEFFECT_REQUIRE_BROWSER=1`` (set by ``.ci/run``): a missing ``playwright`` package or chromium FAILS every browser
  test.
* Otherwise they are skipped, and the end of the pytest run says so loudly, with the reason and the fix.

The browser is Debian's chromium (``apt-get install chromium``; ``$GEFFECT_CHROMIUM`` names another binary), driven
headless by the ``playwright`` Python package. Playwright's own browser download is never used.
Screenshots and timings go to ``outputs/browser/``.
"""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_driver import OUT, REPO, TIMINGS, LabServer, find_chromium, launch_chromium  # noqa: E402

REQUIRED = os.environ.get("GEFFECT_REQUIRE_BROWSER", "").strip().lower() in ("1", "true", "yes")
_SKIPPED = {}          # reason -> number of tests skipped for it


def browser_missing() -> str:
    """Why the browser tests cannot run here ('' when they can)."""
    try:
        importlib.import_module("playwright.sync_api")
    except ImportError as e:
        return f"the playwright Python package is not installed ({e}); `make venv` installs it from requirements.txt"
    if not find_chromium():
        return ("no chromium found (looked for $GEFFECT_CHROMIUM, chromium, chromium-browser, google-chrome); "
                "install Debian's: `apt-get update && apt-get install -y chromium`")
    return ""


@pytest.fixture(scope="session")
def chromium_exe():
    why = browser_missing()
    if why:
        if REQUIRED:
            pytest.fail(f"GEFFECT_REQUIRE_BROWSER=1 but the browser tests cannot run: {why}", pytrace=False)
        _SKIPPED.setdefault(why, 0)
        pytest.skip(f"browser tests skipped: {why}")
    return find_chromium()


@pytest.fixture(scope="session")
def browser_context(chromium_exe):
    """One headless chromium (empty profile) for the whole session."""
    from playwright.sync_api import sync_playwright
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geffect-chromium-") as profile, sync_playwright() as p:
        t0 = time.time()
        ctx = launch_chromium(p, chromium_exe, profile)
        TIMINGS.append(("chromium start", time.time() - t0))
        yield ctx
        ctx.close()


@pytest.fixture(scope="session")
def lab_server(chromium_exe):
    """JupyterLab on a free loopback port, serving a copy of notebooks/ (nothing is written back)."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="geffect-lab-") as home:
        t0 = time.time()
        server = LabServer(REPO / "notebooks", home=Path(home), log=OUT / "jupyterlab.log")
        with server:
            TIMINGS.append(("JupyterLab start", time.time() - t0))
            yield server


def pytest_runtest_logreport(report):
    """Count the browser tests skipped for a missing browser (a session fixture's skip runs only once)."""
    if report.skipped and "browser tests skipped: " in str(report.longrepr):
        for why in _SKIPPED:
            if why in str(report.longrepr):
                _SKIPPED[why] += 1


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    if TIMINGS:
        tr.write_sep("-", "browser tests: timings")
        for what, s in TIMINGS:
            tr.write_line(f"{what:<60s} {s:7.1f} s")
    if _SKIPPED:
        tr.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        for why, n in _SKIPPED.items():
            tr.write_line(f"{n} browser test(s) did not run: {why}", red=True, bold=True)
        tr.write_line("The widgets and the course site were NOT checked in a real browser. "
                      "CI (.ci/run) sets GEFFECT_REQUIRE_BROWSER=1, which makes this a failure.", red=True, bold=True)
        tr.write_sep("!", "", red=True, bold=True)
