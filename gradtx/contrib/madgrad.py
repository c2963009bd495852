"""MADGRAD: momentumized, adaptive, dual-averaged gradients (optax.contrib's `madgrad`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.numerics import safe_increment
from gradtx.transforms.decay import add_decayed_weights
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import moment_like

__all__ = [
    "MadgradState",
    "madgrad",
    "scale_by_madgrad",
]


def _accumulate(acc: jax.Array, inc: jax.Array, g: jax.Array) -> jax.Array:
  """acc + inc in the wider of the update's and the accumulator's dtypes (optax casts the
  increment to the update's dtype, the same thing when the accumulator has the params' dtype)."""
  return acc + inc.astype(jnp.promote_types(g.dtype, acc.dtype))


class MadgradState(NamedTuple):
  """State of `scale_by_madgrad`, with optax's fields.

  Attributes:
    count: int32 scalar, the step count :math:`k`.
    grad_sum_sq: :math:`G_k`, the weighted sum of squared gradients.
    s: :math:`s_k`, the weighted sum of gradients.
    x0: :math:`x_0`, the initial params.
  """

  count: jax.Array  # int32 scalar
  grad_sum_sq: Any
  s: Any
  x0: Any


def scale_by_madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    eps: float = 1e-6,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Dual averaging with a cube-root adaptive denominator and momentum by averaging (MADGRAD).

  The iterate is an average of the dual-averaging point :math:`z`, which is the initial params
  minus the weighted gradient sum scaled by the cube root of the weighted sum of squares; its
  weights :math:`\lambda_k` grow as :math:`\sqrt{k+1}` (Defazio & Jelassi 2021, Algorithm 1).

  .. math::
      \lambda_k = (\eta_k + \epsilon) \sqrt{k + 1}, \quad
      s_{k+1} = s_k + \lambda_k g_k, \quad G_{k+1} = G_k + \lambda_k g_k^2,

      z_{k+1} = x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon}, \quad
      x_{k+1} = (1 - c) z_{k+1} + c\, x_k, \qquad u_k = x_{k+1} - x_k

  with :math:`\eta_k` = `learning_rate`, :math:`c` = `momentum`, :math:`\epsilon` = `eps` (also
  added to the rate, as the official PyTorch code and optax). The output is the full update:
  no `scale_by_learning_rate` follows it.

  Args:
    learning_rate: :math:`\eta \ge 0`; a float, scalar array or schedule.
    momentum: :math:`c` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    mu_dtype: dtype of `s` (default: the params'). Not in optax.
    nu_dtype: dtype of `grad_sum_sq` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `MadgradState(count, grad_sum_sq, s, x0)`; its
    `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_madgrad(0.1, momentum=0.0, eps=0.0)
    >>> u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))
    >>> round(u.tolist()[0], 4)  # -0.1 / 0.1**(1/3)
    -0.2154

  References:
    Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged
    Gradient Method for Stochastic Optimization", JMLR 23, 2022. https://arxiv.org/abs/2101.11075
  """
  fn = "scale_by_madgrad"
  _checks.check_scalar(fn, "learning_rate", learning_rate, low=0.0, schedule=True)
  _checks.check_scalar(fn, "momentum", momentum, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return MadgradState(
        count=jnp.zeros([], jnp.int32),
        grad_sum_sq=zeros_like(params, nu_dtype),
        s=zeros_like(params, mu_dtype),
        x0=jax.tree.map(jnp.asarray, params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    for name in ("grad_sum_sq", "s", "x0"):
      _checks.check_same_structure(fn, "updates", updates, f"state.{name}", getattr(state, name))
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    count, count_inc = state.count, safe_increment(state.count)
    lr = _checks.resolve(learning_rate, count, fn=fn, name="learning_rate")
    # lambda_k = (eta_k + eps) sqrt(k + 1); k + 1 saturates at int32's max (optax's overflows).
    lamb = (lr + eps) * jnp.sqrt(count_inc)
    grad_sum_sq = map_skip_none(lambda g, acc: _accumulate(acc, lamb * (g**2), g),  # G += lambda g^2
                       updates, state.grad_sum_sq)
    s = map_skip_none(lambda g, acc: _accumulate(acc, lamb * g, g), updates, state.s)  # s += lambda g
    sigma = map_skip_none(lambda g, acc: jnp.cbrt(acc) + eps, updates, grad_sum_sq)  # G^(1/3) + eps
    z = map_skip_none(lambda g, x0, s_, sig: x0 - s_ / sig, updates, state.x0, s, sigma)  # x0 - s/sigma
    x_new = map_skip_none(lambda g, z_, x: (1 - momentum) * z_ + momentum * x,  # (1 - c) z + c x
                 updates, z, params)
    out = map_skip_none(lambda g, n, o: n - o, updates, x_new, params)
    return cast_like(out, updates), MadgradState(
        count=count_inc,
        grad_sum_sq=moment_like(grad_sum_sq, state.grad_sum_sq),
        s=moment_like(s, state.s),
        x0=state.x0)

  return GradientTransformation(init_fn, update_fn)


def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    eps: float = 1e-6,
    *,
    mask: MaskOrFn | Callable | None = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""MADGRAD (Defazio & Jelassi), with optax's L2 weight decay added to the gradient first.

  Builds `chain(add_decayed_weights(weight_decay, mask), scale_by_madgrad(learning_rate,
  momentum, eps))`; the decay goes through the adaptive denominator, as optax and the paper's
  PyTorch code do:

  .. math::
      \tilde g_k = g_k + \mu x_k, \quad \lambda_k = (\eta_k + \epsilon) \sqrt{k + 1}, \quad
      s_{k+1} = s_k + \lambda_k \tilde g_k, \quad G_{k+1} = G_k + \lambda_k \tilde g_k^2,

      z_{k+1} = x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon}, \qquad
      x_{k+1} = (1 - c) z_{k+1} + c\, x_k

  with :math:`\eta_k` = `learning_rate`, :math:`c` = `momentum`, :math:`\epsilon` = `eps` and
  :math:`\mu` = `weight_decay` (on the masked leaves).

  Args:
    learning_rate: a float, scalar array or schedule.
    momentum: in [0, 1).
    weight_decay: L2 strength >= 0; a float, array or schedule.
    eps: >= 0.
    mask: which params are decayed (pytree of bools or a callable). Not in optax.
    mu_dtype, nu_dtype: as `scale_by_madgrad`. Not in optax.

  Returns:
    A `GradientTransformation`; its `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.madgrad(0.1)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual Averaged
    Gradient Method for Stochastic Optimization", JMLR 23, 2022. https://arxiv.org/abs/2101.11075
  """
  return chain(
      add_decayed_weights(weight_decay, mask),
      scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps,
                       mu_dtype=mu_dtype, nu_dtype=nu_dtype),
  )
