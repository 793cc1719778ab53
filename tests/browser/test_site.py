"""The course site (``make site``), opened in headless chromium with the network cut off.

* The site is built by ``python -m geffect_lite.tooling.site build`` unless ``book/_build/html`` is newer than
  everything it is built from (notebooks, docs, book/, geffect_lite/tooling/); the build must take ≤ ``SITE_BUILD_LIMIT_S`` (180 s).
* It is served from a local HTTP server (as GitHub Pages would) and every request to any other host is blocked and
  recorded: the site must not need one.
* Every HTML page of the site loads; no ``<img>`` is broken (``naturalWidth > 0`` once loaded); pages with equations
  get them typeset by the vendored MathJax; pages with saved widget views show them rendered (controls and, for
  Output widgets, their images) by the vendored ipywidgets HTML manager.
* A small book with one notebook whose widget state was saved by nbclient is built and checked the same way, so the
  widget rendering is tested even if no course notebook carries widget state.

Screenshots go to ``outputs/browser/site__*.png``.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab_driver import OUT, REPO, TIMINGS

HTML = REPO / "book" / "_build" / "html"
SITE_BUILD_LIMIT_S = float(os.environ.get("GEFFECT_SITE_BUILD_S", "180"))
SOURCES = [REPO / "notebooks", REPO / "docs", REPO / "book" / "_config.yml", REPO / "book" / "_toc.yml",
           REPO / "book" / "intro.md", REPO / "book" / "assets", REPO / "geffect_lite" / "tooling"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def newest_source_mtime() -> float:
    m = 0.0
    for s in SOURCES:
        paths = [s] if s.is_file() else [p for p in s.rglob("*") if p.is_file() and "student" not in p.parts]
        m = max([m] + [p.stat().st_mtime for p in paths])
    return m


def build_site(check=True) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "geffect_lite.tooling.site", "build"], check=check, cwd=REPO)
    return time.time() - t0


class Server:
    """A quiet local HTTP server for one folder, on a free port, in a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def __init__(self, root: Path):
        handler = functools.partial(self.Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def offline_page(context, blocked: list):
    """A page that may only talk to 127.0.0.1; anything else is aborted and recorded."""
    page = context.new_page()

    def route(r):
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()
    page.route("**/*", route)
    return page


JS_PAGE_STATE = """() => {
  const imgs = Array.from(document.images);
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  return {
    title: document.title,
    images: imgs.length,
    broken: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => (i.currentSrc || i.src).slice(0, 120)),
    pending: imgs.filter(i => !i.complete).length,
    math_source: document.querySelectorAll('.math, div.math, span.math').length,
    math_typeset: document.querySelectorAll('mjx-container').length,
    widget_views: views,
    // the HTML manager renders each saved view into a new element just before its <script>
    widgets_rendered: Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
      .filter(s => s.parentElement && s.parentElement.querySelector('.jupyter-widgets')).length,
    widget_controls: document.querySelectorAll(
      '.widget-slider, .widget-dropdown, .widget-toggle-button, .widget-checkbox').length,
    // controls the saved state holds (a page may save only a progress bar or an Output area)
    saved_controls: Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]'))
      .map(s => { try { return Object.values(JSON.parse(s.textContent).state || {}); } catch (e) { return []; } })
      .flat().filter(m => /^(Int|Float|Selection)Slider|^Dropdown|^ToggleButton|^Checkbox|^RadioButtons/
                            .test(m.model_name || '') && !/StyleModel$/.test(m.model_name)).length,
    widget_errors: Array.from(document.querySelectorAll('.jupyter-widgets'))
      .filter(e => /Error displaying widget|Failed to load/.test(e.innerText)).length,
  };
}"""


def check_page(page, url: str, shot: str = "", timeout: float = 30.0) -> dict:
    """Open one page and wait until images, equations and widget views are done; returns the page state."""
    page.goto(url, wait_until="load")
    t0 = time.time()
    while True:
        try:
            st = page.evaluate(JS_PAGE_STATE)
        except Exception:                 # a redirect page (index.html → intro.html) navigated away: wait for it
            page.wait_for_load_state("load")
            time.sleep(0.25)
            continue
        done = (st["pending"] == 0 and (st["math_source"] == 0 or st["math_typeset"] > 0)
                and (st["widget_views"] == 0 or st["widgets_rendered"] >= st["widget_views"]))
        if done or time.time() - t0 > timeout:
            break
        time.sleep(0.25)
    st["seconds"] = time.time() - t0
    if shot:
        OUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT / f"site__{shot}.png"), full_page=False)
    return st


@pytest.fixture(scope="module")
def site(chromium_exe):
    fresh = (HTML / "index.html").exists() and (HTML / "index.html").stat().st_mtime > newest_source_mtime()
    if fresh:
        TIMINGS.append(("site: reused the build in book/_build/html (newer than its sources)", 0.0))
    else:
        secs = build_site()
        TIMINGS.append(("site: make site (python -m geffect_lite.tooling.site build)", secs))
        assert secs <= SITE_BUILD_LIMIT_S, f"the site took {secs:.0f} s to build (limit {SITE_BUILD_LIMIT_S:.0f} s)"
    server = Server(HTML)
    yield server
    server.close()


def site_pages() -> list:
    return [p.relative_to(HTML).as_posix() for p in sorted(HTML.rglob("*.html"))
            if p.relative_to(HTML).parts[0] not in ("_static", "_sources", "_images")]


