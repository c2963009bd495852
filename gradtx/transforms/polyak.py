"""The Polyak step size: the suboptimality gap over the squared gradient norm (needs `value=`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, init_empty_state
from gradtx.tree.arithmetic import norm

__all__ = [
    "scale_by_polyak",
]

_VARIANTS = ("sps", "sps+")


def scale_by_polyak(
    f_min: Any = 0.0,
    max_learning_rate: Any = 1.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
  r"""Scales the update by the (stochastic) Polyak step size, from the loss value.

  The step that would reach the optimal value :math:`f^\star` if the loss were linear along the
  gradient, capped at :math:`\gamma_{\max}`; `variant='sps+'` clips a negative gap to 0.

  .. math::
      \gamma_t = \min\left\{\frac{f(x_t) - f^\star}{\|g_t\|^2 + \epsilon},\ \gamma_{\max}\right\},
      \qquad u_t = \gamma_t\, g_t

  with :math:`f^\star` = `f_min`, :math:`\gamma_{\max}` = `max_learning_rate` and
  :math:`\epsilon` = `eps`; :math:`\gamma_t = 0` where :math:`\|g_t\|^2 + \epsilon` is below
  float64's machine epsilon (as optax).

  Args:
    f_min: a lower bound :math:`f^\star` on the loss (0 for models that interpolate the data).
    max_learning_rate: the cap :math:`\gamma_{\max}` > 0.
    eps: :math:`\epsilon` >= 0, added to the squared norm.
    variant: `'sps'` or `'sps+'` (the gap's positive part).

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`) whose `update` needs the loss
    at the current params: `update(grads, state, params, value=loss)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_polyak()
    >>> g = jnp.asarray([2.0])  # f(x) = x^2 at x = 1: value 1, gradient 2
    >>> tx.update(g, tx.init(g), value=jnp.asarray(1.0))[0].tolist()
    [0.5]

  References:
    Loizou, Vaswani, Laradji & Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An
    Adaptive Learning Rate for Fast Convergence", AISTATS 2021. https://arxiv.org/abs/2002.10542
    Garrigos, Gower & Schaipp, "Function Value Learning: Adaptive Learning Rates Based on the
    Polyak Stepsize and Function Splitting in ERM", 2023. https://arxiv.org/abs/2307.14528
  """
  fn = "scale_by_polyak"
  _checks.check_scalar(fn, "f_min", f_min)
  _checks.check_scalar(fn, "max_learning_rate", max_learning_rate, low=0.0, low_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_choice(fn, "variant", variant, _VARIANTS)

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del params, extra_args
    if value is None:
      raise ValueError(
          f"gradtx.{fn}: update needs the loss at the current params as `value`; call "
          "update(grads, state, params, value=loss), e.g. with "
          "loss, grads = jax.value_and_grad(loss_fn)(params).")
    if jnp.shape(value) != ():
      raise ValueError(f"gradtx.{fn}: value must be a scalar loss, got shape {jnp.shape(value)}.")
    grad_sq_norm = norm(updates, squared=True)  # ||g_t||^2
    gap = jnp.array(value - f_min).astype(grad_sq_norm.dtype)  # f(x_t) - f*
    if variant == "sps+":
      gap = jax.nn.relu(gap)
    step = jnp.where(  # gamma_t = min(gap / (||g||^2 + eps), gamma_max); 0 for a zero gradient
        grad_sq_norm + eps <= jnp.finfo(float).eps, jnp.array(0.0),
        jnp.minimum(gap / (grad_sq_norm + eps), max_learning_rate))
    out = jax.tree.map(lambda g: None if g is None else (step * g).astype(g.dtype), updates,
                       is_leaf=is_none)
    return out, state

  return GradientTransformation(init_empty_state, update_fn)
