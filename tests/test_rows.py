"""The instance views by one backward pass (``engine.rows``) against forward mode and against plain per-instance
autograd: moved_b = ⟨∇S_b, ∇L⟩ and contribution_b = ⟨∇R(D), ∇L_b⟩, every instance, both risk sets. fp64."""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import geffect_lite as gl  # noqa: E402
from geffect_lite import nll  # noqa: E402
from geffect_lite.context import Context  # noqa: E402
from geffect_lite.engine import geffect  # noqa: E402
from geffect_lite.engine.dots import named_params  # noqa: E402
from geffect_lite.engine.routes import measure  # noqa: E402
from geffect_lite.engine.rows import CallRecorder, row_dots  # noqa: E402
from geffect_lite.engine.views import instance_views  # noqa: E402
from geffect_lite.objectives import get_objective, register_objective, unregister_objective  # noqa: E402


def _setup(name):
    m, tok = gl.load_model(name)
    data = gl.load_data()
    return (m.double(), gl.collate(data.split("forget05")[:3], tok, idk=True),
            gl.collate(data.split("retain_pool_05")[:3], tok))


def _grad(scalar, params, retain_graph=False):
    return torch.autograd.grad(scalar, params, retain_graph=retain_graph, allow_unused=True)


def _dot(a, b):
    return float(sum((x * y).sum() for x, y in zip(a, b) if x is not None and y is not None))


def _plain_views(m, obj, forget, retain, ref):
    """Per-instance autograd, one instance at a time: {(risk_set, view, instance): value}."""
    _, params = named_params(m)
    gL = _grad(obj.loss(Context(m, forget, retain, ref)), params)
    gR = {rs: _grad(nll.risk(m, b), params) for rs, b in (("forget", forget), ("retain", retain))}
    out = {}
    for rs, b in (("forget", forget), ("retain", retain)):
        S = nll.forward(m, b).token_nll.sum(1)                           # S_b: instance b's summed NLL
        for i in range(S.shape[0]):
            n_i = int((b["labels"][i, 1:] != -100).sum())
            out[rs, "moved", i] = _dot(_grad(S[i], params, True), gL) / n_i   # token_mean: the mean over tokens
    terms = obj.instance_terms(Context(m, forget, retain, ref))
    for i in range(terms.shape[0]):
        g = _grad(terms[i], params, True)
        for rs in ("forget", "retain"):
            out[rs, "contribution", i] = _dot(gR[rs], g)
    return out


CASES = ([("tiny", o) for o in ("npo", "ga+kl")] + [("random-gpt2", o) for o in ("ga", "npo", "po", "rmu", "ga+kl")]
         + [("random-qwen2", o) for o in ("po", "rmu")])          # GPT-2 and Qwen2: tied embeddings


@pytest.mark.parametrize("name,objective", CASES)
def test_rows_route_equals_forward_mode_and_plain_autograd(name, objective):
    m, forget, retain = _setup(name)
    obj = get_objective(objective)
    ref = gl.reference_for(m, obj, forget, retain)
    a = geffect(m, obj, forget, retain, ref, instances=True, groups=False)
    b = geffect(m, obj, forget, retain, ref, instances=True, groups=False, method="jvp")
    assert a.info["method"] == "rows" and b.info["method"] == "jvp" and a.tokens is None
    key = ["risk_set", "view", "instance"]
    va, vb = a.instances.sort_values(key), b.instances.sort_values(key)
    assert len(va) == len(vb) == 12                       # 3 + 3 moved, 2 × 3 contribution
    scale = vb.value.abs().max()
    assert (va.value.to_numpy() - vb.value.to_numpy()).__abs__().max() <= 1e-6 * scale
    # the views came from the measurement's own backwards; the stand-alone route (its own backwards) agrees
    meas = measure(m, obj, forget, retain, ref, dots="formed", keep_grad=True, keep_risk_grads=True, keep_rows=True)
    assert all(meas.capture.caught.get(p) is not None for p in ("moved:forget", "moved:retain", "contribution"))
    own, _ = instance_views(m, obj, forget, retain, ref, meas.grad, meas.risk_grads, tokens=False)
    assert own.attrs["method"] == "rows"
    vo = own.sort_values(key)
    assert (vo.value.to_numpy() - va.value.to_numpy()).__abs__().max() <= 1e-6 * scale   # RMSNorm: fp32 inside
    plain = _plain_views(m, obj, forget, retain, ref)
    for r in va.itertuples():
        assert r.value == pytest.approx(plain[r.risk_set, r.view, r.instance], abs=1e-6 * scale), r


