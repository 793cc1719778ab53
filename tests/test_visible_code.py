"""The lesson in front, the machinery behind: the share of visible code that builds prose or tidies plots."""
import json

import nbformat
import pytest

from geffect_lite.tooling import visible_code as V


def _cell(src, tags=()):
    return dict(cell_type="code", source=src, metadata={"tags": list(tags)}, outputs=[], execution_count=None)


def test_statements_are_classified():
    assert V.cell_lines("x = torch.ones(3)\ny = x @ x\n") == (2, 0)
    assert V.cell_lines("say('risk {r}',\n    r=risk)\nz = 1\n") == (3, 2)
    assert V.cell_lines("gl.lessons.ga.spike(run)\n") == (1, 1)
    assert V.cell_lines("ax.plot(x, y)\nax.set(xlabel='step',\n       ylabel='G-effect')\n") == (3, 2)
    # a def counts whole when its body renders prose
    assert V.cell_lines("def show(r):\n    a = 1\n    say('x {a}', a=a)\n\nv = 2\n") == (4, 3)
    # comments and blank lines are not code; magics do not break the parse
    assert V.cell_lines("# a comment\n\n%matplotlib inline\nq = 3\n") == (2, 0)


def test_which_cells_hide():
    assert V.should_hide(_cell("say('a')\nsay('b')\nsay('c')\nx = 1\n"))
    assert not V.should_hide(_cell("say('a')\nsay('b')\n"))                 # under MIN_HIDDEN lines: left alone
    assert not V.should_hide(_cell("x = 1\ny = 2\nz = 3\nw = 4\nsay('a',\n    b=1,\n    c=2)\n"))
    assert not V.should_hide(_cell("say('a')\n", tags=["checker"]))   # exercises stay visible
    assert not V.should_hide(dict(cell_type="markdown", source="say('a')", metadata={}))


def test_hide_marks_both_front_ends(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("say('a {b}',\n    b=1)\nsay('c')"), nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, tmp_path / "00_x.ipynb")
    assert V.hide(tmp_path) == 1 and V.hide(tmp_path) == 0
    cells = json.loads((tmp_path / "00_x.ipynb").read_text())["cells"]
    assert cells[0]["metadata"]["jupyter"]["source_hidden"] and "hide-input" in cells[0]["metadata"]["tags"]
    assert not V.is_hidden(cells[1])
    table = V.measure(tmp_path)
    assert table.visible_lines.sum() == 1 and table.hidden_lines.sum() == 3 and V.series_share(table) == 0


def test_a_lesson_cell_loses_its_closing_prose(tmp_path):
    src = "x = torch.ones(3)\ny = x @ x\nsay('y = {y}',\n    y=y)\nsay('done')\n"
    assert V.split_point(src) == 3
    assert V.split_point("say('a')\nsay('b')\nsay('c')\n") == 0          # all machinery: hidden whole, not split
    assert V.split_point("x = 1\nsay('a')\n") == 0                       # a short tail stays where it is
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"slideshow": {"slide_type": "fragment"}})]
    nbformat.write(nb, tmp_path / "00_x.ipynb")
    assert V.hide(tmp_path) == 2                                          # one split, one hidden
    a, b = nbformat.read(tmp_path / "00_x.ipynb", as_version=4).cells
    assert a.source == "x = torch.ones(3)\ny = x @ x" and not V.is_hidden(a)
    assert b.source.startswith("say('y") and V.is_hidden(b) and b.metadata["slideshow"]["slide_type"] == "-"


def test_committed_notebooks_split_and_hide_what_the_rule_picks(tmp_path):
    for path in sorted(V.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        (tmp_path / path.name).write_text(path.read_text())
    assert V.hide(tmp_path) == 0, "some cells are machinery with their input showing " \
                                  "(python -m geffect_lite.tooling.visible_code --hide, then make execute-notebooks)"


def test_visible_machinery_share_is_under_a_quarter():
    table = V.measure()
    share = V.series_share(table)
    assert share < V.TARGET, f"{share:.1%} of the visible code builds prose or tidies plots:\n{table}"
