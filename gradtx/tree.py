"""Shared tree math: moments, bias correction, norms and the saturating step counter.

Every function maps over pytrees and treats `None` leaves of the first tree as absent (they pass
through), as optax does, so frozen parameters given `None` gradients are left alone.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "abs_sq",
    "bias_correction",
    "cast",
    "cast_like",
    "full_like",
    "global_norm",
    "moment_like",
    "safe_increment",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "zeros_like",
]


def _is_none(x: Any) -> bool:
  return x is None


def safe_increment(count: jax.Array) -> jax.Array:
  """Adds one to an integer counter, saturating at the dtype's maximum instead of wrapping.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> int(gradtx.safe_increment(jnp.asarray(2**31 - 1, jnp.int32)))
    2147483647
  """
  count = jnp.asarray(count)
  max_value = jnp.iinfo(count.dtype).max
  return jnp.where(count < max_value, count + 1, max_value).astype(count.dtype)


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
      is_leaf=_is_none)


def abs_sq(x: jax.Array) -> jax.Array:
  """Squared magnitude `|x|^2`, real for complex `x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> float(gradtx.abs_sq(jnp.asarray(3.0 + 4.0j)))
    25.0
  """
  x = jnp.asarray(x)
  if jnp.iscomplexobj(x):
    return (x.conj() * x).real
  return x * x


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
  r"""Exponential moving average of the `order`-th power of the updates.

  .. math:: m_t = (1 - \beta) g_t^{order} + \beta m_{t-1}

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> round(gradtx.update_moment(jnp.ones(1), jnp.zeros(1), 0.9, 1).tolist()[0], 6)
    0.1
  """
  return jax.tree.map(
      lambda g, t: None if g is None else (1 - decay) * (g**order) + decay * t,
      updates, moments, is_leaf=_is_none)


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: int) -> Any:
  r"""Exponential moving average of `|g|^order` (the squared magnitude for order 2).

  .. math:: v_t = (1 - \beta) |g_t|^{order} + \beta v_{t-1}

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.update_moment_per_elem_norm(-2 * jnp.ones(1), jnp.zeros(1), 0.5, 2).tolist()
    [2.0]
  """

  def power(g):
    if order == 2:
      return abs_sq(g)
    return jnp.abs(g) ** order

  return jax.tree.map(
      lambda g, t: None if g is None else (1 - decay) * power(g) + decay * t,
      updates, moments, is_leaf=_is_none)


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
  r"""Exponentially weighted infinity norm (AdaMax): :math:`u_t = \max(\beta u_{t-1}, |g_t| + \epsilon)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.update_infinity_moment(-jnp.ones(1), jnp.zeros(1), 0.9, 0.0).tolist()
    [1.0]
  """
  return jax.tree.map(
      lambda g, t: None if g is None else jnp.maximum(jnp.abs(g) + eps, decay * t),
      updates, moments, is_leaf=_is_none)


# One program for the whole tree (inlined under an outer jit), as optax's, so that eager calls give
# optax's bits: XLA compiles `x / c` for a scalar c used once as `x * (1 / c)`, and divides when
# several leaves share c, so a leaf-by-leaf eager division was 1 ulp off optax's eager Adam.
@functools.partial(jax.jit, inline=True)
def bias_correction(moment: Any, decay: Any, count: jax.Array) -> Any:
  r"""Divides an EMA started at zero by :math:`1 - \beta^t` (Kingma & Ba, Section 3).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.bias_correction(jnp.asarray([0.1]), 0.9, jnp.asarray(1)).round(4).tolist()
    [1.0]
  """
  # `lax.pow` (not `**`): for a concrete scalar count, `**` takes the exact integer-power path
  # eagerly but not under jit, which changes 1 - decay^t by ~1e-5 relative; this is jit's (and
  # optax's) value in both modes. At least float32, so a bf16 or int decay does not round to 1.
  decay = jnp.asarray(decay)
  decay = decay.astype(jnp.promote_types(decay.dtype, jnp.float32))
  correction = 1 - jax.lax.pow(decay, jnp.asarray(count))
  return jax.tree.map(
      lambda t: None if t is None else t / correction.astype(t.dtype), moment, is_leaf=_is_none)


def global_norm(tree: Any) -> jax.Array:
  r"""The L2 norm of all leaves together, :math:`\sqrt{\sum_i \|g_i\|_2^2}`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> float(gradtx.global_norm({'a': jnp.asarray([3.0]), 'b': jnp.asarray([4.0])}))
    5.0
  """
  leaves = [x for x in jax.tree.leaves(tree) if x is not None]
  if not leaves:
    return jnp.zeros([], jnp.float32)
  return jnp.sqrt(sum(jnp.sum(abs_sq(x)) for x in leaves))


def moment_like(new: Any, old: Any) -> Any:
  """Casts each new moment leaf to the dtype of the old one; a `None` (absent) leaf keeps the old.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.moment_like(jnp.ones(1), jnp.zeros(1, jnp.bfloat16)).dtype
    dtype(bfloat16)
  """
  return jax.tree.map(
      lambda n, o: o if n is None else n.astype(jnp.asarray(o).dtype), new, old, is_leaf=_is_none)
