"""The claims scoreboard and the Table 1 analogue (geffect_lite.paper), on reduced settings.

* the scoreboard returns one valid row per claim; the exact identities are reproduced;
* on a tied-embedding model (random-qwen2) the lm_head claim is "not applicable";
* verdicts follow the data, not a table: other seeds → other numbers, doctored trajectories → other verdicts;
* aggregation over seeds and rates: fragile when seeds disagree;
* the Table 1 analogue has the right columns, metrics in range, and reads ties as "not comparable".
"""
import copy

import numpy as np
import pandas as pd
import pytest

from geffect_lite import paper
from geffect_lite.models import TINY_DIR
from geffect_lite.paper import rules_ga, rules_npo
from geffect_lite.paper import table as T
from geffect_lite.paper.claims import CLAIMS, VERDICTS
from geffect_lite.trajectory import Trajectory

pytestmark = pytest.mark.skipif(not (TINY_DIR / "model.safetensors").exists(), reason="tiny model not built")
IDENTITIES = ("ga_identity", "layer_additivity", "npo_at_theta_o", "first_order")
SMALL = dict(steps=3, n_forget=-8, n_retain=4)


@pytest.fixture(scope="module")
def small_runs():
    return paper.Runs("tiny", seed=0, fast=True, changes=SMALL)


@pytest.fixture(scope="module")
def board(small_runs):
    small_runs.table = T.table1("tiny", objectives=["ga", "wga"], kl=False, fast=True, progress=False,
                                changes=dict(n_forget=-6, steps=2), n_eval=6)
    return paper.scoreboard(runs=small_runs)


def test_scoreboard_one_valid_row_per_claim(board):
    assert list(board.claim) == [c.id for c in CLAIMS] and len(board) >= 25
    assert set(board.verdict) <= set(VERDICTS)
    for col in ("paper", "numbers", "reason"):
        assert board[col].map(lambda s: isinstance(s, str) and len(s.strip()) > 0).all(), col
    decided = board[board.verdict.isin(["reproduced", "not reproduced"])]
    assert decided.reason.str.startswith("rule:").all()
    untestable = board[board.verdict == "not testable"]          # a diverged run, or nothing to compare
    assert untestable.reason.str.startswith("not testable:").all()
    assert not board.reason.str.contains("could not be computed").any(), board.reason.tolist()
    assert not board.paper.str.contains("§").any()            # the paper is cited by figure / equation / table
    assert board.attrs["config"]["model"] == "tiny"


def test_exact_identities_reproduced_on_tiny(board):
    v = board.set_index("claim").verdict
    for c in IDENTITIES:
        assert v[c] == "reproduced", (c, board.set_index("claim").loc[c, "reason"])


@pytest.fixture
def qwen_tier():
    """random-qwen2 (tied embeddings) as a temporary protocol tier with an explicit rate."""
    from geffect_lite import protocol
    protocol.TIERS["random-qwen2"] = dict(split="forget05", n_forget=-4, n_retain=4, steps=2, table1=False)
    protocol.LR[("paper", "random-qwen2", False)] = 1e-3
    yield
    protocol.TIERS.pop("random-qwen2")
    protocol.LR.pop(("paper", "random-qwen2", False))


def test_lm_head_claim_not_applicable_with_tied_embeddings(qwen_tier):
    runs = paper.Runs("random-qwen2", seed=0, fast=False)
    assert runs.tied
    sb = paper.scoreboard(runs=runs, claims=["ga_lm_head", "table1_tradeoff"]).set_index("claim")
    assert sb.loc["ga_lm_head", "verdict"] == "not applicable" and "tied" in sb.loc["ga_lm_head", "reason"]
    assert sb.loc["table1_tradeoff", "verdict"] == "not applicable"      # no retain-only twin, no forget quality


def test_numbers_follow_the_data():
    a = paper.Runs("tiny", seed=0, fast=True, changes=dict(steps=2, n_forget=-6, n_retain=4))
    b = paper.Runs("tiny", seed=1, fast=True, changes=dict(steps=2, n_forget=-9, n_retain=4))
    assert a.retain["ids"] != b.retain["ids"]                  # the seed draws other retain rows
    sa = paper.scoreboard(runs=a, claims=["npo_at_theta_o", "first_order"]).set_index("claim")
    sb = paper.scoreboard(runs=b, claims=["npo_at_theta_o", "first_order"]).set_index("claim")
    for c in ("npo_at_theta_o", "first_order"):
        assert sa.loc[c, "numbers"] != sb.loc[c, "numbers"], c
        assert sa.loc[c, "verdict"] == sb.loc[c, "verdict"] == "reproduced"


