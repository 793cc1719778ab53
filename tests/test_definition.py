"""Definition 1 in plain autograd (``engine.definition``) and the engine's cheaper routes (``engine.routes``) give
the same numbers: totals and layer groups, for the forget and the retain set, by the Gram route, the formed route
and the Gram route with the retain risk backpropagated one row at a time. fp64, so that round-off is not the limit."""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import geffect_lite as gl  # noqa: E402
from geffect_lite.engine import definition_1  # noqa: E402
from geffect_lite.engine.dots import named_params  # noqa: E402
from geffect_lite.engine.routes import measure  # noqa: E402
from geffect_lite.layers import group_names  # noqa: E402
from geffect_lite.objectives import get_objective  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    m, tok = gl.load_model("random-llama")
    m = m.double()
    data = gl.load_data()
    forget = gl.collate(data.split("forget05")[:3], tok, idk=True)
    retain = gl.collate(data.split("retain_pool_05")[:3], tok)
    return m, forget, retain


def _grouped(model, D, scheme):
    """{risk set: (total, {group: value})} from a measurement's objective row."""
    names, _ = named_params(model)
    gmap = group_names(model, scheme)
    out = {}
    for rs, mat in D.items():
        groups = {}
        for name, v in zip(names, mat[0].tolist()):
            groups[gmap[name]] = groups.get(gmap[name], 0.0) + v
        out[rs] = (float(mat[0].sum()), groups)
    return out


@pytest.mark.parametrize("objective", ["ga", "npo", "ga+kl", "ga+gd", "rmu"])
def test_plain_definition_equals_every_route(setup, objective):
    m, forget, retain = setup
    obj = get_objective(objective)
    ref = gl.reference_for(m, obj, forget, retain)
    totals, groups = definition_1(m, obj, forget, retain, ref, groups="paper")
    routes = dict(ghost=dict(dots="ghost"), formed=dict(dots="formed"), chunked=dict(dots="ghost", chunk_tokens=1))
    for route, kw in routes.items():
        meas = measure(m, obj, forget, retain, ref, **kw)
        assert meas.route.startswith("formed" if route == "formed" else "ghost (") and "(0/" not in meas.route
        got = _grouped(m, meas.D, "paper")
        for rs in ("forget", "retain"):
            total, g = got[rs]
            assert total == pytest.approx(totals[rs], rel=1e-6, abs=1e-12), (route, rs)
            assert set(g) == set(groups[rs])
            scale = max(abs(v) for v in groups[rs].values())
            for name, v in groups[rs].items():
                assert g[name] == pytest.approx(v, rel=1e-6, abs=1e-9 * scale), (route, rs, name)
    # the group sums are sub-sums: they add up to the total
    for rs in ("forget", "retain"):
        assert sum(groups[rs].values()) == pytest.approx(totals[rs], rel=1e-12, abs=1e-15)


def test_definition_checks_its_arguments(setup):
    m, forget, retain = setup
    with pytest.raises(KeyError, match="ga"):
        definition_1(m, "no-such-objective", forget, retain)
    with pytest.raises(ValueError, match="valid"):
        definition_1(m, "ga", forget, retain, groups="no-such-scheme")
    assert torch.is_grad_enabled()