def test_every_page_loads_offline(site, browser_context):
    blocked = []
    page = offline_page(browser_context, blocked)
    pages = site_pages()
    assert "index.html" in pages and any(p.startswith("generated/notebooks/") for p in pages), pages
    t0 = time.time()
    problems = []
    states = {}
    for rel in pages:
        shot = rel.replace("/", "_").replace(".html", "") if rel in (
            "intro.html", "generated/objective_table.html", "generated/docs/course/path.html") or "11_" in rel else ""
        st = check_page(page, f"{site.url}/{rel}", shot)
        states[rel] = st
        if st["broken"]:
            problems.append(f"{rel}: broken images {st['broken']}")
        if st["pending"]:
            problems.append(f"{rel}: {st['pending']} image(s) still loading after {st['seconds']:.0f} s")
        if st["math_source"] and not st["math_typeset"]:
            problems.append(f"{rel}: {st['math_source']} equations, none typeset by MathJax")
        if st["widget_views"] and st["widgets_rendered"] < st["widget_views"]:
            problems.append(f"{rel}: {st['widget_views']} saved widget views, {st['widgets_rendered']} rendered")
        if st["widget_errors"]:
            problems.append(f"{rel}: {st['widget_errors']} widget(s) failed to display")
    page.close()
    TIMINGS.append((f"site: open {len(pages)} pages in chromium", time.time() - t0))
    (OUT / "site_pages.json").write_text(json.dumps(states, indent=1))
    assert not blocked, f"the site asked the network for: {sorted(set(blocked))[:20]}"
    assert not problems, "\n".join(problems)
    with_widgets = [r for r, s in states.items() if s["widget_views"]]
    with_math = [r for r, s in states.items() if s["math_typeset"]]
    assert with_math, "no page has typeset equations (the notebooks and the paper notes have many)"
    for r in with_widgets:     # saved sliders/dropdowns must show as controls, not as empty boxes
        if states[r]["saved_controls"]:
            assert states[r]["widget_controls"] > 0, f"{r}: saved controls rendered as nothing"


def _widget_notebook(path: Path):
    """A tiny notebook whose run (nbclient, store_widget_state) saves an IntSlider + an Output with a PNG."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Saved widget state\n\nA slider and an Output widget with a plot."),
        nbformat.v4.new_code_cell(
            "import ipywidgets as W\nimport matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
            "import matplotlib.pyplot as plt\n"
            "s = W.IntSlider(value=7, min=0, max=10, description='saved')\nout = W.Output()\n"
            "with out:\n    plt.figure(figsize=(3, 2)); plt.plot([0, 1, 2], [0, 1, 4]); plt.show()\n"
            "W.VBox([s, out])"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    assert "widgets" in nb.metadata, "nbclient did not save the widget state"
    nbformat.write(nb, path)


def test_saved_widget_state_renders(browser_context, tmp_path):
    """The mechanism, on a notebook made here: the vendored HTML manager renders a saved slider and Output image."""
    book = tmp_path / "book"
    (book / "generated" / "notebooks").mkdir(parents=True)
    shutil.copytree(REPO / "book" / "assets", book / "assets")
    shutil.copy2(REPO / "book" / "_config.yml", book / "_config.yml")
    (book / "intro.md").write_text("# Widget check\n\nOne notebook with saved widget state.\n")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: generated/notebooks/w\n")
    _widget_notebook(book / "generated" / "notebooks" / "w.ipynb")
    exe = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(exe) if exe.exists() else "jupyter-book", "build", str(book), "--builder", "html"],
                   check=True, cwd=tmp_path, capture_output=True)
    server = Server(book / "_build" / "html")
    blocked = []
    page = offline_page(browser_context, blocked)
    try:
        st = check_page(page, f"{server.url}/generated/notebooks/w.html", "saved_widget_state")
        value = page.evaluate("() => { const r = document.querySelector('.widget-slider .widget-readout');"
                              " return r ? r.innerText.trim() : null; }")
        out_imgs = page.evaluate("() => Array.from(document.querySelectorAll('.widget-output img'))"
                                 ".map(i => i.naturalWidth)")
    finally:
        page.close()
        server.close()
    assert not blocked, f"the page asked the network for: {blocked}"
    assert st["widget_views"] == 1 and st["widgets_rendered"] >= 1, st
    assert value == "7", f"the saved slider shows {value!r}, not its saved value 7"
    assert out_imgs and all(w > 0 for w in out_imgs), f"the Output widget's saved plot did not render: {out_imgs}"


def test_slides_work_offline(browser_context, tmp_path):
    """``make slides`` decks: reveal.js starts, slides and equations render, no request leaves the machine."""
    nbs = sorted((REPO / "notebooks").glob("*.ipynb"))
    pick = [p for p in nbs if p.name.startswith("11_")] or nbs[:1]
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "geffect_lite.tooling.slides", "--out", str(tmp_path / "slides"),
                    *map(str, pick)], check=True, cwd=REPO)
    TIMINGS.append((f"slides: {len(pick)} deck(s) with python -m geffect_lite.tooling.slides", time.time() - t0))
    server = Server(tmp_path / "slides")
    blocked = []
    page = offline_page(browser_context, blocked)
    try:
        page.goto(f"{server.url}/{pick[0].stem}.slides.html", wait_until="load")
        page.wait_for_function("() => window.Reveal && window.Reveal.isReady && window.Reveal.isReady()",
                               timeout=30_000)
        total = page.evaluate("() => window.Reveal.getTotalSlides()")
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(500)
        broken = page.evaluate("() => Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0)"
                               ".map(i => i.src.slice(0, 100))")
        OUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT / "slides__second_slide.png"))
    finally:
        page.close()
        server.close()
    assert not blocked, f"the slides asked the network for: {sorted(set(blocked))}"
    assert total >= 2, f"only {total} slide(s)"
    assert not broken, f"broken images in the slides: {broken}"
