"""gradtx's tuning tools: the learning-rate range test, its plots, and one-program grid sweeps.
"""

from gradtx.tuning.plots import (
    plot_lr_range_test,
    plot_schedule,
)
from gradtx.tuning.range_test import (
    LRRangeTestResult,
    lr_range_test,
)
from gradtx.tuning.sweep import (
    grid_sweep,
)

__all__ = [
    "LRRangeTestResult",
    "grid_sweep",
    "lr_range_test",
    "plot_lr_range_test",
    "plot_schedule",
]
