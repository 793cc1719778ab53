"""The scoreboard over replications × rates (paper/scoreboard.py, scoreboard_io.py, render.py, diagnoses.py):
the grid is validated, the aggregation is verdicts.py's, counts are of the paper's claims, files committed before
replications are shown as they were judged (and say so), committed files name the rules' commit, and a diagnosis
flip needs ≥ 80 % of the replications and no not-testable run."""
import re

import pandas as pd
import pytest

from geffect_lite.models import TINY_DIR
from geffect_lite.paper import diagnoses, render, scoreboard_io
from geffect_lite.paper.scoreboard import aggregate, counts, grid, sensitivity


def test_grid_is_every_replication_at_every_rate_and_checked():
    assert grid((0, 1), (0.5, 1, 2)) == [(0, 0.5), (0, 1.0), (0, 2.0), (1, 0.5), (1, 1.0), (1, 2.0)]
    for reps, scales, bad in (((0, 0), (1,), "repeated"), ((-1,), (1,), "ints ≥ 0"), ((), (1,), "ints ≥ 0"),
                              ((0,), (0,), "> 0"), ((0,), (1, 1.0), "repeated"), ((True,), (1,), "ints ≥ 0")):
        with pytest.raises(ValueError, match=bad):
            grid(reps, scales)
    # a model too slow for the whole grid: every replication at ×1, the other rates at some replications only
    assert grid((0, 1, 2), (0.5, 1, 2), rates_at=(0,)) == [(0, 0.5), (0, 1.0), (0, 2.0), (1, 1.0), (2, 1.0)]
    for reps, scales, at in (((0, 1), (0.5, 2), (0,)), ((0, 1), (0.5, 1), (3,)), ((0, 1), (0.5, 1), ())):
        with pytest.raises(ValueError, match="rates_at"):
            grid(reps, scales, rates_at=at)


def test_legacy_files_render_as_committed_and_say_so():
    """Today's committed scoreboards (seeds, old verdicts) still render, with the verdicts stored in them, each marked
    as judged by the previous rule."""
    for m in ("tiny", "deep", "smollm2-tofu"):
        long = scoreboard_io.committed(m)
        if long is None or not long.attrs["legacy"]:
            continue
        stored = {a["claim"]: a["summary"] for a in long.attrs["aggregate"]}
        t = scoreboard_io.three_scales().set_index("claim")
        assert all(t.loc[c, m] == s + scoreboard_io.PREVIOUS for c, s in stored.items() if c in t.index)
        assert scoreboard_io.LEGACY_NOTE in render.runs_line(m)
    md = render.markdown()
    assert md.count("| `") == len(scoreboard_io.three_scales())          # every claim once, in its group's table
    assert "**The paper's claims**" in md and "**Implementation checks" in md and "Counts: `tiny`:" in md


def test_a_tier_without_committed_runs_reads_not_run(monkeypatch):
    real = scoreboard_io.results.load
    monkeypatch.setattr(scoreboard_io.results, "load", lambda n: None if n == "scoreboard-deep" else real(n))
    t = scoreboard_io.three_scales()
    assert set(t["deep"]) == {"not run"} and (t.loc[t.claim == "table1_tradeoff", "deep"] == "not run").all()


def test_counts_are_of_the_paper_claims_unless_asked():
    agg = pd.DataFrame(dict(claim=["ga_identity", "ga_spike", "x"], verdict=["reproduced", "fragile", "not run"],
                            group=["check", "claim", "extension"]))
    assert counts(agg) == {"reproduced": 0, "not reproduced": 0, "fragile": 1}
    assert counts(agg, group=None)["reproduced"] == 1 and counts(agg, group="extension")["not run"] == 1
    with pytest.raises(ValueError, match="valid: check, claim, extension"):
        counts(agg, group="claims")


def test_rules_commit_names_the_last_commit_of_the_rules():
    sha = scoreboard_io.rules_commit()
    assert sha == "unknown" or re.fullmatch(r"[0-9a-f]{40}(\+changes)?", sha)


