"""Constraints on the parameters, enforced through the updates: `keep_params_nonnegative`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import EmptyState, GradientTransformation

__all__ = [
    "keep_params_nonnegative",
]


def keep_params_nonnegative() -> GradientTransformation:
  r"""Changes the updates so that the parameters after them stay non-negative.

  A projection onto the non-negative orthant for parameters that must stay :math:`\ge 0`
  (variances, rates, mixture weights): an update that would take a parameter below 0 is
  replaced by :math:`-p`, which lands it exactly on 0 (as optax's `keep_params_nonnegative`).
  Put it last in a chain, after the learning rate. A parameter that is already negative is
  moved to 0 by any update that keeps it negative.

  .. math:: u_j = \begin{cases} -p_j & p_j + g_j < 0 \\ g_j & \text{else} \end{cases}

  Returns:
    A `GradientTransformation` whose `update` needs `params`; state `EmptyState()` (optax's
    `NonNegativeParamsState`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.keep_params_nonnegative()
    >>> p = jnp.asarray([1.0, 2.0])
    >>> tx.update(jnp.asarray([-3.0, -1.0]), tx.init(p), p)[0].tolist()
    [-1.0, -1.0]

  References:
    `optax.keep_params_nonnegative` (optax 0.2.8).
  """
  fn = "keep_params_nonnegative"

  def init_fn(params):
    del params
    return EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)

    def project(u, p):
      if u is None or p is None:
        return None
      return jnp.where((p + u) < 0.0, -p, u).astype(u.dtype)

    return jax.tree.map(project, updates, params, is_leaf=is_none), state

  return GradientTransformation(init_fn, update_fn)
