"""Yogi: Adam whose second moment moves additively, by at most :math:`(1 - \\beta_2) g^2` a step.

Returns deltas in the direction of the gradient; follow it with `scale_by_learning_rate` to
descend. The state is optax's: `ScaleByAdamState` (defined with Adam in `adaptive.py`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks, numerics, tree
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation
from gradtx.transforms.adaptive import ScaleByAdamState

__all__ = [
    "scale_by_yogi",
]


def scale_by_yogi(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by Adam's moments with Yogi's additive second moment (Zaheer et al.).

  Adam's :math:`v_t` is a multiplicative EMA, which can forget a large past gradient within a few
  steps of small ones and so raise the step size abruptly. Yogi changes :math:`v` by
  :math:`\pm(1 - \beta_2) g^2` towards :math:`g^2` (Zaheer et al. 2018, Algorithm 2).

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = v_{t-1} - (1 - \beta_2) \operatorname{sign}(v_{t-1} - g_t^2) g_t^2, \quad
      u_t = \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t) + \epsilon_{root}} + \epsilon}

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`,
  :math:`\epsilon_{root}` = `eps_root`, and :math:`m_0 = v_0` = `initial_accumulator_value`
  (the bias corrections are optax's, applied although the moments do not start at zero).

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`; a float or a scalar array.
    initial_accumulator_value: :math:`m_0 = v_0 \ge 0`; a float or a scalar array.
    mu_dtype: dtype of `mu` (default: the params' dtype; not in optax).
    nu_dtype: dtype of `nu` (default: the params' dtype; not in optax).

  Returns:
    A `GradientTransformation` with state `ScaleByAdamState(count, mu, nu)`, as optax's.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_yogi(eps=0.0, initial_accumulator_value=0.0)
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for Nonconvex Optimization",
    NeurIPS 2018. https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
  """
  fn = "scale_by_yogi"
  _checks.check_scalar(fn, "b1", b1, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0)
  _checks.check_scalar(fn, "initial_accumulator_value", initial_accumulator_value, low=0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdamState(count=jnp.zeros([], jnp.int32),
                            mu=tree.full_like(params, initial_accumulator_value, mu_dtype),
                            nu=tree.full_like(params, initial_accumulator_value, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    mu = tree.update_moment(updates, state.mu, b1, 1)  # m_t
    nu = map_skip_none(  # v_t = v - (1 - b2) sign(v - g^2) g^2
        lambda g, v: v - (1 - b2) * jnp.sign(v - numerics.abs_sq(g)) * numerics.abs_sq(g),
        updates, state.nu)
    count_inc = numerics.safe_increment(state.count)
    mu_hat = tree.bias_correction(mu, b1, count_inc)
    nu_hat = tree.bias_correction(nu, b2, count_inc)
    out = map_skip_none(lambda m, v: m / (jnp.sqrt(v + _checks.as_dtype(eps_root, v))
                                 + _checks.as_dtype(eps, v)), mu_hat, nu_hat)
    return tree.cast_like(out, updates), ScaleByAdamState(
        count=count_inc, mu=tree.moment_like(mu, state.mu), nu=tree.moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)
