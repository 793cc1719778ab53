#!/usr/bin/env python3
"""Point every Colab/Binder badge and every notebook's install cell at one git ref (a release tag, before a class).

Rewritten, in ``README.md``, ``notebooks/*.ipynb``, ``notebooks/student/*.ipynb``, ``docs/**/*.md`` and
``book/intro.md``:

* Colab links ``colab.research.google.com/github/OWNER/REPO/blob/<ref>/…``;
* Binder links ``mybinder.org/v2/gh/OWNER/REPO/<ref>?…`` (Binder builds the environment of that ref once, and
  reuses it while the ref does not move: a tag keeps Binder from rebuilding mid-lesson);
* the install cell's ``pip install "geffect_lite @ git+https://github.com/OWNER/REPO@<ref>"``.

The files are edited as text (a notebook's JSON keeps its exact layout), only those three patterns change, and the
script prints how many links it moved in each file. ``--check REF`` changes nothing and exits 1 if any link points
elsewhere (for a release checklist).

Usage::

    python -m geffect_lite.tooling.pin_badges v0.1.0             # before the class (then commit, and push the tag)
    python -m geffect_lite.tooling.pin_badges main               # back to the moving branch
    python -m geffect_lite.tooling.pin_badges --check v0.1.0
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# (name, pattern): group 1 is kept, group "ref" is replaced
PATTERNS = [
    ("colab", re.compile(r"(colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/)(?P<ref>[\w.+-]+)(?=/)")),
    ("binder", re.compile(r"(mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/)(?P<ref>[\w.+-]+)(?=[?\s)\"'\]]|$)")),
    ("install", re.compile(r"(geffect_lite\s*@\s*git\+https://github\.com/[\w.-]+/[\w.-]+?(?:\.git)?@)"
                           r"(?P<ref>[\w.+/-]+?)(?=[\"'\s#\\]|$)")),
]
REF_OK = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._+-]+(?:/[A-Za-z0-9._+-]+)*(?<![./])$")


def files(repo: Path = REPO) -> list:
    out = [repo / "README.md", repo / "book" / "intro.md"]
    out += sorted((repo / "notebooks").glob("*.ipynb")) + sorted((repo / "notebooks" / "student").glob("*.ipynb"))
    out += sorted((repo / "docs").rglob("*.md"))
    return [p for p in out if p.is_file()]


def valid_ref(ref: str) -> bool:
    """A plausible git tag/branch name (no spaces, no '..', not starting with '-', no trailing '/' or '.')."""
    return bool(REF_OK.match(ref)) and not ref.endswith(".lock")


def pin_text(text: str, ref: str) -> tuple:
    """(new text, {pattern name: links changed}) for one file's text."""
    counts = {}
    for name, pat in PATTERNS:
        n = 0

        def sub(m):
            nonlocal n
            if m.group("ref") != ref:
                n += 1
            return m.group(1) + ref
        text = pat.sub(sub, text)
        counts[name] = n
    return text, counts


def refs_in(text: str) -> set:
    return {m.group("ref") for _, pat in PATTERNS for m in pat.finditer(text)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ref", help="git tag or branch, e.g. v0.1.0")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a link points elsewhere")
    ap.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if not valid_ref(a.ref):
        print(f"error: {a.ref!r} is not a valid git tag or branch name (letters, digits, '.', '_', '+', '-', '/'; "
              "no '..', no leading '-')", file=sys.stderr)
        return 2
    paths = files(a.repo)
    if a.check:
        wrong = {str(p.relative_to(a.repo)): sorted(refs_in(p.read_text(encoding="utf-8")) - {a.ref}) for p in paths}
        wrong = {k: v for k, v in wrong.items() if v}
        for k, v in wrong.items():
            print(f"{k}: links to {', '.join(v)}", file=sys.stderr)
        print(f"{len(paths) - len(wrong)} of {len(paths)} files point only at {a.ref}")
        return 1 if wrong else 0
    total = 0
    for p in paths:
        old = p.read_text(encoding="utf-8")
        new, counts = pin_text(old, a.ref)
        if new != old:
            p.write_text(new, encoding="utf-8")
            total += sum(counts.values())
            print(f"{p.relative_to(a.repo)}: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    print(f"{total} link(s) now point at {a.ref} ({len(paths)} files scanned)")
    return 0


__all__ = ["files", "valid_ref", "pin_text", "refs_in", "main"]


if __name__ == "__main__":
    sys.exit(main())
