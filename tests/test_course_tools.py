"""The course tools in geffect_lite/tooling/: each one on temporary copies (nothing in the repository is modified).

pin_badges (badges + install cell to a tag), student (solutions out, checkers kept, the result runs), tag_slides
(the slide rule), notebook_timings (the recorded-seconds reader), objective_table (from the registry), vendor_js
(the vendored JavaScript is intact), site (prepare + the offline check), slides (an offline deck), and `make lab`
(JupyterLab answers and serves notebooks/).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from geffect_lite.tooling import notebook_timings, objective_table, pin_badges, student, tag_slides, vendor_js
from geffect_lite.tooling import site as site_tool

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def nb_json(cells, **meta):
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}, **meta},
            "nbformat": 4, "nbformat_minor": 5}


def md(src, **kw):
    return {"cell_type": "markdown", "id": kw.pop("id", f"m{abs(hash(src)) % 10**8}"), "metadata": kw, "source": src}


def code(src, outputs=(), **kw):
    return {"cell_type": "code", "id": kw.pop("id", f"c{abs(hash(src)) % 10**8}"), "metadata": kw, "source": src,
            "outputs": list(outputs), "execution_count": None}


def run_notebook(nb: dict, cwd: Path) -> dict:
    import nbformat
    from nbclient import NotebookClient
    node = nbformat.reads(json.dumps(nb), as_version=4)
    NotebookClient(node, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return node


def stdout_of(node) -> str:
    return "".join(o.get("text", "") for c in node.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("output_type") == "stream")


# ----------------------------------------------------------------------------------------------------------------
# pin_badges
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def repo_copy(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy2(REPO / "README.md", tmp_path / "README.md")
    for p in NOTEBOOKS:
        shutil.copy2(p, tmp_path / "notebooks" / p.name)
    return tmp_path


def test_pin_badges_moves_every_link_and_install_cell(repo_copy, capsys):
    before = {p: p.read_text() for p in [repo_copy / "README.md", *sorted((repo_copy / "notebooks").glob("*.ipynb"))]}
    refs_before = set().union(*(pin_badges.refs_in(t) for t in before.values()))
    assert refs_before, "no Colab/Binder/install link found: the patterns no longer match the notebooks"
    assert pin_badges.main(["v9.8.7", "--repo", str(repo_copy)]) == 0
    for p, old in before.items():
        new = p.read_text()
        assert pin_badges.refs_in(new) <= {"v9.8.7"}, (p.name, pin_badges.refs_in(new))
        if p.suffix == ".ipynb":
            json.loads(new)                                   # still a valid notebook
        changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines()) if a != b]
        assert len(old.splitlines()) == len(new.splitlines())
        assert all(("colab" in a or "mybinder" in a or "git+https" in a) for a, _ in changed), changed[:2]
    nb = json.loads((repo_copy / "notebooks" / NOTEBOOKS[0].name).read_text())
    setup = "".join(next(c["source"] for c in nb["cells"] if "%pip" in "".join(c["source"])))
    assert "geffect_lite@v9.8.7" in setup.replace(" ", "")
    assert pin_badges.main(["--check", "v9.8.7", "--repo", str(repo_copy)]) == 0
    assert pin_badges.main(["--check", "main", "--repo", str(repo_copy)]) == 1
    assert pin_badges.main(["main", "--repo", str(repo_copy)]) == 0      # and back
    if refs_before == {"main"}:
        assert {p: p.read_text() for p in before} == before             # byte for byte


@pytest.mark.parametrize("bad", ["", "-v1", "v1..2", "has space", "v1/", "a\\b"])
def test_pin_badges_rejects_a_bad_ref(bad, repo_copy, capsys):
    assert pin_badges.main(["--repo", str(repo_copy), "--", bad]) == 2
    assert "not a valid git tag" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# student
# ----------------------------------------------------------------------------------------------------------------
CHECKER = '''def check_square(fn):
    expected = 49
    try:
        got = fn(7)
    except NotImplementedError:
        print(f"not attempted yet (expected square(7) = {expected})")
        return
    assert got == expected, f"expected {expected}, got {got}"
    print("OK", got)

check_square(square)'''


def exercise_notebook():
    return nb_json([
        md("[![Colab](https://colab.research.google.com/github/o/r/blob/main/notebooks/ex.ipynb)](x)\n# Exercises"),
        md("## Exercise 1\nWrite `square`.", tags=["exercise"]),
        code('def square(x):\n    """x squared."""\n    # your code here\n    return x * x   # SECRET-1\n',
             tags=["solution"]),
        code(CHECKER, outputs=[{"output_type": "stream", "name": "stdout", "text": "OK 49\n"}], tags=["checker"]),
        md("## Exercise 2\nHalve."),
        code("def half(x):\n    # BEGIN SOLUTION\n    y = x / 2   # SECRET-2\n    return y\n    # END SOLUTION\n\n"
             "try:\n    print('half', half(8))\nexcept NotImplementedError:\n"
             "    print('not attempted yet (expected 4.0)')\n",
             tags=["solution"]),
        md("Next: [the next notebook](other.ipynb)."),
    ])


def test_student_version_removes_solutions_and_still_runs(tmp_path):
    src, out = tmp_path / "nb", tmp_path / "nb" / "student"
    src.mkdir()
    (src / "ex.ipynb").write_text(json.dumps(exercise_notebook()))
    (src / "other.ipynb").write_text(json.dumps(nb_json([md("# Other")])))       # no solutions: no student version
    assert student.main(["--src", str(src), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.ipynb")) == ["ex.ipynb"]
    text = (out / "ex.ipynb").read_text()
    nb = json.loads(text)
    assert "SECRET-1" not in text and "SECRET-2" not in text and "BEGIN SOLUTION" not in text
    assert text.count("NotImplementedError(") >= 2
    src_cells = ["".join(c["source"]) for c in nb["cells"]]
    assert "x squared." in src_cells[3] and "# your code here" in src_cells[3]    # signature, docstring, comment kept
    assert nb["cells"][1]["metadata"]["tags"] == ["student-header"]                 # after the title cell
    assert "blob/main/notebooks/student/ex.ipynb" in src_cells[0]                  # badge re-pointed
    assert "(../other.ipynb)" in src_cells[-1]                                      # no student version: ../
    assert all(c.get("outputs") == [] for c in nb["cells"] if set(c["metadata"].get("tags", [])) & {"checker"})
    # the original passes its checker, the student version runs to the end and says what is expected
    assert "OK 49" in stdout_of(run_notebook(exercise_notebook(), tmp_path))
    out_text = stdout_of(run_notebook(nb, out))
    assert "not attempted yet (expected square(7) = 49)" in out_text and "not attempted yet (expected 4.0)" in out_text
    assert student.main(["--check", "--src", str(src), "--out", str(out)]) == 0
    (src / "ex.ipynb").write_text(json.dumps(exercise_notebook()).replace("Write `square`", "Write square"))
    assert student.main(["--check", "--src", str(src), "--out", str(out)]) == 1    # stale after an edit


@pytest.mark.parametrize("cells, message", [
    ([code("def f():\n    return 1\nprint(f())", tags=["solution"])], "also runs code"),
    ([code("x = compute()", tags=["solution"])], "defines no function"),
    ([code("def f():\n    return 1", tags=["solution"]), code("print(f())", tags=["checker"])], "NotImplementedError"),
    ([code("def f():\n    # BEGIN SOLUTION\n    return 1\n", tags=["solution"])], "without '# END SOLUTION'"),
    ([md("## x", tags=["solution"])], "only code cells"),
])
def test_student_refuses_unclear_tagging(cells, message, tmp_path):
    (tmp_path / "bad.ipynb").write_text(json.dumps(nb_json(cells)))
    with pytest.raises(student.StudentError, match=message):
        student.build(tmp_path, tmp_path / "student")


def test_committed_student_versions_are_up_to_date():
    """notebooks/student/ is what `make student` writes from the current notebooks (run it after tagging)."""
    assert student.stale(REPO / "notebooks", REPO / "notebooks" / "student") == []


# ----------------------------------------------------------------------------------------------------------------
# tag_slides
# ----------------------------------------------------------------------------------------------------------------
def test_tag_slides_rule():
    img = [{"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}]
    txt = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    nb = nb_json([
        md("[![a](b)](c)\n# Title"), code("# Setup (no need to read)\nimport os", outputs=txt),
        md("## Section"), md("Some prose."), md("### Detail"), code("plot()", outputs=img),
        code("print(1)", outputs=txt), code("x = 1"), code("def f(): ...", outputs=txt, tags=["solution"]),
        md("## Kept", slideshow={"slide_type": "notes"}),
    ])
    n = tag_slides.tag(nb)
    got = [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]]
    assert got == ["slide", "skip", "slide", "-", "subslide", "fragment", "-", "skip", "skip", "notes"]
    assert sum(n.values()) == 9                                   # the tagged cell was left alone
    tag_slides.tag(nb, force=True)
    assert nb["cells"][-1]["metadata"]["slideshow"]["slide_type"] == "slide"


def test_tag_slides_cli_writes_copies(tmp_path):
    p = NOTEBOOKS[0]
    before = p.read_text()
    assert tag_slides.main([str(p), "--out", str(tmp_path)]) == 0
    assert p.read_text() == before
    nb = json.loads((tmp_path / p.name).read_text())
    assert tag_slides.has_slide_metadata(nb)
    assert nb["cells"][0]["metadata"]["slideshow"]["slide_type"] == "slide"
    assert tag_slides.main([str(tmp_path / "missing.ipynb")]) == 2


# ----------------------------------------------------------------------------------------------------------------
# notebook_timings
# ----------------------------------------------------------------------------------------------------------------
def test_timings_reader_sources_and_preference():
    meta = nb_json([code("1")], geffect_lite={"execution": [{"seconds": 12.5, "mode": "fast", "model": "tiny"},
                                                            {"wall_s": 61, "fast": False, "commit": "abc1234"}]})
    recs = notebook_timings.recorded(meta)
    assert [(r["seconds"], r["mode"]) for r in recs] == [(12.5, "fast"), (61.0, "full")]
    last = nb_json([md("# T"), code("1", geffect_lite={"execution": {"elapsed_s": 3, "mode": "fast"}})])
    assert notebook_timings.recorded(last)[0]["source"] == "last cell metadata"
    stamps = nb_json([code("1", execution={"iopub.execute_input": "2026-01-01T00:00:00.000Z",
                                           "shell.execute_reply": "2026-01-01T00:00:02.500Z"}),
                      code("2", execution={"iopub.execute_input": "2026-01-01T00:00:03Z",
                                           "shell.execute_reply": "2026-01-01T00:00:04Z"})])
    assert notebook_timings.recorded(stamps)[0]["seconds"] == pytest.approx(3.5)
    junk = nb_json([code("1")], geffect_lite={"execution": {"seconds": "fast"}})
    assert notebook_timings.recorded(junk) == []
    assert notebook_timings.recorded(nb_json([code("1")], geffect_lite="x")) == []


def test_timings_table_prefers_full_runs_and_renders(tmp_path):
    p = tmp_path / "03_x.ipynb"
    p.write_text(json.dumps(nb_json([md("# Three"), code("1")], geffect_lite={"execution": [
        {"seconds": 10, "mode": "fast"}, {"seconds": 125, "mode": "full", "model": "tiny"}]})))
    q = tmp_path / "04_y.ipynb"
    q.write_text(json.dumps(nb_json([md("# Four")])))
    rows = notebook_timings.table([p, q])
    assert rows[0]["seconds"] == 125 and rows[0]["mode"] == "full" and rows[0]["title"] == "Three"
    assert rows[1]["seconds"] is None
    text = notebook_timings.markdown(rows)
    assert "| 03_x.ipynb | 2.1 min | full |" in text and "| 04_y.ipynb | — |" in text and "**all**" in text


def test_timings_measure_fallback(tmp_path):
    p = tmp_path / "n.ipynb"
    p.write_text(json.dumps(nb_json([code("import os\nassert os.environ['GEFFECT_FAST'] == '1'")])))
    env_before = dict(os.environ)
    rows = notebook_timings.table([p], measure_missing=True)
    assert rows[0]["mode"] == "fast" and 0 < rows[0]["seconds"] < 120
    assert dict(os.environ) == env_before                      # the variables it set are restored


def test_timings_cover_the_series():
    rows = notebook_timings.table(NOTEBOOKS)
    assert len(rows) == len(NOTEBOOKS) and all(r["seconds"] for r in rows), [r for r in rows if not r["seconds"]]


# ----------------------------------------------------------------------------------------------------------------
# objective_table
# ----------------------------------------------------------------------------------------------------------------
def test_objective_table_tolerates_missing_and_extra_columns():
    import pandas as pd
    df = pd.DataFrame([dict(name="ga", equation="L = a|b", needs_ref=False, hparams={}, mystery=3),
                       dict(name="npo", equation="L = c", needs_ref=True, hparams={"beta": 1.0}, mystery=None)])
    text = objective_table.render(df)
    head = text.splitlines()[0]
    assert head == "| objective | equation | needs θ_ref | defaults | mystery |"
    assert "`L = a\\|b`" in text and "| npo | `L = c` | yes | beta=1.0 | — |" in text


def test_objective_table_from_the_registry():
    """One row per registry entry, each objective's row linking the notebook that teaches it (the registry's own
    ``notebook``), the regularisers under their own names (disjoint from the objectives')."""
    df = objective_table.registry()
    files = [p.name for p in NOTEBOOKS]
    text = objective_table.page(df, notebook_dir=REPO / "notebooks", link_prefix="notebooks/")
    rows = {ln.split(" | ")[0][2:]: ln for ln in text.splitlines()
            if ln.startswith("| ") and not ln.startswith("| objective")}
    assert len(rows) == len(df) and set(rows) == set(df["name"])
    objectives = df[df.kind == "objective"]
    assert len(objectives) >= 14
    for r in objectives.itertuples():
        f = next(f for f in files if f.startswith(f"{r.notebook}_"))       # the registry names a real notebook
        assert f"[{r.notebook}](notebooks/{f})" in rows[r.name], rows[r.name]
    regs = {n.split("+", 1)[1] for n in df[df.kind == "regulariser"].name}
    assert regs == {"retain_nll", "retain_kl", "rr"} and not regs & set(objectives.name)


# ----------------------------------------------------------------------------------------------------------------
# vendor_js, site, slides
# ----------------------------------------------------------------------------------------------------------------
def test_vendored_javascript_is_intact(tmp_path):
    assert vendor_js.check() == []
    copy = tmp_path / "vendor"
    shutil.copytree(vendor_js.VENDOR, copy)
    (copy / vendor_js.REQUIRE_JS).write_text("tampered")
    (copy / "extra.js").write_text("x")
    problems = vendor_js.check(copy)
    assert f"changed: {vendor_js.REQUIRE_JS}" in problems and "not in MANIFEST.json: extra.js" in problems


def test_site_prepare(tmp_path):
    gen = tmp_path / "generated"
    notes = site_tool.prepare(REPO, gen)
    assert sorted(p.name for p in (gen / "notebooks").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for rel in site_tool.PAGES:
        assert (gen / rel).exists()
    nb_text = "".join(p.read_text() for p in (gen / "notebooks").glob("*.ipynb"))
    assert "colab-badge.svg" not in nb_text and "mybinder.org/badge_logo.svg" not in nb_text
    path_md = (gen / "docs/course/path.md").read_text()
    repo_path_md = REPO / "docs/course/path.md"
    if repo_path_md.exists() and site_tool.TIMING_MARKER in repo_path_md.read_text():
        assert site_tool.TIMING_MARKER not in path_md and "| notebook | run time |" in path_md
    assert "<!-- run:" not in path_md                              # every per-step run time was filled in
    assert (gen / "objective_table.md").read_text().startswith("# Every objective")
    assert all(isinstance(n, str) for n in notes)


def test_site_check_finds_cdn_and_missing_files(tmp_path):
    (tmp_path / "index.html").write_text('<html><script src="https://cdn.example.org/x.js"></script>'
                                         '<img src="_images/missing.png"><a href="ok.html">ok</a></html>')
    (tmp_path / "ok.html").write_text("<html></html>")
    problems = site_tool.check(tmp_path)
    assert any("loads from the network" in p for p in problems)
    assert any("missing.png" in p for p in problems)
    assert not any("ok.html" in p for p in problems)


def test_slides_are_offline(tmp_path):
    from geffect_lite.tooling import slides
    p = tmp_path / "03_demo.ipynb"
    p.write_text(json.dumps(nb_json([md("# Demo\n$e=mc^2$"), md("## Two"), code("1", outputs=[
        {"output_type": "execute_result", "data": {"text/plain": "1"}, "metadata": {}, "execution_count": 1}])])))
    rows = slides.build([p], tmp_path / "out")
    html = (tmp_path / "out" / "03_demo.slides.html").read_text()
    assert rows[0]["slides"] == 2 and rows[0]["auto_tagged"]
    import re
    remote = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["']https?://[^"']+""", html)
    assert not remote, remote
    assert 'vendor/revealjs/dist/reveal.js' in html and (tmp_path / "out" / "vendor" / "revealjs").is_dir()
    assert (tmp_path / "out" / "index.html").exists()


# ----------------------------------------------------------------------------------------------------------------
# make lab
# ----------------------------------------------------------------------------------------------------------------
def test_make_lab_serves_the_notebooks():
    pytest.importorskip("jupyterlab")
    if shutil.which("make") is None:
        pytest.skip("no make")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = (f"--no-browser --allow-root --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
            "--ServerApp.port_retries=0 --IdentityProvider.token= --ServerApp.password=")
    proc = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "lab", f"LAB_ARGS={args}"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        listing, t0 = None, time.time()
        while time.time() - t0 < 90 and proc.poll() is None:
            try:
                listing = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=2))
                kernels = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs", timeout=2))
                break
            except OSError:
                time.sleep(0.5)
        if listing is None:
            proc.terminate() if proc.poll() is None else None
            out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
            raise AssertionError(f"`make lab` did not serve the notebooks within 90 s: {out[-2000:]}")
        names = {c["name"] for c in listing["content"]}
        assert {p.name for p in NOTEBOOKS} <= names
        spec = kernels["kernelspecs"][kernels["default"]]["spec"]
        assert spec["language"] == "python"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except ProcessLookupError:           # it had already stopped (the assertion above says why)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
