"""The G-effect engine against independent routes: plain autograd dot products, finite differences, backward loops.

fp64 models so that agreement is limited by maths, not round-off.
"""
import copy
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import geffect_lite as gl  # noqa: E402
from geffect_lite import nll  # noqa: E402
from geffect_lite.engine import (finite_difference, named_params, objective_gradient,  # noqa: E402
                                 second_directional)
from geffect_lite.engine import geffect as compute  # noqa: E402
from geffect_lite.layers import UnsupportedModelError, group_names  # noqa: E402
from geffect_lite.objectives import Context, get_objective, register_objective  # noqa: E402
from geffect_lite.trajectory import run  # noqa: E402

ARCHS = ["llama", "gpt2", "gptneox", "phi", "qwen2", "gemma"]


def _model(arch="llama"):
    m, tok = gl.load_model(f"random-{arch}")
    return m.double(), tok


def _arch_setup(arch):
    """A small random model of ``arch`` (fp64) with 3 forget and 3 retain answers."""
    m, tok = _model(arch)
    data = gl.load_data()
    return m, tok, gl.collate(data.split("forget01")[:3], tok), gl.collate(data.split("retain_pool_01")[:3], tok)


@pytest.fixture(scope="module")
def setup():
    m, tok = _model("llama")
    data = gl.load_data()
    forget = gl.collate(data.split("forget05")[:4], tok, idk=True)
    retain = gl.collate(data.split("retain_pool_05")[:4], tok)
    return m, tok, forget, retain


def _plain_dot(model, obj, forget, retain, ref=None, which="forget", risk="token_mean"):
    """Independent route: two full gradients by torch.autograd.grad and one dot product."""
    _, params = named_params(model)
    g_obj = torch.autograd.grad(obj.loss(Context(model, forget, retain, ref)), params, allow_unused=True)
    b = forget if which == "forget" else retain
    g_r = torch.autograd.grad(nll.risk(model, b, risk), params, allow_unused=True)
    return float(sum((a * c).sum() for a, c in zip(g_obj, g_r) if a is not None and c is not None))


@pytest.mark.parametrize("objective", ["ga", "wga", "npo", "tnpo", "po", "rmu", "ga+kl", "simnpo", "satimp"])
@pytest.mark.parametrize("risk", ["token_mean", "seq_sum"])
def test_total_equals_plain_autograd(setup, objective, risk):
    m, tok, forget, retain = setup
    obj = get_objective(objective)
    ref = gl.reference_for(m, obj, forget, retain)
    ge = compute(m, obj, forget, retain, ref, risk=risk)
    for rs in ("forget", "retain"):
        want = _plain_dot(m, obj, forget, retain, ref, rs, risk)
        got = ge.value(rs)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-12), (objective, rs)


def test_total_equals_finite_difference(setup):
    m, tok, forget, retain = setup
    obj = get_objective("wga", alpha=0.5)
    g = objective_gradient(m, obj, forget, retain)
    norm = float(torch.sqrt(sum((x ** 2).sum() for x in g if x is not None)))
    ge = compute(m, obj, forget, retain)
    for rs, b in (("forget", forget), ("retain", retain)):
        fd = finite_difference(m, g, b, h=1e-4 / norm)
        assert fd == pytest.approx(ge.value(rs), rel=1e-3)


def test_ga_identity(setup):
    """Identity 2: e_u(GA) = −‖∇R_u‖² when objective and risk share batch and reduction."""
    m, tok, forget, retain = setup
    _, params = named_params(m)
    g = torch.autograd.grad(nll.risk(m, forget), params, allow_unused=True)
    sq = float(sum((x ** 2).sum() for x in g if x is not None))
    assert compute(m, "ga", forget, retain).e_u == pytest.approx(-sq, rel=1e-10)


def test_groups_sum_to_total_and_rmu_locality(setup):
    m, tok, forget, retain = setup
    ge = compute(m, get_objective("rmu", layer=2), forget, retain)
    for scheme in ("block", "paper"):
        for rs in ("forget", "retain"):
            g = ge.groups[(ge.groups.scheme == scheme) & (ge.groups.risk_set == rs) & (ge.groups.term == "objective")]
            assert g.value.sum() == pytest.approx(ge.value(rs), rel=1e-10, abs=1e-14)
    blk = ge.groups[(ge.groups.scheme == "block") & (ge.groups.term == "objective")]
    # hidden_states[2] is the output of block 1: blocks 2, 3, final norm and lm_head get exactly zero
    for name in ("block 2", "block 3", "final_norm", "lm_head"):
        assert (blk[blk.group == name].value == 0).all(), name
    assert (blk[blk.group == "block 0"].value != 0).any()


