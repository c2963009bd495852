"""Exponential decay with optax's names and values, and its warm-up variant."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule
from gradtx.schedules._common import _constant, _polynomial
from gradtx.schedules.join import join_schedules

__all__ = [
    "exponential_decay",
    "warmup_exponential_decay_schedule",
]


def exponential_decay(
    init_value: Numeric,
    transition_steps: int,
    decay_rate: Numeric,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Numeric | None = None,
) -> Schedule:
  r"""Exponential decay by `decay_rate` every `transition_steps` steps, continuous or stepwise.

  .. math::
      \eta_t = \begin{cases} I & t \le B \\
      \mathrm{clip}_E\!\left(I \rho^{p_t}\right), \quad
      p_t = \frac{t - B}{T} \;\text{or}\; \left\lfloor \frac{t - B}{T} \right\rfloor
      \;\text{(staircase)} & t > B \end{cases}

  with :math:`I` = `init_value`, :math:`\rho` = `decay_rate`, :math:`T` = `transition_steps`,
  :math:`B` = `transition_begin`; :math:`\mathrm{clip}_E` bounds the value below by `end_value`
  when :math:`\rho < 1` and above when :math:`\rho \ge 1`.

  Args:
    init_value: the value up to step `transition_begin`.
    transition_steps: steps per factor of `decay_rate`, >= 0; 0 gives a constant `init_value`.
    decay_rate: :math:`\rho > 0`; < 1 decays, > 1 grows.
    transition_begin: the steps to hold `init_value` first, >= 0.
    staircase: decay in discrete jumps every `transition_steps` steps.
    end_value: optional bound on the value (a floor when decaying, a ceiling when growing).

  Returns:
    A schedule. Differences from optax: `decay_rate <= 0` and negative step arguments raise
    ValueError (optax returns a constant schedule or clamps `transition_begin` to 0).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
    >>> [round(float(schedule(t)), 4) for t in (0, 10, 15, 20)]
    [1.0, 0.5, 0.3536, 0.25]

  References:
    `optax.exponential_decay` (optax 0.2.8).
  """
  fn = "exponential_decay"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "transition_steps", transition_steps, low=0)
  _checks.check_scalar(fn, "decay_rate", decay_rate, low=0.0, low_open=True)
  _checks.check_scalar(fn, "transition_begin", transition_begin, low=0)
  _checks.check_bool(fn, "staircase", staircase)
  _checks.check_scalar(fn, "end_value", end_value, optional=True)
  if _cycles.concrete(transition_steps) and _cycles.num(transition_steps) == 0:
    return _constant(init_value)
  traced = _checks.is_tracer(transition_steps)

  def clip(value):
    if _cycles.concrete(decay_rate):
      return (jnp.maximum if _cycles.num(decay_rate) < 1.0 else jnp.minimum)(value, end_value)
    return jnp.where(decay_rate < 1.0, jnp.maximum(value, end_value),
                     jnp.minimum(value, end_value))

  def schedule(count):
    steps = jnp.where(transition_steps > 0, transition_steps, 1) if traced else transition_steps
    decreased_count = count - transition_begin
    p = _cycles.divmod_count(decreased_count, steps)[0] if staircase else decreased_count / steps
    value = jnp.where(decreased_count <= 0, init_value, init_value * jnp.power(decay_rate, p))
    if end_value is not None:
      value = clip(value)
    return jnp.where(transition_steps > 0, value, init_value) if traced else value

  return schedule


def warmup_exponential_decay_schedule(
    init_value: Numeric,
    peak_value: Numeric,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: Numeric,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Numeric | None = None,
) -> Schedule:
  r"""Linear warmup from `init_value` to `peak_value`, then `exponential_decay` from the peak.

  .. math::
      \eta_t = \begin{cases} I + (P - I)\, t / W & t < W \\
      \mathrm{exponential\_decay}(P, T, \rho, B, \text{staircase}, E)(t - W) & t \ge W
      \end{cases}

  Args:
    init_value: :math:`I`, the value at step 0.
    peak_value: :math:`P`, the value at the end of the warmup.
    warmup_steps: :math:`W \ge 0`, the warmup's length.
    transition_steps: :math:`T \ge 0`, steps per factor of `decay_rate` (see
      `exponential_decay`).
    decay_rate: :math:`\rho > 0`.
    transition_begin: :math:`B \ge 0`, steps after the warmup to hold `peak_value`.
    staircase: decay in discrete jumps.
    end_value: optional bound on the decayed value.

  Returns:
    A schedule. Differences from optax: as `exponential_decay`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, 0.5)
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20, 30)]
    [0.0, 0.5, 1.0, 0.5, 0.25]

  References:
    `optax.warmup_exponential_decay_schedule` (optax 0.2.8).
  """
  fn = "warmup_exponential_decay_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "peak_value", peak_value)
  _checks.check_scalar(fn, "warmup_steps", warmup_steps, low=0)
  _checks.check_scalar(fn, "transition_steps", transition_steps, low=0)
  _checks.check_scalar(fn, "decay_rate", decay_rate, low=0.0, low_open=True)
  _checks.check_scalar(fn, "transition_begin", transition_begin, low=0)
  return join_schedules(
      [_polynomial(init_value, peak_value, 1, warmup_steps, 0),
       exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                         staircase, end_value)],
      [warmup_steps])
