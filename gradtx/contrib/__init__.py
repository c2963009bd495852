"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.contrib.hutchinson import (
    HutchinsonState,
    hutchinson_estimator_diag_hessian,
)
from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)

__all__ = [
    "HutchinsonState",
    "ReduceLROnPlateauState",
    "hutchinson_estimator_diag_hessian",
    "reduce_on_plateau",
]
