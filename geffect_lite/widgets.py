"""ipywidgets that only wire library functions (core widgets only: works on Colab's ipywidgets 7.7 and 8.x).

The logic lives in :class:`Explorer` — plain Python, cached, unit-tested headlessly over every objective × layer
group × step position. :func:`explorer_widget` merely binds its :meth:`Explorer.view` to dropdowns and sliders with
``interactive_output``; :func:`hparam_widget` does the same for a one-parameter sweep (α for WGA, β for NPO, …).
"""
from __future__ import annotations

import copy
from typing import Dict, Optional, Tuple

import matplotlib.pyplot as plt

# objective → (hyper-parameter the slider moves, min, max, step, default) — the paper's figure values as defaults
HPARAM_SLIDERS: Dict[str, Tuple[Optional[str], float, float, float, float]] = {
    "ga": (None, 0, 0, 0, 0),
    "wga": ("alpha", 0.0, 2.0, 0.25, 0.5),
    "npo": ("beta", 0.1, 2.0, 0.1, 1.0),
    "tnpo": ("beta", 0.1, 2.0, 0.1, 1.0),
    "wtnpo": ("alpha", 0.0, 2.0, 0.25, 1.5),
    "po": (None, 0, 0, 0, 0),
    "rmu": ("c", 1.0, 10.0, 1.0, 5.0),
    "simnpo": ("beta", 0.5, 5.0, 0.5, 2.5),
    "satimp": ("beta1", 0.0, 5.0, 0.5, 5.0),
    "undial": ("beta", 1.0, 30.0, 1.0, 10.0),
    "idkdpo": ("beta", 0.1, 2.0, 0.1, 0.1),
    "ga+gd": ("lam", 0.0, 2.0, 0.25, 1.0),
    "ga+kl": ("lam", 0.0, 2.0, 0.25, 1.0),
}
GROUP_CHOICES = ("total", "embed", "shallow", "middle", "deep", "lm")


class Explorer:
    """Trajectories on demand, cached per (objective, hyper-parameter value); :meth:`view` draws one state.

    Args:
        model, tok, forget, retain: the starting model (never modified: each run uses a copy) and batches.
        steps, lr, optimizer: the unlearning run each choice triggers.
    """

    def __init__(self, model, forget, retain, steps: int = 10, lr: float = 0.05, optimizer: str = "sgd",
                 objectives=None, progress: bool = False):
        self.model, self.forget, self.retain = model, forget, retain
        self.steps, self.lr, self.optimizer, self.progress = steps, lr, optimizer, progress
        self.objectives = list(objectives or HPARAM_SLIDERS)
        self._cache = {}

    def hparams(self, objective: str, value: Optional[float]) -> dict:
        name = HPARAM_SLIDERS.get(objective, (None,))[0]
        return {} if (name is None or value is None) else {name: float(value)}

    def trajectory(self, objective: str, value: Optional[float] = None):
        """The (cached) trajectory for one choice."""
        import geffect_lite as gl
        from .objectives import get_objective
        from .trajectory import run
        key = (objective, None if value is None else round(float(value), 6))
        if key not in self._cache:
            obj = get_objective(objective, **self.hparams(objective, value))
            m = copy.deepcopy(self.model)
            ref = gl.reference_for(m, obj, self.forget, self.retain) if obj.needs_ref else None
            self._cache[key] = run(m, obj, self.forget, self.retain, ref, steps=self.steps, lr=self.lr,
                                   optimizer=self.optimizer, progress=self.progress)
            del m
        return self._cache[key]

    def values(self, objective: str, value=None, group: str = "total"):
        """Tidy DataFrame (step, risk_set, value) of the chosen group's G-effect."""
        import pandas as pd
        tr = self.trajectory(objective, value)
        if group == "total":
            s = tr.steps[tr.steps.status == "ok"]
            return pd.concat([pd.DataFrame(dict(step=s.step, risk_set="unlearn", value=s.e_u)),
                              pd.DataFrame(dict(step=s.step, risk_set="retain", value=s.e_r))], ignore_index=True)
        g = tr.groups
        g = g[(g.scheme == "paper") & (g.term == "objective")]
        if group not in set(g.group):
            if group == "lm" and "embed+lm (tied)" in set(g.group):
                group = "embed+lm (tied)"
            elif group == "embed" and "embed+lm (tied)" in set(g.group):
                group = "embed+lm (tied)"
            else:
                raise KeyError(f"group {group!r} not in this model's groups {sorted(set(g.group))}")
        return g[g.group == group][["step", "risk_set", "value"]].reset_index(drop=True)

    def view(self, objective: str, value=None, group: str = "total", step: int = 0, show: bool = True):
        """Draw the chosen G-effect over steps with the chosen step marked; returns (figure, row at that step)."""
        from .plots import PALETTE
        d = self.values(objective, value, group)
        last = int(d.step.max()) if len(d) else 0
        step = min(max(int(step), 0), last)
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for rs, sub in d.groupby("risk_set"):
            ax.plot(sub.step, sub.value, color=PALETTE[rs], lw=2, label=rs)
        ax.axvline(step, color="grey", ls=":")
        ax.axhline(0, color="grey", lw=0.8)
        at = d[d.step == step].set_index("risk_set")["value"].to_dict()
        hp = self.hparams(objective, value)
        ax.set_title(f"{objective} {hp or ''} — {group}: e_u={at.get('unlearn', float('nan')):.3g}, "
                     f"e_r={at.get('retain', float('nan')):.3g} at step {step}", fontsize=10)
        ax.set_xlabel("unlearning step")
        ax.set_ylabel("G-effect")
        ax.legend()
        if show:
            plt.show()
        plt.close(fig)
        return fig, at