def test_a_flip_needs_most_replications_and_no_untestable_run():
    R, N, T = "reproduced", "not reproduced", "not testable"
    assert diagnoses.flips([N], [R]) and not diagnoses.flips([R], [R]) and not diagnoses.flips([N], [N])
    assert diagnoses.flips([N] * 5, [R, R, R, R, N]) and not diagnoses.flips([N] * 5, [R, R, R, N, N])
    assert not diagnoses.flips([N, T], [R, R]) and not diagnoses.flips([N, N], [R, T])
    with pytest.raises(ValueError, match="paired"):
        diagnoses.flips([N], [])
    assert "two factors" in diagnoses.FACTORS["optimizer"][1]


@pytest.mark.skipif(not (TINY_DIR / "model.safetensors").exists(), reason="tiny model not built")
def test_sensitivity_end_to_end_on_a_fast_grid():
    """2 replications × 3 rates of two cheap checks on fast tiny: rows per run, replication ≠ seed-only, and the
    aggregate equals verdicts.py applied by hand; replication 1 forgets other rows (other numbers)."""
    from geffect_lite.paper import verdicts
    long = sensitivity("tiny", replications=(0, 1), lr_scales=(0.5, 1, 2), fast=True,
                       claims=["ga_identity", "npo_at_theta_o"])
    assert len(long) == 12 and set(zip(long.replication, long.lr_scale)) == set(grid((0, 1), (0.5, 1, 2)))
    assert (long.seed == long.replication).all() and set(long.group) == {"check"}
    agg = aggregate(long).set_index("claim")
    for cid, g in long.groupby("claim"):
        v, s = verdicts.replicated(g[["claim", "replication", "lr_scale", "verdict"]])
        assert agg.loc[cid, "verdict"] == v and agg.loc[cid, "per_rate"] == s
    e0 = [d["e_u(θ_o)"] for d, r in zip(long["values"], long.replication) if r == 0 and "e_u(θ_o)" in d]
    e1 = [d["e_u(θ_o)"] for d, r in zip(long["values"], long.replication) if r == 1 and "e_u(θ_o)" in d]
    assert len(set(e0)) == 1 and set(e0) != set(e1)        # the forget set changed with the replication
    assert long.attrs["config"]["replications"] == [0, 1]


@pytest.mark.skipif(not (TINY_DIR / "model.safetensors").exists(), reason="tiny model not built")
def test_table1_of_a_replication_is_computed_on_its_authors(monkeypatch):
    """At replication r > 0 the end-metric rules read a Table 1 made on the replication's authors (changes carry
    the replication); at replication 0 nothing is precomputed (the rules compute it as before)."""
    from geffect_lite.paper import runs as runs_mod, table
    seen = []
    monkeypatch.setattr(table, "tables", lambda *a, **kw: seen.append((a, kw)) or "T")
    r = runs_mod.Runs("tiny", fast=True, replication=3, lr_scale=2.0)
    assert r.table == "T" and seen[0][1]["changes"] == {"replication": 3} and seen[0][1]["seeds"] == (3,)
    assert seen[0][1]["lr_scale"] == 2.0 and runs_mod.Runs("tiny", fast=True).table is None


