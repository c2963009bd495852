"""optax's `second_order.fisher_diag`: the diagonal of the observed Fisher information."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import flatten_util

__all__ = ["fisher_diag"]


def fisher_diag(negative_log_likelihood: Callable[..., Any], params: Any, inputs: Any,
                targets: Any) -> jax.Array:
  r"""The diagonal of the observed Fisher information, :math:`(\nabla_\theta L)^2`, flattened.

  .. math:: F_{ii} = \big(\partial L(\theta; x, y) / \partial \theta_i\big)^2

  Squares the gradient of the *batch* loss, as optax does (for the empirical Fisher from
  per-example gradients use `gradtx.curvature.fisher`).

  Args:
    negative_log_likelihood: `fn(params, inputs, targets)` -> scalar.
    params: the point.
    inputs: the inputs.
    targets: the targets.

  Returns:
    A vector of size `ravel(params)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> nll = lambda p, x, y: jnp.sum((p * x - y) ** 2)
    >>> gradtx.second_order.fisher_diag(nll, jnp.ones(2), jnp.asarray([1., 2.]), 0.)
    Array([ 4., 64.], dtype=float32)

  References:
    `optax.second_order.fisher_diag` (optax 0.2.8); Martens, "New Insights and Perspectives
    on the Natural Gradient Method", JMLR 21, 2020. https://arxiv.org/abs/1412.1193
  """
  grads = jax.grad(negative_log_likelihood)(params, inputs, targets)
  return jnp.square(flatten_util.ravel_pytree(grads)[0])
