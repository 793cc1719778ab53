"""Drive JupyterLab from Playwright: start a server, run a notebook, find and move its ipywidgets controls.

Used by ``test_lab_widgets.py``; everything here is plain functions so a person can reuse them from a REPL.

* :func:`find_chromium` / :func:`launch_chromium`: Debian's chromium (never Playwright's own browser download),
  headless, with an empty profile.
* :class:`LabServer`: JupyterLab on a free loopback port, no token or password, serving a *copy* of the notebooks (so
  nothing the browser does can write into the repository), autosave off, windowing off (every cell is in the DOM),
  news and update checks off (no network), ``GEFFECT_FAST=1``.
* :class:`LabNotebook`: one notebook open in its own page and workspace: run all cells, wait for the kernel, list the
  controls found in the rendered outputs, move one control and wait for the plot it drives to change.

The controls are *discovered* in the rendered notebook (dropdowns, sliders, toggle buttons, check boxes, radio
buttons), never looked up by cell number, so the tests follow the notebooks when cells move.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "outputs" / "browser"      # screenshots, timings.csv, the JupyterLab log
TIMINGS: list = []                      # (what, seconds): printed at the end of the pytest run
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
STDERR_SELECTOR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# JupyterLab user settings for the test server: all cells attached to the DOM, no autosave, no request to the web.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


# ---------------------------------------------------------------------------------------------------------------
# the browser
# ---------------------------------------------------------------------------------------------------------------
def find_chromium() -> Optional[str]:
    """``$GEFFECT_CHROMIUM``, else the first chromium/chrome found on PATH or in /usr/bin; None if there is none."""
    env = os.environ.get("GEFFECT_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if p:
            return p
    return None


def launch_chromium(playwright, executable: str, user_data_dir: str):
    """A headless chromium with an empty profile (a persistent context: the only way to pass --user-data-dir)."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000}, service_workers="block")


