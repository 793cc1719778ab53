#!/usr/bin/env python3
"""The JavaScript the course site and the slides load, installed next to them so that both work with no network.

``book/assets/vendor/`` holds (licences in that folder's README and next to each package):

=========================================  =========  ============  ==========================================
npm package                                version    licence       used for
=========================================  =========  ============  ==========================================
``requirejs``                              2.3.8      MIT           the AMD loader the widget manager needs
``@jupyter-widgets/html-manager``          1.0.7      BSD-3-Clause  static widget views from saved widget state
``mathjax``                                3.2.2      Apache-2.0    equations (CommonHTML output, its web fonts)
``reveal.js``                              4.6.1      MIT           the slides (``make slides``)
=========================================  =========  ============  ==========================================

These are other projects' code, so they are **not committed**: like the Python packages, they are installed from
their registry (npm) when the environment is set up — ``make site``, ``make slides`` and ``make test`` run
``python -m geffect_lite.tooling.vendor_js --ensure``, which does nothing when the files are there and intact, and otherwise fetches
them with ``npm pack`` and verifies every file against the committed ``book/assets/vendor/MANIFEST.json`` (sha256).
``--check`` verifies without network; ``--fetch`` re-creates the folder *and* the manifest, for a maintainer who bumps
a version (edit ``PACKAGES``, fetch, commit the manifest).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "book" / "assets" / "vendor"

# npm spec -> (folder under vendor/, files or folders to keep, relative to the package root)
PACKAGES = {
    "requirejs@2.3.8": ("requirejs", ["require.js", "README.md"]),
    "@jupyter-widgets/html-manager@1.0.7": ("html-manager", [
        "LICENSE", "dist/embed-amd.js", "dist/1551f4f60c37af51121f.woff2", "dist/7a3337626410ca2f4071.woff2",
        "dist/d878b0a6a1144760244f.woff2", "dist/2285773e6b4b172f07d9.woff", "dist/bb58e57c48a3e911f15f.woff",
        "dist/eeccf4f66002c6f2ba24.woff"]),
    "mathjax@3.2.2": ("mathjax", ["LICENSE", "es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2"]),
    "reveal.js@4.6.1": ("revealjs", ["LICENSE", "dist/reveal.css", "dist/reveal.js", "dist/theme/white.css",
                                      "dist/theme/simple.css", "dist/theme/fonts/source-sans-pro",
                                      "dist/theme/fonts/league-gothic", "plugin/notes/notes.js"]),
}
DROP = (".eot", ".ttf")     # old font formats no current browser asks for when a .woff is offered
# Badge images that Colab and Binder serve from the web, and the local copies (book/assets/badges) that the site and
# the slides show instead (the badges' links are kept).
BADGES = {"https://colab.research.google.com/assets/colab-badge.svg": "colab.svg",
          "https://mybinder.org/badge_logo.svg": "binder.svg"}
BADGE_DIR = REPO / "book" / "assets" / "badges"


def local_badges(text: str, prefix: str) -> str:
    """``text`` with the web badge images replaced by ``prefix`` + the local file name."""
    for url, local in BADGES.items():
        text = text.replace(url, prefix + local)
    return text


# The paths the site and the slides use (relative to vendor/): kept in one place for book/_config.yml and slides.py.
REQUIRE_JS = "requirejs/require.js"
EMBED_AMD = "html-manager/dist/embed-amd.js"
MATHJAX = "mathjax/es5/tex-chtml-full.js"
REVEAL = "revealjs"          # not "reveal.js": Sphinx would try to read a folder named *.js as a script


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def files(folder: Path) -> dict:
    """{relative path: sha256} of every vendored file (the folder's own README.md and MANIFEST.json excepted)."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not (p.parent == folder and p.name in ("MANIFEST.json", "README.md"))}


def check(folder: Path = VENDOR) -> list:
    """Problems with the vendored files (missing, changed or unlisted); [] when all is well."""
    man_path = folder / "MANIFEST.json"
    if not man_path.exists():
        return [f"{man_path} is missing: run `python -m geffect_lite.tooling.vendor_js --fetch`"]
    manifest = json.loads(man_path.read_text())["files"]
    have = files(folder)
    out = [f"missing: {k}" for k in manifest if k not in have]
    out += [f"changed: {k}" for k in manifest if k in have and have[k] != manifest[k]]
    out += [f"not in MANIFEST.json: {k}" for k in have if k not in manifest]
    return out


def ensure(folder: Path = VENDOR) -> list:
    """Install the vendored files if they are missing or changed, verified against the committed manifest."""
    if not check(folder):
        return []
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    readme = (folder / "README.md").read_text() if (folder / "README.md").exists() else None
    fetch(folder, keep_manifest=manifest)
    if readme is not None:
        (folder / "README.md").write_text(readme)
    return check(folder)


def fetch(folder: Path = VENDOR, keep_manifest: dict = None) -> None:
    """npm pack each package and keep the listed files (needs the npm client and the npm registry); the manifest
    is rewritten unless ``keep_manifest`` is given (then the files must match it)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        new = tmp / "vendor"
        for spec, (dest, keep) in PACKAGES.items():
            out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1]
            unpack = tmp / dest
            with tarfile.open(tmp / out) as t:
                t.extractall(unpack, filter="data")
            for k in keep:
                src, dst = unpack / "package" / k, new / dest / k
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if n.endswith(DROP)])
                else:
                    shutil.copy2(src, dst)
        readme = folder / "README.md"
        if readme.exists():
            shutil.copy2(readme, new / "README.md")
        manifest = keep_manifest or {"packages": {s: d for s, (d, _) in PACKAGES.items()}, "files": files(new)}
        (new / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(new, folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true", help="verify the vendored files against MANIFEST.json")
    g.add_argument("--fetch", action="store_true", help="re-create book/assets/vendor and its manifest (npm pack)")
    g.add_argument("--ensure", action="store_true", help="install from npm if missing, verified by the manifest")
    a = ap.parse_args(argv)
    if a.fetch:
        fetch()
    if a.ensure:
        ensure()
    problems = check()
    for p in problems:
        print(f"vendored JavaScript: {p}", file=sys.stderr)
    if not problems:
        print(f"vendored JavaScript OK: {len(json.loads((VENDOR / 'MANIFEST.json').read_text())['files'])} files")
    return 1 if problems else 0


__all__ = ["local_badges", "sha256", "files", "check", "ensure", "fetch", "main"]


if __name__ == "__main__":
    sys.exit(main())