@pytest.mark.parametrize("objective", ["ga", "npo", "tnpo", "ga+gd"])
def test_instances_and_tokens_sum_to_total(setup, objective):
    m, tok, forget, retain = setup
    obj = get_objective(objective)
    ref = gl.reference_for(m, obj, forget, retain)
    ge = compute(m, obj, forget, retain, ref, instances=True, tokens=True, tokenizer=tok)
    for rs in ("forget", "retain"):
        total = ge.value(rs)
        moved = ge.instances[(ge.instances.risk_set == rs) & (ge.instances.view == "moved")]
        # forward mode vs reverse mode: equal in exact arithmetic; HF's RMSNorm computes in fp32 even in an fp64
        # model, so the two routes agree to ~1e-8 relative, not 1e-15
        assert moved.share.sum() == pytest.approx(total, rel=1e-6, abs=1e-12)
        toks = ge.tokens[(ge.tokens.risk_set == rs) & (ge.tokens.view == "moved")]
        assert toks.share.sum() == pytest.approx(total, rel=1e-6, abs=1e-12)
        forget_total = ge.value(rs, "forget") if "forget" in set(ge.totals.term) else total
        contrib = ge.instances[(ge.instances.risk_set == rs) & (ge.instances.view == "contribution")]
        assert contrib.value.sum() == pytest.approx(forget_total, rel=1e-6, abs=1e-12)
    assert toks.token.notna().all()


def test_npo_contribution_is_weight_times_pg_effect(setup):
    """Eq. 5: NPO's per-instance contribution = W_b · PG_b, PG_b = ∇R(D)ᵀ∇log π(y_b)."""
    m, tok, forget, retain = setup
    obj = get_objective("npo", beta=1.0)
    m2 = copy.deepcopy(m)
    ref = gl.reference_for(m2, obj, forget, retain)
    torch.manual_seed(0)
    with torch.no_grad():   # move θ away from θ_ref so the weights are not all 1
        for p in m2.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ge = compute(m2, obj, forget, retain, ref, instances=True)
    ctx = Context(m2, forget, retain, ref)
    W = obj.grad_weights(ctx)["forget"].detach()  # [B, T-1] = W_b/B on every answer token
    _, params = named_params(m2)
    gR = torch.autograd.grad(nll.risk(m2, forget), params)
    for b in range(W.shape[0]):
        f = nll.forward(m2, forget)
        gb = torch.autograd.grad(f.seq_logp[b], params)
        pg = float(sum((x * y).sum() for x, y in zip(gR, gb)))
        wb = float(W[b][W[b] != 0][0])
        got = ge.instances[(ge.instances.risk_set == "forget") & (ge.instances.view == "contribution")
                           & (ge.instances.instance == b)].value.iloc[0]
        assert got == pytest.approx(wb * pg, rel=1e-6)


def test_forward_mode_equals_backward_loop(setup):
    m, tok, forget, retain = setup
    obj = get_objective("wga", alpha=1.0)
    a = compute(m, obj, forget, retain, instances=True, tokens=True, method="jvp")
    b = compute(m, obj, forget, retain, instances=True, tokens=True, method="loop")
    assert a.info["method"] == "jvp" and b.info["method"] == "loop"
    va = a.tokens.sort_values(["risk_set", "view", "instance", "position"]).value.to_numpy()
    vb = b.tokens.sort_values(["risk_set", "view", "instance", "position"]).value.to_numpy()
    assert len(va) == len(vb) > 0
    assert abs(va - vb).max() <= 1e-6 * abs(vb).max()


@pytest.mark.parametrize("arch", ARCHS)
def test_architectures(arch):
    """Blocks found without knowing the architecture; engine = plain autograd; jvp = loop."""
    m, tok, forget, retain = _arch_setup(arch)
    names = group_names(m, "paper")
    assert {"shallow", "middle", "deep"} <= set(names.values())
    obj = get_objective("ga")
    ge = compute(m, obj, forget, retain, instances=True, method="jvp")
    assert ge.e_u == pytest.approx(_plain_dot(m, obj, forget, retain), rel=1e-6)
    assert ge.e_r == pytest.approx(_plain_dot(m, obj, forget, retain, which="retain"), rel=1e-6)
    inst = ge.instances[(ge.instances.view == "moved") & (ge.instances.risk_set == "forget")]
    assert inst.share.sum() == pytest.approx(ge.e_u, rel=1e-6)
    tied = any(n.startswith("embed+lm") for n in names.values())
    assert tied == bool(getattr(m.config, "tie_word_embeddings", False))


