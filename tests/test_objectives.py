"""Tests of geffect_lite.objectives and geffect_lite.reference.

* every weighted objective's autograd gradient equals its weighted-NLL form Σ w ∇log p (the gradient form each objective documents);
* the exact identities each objective satisfies (NPO/TNPO/WTNPO/IdkDPO/UNDIAL at θ_ref, NPO → GA, KL/RR = 0, RMU
  locality, PO sanity check, …);
* every loss value re-derived from logits with plain torch ops (not the library) on a two-instance batch;
* closed forms on hand-computed numbers; the registry, user objectives, and bad input.

All in float64 on the random Llama (and on the trained tiny model when its weights exist).
"""
import copy
import math

import pytest
import torch

from geffect_lite import nll
from geffect_lite.batching import collate
from geffect_lite.models import TINY_DIR, load_model
from geffect_lite.nll import EmptyBatchError, NonFiniteError
from geffect_lite.objectives import (GA, NPO, OBJECTIVES, WGA, Context, Regularised, get_objective,
                                     list_objectives, npo_loss, register_objective, unregister_objective)
from geffect_lite.layers import paper_layer
from geffect_lite.reference import Reference, reference_for

HAS_TINY = (TINY_DIR / "model.safetensors").exists()
MODELS = ["random-llama",
          pytest.param("tiny", marks=pytest.mark.skipif(not HAS_TINY, reason="tiny model not built yet"))]


# ----------------------------------------------------------------------------------------------------------------
# set-up: θ_ref = the loaded model, θ = a perturbed copy (so θ ≠ θ_ref); forget (3 rows, with idk), retain (3 rows)
# ----------------------------------------------------------------------------------------------------------------
class Setup:
    pass


_SETUPS = {}


