"""Replications of the protocol (``Setting.replication``, ``setting_data.replication_authors``): replication 0 is the
protocol as it was (same rows, same cache keys, pinned below from the code before replications existed); any other
replication forgets a different set of authors of the same size, inside forget10 (unseen by the retain-only twins),
never among its retain rows; everything is deterministic."""
import pytest

from geffect_lite import protocol, setting_data
from geffect_lite.data import synthetic

DATA = synthetic()
# Setting.key() and the first retain ids of replication 0, computed with the code of faee13b (before replications)
BEFORE = {("paper", "tiny", False): ("aea2db82c55f", ["a011-mother_job", "a013-genre", "a016-mother_job"]),
          ("table1", "tiny", False): ("4f1d4cf9612f", ["a011-mother_job", "a013-genre", "a016-mother_job"]),
          ("paper", "tiny", True): ("be258e1d147d", ["a011-genre", "a013-genre", "a016-mother_job"]),
          ("paper", "smollm2-tofu", False): ("6e9691e190b5", ["a092-birth_year", "a092-father_job", "a092-award"])}


def _ids(rows):
    return [r["id"] for r in rows]


@pytest.mark.parametrize("name,model,fast", sorted(BEFORE))
def test_replication_0_is_the_protocol_as_before(name, model, fast):
    S = protocol.setting(name, model, fast=fast)
    key, first = BEFORE[(name, model, fast)]
    assert S.replication == 0 and S.seed == 0 and S.key() == key
    assert _ids(setting_data.retain_rows(DATA, S))[:3] == first
    if model == "tiny":
        want = DATA["forget05"][-30:] if fast else DATA["forget05"]
        assert _ids(setting_data.forget_rows(DATA, S)) == _ids(want)
        assert _ids(setting_data.retain_pool(DATA, S)) == _ids(DATA["retain_pool_05"])
    else:       # smollm2-tofu: the last 10 rows of its forget split = author 99
        assert {r["author"] for r in setting_data.forget_rows(DATA, S)} == {99}


@pytest.mark.parametrize("fast", [False, True])
def test_replications_forget_other_authors_of_the_same_size(fast):
    S0 = protocol.setting("paper", "tiny", fast=fast)
    f0 = setting_data.forget_rows(DATA, S0)
    forget10 = set(_ids(DATA["forget10"]))
    sets = {tuple(setting_data.replication_authors("forget05", 0))}
    for r in range(1, 6):
        S = protocol.setting("paper", "tiny", fast=fast, replication=r)
        assert S.seed == r and S.key() != S0.key()
        f = setting_data.forget_rows(DATA, S)
        assert len(f) == len(f0)
        # the whole sets always differ; the fast tier's last 30 rows (3 authors) may coincide (r = 4: 97, 98, 99)
        assert (_ids(f) != _ids(f0)) or (fast and {row["author"] for row in f} == {97, 98, 99})
        assert set(_ids(f)) <= forget10                               # the twins never saw them
        authors = setting_data.replication_authors("forget05", r)
        assert len(set(authors)) == 5 and authors not in sets
        sets.add(authors)
        assert {row["author"] for row in f} <= set(authors)
        pool = setting_data.retain_pool(DATA, S)
        assert not set(_ids(f)) & set(_ids(pool)) and not set(_ids(f)) & set(_ids(setting_data.retain_rows(DATA, S)))
        assert not set(_ids(pool)) & set(_ids(DATA["retain_eval"]))   # never the held-out rows
        # the forget10 authors not forgotten join the pool; the forgotten ones leave it
        assert {row["author"] for row in pool} == set(range(10, 100)) - set(authors)
        if fast:                                                      # the fast tier: the last 30 rows of them
            whole = [row for row in DATA["full"] if row["author"] in set(authors)]
            assert _ids(f) == _ids(whole[-30:])


def test_replications_are_deterministic_and_distinct():
    a = [setting_data.replication_authors("forget05", r) for r in range(10)]
    assert a == [setting_data.replication_authors("forget05", r) for r in range(10)]
    assert len(set(a)) == 10 and a[0] == (95, 96, 97, 98, 99)
    assert all(set(x) <= set(range(90, 100)) for x in a)
    one = [setting_data.replication_authors("forget01", r) for r in range(10)]
    assert sorted(one) == [(i,) for i in range(90, 100)]              # all 10 distinct single authors
    S = protocol.setting("table1", "tiny", fast=True, replication=2)
    assert [c[0]["input_ids"].tolist() for c in setting_data.plan(DATA, _tok(), S)] == \
           [c[0]["input_ids"].tolist() for c in setting_data.plan(DATA, _tok(), S)]


def _tok():
    from geffect_lite import run_cache
    return run_cache.loaded("tiny")[1]


def test_smollm2_tofu_replications():
    for r in range(8):
        S = protocol.setting("paper", "smollm2-tofu", replication=r)
        f, pool = setting_data.forget_rows(DATA, S), setting_data.retain_pool(DATA, S)
        assert len(f) == 10 and {row["author"] for row in f} == {99 - r}
        assert {row["author"] for row in pool} == set(range(92, 100)) - {99 - r}
    with pytest.raises(ValueError, match="expected a replication in 0–7, got 8"):
        setting_data.forget_rows(DATA, protocol.setting("paper", "smollm2-tofu", replication=8))


def test_replication_errors_name_the_valid_values():
    with pytest.raises(ValueError, match="replication must be an int ≥ 0"):
        protocol.setting("paper", "tiny", replication=-1)
    with pytest.raises(ValueError, match="only replication 0"):
        setting_data.replication_authors("forget10", 1)
    with pytest.raises(ValueError, match="valid: smollm2, forget01"):
        setting_data.replication_authors("retain90", 1)
    S = protocol.setting("paper", "tiny", replication=3, seed=7)
    assert S.seed == 7 and S.replication == 3 and "replication 3" in S.describe()


def test_official_setting_is_the_official_recipe_at_the_paper_rate():
    """Effective batch 16, one warm-up epoch then linear decay, 5 epochs (forget05: 50 rows → 4 batches × 5 = 20
    steps), AdamW at the paper setting's calibrated rate, token-mean risk."""
    for model, fast, steps, warm in (("tiny", False, 20, 4), ("deep", False, 20, 4), ("tiny", True, 10, 2),
                                     ("smollm2-tofu", False, 5, 1)):
        S, P = protocol.setting("official", model, fast=fast), protocol.setting("paper", model, fast=fast)
        assert (S.optimizer, S.batch, S.steps, S.warmup, S.decay, S.risk) == ("adamw", 16, steps, warm, True,
                                                                              "token_mean")
        assert S.lr == P.lr and S.n_forget == P.n_forget and S.split == P.split
    assert "official" in protocol.ALL_SETTINGS and "official" not in protocol.SETTINGS     # no rate of its own
    with pytest.raises(ValueError, match="valid: paper, theory, table1, official"):
        protocol.setting("offical", "tiny")


def test_runs_take_the_figure_setting_and_the_replication():
    from geffect_lite.paper.runs import Runs
    r = Runs("tiny", fast=True, setting="official", replication=2)
    _, S, _, _ = r.request("ga")
    assert S.name == "official" and S.replication == 2 and S.seed == 2 and r.request("ga_sgd")[1].name == "theory"
    with pytest.raises(ValueError, match="valid: paper, official"):
        Runs("tiny", fast=True, setting="table1")
