"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)

__all__ = [
    "ReduceLROnPlateauState",
    "reduce_on_plateau",
]
