"""What each notebook says about its run, out of the student's way: one function per reading (e.g.
``gl.lessons.ga_spike(live, runs)``) returns Markdown whose every sentence about the run is chosen by the rule of the
claim it describes (:mod:`.common`), or by an explicit condition on the number it prints.

Modules: :mod:`.ga` (notebooks 03–04: GA and WGA), :mod:`.npo` (05–06: NPO, TNPO, WTNPO), :mod:`.po_rmu_reg`
(07–09: PO, RMU, the regularisers).
"""
from .common import *  # noqa: F401,F403
from .common import __all__ as _common
from .ga import *  # noqa: F401,F403
from .ga import __all__ as _ga
from .npo import *  # noqa: F401,F403
from .npo import __all__ as _npo
from .po_rmu_reg import *  # noqa: F401,F403
from .po_rmu_reg import __all__ as _po

__all__ = [*_common, *_ga, *_npo, *_po]
