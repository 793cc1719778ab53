#!/usr/bin/env python3
"""Build the course website (Jupyter Book 1) offline: ``python -m geffect_lite.tooling.site build`` (what ``make site`` runs).

Steps:

1. **prepare** ``book/generated/`` (not committed), a mirror of the repository pages the book shows, so that their
   relative links keep working:

   * ``generated/notebooks/*.ipynb``: the notebooks as committed, with their outputs and saved widget state (the book
     never executes them: ``execute_notebooks: "off"``); the Colab/Binder badge *images* (fetched from the web) are
     replaced by local ones from ``book/assets/badges`` (the links stay);
   * ``generated/docs/**``: ``docs/`` (the paper notes, the glossary, the course pages, their images), where the
     course path gets the measured timing table (``geffect_lite/tooling/notebook_timings.py``) in place of the line
     ``<!-- timing-table -->``, and each ``<!-- run:NN -->`` becomes notebook NN's recorded run time;
   * ``generated/objective_table.md``: the objective table from the registry (``geffect_lite/tooling/objective_table.py``);

2. **build** with ``jupyter-book build book/`` → ``book/_build/html`` (``--all`` rebuilds every page);
3. **check** the built HTML without a browser: every page of the table of contents exists, no page refers to a CDN
   (all JavaScript comes from ``book/assets/vendor``, served as ``_static/vendor``; see ``geffect_lite/tooling/vendor_js.py``), and
   every local ``src``/``href`` resolves to a file. ``tests/browser/test_site.py`` then opens the pages in chromium.

Pages the toc names but that do not exist yet (say docs/glossary.md before it is written) become a one-line stub
and are reported, so the site still builds.
"""
from __future__ import annotations

import argparse
import html.parser
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO = Path(__file__).resolve().parents[2]
BOOK = REPO / "book"
GEN = BOOK / "generated"
HTML = BOOK / "_build" / "html"
TIMING_MARKER = "<!-- timing-table -->"
RUN_MARKER = re.compile(r"<!--\s*run:(\d+)\s*-->")      # <!-- run:03 --> → notebook 03's recorded run time
# pages the table of contents names (besides the notebooks); a missing one becomes a stub
PAGES = ["docs/course/path.md", "docs/course/teaching.md", "docs/course/site.md", "docs/paper.md",
         "docs/glossary.md"]
EXTERNAL_JS = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?:)?//[^"']+["']""", re.I)


def prepare(repo: Path = REPO, gen: Path = GEN) -> list:
    """Assemble book/generated; returns the list of notes (stubs written, etc.)."""
    from . import notebook_timings, objective_table, vendor_js
    notes = []
    if gen.exists():
        shutil.rmtree(gen)
    (gen / "notebooks").mkdir(parents=True)
    notebooks = sorted((repo / "notebooks").glob("*.ipynb"))
    for p in notebooks:
        # badge images: from generated/notebooks/ to book/assets/badges/
        text = vendor_js.local_badges(p.read_text(encoding="utf-8"), "../../assets/badges/")
        (gen / "notebooks" / p.name).write_text(text, encoding="utf-8")
    shutil.copytree(repo / "docs", gen / "docs", ignore=shutil.ignore_patterns("*.ipynb_checkpoints"))
    for rel in PAGES:
        p = gen / rel
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            title = Path(rel).stem.replace("_", " ").capitalize()
            p.write_text(f"# {title}\n\nThis page (`{rel}`) is not written yet.\n", encoding="utf-8")
            notes.append(f"stub page for missing {rel}")
    path_md = gen / "docs/course/path.md"
    text = path_md.read_text(encoding="utf-8")
    rows = notebook_timings.table(notebooks)
    by_number = {r["notebook"].split("_")[0]: r for r in rows}
    if TIMING_MARKER in text:
        text = text.replace(TIMING_MARKER, notebook_timings.markdown(rows))
    else:
        notes.append(f"docs/course/path.md has no {TIMING_MARKER} line: no timing table inserted")

    def run_time(m):
        row = by_number.get(m.group(1).zfill(2))
        if row is None:
            notes.append(f"docs/course/path.md: no notebook {m.group(1)} for {m.group(0)}")
            return "—"
        return notebook_timings.short(row)
    path_md.write_text(RUN_MARKER.sub(run_time, text), encoding="utf-8")
    (gen / "objective_table.md").write_text(objective_table.page(notebook_dir=repo / "notebooks",
                                                            link_prefix="notebooks/"), encoding="utf-8")
    return notes


def build(all_pages: bool = True) -> float:
    """jupyter-book build book/ (offline); returns the seconds it took."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(BOOK), "--builder", "html"]
    if all_pages:
        cmd.append("--all")
    t0 = time.time()
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    return time.time() - t0


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.refs.append((tag, k, v))


def check(html_dir: Path = HTML) -> list:
    """Problems in the built site: missing pages, CDN scripts/styles, local references that resolve to nothing."""
    problems = []
    if not (html_dir / "index.html").exists():
        return [f"{html_dir}/index.html is missing: the site is not built"]
    pages = [p for p in sorted(html_dir.rglob("*.html"))          # the theme's _static/*.html are templates
             if p.relative_to(html_dir).parts[0] not in ("_static", "_sources", "_images")]
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        rel = page.relative_to(html_dir)
        for m in EXTERNAL_JS.finditer(text):
            problems.append(f"{rel}: loads from the network: {m.group(0)[:160]}")
        parser = _Refs()
        parser.feed(text)
        for tag, attr, ref in parser.refs:
            u = urlparse(ref)
            if u.scheme or ref.startswith(("#", "//", "mailto:", "data:", "javascript:")):
                continue
            target = (page.parent / unquote(u.path)).resolve()
            if u.path and not target.exists():
                problems.append(f"{rel}: <{tag} {attr}={ref!r}> points to a missing file")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["prepare", "build", "check"], nargs="?", default="build",
                    help="prepare: assemble book/generated; build: prepare + jupyter-book + check; check: only check")
    a = ap.parse_args(argv)
    t0 = time.time()
    if a.step in ("prepare", "build"):
        for n in prepare():
            print(f"site: {n}")
    if a.step == "build":
        secs = build()
        print(f"site: jupyter-book build took {secs:.0f} s")
    if a.step in ("build", "check"):
        problems = check()
        for p in problems:
            print(f"site check: {p}", file=sys.stderr)
        if problems:
            return 1
        print(f"site: {HTML} checked ({len(list(HTML.rglob('*.html')))} pages) in {time.time() - t0:.0f} s total")
    return 0


__all__ = ["prepare", "build", "check", "main"]


if __name__ == "__main__":
    sys.exit(main())