def _fake(e_u, e_r):
    n = len(e_u)
    steps = pd.DataFrame(dict(step=np.arange(n), e_u=e_u, e_r=e_r, risk_u=np.linspace(0, 30, n),
                              risk_r=np.linspace(0, 10, n), status="ok", lr=1.0))
    return Trajectory(steps=steps, terms=pd.DataFrame(), groups=pd.DataFrame())


def test_verdicts_come_from_rules_not_tables(small_runs):
    """Doctored trajectories flip the verdicts: the rule decides, from whatever the runs contain."""
    class Doctored(type(small_runs)):          # Runs keeps no trajectories itself: doctor what it hands out
        def __getitem__(self, key):
            return self._traj[key] if key in self._traj else super().__getitem__(key)
    r = copy.copy(small_runs)
    r.__class__, r._traj = Doctored, {}
    quiet = [-1e-3, -0.1, -5, -1000, -800, -100, -50, -40]
    r._traj["ga"] = _fake(quiet, [1e-4, -0.01, -2, -1500, -900, -50, -30, -20])     # e_r deeper: paper-like
    assert rules_ga.ga_spike(r)["verdict"] == "reproduced"
    r._traj["ga"] = _fake(quiet, [1e-4, -0.01, -2, -100, -90, -5, -3, -2])          # e_r shallow
    out = rules_ga.ga_spike(r)
    assert out["verdict"] == "not reproduced" and "e_r/e_u at the dip" in out["reason"]
    r._traj["npo_b1"] = _fake([-1, -2, -1], [-1, -2, -1])
    r._traj["tnpo"] = _fake([-1, -2, -1], [0.1, -0.1, 0.0])
    assert rules_npo.tnpo_vs_npo(r)["verdict"] == "reproduced"
    r._traj["tnpo"] = _fake([-1, -2, -1], [-2, -4, -2])
    assert rules_npo.tnpo_vs_npo(r)["verdict"] == "not reproduced"


def test_aggregate_reads_replications_and_rates():
    """verdicts.py over replications × rates: reproduced iff ≥ 80 % of the testable replications hold at EACH rate."""
    rows = []
    cases = {"a": {0.5: "RRRRR", 1.0: "RRRRR", 2.0: "RRRRN"},       # 4 of 5 at ×2 = 80 %: reproduced
             "b": {0.5: "RRRRR", 1.0: "RRRNN", 2.0: "RRRRR"},       # 3 of 5 at ×1: fragile
             "c": {0.5: "NNNNN", 1.0: "NNNNN", 2.0: "NNNNN"},       # none: not reproduced
             "d": {0.5: "AAAAA", 1.0: "AAAAA", 2.0: "AAAAA"},       # not applicable everywhere
             "e": {0.5: "TTTTT", 1.0: "RRRRR", 2.0: "RRRRR"}}       # no testable run at ×0.5
    word = dict(R="reproduced", N="not reproduced", A="not applicable", T="not testable")
    for cid, by_rate in cases.items():
        rows += [dict(claim=cid, paper="p", kind="k", group="claim", verdict=word[v], numbers="", reason="",
                      replication=r, seed=r, lr_scale=k, values={"x": float(r)})
                 for k, vs in by_rate.items() for r, v in enumerate(vs)]
    agg = paper.aggregate(pd.DataFrame(rows)).set_index("claim")
    assert agg.verdict.to_dict() == {"a": "reproduced", "b": "fragile", "c": "not reproduced", "d": "not applicable",
                                     "e": "not testable"}
    assert agg.loc["a", "summary"] == "reproduced (14 of 15)" and agg.loc["b", "k"] == 13
    assert agg.loc["b", "per_rate"].startswith("×0.5: 5 of 5; ×1: 3 of 5")
    from geffect_lite.paper.scoreboard import counts, intervals
    assert counts(agg) == {"reproduced": 1, "not reproduced": 1, "fragile": 1, "not testable": 1,
                           "not applicable": 1}
    iv = intervals(pd.DataFrame(rows)).set_index(["claim", "lr_scale"])
    assert iv.loc[("a", 1.0), "mean"] == 2.0 and iv.loc[("a", 1.0), "n"] == 5      # mean of replications 0–4


