"""Caches that cannot lie (geffect_lite.run_store, run_cache, caches) and the one way to get a run.

Each fault is planted in a real cache file — a truncated file, a flipped byte, a file from another code version, an
old-format file — and must be reported in one log line (which file, why, "recomputing"), deleted and recomputed:
the numbers returned are the recomputed ones, never the planted ones. A diverged run is stored as diverged and
said so whenever it is read. The registry clears every cache it lists; the tokenizer check works without patching
the model; ``gl.batches`` takes a split name or a protocol setting and nothing else.
"""
import copy
import logging
import math
import pickle

import pytest
import torch

import geffect_lite as gl
from geffect_lite import caches, cli, protocol, run_cache, run_store
from geffect_lite.models import TINY_DIR
from geffect_lite.trajectory import Trajectory

pytestmark = pytest.mark.skipif(not (TINY_DIR / "model.safetensors").exists(), reason="tiny model not built")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty GEFFECT_CACHE and no trajectories kept in the process."""
    monkeypatch.setenv("GEFFECT_CACHE", str(tmp_path))
    run_cache.clear_memory()
    yield tmp_path / "runs"
    run_cache.clear_memory()


@pytest.fixture(scope="module")
def S():
    return protocol.setting("paper", "tiny", fast=True).replace(steps=3, n_forget=-3, n_retain=2)


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "geffect_lite.runs"]


def planted_stale(path, header):
    """Rewrite ``path`` as a valid file (right checksum) whose numbers are stale: forget risk 999 at every step."""
    tr, _ = run_store.read(path)
    tr.steps["risk_u"] = 999.0
    meta = {k: v for k, v in header.items() if k not in ("format", "code", "bytes", "sha256", "created")}
    run_store.write(path, tr, meta)


# --------------------------------------------------------------------------------------------------------------
# the store: every fault is caught (no model needed)
# --------------------------------------------------------------------------------------------------------------
def test_store_round_trip_and_every_fault(tmp_path, caplog):
    f = tmp_path / "abc.pkl"
    payload = {"x": [1.5, 2.5]}
    run_store.write(f, payload, dict(key="abc", objective="ga"))
    assert run_store.read(f) == (payload, run_store.check(f)[0]) and run_store.check(f)[2] is None
    raw = f.read_bytes()
    faults = {"truncated": raw[:-5], "checksum mismatch": raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:],
              "no header": pickle.dumps(payload),
              "outdated": raw.replace(run_store.code_version().encode(), b"0" * 12, 1),
              "format 1": raw.replace(b'"format": 2', b'"format": 1', 1)}
    for why, bad in faults.items():
        f.write_bytes(bad)
        caplog.clear()
        with caplog.at_level(logging.WARNING, "geffect_lite.runs"):
            assert run_store.read(f) is None, why
        assert len(lines(caplog)) == 1 and why in lines(caplog)[0] and "recomputing" in lines(caplog)[0], why
        assert str(f) in lines(caplog)[0] and not f.exists(), why          # which file; deleted
        assert run_store.is_notice(lines(caplog)[0]), why                 # what the browser tests leave out


def test_clear_stale_deletes_only_what_would_be_recomputed(tmp_path):
    good, old = tmp_path / "good.pkl", tmp_path / "old.pkl"
    run_store.write(good, {"x": 1}, dict(key="good"))
    run_store.write(old, {"x": 2}, dict(key="old"))
    old.write_bytes(old.read_bytes().replace(run_store.code_version().encode(), b"0" * 12, 1))
    n, size = run_store.clear_stale(tmp_path)
    assert (n, good.exists(), old.exists()) == (1, True, False) and size > 0


def test_code_version_ignores_docstrings_and_comments_only():
    a = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    assert run_store._code_only(a) == run_store._code_only('def f(x):  # note\n    """Other doc."""\n\n    return x + 1\n')
    assert run_store._code_only(a) != run_store._code_only('def f(x):\n    """Doc."""\n    return x + 2\n')
    assert len(run_store.code_version()) == 12


def test_parse_age():
    assert run_store.parse_age("7d") == 7 * 86400 and run_store.parse_age("12h") == 43200
    assert run_store.parse_age("30m") == 1800 and run_store.parse_age("1.5h") == 5400
    for bad in ("7", "7x", "-1d", "d", "", "7 days"):
        with pytest.raises(ValueError, match="bad age"):
            run_store.parse_age(bad)


def test_divergence_rule():
    """The first step that is not ok, has a non-finite risk or recorded G-effect, or a forget risk > 10·ln|V|."""
    def traj(rows, every=1):
        return Trajectory(steps=__import__("pandas").DataFrame(rows), terms=None, config=dict(every=every))
    ok = dict(status="ok", risk_u=1.0, risk_r=1.0, e_u=-1.0, e_r=0.1)
    bound = 10 * math.log(1024)
    assert run_cache.divergence(traj([dict(ok, step=0), dict(ok, step=1)]), 1024) is None
    assert run_cache.divergence(traj([dict(ok, step=0), dict(ok, step=1, risk_u=bound + 1)]), 1024)["step"] == 1
    assert run_cache.divergence(traj([dict(ok, step=0), dict(ok, step=1, risk_u=bound - 1)]), 1024) is None
    nan_e = [dict(ok, step=0), dict(ok, step=1, e_u=float("nan"))]
    assert run_cache.divergence(traj(nan_e), 1024)["step"] == 1
    assert run_cache.divergence(traj(nan_e, every=2), 1024) is None                  # step 1 is not recorded
    stop = [dict(ok, step=0), dict(step=1, status="non-finite", message="loss is nan")]
    d = run_cache.divergence(traj(stop), 1024)
    assert d["step"] == 1 and "non-finite" in d["why"] and d["bound"] == pytest.approx(bound)
    assert run_cache.divergence(traj([dict(ok, step=0, risk_u=2.0 * bound)]), 1024, tokens_per_unit=3.0) is None


# --------------------------------------------------------------------------------------------------------------
# protocol_run: planted faults are recomputed, never read
# --------------------------------------------------------------------------------------------------------------
def test_protocol_run_recomputes_every_planted_fault(cache, S, caplog):
    fresh = gl.protocol_run("ga", S, progress=False)
    (f,) = cache.glob("*.pkl")
    header = run_store.check(f)[0]
    assert header["objective"] == "ga" and header["code"] == run_store.code_version() and not header["diverged"]
    assert run_cache.diverged(fresh) is None
    raw = f.read_bytes()
    plants = {"truncated": lambda: f.write_bytes(raw[: len(raw) // 2]),
              "checksum mismatch": lambda: f.write_bytes(raw[:-100] + bytes([raw[-100] ^ 0xFF]) + raw[-99:]),
              "outdated": lambda: (planted_stale(f, header), f.write_bytes(
                  f.read_bytes().replace(run_store.code_version().encode(), b"feedfacecafe", 1)))}
    for why, plant in plants.items():
        plant()
        run_cache.clear_memory()
        caplog.clear()
        with caplog.at_level(logging.WARNING, "geffect_lite.runs"):
            again = gl.protocol_run("ga", S, progress=False)
        assert len(lines(caplog)) == 1 and why in lines(caplog)[0] and f.name in lines(caplog)[0], (why, lines(caplog))
        assert (again.steps.risk_u.to_numpy() == fresh.steps.risk_u.to_numpy()).all(), why     # no stale number
        assert run_store.check(f)[2] is None, why                                              # rewritten, valid
    caplog.clear()
    run_cache.clear_memory()
    with caplog.at_level(logging.WARNING, "geffect_lite.runs"):
        read = gl.protocol_run("ga", S, progress=False)                   # a sound file: read, nothing said
    assert not lines(caplog) and read.steps.equals(fresh.steps)


def test_memory_layer_hands_out_copies(cache, S):
    a = gl.protocol_run("ga", S, progress=False, cache="memory")
    assert not cache.exists() or not list(cache.glob("*.pkl"))          # "memory": nothing on disk
    a.steps["risk_u"] = -1.0
    b = gl.protocol_run("ga", S, progress=False, cache="memory")
    assert (b.steps.risk_u > 0).all()                                    # the kept run was not changed
    with pytest.raises(ValueError, match="cache must be one of"):
        gl.protocol_run("ga", S, cache="disk")
    with pytest.raises(TypeError, match="protocol Setting"):
        gl.protocol_run("ga", "paper")


def test_a_diverged_run_is_stored_and_read_as_diverged(cache, S, caplog):
    big = S.replace(lr=3.0)                                    # GA at lr 3: the forget risk passes 10·ln|V| at once
    with caplog.at_level(logging.WARNING, "geffect_lite.runs"):
        tr = gl.protocol_run("ga", big, progress=False, groups=False)
    d = run_cache.diverged(tr)
    assert d is not None and d["step"] >= 1 and "10·ln|V|" in d["why"]
    assert tr.steps.risk_u[tr.steps.step == d["step"]].iloc[0] > d["bound"] == pytest.approx(10 * math.log(1024))
    assert len(lines(caplog)) == 1 and "diverged at step" in lines(caplog)[0]
    (f,) = cache.glob("*.pkl")
    assert run_store.check(f)[0]["diverged"]["step"] == d["step"]
    run_cache.clear_memory()
    caplog.clear()
    with caplog.at_level(logging.WARNING, "geffect_lite.runs"):
        again = gl.protocol_run("ga", big, progress=False, groups=False)
    assert run_cache.diverged(again) == d and len(lines(caplog)) == 1 and f.name in lines(caplog)[0]
    rows = run_store.entries()
    assert rows[0]["diverged"] == d["step"] and rows[0]["code"] and rows[0]["check"] == "ok"


# --------------------------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------------------------
def test_cache_command(cache, S, capsys):
    gl.protocol_run("ga", S, progress=False, every=None, weights=False)
    cli.main(["cache", "--list"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["key", "objective", "setting", "model", "size", "age", "code", "diverged", "check"]
    assert out[1].split()[1:4] == ["ga", "paper", "tiny"] and "match" in out[1] and out[1].rstrip().endswith("ok")
    assert out[-1].startswith("SmolLM2 conversion: none in ")         # the model cache is shown, not cleared
    cli.main(["cache", "--clear", "--older-than", "1d"])                 # the run is younger: kept
    assert "removed 0" in capsys.readouterr().out and len(list(cache.glob("*.pkl"))) == 1
    cli.main(["cache", "--clear"])
    assert "removed 1" in capsys.readouterr().out and not list(cache.glob("*.pkl"))


@pytest.mark.parametrize("args, says", [
    (["cache", "--clear", "--older-than", "7x"], "bad age '7x'"),
    (["cache", "--clear", "--older-than", "2w"], "bad age '2w'"),
    (["cache", "--list", "--older-than", "7d"], "--older-than goes with --clear"),
    (["cache"], "one of the arguments --list --clear is required"),
    (["cache", "--list", "--clear"], "not allowed with argument"),
])
def test_cache_command_bad_input(cache, capsys, args, says):
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------------------------
# the registry, the tokenizer check, the one batches
# --------------------------------------------------------------------------------------------------------------
def test_clear_caches_clears_every_listed_cache(cache, S):
    gl.protocol_run("ga", S, progress=False, every=None, weights=False)
    protocol.setting("paper", "tiny")                                     # fills the learning rates
    assert run_cache._loaded.cache_info().currsize and protocol.LR and run_cache._MEMORY
    assert list(cache.glob("*.pkl"))
    cleared = gl.clear_caches()
    assert set(cleared) == {c.name for c in caches.CACHES if c.where != "object" and c.by_default}
    assert not run_cache._loaded.cache_info().currsize and not run_cache.dataset.cache_info().currsize
    assert not protocol.LR and not run_cache._MEMORY and not list(cache.glob("*.pkl"))
    with pytest.raises(ValueError, match="valid: runs \\(disk\\)"):
        gl.clear_caches("bogus")
    names = [c.name for c in caches.CACHES]
    assert len(names) == len(set(names)) and set(caches.caches_frame().name) == set(names)


def test_tokenizer_check_needs_no_patched_attribute():
    model, tok = gl.load_model("tiny")
    assert not [k for k in vars(model) if k.startswith("_geffect")]
    data = gl.load_data()
    f, _ = gl.batches(data, tok, "forget01", n_retain=2)
    other = dict(f, tokenizer="0123456789ab")
    for m in (model, copy.deepcopy(model)):                             # a copy is recognised by its config
        assert gl.nll.forward(m, f).logp.shape[0] == f["input_ids"].shape[0]
        with pytest.raises(ValueError, match="different tokenizer"):
            gl.nll.forward(m, other)


def test_one_batches_for_splits_and_settings(S):
    data, (_, tok) = run_cache.dataset(), run_cache.loaded("tiny")
    f, r = gl.batches(data, tok, S)
    assert f["ids"] == [x["id"] for x in gl.setting_data.forget_rows(data, S)] and len(r["ids"]) == S.n_retain
    f2, r2 = gl.batches(data, tok, "forget05", n_retain=4)
    assert f2["ids"] == [x["id"] for x in data.split("forget05")] and len(r2["ids"]) == 4
    assert torch.equal(gl.batches(data, tok, S)[1]["input_ids"], r["input_ids"])
    with pytest.raises(TypeError, match="split name .* or a protocol Setting"):
        gl.batches(data, tok, 5)
    with pytest.raises(TypeError, match="drop n_retain=4"):
        gl.batches(data, tok, S, n_retain=4)
    with pytest.raises(KeyError, match="forget07"):
        gl.batches(data, tok, "forget07")


# --------------------------------------------------------------------------------------------------------------
# the SmolLM2 conversion is a cache too: one made from another GGUF or transformers version is never used or keyed
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_smollm2(tmp_path, monkeypatch):
    """(a planted 1004-byte GGUF, a conversion folder without its .complete) under a fresh GEFFECT_CACHE."""
    from geffect_lite.models import smollm2
    gguf = tmp_path / "wheel" / smollm2.SMOL_GGUF
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + bytes(1000))
    monkeypatch.setattr(smollm2, "smollm2_gguf_path", lambda: gguf)
    monkeypatch.setenv("GEFFECT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "smollm2"
    folder.mkdir(parents=True)
    for f in ("config.json", "tokenizer.json"):
        (folder / f).write_text("{}")
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    return gguf, folder


def test_a_smollm2_conversion_of_another_source_is_stale(fake_smollm2, monkeypatch, caplog):
    import json
    import transformers
    from geffect_lite.models import model_fingerprint
    from geffect_lite.models import smollm2
    gguf, folder = fake_smollm2
    source = dict(gguf=dict(file=gguf.name, bytes=1004), transformers=transformers.__version__)
    assert smollm2.conversion_source() == source
    never = model_fingerprint("smollm2")                  # no .complete: not converted, keyed by its source
    valid_fp = None
    for recorded, valid in ((source, True), ({**source, "transformers": "0.0.1"}, False),
                            ({**source, "gguf": dict(file=gguf.name, bytes=999)}, False), ("ok", False)):
        (folder / ".complete").write_text(json.dumps(recorded) + "\n")
        assert smollm2.valid_cached(folder) is valid, recorded
        fp = model_fingerprint("smollm2")
        assert (fp != never) if valid else (fp == never), recorded   # a stale conversion never names a run
        valid_fp = fp if valid else valid_fp
    (folder / ".complete").write_text(json.dumps(source) + "\n")
    assert model_fingerprint("smollm2") == valid_fp
    gguf.write_bytes(b"GGUF" + bytes(2000))                          # the wheel changes under a valid conversion
    assert not smollm2.valid_cached(folder) and model_fingerprint("smollm2") not in (never, valid_fp)
    assert smollm2.conversion_status().endswith("stale or partial (converted again on next use)")

    def refuse(*a, **k):                                             # stop where the conversion would start
        raise RuntimeError("converting again")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    with caplog.at_level(logging.WARNING, logger="geffect_lite.models"), pytest.raises(RuntimeError, match="again"):
        smollm2.convert_smollm2()
    msgs = [r.getMessage() for r in caplog.records if r.name == "geffect_lite.models"]
    assert len(msgs) == 1 and "converting again" in msgs[0] and "'bytes': 1004" in msgs[0] \
        and "'bytes': 2004" in msgs[0], msgs
    assert not folder.exists()                                       # the stale conversion is gone, not read


def test_running_out_of_memory_keeps_the_smollm2_cache(fake_smollm2, monkeypatch):
    """A load that fails for lack of memory (``ulimit -v`` refuses the weights' mapping) names the cause and keeps
    the conversion; a load that fails on a damaged file removes it, so the next call converts again."""
    import json
    from geffect_lite.models import smollm2
    _, folder = fake_smollm2
    (folder / ".complete").write_text(json.dumps(smollm2.conversion_source()))
    assert smollm2.valid_cached(folder)
    assert smollm2.conversion_status().endswith("served (it matches the installed source)")
    for error, kept in ((RuntimeError("unable to mmap 538090408 bytes from file <x>: Cannot allocate memory (12)"),
                         True), (MemoryError(), True), (ValueError("invalid header"), False)):
        def fail(*a, error=error, **k):
            raise error
        monkeypatch.setattr(smollm2, "load_folder", fail)
        with pytest.raises(MemoryError if kept else OSError) as got:
            smollm2.load_smollm2()
        assert folder.exists() is kept, error
        assert ("ulimit -v" in str(got.value) and "was kept" in str(got.value)) if kept \
            else "was removed" in str(got.value)
