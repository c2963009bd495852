"""Optimistic gradients: extrapolate with the change of the gradient (min-max games, GANs)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.tree.casting import zeros_like
from gradtx.tree.moments import moment_like

__all__ = [
    "ScaleByOptimisticGradientState",
    "scale_by_optimistic_gradient",
]


class ScaleByOptimisticGradientState(NamedTuple):
  """State of `scale_by_optimistic_gradient` (optax's class, unexported there).

  Attributes:
    is_initial_step: bool scalar, True before the first update.
    previous_gradient: the previous gradient.
  """

  is_initial_step: jax.Array  # bool scalar
  previous_gradient: Any


def scale_by_optimistic_gradient(alpha: Any = 1.0, beta: Any = 1.0) -> GradientTransformation:
  r"""Generalized optimistic gradient: the gradient plus a multiple of its latest change.

  Optimistic gradient descent approximates the extra-gradient method with one gradient per step:
  it anticipates the next gradient by extrapolating the last change, which damps the cycling of
  plain gradient descent-ascent in min-max games.

  .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1}, \qquad g_0 := g_1

  with :math:`\alpha` = `alpha` and :math:`\beta` = `beta` (at the first step the previous
  gradient is the current one, so :math:`u_1 = \alpha g_1`, as optax).

  Args:
    alpha: the gradient's coefficient (a float or scalar array).
    beta: the optimism, the coefficient of the gradient's change (a float or scalar array).

  Returns:
    A `GradientTransformation` with state
    `ScaleByOptimisticGradientState(is_initial_step, previous_gradient)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_optimistic_gradient()
    >>> _, s = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    >>> tx.update(jnp.full(1, 3.0), s)[0].tolist()
    [5.0]

  References:
    Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of Extra-gradient and Optimistic
    Gradient Methods for Saddle Point Problems: Proximal Point Approach", AISTATS 2020.
    https://arxiv.org/abs/1901.08511
  """
  fn = "scale_by_optimistic_gradient"
  _checks.check_scalar(fn, "alpha", alpha)
  _checks.check_scalar(fn, "beta", beta)

  def init_fn(params):
    return ScaleByOptimisticGradientState(is_initial_step=jnp.array(True),
                                          previous_gradient=zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.previous_gradient",
                                 state.previous_gradient)

    def leaf(g, prev):
      prev = jnp.where(state.is_initial_step, g, prev)  # g_0 := g_1
      return (alpha + beta) * g - beta * prev  # u_t = (alpha + beta) g_t - beta g_{t-1}

    out = jax.tree.map(lambda g, p: None if g is None else leaf(g, p).astype(g.dtype),
                       updates, state.previous_gradient, is_leaf=is_none)
    return out, ScaleByOptimisticGradientState(
        is_initial_step=jnp.zeros_like(state.is_initial_step),
        previous_gradient=moment_like(updates, state.previous_gradient))

  return GradientTransformation(init_fn, update_fn)
