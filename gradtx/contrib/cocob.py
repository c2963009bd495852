"""COCOB-Backprop: learning-rate-free SGD by coin betting (optax.contrib's `cocob`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, tree
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "COCOBState",
    "cocob",
    "scale_by_cocob",
]


def _map(f, updates: Any, *rest: Any) -> Any:
  """Maps `f` over the leaves of `updates` and `rest`; `None` updates pass through."""
  return jax.tree.map(lambda g, *r: None if g is None else f(g, *r), updates, *rest,
                      is_leaf=is_none)


class COCOBState(NamedTuple):
  r"""State of `scale_by_cocob` (optax's `COCOBState`), each field shaped like the params.

  Attributes:
    init_particles: :math:`x_0`, the initial params.
    cumulative_gradients: :math:`\Theta_t`, minus the sum of past gradients.
    scale: :math:`L_t`, the largest gradient magnitude seen.
    subgradients: :math:`G_t`, the sum of gradient magnitudes.
    reward: :math:`R_t`, the accumulated reward.
  """

  init_particles: Any  # x_0, the initial params
  cumulative_gradients: Any  # -sum of past gradients
  scale: Any  # L, the largest gradient magnitude seen
  subgradients: Any  # G, the sum of gradient magnitudes
  reward: Any  # R, the accumulated reward


def scale_by_cocob(alpha: Any = 100.0, eps: Any = 1e-8) -> GradientTransformation:
  r"""Rescales the updates by COntinuous COin Betting (COCOB-Backprop, Algorithm 2).

  Each coordinate bets a fraction of its accumulated reward on the sign of the negative
  gradient; the bet sets how far the parameter sits from its initial value, so no learning rate
  is needed. The updates move the params to the new position (they depend on the params).

  .. math::
      L_t = \max(L_{t-1}, |g_t|), \quad G_t = G_{t-1} + |g_t|, \quad
      R_t = \max(R_{t-1} - g_t (x_t - x_0), 0), \quad \theta_t = \theta_{t-1} - g_t, \\
      u_t = x_0 + \frac{\theta_t}{L_t \max(G_t + L_t, \alpha L_t)} (L_t + R_t) - x_t

  with :math:`\alpha` = `alpha`, :math:`L_0` = `eps` and :math:`G_0 = R_0 = \theta_0 = 0`.

  Args:
    alpha: :math:`\alpha > 0`, the fraction-to-bet parameter (100 in the paper); a float or a
      scalar array.
    eps: :math:`L_0 > 0`, the initial scale (avoids dividing by zero); a float or scalar array.

  Returns:
    A `GradientTransformation` with state `COCOBState(init_particles, cumulative_gradients,
    scale, subgradients, reward)`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_cocob(alpha=1.0)
    >>> p = jnp.zeros(2)
    >>> tx.update(jnp.array([1.0, -2.0]), tx.init(p), p)[0].tolist()
    [-0.5, 0.5]

  References:
    Orabona & Tommasi, "Training Deep Networks without Learning Rates Through Coin Betting",
    NeurIPS 2017, Algorithm 2. https://arxiv.org/abs/1705.07795
  """
  fn = "contrib.scale_by_cocob"
  _checks.check_scalar(fn, "alpha", alpha, low=0, low_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0, low_open=True)

  def init_fn(params):
    zeros = tree.zeros_like(params)
    return COCOBState(
        init_particles=params,
        cumulative_gradients=zeros,
        scale=jax.tree.map(lambda p: _checks.as_dtype(eps, p) * jnp.ones_like(p), params),
        subgradients=zeros,
        reward=zeros,
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "updates", updates, "state.scale", state.scale)
    x0 = state.init_particles
    scale = _map(lambda c, L: jnp.maximum(L, jnp.abs(c)), updates, state.scale)  # L_t
    subgradients = _map(lambda c, G: G + jnp.abs(c), updates, state.subgradients)  # G_t
    reward = _map(lambda c, R, p, p0: jnp.maximum(R - c * (p - p0), 0),  # R_t
                  updates, state.reward, params, x0)
    cumulative = _map(lambda c, C: C - c, updates, state.cumulative_gradients)  # theta_t

    def position(c, p, p0, C, L, G, R):  # u_t = x_0 + theta_t / (L max(G + L, a L)) (L + R) - x_t
      a = _checks.as_dtype(alpha, L)
      return -p + (p0 + C / (L * jnp.maximum(G + L, a * L)) * (L + R))

    new_updates = _map(position, updates, params, x0, cumulative, scale, subgradients, reward)
    keep = tree.moment_like  # casts back to the state's dtypes; None updates keep the old state
    return tree.cast_like(new_updates, updates), COCOBState(
        init_particles=x0,
        cumulative_gradients=keep(cumulative, state.cumulative_gradients),
        scale=keep(scale, state.scale),
        subgradients=keep(subgradients, state.subgradients),
        reward=keep(reward, state.reward),
    )

  return GradientTransformation(init_fn, update_fn)


def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: Any = 100.0,
    eps: Any = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
) -> GradientTransformation:
  r"""COCOB-Backprop: SGD without a learning rate, by coin betting.

  `chain(add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate,
  flip_sign=False), scale_by_cocob(alpha, eps))`: the (decayed) gradients, multiplied by
  `learning_rate`, drive the bets of `scale_by_cocob`. With :math:`g_t` the gradient plus
  :math:`\lambda x_t`, times :math:`\eta_t`:

  .. math::
      L_t = \max(L_{t-1}, |g_t|), \quad G_t = G_{t-1} + |g_t|, \quad
      R_t = \max(R_{t-1} - g_t (x_t - x_0), 0), \quad \Theta_t = \Theta_{t-1} - g_t, \\
      x_{t+1} = x_0 + \frac{\Theta_t}{L_t \max(G_t + L_t, \alpha L_t)} (L_t + R_t)

  with :math:`\eta_t` = `learning_rate`, :math:`\lambda` = `weight_decay` (on the masked
  leaves), :math:`\alpha` = `alpha`, :math:`L_0` = `eps` and :math:`G_0 = R_0 = \Theta_0 = 0`.

  Args:
    learning_rate: a multiplier of the gradients (1.0: the paper's algorithm); a float, array or
      schedule.
    alpha: the fraction-to-bet parameter (> 0).
    eps: the initial scale (> 0).
    weight_decay: decoupled weight decay added to the gradients (an L2 penalty); a float, array
      or schedule.
    mask: which params `weight_decay` applies to: a pytree of bools or a callable.

  Returns:
    A `GradientTransformation`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.cocob(alpha=1.0)
    >>> p = jnp.zeros(2)
    >>> tx.update(jnp.array([1.0, -2.0]), tx.init(p), p)[0].tolist()
    [-0.5, 0.5]

  References:
    Orabona & Tommasi, "Training Deep Networks without Learning Rates Through Coin Betting",
    NeurIPS 2017, Algorithm 2. https://arxiv.org/abs/1705.07795
  """
  return chain(
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate, flip_sign=False),
      scale_by_cocob(alpha, eps),
  )
