"""Pytrees like a given one: zeros, ones, fills, batch shapes and dtypes (optax's `tree.zeros_like`,
`tree.cast`, `tree.dtype`, ...)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._checks import check_choice
from gradtx._trees import is_none

__all__ = [
    "batch_shape",
    "cast",
    "cast_like",
    "dtype",
    "full_like",
    "ones_like",
    "zeros_like",
]


def _check_float_params(fn: str, tree: Any) -> None:
  """Raises a TypeError naming the first integer or bool leaf of `tree` (a params tree)."""
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.inexact):
      raise TypeError(
          f"gradtx.{fn}: params{jax.tree_util.keystr(path)} must have a float dtype to get "
          f"optimizer state, got {dtype}; integer and bool params are not trainable in gradtx. "
          "Hint: cast it to a float dtype, or keep it out of the optimizer with "
          "gradtx.masked(tx, mask) (mask False for it) and a None or float0 update "
          "(jax.grad(..., allow_int=True) gives float0); pass dtype= to build state of "
          "another dtype on purpose.")


def zeros_like(tree: Any, dtype: Any = None) -> Any:
  """Zeros shaped like every leaf of `tree`, in `dtype` or the leaf's own dtype.

  This builds optimizer moments from the params, so without `dtype` every leaf must be floating
  (or complex): an integer or bool leaf raises a TypeError naming its path, because a moment of
  that dtype would silently truncate (integer params are not trainable in gradtx). optax's
  `tree.zeros_like` returns integer zeros there; pass `dtype=` (e.g. `jnp.int32`) for that.

  Args:
    tree: pytree of arrays (floating or complex unless `dtype` is given).
    dtype: dtype of the zeros; `None` keeps each leaf's.

  Returns:
    A pytree of zeros with the structure and shapes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.zeros_like({'w': jnp.ones(2)})['w'].tolist()
    [0.0, 0.0]

  References:
    `optax.tree_utils.tree_zeros_like` (optax 0.2.8).
  """
  if dtype is None:
    _check_float_params("zeros_like", tree)
  return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
  """`fill_value` shaped like every leaf of `tree`, in `dtype` or the leaf's own dtype.

  As `zeros_like`, an integer or bool leaf without an explicit `dtype` is a TypeError.

  Args:
    tree: pytree of arrays (floating or complex unless `dtype` is given).
    fill_value: the scalar to fill with.
    dtype: dtype of the result; `None` keeps each leaf's.

  Returns:
    A pytree with the structure and shapes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.full_like({'w': jnp.ones(2)}, 0.1)['w'].dtype
    dtype('float32')

  References:
    `optax.tree_utils.tree_full_like` (optax 0.2.8).
  """
  if dtype is None:
    _check_float_params("full_like", tree)
  return jax.tree.map(lambda p: jnp.full_like(p, fill_value, dtype=dtype), tree)


def ones_like(tree: Any, dtype: Any = None) -> Any:
  """Ones shaped like every leaf of `tree`, in `dtype` or the leaf's own dtype.

  As `zeros_like`, an integer or bool leaf without an explicit `dtype` is a TypeError.

  Args:
    tree: pytree of arrays (floating or complex unless `dtype` is given).
    dtype: dtype of the ones; `None` keeps each leaf's.

  Returns:
    A pytree of ones with the structure and shapes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.ones_like({'w': jnp.zeros(2)})['w'].tolist()
    [1.0, 1.0]

  References:
    `optax.tree_utils.tree_ones_like` (optax 0.2.8).
  """
  if dtype is None:
    _check_float_params("tree.ones_like", tree)
  return jax.tree.map(lambda p: jnp.ones_like(p, dtype=dtype), tree)


def batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
  """Broadcasts every leaf to leading batch dimensions `shape` (a view, no copy until written).

  Args:
    tree: pytree of arrays.
    shape: the leading batch dimensions to add.

  Returns:
    A pytree whose leaves have shape `(*shape, *leaf.shape)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.batch_shape({'w': jnp.zeros(2)}, (3,))['w'].shape
    (3, 2)

  References:
    `optax.tree_utils.tree_batch_shape` (optax 0.2.8).
  """
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def cast(tree: Any, dtype: Any) -> Any:
  """Casts every array leaf to `dtype`; `dtype=None` leaves the tree unchanged.

  Args:
    tree: pytree of arrays.
    dtype: the target dtype, or `None`.

  Returns:
    The cast pytree, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.cast({'w': jnp.ones(2)}, jnp.bfloat16)['w'].dtype
    dtype(bfloat16)

  References:
    `optax.tree_utils.tree_cast` (optax 0.2.8).
  """
  if dtype is None:
    return tree
  return jax.tree.map(lambda t: t.astype(dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
  """Casts every leaf of `tree` to the dtype of the matching leaf of `other_tree`.

  A leaf whose match has no `dtype` (a Python number, `None`) is kept as it is, and a `None`
  leaf of `tree` stays `None`.

  Args:
    tree: pytree of arrays (may hold `None` leaves).
    other_tree: pytree of the same structure whose leaves' dtypes are the targets.

  Returns:
    The cast pytree, same structure as `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.cast_like(jnp.ones(2), jnp.zeros(2, jnp.bfloat16)).dtype
    dtype(bfloat16)

  References:
    `optax.tree_utils.tree_cast_like` (optax 0.2.8).
  """
  return jax.tree.map(
      lambda t, o: t if t is None or not hasattr(o, "dtype") else t.astype(o.dtype),
      tree, other_tree, is_leaf=is_none)


_MIXED = (None, "promote", "highest", "lowest")


def _lower(a: Any, b: Any) -> Any:
  """The one of two dtypes that promotes to the other (ValueError if neither does)."""
  promoted = jnp.promote_types(a, b)
  if promoted == a:
    return b
  if promoted == b:
    return a
  raise ValueError(f"gradtx.tree.dtype: cannot order dtypes {a} and {b}: neither promotes to "
                   "the other. Hint: mixed_dtype_handler='promote' gives their common dtype.")


def _higher(a: Any, b: Any) -> Any:
  return b if _lower(a, b) == a else a


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> Any:
  """The dtype of a pytree's leaves (JAX's default float dtype for an empty tree).

  Args:
    tree: pytree.
    mixed_dtype_handler: what to do when the leaves' dtypes differ: `None` raises a
      ValueError naming the leaves, `'promote'` gives their `jnp.promote_types`, `'highest'` /
      `'lowest'` the dtype every other promotes to / that promotes to every other (ValueError
      where two cannot be ordered, e.g. int32 and uint32).

  Returns:
    A numpy dtype.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> t = {'a': jnp.ones(1, jnp.float16), 'b': jnp.ones(1)}
    >>> gradtx.tree.dtype(t, 'lowest'), gradtx.tree.dtype(t, 'highest')
    (dtype('float16'), dtype('float32'))

  References:
    `optax.tree_utils.tree_dtype` (optax 0.2.8).
  """
  check_choice("tree.dtype", "mixed_dtype_handler", mixed_dtype_handler, _MIXED)
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.asarray(leaves).dtype
  dtypes = [jnp.asarray(x).dtype for x in leaves]
  if mixed_dtype_handler is None:
    first = dtypes[0]
    wrong = [f"Expected dtype={first} for {jax.tree_util.keystr(path)} but got "
             f"{jnp.asarray(x).dtype}."
             for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
             if jnp.asarray(x).dtype != first]
    if wrong:
      raise ValueError("gradtx.tree.dtype: the leaves have several dtypes (pass "
                       "mixed_dtype_handler='promote', 'highest' or 'lowest').\n"
                       + "\n".join(wrong))
    return first
  combine = {"promote": jnp.promote_types, "highest": _higher, "lowest": _lower}
  return functools.reduce(combine[mixed_dtype_handler], dtypes)