def explorer_widget(explorer: Explorer, objective: str = "ga"):
    """The dashboard: objective dropdown, hyper-parameter slider, layer-group dropdown, step slider."""
    import ipywidgets as W
    obj = W.Dropdown(options=explorer.objectives, value=objective, description="objective")
    spec = HPARAM_SLIDERS.get(objective, (None, 0, 1, 0.1, 0))
    hp = W.FloatSlider(value=spec[4] or 0.0, min=spec[1], max=max(spec[2], spec[1] + 1e-9), step=spec[3] or 0.1,
                       description=spec[0] or "(none)", continuous_update=False, disabled=spec[0] is None)
    group = W.Dropdown(options=list(GROUP_CHOICES), value="total", description="group")
    step = W.IntSlider(value=0, min=0, max=explorer.steps - 1, description="step", continuous_update=False)

    state = {"updating": False}

    def on_obj(change):
        # re-range the slider without drawing the transient (clamped) values, then draw once with the default
        s = HPARAM_SLIDERS.get(change["new"], (None, 0, 1, 0.1, 0))
        state["updating"] = True
        try:
            hp.disabled = s[0] is None
            hp.description = s[0] or "(none)"
            if s[0] is not None:
                hp.max = max(hp.max, s[2])
                hp.min = s[1]
                hp.max = s[2]
                hp.step = s[3]
        finally:
            state["updating"] = False
        if s[0] is not None:
            if hp.value != s[4]:
                hp.value = s[4]          # triggers the one draw
    obj.observe(on_obj, names="value")

    def draw(objective, value, group, step):
        if state["updating"]:
            return
        spec = HPARAM_SLIDERS.get(objective, (None,))
        v = None if spec[0] is None else value
        explorer.view(objective, v, group, step)
    out = W.interactive_output(draw, dict(objective=obj, value=hp, group=group, step=step))
    return W.VBox([W.HBox([obj, hp]), W.HBox([group, step]), out])


def hparam_widget(fn, name: str, lo: float, hi: float, step: float, value: float, description: Optional[str] = None):
    """One slider driving ``fn(value)`` (a library call that plots); returns the widget."""
    import ipywidgets as W
    s = W.FloatSlider(value=value, min=lo, max=hi, step=step, description=description or name,
                      continuous_update=False)
    return W.VBox([s, W.interactive_output(lambda v: fn(v), {"v": s})])
