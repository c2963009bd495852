"""optax's `second_order` Hessian helpers (`hvp`, `hessian_diag`), computed with gradtx's
curvature operator (`gradtx.curvature.hessian`: one implementation of curvature products)."""

from __future__ import annotations

from typing import Any, Callable

import jax
from jax import flatten_util

from gradtx.curvature.operators import hessian

__all__ = ["hessian_diag", "hvp"]


def hvp(loss: Callable[..., Any], v: jax.Array, params: Any, inputs: Any, targets: Any) -> Any:
  r"""The Hessian-vector product of `loss(params, inputs, targets)` with a flat vector `v`.

  .. math:: \nabla^2_\theta L(\theta; x, y)\, v

  Args:
    loss: `loss(params, inputs, targets)` -> scalar.
    v: a vector of size `ravel(params)` (`jax.flatten_util.ravel_pytree` order).
    params: the point.
    inputs: the inputs.
    targets: the targets.

  Returns:
    The product, a pytree shaped like `params` (as optax's).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> loss = lambda p, x, y: jnp.sum((p * x - y) ** 2)
    >>> gradtx.second_order.hvp(loss, jnp.ones(2), jnp.zeros(2), jnp.asarray([1., 2.]), 0.)
    Array([2., 8.], dtype=float32)

  References:
    `optax.second_order.hvp` (optax 0.2.8); Pearlmutter, "Fast Exact Multiplication by the
    Hessian", Neural Computation 6(1), 1994.
  """
  _, unravel = flatten_util.ravel_pytree(params)
  return hessian(loss, params, inputs, targets).matvec(unravel(v))


def hessian_diag(loss: Callable[..., Any], params: Any, inputs: Any, targets: Any) -> jax.Array:
  r"""The exact diagonal of the Hessian of `loss(params, inputs, targets)`, as a flat vector.

  .. math:: \operatorname{diag}(H)_i = e_i^\top H e_i

  One product per entry, one after another (`lax.map`): memory O(n), never an n x n identity.

  Args:
    loss: `loss(params, inputs, targets)` -> scalar.
    params: the point.
    inputs: the inputs.
    targets: the targets.

  Returns:
    The diagonal, a vector of size `ravel(params)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> loss = lambda p, x, y: jnp.sum((p * x - y) ** 2)
    >>> gradtx.second_order.hessian_diag(loss, jnp.zeros(2), jnp.asarray([1., 2.]), 0.)
    Array([2., 8.], dtype=float32)

  References:
    `optax.second_order.hessian_diag` (optax 0.2.8).
  """
  op = hessian(loss, params, inputs, targets)
  return op.ravel(op.diagonal())
