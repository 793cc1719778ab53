"""The package reads like the paper: small modules, short functions, no import circles, no pointer to a file that is
not in the repository, the paper cited by its own numbers, and a small public API with an ``__all__``."""
import ast
import re
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


NOTES = re.compile(r"objectives\.md|offline\.md|paper\.md\s*§|§\s*\d")   # the private notes, section numbers


def test_no_reference_outside_the_repository():
    bad = []
    files = MODULES + sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "docs").rglob("*.md")) + \
        [REPO / "README.md"]
    for p in files:
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if NOTES.search(line):
                bad.append(f"{p.relative_to(REPO)}:{i}: {line.strip()[:100]}")
    assert not bad, bad[:20]


def test_markdown_links_resolve():
    """Every relative link in docs/ and the README points at a file that is in the repository."""
    bad = []
    for p in sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", p.read_text()):
            if not target.startswith(("http", "mailto:")) and not (p.parent / target).exists():
                bad.append(f"{p.relative_to(REPO)} → {target}")
    assert not bad, bad


def test_public_api():
    assert callable(gl.geffect) and not hasattr(gl.geffect, "__path__")     # a function, not also a module
    for name in ("geffect", "run", "load_model", "load_data", "batches", "reference_for", "get_objective",
                 "list_objectives", "register_objective"):
        assert name in gl.__all__ and callable(getattr(gl, name)), name
    assert len(gl.__all__) == len(set(gl.__all__))
    for p in MODULES:
        if p.name != "__main__.py" and p.read_text().strip():
            assert "__all__" in p.read_text() or p.name == "__init__.py", p


def test_readme_claims_table_is_the_committed_one():
    """The README's three-scale table is generated from the committed results (`claims --scales --readme`)."""
    from geffect_lite.paper.render import markdown
    text = (REPO / "README.md").read_text()
    block = text[text.index("<!-- claims:start -->\n") + len("<!-- claims:start -->\n"):text.index("<!-- claims:end -->")]
    assert block == markdown(), "README's claims table is stale: run `python -m geffect_lite claims --scales --readme README.md`"
