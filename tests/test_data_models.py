"""The spine: synthetic data, TOFU loader (offline fixture), collation, models by name, memorisation, bad input."""
import json
import os
import time

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import geffect_lite as gl  # noqa: E402
from geffect_lite import data as D  # noqa: E402
from geffect_lite.batching import answer_mask, collate, select  # noqa: E402
from geffect_lite.models import ModelNotFoundError, load_model  # noqa: E402
from geffect_lite.models.smollm2 import valid_cached  # noqa: E402
from geffect_lite.models.train import exact_match, token_accuracy, train_qa  # noqa: E402

SCHEMA = ("question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer")


@pytest.fixture(scope="module")
def data():
    return gl.load_data()


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny")


def test_synthetic_shape_and_determinism(data):
    rows = [r for r in data.split("full") if r["author"] >= 0]
    authors = {r["author"] for r in rows}
    assert len(authors) >= 60
    per = {a: sum(r["author"] == a for r in rows) for a in authors}
    assert min(per.values()) >= 8
    for r in rows[:50]:
        for k in SCHEMA:
            assert k in r
        assert len(r["perturbed_answer"]) >= 3 and r["answer"] not in r["perturbed_answer"]
        assert r["paraphrased_answer"] != r["answer"]
    again = D.synthetic()
    assert again.split("forget05") == data.split("forget05")
    assert D.synthetic(seed=1).split("forget05") != data.split("forget05")


def test_splits(data):
    for f, r in D.RETAIN_OF.items():
        fa = {x["author"] for x in data.split(f)}
        ra = {x["author"] for x in data.split(r)}
        assert fa and not (fa & ra)
        assert len(data.split(f)) + len(data.split(r)) == sum(x["author"] >= 0 for x in data.split("full"))
    ev = {x["author"] for x in data.split("retain_eval")}
    assert not (ev & {x["author"] for x in data.split("retain_pool_05")})
    assert {x["author"] for x in data.split("forget01")} <= {x["author"] for x in data.split("forget05")}
    assert len(data.split("world_facts")) >= 20 and len(data.split("idk")) >= 5
    assert all(r["idk"] in D.IDK_ANSWERS for r in data.split("forget05"))
    with pytest.raises(KeyError, match="forget05"):
        data.split("forget50")
    with pytest.raises(KeyError, match="synthetic"):
        gl.load_data("nope")


def test_collate_masks_question(data, tiny):
    _, tok = tiny
    rows = data.split("forget01")[:3]
    b = collate(rows, tok, idk=True)
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape
    for i, r in enumerate(rows):
        lab = b["labels"][i]
        ans = [int(t) for t in lab if t != -100]
        assert tok.decode(ans, skip_special_tokens=True).strip() == r["answer"]
        # everything before the first answer token is masked, padding is masked
        first = int((lab != -100).nonzero()[0])
        q = tok.decode(b["input_ids"][i, :first], skip_special_tokens=True)
        assert r["question"] in q
        assert (lab[b["attention_mask"][i] == 0] == -100).all()
    m = answer_mask(b)
    assert m.shape == (3, b["input_ids"].shape[1] - 1) and m.sum() == (b["labels"] != -100).sum()
    assert tok.decode([int(t) for t in b["idk"]["labels"][0] if t != -100], skip_special_tokens=True).strip() == rows[0]["idk"]
    assert select(b, [1])["ids"] == [rows[1]["id"]]
    with pytest.raises(gl.EmptyBatchError):
        collate([], tok)


def _write_tofu_fixture(folder, data):
    """A small local copy in TOFU's file format: JSON lines with TOFU's field names."""
    folder.mkdir(parents=True, exist_ok=True)
    cfgs = {"forget01_perturbed": data.split("forget01"), "retain99": data.split("retain99")[:20],
            "retain_perturbed": data.split("retain_eval")[:10], "world_facts_perturbed": data.split("world_facts"),
            "real_authors_perturbed": data.split("real_authors")}
    for name, rows in cfgs.items():
        with open(folder / f"{name}.json", "w") as f:
            for r in rows:
                keep = {k: r[k] for k in SCHEMA}
                if name == "retain99":
                    keep = {"question": r["question"], "answer": r["answer"]}
                f.write(json.dumps(keep) + "\n")
    return folder