def test_table1_reduced_and_ties():
    df = T.table1("tiny", objectives=["ga", "wga"], kl=False, fast=True, progress=False,
                  changes=dict(n_forget=-6, steps=2), n_eval=6)
    for c in ("objective", "base", "kl", "kind", "steps", "seconds", "seed", *T.METRICS):
        assert c in df.columns, c
    assert list(df.objective) == ["original", "retain model", "ga", "wga"]
    assert df.forget_quality.between(0, 1).all() and df.model_utility.between(0, 1).all()
    ref = df.set_index("objective")
    assert ref.loc["retain model", "forget_quality"] == 1.0           # the reference sample against itself
    collapsed = df.assign(model_utility=np.where(df.kind == "unlearned", 0.0, df.model_utility))
    assert T.compare(collapsed, "wga", "ga") == "tie / not comparable"      # both at utility 0: never "better"
    two = pd.concat([df, df.assign(seed=1)], ignore_index=True)
    flip = two.copy()
    flip.loc[(flip.seed == 1) & (flip.objective == "ga"), "model_utility"] = 1.0
    flip.loc[(flip.seed == 1) & (flip.objective == "ga"), "forget_quality"] = 1.0
    assert T.compare(flip, "wga", "ga") in ("tie / not comparable", "worse")
    agr = T.agreement(df)
    assert list(agr.columns) == ["statement", "paper", "ours", "agree"]
    assert set(agr.agree) <= {"yes", "no", "n/a", "tie / not comparable"}
    import matplotlib
    matplotlib.use("Agg")
    ax = T.plot_fq_mu(df)
    assert ax.get_yscale() == "log"
    import matplotlib.pyplot as plt
    plt.close(ax.figure)


def test_diagnosis_text_reads_flips_fragility_and_free_factors(monkeypatch):
    """The paragraph a notebook prints under a miss: a flip names the change; a fragile claim names what breaks it at
    seed 0; the tier where the claim misses is never offered as its own cure; nothing flips → "not reproduced"."""
    from geffect_lite.paper import diagnoses as D
    row = lambda claim, factor, base, abl: dict(claim=claim, model="tiny", factor=factor, change=f"change {factor}",
                                                 baseline=base, ablated=abl,
                                                 flips=base != "reproduced" and abl == "reproduced")
    fake = dict(missing={"tiny": ["a", "b", "c"], "deep": ["c"]},
                rows=[row("a", "optimizer", "not reproduced", "reproduced"),
                      row("a", "risk", "not reproduced", "not reproduced"),
                      row("b", "batch", "reproduced", "not reproduced"),
                      row("b", "risk", "reproduced", "reproduced"),
                      row("c", "risk", "not reproduced", "not reproduced")],
                free=[dict(claim="c", model="tiny", factor="scale", change="the tiny model", ablated="reproduced"),
                      dict(claim="c", model="deep", factor="scale", change="the deep model", ablated="not reproduced")])
    monkeypatch.setattr(D.results, "load", lambda name: fake)
    assert D.diagnosis_text("a") == "misses on tiny; on tiny it is reproduced once we use change optimizer."
    assert "fragile on tiny: it holds at seed 0, and breaks with change batch" in D.diagnosis_text("b")
    c = D.diagnosis_text("c")
    assert c.startswith("misses on tiny, deep") and "the tiny model" not in c and c.endswith("not reproduced in this setting.")
    assert D.diagnosis_text("z") == ""
    fake["missing"]["tiny"].append("d")                   # only free factors, none reproduces it
    fake["free"].append(dict(claim="d", model="tiny", factor="lr", change="lr × 2 on tiny", ablated="not reproduced"))
    assert D.diagnosis_text("d") == ("misses on tiny; no tried change flips it (tried: lr × 2 on tiny); "
                                     "not reproduced in this setting.")


