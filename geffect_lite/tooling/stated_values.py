"""One value per quantity of one run, across the series: a check over the committed notebooks.

A reading (``gl.lessons.Reading``) or a sentence (``gl.teach.say(..., states=...)``) that states a quantity of a run
lists it, invisibly, in its output's metadata: ``{"geffect_lite": {"states": {"<run key>: <quantity>": value}}}``,
with run keys from ``gl.lessons.run_key`` (model · setting · replication · lr scale · run). This module reads them
back from every notebook and reports

* :func:`conflicts` — one quantity of one run stated with two different values (e.g. the GA run's forget risk "at
  the end" read at θ_T in one notebook and at the last recorded step in another);
* :func:`unbacked` — a rendered sentence that says a run "ends at" / "ended at" / "ends with" a number that its own
  output does not list among its states (so the first check could not see it). A number explicitly labelled "at the
  last recorded step" is exempt: that is θ_{T−1}, named as such.

``python -m geffect_lite.tooling.stated_values [NOTEBOOK …]`` prints both lists (default: notebooks/*.ipynb) and
exits 1 when either is non-empty; ``tests/test_stated_values.py`` runs it on the committed series.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator

from ..teach import num

KEY = "geffect_lite"
END = re.compile(r"\b(?:ends|ended) (?:at|with)\b(?P<gap>[^0-9\n]{0,60}?)(?P<num>-?\d[\d,.]*(?: × 10\^-?\d+)?)")
LAST_RECORDED = re.compile(r"^[^.;\n]{0,40}at the last (?:recorded|probed) step")


def _outputs(path: Path) -> Iterator[tuple]:
    """(cell index, rendered markdown text, states dict) for every markdown cell and markdown output."""
    nb = json.loads(Path(path).read_text())
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "markdown":
            yield i, "".join(c["source"]), {}
        for o in c.get("outputs", []):
            md = o.get("data", {}).get("text/markdown")
            if md is None:
                continue
            meta = o.get("metadata", {})
            meta = meta.get("text/markdown", meta)           # a _repr_markdown_ tuple files it per mimetype
            yield i, "".join(md), dict((meta.get(KEY) or {}).get("states") or {})


def states(paths: Iterable) -> list:
    """Every stated quantity: dicts of notebook, cell, key and value."""
    return [dict(notebook=Path(p).name, cell=i, key=k, value=float(v))
            for p in paths for i, _, st in _outputs(p) for k, v in st.items()]


def conflicts(paths: Iterable, rtol: float = 1e-9) -> list:
    """Quantities of one run stated with different values: "key: value (notebook [cell]), value (…)"."""
    by = {}
    for s in states(paths):
        by.setdefault(s["key"], []).append(s)
    out = []
    for key, rows in sorted(by.items()):
        vals = [r["value"] for r in rows]
        if max(vals) - min(vals) > rtol * max(abs(v) for v in vals):
            out.append(f"{key}: " + ", ".join(f"{num(r['value'])} ({r['notebook']} [{r['cell']}])" for r in rows))
    return out


def unbacked(paths: Iterable) -> list:
    """Rendered "ends at N" sentences whose N is not among the states of the same output."""
    out = []
    for p in paths:
        for i, text, st in _outputs(p):
            shown = {num(v) for v in st.values()}
            for m in END.finditer(text):
                n = m.group("num").rstrip(".,")
                if n in shown or LAST_RECORDED.match(text[m.end():]):
                    continue
                out.append(f"{Path(p).name} [{i}]: …{text[max(0, m.start() - 60):m.end() + 20]}…")
    return out


def main(argv=None) -> int:
    paths = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or sorted(Path("notebooks").glob("*.ipynb"))
    c, u = conflicts(paths), unbacked(paths)
    n = len(states(paths))
    print(f"{n} stated quantities in {len(paths)} notebooks; {len(c)} conflicts, {len(u)} unbacked 'ends at' numbers")
    for line in c + u:
        print("  " + line)
    return 1 if c or u else 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["states", "conflicts", "unbacked", "main"]
