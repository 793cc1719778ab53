#!/usr/bin/env python3
"""Add reveal.js slide metadata (``cell.metadata.slideshow.slide_type``) to notebook cells by a simple rule.

The rule (``slide_type`` per cell):

* markdown starting with ``# `` or ``## `` → ``slide`` (a new slide);
* markdown starting with ``### `` → ``subslide`` (a slide below the current one);
* other markdown → ``-`` (continues the current slide);
* a code cell with an image output (a figure) → ``fragment`` (appears on the next key press);
* a code cell with other outputs → ``-``;
* a code cell without outputs, the set-up cell (``# Setup`` / ``NBVAL_IGNORE_OUTPUT`` + ``%pip``), and cells tagged
  ``solution`` or ``checker`` → ``skip``.

Cells that already have a ``slide_type`` keep it unless ``--force``. ``make slides`` (geffect_lite/tooling/slides.py) applies the
rule in memory to notebooks that carry no slide metadata at all; run this script to write the metadata into the
notebooks once, then adjust it by hand (JupyterLab: the property inspector, "Slide Type").

Usage::

    python -m geffect_lite.tooling.tag_slides notebooks/03_gradient_ascent.ipynb          # in place
    python -m geffect_lite.tooling.tag_slides --out DIR notebooks/*.ipynb                  # write copies
    python -m geffect_lite.tooling.tag_slides --dry-run notebooks/*.ipynb                  # only count
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _has_image(cell) -> bool:
    return any(any(k.startswith("image/") for k in o.get("data", {})) for o in cell.get("outputs", []))


def is_setup(cell) -> bool:
    s = _src(cell)
    head = "\n".join(s.splitlines()[:3])
    return "# Setup" in head or ("%pip" in s and "google.colab" in s)


def slide_type(cell) -> str:
    """The rule's slide_type for one cell (see the module docstring)."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    if cell.get("cell_type") == "markdown":
        first = next((ln for ln in _src(cell).splitlines() if ln.strip()), "")
        # a first line of badges followed by the title still opens a slide
        lines = [ln for ln in _src(cell).splitlines() if ln.strip()]
        if any(ln.startswith(("# ", "## ")) for ln in lines[:2]):
            return "slide"
        if first.startswith("### "):
            return "subslide"
        return "-"
    if cell.get("cell_type") != "code":
        return "skip"
    if tags & {"solution", "checker"} or is_setup(cell) or not cell.get("outputs"):
        return "skip"
    return "fragment" if _has_image(cell) else "-"


def has_slide_metadata(nb: dict) -> bool:
    return any("slide_type" in c.get("metadata", {}).get("slideshow", {}) for c in nb.get("cells", []))


def tag(nb: dict, force: bool = False) -> Counter:
    """Set slide_type on every cell of ``nb`` (in place); returns a count of the types set."""
    n = Counter()
    for c in nb.get("cells", []):
        show = c.setdefault("metadata", {}).setdefault("slideshow", {})
        if "slide_type" in show and not force:
            continue
        show["slide_type"] = slide_type(c)
        n[show["slide_type"]] += 1
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--out", type=Path, help="write tagged copies into this folder instead of in place")
    ap.add_argument("--force", action="store_true", help="overwrite existing slide_type values")
    ap.add_argument("--dry-run", action="store_true", help="only report what would be set")
    a = ap.parse_args(argv)
    bad = [p for p in a.notebooks if not Path(p).is_file()]
    if bad:
        print(f"error: not a file: {', '.join(bad)}", file=sys.stderr)
        return 2
    for p in map(Path, a.notebooks):
        nb = json.loads(p.read_text(encoding="utf-8"))
        n = tag(nb, force=a.force)
        print(f"{p.name}: " + (", ".join(f"{k} {v}" for k, v in sorted(n.items())) or "nothing to set"))
        if a.dry_run:
            continue
        dest = (a.out / p.name) if a.out else p
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


__all__ = ["is_setup", "slide_type", "has_slide_metadata", "tag", "main"]


if __name__ == "__main__":
    sys.exit(main())
