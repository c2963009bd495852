"""optax's `tree_utils` namespace: the `gradtx.tree` functions under optax's older `tree_*` names.

optax keeps both spellings (`optax.tree.add` and `optax.tree_utils.tree_add` are one function);
gradtx defines each function once, in `gradtx/tree/`, and binds the second name here.
"""

from gradtx.tree.casting import (
    cast as tree_cast,
    cast_like as tree_cast_like,
    full_like as tree_full_like,
    zeros_like as tree_zeros_like,
)
from gradtx.tree.moments import (
    bias_correction as tree_bias_correction,
    update_infinity_moment as tree_update_infinity_moment,
    update_moment as tree_update_moment,
    update_moment_per_elem_norm as tree_update_moment_per_elem_norm,
)

__all__ = [
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_full_like",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_zeros_like",
]
