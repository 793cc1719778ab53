"""ipywidgets that only wire library functions (core widgets only: Colab's ipywidgets 7.7 and 8.x both work).

**A control offers only what it can show.** The :class:`Explorer` holds a fixed menu of (objective, hyper-parameter
values) under one protocol setting; its sliders are selection sliders over exactly those values, whose trajectories
are computed (and cached on disk) before the dashboard is drawn, so every position of every control changes the
plot. The logic is plain Python and unit-tested headlessly; :func:`explorer_widget` merely binds :meth:`Explorer.view`
to the controls, and :func:`choice_widget` does the same for a one-parameter sweep (WGA's α in 04, NPO's β in 05).
A bad value passed to the library raises an error naming the valid ones.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import pandas as pd

from .run_cache import protocol_run
from .plots import PALETTE, colour, legend_outside, symlog

#: objective → (hyper-parameter, the values offered): the paper's figure values where it has them
MENU: Dict[str, Tuple[Optional[str], Tuple]] = {
    "ga": (None, (None,)),
    "wga": ("alpha", (0.5, 1.0, 2.0)),            # Fig. 3c uses 0.5
    "npo": ("beta", (0.1, 1.0, 2.0)),             # Fig. 4
    "tnpo": ("beta", (1.0,)),                     # Fig. 5c
    "wtnpo": ("alpha", (1.0,)),
    "po": (None, (None,)),                        # Fig. 6
    "rmu": ("c", (2.0, 5.0)),                     # Fig. 7 uses 5
    "ga+gd": ("lam", (1.0,)),                     # Fig. 8
    "ga+kl": ("lam", (1.0,)),
}
FAST_MENU = {k: (n, v[:2]) for k, (n, v) in MENU.items() if k in ("ga", "wga", "npo", "po", "ga+kl")}
GROUP_CHOICES = ("total", "embed", "shallow", "middle", "deep", "lm")


class Explorer:
    """Trajectories of a fixed menu of choices under one setting (see the module docstring).

    Args:
        setting: a :class:`~geffect_lite.protocol.Setting` (e.g. ``gl.protocol.setting("paper", "tiny")``).
        menu: objective → (hyper-parameter name or None, values); default :data:`MENU` (:data:`FAST_MENU` in
            fast mode). cache: keep the trajectories on disk (``gl.protocol_run``; without: in this process only).
    """

    def __init__(self, setting, menu: Optional[dict] = None, cache: bool = True, progress: bool = False):
        self.setting, self.cache, self.progress = setting, cache, progress
        self.menu = dict(menu or (FAST_MENU if setting.fast else MENU))

    @property
    def objectives(self) -> List[str]:
        return list(self.menu)

    def options(self, objective: str) -> Tuple[Optional[str], Tuple]:
        """(hyper-parameter name, offered values) of one objective; ValueError for an objective not on the menu."""
        if objective not in self.menu:
            raise ValueError(f"objective {objective!r} is not on this explorer's menu; valid: {', '.join(self.menu)}")
        return self.menu[objective]

    def _key(self, objective, value):
        name, values = self.options(objective)
        if name is None:
            return objective, None
        if value is None:
            value = values[0]
        match = [v for v in values if abs(float(v) - float(value)) < 1e-9]
        if not match:
            raise ValueError(f"{name}={value!r} was not computed for {objective}; offered: "
                             f"{', '.join(map(str, values))}")
        return objective, match[0]

    def trajectory(self, objective: str, value=None):
        """The trajectory of one menu choice: ``gl.protocol_run`` (computed on first use, then kept — on disk too
        when the explorer caches)."""
        _, v = self._key(objective, value)
        name = self.menu[objective][0]
        return protocol_run(objective, self.setting, {name: v} if name else {},
                            cache=True if self.cache else "memory", progress=self.progress)

    def precompute(self) -> "Explorer":
        """Compute every menu choice now, so no control ever waits on a run."""
        for obj, (_, values) in self.menu.items():
            for v in values:
                self.trajectory(obj, v)
        return self

    def values(self, objective: str, value=None, group: str = "total") -> pd.DataFrame:
        """Tidy (step, risk_set, value) of the chosen group's G-effect."""
        if group not in GROUP_CHOICES:
            raise ValueError(f"unknown group {group!r}; valid: {', '.join(GROUP_CHOICES)}")
        tr = self.trajectory(objective, value)
        if group == "total":
            s = tr.steps[(tr.steps.status == "ok") & tr.steps.e_u.notna()]
            return pd.concat([pd.DataFrame(dict(step=s.step, risk_set="forget", value=s.e_u)),
                              pd.DataFrame(dict(step=s.step, risk_set="retain", value=s.e_r))], ignore_index=True)
        g = tr.groups[(tr.groups.scheme == "paper") & (tr.groups.term == "objective")]
        if group not in set(g.group) and group in ("embed", "lm") and "embed+lm (tied)" in set(g.group):
            group = "embed+lm (tied)"
        return g[g.group == group][["step", "risk_set", "value"]].reset_index(drop=True)

    def steps(self, objective: str, value=None) -> int:
        """The last recorded step of a choice."""
        return int(self.values(objective, value).step.max())

    def view(self, objective: str, value=None, group: str = "total", step: int = 0, show: bool = True):
        """Draw one choice over steps with ``step`` marked; returns (figure, {risk_set: value at that step}).
        A step outside the run is an error naming the valid range."""
        d = self.values(objective, value, group)
        last = int(d.step.max()) if len(d) else 0
        if not 0 <= int(step) <= last:
            raise ValueError(f"step {step} is outside this run; valid: 0 … {last}")
        fig, ax = plt.subplots(figsize=(8, 4.2))
        for rs, sub in d.groupby("risk_set", sort=False):
            ax.plot(sub.step, sub.value, color=PALETTE[rs], lw=2.2, label=f"{'$e_u$' if rs == 'forget' else '$e_r$'}")
        ax.axvline(step, color="grey", ls=":")
        ax.axhline(0, color="grey", lw=0.8)
        if len(d):
            symlog(ax, d.value.to_numpy())
        at = d[d.step == int(step)].set_index("risk_set")["value"].to_dict()
        name = self.menu[objective][0]
        label = f"{objective}" + (f" ({name} = {self._key(objective, value)[1]:g})" if name else "")
        ax.set_title(f"{label}, {group}: e_u = {at.get('forget', float('nan')):.3g}, "
                     f"e_r = {at.get('retain', float('nan')):.3g} at step {step}")
        ax.title.set_color(colour(objective))
        ax.set_xlabel("unlearning step")
        ax.set_ylabel("G-effect")
        legend_outside(ax)
        if show:
            plt.show()
        plt.close(fig)
        return fig, at