def test_second_order_and_first_order_check(setup):
    """ΔR after an SGD step ≈ −η e + ½η² gᵀHg, and the second-order term shrinks the error."""
    m0, tok, forget, retain = setup
    m = copy.deepcopy(m0)
    obj = get_objective("ga")
    g = objective_gradient(m, obj, forget, retain)
    e = compute(m, obj, forget, retain, groups=False).e_u
    eta = 1e-4   # small enough for the Taylor series to be ordered (a random model is very curved)
    d = [None if x is None else -eta * x for x in g]
    q = second_directional(m, d, forget)
    r0 = float(nll.risk(m, forget).detach())
    with torch.no_grad():
        for p, x in zip(named_params(m)[1], g):
            p.add_(x, alpha=-eta)
    real = float(nll.risk(m, forget).detach()) - r0
    first = -eta * e
    assert abs(real - (first + 0.5 * q)) < abs(real - first)
    # forward-over-forward equals reverse-over-reverse (double backward), an independent exact route
    _, params = named_params(m0)
    gr = torch.autograd.grad(nll.risk(m0, forget), params, create_graph=True)
    hv = torch.autograd.grad(sum((a * b).sum() for a, b in zip(gr, d)), params)
    assert q == pytest.approx(float(sum((a * b).sum() for a, b in zip(hv, d))), rel=1e-6)


def _shifted_risk(model, d, batch, h):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p, x in zip(named_params(m)[1], d):
            if x is not None:
                p.add_(x, alpha=h)
        return nll.risk(m, batch)


def test_bad_inputs(setup):
    m, tok, forget, retain = setup
    with pytest.raises(ValueError, match="steps"):
        run(copy.deepcopy(m), "ga", forget, retain, steps=0, progress=False)
    empty = dict(forget)
    empty["labels"] = torch.full_like(forget["labels"], -100)
    with pytest.raises(nll.EmptyBatchError):
        compute(m, "ga", empty, retain)
    with pytest.raises(KeyError, match="wga"):
        compute(m, "not-an-objective", forget, retain)

    class NotALM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)
    with pytest.raises(UnsupportedModelError):
        group_names(NotALM())
    other = gl.collate(gl.load_data().split("forget01")[:2], tok)
    other["tokenizer"] = "0123456789ab"
    with pytest.raises(ValueError, match="tokenizer"):
        compute(m, "ga", other, retain)


