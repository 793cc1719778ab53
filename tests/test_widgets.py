"""Headless tests of the widget logic in geffect_lite.widgets (no kernel, no browser).

* :class:`Explorer` over the whole grid of dashboard choices: every objective of ``HPARAM_SLIDERS`` × every layer
  group of ``GROUP_CHOICES`` × step positions (first, middle, last, one past the end, which must clamp), plus each
  slider's extreme values. No combination may raise, and the values must be finite and consistent (the paper groups
  add up to the total; the model is never modified).
* :func:`explorer_widget` and :func:`hparam_widget` driven through their widgets: ipywidgets works without a kernel,
  setting ``.value`` runs the ``interactive_output`` callback synchronously, and without IPython an exception inside
  the callback propagates (teaching.md §3, "Test widget logic headlessly").

A tiny Explorer (steps=2, 2 forget and 2 retain rows), shared by the whole module, keeps it under a minute.
"""
import math

import matplotlib

matplotlib.use("Agg")   # before pyplot: no display, plt.show() is a no-op

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

W = pytest.importorskip("ipywidgets")

from geffect_lite.models import TINY_DIR  # noqa: E402
from geffect_lite.widgets import GROUP_CHOICES, HPARAM_SLIDERS, Explorer, explorer_widget, hparam_widget  # noqa: E402

HAS_TINY = (TINY_DIR / "model.safetensors").exists()
STEPS = 2
OBJECTIVES = list(HPARAM_SLIDERS)
PAPER_GROUPS = ("embed", "shallow", "middle", "deep", "lm")


@pytest.fixture(scope="module")
def explorer():
    """A small Explorer on the tiny model (the random Llama if the tiny model is not built)."""
    from geffect_lite.batching import collate
    from geffect_lite.data import synthetic
    from geffect_lite.models import load_model
    model, tok = load_model("tiny" if HAS_TINY else "random-llama")
    data = synthetic()
    forget = collate(data.split("forget01", 2), tok, idk=True)
    retain = collate(data.split("retain_pool_01", 2), tok)
    return Explorer(model, forget, retain, steps=STEPS, lr=0.05)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def default_value(objective):
    name, _, _, _, default = HPARAM_SLIDERS[objective]
    return None if name is None else default