def test_diagnosis_text_of_replicated_ablations_names_them_and_its_limits(monkeypatch):
    from geffect_lite.paper import diagnoses as D
    fake = dict(replications=[0, 1, 2], missing={"tiny": ["a", "b"]}, free=[],
                rows=[dict(claim="a", model="tiny", factor="risk", change="change risk", baseline="not reproduced",
                           ablated="reproduced", flips=True),
                      dict(claim="b", model="tiny", factor="batch", change="change batch", baseline="reproduced",
                           ablated="not reproduced", flips=False)])
    monkeypatch.setattr(D.results, "load", lambda name: fake)
    monkeypatch.setattr(D, "rejudged_rows", lambda cid: [])
    a = D.diagnosis_text("a")
    assert "on tiny at replications 0, 1, 2 it is reproduced, by the scoreboard share, once we use change risk" in a
    assert "what this does not show" in a
    # a replicated round's flip is its own, even where the earlier round's flip of the same claim was re-judged
    monkeypatch.setattr(D, "rejudged_rows", lambda cid: [dict(
        claim="a", factor="risk", change="seq sum", baselines=["not reproduced"] * 3, replications=[0, 1, 2],
        ablateds=["reproduced", "not reproduced", "not reproduced"], survives=False, previously_flipped=True,
        why="it flips in too few replications")])
    a = D.diagnosis_text("a")
    assert "earlier round (one replication) found" not in a and "by the scoreboard share, once we use" in a
    assert "the earlier flip with seq sum" in a
    assert "fragile on tiny: it holds at replication 0, and breaks with change batch" in D.diagnosis_text("b")
    assert "optimizer" not in D.factors_for("ga_spike") and "optimizer_stable" in D.factors_for("ga_spike")


def test_rejudged_text_says_whether_a_flip_survives(monkeypatch):
    from geffect_lite.paper import diagnoses as D
    rej = dict(replications=[0, 1, 2], rows=[
        dict(claim="a", factor="risk", change="seq sum", baselines=["not reproduced"] * 3,
             ablateds=["reproduced", "not reproduced", "reproduced"], survives=False, previously_flipped=True,
             why="it flips in too few replications"),
        dict(claim="a", factor="schedule", change="warm-up", baselines=["not reproduced"] * 3,
             ablateds=["reproduced"] * 3, survives=True, previously_flipped=False, why="")])
    monkeypatch.setattr(D.results, "load", lambda name: rej if name == "rejudged" else None)
    t = D.rejudged_text("a")
    assert "the earlier flip with seq sum" in t and "flips in 2 of 3" in t and "no flip (it flips in too few" in t
    assert "never tried before: warm-up" in t and "the flip holds" in t
    assert D.rejudged_text("b") == ""
    # a flip of the earlier round that was re-judged is reported as the earlier round's, then the re-judgement
    fake = dict(missing={"tiny": ["a"]}, free=[], rows=[dict(claim="a", model="tiny", factor="risk", change="seq sum",
                                                             baseline="not reproduced", ablated="reproduced", flips=True)])
    rej1 = dict(rej, rows=rej["rows"][:1])                 # only the flip that does not survive
    monkeypatch.setattr(D.results, "load", lambda name: rej1 if name == "rejudged" else fake)
    t = D.diagnosis_text("a")
    assert "the earlier round (one replication) found it reproduced once we use seq sum" in t
    assert "not reproduced in this setting" in t and "re-judged at replications 0, 1, 2" in t
    # the rule behind `survives`: ≥ 80 % of the replications, and never across a run that is not testable
    assert not D.flips(["not reproduced"] * 3, ["reproduced", "not reproduced", "reproduced"])
    assert not D.flips(["not reproduced"] * 3, ["reproduced", "reproduced", "not testable"])
    assert D.flips(["not reproduced"] * 3, ["reproduced"] * 3)


