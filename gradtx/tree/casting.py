"""Pytrees like a given one: zeros, ones, fills and dtype casts (optax's `tree.zeros_like`, `tree.cast`, ...)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx._trees import is_none

__all__ = [
    "cast",
    "cast_like",
    "full_like",
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
  that dtype would silently truncate (integer params are not trainable in gradtx).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.zeros_like({'w': jnp.ones(2)})['w'].tolist()
    [0.0, 0.0]
  """
  if dtype is None:
    _check_float_params("zeros_like", tree)
  return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
  """`fill_value` shaped like every leaf of `tree`, in `dtype` or the leaf's own dtype.

  As `zeros_like`, an integer or bool leaf without an explicit `dtype` is a TypeError.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.full_like({'w': jnp.ones(2)}, 0.1)['w'].dtype
    dtype('float32')
  """
  if dtype is None:
    _check_float_params("full_like", tree)
  return jax.tree.map(lambda p: jnp.full_like(p, fill_value, dtype=dtype), tree)


def cast(tree: Any, dtype: Any) -> Any:
  """Casts every array leaf to `dtype`; `dtype=None` leaves the tree unchanged.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.cast({'w': jnp.ones(2)}, jnp.bfloat16)['w'].dtype
    dtype(bfloat16)
  """
  if dtype is None:
    return tree
  return jax.tree.map(lambda t: t.astype(dtype), tree)


def cast_like(tree: Any, like: Any) -> Any:
  """Casts every leaf of `tree` to the dtype of the matching leaf of `like` (None passes).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.cast_like(jnp.ones(2), jnp.zeros(2, jnp.bfloat16)).dtype
    dtype(bfloat16)
  """
  return jax.tree.map(
      lambda t, l: None if t is None else t.astype(jnp.asarray(l).dtype), tree, like,
      is_leaf=is_none)
