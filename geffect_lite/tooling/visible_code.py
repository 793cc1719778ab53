"""How much of the code a student sees builds prose or tidies plots, and which cells hide their input.

A notebook's lesson is its markdown, its computations and their outputs. Code that renders a sentence from a run
(``say``, ``pick``, ``Markdown``, a ``gl.lessons`` reading) or that tidies a figure (titles, labels, legends, limits,
annotations) is *machinery*: it has to exist, so that every sentence is true of its run, but it should not stand
between the student and the lesson.

This module counts, statement by statement (with :mod:`ast`), the non-blank, non-comment code lines of every code
cell and how many of them are machinery:

* a statement is *prose* when it calls ``say``, ``pick``, ``num``, ``Markdown``, ``Reading`` or anything under
  ``gl.lessons`` / ``lessons`` (a ``def`` counts whole when its body renders prose);
* a statement is *plot tidying* when it is a call of a tidying method (``set``, ``set_title``, ``legend``,
  ``annotate``, ``axhline``, ``tight_layout``, …) or of ``gl.plots.legend_outside`` / ``symlog_every_decade``.

A cell that ends with machinery after its lesson is first split in two. A cell whose machinery is at least half of
its lines (and at least three lines) has its input hidden (``--hide``): JupyterLab's
``metadata.jupyter.source_hidden`` and Jupyter Book's ``hide-input`` tag; its output (the sentence, the figure)
stays. Exercise, solution and checker cells, and cells tagged ``keep-input``, are never split or hidden. The *visible share* is machinery lines in cells whose
input shows, over all code lines whose input shows. Usage::

    python -m geffect_lite.tooling.visible_code            # the table per notebook and the series' visible share
    python -m geffect_lite.tooling.visible_code --hide     # hide the input of the machinery cells, in place
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
from pathlib import Path
from typing import Dict, List, Tuple

import nbformat
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
TARGET = 0.25                                    # issue: < a quarter of the visible code builds prose or tidies plots
PROSE_CALLS = {"say", "pick", "num", "Markdown", "Reading"}
PROSE_ROOTS = {"lessons"}                        # gl.lessons.x(...) or lessons.x(...)
TIDY_CALLS = {"set", "set_title", "set_xlabel", "set_ylabel", "set_xlim", "set_ylim", "set_xscale", "set_yscale",
              "set_xticks", "set_yticks", "set_xticklabels", "set_yticklabels", "legend", "annotate", "text",
              "axhline", "axvline", "axhspan", "axvspan", "tight_layout", "suptitle", "legend_outside",
              "symlog_every_decade", "grid", "tick_params", "set_aspect", "despine", "move_legend"}
KEEP_TAGS = {"exercise", "solution", "checker", "keep-input"}
MIN_HIDDEN = 3                                   # a cell hides only when it has this many machinery lines or more


def _names(node: ast.AST) -> List[str]:
    """Dotted parts of a call's function: gl.lessons.ga.spike → ['gl', 'lessons', 'ga', 'spike']."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def _kind(stmt: ast.stmt) -> str:
    """'prose', 'tidy' or 'lesson' for one top-level statement."""
    calls = [_names(n.func) for n in ast.walk(stmt) if isinstance(n, ast.Call)]
    if any(c and (c[-1] in PROSE_CALLS or PROSE_ROOTS & set(c[:-1])) for c in calls):
        return "prose"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        c = _names(stmt.value.func)
        if c and c[-1] in TIDY_CALLS:
            return "tidy"
    return "lesson"


def _code_lines(src: str) -> set:
    """Line numbers (1-based) that hold code: not blank, not only a comment."""
    return {i for i, l in enumerate(src.splitlines(), 1) if l.strip() and not l.strip().startswith("#")}


def cell_lines(src: str) -> Tuple[int, int]:
    """(code lines, machinery lines) of one cell's source; a cell that does not parse counts as all lesson."""
    lines = _code_lines(src)
    machinery = set()
    for stmt, kind in _statements(src):
        if kind != "lesson":
            machinery |= _span(stmt) & lines
    return len(lines), len(machinery)


