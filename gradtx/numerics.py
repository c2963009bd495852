"""Numerically safe scalars and norms: saturating step counters, norms with safe gradients at 0, the global norm of a pytree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "abs_sq",
    "global_norm",
    "safe_increment",
]


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