def explorer_widget(explorer: Explorer, objective: Optional[str] = None):
    """The dashboard: objective dropdown, hyper-parameter selection slider (only computed values; a label when a
    single value was computed), layer group, step. Precomputes every choice first."""
    import ipywidgets as W
    explorer.precompute()
    objective = objective or explorer.objectives[0]
    obj = W.Dropdown(options=explorer.objectives, value=objective, description="objective")
    name, values = explorer.options(objective)
    hp = W.SelectionSlider(options=_labels(values), value=_labels(values)[0][1], description=name or "(none)",
                           continuous_update=False, disabled=name is None)
    fixed = W.Label()                             # shown instead of the slider when only one value was computed

    def show_choice(n, vals):                     # no dead controls: a single value is a label, not a slider
        one = len(vals) < 2
        hp.layout.display = "none" if one else None
        fixed.layout.display = None if one else "none"
        fixed.value = ("" if not one else "no hyper-parameter" if n is None
                       else f"{n} = {vals[0]:g} (the one value computed)")
    show_choice(name, values)
    group = W.Dropdown(options=list(GROUP_CHOICES), value="total", description="group")
    step = W.IntSlider(value=0, min=0, max=explorer.steps(objective), description="step", continuous_update=False)
    busy = {"on": False}

    def on_obj(change):      # swap the slider's options without drawing the transient state, then draw once
        n, vals = explorer.options(change["new"])
        busy["on"] = True
        try:
            hp.options, hp.description, hp.disabled = _labels(vals), n or "(none)", n is None
            show_choice(n, vals)
            hp.value = _labels(vals)[0][1]
            step.max = explorer.steps(change["new"], hp.value)
            step.value = min(step.value, step.max)
        finally:
            busy["on"] = False
        draw(obj.value, hp.value, group.value, step.value)
    obj.observe(on_obj, names="value")
    out = W.Output()

    def draw(objective, value, group, step):
        if busy["on"]:
            return
        with out:
            out.clear_output(wait=True)
            explorer.view(objective, value, group, step)
    def on_hp(change):       # another run may be shorter: keep the step slider inside it
        if busy["on"]:
            return
        busy["on"] = True
        try:
            step.max = explorer.steps(obj.value, hp.value)
            step.value = min(step.value, step.max)
        finally:
            busy["on"] = False
        draw(obj.value, hp.value, group.value, step.value)
    hp.observe(on_hp, names="value")
    for w in (group, step):
        w.observe(lambda _: draw(obj.value, hp.value, group.value, step.value), names="value")
    draw(obj.value, hp.value, group.value, step.value)
    return W.VBox([W.HBox([obj, hp, fixed]), W.HBox([group, step]), out])


def _labels(values: Sequence) -> List[Tuple[str, object]]:
    """Slider options; an objective without a hyper-parameter gets one disabled position ("—", value 0, ignored)."""
    return [("—", 0) if v is None else (f"{v:g}", v) for v in values]


def choice_widget(fn: Callable, name: str, values: Sequence, value=None):
    """A selection slider over exactly ``values`` driving ``fn(value)`` (a library call that plots)."""
    import ipywidgets as W
    s = W.SelectionSlider(options=_labels(values), value=values[0] if value is None else value, description=name,
                          continuous_update=False)
    out = W.Output()

    def draw(change=None):
        with out:
            out.clear_output(wait=True)
            fn(s.value)
    s.observe(draw, names="value")
    draw()
    return W.VBox([s, out])


__all__ = ["Explorer", "explorer_widget", "choice_widget", "MENU", "FAST_MENU", "GROUP_CHOICES"]