def _statements(src: str) -> List[Tuple[ast.stmt, str]]:
    """The cell's top-level statements with their kind; [] when the cell does not parse (it then counts as lesson)."""
    try:                                         # magics become blank lines, so line numbers stay the cell's own
        tree = ast.parse("\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in src.splitlines()))
    except SyntaxError:
        return []
    return [(stmt, _kind(stmt)) for stmt in tree.body]


def _span(stmt: ast.stmt) -> set:
    first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
    return set(range(first, (stmt.end_lineno or stmt.lineno) + 1))


def split_point(src: str) -> int:
    """The 1-based line where a cell's closing run of machinery starts (the lesson above it keeps its input
    visible), or 0 when the cell has no such tail of at least MIN_HIDDEN lines after at least one lesson line."""
    stmts = _statements(src)
    lines = _code_lines(src)
    k = len(stmts)
    while k > 0 and stmts[k - 1][1] != "lesson":
        k -= 1
    if k == 0 or k == len(stmts):
        return 0
    tail = set().union(*(_span(s) for s, _ in stmts[k:])) & lines
    return min(_span(stmts[k][0])) if len(tail) >= MIN_HIDDEN else 0


def is_hidden(cell: Dict) -> bool:
    md = cell.get("metadata", {})
    return bool(md.get("jupyter", {}).get("source_hidden")) or "hide-input" in md.get("tags", [])


def should_hide(cell: Dict) -> bool:
    """A code cell whose machinery is at least half of its lines, and that is no exercise, solution or checker."""
    if cell.get("cell_type") != "code" or KEEP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return False
    total, machinery = cell_lines("".join(cell.get("source", "")))
    return machinery >= MIN_HIDDEN and machinery * 2 >= total


def measure(folder: Path = NOTEBOOKS) -> pd.DataFrame:
    """One row per notebook: code lines, visible lines, visible machinery lines, hidden lines and the share."""
    rows = []
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        code = visible = machinery = hidden = 0
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            total, mach = cell_lines("".join(cell["source"]))
            code += total
            if is_hidden(cell):
                hidden += total
            else:
                visible += total
                machinery += mach
        rows.append(dict(notebook=path.stem, code_lines=code, visible_lines=visible,
                         visible_machinery=machinery, hidden_lines=hidden,
                         visible_share=machinery / visible if visible else 0.0))
    return pd.DataFrame(rows)


def series_share(table: pd.DataFrame) -> float:
    return float(table.visible_machinery.sum() / max(table.visible_lines.sum(), 1))


def hide(folder: Path = NOTEBOOKS) -> int:
    """Split off the machinery that closes a lesson cell (:func:`split_point`) into a cell of its own, then set
    source_hidden and the hide-input tag on every cell :func:`should_hide` picks; returns how many cells changed.
    Outputs of split cells are cleared: run ``make execute-notebooks`` afterwards."""
    changed = 0
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        touched = False
        cells = []
        for cell in nb.cells:                    # first split a lesson from the machinery that closes its cell
            at = split_point(cell.source) if cell.cell_type == "code" and not (
                KEEP_TAGS & set(cell.metadata.get("tags", []))) else 0
            if not at:
                cells.append(cell)
                continue
            head, tail = cell.source.splitlines()[:at - 1], cell.source.splitlines()[at - 1:]
            while head and not head[-1].strip():
                head.pop()
            rest = nbformat.v4.new_code_cell("\n".join(tail), metadata=dict(copy.deepcopy(cell.metadata)))
            if "slideshow" in rest.metadata:
                rest.metadata["slideshow"] = {"slide_type": "-"}
            cell.source, cell.outputs, cell.execution_count = "\n".join(head), [], None
            cells += [cell, rest]
            touched, changed = True, changed + 1
        nb.cells = cells
        for cell in nb.cells:
            if should_hide(cell) and not is_hidden(cell):
                md = cell.setdefault("metadata", {})
                md.setdefault("jupyter", {})["source_hidden"] = True
                md["tags"] = sorted(set(md.get("tags", [])) | {"hide-input"})
                touched, changed = True, changed + 1
        if touched:
            nbformat.write(nb, path)
    return changed


__all__ = ["measure", "series_share", "cell_lines", "split_point", "should_hide", "is_hidden", "hide", "TARGET"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hide", action="store_true", help="hide the input of the machinery cells, in place")
    ap.add_argument("--folder", type=Path, default=NOTEBOOKS)
    args = ap.parse_args(argv)
    if args.hide:
        print(f"hid the input of {hide(args.folder)} cells")
    table = measure(args.folder)
    with pd.option_context("display.width", 160):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1%}"))
    share = series_share(table)
    print(f"\nthe series: {int(table.visible_machinery.sum())} of {int(table.visible_lines.sum())} visible code lines "
          f"build prose or tidy plots ({share:.1%}; target < {TARGET:.0%}); {int(table.hidden_lines.sum())} lines "
          "sit in cells whose input is hidden")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
