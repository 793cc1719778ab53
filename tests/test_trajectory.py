"""gl.run against gl.geffect and against its own promises: one engine (the recorded G-effects equal a fresh
measurement at the same θ, to 1e-10 in fp64), the first-order check, the optimiser-aware G-effect, schedules,
mini-batch plans, plain runs, probes, blow-ups and bad input."""
import copy

import numpy as np
import pytest
import torch

import geffect_lite as gl
from geffect_lite.engine import geffect as compute
from geffect_lite.objectives import register_objective
from geffect_lite.trajectory import Recording, Stepper, run


@pytest.fixture(scope="module")
def setup():
    m, tok = gl.load_model("random-llama")
    m = m.double()
    data = gl.load_data()
    forget = gl.collate(data.split("forget05")[:4], tok, idk=True)
    retain = gl.collate(data.split("retain_pool_05")[:4], tok)
    return m, tok, forget, retain


def _at(traj, t):
    s = traj.steps.set_index("step")
    return float(s.loc[t, "e_u"]), float(s.loc[t, "e_r"])


@pytest.mark.parametrize("objective,optimizer", [("ga", "sgd"), ("npo", "adamw"), ("ga+kl", "adamw"), ("rmu", "sgd")])
def test_run_records_what_geffect_measures(setup, objective, optimizer):
    """One engine: at every recorded step, gl.run's e_u, e_r, groups and instances equal gl.geffect's at the same θ
    (θ_t re-derived by a plain run of t steps) to 1e-10 in fp64."""
    m0, tok, forget, retain = setup
    ref = gl.reference_for(m0, objective, forget, retain)
    kw = dict(lr=1e-3 if optimizer == "sgd" else 1e-4, optimizer=optimizer, progress=False)
    tr = run(copy.deepcopy(m0), objective, forget, retain, ref, steps=3, instances=True, **kw)
    for t in (0, 2):
        mt = copy.deepcopy(m0)
        if t:
            run(mt, objective, forget, retain, ref, steps=t, every=None, weights=False, **kw)
        ge = compute(mt, objective, forget, retain, ref, instances=True)
        eu, er = _at(tr, t)
        assert eu == pytest.approx(ge.e_u, rel=1e-10, abs=1e-14) and er == pytest.approx(ge.e_r, rel=1e-10, abs=1e-14)
        g = tr.groups[tr.groups.step == t].drop(columns="step").reset_index(drop=True)
        pd_ = ge.groups.reset_index(drop=True)
        np.testing.assert_allclose(g.value, pd_.value, rtol=1e-10, atol=1e-14)
        ti = tr.instances[tr.instances.step == t].drop(columns="step").reset_index(drop=True)
        np.testing.assert_allclose(ti.value, ge.instances.value, rtol=1e-8, atol=1e-14)


def test_plain_run_and_probe_and_schedule(setup):
    m0, tok, forget, retain = setup
    seen = []
    tr = run(copy.deepcopy(m0), "ga", forget, retain, steps=4, lr=1e-3, optimizer="adamw", warmup=2, decay=True,
             progress=False, probe=lambda m, t: (seen.append(t), __import__("pandas").DataFrame(dict(x=[t])))[1])
    assert list(tr.steps.lr.round(12)) == [5e-4, 1e-3, 1e-3, 5e-4]             # warm-up 2 steps, then linear decay
    assert seen == [0, 1, 2, 3] and list(tr.probes.step) == [0, 1, 2, 3]
    plain = run(copy.deepcopy(m0), "ga", forget, retain, steps=3, lr=1e-3, every=None, progress=False)
    assert "e_u" not in plain.steps and plain.groups is None and plain.steps.real_du.notna().all()


