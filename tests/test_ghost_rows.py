"""The instance views split from the Gram route's own products (``engine.ghost_rows``), against plain per-instance
autograd (fp64), with every tensor on the Gram route (``dots="ghost"``) and with the cost-based mix; the retain risk
whole (an objective that reads the retain batch) and in row chunks; and the exact identity that ties the split to
the totals: Σ_b moved_b / c = e (c: R's normaliser) and Σ_b contribution_b = the forget term's G-effect."""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import geffect_lite as gl  # noqa: E402
from geffect_lite import nll  # noqa: E402
from geffect_lite.engine.routes import measure  # noqa: E402
from geffect_lite.objectives import get_objective  # noqa: E402
from test_rows import _plain_views, _setup  # noqa: E402

CASES = [("tiny", "npo", "ghost", None), ("tiny", "gd", "ghost", None), ("tiny", "ga", "ghost", 40),
         ("tiny", "npo", "auto", 40), ("random-qwen2", "po", "ghost", None), ("random-qwen2", "rmu", "auto", 40)]


@pytest.mark.parametrize("name,objective,dots,chunk", CASES)
def test_gram_split_equals_plain_per_instance_autograd(name, objective, dots, chunk):
    m, forget, retain = _setup(name)
    obj = get_objective(objective)
    ref = gl.reference_for(m, obj, forget, retain)
    meas = measure(m, obj, forget, retain, ref, dots=dots, per_row=True, chunk_tokens=chunk)
    assert meas.rows is not None and meas.route.startswith("ghost"), meas.route
    if dots == "ghost":                               # every eligible tensor went by Gram matrices
        assert meas.route.split("(")[1].split("/")[0] != "0"
    plain = _plain_views(m, obj, forget, retain, ref)
    scale = max(abs(v) for v in plain.values())
    for rs in ("forget", "retain"):
        b = forget if rs == "forget" else retain
        mask = b["labels"][:, 1:] != -100
        for i, v in enumerate(meas.rows["moved"][rs].tolist()):
            assert v / int(mask[i].sum()) == pytest.approx(plain[rs, "moved", i], abs=1e-6 * scale), (rs, i)
        for i, v in enumerate(meas.rows["contribution"][rs].tolist()):
            assert v == pytest.approx(plain[rs, "contribution", i], abs=1e-6 * scale), (rs, i)
        # the identities: the split sums back to the totals of the same measurement
        total = float(meas.D[rs][0].sum())
        c = float(nll.risk_normaliser(mask, "token_mean"))
        assert float(meas.rows["moved"][rs].sum()) / c == pytest.approx(total, rel=1e-9, abs=1e-12 * scale)
        row = meas.labels.index("forget") if "forget" in meas.labels else 0
        assert float(meas.rows["contribution"][rs].sum()) == pytest.approx(float(meas.D[rs][row].sum()),
                                                                           rel=1e-9, abs=1e-12 * scale)


def test_gram_split_declines_what_it_cannot_do_exactly_and_the_run_says_how():
    """GPT-2's position embedding serves every row at once (one record, one row): the split is not exact there, and
    the measurement takes the formed route with the layer outputs kept (a user's objective is never split:
    ``test_rows.test_rows_route_declines_what_it_cannot_do_exactly``). A run's instance views come split."""
    m, forget, retain = _setup("random-gpt2")
    meas = measure(m, get_objective("ga"), forget, retain, dots="ghost", per_row=True)
    assert meas.rows is None and meas.route == "formed" and meas.capture is not None
    m, forget, retain = _setup("tiny")
    r = gl.run(m.float(), "ga", forget, retain, steps=2, lr=1e-6, instances=True, progress=False)
    assert r.instances.attrs.get("method", "rows") == "rows" and len(r.instances) == 2 * 12
    assert torch.isfinite(torch.tensor(r.instances.value.to_numpy())).all()