def test_save_names_the_rules_commit(monkeypatch, tmp_path):
    """save() writes the runs, the aggregate, the intervals and provenance.rules_commit (into a temporary folder)."""
    import json
    from geffect_lite.tooling import results as tres
    monkeypatch.setattr(tres, "path", lambda name: tmp_path / f"{name}.json")
    monkeypatch.setattr(tres, "machine", lambda: "test")
    rows = [dict(claim="ga_spike", paper="p", kind="k", group="claim", verdict=v, numbers="", reason="",
                 replication=r, seed=r, lr_scale=k, values={"x": float(r)})
            for k in (0.5, 1.0, 2.0) for r, v in enumerate(["reproduced", "not reproduced"])]
    scoreboard_io.save("fake", pd.DataFrame(rows), "cmd", 1.0)
    d = json.loads((tmp_path / "scoreboard-fake.json").read_text())
    assert d["provenance"]["rules_commit"] == scoreboard_io.rules_commit() and d["provenance"]["command"] == "cmd"
    assert d["aggregate"][0]["verdict"] == "fragile" and {i["lr_scale"] for i in d["intervals"]} == {0.5, 1.0, 2.0}
    scoreboard_io.save("fake", pd.DataFrame(rows).assign(verdict="not reproduced"), "cmd2", 1.0, setting="official")
    assert (tmp_path / "scoreboard-fake-official.json").exists()          # another setting never overwrites the tier's
    assert json.loads((tmp_path / "scoreboard-fake.json").read_text())["provenance"]["command"] == "cmd"


def test_settings_table_reads_both_committed_settings():
    """claim | paper setting | official setting on the official file's replications at ×1, each cell 'verdict (k of n)'
    recomputed by verdicts.py from the committed rows; None for a tier without an official file."""
    import re
    t = scoreboard_io.settings_table("tiny")
    if t is None:
        pytest.skip("no official-setting scoreboard committed for tiny")
    assert len(t) == len([c for c in scoreboard_io.CLAIMS if c.group == "claim"])
    for cell in list(t["paper setting"]) + list(t["official setting"]):
        assert re.fullmatch(r"(reproduced|not reproduced|fragile|not testable) \(\d+ of \d+\)", cell), cell
    for col in ("paper setting", "official setting"):           # the bare verdicts beside the text, same rows
        assert [f"{v} (" for v in t.attrs["verdicts"][col]] == [cell[:len(v) + 2] for v, cell in
                                                                 zip(t.attrs["verdicts"][col], t[col])]
    assert scoreboard_io.settings_table("deep") is None                  # deep has no official file


def test_rate_spread_counts_how_far_a_claim_moves_between_rates():
    """aggregate's rate_spread is the largest minus the smallest held share over the rates, and rate_note names
    the claims whose share moves by half or more."""
    from geffect_lite.lessons import rate_note
    rows = [dict(claim=c, paper="p", kind="k", group="claim", verdict=v, numbers="", reason="", replication=r, seed=r,
                 lr_scale=k, values={})
            for c, by_rate in (("moves", {0.5: "reproduced", 1.0: "not reproduced", 2.0: "not reproduced"}),
                               ("steady", {0.5: "reproduced", 1.0: "reproduced", 2.0: "reproduced"}))
            for k, v in by_rate.items() for r in (0, 1)]
    agg = aggregate(pd.DataFrame(rows)).set_index("claim")
    assert agg.loc["moves", "rate_spread"] == 1.0 and agg.loc["steady", "rate_spread"] == 0.0
    note = rate_note(agg.reset_index())
    assert note.startswith("Moves with the rate") and ": 1: moves (" in note and "steady" not in note


def test_stable_scale_is_chosen_from_testability_alone(monkeypatch):
    """The SGD rate of the optimizer_stable ablation: the largest scale at which no replication is 'not testable',
    whatever the verdicts are otherwise (here 'not reproduced' is stable and is taken)."""
    import pandas as pd
    from geffect_lite.paper import diagnoses as D
    table = {1.0: ["not testable", "reproduced"], 0.5: ["not reproduced", "not testable"],
             0.25: ["not reproduced", "not reproduced"], 0.125: ["reproduced", "reproduced"]}

    class FakeRuns:
        def __init__(self, model, changes=None, replication=0, lr_scale=1.0):
            assert changes == {"setting": "theory"}
            self.k, self.r = lr_scale, replication
    monkeypatch.setattr(D, "Runs", FakeRuns)
    monkeypatch.setattr(D, "scoreboard", lambda runs, claims: pd.DataFrame([dict(verdict=table[runs.k][runs.r])]))
    k, tried = D.stable_scale("tiny", "ga_layers", (0, 1))
    assert k == 0.25 and [t[0] for t in tried] == [1.0, 0.5, 0.25]
    table.update({x: ["not testable", "not testable"] for x in D.STABLE_SCALES})
    k, tried = D.stable_scale("tiny", "ga_layers", (0, 1))
    assert k == D.STABLE_SCALES[-1] and len(tried) == len(D.STABLE_SCALES)     # none stable: the smallest, untestable