def test_rows_route_declines_what_it_cannot_do_exactly():
    m, forget, retain = _setup("random-llama")

    def mean_shift(out, batch):      # instance b's term reads every row: the rows route must not be taken
        s = out.seq_logp
        return s - s.mean()
    register_objective("test-row-mixer", mean_shift)
    try:
        ge = geffect(m, "test-row-mixer", forget, retain, instances=True, groups=False)
        assert ge.info["method"] == "jvp"
        with pytest.raises(ValueError, match="not exact"):
            geffect(m, "test-row-mixer", forget, retain, instances=True, groups=False, method="rows")
    finally:
        unregister_objective("test-row-mixer")
    with pytest.raises(ValueError, match="per-instance views only"):
        geffect(m, "ga", forget, retain, tokens=True, method="rows")


def test_row_dots_refuses_a_weight_used_outside_its_module():
    """A weight also used by F.linear outside its module: its per-row gradient is not all at recorded outputs."""
    torch.manual_seed(0)
    emb, lin = torch.nn.Embedding(7, 4).double(), torch.nn.Linear(4, 4).double()
    params = [emb.weight, lin.weight, lin.bias]
    model = torch.nn.ModuleList([emb, lin])
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    V = [torch.randn_like(p) for p in params]
    for outside in (False, True):
        rec = CallRecorder(model, params)
        with rec:
            h = lin(emb(ids))
            if outside:
                h = h + torch.nn.functional.linear(h, lin.weight)
            s = (h ** 2).sum((1, 2))                                         # [2] per-row scalars
        got = row_dots(rec.calls, s.sum(), params, [V], 2, (None,), retain_graph=True)
        if outside:
            assert got is None
            continue
        want = [_dot(_grad(s[i], params, True), V) for i in range(2)]
        assert torch.allclose(got[0], torch.tensor(want, dtype=torch.float64), rtol=1e-12)


def test_a_run_with_instance_views_frees_its_capture():
    """The capture's gradient hooks live on the autograd graph, which Python's collector cannot see: a hook that
    held the capture (or a recorded call) kept every recorded output, and with it the run's activations, alive for
    good (≈ 170 MB per 2-step run on tiny, GBs on SmolLM2). After a run, no capture may survive."""
    import gc
    from geffect_lite.engine.rows import Capture
    m, forget, retain = _setup("tiny")
    gl.run(m.float(), "ga", forget, retain, steps=2, lr=1e-6, instances=True, progress=False)
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, Capture)]
    assert not alive, f"{len(alive)} Capture object(s) still alive after the run: the run leaks its graph"


class _Scaled(torch.nn.Module):
    """y = x ⊙ f(w): f(w) = w (linear in w), 1 + w (affine: Gemma's RMSNorm), w² (curved: forward mode)."""

    def __init__(self, kind):
        super().__init__()
        self.kind, self.weight = kind, torch.nn.Parameter(torch.randn(4, dtype=torch.float64))

    def forward(self, x):
        f = {"linear": self.weight, "affine": 1 + self.weight, "curved": self.weight ** 2}[self.kind]
        return x * f


@pytest.mark.parametrize("kind", ["linear", "affine", "curved"])
def test_local_tangent_of_a_module_is_exact_whatever_its_form(kind):
    """The rows route moves a non-linear-layer module along V by f(V) − f(0) when it is affine in its tensors
    (checked on its first call), else by forward mode: both equal per-row autograd, and the check tells them apart."""
    from geffect_lite.engine import rows
    torch.manual_seed(1)
    lin, mod = torch.nn.Linear(4, 4).double(), _Scaled(kind)
    model = torch.nn.ModuleList([lin, mod])
    params = [lin.weight, lin.bias, mod.weight]
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    V = [torch.randn_like(p) for p in params]
    rec = CallRecorder(model, params)
    with rec:
        s = (mod(lin(x)) ** 2).sum((1, 2))                                   # [3] per-row scalars
    got = row_dots(rec.calls, s.sum(), params, [V], 3, (None,), retain_graph=True)
    want = [_dot(_grad(s[i], params, True), V) for i in range(3)]
    assert torch.allclose(got[0], torch.tensor(want, dtype=torch.float64), rtol=1e-10)
    assert rows._AFFINE[mod] == {"linear": "linear", "affine": "affine", "curved": None}[kind]
