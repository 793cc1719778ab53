#!/usr/bin/env python3
"""One table of every unlearning objective, generated from the library's registry (``gl.list_objectives()``).

``make site`` writes it into the course site, so the page is rebuilt from the code each time and cannot drift. The
columns are whatever the registry returns; the known ones are renamed and ordered (equation, weight on ∇log p, needs
θ_ref, needs a retain set, defaults, notebook), unknown ones are appended as they are, and a missing one is simply
left out.

Usage::

    python -m geffect_lite.tooling.objective_table                 # markdown page on stdout
    python -m geffect_lite.tooling.objective_table -o objective_table.md
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

# registry column -> heading, in the order the page shows them
HEADINGS = {
    "name": "objective",
    "equation": "equation",
    "weight": "weight on ∇log p",
    "needs_ref": "needs θ_ref",
    "needs_retain": "needs a retain set",
    "hparams": "defaults",
    "notebook": "notebook",
    "kind": "kind",
    "alias_of": "alias of",
}


def _missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    try:
        import pandas as pd
        return bool(pd.isna(v)) if not isinstance(v, (dict, list, tuple, set)) else False
    except (TypeError, ValueError, ImportError):
        return False


def cell(column: str, v, notebook_files=None, link_prefix: str = "") -> str:
    """One value as markdown table text (pipes escaped, booleans as yes/no, dicts as k=v)."""
    if _missing(v) or v == "":
        return "—"
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return "yes" if v else "no"
    if isinstance(v, dict):
        s = ", ".join(f"{k}={x}" for k, x in v.items()) if v else "—"
        return s.replace("|", "\\|")
    s = str(v)
    if column == "notebook" and notebook_files:
        nums = [n.strip() for n in s.replace(";", ",").split(",") if n.strip()]
        links = []
        for n in nums:
            match = next((f for f in notebook_files
                          if f.split("_")[0] == n.zfill(2) or f == n or f.startswith(n + ".")), None)
            links.append(f"[{n}]({link_prefix}{match})" if match else n)
        return ", ".join(links)
    s = s.replace("|", "\\|")
    if column in ("equation", "weight"):
        return f"`{s}`" if "`" not in s else s
    return s


def render(df, notebook_files=None, link_prefix: str = "") -> str:
    """The markdown table for a registry DataFrame (any subset or superset of the known columns)."""
    cols = [c for c in HEADINGS if c in df.columns] + [c for c in df.columns if c not in HEADINGS]
    head = [HEADINGS.get(c, str(c)) for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(cell(c, row[c], notebook_files, link_prefix) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def registry():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import geffect_lite as gl
    return gl.list_objectives()


def page(df=None, notebook_dir=None, link_prefix: str = "") -> str:
    """The whole markdown page: a title, where the table comes from, the table."""
    df = registry() if df is None else df
    files = sorted(p.name for p in Path(notebook_dir).glob("*.ipynb")) if notebook_dir else None
    return ("# Every objective in one table\n\n"
            f"Generated from the library's registry (`gl.list_objectives()`, {len(df)} rows) when the site was "
            "built, so it shows what the installed code defines. `python -m geffect_lite objectives` prints the "
            "same registry in a terminal.\n\n" + render(df, files, link_prefix))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", help="write the page here instead of stdout")
    ap.add_argument("--notebooks", default=str(Path(__file__).resolve().parents[2] / "notebooks"),
                    help="folder of notebooks, to link the notebook column")
    ap.add_argument("--link-prefix", default="", help="prefix of the notebook links (e.g. notebooks/)")
    a = ap.parse_args(argv)
    text = page(notebook_dir=a.notebooks, link_prefix=a.link_prefix)
    if a.output:
        Path(a.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


__all__ = ["cell", "render", "registry", "page", "main"]


if __name__ == "__main__":
    sys.exit(main())
