"""optax's `tree_utils` namespace: the `gradtx.tree` functions under optax's older `tree_*` names.

optax keeps both spellings (`optax.tree.add` and `optax.tree_utils.tree_add` are one function);
gradtx defines each function once, in `gradtx/tree/`, and binds the second name here.
"""

from gradtx.tree.access import (
    NamedTupleKey,
    get as tree_get,
    get_all_with_path as tree_get_all_with_path,
    map_params as tree_map_params,
    set as tree_set,
)
from gradtx.tree.arithmetic import (
    add as tree_add,
    add_scale as tree_add_scale,
    allclose as tree_allclose,
    clip as tree_clip,
    conj as tree_conj,
    div as tree_div,
    max as tree_max,
    min as tree_min,
    mul as tree_mul,
    norm as tree_norm,
    real as tree_real,
    scale as tree_scale,
    size as tree_size,
    sub as tree_sub,
    sum as tree_sum,
    vdot as tree_vdot,
    where as tree_where,
)
from gradtx.tree.casting import (
    batch_shape as tree_batch_shape,
    cast as tree_cast,
    cast_like as tree_cast_like,
    dtype as tree_dtype,
    full_like as tree_full_like,
    ones_like as tree_ones_like,
    zeros_like as tree_zeros_like,
)
from gradtx.tree.moments import (
    bias_correction as tree_bias_correction,
    update_infinity_moment as tree_update_infinity_moment,
    update_moment as tree_update_moment,
    update_moment_per_elem_norm as tree_update_moment_per_elem_norm,
)
from gradtx.tree.random import (
    random_like as tree_random_like,
    split_key_like as tree_split_key_like,
    unwrap_random_key_data as tree_unwrap_random_key_data,
)
__all__ = [
    "NamedTupleKey",
    "tree_add",
    "tree_add_scale",
    "tree_allclose",
    "tree_batch_shape",
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_clip",
    "tree_conj",
    "tree_div",
    "tree_dtype",
    "tree_full_like",
    "tree_get",
    "tree_get_all_with_path",
    "tree_map_params",
    "tree_max",
    "tree_min",
    "tree_mul",
    "tree_norm",
    "tree_ones_like",
    "tree_random_like",
    "tree_real",
    "tree_scale",
    "tree_set",
    "tree_size",
    "tree_split_key_like",
    "tree_sub",
    "tree_sum",
    "tree_unwrap_random_key_data",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_vdot",
    "tree_where",
    "tree_zeros_like",
]
