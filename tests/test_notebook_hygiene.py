"""The committed notebooks teach from real runs: executed with the full protocol (never the CI switch), each with a
record of how; no typed number about a run in their prose; the paper cited by its own numbers; the same claims
vocabulary as the scoreboard."""
import json
import re
from pathlib import Path

import pytest

from geffect_lite.run_store import is_notice

NB = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NB.glob("[0-9][0-9]_*.ipynb"))

# The only numbers a markdown cell may hold besides equation / figure / table / notebook numbers and math: the
# paper's stated settings (β = 0.1, 1, 2; α = 0.5; c = 5; lr 1e-5; ≈ 60 steps; Llama-2-7B with 32 layers and 33
# hidden states; batch 16; EMA 0.6/0.4; layers 11/22/33), the citation (2025, arXiv 2502.19301) and "2 CPU cores".
PAPER_CONSTANTS = {"0.1", "1", "2", "0.5", "5", "1e-5", "10^{-5}", "60", "7", "32", "33", "16", "0.6", "0.4", "11", "22",
                   "2025", "2502.19301", "0", "3", "4"}
STRIP = [r"(?i)notebooks?\s+\d{2}(?:\s*(?:,|and|or|–|-)\s*\d{2})*", r"\[\d{2}\b", r"\b0\d\b", r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`", r"!\[[^\]]*\]\([^)]*\)", r"\]\([^)]*\)", r"<[^>]+>",
         r"https?://\S+", r"\b(?:Eqs?|Figs?|Table|Tables|Definition|notebooks?|Appendix|step|steps)\.?\s*\d+[a-z]?"
         r"(?:\s*[–,-]\s*\d+[a-z]?)*", r"\b\d{2}_[a-z_]+", r"\bLlama-2-7B\b", r"\bSmolLM2-135M\b", r"\bICLR 2025\b"]


def _markdown(nb):
    return [("".join(c["source"]), i) for i, c in enumerate(json.loads(nb.read_text())["cells"])
            if c["cell_type"] == "markdown"]


def typed_numbers(text: str):
    for pat in STRIP:
        text = re.sub(pat, " ", text, flags=re.S)
    return [n for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?", text) if n not in PAPER_CONSTANTS]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_typed_numbers_in_prose(nb):
    bad = [(i, n) for text, i in _markdown(nb) for n in typed_numbers(text)]
    assert not bad, f"{nb.name}: numbers typed in markdown (render them from the run): {bad[:10]}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_cites_the_paper_and_ends_with_the_footer(nb):
    cells = json.loads(nb.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert "2502.19301" in first and "docs/paper.md" in first, "the first cell cites the paper and links our notes"
    last_code = [c for c in cells if c["cell_type"] == "code"][-1]
    assert "gl.teach.footer" in "".join(last_code["source"]), "the last code cell records how it was executed"


def cache_notices(cells):
    """(cell, line) of every notice of the local run cache in the outputs: this machine's paths and its cache's
    history, not the lesson (``notebooks --execute`` deletes the files it would recompute before running)."""
    return [(i, line) for i, c in enumerate(cells) for o in c.get("outputs", [])
            for line in "".join(o.get("text", "")).splitlines() if is_notice(line)]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_no_local_cache_notices_in_committed_outputs(nb):
    bad = cache_notices(json.loads(nb.read_text())["cells"])
    assert not bad, f"{nb.name}: the run cache's notices of the machine that executed it: {bad[:3]}"


def test_the_cache_notice_check_can_fail():
    cell = dict(outputs=[dict(name="stderr", text="run cache: /root/.cache/x.pkl: outdated: …; deleted, recomputing\n")])
    assert cache_notices([dict(outputs=[]), cell]) == [(1, cell["outputs"][0]["text"].strip())]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_outputs_come_from_the_full_protocol(nb):
    meta = json.loads(nb.read_text())["metadata"].get("geffect_lite", {}).get("execution", {})
    assert meta, f"{nb.name} has no execution record: run `make execute-notebooks`"
    assert meta["mode"] == "full", f"{nb.name} was committed from a fast (CI-size) run"
    assert {"seconds", "commit", "date"} <= set(meta)


def test_the_number_filter_catches_typed_numbers():
    assert typed_numbers("GA's forget NLL reached 1.19e7 nats, 150× the paper's rate") == ["1.19e7", "150"]
    assert typed_numbers("Eq. 5 and Fig. 3b at β = 0.1 (notebook 05, $e_u = -0.3$)") == []


def _footer_commits(nb):
    """The commits a committed notebook names: its execution record and its footer's printed line."""
    d = json.loads(nb.read_text())
    out = [d["metadata"].get("geffect_lite", {}).get("execution", {}).get("commit", "")]
    for c in d["cells"]:
        for o in c.get("outputs", []) if c["cell_type"] == "code" else []:
            out += re.findall(r"commit = (\S+?),", o.get("text", "") if isinstance(o.get("text"), str)
                              else "".join(o.get("text", [])))
    return [x for x in out if x]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_footers_name_a_clean_commit_in_the_history(nb):
    import subprocess
    commits = _footer_commits(nb)
    assert commits, f"{nb.name}: no footer commit"
    dirty = [c for c in commits if "+changes" in c or c == "unknown"]
    assert not dirty, f"{nb.name} was executed from a dirty tree ({dirty}): `make execute-notebooks` from a commit"
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=NB, capture_output=True,
                             text=True).stdout.strip()
    if shallow == "false":
        missing = [c for c in set(commits)
                   if subprocess.run(["git", "cat-file", "-e", f"{c}^{{commit}}"], cwd=NB).returncode != 0]
        assert not missing, f"{nb.name} names commits that are not in the history: {missing}"


def _rendered(nb):
    """Every markdown output of the committed notebook, in order (the readings of its runs)."""
    for c in json.loads(nb.read_text())["cells"]:
        for o in c.get("outputs", []) if c["cell_type"] == "code" else []:
            md = o.get("data", {}).get("text/markdown")
            if md:
                yield "".join(md) if isinstance(md, list) else md


AS_IN = re.compile(r"as in (?:the paper's )?Fig(?:ure|s?\.)\s*\d", re.I)
CLAIM_VERDICT = re.compile(r"claim `([a-z0-9_]+)`[^*]{0,40}\*([a-z /]+)\*")


def figure_sentences_against_verdicts(text: str):
    """In a rendered reading, each paragraph or bullet that says "as in Fig. N": the verdicts the reading names in it
    or in its heading (its first paragraph); a problem when none of them is "reproduced"."""
    blocks = [b for b in re.split(r"\n\s*\n|\n(?=- )", text) if b.strip()]
    heading = CLAIM_VERDICT.findall(blocks[0]) if blocks else []
    bad = []
    for b in blocks:
        if AS_IN.search(b):
            named = CLAIM_VERDICT.findall(b) or heading
            if not any(v.strip() == "reproduced" for _, v in named):
                bad.append(b.strip()[:160])
    return bad


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_as_in_a_figure_only_beside_a_reproduced_claim(nb):
    bad = [b for text in _rendered(nb) for b in figure_sentences_against_verdicts(text)]
    assert not bad, f"{nb.name}: 'as in Fig. N' beside a claim that is not reproduced on this run: {bad[:3]}"


def test_the_figure_sentence_check_can_fail():
    ok = "**What this run shows, next to Fig. 3a** (claim `ga_spike`: *reproduced* on this run)\n\n- dips, as in Fig. 3a."
    bad = ok.replace("*reproduced*", "*not reproduced*")
    assert figure_sentences_against_verdicts(ok) == []
    assert len(figure_sentences_against_verdicts(bad)) == 1
    assert figure_sentences_against_verdicts("the weights fall, as in Fig. 4.")      # no claim named at all


MAX_FIGURE_PX = 1280                      # a projector's width: wider figures shrink, and their labels with them


def _png_widths(nb):
    import base64
    import struct
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                raw = base64.b64decode(png if isinstance(png, str) else "".join(png))
                yield i, struct.unpack(">II", raw[16:24])[0]           # the PNG header's IHDR width


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_figures_fit_a_projector(nb):
    wide = [(i, w) for i, w in _png_widths(json.loads(nb.read_text())) if w > MAX_FIGURE_PX]
    assert not wide, f"figures wider than {MAX_FIGURE_PX} px (cell, px): {wide}"


def end_of_run_misreadings(source: str):
    """Lines that call the risk *before* the last step (``risk_u.iloc[-1]``) final / the end of the run / θ_T."""
    return [l.strip() for l in source.splitlines()
            if re.search(r"risk_[ur]\.iloc\[-1\]", l) and re.search(r"final|\bend\b|θ_T", l, re.I) and "real_d" not in l]


def test_the_end_of_a_run_has_one_definition():
    """'Final' risks are at θ_T, after the last step (gl.lessons.at_end), in every notebook and reading."""
    sources = {p.name: "\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                                 if c["cell_type"] == "code") for p in NOTEBOOKS}
    sources.update({p.name: p.read_text() for p in (NB.parent / "geffect_lite" / "lessons").glob("*.py")})
    bad = {name: end_of_run_misreadings(src) for name, src in sources.items() if end_of_run_misreadings(src)}
    assert not bad, f"risks before the last step read as the end of the run: {bad}"
    assert end_of_run_misreadings('x = dict(final_forget_risk=s.risk_u.iloc[-1])')      # the check can fail


def test_at_end_is_the_risk_after_the_last_step():
    import pandas as pd
    from geffect_lite.lessons import at_end
    s = pd.DataFrame(dict(step=[0, 1], risk_u=[1.0, 2.0], risk_r=[0.5, 0.6], real_du=[1.0, 0.5],
                          real_dr=[0.1, 0.2], status=["ok", "ok"]))
    assert at_end(s) == dict(step=2, forget_risk=2.5, retain_risk=0.8)
    with pytest.raises(ValueError, match="real_du was not recorded"):
        at_end(s.assign(real_du=[1.0, float("nan")]))
