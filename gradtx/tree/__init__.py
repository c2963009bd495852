"""optax's `tree` namespace: arithmetic, moments and utilities over pytrees.

Each family lives in its own file; this file only gathers their names. `gradtx.tree_utils` binds
the same functions to optax's older `tree_*` names.
"""

from gradtx.tree.access import (
    get,
    get_all_with_path,
    map_params,
    set,
)
from gradtx.tree.arithmetic import (
    add,
    add_scale,
    allclose,
    clip,
    conj,
    div,
    max,
    min,
    mul,
    norm,
    real,
    scale,
    size,
    sub,
    sum,
    vdot,
    where,
)
from gradtx.tree.casting import (
    batch_shape,
    cast,
    cast_like,
    dtype,
    full_like,
    ones_like,
    zeros_like,
)
from gradtx.tree.moments import (
    bias_correction,
    moment_like,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from gradtx.tree.random import (
    random_like,
    split_key_like,
    unwrap_random_key_data,
)

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "map_params",
    "max",
    "min",
    "moment_like",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