def test_minibatch_plan_uses_the_optimiser_aware_dot(setup):
    m0, tok, forget, retain = setup
    plan = [(gl.collate(gl.load_data().split("forget05")[i:i + 2], tok, idk=True), retain) for i in (0, 2)]
    tr = run(copy.deepcopy(m0), "ga", forget, retain, steps=2, lr=1e-3, plan=plan, progress=False)
    s = tr.steps
    assert (s.e_u_opt != s.e_u).all()        # the step used a mini-batch gradient, not the measured ∇L
    for _, r in s.dropna(subset=["real_du"]).iterrows():
        assert r.pred_du == pytest.approx(r.real_du, rel=5e-2)


def test_recording_options_are_checked(setup):
    m0, tok, forget, retain = setup
    with pytest.raises(TypeError, match="recording options are"):
        run(copy.deepcopy(m0), "ga", forget, retain, steps=1, instance=True, progress=False)
    with pytest.raises(ValueError, match="every"):
        Recording(every=0)
    with pytest.raises(ValueError, match="optimizer"):
        Stepper([], "lion", 1e-3, 1)
    with pytest.raises(ValueError, match="warmup"):
        run(copy.deepcopy(m0), "ga", forget, retain, steps=2, warmup=3, progress=False)
    with pytest.raises(ValueError, match="plan"):
        run(copy.deepcopy(m0), "ga", forget, retain, steps=2, plan=[], progress=False)


def test_trajectory_first_order_and_determinism(setup):
    m0, tok, forget, retain = setup
    runs = []
    for _ in range(2):
        m = copy.deepcopy(m0)
        runs.append(run(m, "ga", forget, retain, steps=3, lr=1e-3, progress=False))
    a, b = runs
    assert a.steps.equals(b.steps) and a.groups.equals(b.groups)
    s = a.steps.dropna(subset=["real_du"])
    assert len(s) == 3
    # tiny SGD steps: the first-order prediction −η e matches the realised change closely
    for _, r in s.iterrows():
        assert r.pred_du == pytest.approx(r.real_du, rel=2e-2)
        assert r.e_u_opt == r.e_u


def test_trajectory_adamw_optimiser_aware(setup):
    m = copy.deepcopy(setup[0])
    forget, retain = setup[2], setup[3]
    tr = run(m, "ga", forget, retain, steps=3, lr=1e-5, optimizer="adamw", progress=False)
    s = tr.steps.dropna(subset=["real_du"])
    assert (s.e_u_opt != s.e_u).all()       # Adam's step is not the raw gradient
    for _, r in s.iterrows():                # but the optimiser-aware prediction matches the realised change
        assert r.pred_du == pytest.approx(r.real_du, rel=5e-2)


def test_trajectory_instances_every_and_subnormals_restored(setup):
    m = copy.deepcopy(setup[0]).float()
    forget, retain = setup[2], setup[3]
    tr = run(m, "npo", forget, retain, gl.reference_for(m, "npo", forget, retain), steps=4, lr=1e-3,
             instances=True, instances_every=2, progress=False)
    assert sorted(tr.steps.dropna(subset=["e_u"]).step) == [0, 1, 2, 3]
    assert sorted(tr.instances.step.unique()) == [0, 2]
    # the run flushed subnormals while it ran and put PyTorch's default back afterwards
    assert float(torch.tensor([1e-39], dtype=torch.float32) * 1.0) != 0.0
    with pytest.raises(ValueError, match="instances_every"):
        run(m, "ga", forget, retain, steps=1, instances_every=0, progress=False)


def test_blowup_is_recorded_and_stops(setup):
    m = copy.deepcopy(setup[0])
    forget, retain = setup[2], setup[3]
    calls = {"n": 0}

    @register_objective("_test_blowup", overwrite=True)
    def blowup(out, batch):
        calls["n"] += 1
        loss = (out.logp * out.mask).sum() / out.mask.sum()
        return loss * (float("nan") if calls["n"] > 2 else 1.0)

    with pytest.warns(RuntimeWarning, match="non-finite"):
        tr = run(m, "_test_blowup", forget, retain, steps=10, lr=1e-3, progress=False, weights=False)
    assert tr.steps.status.iloc[-1] == "non-finite"
    assert (tr.steps.status == "ok").sum() >= 1
    assert len(tr.steps) < 10