def test_parity_mode(setup):
    """Official-code parity: one micro-batch = the plain G-effect; two = the dot product of EMA'd gradients."""
    from geffect_lite.paper.parity import parity
    m, tok, forget, retain = setup
    data = gl.load_data()
    f_rows, r_rows = data.split("forget05")[:4], data.split("retain_pool_05")[:4]
    prints, summ = parity(m, "ga", f_rows, r_rows, tok, micro_batch=4, first_print=1)
    fb = gl.collate(f_rows, tok, idk=True)
    e_u = compute(m, "ga", fb, retain, groups=False).e_u
    tot = prints[(prints.group == "total") & (prints.risk_set == "forget")].value.iloc[0]
    assert tot == pytest.approx(e_u, rel=1e-10)
    assert set(prints.group) >= {"embed", "module1", "lm", "total"}
    # two micro-batches of 2: ⟨0.6 g1 + 0.4 g2, 0.6 u1 + 0.4 u2⟩ (printed at call 2)
    prints2, _ = parity(m, "ga", f_rows, r_rows, tok, micro_batch=2, first_print=2)
    _, params = named_params(m)
    gs = []
    for s in (0, 2):
        b = gl.collate(f_rows[s:s + 2], tok)
        gs.append(torch.autograd.grad(-nll.risk(m, b), params))
    ema_g = [0.6 * a + 0.4 * b for a, b in zip(*gs)]
    want = -float(sum((x * x).sum() for x in ema_g))   # GA: ḡ_u = −ḡ_obj
    got = prints2[(prints2.group == "total") & (prints2.risk_set == "forget")].value.iloc[0]
    assert got == pytest.approx(want, rel=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# Ghost dot products (ghost.py): per-tensor ⟨∇A, ∇B⟩ from Gram matrices, never forming a gradient
# ----------------------------------------------------------------------------------------------------------------
class _Toy(torch.nn.Module):
    """Every case the Gram route must get right: a tied embedding/lm_head pair with a padding row, a weight called
    twice, a bias, and a weight also used outside its module (which must fall back to a formed gradient)."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(11, 6, padding_idx=0)
        self.lin = torch.nn.Linear(6, 6)
        self.head = torch.nn.Linear(6, 11, bias=False)
        self.head.weight = self.emb.weight
        self.extra = torch.nn.Linear(6, 6, bias=False)

    def forward(self, ids):
        h = self.emb(ids)
        h = torch.tanh(self.lin(h)) + 0.5 * self.lin(h)
        h = h + self.extra(h) + 0.3 * torch.nn.functional.linear(h, self.extra.weight)   # 2 uses, 1 recorded
        return self.head(h)


def test_ghost_dots_equal_autograd_on_every_use_pattern():
    from geffect_lite.engine import ghost
    torch.manual_seed(0)
    m = _Toy().double()
    with torch.no_grad():   # a trained padding row is not zero (nn.Embedding starts it at 0)
        m.emb.weight[0].normal_()
    params = list(m.parameters())
    ids_a = torch.tensor([[3, 5, 0, 0], [7, 7, 2, 0]])      # 0 = padding row (gets no embedding gradient)
    ids_b = torch.tensor([[5, 3, 3, 9, 10]])
    with ghost.Recorder(m, params) as rec:
        A = m(ids_a).log_softmax(-1)[..., 4].sum()
        B = (m(ids_b) ** 2).mean() + m(ids_a)[..., 2].sum()
    routed = ghost.plan(rec.records, params, ghost.count_uses([A, B], params), 1, force=True)
    names = [n for n, _ in m.named_parameters()]
    assert {names[i] for i in routed} == {"emb.weight", "lin.weight"}   # extra: used outside its module
    D = ghost.GhostDots(routed, params, [B]).against(A, retain_graph=True)
    ga = torch.autograd.grad(A, params, retain_graph=True)
    gb = torch.autograd.grad(B, params)
    want = torch.stack([(x * y).sum() for x, y in zip(ga, gb)])
    assert torch.allclose(D[0], want, rtol=1e-12, atol=1e-14), (D[0], want)


@pytest.mark.parametrize("objective", ["ga", "npo", "po", "rmu", "ga+gd", "npo+kl", "wga+rr", "undial"])
def test_ghost_route_equals_formed_route_and_autograd(setup, objective):
    m, tok, forget, retain = setup
    obj = get_objective(objective)
    ref = gl.reference_for(m, obj, forget, retain)
    a = compute(m, obj, forget, retain, ref, dots="ghost")
    b = compute(m, obj, forget, retain, ref, dots="formed")
    assert a.info["dots"].startswith("ghost (") and not a.info["dots"].startswith("ghost (0/")
    ka = a.groups.set_index(["term", "risk_set", "scheme", "group"]).value
    kb = b.groups.set_index(["term", "risk_set", "scheme", "group"]).value.loc[ka.index]
    assert (ka - kb).abs().max() <= 1e-10 * kb.abs().max()
    for rs in ("forget", "retain"):
        assert a.value(rs) == pytest.approx(_plain_dot(m, obj, forget, retain, ref, rs), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_ghost_route_architectures(arch):
    """Tied embeddings (GPT-2, Qwen2…), GPT-2's Conv1D, Gemma's scaled embedding (must be formed, not ghosted)."""
    m, tok, forget, retain = _arch_setup(arch)
    obj = get_objective("ga+gd")
    ge = compute(m, obj, forget, retain, dots="ghost")
    assert not ge.info["dots"].startswith("ghost (0/")
    for rs in ("forget", "retain"):
        assert ge.value(rs) == pytest.approx(_plain_dot(m, obj, forget, retain, which=rs), rel=1e-6)


@pytest.mark.parametrize("risk", ["token_mean", "seq_sum"])
def test_ghost_retain_chunks_change_nothing(setup, risk):
    """The retain risk is a sum over rows: backpropagated one row at a time or all at once, the same numbers."""
    m, tok, forget, retain = setup
    one = compute(m, "npo", forget, retain, gl.reference_for(m, "npo", forget, retain), risk=risk, chunk_tokens=1)
    allr = compute(m, "npo", forget, retain, gl.reference_for(m, "npo", forget, retain), risk=risk,
                   chunk_tokens=10 ** 9)
    assert one.risks["retain"] == pytest.approx(allr.risks["retain"], rel=1e-12)
    a, b = one.groups.value.to_numpy(), allr.groups.value.to_numpy()
    assert abs(a - b).max() <= 1e-10 * abs(b).max()
    assert one.e_r == pytest.approx(_plain_dot(m, get_objective("npo"), forget, retain,
                                               gl.reference_for(m, "npo", forget, retain), "retain", risk), rel=1e-6)


def test_dots_argument_is_checked(setup):
    m, tok, forget, retain = setup
    with pytest.raises(ValueError, match="valid: auto, ghost, formed"):
        compute(m, "ga", forget, retain, dots="gram")
    with pytest.raises(ValueError, match="tangent"):
        compute(m, "ga", forget, retain, dots="ghost", instances=True)
