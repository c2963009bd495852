"""Projection onto the simplex, by sorting (Duchi et al. 2008; Blondel et al. 2014).

The pytree is flattened into one vector, projected, and unflattened, with optax 0.2.8's
arithmetic (results bit-identical to optax's); its Jacobian comes from a custom JVP.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import flatten_util

from gradtx._checks import check_scalar

__all__ = ["projection_simplex"]


@jax.custom_jvp
def _unit_simplex(values: jax.Array) -> jax.Array:
  """Projection of a vector onto the unit simplex :math:`\\{p \\ge 0, \\sum_i p_i = 1\\}`."""
  n = values.shape[0]
  u = jnp.sort(values)[::-1]  # decreasing
  cumsum_u = jnp.cumsum(u)
  ind = jnp.arange(n) + 1
  # rho: the number of coordinates kept, the largest j with u_j + (1 - sum_{i<=j} u_i) / j > 0.
  rho = jnp.count_nonzero(1 / ind + (u - cumsum_u / ind) > 0)
  # theta = (sum_{i<=rho} u_i - 1) / rho; p = max(values - theta, 0).
  return jax.nn.relu(1 / rho + (values - cumsum_u[rho - 1] / rho))


@_unit_simplex.defjvp
def _unit_simplex_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]
                      ) -> tuple[jax.Array, jax.Array]:
  # On the support S of p, dp = dv - mean_S(dv); off it, dp = 0 (the sparsemax Jacobian of
  # Martins and Astudillo, ICML 2016).
  (values,), (values_dot,) = primals, tangents
  p = _unit_simplex(values)
  support = p > 0
  card = jnp.count_nonzero(support)
  p_dot = support * values_dot - (jnp.dot(support, values_dot) / card) * support
  return p, p_dot


def _keep_dtypes(new_tree: Any, tree: Any) -> Any:
  """Casts each floating leaf of `new_tree` back to the dtype of the same leaf of `tree`."""
  def cast(new: Any, old: Any) -> Any:
    dtype = jnp.asarray(old).dtype
    return new.astype(dtype) if jnp.issubdtype(dtype, jnp.inexact) else new
  return jax.tree.map(cast, new_tree, tree)


def _check_flat_size(fn: str, tree: Any) -> None:
  """A projection onto a simplex or an l1 sphere needs at least one element."""
  if not any(jnp.size(x) for x in jax.tree.leaves(tree)):
    raise ValueError(f"gradtx.{fn}: tree must have at least one element, got {tree!r}.")


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the simplex :math:`\{p \ge 0, \sum_i p_i = \text{scale}\}`.

  The whole pytree is one vector :math:`x` of :math:`n` elements. Sorting it decreasingly,
  :math:`u_1 \ge \dots \ge u_n`, the projection subtracts one threshold :math:`\theta` and clips
  at 0 (the probability simplex by default):

  .. math::
    \rho = \max\{j : u_j - (\textstyle\sum_{i \le j} u_i - s) / j > 0\}, \quad
    \theta = \tfrac{1}{\rho}\big(\textstyle\sum_{i \le \rho} u_i - s\big), \quad
    p = \max(x - \theta, 0)

  computed, as optax, as `scale * unit_simplex(x / scale)` with :math:`s = \text{scale}`.
  `jax.grad` uses the exact Jacobian (a custom JVP): on the support of :math:`p`, the tangent
  minus its mean.

  Args:
    tree: the pytree :math:`x` to project (at least one element).
    scale: the sum :math:`s` of the projection, a scalar > 0.

  Returns:
    The projection, a pytree of the structure and dtypes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p = gradtx.projections.projection_simplex({'w': jnp.array([2.5, 3.2]), 'b': 0.5})
    >>> print(p['w'], round(float(gradtx.tree.sum(p)), 6))
    [0.1500001  0.85000014] 1.0

  References:
    J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra, `Efficient Projections onto the
    l1-Ball for Learning in High Dimensions <https://dl.acm.org/doi/10.1145/1390156.1390191>`_,
    ICML 2008 (Figure 1).

    M. Blondel, A. Fujino and N. Ueda, `Large-scale Multiclass Support Vector Machine Training
    via Euclidean Projection onto the Simplex <https://ieeexplore.ieee.org/document/6976969>`_,
    ICPR 2014.
  """
  fn = "projections.projection_simplex"
  check_scalar(fn, "scale", scale, low=0, low_open=True)
  _check_flat_size(fn, tree)
  values, unravel = flatten_util.ravel_pytree(tree)
  new_values = scale * _unit_simplex(values / scale)
  return _keep_dtypes(unravel(new_values), tree)
