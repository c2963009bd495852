"""SGDR's warm restarts in closed form (Loshchilov & Hutter, ICLR 2017), with `T_mult` and per-cycle decay: a schedule from the sources that optax lacks.

The conventions of `gradtx.schedules` hold here too: pure functions of the int32 step count,
float32 results, value arguments may be tracers (vmap over them), validation at construction.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule

__all__ = [
    "warm_restarts_schedule",
]


def warm_restarts_schedule(
    init_value: Numeric,
    first_period: Numeric,
    period_multiplier: Numeric = 1.0,
    min_value: Numeric = 0.0,
    decay_factor: Numeric = 1.0,
) -> Schedule:
  r"""SGDR: cosine annealing with warm restarts and geometrically growing periods.

  Each cycle anneals from its maximum to `min_value` along a half cosine, then the value jumps
  back up ("restarts") while the parameters are kept, which lets the optimizer escape the
  current basin; cycle :math:`i` is `period_multiplier`:math:`^i` times longer than the first.

  .. math::
      \eta_t = \eta_{min} + \tfrac{1}{2}(\eta_{max}^{i} - \eta_{min})
      \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right), \quad T_i = T_0 m^i, \quad
      \eta_{max}^{i} = \eta_0 \delta^i, \\
      i = \left\lfloor \log_m\!\left(1 + \frac{t (m - 1)}{T_0}\right)\right\rfloor
      \;(m > 1) \;\text{or}\; \lfloor t / T_0 \rfloor \;(m = 1), \quad
      T_{cur} = t - T_0 \frac{m^i - 1}{m - 1}

  with :math:`\eta_0` = `init_value`, :math:`T_0` = `first_period`, :math:`m` =
  `period_multiplier`, :math:`\eta_{min}` = `min_value`, :math:`\delta` = `decay_factor`. The
  cycle index is computed in closed form and corrected against the cycle starts, so restarts
  fall on the exact steps: for every int32 count when `first_period` and `period_multiplier`
  are concrete integers (exact integer cycle starts), up to 2**24 steps otherwise (float32).
  The cosine factor is evaluated as :math:`\sin^2(\pi (T_i - T_{cur}) / 2 T_i)`, which keeps
  its relative accuracy near the end of long cycles.

  Args:
    init_value: :math:`\eta_0`, the first cycle's maximum.
    first_period: :math:`T_0 > 0`, the first cycle's length in steps.
    period_multiplier: :math:`m \ge 1`, the growth factor of the periods.
    min_value: :math:`\eta_{min}`, the value each cycle anneals towards.
    decay_factor: :math:`\delta > 0`, shrinks each cycle's maximum (1: no shrinking).

  Returns:
    A schedule. All arguments may be traced (then the float32 path is used).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.warm_restarts_schedule(1.0, first_period=10, period_multiplier=2.0)
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 9, 10, 20, 30)]
    [1.0, 0.5, 0.0245, 1.0, 0.5, 1.0]

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017,
    eq. (5). https://arxiv.org/abs/1608.03983
  """
  fn = "warm_restarts_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "first_period", first_period, low=0.0, low_open=True)
  _checks.check_scalar(fn, "period_multiplier", period_multiplier, low=1.0)
  _checks.check_scalar(fn, "min_value", min_value)
  _checks.check_scalar(fn, "decay_factor", decay_factor, low=0.0, low_open=True)
  integer_periods = None
  if _cycles.concrete(first_period) and _cycles.concrete(period_multiplier):
    t0, m = _cycles.num(first_period), _cycles.num(period_multiplier)
    if t0 == int(t0) and m == int(m) and t0 <= _cycles.INT32_MAX and m <= _cycles.INT32_MAX:
      integer_periods = (int(t0), int(m))

  def schedule(count):
    return _warm_restarts(jnp.asarray(count), init_value, first_period, period_multiplier,
                          min_value, decay_factor, integer_periods)

  return schedule


# One compiled kernel shared by every warm_restarts_schedule (its hyperparameters are arguments):
# evaluated op by op, the closed form would compile some fifty primitives on its first call.
@functools.partial(jax.jit, static_argnums=6)
def _warm_restarts(count, init_value, first_period, period_multiplier, min_value, decay_factor,
                   integer_periods):
  t = jnp.maximum(count, 0)
  if integer_periods is not None and jnp.issubdtype(t.dtype, jnp.integer):
    i, left, t_i = _cycles.cycle_table(*integer_periods)(t.astype(jnp.int32))
  else:
    i, left, t_i = _cycles.cycle_float(t, first_period, period_multiplier)
  eta_max = init_value * jnp.power(decay_factor, i.astype(jnp.float32))
  # (1 + cos(pi T_cur / T_i)) / 2 = sin^2(pi (T_i - T_cur) / (2 T_i)): accurate near the end
  return min_value + (eta_max - min_value) * jnp.sin(0.5 * jnp.pi * left / t_i)**2
