"""optax's `tree` namespace: arithmetic, moments and utilities over pytrees.

Each family lives in its own file; this file only gathers their names. `gradtx.tree_utils` binds
the same functions to optax's older `tree_*` names.
"""

from gradtx.tree.casting import (
    cast,
    cast_like,
    full_like,
    zeros_like,
)
from gradtx.tree.moments import (
    bias_correction,
    moment_like,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)

__all__ = [
    "bias_correction",
    "cast",
    "cast_like",
    "full_like",
    "moment_like",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "zeros_like",
]
