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

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


# --------------------------------------------------------------------------------------------
# Private helpers.


def _require_concrete(fn: str, name: str, value: Any) -> None:
  if _checks.is_tracer(value):
    raise TypeError(
        f"gradtx.{fn}: {name} must be a concrete number, got a traced value; it fixes the "
        "schedule's step boundaries when the schedule is built. Sweep over the value "
        "arguments instead, or build one schedule per value of this argument.")


def _constant(value: Any) -> Schedule:
  def schedule(count):
    return jnp.broadcast_to(_cycles.as_float(value), jnp.shape(count))

  return schedule


def _check_boundaries(fn: str, boundaries_and_scales: Any) -> list[tuple[Any, Any]]:
  """Validates a `{step: scale}` dict and returns its items sorted by step."""
  if boundaries_and_scales is None:
    return []
  if not isinstance(boundaries_and_scales, Mapping):
    raise TypeError(
        f"gradtx.{fn}: boundaries_and_scales must be a dict {{step: scale}} or None, got "
        f"{type(boundaries_and_scales).__name__}.")
  for step, scale in boundaries_and_scales.items():
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
      raise TypeError(
          f"gradtx.{fn}: boundaries_and_scales keys must be step counts, got {step!r}.")
    if not math.isfinite(step) or step < 0:
      raise ValueError(
          f"gradtx.{fn}: boundaries_and_scales keys must be non-negative step counts, got "
          f"{step!r}.")
    _checks.check_scalar(fn, f"boundaries_and_scales[{step!r}]", scale, low=0.0)
  return sorted(boundaries_and_scales.items())


# --------------------------------------------------------------------------------------------
# optax's schedules.


def constant_schedule(value: Numeric) -> Schedule:
  """A schedule that always returns `value`.

  Args:
    value: the constant, a finite scalar (a tracer is fine).

  Returns:
    A schedule `count -> value` (a float32 array shaped like `count`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> float(gradtx.constant_schedule(0.5)(jnp.asarray(100)))
    0.5
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
    float32 values are optax's, eagerly and under jit, for the steps before `B + T`. Differences
    from optax: negative step arguments raise ValueError; from step `B + T` on the value is
    `end_value` exactly (optax under jit computes `1 - count / T` as `fma(-count, 1 / T, 1)`,
    which leaves ~1e-8 there, and NaN for a `power` < 1 when that is negative). The select that
    does this can change how XLA:CPU compiles a larger jitted expression: `join_schedules` of a
    rise and a fall (0 -> 1 -> 0, or 1 -> 0 -> 1) can be an ulp off optax's there.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20)]
    [1.0, 0.25, 0.0, 0.0]
  """
  fn = "polynomial_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "end_value", end_value)
  _checks.check_scalar(fn, "power", power)
  _checks.check_scalar(fn, "transition_steps", transition_steps, low=0)
  _checks.check_scalar(fn, "transition_begin", transition_begin, low=0)
  return _polynomial(init_value, end_value, power, transition_steps, transition_begin)


def _polynomial(init_value, end_value, power, transition_steps, transition_begin) -> Schedule:
  if _cycles.concrete(transition_steps) and _cycles.num(transition_steps) == 0:
    return _constant(init_value)
  traced = _checks.is_tracer(transition_steps)

  def schedule(count):
    steps = jnp.where(transition_steps > 0, transition_steps, 1) if traced else transition_steps
    count = jnp.clip(count - transition_begin, 0, steps)
    frac = 1 - count / steps  # optax's order: optax's values eagerly and under jit
    # Exactly 0 from the end on (optax under jit computes fma(-count, 1 / steps, 1), ~1e-8 there,
    # negative for steps = 10, where a power < 1 gives NaN).
    frac = jnp.where(count < steps, frac, 0.0)
    value = (init_value - end_value) * (frac**power) + end_value
    return jnp.where(transition_steps > 0, value, init_value) if traced else value

  return schedule


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