def _perturbed(model, seed=0, scale=0.1):
    m = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            s = val(p.std()) if p.numel() > 1 else 0.0
            if s > 0:
                p.add_(scale * s * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m


def _setup(name, forget_rows, retain_rows):
    if name not in _SETUPS:
        model, tok = load_model(name)
        S = Setup()
        S.name, S.tok = name, tok
        S.model0 = model.double()
        for p in S.model0.parameters():
            p.requires_grad_(True)
        S.model1 = _perturbed(S.model0)
        S.n_layers = S.model0.config.num_hidden_layers
        S.mid = paper_layer(S.model0)
        S.forget = collate(forget_rows, tok, idk=True)
        S.retain = collate(retain_rows, tok)
        S.ref = Reference.from_model(S.model0, [S.forget, S.retain], full_logprobs=True, hidden_layers=(S.mid,))
        # the two-instance batches of the value tests
        S.forget2 = collate(forget_rows[:2], tok, idk=True)
        S.retain2 = collate(retain_rows[:2], tok)
        S.ref2 = Reference.from_model(S.model0, [S.forget2, S.retain2], full_logprobs=True,
                                      hidden_layers=(S.mid,))
        _SETUPS[name] = S
    return _SETUPS[name]


@pytest.fixture(scope="module", params=MODELS)
def S(request, forget_rows, retain_rows):
    """Set-up for each model (random Llama; tiny when built)."""
    return _setup(request.param, forget_rows, retain_rows)


@pytest.fixture(scope="module")
def R(forget_rows, retain_rows):
    """Set-up on the random Llama only (for tests that need no trained model)."""
    return _setup("random-llama", forget_rows, retain_rows)


def val(x):
    """A Python float (detached: no autograd warning)."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def flat_grad(model, scalar):
    ps = list(model.parameters())
    gs = torch.autograd.grad(scalar, ps, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(ps, gs)])


def weighted_nll_grad(model, w, ctx):
    """∇ Σ_which Σ_bt sg(w_bt) log p_bt."""
    return flat_grad(model, sum((w[k].detach() * ctx.fwd(k).logp).sum() for k in w))


def assert_close(a, b, tol=1e-6, what=""):
    bn = val(b.norm())
    assert bn > 0, f"{what}: reference gradient is zero (vacuous test)"
    rel = val((a - b).norm()) / bn
    assert rel < tol, f"{what}: relative difference {rel:.3e} ≥ {tol:.0e}"


def ctx0(S, forget=None, retain=None):
    return Context(S.model0, forget or S.forget, retain or S.retain, S.ref)


def ctx1(S, forget=None, retain=None):
    return Context(S.model1, forget or S.forget, retain or S.retain, S.ref)


# ----------------------------------------------------------------------------------------------------------------
# 1. autograd gradient == weighted-NLL form, at θ ≠ θ_ref
# ----------------------------------------------------------------------------------------------------------------
WEIGHTED = {
    "ga": {}, "gd": {"lam": 0.7}, "wga": {"alpha": 0.5}, "npo": {"beta": 1.0}, "tnpo": {"beta": 1.0},
    "wtnpo": {"beta": 1.0, "alpha": 0.5}, "satimp": {"beta1": 0.5, "beta2": 1.0}, "po": {},
    "simnpo": {"beta": 1.0, "delta": 1.0}, "idkdpo": {"beta": 1.0}, "ce-u": {}, "npo+gd": {"beta": 0.5},
}


@pytest.mark.parametrize("name", list(WEIGHTED))
def test_gradient_equals_weighted_nll_form(S, name):
    obj = get_objective(name, **WEIGHTED[name])
    g_loss = flat_grad(S.model1, obj.loss(ctx1(S)))
    c = ctx1(S)
    w = obj.grad_weights(c)
    assert w, f"{name} should have a weighted-NLL form"
    for k, v in w.items():
        f = c.fwd(k)
        assert not v.requires_grad, f"{name}: weights for {k} are not detached"
        assert v.shape == f.logp.shape
        assert bool((v[f.mask == 0] == 0).all()), f"{name}: non-zero weight off the answer tokens"
    assert_close(g_loss, weighted_nll_grad(S.model1, w, c), 1e-6, name)


# ----------------------------------------------------------------------------------------------------------------
# 2. exact identities of the objectives
# ----------------------------------------------------------------------------------------------------------------
def test_npo_at_reference(S):
    """at θ = θ_ref weights are exactly 1, L = (2/β) ln 2, gradient = sequence-summed GA."""
    for beta in (0.1, 1.0, 2.0):
        obj = NPO(beta=beta)
        c = ctx0(S)
        W = obj.seq_weight(c)
        assert torch.allclose(W, torch.ones_like(W), atol=1e-14, rtol=0)
        assert abs(val(obj.loss(c)) - 2 / beta * math.log(2)) < 1e-12
    c = ctx0(S)
    g_npo = flat_grad(S.model0, NPO(beta=1.0).loss(c))
    f = ctx0(S).fwd()
    g_seq_ga = flat_grad(S.model0, f.seq_logp.mean())
    assert_close(g_npo, g_seq_ga, 1e-10, "NPO at θ_ref vs sequence-summed GA")


def test_npo_tends_to_ga_as_beta_shrinks(R):
    """∇NPO − ∇(seq-summed GA) = O(β); L − (2/β) ln 2 → mean r_b."""
    f = ctx1(R).fwd()
    g_ga = flat_grad(R.model1, f.seq_logp.mean())
    d = []
    for beta in (1e-2, 1e-3):
        d.append(val((flat_grad(R.model1, NPO(beta=beta).loss(ctx1(R))) - g_ga).norm()))
    assert d[1] > 0 and 5 < d[0] / d[1] < 20, f"differences {d} do not shrink linearly with β"
    assert d[1] / val(g_ga.norm()) < 1e-2
    c = ctx1(R)
    r = (c.fwd().seq_logp - (c.ref_logp() * c.fwd().mask).sum(1)).detach()
    assert val(r.abs().max()) > 1e-3, "θ and θ_ref should differ"
    beta = 1e-4
    gap = val(NPO(beta=beta).loss(c)) - 2 / beta * math.log(2)
    assert abs(gap - val(r.mean())) <= beta * val((r ** 2).mean()) / 4 * 1.01 + 1e-9


def test_wga_identities(S):
    """α = 0 is GA exactly; for any α, ∇ = (1/N) Σ sg(p^{α−1}) ∇p."""
    c = ctx1(S)
    ga, wga0 = GA(), WGA(alpha=0.0)
    assert torch.equal(wga0.grad_weights(c)["forget"], ga.grad_weights(c)["forget"])
    assert val(wga0.loss(c)) == val(ga.loss(c))
    alpha = 0.5
    g = flat_grad(S.model1, WGA(alpha=alpha).loss(ctx1(S)))
    f = ctx1(S).fwd()
    p = f.logp.exp()
    surrogate = (p.detach() ** (alpha - 1) * p * f.mask).sum() / f.mask.sum()
    assert_close(g, flat_grad(S.model1, surrogate), 1e-8, "WGA vs (1/N) Σ sg(p^{α-1}) ∇p")


def test_tnpo_identities(S):
    """TNPO at θ_ref with ε = 0 is token-mean GA; with ε > 0 the weight is 2p^β/(2p^β + ε); at θ ≠ θ_ref
    (ε = 0) its gradient is that of the token-wise NPO loss (1/N) Σ (2/β) log(1 + (p/p_ref)^β)."""
    c = ctx0(S)
    f = c.fwd()
    t0 = get_objective("tnpo", beta=2.0, eps=0.0)
    assert torch.allclose(t0.grad_weights(c)["forget"], GA().grad_weights(c)["forget"], atol=1e-15, rtol=1e-13)
    assert abs(val(t0.loss(c)) - val(GA().loss(c))) < 1e-12
    eps, beta = 1e-5, 2.0
    p = f.logp.detach().exp()
    expect = 2 * p ** beta / (2 * p ** beta + eps) * f.mask
    got = get_objective("tnpo", beta=beta, eps=eps).token_weight(c)
    assert torch.allclose(got, expect, rtol=1e-12, atol=1e-300)
    # gradient of the token-wise NPO loss at θ ≠ θ_ref
    beta = 1.0
    g = flat_grad(S.model1, get_objective("tnpo", beta=beta, eps=0.0).loss(ctx1(S)))
    c1 = ctx1(S)
    f1 = c1.fwd()
    with torch.no_grad():
        ref_lp = nll.forward(S.model0, S.forget).logp
    tok_npo = (2 / beta * torch.nn.functional.softplus(beta * (f1.logp - ref_lp)) * f1.mask).sum() / f1.mask.sum()
    assert_close(g, flat_grad(S.model1, tok_npo), 1e-8, "TNPO vs token-wise NPO")


def test_wtnpo_identities(S):
    """WTNPO weight = WGA weight × TNPO weight (any θ); at θ_ref with ε = 0 WTNPO = WGA(α)."""
    c = ctx1(S)
    beta, alpha, eps = 1.5, 0.7, 1e-5
    w = get_objective("wtnpo", beta=beta, alpha=alpha, eps=eps).token_weight(c)
    w_wga = get_objective("wga", alpha=alpha).token_weight(c)
    w_tnpo = get_objective("tnpo", beta=beta, eps=eps).token_weight(c)
    assert torch.allclose(w, w_wga * w_tnpo, rtol=1e-12, atol=0)
    c = ctx0(S)
    wt = get_objective("wtnpo", beta=beta, alpha=alpha, eps=0.0)
    assert torch.allclose(wt.grad_weights(c)["forget"], WGA(alpha=alpha).grad_weights(c)["forget"],
                          rtol=1e-12, atol=1e-300)
    assert abs(val(wt.loss(c)) - val(WGA(alpha=alpha).loss(c))) < 1e-12 * (1 + abs(val(wt.loss(c))))


def test_satimp_reduces_to_wga_and_ga(S):
    """β2 = 0 is WGA(α = β1); β1 = β2 = 0 is GA."""
    c = ctx1(S)
    s = get_objective("satimp", beta1=0.8, beta2=0.0)
    assert torch.allclose(s.grad_weights(c)["forget"], WGA(alpha=0.8).grad_weights(c)["forget"], rtol=1e-13, atol=0)
    assert abs(val(s.loss(c)) - val(WGA(alpha=0.8).loss(c))) < 1e-13
    s0 = get_objective("satimp", beta1=0.0, beta2=0.0)
    assert torch.equal(s0.grad_weights(c)["forget"], GA().grad_weights(c)["forget"])


@pytest.mark.parametrize("reg", ["kl", "rr"])
def test_kl_and_rr_vanish_at_reference(S, reg):
    """KL and RR are 0 with zero gradient at θ_ref (and positive with a gradient at θ ≠ θ_ref)."""
    base = "rmu" if reg == "rr" else "ga"
    obj = get_objective(f"{base}+{reg}")
    assert obj.needs_ref and obj.needs_retain
    r0 = obj.terms(ctx0(S))[reg]
    assert abs(val(r0)) < 1e-14
    g0 = flat_grad(S.model0, r0)
    g_ref_scale = flat_grad(S.model0, GA().loss(ctx0(S)))
    assert val(g0.norm()) <= 1e-12 * val(g_ref_scale.norm())
    r1 = obj.terms(ctx1(S))[reg]
    assert val(r1) > 1e-8
    assert val(flat_grad(S.model1, r1).norm()) > 0


def _param_layer(name):
    """Which block a parameter belongs to: -1 embedding, i for model.layers.i, 'norm', 'lm_head'."""
    if "embed_tokens" in name:
        return -1
    if ".layers." in name:
        return int(name.split(".layers.")[1].split(".")[0])
    return "norm" if name.startswith("model.norm") else "lm_head"


@pytest.mark.parametrize("layer", [0, 2, 4])
def test_rmu_locality(R, layer):
    """every parameter after hidden_states[layer] gets exactly zero gradient (later blocks, final norm,
    lm_head); earlier ones do not. hidden_states[L] is the output of block L-1; the last one is after the norm."""
    assert R.n_layers == 4
    obj = get_objective("rmu", layer=layer, c=2.0)
    loss = obj.loss(ctx1(R))
    names = [n for n, _ in R.model1.named_parameters()]
    grads = torch.autograd.grad(loss, list(R.model1.parameters()), allow_unused=True)
    for n, g in zip(names, grads):
        where = _param_layer(n)
        g = torch.zeros(1) if g is None else g
        after = (where == "lm_head" or (where == "norm" and layer < R.n_layers)
                 or (isinstance(where, int) and where >= layer))
        if after:
            assert val(g.abs().max()) == 0.0, f"{n} gets gradient from RMU at layer {layer}"
    emb = dict(zip(names, grads))["model.embed_tokens.weight"]
    assert val(emb.abs().max()) > 0
    if layer == R.n_layers:
        assert val(dict(zip(names, grads))["model.norm.weight"].abs().max()) > 0


def test_rmu_layer_validation_and_target(R):
    with pytest.raises(ValueError, match="layer"):
        get_objective("rmu", layer=R.n_layers + 1).loss(ctx1(R))
    with pytest.raises(ValueError, match="layer"):
        get_objective("rmu", layer=-1)
    d = R.model0.config.hidden_size
    a, b = get_objective("rmu", c=3.0), get_objective("rmu", c=3.0)
    assert torch.equal(a.target_vector(d), b.target_vector(d))           # same seed, same target
    assert torch.equal(a.u(d), a.u(d)) and a.u(d) is not a.u(d)          # a pure function of (seed, d): not kept
    assert torch.equal(a.u(d), torch.rand(d, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert not torch.equal(a.u(d), get_objective("rmu", seed=1).u(d))
    unit = get_objective("rmu", c=3.0, target="unit").target_vector(d)
    assert abs(val(unit.norm()) - 3.0) < 1e-12
    obj = get_objective("rmu")
    before = repr(obj.__dict__)
    obj.loss(ctx1(R))
    assert repr(obj.__dict__) == before                                  # the loss does not change its objective
    mid = paper_layer(R.model0)          # the middle third's last hidden state: 4 of 6 (tiny), 2 of 4
    assert obj.layer_for(R.model0) == mid and obj.hparams["layer"] is None
    obj.bind(R.model0)                   # bound once, explicitly, before a run (gl.run does it)
    assert obj.hparams["layer"] == mid and obj.hidden_layers == (mid,)


def test_regularised_losses_do_not_change_their_objective(R):
    """``loss`` on a regularised objective (RMU + RR, GA + KL + RR) leaves it as it was, and gives the value of the
    same objective bound explicitly before (the layers it resolves on its own are the bound ones)."""
    for name in ("rmu+rr", "ga+kl+rr"):
        free, bound = get_objective(name), get_objective(name).bind(R.model0)
        before = repr(free.__dict__) + repr({k: g.__dict__ for k, g in free.regs.items()})
        a, b = free.loss(ctx1(R)), bound.loss(ctx1(R))
        assert repr(free.__dict__) + repr({k: g.__dict__ for k, g in free.regs.items()}) == before, name
        assert val(a) == val(b), name


def test_po_with_original_answer_is_the_forget_risk(S):
    """with the IDK answer replaced by the original one, PO is the forget risk (value and gradient)."""
    same = {k: v for k, v in S.forget.items() if k != "idk"}
    same["idk"] = {k: v for k, v in S.forget.items() if k != "idk"}
    po = get_objective("po")
    L = po.loss(ctx1(S, forget=same))
    Rk = nll.risk_from(nll.forward(S.model1, S.forget))
    assert abs(val(L) - val(Rk)) < 1e-12
    assert_close(flat_grad(S.model1, L), flat_grad(S.model1, Rk), 1e-10, "PO(original answer) vs risk")


def test_idkdpo_at_reference(S):
    """L = (2/β) ln 2, gradient (1/B) Σ [∇log π(y_l) − ∇log π(y_w)]."""
    beta = 0.1
    obj = get_objective("idkdpo", beta=beta)
    c = ctx0(S)
    L = obj.loss(c)
    assert abs(val(L) - 2 / beta * math.log(2)) < 1e-10
    g = flat_grad(S.model0, L)
    c2 = ctx0(S)
    target = (c2.fwd("forget").seq_logp - c2.fwd("idk").seq_logp).mean()
    assert_close(g, flat_grad(S.model0, target), 1e-9, "IdkDPO at θ_ref")


def test_undial_at_reference(R):
    """at θ_ref (answer positions) UNDIAL is token-weighted GA with w = pk/(1 − pk), k = 1 − e^{−β};
    β = 0 gives zero gradient."""
    beta = 1.5
    k = 1 - math.exp(-beta)
    g = flat_grad(R.model0, get_objective("undial", beta=beta).loss(ctx0(R)))
    c = ctx0(R)
    f = c.fwd()
    p = f.logp.detach().exp()
    w = p * k / (1 - p * k) * f.mask / f.mask.sum()
    assert_close(g, flat_grad(R.model0, (w * f.logp).sum()), 1e-9, "UNDIAL at θ_ref")
    g0 = flat_grad(R.model0, get_objective("undial", beta=0.0).loss(ctx0(R)))
    assert val(g0.norm()) < 1e-12 * val(g.norm()) / k


def test_simnpo_sequence_weights(S):
    """SimNPO's weight is (1/B)(2/|y_b|) p̄^β/(p̄^β + e^{−βδ}) on ∇log π(y_b) (gradient: test 1)."""
    beta, delta = 1.0, 1.0
    c = ctx1(S)
    f = c.fwd()
    L = f.mask.sum(1)
    pbar = torch.exp(f.seq_logp.detach() / L)
    B = L.shape[0]
    W = 2 / (B * L) * pbar ** beta / (pbar ** beta + math.exp(-beta * delta))
    got = get_objective("simnpo", beta=beta, delta=delta).grad_weights(c)["forget"]
    assert torch.allclose(got, W[:, None] * f.mask, rtol=1e-12, atol=1e-300)


# ----------------------------------------------------------------------------------------------------------------
# 3. closed forms on hand-computed numbers (no model)
# ----------------------------------------------------------------------------------------------------------------
def test_closed_forms_on_known_logprobs():
    lp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]], dtype=torch.float64)
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    ref = torch.tensor([[-0.5, -1.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    idk = torch.tensor([[-3.0, -1.0], [-2.0, 0.0]], dtype=torch.float64)
    idk_m = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    idk_ref = torch.tensor([[-2.0, -1.5], [-1.0, 0.0]], dtype=torch.float64)
    ctx = Context.from_logp({"forget": lp, "idk": idk}, mask={"forget": m, "idk": idk_m},
                            ref_logp={"forget": ref, "idk": idk_ref})
    sp = lambda x: math.log1p(math.exp(x))                        # noqa: E731  softplus
    lsig = lambda x: -sp(-x)                                       # noqa: E731  log σ
    # GA: (−1 − 2 − 0.5)/3
    assert abs(val(GA().loss(ctx)) - (-3.5 / 3)) < 1e-15
    # WGA α=1: (e^-1·(−1) + e^-2·(−2) + e^-.5·(−.5))/3
    wga = (math.exp(-1) * -1 + math.exp(-2) * -2 + math.exp(-0.5) * -0.5) / 3
    assert abs(val(WGA(alpha=1.0).loss(ctx)) - wga) < 1e-15
    # NPO β=1: r = (−3 − (−1.5), −0.5 − (−1)) = (−1.5, 0.5); L = 2·mean(log(1 + e^{r}))
    assert abs(val(NPO(beta=1.0).loss(ctx)) - (sp(-1.5) + sp(0.5))) < 1e-14
    assert abs(val(NPO(beta=2.0).loss(ctx)) - 0.5 * (sp(-3.0) + sp(1.0))) < 1e-14
    W = NPO(beta=1.0).seq_weight(ctx)
    assert torch.allclose(W, torch.tensor([2 / (1 + math.exp(1.5)), 2 / (1 + math.exp(-0.5))],
                                          dtype=torch.float64), rtol=1e-14)
    # SimNPO β=2, δ=1: S̄ = (1.5, 0.5); L = −(2/2)·mean(log σ(1), log σ(−1)) = mean(sp(−1), sp(1))
    assert abs(val(get_objective("simnpo", beta=2.0, delta=1.0).loss(ctx)) - 0.5 * (sp(-1) + sp(1))) < 1e-14
    # IdkDPO β=1: r_w = (−4 − (−3.5), −2 − (−1)) = (−0.5, −1); r_l = (−1.5, 0.5)
    # L = −2·mean(log σ(r_w − r_l)) = −(log σ(1) + log σ(−1.5))
    assert abs(val(get_objective("idkdpo", beta=1.0).loss(ctx)) + (lsig(1.0) + lsig(-1.5))) < 1e-14
    # DPO weights 2σ(β(r_l − r_w)) on y_l, minus the same on y_w, each /B
    gw = get_objective("idkdpo", beta=1.0).grad_weights(ctx)
    w0 = 2 / (1 + math.exp(1.0)) / 2
    assert abs(val(gw["forget"][0, 0]) - w0) < 1e-15 and abs(val(gw["idk"][0, 1]) + w0) < 1e-15
    # TNPO β=1, ε=0: w = 2p/(p + p_ref); L = Σ w log p / 3
    p, pr = [math.exp(-1), math.exp(-2), math.exp(-0.5)], [math.exp(-0.5), math.exp(-1), math.exp(-1)]
    tn = sum(2 * a / (a + b) * math.log(a) for a, b in zip(p, pr)) / 3
    assert abs(val(get_objective("tnpo", beta=1.0, eps=0.0).loss(ctx)) - tn) < 1e-14
    # PO: token-mean NLL of the refusal: (3 + 1 + 2)/3
    assert abs(val(get_objective("po").loss(ctx)) - 2.0) < 1e-15


# ----------------------------------------------------------------------------------------------------------------
# 4. every loss value re-derived from logits with plain torch ops (two-instance batch, θ ≠ θ_ref)
# ----------------------------------------------------------------------------------------------------------------
def _manual(model, batch):
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    logits = out.logits[:, :-1]
    tgt = batch["labels"][:, 1:]
    mask = (tgt != -100).to(logits.dtype)
    lsm = torch.log_softmax(logits, -1)
    logp = torch.gather(lsm, -1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    return dict(logits=logits, lsm=lsm, logp=logp, p=logp.exp(), mask=mask, hs=out.hidden_states, tgt=tgt,
                att=batch["attention_mask"].to(logits.dtype))


def _expected_values(S):
    F2, R2 = S.forget2, S.retain2
    a, a0 = _manual(S.model1, F2), _manual(S.model0, F2)
    w, w0 = _manual(S.model1, F2["idk"]), _manual(S.model0, F2["idk"])
    r, r0 = _manual(S.model1, R2), _manual(S.model0, R2)
    N, m, lp, p = a["mask"].sum(), a["mask"], a["logp"], a["p"]
    p0 = a0["p"]
    B, V = m.shape[0], a["logits"].shape[-1]
    ga = lp.sum() / N
    nll_r = -r["logp"].sum() / r["mask"].sum()
    seq, seq0 = lp.sum(1), a0["logp"].sum(1)
    E = {}
    E["ga", ()] = ga
    E["gd", (("lam", 0.7),)] = ga + 0.7 * nll_r
    E["wga", (("alpha", 0.5),)] = (p ** 0.5 * lp).sum() / N
    E["npo", (("beta", 0.5),)] = (2 / 0.5 * torch.log1p(torch.exp(0.5 * (seq - seq0)))).mean()
    tn = 2 * p ** 1.5 / (p ** 1.5 + p0 ** 1.5 + 1e-5)
    E["tnpo", (("beta", 1.5),)] = (tn * lp * m).sum() / N
    E["wtnpo", (("alpha", 0.5), ("beta", 1.5))] = (p ** 0.5 * tn * lp * m).sum() / N
    E["satimp", (("beta1", 0.5), ("beta2", 2.0))] = (p ** 0.5 * (1 - p) ** 2 * lp * m).sum() / N
    E["po", ()] = -w["logp"].sum() / w["mask"].sum()
    r_l, r_w = seq - seq0, w["logp"].sum(1) - w0["logp"].sum(1)
    E["idkdpo", (("beta", 0.5),)] = (-(2 / 0.5) * torch.log(torch.sigmoid(0.5 * (r_w - r_l)))).mean()
    sbar = -seq / m.sum(1)
    E["simnpo", (("beta", 1.0), ("delta", 2.0))] = (-2.0 * torch.log(torch.sigmoid(1.0 * (sbar - 2.0)))).mean()
    # RMU: GE form, pooled over positions that predict an answer token
    d = S.model1.config.hidden_size
    u = torch.rand(d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = a["hs"][S.mid][:, :-1]
    E["rmu", (("c", 3.0),)] = ((((h - 3.0 * u) ** 2).mean(-1)) * m).sum() / N
    E["rmu", (("c", 3.0), ("target", "unit"))] = ((((h - 3.0 * u / u.norm()) ** 2).mean(-1)) * m).sum() / N
    # UNDIAL: q = softmax(teacher logits − β e_y)
    for positions in ("answer", "all"):
        idx = a["tgt"].clamp(min=0) if positions == "answer" else torch.where(a["tgt"] == -100, V - 100, a["tgt"])
        z = a0["logits"] - 3.0 * torch.nn.functional.one_hot(idx, V).to(a0["logits"].dtype)
        ce = -(torch.softmax(z, -1) * a["lsm"]).sum(-1)
        E["undial", (("beta", 3.0), ("positions", positions))] = \
            (ce * m).sum() / N if positions == "answer" else ce.mean()
    # CE-U: drop the first answer token; q = softmax of detached logits with the true token removed
    keep = m * (m.cumsum(1) > 1).to(m.dtype)
    zq = a["logits"].scatter(-1, a["tgt"].clamp(min=0).unsqueeze(-1), float("-inf"))
    q = torch.softmax(zq, -1)
    ce = -(q * torch.where(q > 0, a["lsm"], torch.zeros_like(a["lsm"]))).sum(-1)
    E["ce-u", ()] = (ce * keep).sum() / keep.sum()
    # KL(π_ref ‖ π_θ) on retain, all shifted positions / answer positions
    kl = (r0["lsm"].exp() * (r0["lsm"] - r["lsm"])).sum(-1)
    E["ga+kl", ()] = ga + kl.mean()
    E["kl", (("kl_positions", "answer"), ("lam", 2.0))] = ga + 2.0 * (kl * r["mask"]).sum() / r["mask"].sum()
    E["npo+kl", (("beta", 0.5),)] = E["npo", (("beta", 0.5),)] + kl.mean()
    # RR: attended positions, ‖Δh‖²/d
    dh = ((r["hs"][S.mid] - r0["hs"][S.mid]) ** 2).mean(-1)
    rr = (dh * r["att"]).sum() / r["att"].sum()
    E["wga+rr", (("alpha", 0.5), ("lam", 0.3))] = E["wga", (("alpha", 0.5),)] + 0.3 * rr
    return E


def test_loss_values_rederived_from_logits(S):
    with torch.no_grad():
        E = _expected_values(S)
        c = Context(S.model1, S.forget2, S.retain2, S.ref2)
        checked = set()
        for (name, hp), expect in E.items():
            got = get_objective(name, **dict(hp)).loss(c)
            assert abs(val(got) - val(expect)) <= 1e-10 * (1 + abs(val(expect))), \
                f"{name} {dict(hp)}: library {val(got)!r} vs re-derived {val(expect)!r}"
            checked.add(name.split("+")[0])
    missing = {"ga", "gd", "wga", "npo", "tnpo", "wtnpo", "satimp", "po", "idkdpo", "simnpo", "rmu", "undial",
               "ce-u", "kl"} - checked
    assert not missing


# ----------------------------------------------------------------------------------------------------------------
# 5. decompositions, views, summaries
# ----------------------------------------------------------------------------------------------------------------
ALL = ["ga", "gd", "kl", "npo", "po", "rmu", "wga", "tnpo", "wtnpo", "idkdpo", "simnpo", "undial", "satimp", "ce-u",
       "npo+kl", "wga+gd", "rmu+rr", "undial+kl"]


def test_terms_sum_to_forget_part_and_views(R):
    with torch.no_grad():
        for name in ALL:
            obj = get_objective(name)
            c = ctx1(R)
            parts = obj.terms(c)
            regs = {name.split("+")[-1]} if "+" in name else ({name} if name in ("gd", "kl") else set())
            assert set(parts) == {"forget"} | regs
            fp = val(parts["forget"])
            ft, tt = obj.instance_terms(c), obj.token_terms(c)
            assert ft is not None and ft.shape == (3,), name
            assert abs(val(ft.sum()) - fp) <= 1e-12 * (1 + abs(fp)), name
            if tt is not None:
                assert tt.shape == c.fwd().logp.shape
                assert abs(val(tt.sum()) - fp) <= 1e-12 * (1 + abs(fp)), name
            view = obj.weight_view(c)
            assert len(view) == int(c.fwd().mask.sum())
            assert {"id", "instance", "position", "logp", "p", "inverse_confidence", "weight",
                    "seq_weight"} <= set(view)
            s = obj.summary(c)
            assert abs(s["loss"] - val(obj.loss(c))) < 1e-12 * (1 + abs(s["loss"]))
            assert {"loss", "mean_weight", "mean_inverse_confidence"} <= set(s)
    c = ctx1(R)
    v = GA().weight_view(c)
    assert (v["weight"] == 1).all() and v["seq_weight"].isna().all()
    assert torch.allclose(torch.tensor(v["inverse_confidence"].values), 1 / torch.tensor(v["p"].values))
    assert torch.allclose(torch.tensor(v["logp"].values).exp(), torch.tensor(v["p"].values), rtol=1e-12)
    v = WGA(alpha=0.5).weight_view(c)
    assert torch.allclose(torch.tensor(v["weight"].values), torch.tensor(v["p"].values) ** 0.5, rtol=1e-12)
    v = NPO(beta=1.0).weight_view(c)
    assert (v["weight"] == v["seq_weight"]).all() and v.groupby("instance")["weight"].nunique().eq(1).all()
    assert get_objective("po").weight_view(c)["weight"].isna().all()
    gw = get_objective("gd", lam=0.5).grad_weights(c)
    rm = c.fwd("retain").mask
    assert torch.allclose(gw["retain"], -0.5 * rm / rm.sum())


# ----------------------------------------------------------------------------------------------------------------
# 6. registry and user objectives
# ----------------------------------------------------------------------------------------------------------------
def test_registry_listing_and_aliases():
    df = list_objectives()
    for col in ("name", "equation", "needs_ref", "needs_retain", "hparams"):
        assert col in df
    names = set(df["name"])
    for n in ("ga", "gd", "npo", "po", "rmu", "wga", "tnpo", "wtnpo", "idkdpo", "simnpo", "undial", "satimp", "kl"):
        assert n in names and n in OBJECTIVES
    for alias in ("idk", "ga+gd", "ga+kl"):
        assert df.set_index("name").loc[alias, "kind"] == "alias"
    assert (df[df.kind == "objective"].weight != "").all() and df[df.kind == "objective"].notebook.notna().all()
    assert type(get_objective("idk")) is type(get_objective("po"))
    assert get_objective("ga+gd").name == "gd" and get_objective("ga+kl").name == "kl"
    assert get_objective("NPO+KL").name == "npo+kl"
    assert get_objective("npo").hparams == {"beta": 0.1}
    assert isinstance(get_objective("rmu+rr", c=5.0, lam=2.0, rr_layer=1), Regularised)
    # regulariser names are disjoint from objective names; the old ones stay as aliases after a "+"
    from geffect_lite.objectives import REGULARISER_ALIASES, REGULARISERS
    assert set(REGULARISERS) == {"retain_nll", "retain_kl", "rr"} and not set(REGULARISERS) & set(OBJECTIVES)
    assert REGULARISER_ALIASES == {"gd": "retain_nll", "kl": "retain_kl"}
    for new, old, kw in (("npo+retain_kl", "npo+kl", {}), ("wga+retain_nll", "wga+gd", {}),
                         ("ga+retain_nll+retain_kl", "gd+kl", {"lam_gd": 0.5})):
        a, b = get_objective(new, **kw), get_objective(old, **kw)
        assert (a.name, a.hparams, tuple(a.regs)) == (b.name, b.hparams, tuple(b.regs)), (new, old)
    with pytest.raises(KeyError, match="retain_nll, retain_kl, rr"):
        get_objective("npo+kl+retain_kl")                    # the same regulariser twice, once by its alias
    with pytest.raises(ValueError, match="regulariser name"):
        register_objective("retain_kl", lambda out, batch: out.logp.sum())


def test_user_objective_works_and_composes(R):
    @register_objective("test-user-ga")
    def user_ga(out, batch):
        """L = (1/N) Σ log p, per instance"""
        return (out.logp * out.mask).sum(1) / out.mask.sum()

    register_objective("test-user-npo", lambda out, batch, ref: npo_loss(out.seq_logp, (ref * out.mask).sum(1), 1.0)
                       / out.logp.shape[0], needs_ref=True)
    try:
        assert "test-user-ga" in set(list_objectives()["name"])
        obj = get_objective("test-user-ga")
        c = ctx1(R)
        assert abs(val(obj.loss(c)) - val(GA().loss(c))) < 1e-15
        assert torch.allclose(obj.instance_terms(c), GA().instance_terms(c))
        both = get_objective("test-user-ga+kl", lam=2.0)
        assert both.needs_ref and both.needs_retain
        c = ctx1(R)
        parts = both.terms(c)
        assert abs(val(parts["kl"]) - 2 * val(get_objective("ga+kl").terms(ctx1(R))["kl"])) < 1e-14
        assert val(parts["kl"]) > 0
        assert_close(flat_grad(R.model1, parts["forget"]), flat_grad(R.model1, GA().loss(ctx1(R))), 1e-12, "user")
        assert abs(val(get_objective("test-user-npo").loss(ctx1(R))) - val(NPO(beta=1.0).loss(ctx1(R)))) < 1e-13
        with pytest.raises(ValueError, match="θ_ref"):
            get_objective("test-user-npo").loss(Context(R.model1, R.forget))
        with pytest.raises(ValueError, match="built-in"):
            register_objective("ga", user_ga)
        with pytest.raises(ValueError):
            register_objective("a+b", user_ga)
        with pytest.raises(TypeError, match="no hyper-parameter"):
            get_objective("test-user-ga", beta=1.0)
    finally:
        unregister_objective("test-user-ga")
        unregister_objective("test-user-npo")
    assert "test-user-ga" not in OBJECTIVES and OBJECTIVES["ga"] is GA


# ----------------------------------------------------------------------------------------------------------------
# 7. bad input
# ----------------------------------------------------------------------------------------------------------------
def test_bad_names_and_hyperparameters():
    with pytest.raises(KeyError) as e:
        get_objective("npoo")
    for n in ("ga", "npo", "wga", "tnpo", "wtnpo", "rmu", "simnpo", "idkdpo", "undial", "satimp", "po"):
        assert n in str(e.value)
    with pytest.raises(KeyError):
        get_objective("npo+foo")
    with pytest.raises(TypeError, match="beta"):
        get_objective("npo", alpha=1.0)
    with pytest.raises(TypeError, match="lam"):
        get_objective("npo+kl", gamma=1.0)
    for name in ("npo", "tnpo", "wtnpo", "simnpo", "idkdpo"):
        for bad in (0.0, -1.0):
            with pytest.raises(ValueError, match="beta"):
                get_objective(name, beta=bad)
    with pytest.raises(ValueError, match="beta"):
        get_objective("undial", beta=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        get_objective("wga", alpha=-0.5)
    with pytest.raises(ValueError, match="lam"):
        get_objective("npo+kl", lam=-1.0)
    with pytest.raises(ValueError, match="lam"):
        get_objective("gd", lam=-1.0)
    with pytest.raises(ValueError, match="c "):
        get_objective("rmu", c=0.0)
    with pytest.raises(ValueError, match="eps"):
        get_objective("tnpo", eps=-1e-5)
    with pytest.raises(ValueError, match="target"):
        get_objective("rmu", target="sphere")
    with pytest.raises(ValueError, match="kl_positions"):
        get_objective("ga+kl", kl_positions="some")
    both = get_objective("gd+kl", lam_gd=2.0)                # = ga+gd+kl: one λ per regulariser
    assert both.name == "ga+gd+kl" and both.hparams["lam_gd"] == 2.0 and both.hparams["lam_kl"] == 1.0
    with pytest.raises(TypeError, match="lam_gd, lam_kl"):
        get_objective("ga+gd+kl", lam=2.0)
    with pytest.raises(KeyError, match="at most once"):
        get_objective("ga+kl+kl")
    with pytest.raises(KeyError, match="valid names"):
        get_objective("ga+kl+foo")


def test_missing_reference_retain_idk(R):
    for name in ("npo", "tnpo", "wtnpo", "idkdpo", "undial"):
        with pytest.raises(ValueError, match=rf"{name}.*reference_for"):
            get_objective(name).loss(Context(R.model1, R.forget, R.retain))
    with pytest.raises(ValueError, match="ga\\+kl|kl"):
        get_objective("ga+kl").loss(Context(R.model1, R.forget, R.retain))
    with pytest.raises(ValueError, match="retain"):
        get_objective("gd").loss(Context(R.model1, R.forget))
    no_idk = {k: v for k, v in R.forget.items() if k != "idk"}
    with pytest.raises(KeyError, match="idk=True"):
        get_objective("po").loss(Context(R.model1, no_idk))


def test_fully_masked_batch_raises_empty_batch_error(R):
    def masked(b):
        out = dict(b)
        out["labels"] = torch.full_like(b["labels"], -100)
        if "idk" in b:
            out["idk"] = masked(b["idk"])
        return out
    F0 = masked(R.forget)
    for name in ("ga", "wga", "npo", "simnpo", "po", "idkdpo", "rmu", "undial", "ce-u", "satimp", "gd", "npo+kl"):
        with pytest.raises(EmptyBatchError):
            get_objective(name).loss(Context(R.model1, F0, R.retain, R.ref))
    with pytest.raises(EmptyBatchError):
        Context.from_logp(torch.zeros(2, 3), mask=torch.zeros(2, 3))
    with pytest.raises(NonFiniteError):
        GA().loss(Context.from_logp(torch.tensor([[float("nan"), -1.0]])))


# ----------------------------------------------------------------------------------------------------------------
# 8. Reference
# ----------------------------------------------------------------------------------------------------------------
def test_reference_cache_and_lookups(R):
    ref = R.ref
    with torch.no_grad():
        f = nll.forward(R.model0, R.forget, hidden=True)
        fi = nll.forward(R.model0, R.forget["idk"])
    assert torch.equal(ref.logp(R.forget), f.logp) and torch.equal(ref.logp(R.forget["idk"]), fi.logp)
    assert torch.allclose(ref.full_logprobs(R.forget), torch.log_softmax(f.logits, -1))
    assert torch.equal(ref.hidden(R.forget, R.mid), f.hidden_states[R.mid])
    assert not ref.logp(R.forget).requires_grad
    d = ref.describe()
    assert d["batches"] == 3 and d["total_bytes"] == ref.memory_bytes() > 0
    B, T = R.retain["input_ids"].shape
    assert ref.full_logprobs(R.retain).numel() == B * (T - 1) * R.model0.config.vocab_size
    other = collate([dict(question="Who?", answer="Nobody.")], R.tok)
    with pytest.raises(KeyError, match="not cached"):
        ref.logp(other)
    lean = Reference.from_model(R.model0, R.retain)
    with pytest.raises(KeyError, match="full_logprobs=True"):
        lean.full_logprobs(R.retain)
    with pytest.raises(KeyError, match="hidden_layers"):
        lean.hidden(R.retain, 1)
    with pytest.raises(ValueError, match="bytes.*keep_model=True"):
        Reference.from_model(R.model0, [R.forget, R.retain], full_logprobs=True, max_bytes=10_000)
    with pytest.raises(ValueError, match="hidden_layers"):
        Reference.from_model(R.model0, R.retain, hidden_layers=(R.n_layers + 1,))
    req = reference_for(R.model0, get_objective("rmu+rr"), R.forget, R.retain).describe()
    assert req["hidden_layers"] == (R.mid,) and not req["full_logprobs"]
    assert reference_for(R.model0, get_objective("npo+kl"), R.retain).describe()["full_logprobs"]


def test_reference_keep_model(R):
    model = copy.deepcopy(R.model0)
    ref = Reference.from_model(model, [R.forget], full_logprobs=True, keep_model=True)
    assert ref.describe()["model_bytes"] > 0 and ref.describe()["full_logprobs_bytes"] == 0
    assert all(not p.requires_grad for p in ref.model.parameters())
    with torch.no_grad():
        for p in model.parameters():     # unlearning changes the model; θ_ref must not move
            p.add_(0.01)
        expect = nll.forward(R.model0, R.retain, hidden=True)
    assert torch.equal(ref.logp(R.retain), expect.logp)                      # computed on demand
    assert torch.allclose(ref.full_logprobs(R.forget), ref.full_logprobs(R.forget))
    assert torch.equal(ref.hidden(R.retain, 1), expect.hidden_states[1])
    assert val(get_objective("ga+kl").terms(Context(R.model0, R.forget, R.retain, ref))["kl"]) == 0.0


def test_context_caching_and_hidden_recompute(R):
    c = Context(R.model1, R.forget, R.retain, R.ref)
    f = c.fwd()
    assert c.fwd() is f and f.hidden_states is None
    fh = c.fwd(hidden=True)
    assert fh.hidden_states is not None and c.fwd() is fh and torch.equal(fh.logp, f.logp)
    assert c.fwd("idk").logp.shape[0] == f.logp.shape[0]
    assert torch.equal(c.ref_logp("idk"), R.ref.logp(R.forget["idk"]))
    with pytest.raises(ValueError, match="unknown batch"):
        c.fwd("paraphrase")
    c.clear()
    assert c.fwd() is not fh
