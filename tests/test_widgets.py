"""Headless tests of the widget logic in geffect_lite.widgets (no kernel, no browser; the real-browser tests are in
tests/browser/).

* :class:`Explorer` over its whole menu: every objective × every offered value × every layer group × step positions
  (first, middle, last). No combination may raise; the paper groups add up to the total; the model is never
  modified; a value that was not computed, an unknown group or a step outside the run is a clear error.
* :func:`explorer_widget` and :func:`choice_widget` driven through their widgets (ipywidgets works without a kernel:
  setting ``.value`` runs the callbacks synchronously): every control offers only computed values, and every
  position of every control redraws.
"""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

W = pytest.importorskip("ipywidgets")

from geffect_lite import protocol, run_cache  # noqa: E402
from geffect_lite.models import TINY_DIR  # noqa: E402
from geffect_lite.widgets import GROUP_CHOICES, Explorer, choice_widget, explorer_widget  # noqa: E402

pytestmark = pytest.mark.skipif(not (TINY_DIR / "model.safetensors").exists(), reason="tiny model not built")
MENU = {"ga": (None, (None,)), "wga": ("alpha", (0.5, 1.0)), "npo": ("beta", (1.0, 2.0)), "rmu": ("c", (5.0,)),
        "ga+kl": ("lam", (1.0,))}


@pytest.fixture(scope="module")
def explorer():
    S = protocol.setting("paper", "tiny", fast=True).replace(steps=3, n_forget=-3, n_retain=2)
    return Explorer(S, MENU, cache=False).precompute()


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_every_choice_draws_and_groups_add_up(explorer):
    before = [p.detach().clone() for p in run_cache.loaded("tiny")[0].parameters()]
    for obj, (_, values) in MENU.items():
        for v in values:
            key = ["step", "risk_set"]
            total = explorer.values(obj, v, "total").sort_values(key).value.to_numpy()
            parts = sum(explorer.values(obj, v, g).sort_values(key).value.to_numpy()
                        for g in ("embed", "shallow", "middle", "deep", "lm"))
            assert (abs(parts - total) <= 1e-6 * abs(total) + 1e-12).all(), (obj, v)
            last = explorer.steps(obj, v)
            for g in GROUP_CHOICES:
                for step in (0, last // 2, last):
                    fig, at = explorer.view(obj, v, g, step, show=False)
                    assert set(at) == {"forget", "retain"} and all(math.isfinite(x) for x in at.values())
    assert all(torch.equal(a, b) for a, b in zip(before, run_cache.loaded("tiny")[0].parameters()))


def test_bad_choices_are_clear_errors(explorer):
    with pytest.raises(ValueError, match="offered: 0.5, 1.0"):
        explorer.view("wga", 0.7)
    with pytest.raises(ValueError, match="valid: ga, wga"):
        explorer.view("tnpo")
    with pytest.raises(ValueError, match="valid: total, embed"):
        explorer.view("ga", None, "attention")
    with pytest.raises(ValueError, match="valid: 0 … 2"):
        explorer.view("ga", None, "total", 9)


def test_dashboard_offers_only_computed_values(explorer):
    box = explorer_widget(explorer, "wga")
    (obj, hp, fixed), (group, step) = box.children[0].children, box.children[1].children
    assert [v for _, v in hp.options] == [0.5, 1.0] and step.max == explorer.steps("wga")
    for name, (hname, values) in MENU.items():
        obj.value = name
        assert [v for _, v in hp.options] == [0 if x is None else x for x in values]
        assert hp.disabled == (hname is None)
        one = len(values) < 2                     # a single computed value shows as a label, never as a dead slider
        assert (hp.layout.display == "none") == one and (fixed.layout.display == "none") == (not one)
        assert (fixed.value != "") == one and (hname is None or not one or f"{hname} = " in fixed.value)
        for v in values:
            hp.value = 0 if v is None else v
            for g in GROUP_CHOICES:
                group.value = g
            step.value = step.max
            step.value = 0


def test_choice_widget_calls_with_each_value():
    seen = []
    w = choice_widget(seen.append, "alpha", [0.0, 0.5, 2.0])
    slider = w.children[0]
    for _, v in slider.options:
        slider.value = v
    assert seen == [0.0, 0.5, 2.0]