def test_diagnose_resumes_from_its_partial_file_and_only_with_the_same_plan(monkeypatch, tmp_path):
    """A diagnosis cut off after some claims resumes after them on another machine (the partial file is all it
    needs); a partial file of another plan (here: other replications) is ignored; the finished file removes it."""
    import json
    from geffect_lite import results as R
    from geffect_lite.paper import diagnoses as D, scoreboard_io
    from geffect_lite.tooling import results as tres
    where = lambda name: tmp_path / f"{name}.json"
    monkeypatch.setattr(R, "path", where)
    monkeypatch.setattr(tres, "path", where)
    monkeypatch.setattr(tres, "machine", lambda: "test")
    monkeypatch.setattr(scoreboard_io, "rules_commit", lambda: "r1")
    missed = pd.DataFrame(dict(claim=["ga_spike", "npo_weighting", "reg_kl_term"], verdict="not reproduced"))
    monkeypatch.setattr(D, "misses", lambda m: missed if m == "tiny" else missed.iloc[:0])
    monkeypatch.setattr(D, "free_factors", lambda cid: [])
    calls, cut = [], [True]

    def ablate(model, cid, factors, progress=False, replications=(0,)):
        if cid == "reg_kl_term" and cut:
            cut.clear()
            raise KeyboardInterrupt                     # the first session ends during the third claim
        calls.append((cid, replications))
        return pd.DataFrame([dict(claim=cid, factor=f, flips=False) for f in factors])
    monkeypatch.setattr(D, "ablate", ablate)
    with pytest.raises(KeyboardInterrupt):
        D.diagnose("tiny", tiers=("tiny",), progress=False, replications=(0, 1))
    part = json.loads(where("diagnoses-partial").read_text())
    assert part["done"] == ["ga_spike", "npo_weighting"] and not where("diagnoses").exists()
    df = D.diagnose("tiny", tiers=("tiny",), progress=False, replications=(0, 1))       # resumes: one claim left
    assert [c for c, _ in calls] == ["ga_spike", "npo_weighting", "reg_kl_term"]
    assert sorted(set(df.claim)) == ["ga_spike", "npo_weighting", "reg_kl_term"]
    assert where("diagnoses").exists() and not where("diagnoses-partial").exists()
    assert json.loads(where("diagnoses").read_text())["earlier_commits"] == [part["provenance"]["commit"]]
    where("diagnoses-partial").write_text(json.dumps(dict(part, replications=[0])))   # another plan: not resumed
    calls.clear()
    D.diagnose("tiny", tiers=("tiny",), progress=False, replications=(0, 1))
    assert [c for c, _ in calls] == ["ga_spike", "npo_weighting", "reg_kl_term"]


def test_provenance_ignores_a_resumable_jobs_progress_file_only(tmp_path):
    """git_commit's "+changes" names a change of code, not a resumable job's progress file being rewritten."""
    import subprocess
    from geffect_lite.tooling import results as tres
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    (tmp_path / "geffect_lite" / "results").mkdir(parents=True)
    f, code = tmp_path / "geffect_lite" / "results" / "diagnoses-partial.json", tmp_path / "geffect_lite" / "a.py"
    f.write_text("{}"), code.write_text("x = 1\n")
    git("init", "-q"), git("add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    sha = git("rev-parse", "--short", "HEAD").strip()
    f.write_text('{"done": []}')
    assert tres.git_commit(f.parent) == sha            # the progress file alone: clean
    code.write_text("x = 2\n")
    assert tres.git_commit(f.parent) == sha + "+changes"     # a change of code anywhere in the tree: dirty


def test_a_factor_with_one_replication_is_ablated_there_only_and_never_flips(monkeypatch):
    """forget10 (the data factor) exists at replication 0 only: asked for replications 0-2, the diagnosis runs it at
    0 alone, says so, and does not count its flip; the other factors run at every replication."""
    from types import SimpleNamespace
    from geffect_lite.paper import diagnoses as D
    made = []

    class FakeRuns:
        def __init__(self, model, changes=None, replication=0, lr_scale=1.0):
            self.changes, self.replication = changes or {}, replication
            made.append((tuple(sorted(self.changes)), replication))

        def request(self, key):
            return None, SimpleNamespace(name="paper", optimizer="adamw", lr=1e-3, risk="token_mean", batch=None,
                                         split=self.changes.get("split", "forget05"), n_forget=None, steps=24,
                                         warmup=0, decay=False)

        def steps(self, key):
            raise KeyError(key)

    def board(runs, claims):
        v = "reproduced" if runs.changes else "not reproduced"           # every change "flips" it
        return pd.DataFrame([dict(verdict=v, numbers="", reason="")])
    monkeypatch.setattr(D, "Runs", FakeRuns)
    monkeypatch.setattr(D, "scoreboard", board)
    df = D.ablate("tiny", "ga_spike", ("risk", "data"), replications=(0, 1, 2)).set_index("factor")
    assert df.loc["risk", "replications"] == [0, 1, 2] and bool(df.loc["risk", "flips"])
    assert df.loc["data", "replications"] == [0] and not df.loc["data", "flips"]
    assert "replication 0 only" in df.loc["data", "change"]
    assert sorted(r for c, r in made if "split" in c) == [0]
    assert "data" not in D.ablate("tiny", "ga_spike", ("data",), replications=(1, 2)).get("factor", pd.Series()).tolist()