def test_tofu_loader_offline_fixture(tmp_path, data, tiny):
    _, tok = tiny
    folder = _write_tofu_fixture(tmp_path / "TOFU", data)
    splits = ["forget01", "retain99", "retain_eval", "world_facts", "real_authors"]
    t = gl.load_tofu(path=str(folder), splits=splits)
    assert t.source == "tofu"
    assert len(t.split("forget01")) == len(data.split("forget01"))
    r0 = t.split("forget01")[0]
    for k in SCHEMA:
        assert k in r0
    assert r0["perturbed_answer"] == data.split("forget01")[0]["perturbed_answer"]
    assert t.split("retain99")[0]["paraphrased_answer"] == t.split("retain99")[0]["answer"]  # no perturbed fields
    b = collate(t.split("forget01")[:2], tok, idk=True)     # same structure → same downstream code
    assert b["labels"].shape[0] == 2 and "idk" in b
    with pytest.raises(FileNotFoundError):
        gl.load_tofu(path=str(folder), splits=["forget10"])
    with pytest.raises(KeyError, match="forget01"):
        gl.load_tofu(path=str(folder), splits=["forget02"])


def test_tofu_hub_offline_fails_fast():
    t = time.time()
    with pytest.raises(ConnectionError, match="offline|synthetic"):
        gl.load_tofu(splits=["forget01"])
    assert time.time() - t < 5


def test_model_names_and_bad_input(tmp_path):
    with pytest.raises(ModelNotFoundError, match="tiny"):
        load_model("tinyy")
    t = time.time()
    with pytest.raises(ModelNotFoundError, match="offline"):
        load_model("locuslab/tofu_ft_phi-1.5")
    assert time.time() - t < 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_model(str(tmp_path / "empty"))
    # a partially written cache is not taken for a valid one (it is rebuilt on next use)
    part = tmp_path / "cache"
    part.mkdir()
    (part / "config.json").write_text("{}")
    assert not valid_cached(part)


def test_tiny_model_shape(tiny):
    model, tok = tiny
    d = gl.models.describe(model)
    assert d["layers"] >= 6 and not d["tied_embeddings"]
    assert model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    assert model.config._attn_implementation == "eager"


def test_tiny_has_memorised(data, tiny):
    """The shipped model: ≥ 98 % teacher-forced answer-token accuracy and ≥ 90 % greedy exact match."""
    model, tok = tiny
    for split in ("forget05", "forget10"):
        rows = data.split(split)
        assert token_accuracy(model, tok, rows) >= 0.98
        assert exact_match(model, tok, rows) >= 0.90
    rows = data.split("retain90")[::6]     # 150 retain pairs, every 6th
    assert token_accuracy(model, tok, rows) >= 0.98
    assert exact_match(model, tok, rows) >= 0.90


def test_retain_twin_does_not_know_forget10(data):
    model, tok = load_model("tiny-retain")
    known = token_accuracy(model, tok, data.split("retain_eval"))
    unknown = token_accuracy(model, tok, data.split("forget10"))
    assert known >= 0.98
    assert unknown < known - 0.1
    assert exact_match(model, tok, data.split("forget10")) < 0.2


def test_tokenizer_mismatch_is_caught(data):
    model, tok = load_model("tiny")
    smol_like = collate(data.split("forget01")[:2], tok)
    smol_like["input_ids"] = smol_like["input_ids"].clone()
    smol_like["input_ids"][0, 3] = 5000     # an id the tiny vocabulary does not have
    smol_like["tokenizer"] = None
    with pytest.raises(ValueError, match="vocabulary"):
        gl.forward(model, smol_like)


def test_training_is_deterministic(data):
    """The build recipe is deterministic from the seed (reduced: 2 epochs of a random 2-block model)."""
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        m, tok = gl.models.random_model("llama", layers=2, hidden=32)
        train_qa(m, tok, data.split("forget01"), max_epochs=2, min_epochs=99, progress=False, seed=3)
        states.append({k: v.clone() for k, v in m.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
