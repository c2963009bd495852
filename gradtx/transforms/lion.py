"""Lion (EvoLved Sign Momentum): the sign of an interpolation between the momentum and the gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.numerics import safe_increment
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import moment_like, update_moment

__all__ = [
    "ScaleByLionState",
    "scale_by_lion",
]

_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
  """State of `scale_by_lion` (optax's `ScaleByLionState`): the step count and the momentum.

  Attributes:
    count: int32 scalar, the step count.
    mu: the momentum.
  """

  count: jax.Array  # int32 scalar
  mu: Any


def scale_by_lion(
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    *,
    mode: str = "hard",
    smooth_beta: Any = 1.0,
) -> GradientTransformation:
  r"""Rescales updates by Lion's rule: the sign of a mix of the momentum and the gradient.

  Lion tracks only a momentum (half of Adam's memory) and outputs a sign, so every coordinate
  moves by the same magnitude; `b1` sets how much of the current gradient enters the sign, `b2`
  how fast the momentum forgets.

  .. math::
      c_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad u_t = \operatorname{sign}(c_t), \qquad
      m_t = \beta_2 m_{t-1} + (1 - \beta_2) g_t

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`; `mode='smooth'` uses
  :math:`\tanh(\text{smooth\_beta}\, c_t)` and `mode='refined'` keeps :math:`c_t` where
  :math:`|c_t| < 1` (optax's variants).

  Args:
    b1: interpolation weight of the momentum in the sign, in [0, 1]; a float or scalar array.
    b2: momentum decay in [0, 1]; a float or scalar array.
    mu_dtype: dtype of the momentum (default: the params' dtype).
    mode: `'hard'` (sign), `'smooth'` (tanh) or `'refined'` (linear near 0).
    smooth_beta: the tanh's slope for `mode='smooth'`, > 0.

  Returns:
    A `GradientTransformation` with state `ScaleByLionState(count, mu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_lion()
    >>> tx.update(jnp.asarray([0.3, -2.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [1.0, -1.0]

  References:
    Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
    https://arxiv.org/abs/2302.06675
  """
  fn = "scale_by_lion"
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  _checks.check_choice(fn, "mode", mode, _MODES)
  _checks.check_scalar(fn, "smooth_beta", smooth_beta, low=0.0, low_open=True)

  def direction(g, m):
    c = (1.0 - b1) * g + b1 * m  # c_t = b1 m_{t-1} + (1 - b1) g_t
    if mode == "hard":
      return jnp.sign(c)  # u_t = sign(c_t)
    if mode == "smooth":
      return jnp.tanh(smooth_beta * c)
    return jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))  # refined: linear near 0

  def init_fn(params):
    return ScaleByLionState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params, dtype=mu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    out = jax.tree.map(lambda g, m: None if g is None else direction(g, m), updates, state.mu,
                       is_leaf=is_none)
    mu = update_moment(updates, state.mu, b2, 1)  # m_t = b2 m_{t-1} + (1 - b2) g_t
    return cast_like(out, updates), ScaleByLionState(count=safe_increment(state.count),
                                                     mu=moment_like(mu, state.mu))

  return GradientTransformation(init_fn, update_fn)
