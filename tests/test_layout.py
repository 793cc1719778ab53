"""The package reads like the paper: small modules, short functions, no import circles, no pointer to a file that is
not in the repository (in any tracked text file), the paper cited by its own numbers, a small public API with an
``__all__`` in every module, and the library apart from its tooling (``geffect_lite.tooling``): no library module
imports it at load time, and a notebook's set-up imports neither torch nor the paper package."""
import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import geffect_lite as gl

ROOT = Path(gl.__file__).resolve().parent
REPO = ROOT.parent
MODULES = sorted(p for p in ROOT.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_module_too_long():
    long = {str(p.relative_to(REPO)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_no_function_too_long():
    bad = []
    for p in MODULES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    bad.append(f"{p.relative_to(REPO)}:{node.name} ({n} lines)")
    assert not bad, bad


def _imports(p: Path):
    """The package-internal modules imported at the top level of ``p`` (lazy imports inside functions excluded)."""
    mod = ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    pkg = mod if p.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.parse(p.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = pkg
            for _ in range(max(0, node.level - 1)):
                base = base.rsplit(".", 1)[0]
            name = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
            if name.startswith("geffect_lite"):
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("geffect_lite"))
    return mod, out


def test_no_import_circles():
    graph = {}
    names = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for p in MODULES}
    for p in MODULES:
        mod, deps = _imports(p)
        graph[mod] = {d for d in deps if d in names and d != mod and not mod.startswith(d + ".")}
    seen, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append(stack[stack.index(n):] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for m in graph.get(n, ()):
            if not n.startswith(m + ".") and not m.startswith(n + "."):
                visit(m)
        stack.pop()
    for n in graph:
        visit(n)
    assert not cycles, cycles


# notes kept outside the repository (their names are built here so that this file does not match itself), a shared
# folder beside it, and "§ n" section numbers of such notes
OUTSIDE = re.compile("|".join([r"\b(?:objectives|offline)\.md", r"(?:\.\./|\b)" + "shared" + r"/",
                               r"paper\.md\s*§", r"§\s*\d"]))


def tracked_text_files():
    """Every file git tracks in the repository that is text (UTF-8 without NUL bytes)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    out = []
    for name in filter(None, names.split("\0")):
        p = REPO / name
        if not p.is_file():
            continue
        raw = p.read_bytes()
        if b"\0" in raw[:8192]:
            continue
        try:
            out.append((p, raw.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return out


def outside_references(files):
    return [f"{p.relative_to(REPO)}:{i}: {line.strip()[:100]}" for p, text in files
            for i, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]


# a relative Markdown link to a path (a file name with an extension, or a folder path)
LINK = re.compile(r"\]\(((?:[\w.-]+/)*[\w-]+\.[\w]+|(?:[\w.-]+/)+)(?:#[^)\s]*)?\)")
BUILT = {"book": ("generated/",)}      # book/ links into the pages `make site` assembles (git-ignored)


def broken_links(files):
    bad = []
    for p, text in files:
        rel = p.relative_to(REPO)
        if rel.parts[0] == "tests" and p.name != "x.md":      # tests hold deliberately broken links as fixtures
            continue
        for t in LINK.findall(text):
            if not t.startswith(BUILT.get(rel.parts[0], ())) and not (p.parent / t).exists():
                bad.append(f"{rel} → {t}")
    return bad


def test_tracked_files_are_text_and_many():
    files = tracked_text_files()
    names = {str(p.relative_to(REPO)) for p, _ in files}
    assert {"README.md", "Makefile", "requirements.txt", "geffect_lite/cli.py", "docs/paper.md"} <= names
    assert not any(n.endswith(".safetensors") for n in names)             # binaries skipped
    assert sum(n.endswith(".ipynb") for n in names) >= 28                 # the notebooks and their student versions


def test_no_reference_outside_the_repository():
    """No tracked text file points at notes outside the repository or at a shared folder beside it."""
    bad = outside_references(tracked_text_files())
    assert not bad, bad[:20]


def test_relative_links_resolve():
    """Every relative Markdown link in any tracked text file (docs, README, notebooks and their student versions,
    docstrings, the site's pages) resolves; tests/ is skipped (its fixtures are broken on purpose)."""
    bad = broken_links(tracked_text_files())
    assert not bad, bad[:20]


def test_the_reference_checks_can_fail(tmp_path):
    p = tmp_path / "x.md"
    fake = [(REPO / "docs" / "x.md", "see " + "offline" + ".md and ../" + "shared" + "/notes, [a](nope.md), "
             "[b](./paper.md#where), [c](https://example.org), [d](#top)")]
    assert len(outside_references(fake)) == 1
    assert [b.split(" → ")[1] for b in broken_links(fake)] == ["nope.md"]
    assert p.parent.exists()


def module_all(p: Path):
    """(the names of the module-level ``__all__`` of ``p``, or None; the names ``p`` defines at module level)."""
    tree = ast.parse(p.read_text())
    names, defined = None, set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            ids = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}   # a, b = … too
            defined |= ids
            if "__all__" in ids and isinstance(node.value, (ast.List, ast.Tuple)):
                names = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if len(names) != len(node.value.elts):
                    names = None                                    # only string literals count
    return names, defined


def _module_name(p: Path) -> str:
    return ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def test_public_api():
    assert callable(gl.geffect) and not hasattr(gl.geffect, "__path__")     # a function, not also a module
    for name in ("geffect", "run", "load_model", "load_data", "batches", "reference_for", "get_objective",
                 "list_objectives", "register_objective"):
        assert name in gl.__all__ and callable(getattr(gl, name)), name
    lazy = set(gl.__all__) | set(gl._NAMES) | set(gl._MODULES)      # what `gl.<name>` offers (dir() also lists
    assert not {"bench", "notebooks", "cli", "tooling"} & lazy, \
        "the tooling is not part of the top-level API"               # submodules another test happened to import)
    bad = []
    for p in MODULES:
        if p.name == "__main__.py":
            continue
        names, defined = module_all(p)
        if names is None:
            bad.append(f"{p.relative_to(REPO)}: no module-level __all__ list of names")
            continue
        if len(names) != len(set(names)):
            bad.append(f"{p.relative_to(REPO)}: duplicates in __all__")
        missing = [n for n in names if n not in defined]
        if missing and "__getattr__" in defined:                   # a lazy package: names resolved on first use
            mod = importlib.import_module(_module_name(p))
            missing = [n for n in missing if not hasattr(mod, n)]
        if missing:
            bad.append(f"{p.relative_to(REPO)}: __all__ names what it does not define: {missing}")
    assert not bad, bad


def test_public_api_check_can_fail(tmp_path):
    p = tmp_path / "m.py"
    p.write_text('"""doc mentioning __all__"""\nx = 1\n')
    assert module_all(p)[0] is None
    p.write_text('import os as o\nx = 1\ndef f(): pass\n__all__ = ["x", "f", "o", "gone"]\n')
    names, defined = module_all(p)
    assert [n for n in names if n not in defined] == ["gone"]


def test_the_library_does_not_import_its_tooling():
    """No module outside ``geffect_lite.tooling`` imports it at load time (the commands import it when run)."""
    bad = []
    for p in MODULES:
        mod, deps = _imports(p)
        if not mod.startswith("geffect_lite.tooling") and any(d.startswith("geffect_lite.tooling") for d in deps):
            bad.append(mod)
    assert not bad, bad


def test_setup_notebook_imports_neither_torch_nor_the_paper():
    """``gl.setup_notebook()`` is every notebook's first line: it must not pay for torch (seconds) nor load the paper
    package; torch's seed is still set once torch is imported."""
    code = ("import sys, geffect_lite as gl; gl.setup_notebook(seed=7, threads=1); "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('geffect_lite.paper') "
            "or m.startswith('geffect_lite.tooling')]; print(bad); "
            "import torch; print(torch.initial_seed(), torch.get_num_threads())")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    assert lines[0] == "[]", lines[0]
    assert lines[1] == "7 1", lines[1]


def _readme_block(name: str) -> str:
    text = (REPO / "README.md").read_text()
    a, b = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    return text[text.index(a) + len(a):text.index(b)]


def test_readme_claims_table_is_the_committed_one():
    """The README's three-scale table is generated from the committed results (`claims --scales --readme`)."""
    from geffect_lite.paper.render import markdown
    assert _readme_block("claims") == markdown(), "README's claims table is stale: run `python -m geffect_lite claims --scales --readme README.md`"


def test_readme_frontier_table_is_the_committed_one():
    """The README's Table 1 frontier table is generated from the committed frontiers (`claims --scales --readme`),
    and it names every tier: one with a committed frontier by its numbers, one without as not run."""
    from geffect_lite.paper.render import frontier_markdown
    from geffect_lite.paper.scoreboard import TIER_MODELS
    block = _readme_block("frontier")
    assert block == frontier_markdown(), "README's frontier table is stale: run `python -m geffect_lite claims --scales --readme README.md`"
    assert all(f"`{m}`" in block for m in TIER_MODELS)


def test_readme_settings_table_is_the_committed_one():
    """The README's paper-vs-official comparison is generated from the committed scoreboards (`claims --scales
    --readme`): its table, its count of agreeing claims and its sentence on the misses come from the files."""
    from geffect_lite.paper.render import settings_markdown
    assert _readme_block("settings") == settings_markdown(), \
        "README's settings table is stale: run `python -m geffect_lite claims --scales --readme README.md`"