def _results_in(monkeypatch, tmp_path):
    """(the scoreboard module, tooling.results, where) with results read and written under tmp_path, one rules
    commit and one model build."""
    import importlib
    from geffect_lite import results as R, models
    S = importlib.import_module("geffect_lite.paper.scoreboard")     # the module (the package exports a function)
    from geffect_lite.tooling import results as tres
    where = lambda name: tmp_path / f"{name}.json"
    monkeypatch.setattr(R, "path", where)
    monkeypatch.setattr(tres, "path", where)
    monkeypatch.setattr(tres, "machine", lambda: "test")
    monkeypatch.setattr(scoreboard_io, "rules_commit", lambda: "r1")
    monkeypatch.setattr(models, "model_fingerprint", lambda m: "fp")
    return S, tres, where


def test_a_sensitivity_grid_resumes_from_its_partial_file_of_the_same_plan(monkeypatch, tmp_path):
    """Each finished cell goes to the partial file; another machine with that file reruns only the missing cells;
    a file of another plan (other rules) is not read."""
    import json
    S, tres, where = _results_in(monkeypatch, tmp_path)
    ran, cut = [], [True]

    def board(model, replication=0, lr_scale=1.0, **kw):
        if (replication, lr_scale) == (1, 0.5) and cut:
            cut.clear()
            raise KeyboardInterrupt                   # the machine goes away during the fourth cell
        ran.append((replication, lr_scale))
        df = pd.DataFrame([dict(claim="ga_spike", paper="p", kind="k", group="claim", verdict="reproduced",
                                numbers="", reason="", replication=replication, seed=replication,
                                lr_scale=lr_scale, values={"x": float(replication)})])
        df.attrs["config"] = dict(replication=replication)
        return df
    monkeypatch.setattr(S, "scoreboard", board)
    grid = dict(replications=(0, 1), lr_scales=(0.5, 1.0, 2.0), partial="scoreboard-fake-partial")
    with pytest.raises(KeyboardInterrupt):
        S.sensitivity("fake", **grid)
    assert len(json.loads(where("scoreboard-fake-partial").read_text())["cells"]) == 3
    long = S.sensitivity("fake", **grid)
    assert ran == [(0, 0.5), (0, 1.0), (0, 2.0), (1, 0.5), (1, 1.0), (1, 2.0)]       # each cell run once in all
    assert list(zip(long.replication, long.lr_scale)) == S.grid((0, 1), (0.5, 1.0, 2.0))
    assert long["values"].iloc[3] == {"x": 1.0} and long.attrs["config"]["runs"][0]["replication"] == 0
    assert long.attrs["config"]["runs"][0]["carried_from"] == tres.git_commit()     # the commit it was run at
    monkeypatch.setattr(scoreboard_io, "rules_commit", lambda: "r2")              # other rules: not resumed
    ran.clear()
    S.sensitivity("fake", **grid)
    assert len(ran) == 6


def test_each_partial_cell_names_the_commit_its_process_started_from(monkeypatch, tmp_path):
    """A worker that runs for hours while other commits land: every cell it writes names the commit whose code it
    imported (read once, at its start), not the HEAD at the time of a later write of the partial file."""
    import json
    S, tres, where = _results_in(monkeypatch, tmp_path)
    heads = iter(["start"] + ["later"] * 50)                  # HEAD moves after the worker starts
    monkeypatch.setattr(tres, "git_commit", lambda *a: next(heads))

    def board(model, replication=0, lr_scale=1.0, **kw):
        df = pd.DataFrame([dict(claim="ga_spike", paper="p", kind="k", group="claim", verdict="reproduced",
                                numbers="", reason="", replication=replication, seed=replication,
                                lr_scale=lr_scale, values={"x": 1.0})])
        df.attrs["config"] = dict(replication=replication)
        return df
    monkeypatch.setattr(S, "scoreboard", board)
    S.sensitivity("fake", replications=(0, 1), lr_scales=(1.0, 2.0), partial="scoreboard-fake-partial")
    cells = json.loads(where("scoreboard-fake-partial").read_text())["cells"]
    assert len(cells) == 3 and {c["commit"] for c in cells} == {"start"}