def cosine_decay_schedule(
    init_value: Numeric,
    decay_steps: int,
    alpha: Numeric = 0.0,
    exponent: Numeric = 1.0,
) -> Schedule:
  r"""Cosine annealing from `init_value` to `alpha * init_value` over `decay_steps` steps.

  A half cosine decays slowly at first, fast in the middle and slowly again near the end (one
  cycle of SGDR; see `warm_restarts_schedule` for the restarts).

  .. math::
      \eta_t = I \left[(1 - \alpha)\left(\tfrac{1}{2}\left(1 + \cos\frac{\pi \min(t, T)}{T}
      \right)\right)^{p} + \alpha\right]

  with :math:`I` = `init_value`, :math:`T` = `decay_steps`, :math:`p` = `exponent`.

  Args:
    init_value: the value at step 0.
    decay_steps: :math:`T > 0`, the length of the decay.
    alpha: the final value as a fraction of `init_value`.
    exponent: :math:`p`, the power of the cosine factor.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.cosine_decay_schedule(1.0, decay_steps=100)
    >>> [round(float(schedule(t)), 4) for t in (0, 50, 100, 200)]
    [1.0, 0.5, 0.0, 0.0]

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
    https://arxiv.org/abs/1608.03983
  """
  fn = "cosine_decay_schedule"
  _checks.check_scalar(fn, "init_value", init_value)
  _checks.check_scalar(fn, "decay_steps", decay_steps, low=0, low_open=True)
  _checks.check_scalar(fn, "alpha", alpha)
  _checks.check_scalar(fn, "exponent", exponent)

  def schedule(count):
    # Python ints become floats so that large step counts do not overflow int32.
    steps = float(decay_steps) if isinstance(decay_steps, int) else decay_steps
    count = float(count) if isinstance(count, int) else count
    count = jnp.minimum(count, steps)
    cosine_decay = 0.5 * (1 + jnp.cos(jnp.pi * count / steps))
    return init_value * ((1 - alpha) * cosine_decay**exponent + alpha)

  return schedule