# ---------------------------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(base: dict, home: Path) -> dict:
    """The environment of the test server and its kernels: offline, fast mode, one thread per kernel, the .venv first
    on PATH (the kernel spec runs ``python``), and private Jupyter settings/runtime/workspace folders."""
    env = dict(base)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_WAIT_POLICY="PASSIVE",
               GEFFECT_FAST="1", TQDM_DISABLE="1",
               GEFFECT_THREADS=env.get("GEFFECT_BROWSER_THREADS", "1"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_CONFIG_DIR=str(home / "config"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    env.pop("MPLBACKEND", None)      # MPLBACKEND=Agg (make unit) would hide every plot: ipykernel picks inline
    return env


def strip_notebook(path: Path) -> None:
    """Remove outputs, execution counts and saved widget state from a notebook file (in place)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")


class LabServer:
    """JupyterLab serving a copy of ``notebooks`` from a temporary root; use as a context manager."""

    def __init__(self, notebooks: Path, home: Optional[Path] = None, log: Optional[Path] = None,
                 strip_outputs: bool = True):
        self.home = Path(home or tempfile.mkdtemp(prefix="geffect-lab-"))
        self.root = self.home / "root"
        self.notebooks = self.root / "notebooks"
        self.log_path = Path(log) if log else self.home / "lab.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        shutil.copytree(notebooks, self.notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "student"))
        if strip_outputs:        # the tests run every cell anyway; committed images only cost rendering time
            for p in self.notebooks.glob("*.ipynb"):
                strip_notebook(p)
        for rel, value in LAB_SETTINGS.items():
            p = self.home / "settings" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(value))

    def start(self, timeout: float = 90.0) -> "LabServer":
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={self.root}",
               "--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
               "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--ServerApp.open_browser=False"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=lab_env(os.environ, self.home), stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.root)
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}: see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.url}/api/status", timeout=2).read()
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s: see {self.log_path}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------------------------
# the notebooks
# ---------------------------------------------------------------------------------------------------------------
CONTROL_MODELS = re.compile(r"^(Int|Float|Selection)(Range)?Slider|^Dropdown|^ToggleButton|^Checkbox|^RadioButtons|"
                            r"^Select(ion|Multiple)?Model")


def widget_notebooks(folder: Path) -> List[Path]:
    """Notebooks with interactive widgets: a widget output whose saved state holds a control (slider, dropdown,
    toggle…), or a code cell that builds one (``interact(``, ``interactive_output(``, a ``gl.widgets.*_widget(``
    helper, ``widgets.<Slider/Dropdown/…>``). A saved progress bar alone (tqdm) does not count."""
    import nbformat
    found = []
    for p in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        shown = any(WIDGET_MIME in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                    for o in c.get("outputs", []))          # a saved state no output refers to is left-over
        saved = shown and any(CONTROL_MODELS.search(m.get("model_name", ""))
                              and not m.get("model_name", "").endswith("StyleModel") for m in state.values())
        built = any(c.cell_type == "code" and re.search(
            r"interact(ive_output)?\(|_widget\(|widgets\.(Int|Float|Selection)\w*Slider|widgets\.(Dropdown|Toggle|"
            r"Checkbox|RadioButtons)", c.source) for c in nb.cells)
        if saved or built:
            found.append(p)
    return found


# Every script below finds its notebook panel by path and looks only inside it: several notebooks share one page.
JS_PANEL = """
  const app = window.jupyterapp;
  let panel = null;
  for (const w of app.shell.widgets('main')) { if (w.context && w.context.path === PATH) { panel = w; } }
"""

# kernel status and execution counts (small: polled often)
JS_STATUS = "(PATH) => {" + JS_PANEL + """
  if (!panel || !panel.sessionContext || !panel.sessionContext.session || !panel.sessionContext.session.kernel)
    return {kernel: 'none', counts: []};
  const code = panel.content.widgets.filter(c => c.model.type === 'code');
  return {kernel: panel.sessionContext.session.kernel.status, counts: code.map(c => c.model.executionCount)};
}"""

# error and stderr outputs: in the cell models, in the rendered page (which includes what widget Output areas
# captured) and widgets that failed to display
JS_PROBLEMS = "([PATH, SEL]) => {" + JS_PANEL + """
  const out = [];
  if (!panel) return [{cell: -1, text: 'notebook panel not found'}];
  panel.content.widgets.forEach((c, i) => {
    if (c.model.type !== 'code') return;
    for (let k = 0; k < c.model.outputs.length; k++) {
      const o = c.model.outputs.get(k);
      if (o.type === 'error') out.push({cell: i, text: 'error output: ' + JSON.stringify(o.toJSON()).slice(0, 800)});
      if (o.type === 'stream' && o.toJSON().name === 'stderr')
        out.push({cell: i, text: String(o.toJSON().text)});
    }
  });
  const cells = Array.from(panel.node.querySelectorAll('.jp-Cell'));
  for (const el of panel.node.querySelectorAll(SEL))
    out.push({cell: cells.indexOf(el.closest('.jp-Cell')), text: 'rendered: ' + el.innerText});
  for (const el of panel.node.querySelectorAll('.jupyter-widgets')) {
    const t = el.innerText || '';
    if (t.includes('Error displaying widget') || t.includes('Failed to load model class'))
      out.push({cell: cells.indexOf(el.closest('.jp-Cell')), text: t.slice(0, 300)});
  }
  return out;
}"""

# Tag every control in the rendered outputs with data-gl-control="<PREFIX>-<n>" and describe it.
JS_CONTROLS = "([PATH, PREFIX]) => {" + JS_PANEL + """
  const cells = Array.from(panel.node.querySelectorAll('.jp-Cell'));
  const out = [];
  const label = (el) => { const w = el.closest('.widget-inline-hbox, .widget-inline-vbox, .widget-toggle-buttons');
    const l = w && w.querySelector('.widget-label'); return l ? l.innerText.trim() : (el.innerText || '').trim(); };
  const add = (el, kind, extra) => { const id = PREFIX + '-' + out.length; el.setAttribute('data-gl-control', id);
    out.push(Object.assign({id: id, kind: kind, cell: cells.indexOf(el.closest('.jp-Cell')), label: label(el)},
                           extra)); };
  cells.forEach((cell) => {
    const area = cell.querySelector('.jp-Cell-outputArea'); if (!area) return;
    area.querySelectorAll('.widget-dropdown select').forEach(s =>
      add(s, 'dropdown', {options: Array.from(s.options).map(o => o.value)}));
    area.querySelectorAll('.widget-slider').forEach(s => add(s, 'slider', {}));
    area.querySelectorAll('.widget-toggle-buttons').forEach(t =>
      add(t, 'toggle-buttons', {options: Array.from(t.querySelectorAll('button')).map(b => b.innerText.trim())}));
    area.querySelectorAll('button.widget-toggle-button').forEach(b => {
      if (!b.closest('.widget-toggle-buttons')) add(b, 'toggle', {}); });
    area.querySelectorAll('.widget-checkbox input[type=checkbox]').forEach(c => add(c, 'checkbox', {}));
    area.querySelectorAll('.widget-radio-box').forEach(r =>
      add(r, 'radio', {options: Array.from(r.querySelectorAll('input')).map(i => i.value)}));
  });
  return out;
}"""

# The state of one control right now: value and whether it is disabled.
JS_CONTROL_STATE = """(ID) => {
  const el = document.querySelector('[data-gl-control="' + ID + '"]'); if (!el) return null;
  if (el.tagName === 'SELECT') return {value: el.value, disabled: el.disabled};
  if (el.classList.contains('widget-slider')) {
    const lab = el.querySelector('.widget-label');
    const h = el.querySelector('.noUi-handle'); const r = el.querySelector('.widget-readout');
    return {value: h ? h.getAttribute('aria-valuenow') : null,
            min: h ? parseFloat(h.getAttribute('aria-valuemin')) : null,
            max: h ? parseFloat(h.getAttribute('aria-valuemax')) : null,
            disabled: !!el.querySelector('.slider[disabled]'),
            editable: !!r && r.getAttribute('contenteditable') === 'true', readout: r ? r.innerText : null,
            label: lab ? lab.innerText.trim() : null};
  }
  if (el.classList.contains('widget-toggle-buttons')) {
    const b = el.querySelector('button.mod-active'); return {value: b ? b.innerText.trim() : null,
      disabled: !!el.querySelector('button[disabled]')}; }
  if (el.tagName === 'BUTTON') return {value: el.classList.contains('mod-active'), disabled: el.disabled};
  if (el.tagName === 'INPUT') return {value: el.checked, disabled: el.disabled};
  const c = el.querySelector('input:checked');
  return {value: c ? c.value : null, disabled: !!el.querySelector('input[disabled]')};
}"""

# The images in the cell that holds control ID (the plot it drives): a digest of their data URLs (the PNG bytes), or
# '' while none shows.
JS_CELL_IMAGES = """(ID) => {
  const el = document.querySelector('[data-gl-control="' + ID + '"]'); if (!el) return null;
  const cell = el.closest('.jp-Cell');
  const s = Array.from(cell.querySelectorAll('.jp-Cell-outputArea img')).map(i => i.src).join('|');
  if (!s) return '';
  let h = 2166136261;                                  // FNV-1a: a short, exact-enough digest
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
  return s.length + ':' + (h >>> 0).toString(16);
}"""

JS_OPEN = "(PATH) => { void window.jupyterapp.commands.execute('docmanager:open', {path: PATH, factory: 'Notebook'}); }"
JS_ACTIVATE = ("(PATH) => {" + JS_PANEL +
               " if (panel) { app.shell.activateById(panel.id); return true; } return false; }")
# the notebook is the one the commands act on: the shell's current widget, and it holds the keyboard focus
JS_IS_CURRENT = "(PATH) => {" + JS_PANEL + """
  return !!panel && app.shell.currentWidget === panel && panel.node.contains(document.activeElement);
}"""
# Clear the committed outputs (so nothing old can pass for new), then fire 'run all cells' without awaiting its
# promise (awaiting it from page.evaluate hangs). Both commands pick the current notebook synchronously.
JS_CLEAR_AND_RUN = "(PATH) => {" + JS_PANEL + """
  if (!panel || app.shell.currentWidget !== panel) return false;
  void app.commands.execute('notebook:clear-all-cell-outputs');
  void app.commands.execute('notebook:run-all-cells');
  return true;
}"""


class Lab:
    """One JupyterLab page (a fresh workspace); notebooks open in it as tabs, each with its own kernel."""

    def __init__(self, context, server: LabServer):
        self.server = server
        self.page = context.new_page()
        self.page.goto(f"{server.url}/lab/workspaces/geffect-browser-tests?reset", wait_until="load")
        self.page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell && "
                                    "window.jupyterapp.commands.hasCommand('docmanager:open')", timeout=120_000)

    def open(self, path: str, shots: Path) -> "LabNotebook":
        self.page.evaluate(JS_OPEN, path)
        return LabNotebook(self, path, shots)


@dataclass
class Move:
    """One action on one control, and how the notebook answered."""
    notebook: str
    control: str
    value: str
    seconds: float
    changed: bool
    screenshot: str = ""


def without_cache_notices(found: list, width: int = 800) -> list:
    """``found`` (rows ``{cell, text}`` of :data:`JS_PROBLEMS`) less the run cache's notices, each kept text cut to
    ``width`` characters.

    A stderr line such as ``run cache: …/f49305ccf8b43e1e.pkl: outdated: written by code version …; deleted,
    recomputing`` (:func:`geffect_lite.run_store.is_notice`) reports that this machine's cache held a run written by
    an older version of the code, which is then recomputed: what the cache is meant to do, not a fault of the
    notebook. A stderr text made only of such lines is dropped; from a mixed one only those lines go. Error outputs
    are always kept."""
    from geffect_lite.run_store import is_notice
    out = []
    for row in found:
        text = str(row.get("text", ""))
        if not text.startswith("error output: "):
            head = "rendered: " if text.startswith("rendered: ") else ""
            rest = [line for line in text[len(head):].splitlines() if line.strip() and not is_notice(line)]
            if not rest:
                continue
            text = head + "\n".join(rest)
        out.append(dict(row, text=text[:width]))
    return out


@dataclass
class LabNotebook:
    """One notebook open as a tab of a :class:`Lab` page."""
    lab: Lab
    path: str                       # relative to the server root, e.g. notebooks/11_explorer.ipynb
    shots: Path
    moves: List[Move] = field(default_factory=list)
    run_seconds: float = float("nan")

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def page(self):
        return self.lab.page

    def activate(self, timeout: float = 10.0):
        """Make this notebook the current tab (the one JupyterLab's commands act on) and wait until it has focus."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.page.evaluate(JS_IS_CURRENT, self.path):
                return
            assert self.page.evaluate(JS_ACTIVATE, self.path), f"{self.name}: notebook panel not found"
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: could not make the notebook the current tab")

    def status(self) -> dict:
        return self.page.evaluate(JS_STATUS, self.path)

    def wait_kernel_idle(self, timeout: float = 120.0):
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                s = self.status()
                if s["kernel"] == "idle":
                    return
            except Exception:        # the app object is not there yet
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name}: the kernel was not idle within {timeout:.0f} s")

    def start_run_all(self, attempts: int = 3):
        """Clear the outputs and fire 'run all cells' in this notebook; checks that this notebook (not another tab)
        took the commands: its execution counts are cleared or its kernel is busy."""
        for _ in range(attempts):
            self.activate()
            self._t_run = time.time()
            if self.page.evaluate(JS_CLEAR_AND_RUN, self.path):
                time.sleep(0.3)
                s = self.status()
                if s["kernel"] != "idle" or not any(c is not None for c in s["counts"]):
                    return
        raise RuntimeError(f"{self.name}: 'run all cells' did not start")

    def wait_run_all(self, timeout: float = 240.0) -> float:
        """Wait until every code cell has run and the kernel is idle; fail early on an error or stderr output."""
        t0, k = self._t_run, 0
        while time.time() - t0 < timeout:
            s = self.status()
            k += 1
            if k % 4 == 0:
                problems = self.problems()
                if problems:
                    raise AssertionError(f"{self.name}: error/stderr output while running all cells: {problems}")
            if s["kernel"] == "dead":
                raise AssertionError(f"{self.name}: the kernel died")
            if s["kernel"] == "idle" and s["counts"] and all(c is not None for c in s["counts"]):
                time.sleep(0.5)        # let the last outputs render
                if self.status()["kernel"] == "idle":
                    self.run_seconds = time.time() - t0
                    return self.run_seconds
            time.sleep(0.5)
        s = self.status()
        raise TimeoutError(f"{self.name}: run-all did not finish within {timeout:.0f} s "
                           f"(kernel {s['kernel']}, execution counts {s['counts']})")

    def problems(self) -> list:
        """Error and stderr outputs anywhere in the notebook: in the cells' models and in the rendered page (which
        also shows what a widget's Output area captured), plus widgets that failed to display; the run cache's
        notices left out (:func:`without_cache_notices`)."""
        return without_cache_notices(self.page.evaluate(JS_PROBLEMS, [self.path, STDERR_SELECTOR]))

    def controls(self) -> list:
        """Every control in the rendered outputs, in page order, each tagged with a unique data-gl-control id."""
        prefix = "".join(ch for ch in self.name if ch.isalnum())
        return self.page.evaluate(JS_CONTROLS, [self.path, prefix])

    def screenshot(self, name: str, control_id: Optional[str] = None) -> str:
        """A PNG under ``shots``: the page, or the cell that holds one control. Never fails the test."""
        self.shots.mkdir(parents=True, exist_ok=True)
        name = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-._" else "_" for ch in name)
        path = self.shots / f"{self.name}__{name}.png"
        try:
            if control_id is None:
                self.page.screenshot(path=str(path), full_page=False)
            else:
                cell = self.page.locator(f'[data-gl-control="{control_id}"]').locator(
                    "xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' jp-Cell ')][1]")
                cell.screenshot(path=str(path), timeout=5000)
        except Exception:
            return ""
        return str(path)

    # -- moving controls ----------------------------------------------------------------------------------------
    def targets(self, control: dict) -> list:
        """The values to try for one control: every option of a choice; a slider's min, max and middle (for a
        SelectionSlider: option indices)."""
        kind = control["kind"]
        if kind in ("dropdown", "toggle-buttons", "radio"):
            return list(control["options"])
        if kind in ("toggle", "checkbox"):
            return ["flip", "flip"]
        st = self.page.evaluate(JS_CONTROL_STATE, control["id"])
        lo, hi = st["min"], st["max"]
        integer = float(lo).is_integer() and float(hi).is_integer()     # option indices, an IntSlider, or round ends
        mid = (lo + hi) / 2
        mid = int(round(mid)) if integer else round(mid, 2)
        fmt = (lambda v: str(int(v))) if integer else (lambda v: f"{v:g}")
        return [fmt(lo), fmt(hi), fmt(mid)]

    def drivable(self, control: dict) -> bool:
        """Enabled, and (for a slider) with more than one position."""
        st = self.page.evaluate(JS_CONTROL_STATE, control["id"])
        if st is None or st["disabled"]:
            return False
        return control["kind"] != "slider" or (st["max"] is not None and st["max"] > st["min"])

    def _act(self, control: dict, value: str):
        n, kind = control["id"], control["kind"]
        loc = self.page.locator(f'[data-gl-control="{n}"]')
        if kind == "dropdown":
            loc.select_option(value=value)
        elif kind == "slider":
            # as a student would: a click on the track where the value lies (the same for Int/Float sliders and for
            # SelectionSliders, whose handle moves over option indices and whose readout cannot be typed into; the
            # Home/End keys do not reach a slider that was created disabled, like the explorer's)
            st = self.page.evaluate(JS_CONTROL_STATE, n)
            loc.scroll_into_view_if_needed()
            box = loc.locator(".noUi-base").bounding_box()
            f = min(max((float(value) - st["min"]) / (st["max"] - st["min"]), 0.0), 1.0)
            x = box["x"] + min(max(f * box["width"], 1.0), box["width"] - 1.0)
            self.page.mouse.click(x, box["y"] + box["height"] / 2)
        elif kind == "toggle-buttons":
            loc.locator("button", has_text=value).first.click()
        elif kind == "radio":
            loc.locator(f'input[value="{value}"]').check()
        else:                   # toggle, checkbox
            loc.click()

    def move(self, control: dict, value: str, limit: float) -> Optional[Move]:
        """Set one control and wait (≤ limit s) until the kernel is idle and the cell's plot has changed.
        Returns None when the control is disabled or already at that value (nothing to observe)."""
        n = control["id"]
        st = self.page.evaluate(JS_CONTROL_STATE, n)
        if st is None:
            raise AssertionError(f"{self.name}: control {control['label']!r} disappeared from the page")
        if st["disabled"]:
            return None
        if control["kind"] == "slider":
            if st["value"] is not None and abs(float(st["value"]) - float(value)) < 1e-9:
                return None
        elif control["kind"] not in ("toggle", "checkbox") and str(st["value"]) == str(value):
            return None
        before = self.page.evaluate(JS_CELL_IMAGES, n)
        t0 = time.time()
        self._act(control, value)
        if control["kind"] == "slider":
            t_wait = time.time()      # the handle moves at once; on a busy machine the page may take a moment
            while self.page.evaluate(JS_CONTROL_STATE, n)["value"] == st["value"] and time.time() - t_wait < 2.0:
                time.sleep(0.1)
            if self.page.evaluate(JS_CONTROL_STATE, n)["value"] == st["value"]:
                return None          # the click snapped back to the current value: nothing to observe
        changed, candidate, seen_at = False, None, None
        while time.time() - t0 < limit:
            now = self.page.evaluate(JS_CELL_IMAGES, n)
            if now and now != before and self.status()["kernel"] == "idle":
                if now == candidate:
                    if time.time() - seen_at >= 0.4:       # idle and unchanged for 0.4 s: the final plot
                        changed = True
                        break
                else:
                    candidate, seen_at = now, time.time()
            else:
                candidate = None
            time.sleep(0.1)
        elapsed = (seen_at - t0) if changed else time.time() - t0
        shown, label = value, control["label"]
        if control["kind"] == "slider":                   # what the slider shows now (a SelectionSlider's label)
            now_st = self.page.evaluate(JS_CONTROL_STATE, n) or {}
            shown = f"{value} (shows {(now_st.get('readout') or '').strip()})"
            label = now_st.get("label") or label          # the explorer renames its slider per objective
        m = Move(self.name, label, shown, elapsed, changed,
                 self.screenshot(f"cell{control['cell']:02d}_{n}_{label}_{value}", n))
        self.moves.append(m)
        return m