def step_positions(steps=STEPS):
    """first, middle, last recorded step, and one past the end (must clamp to the last)."""
    return [0, (steps - 1) // 2, steps - 1, steps]


# ----------------------------------------------------------------------------------------------------------------
# Explorer: the whole grid
# ----------------------------------------------------------------------------------------------------------------
def test_explorer_lists_every_slider_objective(explorer):
    assert explorer.objectives == OBJECTIVES
    assert set(GROUP_CHOICES) == {"total", *PAPER_GROUPS}


@pytest.mark.parametrize("group", GROUP_CHOICES)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_view_every_objective_group_and_step(explorer, objective, group):
    value = default_value(objective)
    views = {}
    for step in step_positions():
        fig, at = explorer.view(objective, value, group, step, show=False)
        assert fig is not None
        assert set(at) == {"forget", "retain"}, (objective, group, step, at)
        assert all(math.isfinite(v) for v in at.values()), (objective, group, step, at)
        views[step] = at
    assert views[STEPS] == views[STEPS - 1]          # one past the end clamps to the last recorded step
    fig, at = explorer.view(objective, value, group, -3, show=False)
    assert at == views[0]                            # negative steps clamp to the first


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_values_tables_are_tidy_and_groups_add_up(explorer, objective):
    value = default_value(objective)
    total = explorer.values(objective, value, "total")
    assert list(total.columns) == ["step", "risk_set", "value"]
    assert sorted(total.step.unique()) == list(range(STEPS))
    assert set(total.risk_set) == {"forget", "retain"}
    parts = [explorer.values(objective, value, g) for g in PAPER_GROUPS]
    if explorer.model.get_output_embeddings() is not None and \
            explorer.model.get_output_embeddings().weight is explorer.model.get_input_embeddings().weight:
        parts = [p for g, p in zip(PAPER_GROUPS, parts) if g != "lm"]   # tied: "embed" and "lm" are the same group
    summed = sum(p.set_index(["step", "risk_set"]).value for p in parts)
    expected = total.set_index(["step", "risk_set"]).value
    assert torch.allclose(torch.tensor(summed.loc[expected.index].values), torch.tensor(expected.values),
                          rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("objective", [o for o in OBJECTIVES if HPARAM_SLIDERS[o][0] is not None])
def test_slider_extremes_run(explorer, objective):
    _, lo, hi, _, _ = HPARAM_SLIDERS[objective]
    for value in (lo, hi):
        fig, at = explorer.view(objective, value, "total", STEPS - 1, show=False)
        assert all(math.isfinite(v) for v in at.values()), (objective, value, at)
        assert explorer.hparams(objective, value) == {HPARAM_SLIDERS[objective][0]: float(value)}


def test_objectives_without_a_slider_ignore_the_value(explorer):
    assert explorer.hparams("ga", 0.7) == {}
    assert explorer.hparams("po", None) == {}
    assert explorer.hparams("wga", None) == {}


def test_trajectories_are_cached_and_the_model_is_untouched(explorer):
    before = [p.detach().clone() for p in explorer.model.parameters()]
    a = explorer.trajectory("ga")
    b = explorer.trajectory("ga")
    assert a is b
    assert explorer.trajectory("wga", 0.5) is explorer.trajectory("wga", 0.5000000001)   # rounded key
    for p, q in zip(before, explorer.model.parameters()):
        assert torch.equal(p, q.detach())


def test_unknown_group_raises(explorer):
    with pytest.raises(KeyError, match="not in this model's groups"):
        explorer.values("ga", None, "no-such-group")


# ----------------------------------------------------------------------------------------------------------------
# explorer_widget: drive the controls
# ----------------------------------------------------------------------------------------------------------------
def _controls(widget):
    (obj, hp), (group, step), out = widget.children[0].children, widget.children[1].children, widget.children[2]
    return obj, hp, group, step, out


@pytest.fixture
def spy(explorer, monkeypatch):
    """Record every Explorer.view call made by the widget callback (and draw with show=False)."""
    calls = []
    original = Explorer.view

    def view(self, objective, value=None, group="total", step=0, show=True):
        calls.append(dict(objective=objective, value=value, group=group, step=step))
        return original(self, objective, value, group, step, show=False)

    monkeypatch.setattr(Explorer, "view", view)
    return calls


def test_widget_builds_with_core_widgets(explorer, spy):
    w = explorer_widget(explorer)
    obj, hp, group, step, out = _controls(w)
    assert isinstance(w, W.VBox) and isinstance(out, W.Output)
    assert isinstance(obj, W.Dropdown) and list(obj.options) == OBJECTIVES and obj.value == "ga"
    assert isinstance(hp, W.FloatSlider) and hp.disabled                    # GA has no hyper-parameter
    assert isinstance(group, W.Dropdown) and list(group.options) == list(GROUP_CHOICES)
    assert isinstance(step, W.IntSlider) and (step.min, step.max) == (0, STEPS - 1)


@pytest.mark.parametrize("start", ["ga", "wga", "rmu", "undial"])
def test_widget_initial_objective(explorer, spy, start):
    w = explorer_widget(explorer, objective=start)
    obj, hp, *_ = _controls(w)
    name, lo, hi, _, default = HPARAM_SLIDERS[start]
    assert obj.value == start
    assert hp.disabled == (name is None)
    if name is not None:
        assert (hp.description, hp.min, hp.max, hp.value) == (name, lo, hi, default)


def test_widget_every_control_runs_the_callback(explorer, spy):
    w = explorer_widget(explorer)
    obj, hp, group, step, _ = _controls(w)
    for objective in OBJECTIVES[1:] + OBJECTIVES[:1]:   # start away from the initial "ga" so every switch fires
        n = len(spy)
        obj.value = objective                       # raises here if the callback raises
        assert len(spy) > n, objective
        name, lo, hi, _, default = HPARAM_SLIDERS[objective]
        assert hp.disabled == (name is None)
        assert hp.description == (name or "(none)")
        assert spy[-1]["objective"] == objective
        assert spy[-1]["value"] == (None if name is None else default)
        if name is not None:
            assert (hp.min, hp.max, hp.value) == (lo, hi, default)
            hp.value = hi                           # (cached by test_slider_extremes_run when run with the module)
            assert spy[-1] == dict(objective=objective, value=hi, group=group.value, step=step.value)
    for objective in ("ga", "wga", "rmu"):           # the cheap controls: re-plot a cached trajectory
        obj.value = objective
        for g in GROUP_CHOICES[1:] + GROUP_CHOICES[:1]:
            group.value = g
            assert spy[-1]["group"] == g and spy[-1]["objective"] == objective
        for s in (step.max, step.min):
            step.value = s
            assert spy[-1]["step"] == s
    # an objective with a slider after one without, and back: the slider is re-enabled with its default
    obj.value = "ga"
    obj.value = "npo"
    assert not hp.disabled and hp.value == HPARAM_SLIDERS["npo"][4] and spy[-1]["value"] == HPARAM_SLIDERS["npo"][4]


# Regression test: explorer_widget used to re-range the slider before setting its value, so switching objective
# first clamped the old value into the new range and drew (and computed a trajectory for) that transient value.
def test_widget_switch_draws_only_the_new_default(explorer, spy):
    w = explorer_widget(explorer, objective="undial")
    obj, *_ = _controls(w)
    n = len(spy)
    obj.value = "wga"
    drawn = {c["value"] for c in spy[n:] if c["objective"] == "wga"}
    assert drawn == {HPARAM_SLIDERS["wga"][4]}, drawn


def test_hparam_widget_runs_its_callback(explorer):
    seen = []
    w = hparam_widget(lambda v: seen.append(explorer.view("wga", v, "total", STEPS - 1, show=False)[1]),
                      "alpha", 0.0, 2.0, 0.25, 0.5)
    slider, out = w.children
    assert isinstance(slider, W.FloatSlider) and isinstance(out, W.Output)
    for v in (0.0, 2.0):
        n = len(seen)
        slider.value = v
        assert len(seen) == n + 1 and all(math.isfinite(x) for x in seen[-1].values())