def warmup_cosine_decay_schedule(
    init_value: Numeric,
    peak_value: Numeric,
    warmup_steps: int,
    decay_steps: int,
    end_value: Numeric = 0.0,
    exponent: Numeric = 1.0,
) -> Schedule:
  r"""Linear warmup from `init_value` to `peak_value`, then cosine decay to `end_value`.

  .. math::
      \eta_t = \begin{cases} I + (P - I)\, t / W & t < W \\
      E + (P - E)\left(\tfrac{1}{2}\left(1 + \cos\frac{\pi \min(t - W,\, D - W)}{D - W}
      \right)\right)^{p} & t \ge W \end{cases}

  with :math:`I, P, E` = `init_value, peak_value, end_value`, :math:`W` = `warmup_steps`,
  :math:`D` = `decay_steps` and :math:`p` = `exponent`.

  Args:
    init_value: the value at step 0.
    peak_value: the value at the end of the warmup.
    warmup_steps: :math:`W \ge 0`, the warmup's length.
    decay_steps: :math:`D > W`, the total length, warmup included.
    end_value: the value from step `decay_steps` on.
    exponent: the power of the cosine factor.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, end_value=0.1)
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 60, 110)]
    [0.0, 0.5, 1.0, 0.55, 0.1]

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
    https://arxiv.org/abs/1608.03983
  """
  fn = "warmup_cosine_decay_schedule"
  for name, value in (("init_value", init_value), ("peak_value", peak_value),
                      ("end_value", end_value), ("exponent", exponent)):
    _checks.check_scalar(fn, name, value)
  _checks.check_scalar(fn, "warmup_steps", warmup_steps, low=0)
  _checks.check_scalar(fn, "decay_steps", decay_steps, low=0, low_open=True)
  if _cycles.concrete(warmup_steps) and _cycles.concrete(decay_steps) and decay_steps <= warmup_steps:
    raise ValueError(
        f"gradtx.{fn}: decay_steps must be greater than warmup_steps (it counts the warmup "
        f"too), got decay_steps={decay_steps!r} and warmup_steps={warmup_steps!r}.")
  if _cycles.concrete(peak_value) and _cycles.concrete(end_value):
    alpha = 0.0 if _cycles.num(peak_value) == 0.0 else end_value / peak_value
  else:
    alpha = jnp.where(peak_value == 0.0, 0.0,
                      end_value / jnp.where(peak_value == 0.0, 1.0, peak_value))
  return join_schedules(
      [_polynomial(init_value, peak_value, 1, warmup_steps, 0),
       cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
      [warmup_steps])


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


def _check_onecycle(fn: str, transition_steps: Any, peak_value: Any, pct_start: Any,
                    div_factor: Any, final_div_factor: Any) -> None:
  _require_concrete(fn, "transition_steps", transition_steps)
  _checks.check_scalar(fn, "transition_steps", transition_steps, low=0, low_open=True)
  _checks.check_scalar(fn, "peak_value", peak_value)
  _require_concrete(fn, "pct_start", pct_start)
  _checks.check_scalar(fn, "pct_start", pct_start, low=0.0, high=1.0)
  _checks.check_scalar(fn, "div_factor", div_factor, low=0.0, low_open=True)
  _checks.check_scalar(fn, "final_div_factor", final_div_factor, low=0.0, low_open=True)


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Numeric,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
  r"""Smith's one-cycle policy with cosine phases: up to `peak_value`, then far below the start.

  A short rise to a large learning rate followed by a long anneal trains in few epochs
  ("super-convergence").

  .. math::
      \eta_t = \text{cosine interpolation of } (0, P/d) \to (\lfloor sT \rfloor, P) \to
      (T, P / (d f)), \text{ then } P / (d f)

  with :math:`P` = `peak_value`, :math:`T` = `transition_steps`, :math:`s` = `pct_start`,
  :math:`d` = `div_factor`, :math:`f` = `final_div_factor` (see
  `piecewise_interpolate_schedule`).

  Args:
    transition_steps: :math:`T > 0`, the cycle's length (concrete).
    peak_value: :math:`P`, the maximum, reached at step `int(pct_start * transition_steps)`.
    pct_start: the rising fraction of the cycle, in [0, 1] (concrete).
    div_factor: the start value is `peak_value / div_factor` (> 0).
    final_div_factor: the end value is `peak_value / (div_factor * final_div_factor)` (> 0).

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.cosine_onecycle_schedule(100, 1.0, pct_start=0.2)
    >>> [round(float(schedule(t)), 4) for t in (0, 20, 60, 100)]
    [0.04, 1.0, 0.5, 0.0]

  References:
    Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
    Learning Rates", 2017. https://arxiv.org/abs/1708.07120
  """
  fn = "cosine_onecycle_schedule"
  _check_onecycle(fn, transition_steps, peak_value, pct_start, div_factor, final_div_factor)
  return piecewise_interpolate_schedule(
      "cosine", peak_value / div_factor,
      {int(pct_start * transition_steps): div_factor,
       int(transition_steps): 1.0 / (div_factor * final_div_factor)})


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Numeric,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
  r"""Smith's one-cycle policy with three linear phases: up, back down, then far below.

  .. math::
      \eta_t = \text{linear interpolation of } (0, P/d) \to (\lfloor sT \rfloor, P) \to
      (\lfloor s_f T \rfloor, P/d) \to (T, P / (d f)), \text{ then } P / (d f)

  with :math:`P` = `peak_value`, :math:`T` = `transition_steps`, :math:`s, s_f` =
  `pct_start, pct_final`, :math:`d` = `div_factor`, :math:`f` = `final_div_factor`.

  Args:
    transition_steps: :math:`T > 0`, the cycle's length (concrete).
    peak_value: :math:`P`, the maximum, reached at step `int(pct_start * transition_steps)`.
    pct_start: the rising fraction of the cycle, in [0, 1] (concrete).
    pct_final: the fraction at which the value is back at the start, in [pct_start, 1]
      (concrete).
    div_factor: the start value is `peak_value / div_factor` (> 0).
    final_div_factor: the end value is `peak_value / (div_factor * final_div_factor)` (> 0).

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.linear_onecycle_schedule(100, 1.0, div_factor=10.0)
    >>> [round(float(schedule(t)), 4) for t in (0, 30, 85, 100)]
    [0.1, 1.0, 0.1, 0.0]

  References:
    Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
    Learning Rates", 2017. https://arxiv.org/abs/1708.07120
  """
  fn = "linear_onecycle_schedule"
  _check_onecycle(fn, transition_steps, peak_value, pct_start, div_factor, final_div_factor)
  _require_concrete(fn, "pct_final", pct_final)
  _checks.check_scalar(fn, "pct_final", pct_final, low=_cycles.num(pct_start), high=1.0)
  return piecewise_interpolate_schedule(
      "linear", peak_value / div_factor,
      {int(pct_start * transition_steps): div_factor,
       int(pct_final * transition_steps): 1.0 / div_factor,
       transition_steps: 1.0 / final_div_factor})


def sgdr_schedule(cosine_kwargs: Iterable[dict[str, Any]]) -> Schedule:
  r"""SGD with warm restarts as a list of `warmup_cosine_decay_schedule` cycles, as optax.

  Each dict gives the arguments of one cycle; cycle :math:`k` starts when the previous ones'
  `decay_steps` have elapsed. For a closed form with geometrically growing periods use
  `warm_restarts_schedule`.

  .. math::
      \eta_t = \mathrm{warmup\_cosine\_decay}(\text{kwargs}_k)(t - S_k), \quad
      S_k = \textstyle\sum_{j < k} D_j \le t < S_{k+1}

  Args:
    cosine_kwargs: a non-empty iterable of dicts of `warmup_cosine_decay_schedule` arguments,
      each with `decay_steps`.

  Returns:
    A schedule (the last cycle's end value holds after the last cycle).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> cycle = dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=10)
    >>> schedule = gradtx.sgdr_schedule([cycle, cycle])
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 15)]
    [1.0, 0.5, 1.0, 0.5]

  References:
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
    https://arxiv.org/abs/1608.03983
  """
  fn = "sgdr_schedule"
  cycles = list(cosine_kwargs)
  if not cycles:
    raise ValueError(f"gradtx.{fn}: cosine_kwargs must hold at least one dict of arguments.")
  boundaries, schedules, step = [], [], 0
  for k, kwargs in enumerate(cycles):
    if not isinstance(kwargs, Mapping) or "decay_steps" not in kwargs:
      raise ValueError(
          f"gradtx.{fn}: cosine_kwargs[{k}] must be a dict of warmup_cosine_decay_schedule "
          f"arguments with decay_steps, got {kwargs!r}.")
    schedules.append(warmup_cosine_decay_schedule(**kwargs))
    step = step + kwargs["decay_steps"]
    boundaries.append(step)
  return join_schedules(schedules, boundaries[:-1])


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
  r"""Runs `schedules[k]` from `boundaries[k - 1]` on, each counting from its own start.

  .. math::
      \eta_t = f_k(t - b_{k-1}) \quad \text{for } b_{k-1} \le t < b_k \quad (b_{-1} = 0)

  Args:
    schedules: a non-empty sequence of schedules.
    boundaries: the steps at which to switch to the next schedule; one fewer than `schedules`,
      in increasing order.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> warmup = gradtx.linear_schedule(0.0, 1.0, transition_steps=10)
    >>> schedule = gradtx.join_schedules([warmup, gradtx.constant_schedule(0.5)], [10])
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 100)]
    [0.0, 0.5, 0.5, 0.5]
  """
  fn = "join_schedules"
  schedules, boundaries = list(schedules), list(boundaries)
  if not schedules:
    raise ValueError(f"gradtx.{fn}: schedules must hold at least one schedule.")
  for k, schedule in enumerate(schedules):
    if not callable(schedule):
      raise TypeError(f"gradtx.{fn}: schedules[{k}] must be a schedule (a callable of the "
                      f"step count), got {type(schedule).__name__}.")
  if len(boundaries) != len(schedules) - 1:
    raise ValueError(
        f"gradtx.{fn}: boundaries must have one entry fewer than schedules, got "
        f"{len(boundaries)} boundaries for {len(schedules)} schedules.")
  for k, boundary in enumerate(boundaries):
    _checks.check_scalar(fn, f"boundaries[{k}]", boundary, low=0)

  def schedule(step):
    output = schedules[0](step)
    for boundary, later in zip(boundaries, schedules[1:]):
      output = jnp.where(step < boundary, output, later(step - boundary))
    return output

  return schedule
