"""Schedules with optax's names, signatures and values: pure functions of the step count that anneal a hyperparameter.

A schedule is a callable `f(count) -> value` of the int32 step count (0 at the first update); it
returns a float32 array shaped like `count`. Every hyperparameter that is typed `ScalarOrSchedule`
accepts one. Schedules hold no state: `scale_by_learning_rate` and `trace` keep the count.

Conventions shared by this module:
  * optax's schedules keep optax's names, signatures, defaults and values.
  * Value arguments (`init_value`, `peak_value`, `decay_rate`, `period_multiplier`, ...) may be
    tracers, so sweeps build the schedule inside the vmapped function:
    `jax.vmap(lambda lr: train(gradtx.adam(gradtx.cosine_decay_schedule(lr, 1000))))(lrs)`.
    Arguments that fix the keys of a dict or a step boundary computed in Python
    (`boundaries_and_scales`, the one-cycle `transition_steps`, `pct_start`, `pct_final`) must
    be concrete.
  * Arguments are validated when the schedule is built (concrete values only).

Differences from optax:
  * negative `transition_steps` or `transition_begin` and a `decay_rate <= 0` raise ValueError
    (optax logs and falls back to a constant schedule or to `transition_begin=0`); so do
    negative boundaries and empty `sgdr_schedule` / `join_schedules` lists;
  * every schedule returns a float32 array, also for Python-number counts (optax's
    `constant_schedule` returns its argument unchanged), and accepts an array of counts;
  * jit keeps the step boundaries and end values: a staircase `exponential_decay` steps exactly
    at multiples of `transition_steps` (optax under jit steps one count late for some periods,
    e.g. 41, as XLA divides by multiplying with a rounded reciprocal), and `polynomial_schedule`
    reaches `end_value` exactly (optax under jit leaves ~1e-8, NaN for a `power` < 1). Within
    the transition the polynomial family keeps optax's arithmetic and so optax's float32 values,
    eagerly and under jit (where they may differ from the eager ones by an ulp, as optax's do).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule
from gradtx.schedules._common import _check_boundaries, _constant, _polynomial

__all__ = [
    "constant_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "warmup_constant_schedule",
]


def constant_schedule(value: Numeric) -> Schedule:
  r"""A schedule that always returns `value`: :math:`\eta(t) = v` with :math:`v` = `value`.

  Args:
    value: the constant, a finite scalar (a tracer is fine).

  Returns:
    A schedule `count -> value` (a float32 array shaped like `count`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> float(gradtx.constant_schedule(0.5)(jnp.asarray(100)))
    0.5

  References:
    `optax.constant_schedule` (optax 0.2.8).
  """
  _checks.check_scalar("constant_schedule", "value", value)
  return _constant(value)


def polynomial_schedule(
    init_value: Numeric,
    end_value: Numeric,
    power: Numeric,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
  r"""Polynomial transition from `init_value` to `end_value`, then constant.

  The value is held for `transition_begin` steps, then moves to `end_value` along a polynomial of
  degree `power` (`power > 1` leaves the start sooner, `power < 1` arrives later).

  .. math::
      \eta_t = (I - E)\left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^{p} + E

  with :math:`I` = `init_value`, :math:`E` = `end_value`, :math:`p` = `power`, :math:`T` =
  `transition_steps` and :math:`B` = `transition_begin`.

  Args:
    init_value: the value before and at the start of the transition.
    end_value: the value from step `transition_begin + transition_steps` on.
    power: the polynomial's exponent.
    transition_steps: the transition's length, >= 0; 0 gives a constant `init_value`.
    transition_begin: the steps to hold `init_value` first, >= 0.

  Returns:
    A schedule. It computes optax's `(I - E) * (1 - count / T)**p + E` in optax's order, so its
    float32 values are optax's, eagerly and under jit, for the steps before `B + T`. Where it
    differs from optax: negative step arguments raise ValueError; from step `B + T` on the value is
    `end_value` exactly (optax under jit computes `1 - count / T` as `fma(-count, 1 / T, 1)`,
    which leaves ~1e-8 there, and NaN for a `power` < 1 when that is negative). The select that
    does this can change how XLA:CPU compiles a larger jitted expression: `join_schedules` of a
    rise and a fall (0 -> 1 -> 0, or 1 -> 0 -> 1) can be an ulp off optax's there.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20)]
    [1.0, 0.25, 0.0, 0.0]

  References:
    `optax.polynomial_schedule` (optax 0.2.8).
  """
  fn = "polynomial_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "end_value", end_value)
  _checks.check_scalar(fn, "power", power)
  _checks.check_scalar(fn, "transition_steps", transition_steps, low=0)
  _checks.check_scalar(fn, "transition_begin", transition_begin, low=0)
  return _polynomial(init_value, end_value, power, transition_steps, transition_begin)


def linear_schedule(
    init_value: Numeric,
    end_value: Numeric,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
  r"""Linear transition from `init_value` to `end_value`, then constant.

  The Deep Learning book's (Sec. 8.3.1) recipe for SGD: decay the learning rate linearly until
  step :math:`\tau`, then hold it, with :math:`\epsilon_\tau \approx \epsilon_0 / 100` and
  :math:`\tau` a few hundred epochs. This is `polynomial_schedule` with `power=1`.

  .. math::
      \epsilon_k = (1 - \alpha)\,\epsilon_0 + \alpha\,\epsilon_\tau, \qquad
      \alpha = \min\!\left(\frac{\max(k - B, 0)}{\tau}, 1\right)

  with :math:`\epsilon_0` = `init_value`, :math:`\epsilon_\tau` = `end_value`, :math:`\tau` =
  `transition_steps` and :math:`B` = `transition_begin`.

  Args:
    init_value: :math:`\epsilon_0`, the value before and at the start of the transition.
    end_value: :math:`\epsilon_\tau`, the value from step `transition_begin + tau` on.
    transition_steps: :math:`\tau`, >= 0; 0 gives a constant `init_value`.
    transition_begin: the steps to hold `init_value` first, >= 0.

  Returns:
    A schedule, optax's bit for bit before step `B + tau` (see `polynomial_schedule`).
    Differences from optax: negative step arguments raise ValueError; from step `B + tau` on the
    value is `end_value` exactly (optax under jit can be ~1e-8 off).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.linear_schedule(1.0, 0.01, transition_steps=100)
    >>> [round(float(schedule(t)), 4) for t in (0, 50, 100, 1000)]
    [1.0, 0.505, 0.01, 0.01]

  References:
    Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, Sec. 8.3.1, eq. (8.14).
    https://www.deeplearningbook.org/contents/optimization.html
  """
  fn = "linear_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "end_value", end_value)
  _checks.check_scalar(fn, "transition_steps", transition_steps, low=0)
  _checks.check_scalar(fn, "transition_begin", transition_begin, low=0)
  return _polynomial(init_value, end_value, 1, transition_steps, transition_begin)


def piecewise_constant_schedule(
    init_value: Numeric,
    boundaries_and_scales: dict[int, Any] | None = None,
) -> Schedule:
  r"""Step decay: multiplies the value by `scale` from each boundary step on.

  .. math::
      \eta_t = I \prod_{b \le t} s_b

  with :math:`I` = `init_value` and :math:`s_b` the scale of boundary :math:`b`.

  Args:
    init_value: the value before the first boundary.
    boundaries_and_scales: a dict `{step: scale}` of non-negative steps and scales >= 0, or None
      for a constant schedule. Its keys must be concrete.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.piecewise_constant_schedule(1.0, {100: 0.1, 200: 0.1})
    >>> [round(float(schedule(t)), 4) for t in (0, 100, 250)]
    [1.0, 0.1, 0.01]

  References:
    `optax.piecewise_constant_schedule` (optax 0.2.8).
  """
  fn = "piecewise_constant_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  items = _check_boundaries(fn, boundaries_and_scales)

  def schedule(count):
    value = jnp.broadcast_to(_cycles.as_float(init_value), jnp.shape(count))
    for boundary, scale in items:
      value = jnp.where(count >= boundary, value * scale, value)
    return value

  return schedule


def _linear_interpolate(start, end, pct):
  return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
  return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: Numeric,
    boundaries_and_scales: dict[int, Any] | None = None,
) -> Schedule:
  r"""Interpolates, linearly or along a half cosine, between values scaled at boundaries.

  The value at boundary :math:`b_k` is :math:`v_k = I \prod_{j \le k} s_j` (:math:`b_0 = 0`,
  :math:`v_0 = I`); between two boundaries it moves from one to the next, and after the last it
  stays at the last value.

  .. math::
      \eta_t = v_k + (v_{k+1} - v_k)\,\pi_k \;\text{(linear)} \;\text{or}\;
      v_{k+1} + \tfrac{v_k - v_{k+1}}{2}\,(1 + \cos \pi \pi_k) \;\text{(cosine)}, \quad
      \pi_k = \frac{t - b_k}{\max(b_{k+1} - b_k, 1)}

  Args:
    interpolate_type: 'linear' or 'cosine'.
    init_value: :math:`I`, the value at step 0.
    boundaries_and_scales: a dict `{step: scale}` of non-negative steps and scales >= 0 (each
      multiplies the running value), or None. Its keys must be concrete.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.piecewise_interpolate_schedule('linear', 1.0, {4: 0.1, 8: 0.01})
    >>> [round(float(schedule(t)), 4) for t in (0, 2, 4, 6, 8, 10)]
    [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001]

  References:
    `optax.piecewise_interpolate_schedule` (optax 0.2.8).
  """
  fn = "piecewise_interpolate_schedule"
  _checks.check_choice(fn, "interpolate_type", interpolate_type, ("linear", "cosine"))
  _checks.check_scalar(fn, "init_value", init_value)
  items = _check_boundaries(fn, boundaries_and_scales)
  interpolate = _linear_interpolate if interpolate_type == "linear" else _cosine_interpolate
  bounds = [0] + [step for step, _ in items]
  scales = [scale for _, scale in items]

  def schedule(count):
    values = jnp.cumprod(jnp.stack([init_value, *scales]).astype(float))
    value = (bounds[-1] <= count) * values[-1]
    for k in range(len(items)):
      size = max(bounds[k + 1] - bounds[k], 1)
      inside = (bounds[k] <= count) & (count < bounds[k + 1])
      pct = (count - bounds[k]) / size
      value = value + jnp.where(inside, interpolate(values[k], values[k + 1], pct), 0.0)
    return value

  return schedule


def warmup_constant_schedule(
    init_value: Numeric,
    peak_value: Numeric,
    warmup_steps: int,
) -> Schedule:
  r"""Linear warmup from `init_value` to `peak_value`, then constant (no decay).

  Starting from a small learning rate avoids the large, badly conditioned first updates of
  adaptive methods; after the warmup the value is held. This is `linear_schedule(init_value,
  peak_value, warmup_steps)`, value for value.

  .. math::
      \eta_t = I + (P - I)\,\frac{\min(t, W)}{W}

  with :math:`I` = `init_value`, :math:`P` = `peak_value` and :math:`W` = `warmup_steps`.

  Args:
    init_value: :math:`I`, the value at step 0.
    peak_value: :math:`P`, the value from step `warmup_steps` on.
    warmup_steps: :math:`W`, the warmup's length, >= 0. As in optax, 0 gives a constant
      `init_value` (not `peak_value`).

  Returns:
    A schedule. Differences from optax: a negative `warmup_steps` raises ValueError.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.warmup_constant_schedule(0.0, 1e-3, warmup_steps=10)
    >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 1000)]
    [0.0, 0.0005, 0.001, 0.001]

  References:
    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv 2017,
    Sec. 2.2 (gradual warmup). https://arxiv.org/abs/1706.02677
  """
  fn = "warmup_constant_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "peak_value", peak_value)
  _checks.check_scalar(fn, "warmup_steps", warmup_steps, low=0)
  return linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps)