def test_a_sensitivity_grid_extends_the_committed_grid_of_the_same_rules_and_model(monkeypatch, tmp_path):
    """Replication 0 committed, replications 0-1 asked: only replication 1 runs, and the carried cell names the
    commit it came from; a committed grid of other rules is not extended."""
    S, tres, where = _results_in(monkeypatch, tmp_path)
    monkeypatch.setattr(tres, "git_commit", lambda where=None: "abc1234")
    ran = []

    def board(model, replication=0, lr_scale=1.0, **kw):
        ran.append((replication, lr_scale))
        df = pd.DataFrame([dict(claim="ga_spike", paper="p", kind="k", group="claim", verdict="reproduced",
                                numbers="", reason="", replication=replication, seed=replication,
                                lr_scale=lr_scale, values={"x": float(replication)})])
        df.attrs["config"] = dict(replication=replication, fast=False, figure_setting="paper")
        return df
    monkeypatch.setattr(S, "scoreboard", board)
    scoreboard_io.save("fake", S.sensitivity("fake", replications=(0,), lr_scales=(1.0,)), "cmd", 1.0)
    ran.clear()
    long = S.sensitivity("fake", replications=(0, 1), lr_scales=(1.0,), partial="scoreboard-fake-partial")
    assert ran == [(1, 1.0)] and list(long.replication) == [0, 1]
    assert long.attrs["config"]["runs"][0]["carried_from"] == "abc1234"
    # a partial file of another grid lends the cells the two grids share (SmolLM2: 0-2 at ×1, then ×½ and ×2 at 0)
    S._write_partial("scoreboard-fake-partial", S._plan("fake", (0, 1), (1.0,), False, None, "paper"),
                     {(1, 1.0): board("fake", 1, 1.0)}, 1.0)
    ran.clear()
    long = S.sensitivity("fake", replications=(0, 1), lr_scales=(0.5, 1.0, 2.0), rates_at=(0,),
                         partial="scoreboard-fake-partial")
    assert ran == [(0, 0.5), (0, 2.0)] and len(long) == 4
    scoreboard_io.save("fake", long, "cmd", 1.0)
    agg = aggregate(long).set_index("claim").loc["ga_spike"]
    assert (agg.k, agg.n) == (4, 4) and "1 of 1" in agg.per_rate and "2 of 2" in agg.per_rate
    ran.clear()
    long = S.sensitivity("fake", replications=(0, 1), lr_scales=(0.5, 1.0, 2.0), rates_at=(0,),
                         partial="scoreboard-fake-partial")
    assert ran == [] and len(long) == 4               # the committed uneven grid is read back whole
    monkeypatch.setattr(scoreboard_io, "rules_commit", lambda: "r2")
    ran.clear()
    S.sensitivity("fake", replications=(0, 1), lr_scales=(1.0,), partial="scoreboard-fake-partial")
    assert ran == [(0, 1.0), (1, 1.0)]


