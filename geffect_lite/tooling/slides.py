#!/usr/bin/env python3
"""reveal.js slides from the notebooks, working offline: ``python -m geffect_lite.tooling.slides`` (what ``make slides`` runs).

For each notebook, the cells' ``metadata.slideshow.slide_type`` decide the slides (nbconvert's SlidesExporter). A
notebook with no slide metadata at all gets the rule of ``geffect_lite/tooling/tag_slides.py`` applied in memory (the file is not
changed) and is listed as such. The notebooks are not executed: the slides show the committed outputs. Code is hidden
unless ``--with-code``.

Output (default ``outputs/slides/``): ``NN_name.slides.html`` per notebook, ``index.html`` listing them, and
``vendor/`` with reveal.js, require.js, MathJax and the ipywidgets HTML manager copied from ``book/assets/vendor``
(and the Colab/Binder badge images from ``book/assets/badges``).
Nothing is fetched from a CDN (a custom template, ``geffect_lite/tooling/slides_template/geffect_reveal``, replaces the stock
template's jQuery, Mermaid and MathJax 2 blocks). Open ``outputs/slides/index.html`` in a browser; speaker notes need
the deck to be served (``python -m http.server -d outputs/slides``).

Usage::

    python -m geffect_lite.tooling.slides                                  # every notebook → outputs/slides/
    python -m geffect_lite.tooling.slides notebooks/03_gradient_ascent.ipynb --out /tmp/s --with-code
"""
from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

from . import tag_slides, vendor_js  # noqa: E402

TEMPLATE_DIR = HERE / "slides_template"
VENDOR_PARTS = ("revealjs", "requirejs", "mathjax", "html-manager")


def exporter(with_code: bool = False):
    from nbconvert import SlidesExporter
    from traitlets.config import Config
    c = Config()
    c.TemplateExporter.extra_template_basedirs = [str(TEMPLATE_DIR)]
    c.SlidesExporter.template_name = "geffect_reveal"
    c.SlidesExporter.reveal_url_prefix = f"vendor/{vendor_js.REVEAL}"
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_number = "c/t"
    c.HTMLExporter.require_js_url = f"vendor/{vendor_js.REQUIRE_JS}"
    c.HTMLExporter.mathjax_url = f"vendor/{vendor_js.MATHJAX}"
    c.HTMLExporter.widget_renderer_url = f"vendor/{vendor_js.EMBED_AMD}"
    c.HTMLExporter.jquery_url = ""
    if not with_code:
        c.TemplateExporter.exclude_input = True
        c.TemplateExporter.exclude_input_prompt = True
        c.TemplateExporter.exclude_output_prompt = True
    return SlidesExporter(config=c)


def title(nb: dict, fallback: str) -> str:
    for c in nb.get("cells", []):
        if c.get("cell_type") == "markdown":
            for line in "".join(c.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def build(paths, out: Path, with_code: bool = False) -> list:
    """Write one deck per notebook (+ vendor/ and index.html); returns rows (file, title, slides, auto_tagged)."""
    import nbformat
    out.mkdir(parents=True, exist_ok=True)
    vendor = out / "vendor"
    if vendor.exists():
        shutil.rmtree(vendor)
    for part in VENDOR_PARTS:
        shutil.copytree(vendor_js.VENDOR / part, vendor / part)
    shutil.copytree(vendor_js.BADGE_DIR, vendor / "badges")
    ex = exporter(with_code)
    rows = []
    for p in map(Path, paths):
        raw = json.loads(vendor_js.local_badges(p.read_text(encoding="utf-8"), "vendor/badges/"))
        auto = not tag_slides.has_slide_metadata(raw)
        if auto:
            tag_slides.tag(raw)
        n_slides = sum(c.get("metadata", {}).get("slideshow", {}).get("slide_type") in ("slide", "subslide")
                       for c in raw["cells"])
        nb = nbformat.reads(json.dumps(raw), as_version=4)      # joins list-of-lines sources
        body, _ = ex.from_notebook_node(nb, resources={"metadata": {"name": p.stem, "path": str(p.parent)}})
        name = f"{p.stem}.slides.html"
        (out / name).write_text(body, encoding="utf-8")
        rows.append(dict(file=name, title=title(raw, p.stem), slides=n_slides, auto_tagged=auto))
    items = "\n".join(f'<li><a href="{html.escape(r["file"])}">{html.escape(r["title"])}</a> '
                      f'({r["slides"]} slides{", slide types from the default rule" if r["auto_tagged"] else ""})</li>'
                      for r in rows)
    (out / "index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>geffect_lite slides</title></head>"
        f"<body><h1>geffect_lite slides</h1><p>One reveal.js deck per notebook (arrow keys to move, S for speaker "
        f"notes when served over HTTP).</p><ul>\n{items}\n</ul></body></html>\n", encoding="utf-8")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="default: notebooks/*.ipynb")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "slides")
    ap.add_argument("--with-code", action="store_true", help="show the code cells' inputs too")
    a = ap.parse_args(argv)
    paths = a.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    bad = [str(p) for p in paths if not Path(p).is_file()]
    if bad:
        print(f"error: not a file: {', '.join(bad)}", file=sys.stderr)
        return 2
    problems = vendor_js.check()
    if problems:
        print("error: vendored JavaScript is incomplete: " + "; ".join(problems), file=sys.stderr)
        return 2
    t0 = time.time()
    rows = build(paths, a.out, a.with_code)
    auto = [r["file"] for r in rows if r["auto_tagged"]]
    print(f"slides: {len(rows)} decks in {a.out} ({time.time() - t0:.0f} s); open {a.out / 'index.html'}")
    if auto:
        print(f"slides: {len(auto)} notebook(s) carry no slide metadata; the default rule of geffect_lite/tooling/tag_slides.py "
              "was applied in memory")
    return 0


__all__ = ["exporter", "title", "build", "main"]


if __name__ == "__main__":
    sys.exit(main())