def test_the_build_note_converts_smollm2_before_comparing_builds(monkeypatch):
    """smollm2-tofu's fingerprint hashes the converted base, so the note converts it first: a machine that had not
    converted it called every committed build 'earlier' (notebook 13 said so before notebook 12 had run)."""
    import geffect_lite.models as models
    import geffect_lite.models.smollm2 as smol
    long = pd.DataFrame(); long.attrs["provenance"] = {"model_fingerprint": "abc"}
    state = {"converted": False}
    monkeypatch.setattr(smol, "convert_smollm2", lambda: state.update(converted=True))
    monkeypatch.setattr(models, "model_fingerprint", lambda m: "abc" if state["converted"] else "name-only")
    assert render._build_note(long, "smollm2-tofu") == ""
    state["converted"] = False
    monkeypatch.setattr(smol, "convert_smollm2", lambda: None)          # a build that really differs is still named
    assert render._build_note(long, "smollm2-tofu") == ", on an earlier build of the model"


def test_an_uneven_grid_is_described_rate_by_rate():
    """SmolLM2's grid (every replication at ×1, the other rates at replication 0) is not called 'replications 0, 1, 2
    at ×0.5, ×1, ×2'."""
    cells = grid((0, 1, 2), (0.5, 1, 2), rates_at=(0,))
    long = pd.DataFrame([dict(replication=r, lr_scale=k) for r, k in cells])
    assert render._grid_words(long) == \
        "replications 0, 1, 2 at ×1; ×0.5, ×2 at replication 0"
    even = pd.DataFrame([dict(replication=r, lr_scale=k) for r, k in grid((0, 1), (0.5, 1))])
    assert render._grid_words(even) == "replications 0, 1 at ×0.5, ×1"


def test_as_in_needs_the_committed_scoreboard_too():
    """'as in Fig. N' only when this run AND the committed replications × rates reproduce the claim; a claim this run
    reproduces but the scoreboard does not is said as this run's, with the scoreboard's verdict."""
    from geffect_lite.lessons.common import as_in, committed_verdict
    live = pd.DataFrame(dict(claim=["insight_shallow_layers", "ga_lm_head", "ga_spike"],
                             verdict=["reproduced", "reproduced", "not reproduced"])).set_index("claim")
    live.attrs["config"] = dict(model="tiny")
    assert committed_verdict(live, "insight_shallow_layers") == "reproduced"
    assert as_in(live, "insight_shallow_layers", "Fig. 3b", "Shown.", "not shown") == "Shown, as in Fig. 3b."
    said = as_in(live, "ga_lm_head", "Fig. 3b", "Shown.", "not shown")
    assert "as in" not in said and f"*{committed_verdict(live, 'ga_lm_head')}*" in said
    assert as_in(live, "ga_spike", "Fig. 3a", "Shown.", "not shown") == "not shown"


def test_settings_markdown_derives_its_sentences_from_the_table(monkeypatch):
    """The README's settings block counts the agreeing verdicts and names every claim that differs, and every claim
    not reproduced in the paper setting that holds in the official one (planted table, no committed file read)."""
    from geffect_lite.paper import render
    t = pd.DataFrame(dict(claim=["a", "b", "c"],
                          **{"paper setting": ["reproduced (2 of 2)", "not reproduced (0 of 2)", "fragile (1 of 2)"],
                             "official setting": ["reproduced (2 of 2)", "fragile (1 of 2)", "not reproduced (0 of 2)"]}))
    t.attrs["replications"] = [0, 1]
    t.attrs["verdicts"] = t[["paper setting", "official setting"]].apply(lambda c: c.str.split(" \\(").str[0])
    monkeypatch.setattr(render, "settings_table", lambda model, other: t)
    monkeypatch.setattr(render.results, "load", lambda name: {"provenance": {"seconds": 60.0, "commit": "abcdef0123",
                                                                             "rules_commit": "1234567890"}})
    md = render.settings_markdown("fake")
    assert "same verdict on 1 of the 3 claims; they differ on `b` and `c`." in md
    assert "Not reproduced in the paper setting but holding in the official one: `b`." in md
    assert "replications 0, 1 at ×1" in md and "`abcdef0`" in md and "| `c` | fragile (1 of 2) | not reproduced" in md
    monkeypatch.setattr(render, "settings_table", lambda model, other: None)
    assert render.settings_markdown("fake") == "No `official`-setting scoreboard is committed for `fake`.\n"
