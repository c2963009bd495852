"""Schedules from the sources that optax lacks: SGDR warm restarts in closed form, Smith's
cyclical learning rates, the Transformer's warm-up, Sutskever et al.'s momentum schedule and the
batch-size scaling rules.

The conventions of `gradtx.schedules` hold here too: pure functions of the int32 step count,
float32 results, value arguments may be tracers (vmap over them), validation at construction.
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, ScalarOrSchedule, Schedule

__all__ = [
    "cyclic_schedule",
    "momentum_schedule",
    "scale_learning_rate",
    "transformer_schedule",
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


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic_schedule(
    base_value: Numeric,
    max_value: Numeric,
    step_size: Numeric,
    mode: str = "triangular",
    gamma: Numeric = 1.0,
) -> Schedule:
  r"""Smith's cyclical learning rate: triangular waves between `base_value` and `max_value`.

  Letting the learning rate cycle between bounds instead of only decaying trades a little
  short-term loss for faster progress through saddle points and plateaus; a cycle lasts
  `2 * step_size` steps (Smith suggests 2 to 10 epochs for `step_size`).

  .. math::
      c = \left\lfloor 1 + \frac{t}{2s} \right\rfloor, \quad
      x = \left|\frac{t}{s} - 2c + 1\right|, \quad
      \eta_t = \eta_{base} + (\eta_{max} - \eta_{base}) \max(0, 1 - x)\,\sigma, \\
      \sigma = 1 \;\text{(triangular)}, \quad 2^{-(c - 1)} \;\text{(triangular2)}, \quad
      \gamma^{t} \;\text{(exp\_range)}

  with :math:`s` = `step_size` and :math:`\gamma` = `gamma`.

  Args:
    base_value: :math:`\eta_{base}`, the lower bound, at the start of each cycle.
    max_value: :math:`\eta_{max} \ge \eta_{base}`, the peak of the first cycle.
    step_size: :math:`s > 0`, the steps of one half cycle.
    mode: 'triangular' (constant amplitude), 'triangular2' (amplitude halved every cycle) or
      'exp_range' (amplitude multiplied by `gamma` every step).
    gamma: :math:`\gamma` in (0, 1], used by 'exp_range' only.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.cyclic_schedule(0.1, 1.0, step_size=10, mode='triangular2')
    >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20, 30, 40)]
    [0.1, 0.55, 1.0, 0.1, 0.55, 0.1]

  References:
    Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    https://arxiv.org/abs/1506.01186
  """
  fn = "cyclic_schedule"
  _checks.check_scalar(fn, "base_value", base_value)
  _checks.check_scalar(fn, "max_value", max_value)
  if _cycles.concrete(base_value) and _cycles.concrete(max_value) and _cycles.num(base_value) > _cycles.num(max_value):
    raise ValueError(f"gradtx.{fn}: base_value must be <= max_value, got base_value="
                     f"{_cycles.num(base_value)!r} and max_value={_cycles.num(max_value)!r}.")
  _checks.check_scalar(fn, "step_size", step_size, low=0.0, low_open=True)
  _checks.check_choice(fn, "mode", mode, _CYCLIC_MODES)
  _checks.check_scalar(fn, "gamma", gamma, low=0.0, high=1.0, low_open=True)

  def schedule(count):
    t = _cycles.as_float(count)
    cycle, position = _cycles.divmod_count(count, 2 * step_size)  # position = t - 2 s (c - 1)
    cycle = cycle + 1
    x = jnp.abs(position / step_size - 1)  # = |t / s - 2c + 1|, without cancellation
    if mode == "triangular":
      scale = 1.0
    elif mode == "triangular2":
      scale = jnp.exp2(1.0 - cycle)
    else:
      scale = jnp.power(gamma, t)
    return base_value + (max_value - base_value) * jnp.maximum(0.0, 1 - x) * scale

  return schedule


def transformer_schedule(d_model: Numeric, warmup_steps: Numeric = 4000,
                         scale: Numeric = 1.0) -> Schedule:
  r"""The Transformer's learning rate: linear warmup, then inverse square-root decay.

  The rate grows linearly for `warmup_steps` steps, peaks at :math:`t = w`, then decays as
  :math:`1/\sqrt{t}`; wider models (larger `d_model`) get smaller rates. Vaswani et al. used it
  with Adam(b1=0.9, b2=0.98, eps=1e-9) and :math:`w = 4000`.

  .. math::
      \eta_t = \text{scale} \cdot d^{-0.5} \min\left(t^{-0.5},\; t\, w^{-1.5}\right), \quad
      t = \text{count} + 1

  with :math:`d` = `d_model` and :math:`w` = `warmup_steps`; the peak value is
  :math:`\text{scale} \cdot (d w)^{-0.5}`.

  Args:
    d_model: :math:`d > 0`, the model width.
    warmup_steps: :math:`w > 0`, the step (counted from 1) of the peak.
    scale: a constant factor >= 0.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.transformer_schedule(d_model=512, warmup_steps=4000)
    >>> [f'{float(schedule(t)):.3e}' for t in (0, 3999, 15999)]
    ['1.747e-07', '6.988e-04', '3.494e-04']

  References:
    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Sec. 5.3, eq. (3).
    https://arxiv.org/abs/1706.03762
  """
  fn = "transformer_schedule"
  _checks.check_scalar(fn, "d_model", d_model, low=0.0, low_open=True)
  _checks.check_scalar(fn, "warmup_steps", warmup_steps, low=0.0, low_open=True)
  _checks.check_scalar(fn, "scale", scale, low=0.0)

  def schedule(count):
    t = _cycles.as_float(count) + 1
    warmup = t * jnp.power(jnp.asarray(warmup_steps, jnp.float32), -1.5)
    return scale * jax.lax.rsqrt(jnp.asarray(d_model, jnp.float32)) * jnp.minimum(
        jax.lax.rsqrt(t), warmup)

  return schedule


def momentum_schedule(max_momentum: Numeric = 0.99, steps_per_stage: Numeric = 250) -> Schedule:
  r"""Sutskever et al.'s slowly increasing momentum: 0.5, 0.75, 0.83, ... up to a maximum.

  Momentum starts at 0.5 and rises every `steps_per_stage` steps as :math:`1 - 1/(2(k + 1))`
  for stage :math:`k`, so early, badly conditioned steps are damped and later ones move fast.
  Use it as `trace(decay=momentum_schedule())` or `sgd(lr, momentum=momentum_schedule())`.

  .. math::
      \mu_t = \min\left(1 - 2^{-1 - \log_2(\lfloor t / S \rfloor + 1)},\; \mu_{max}\right)
      = \min\left(1 - \frac{1}{2(\lfloor t / S \rfloor + 1)},\; \mu_{max}\right)

  with :math:`S` = `steps_per_stage` (250 in the paper) and :math:`\mu_{max}` = `max_momentum`
  (the paper tries 0.9, 0.99, 0.995 and 0.999).

  Args:
    max_momentum: :math:`\mu_{max}` in [0, 1), the cap.
    steps_per_stage: :math:`S > 0`, the steps between increases.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.momentum_schedule(max_momentum=0.9)
    >>> [round(float(schedule(t)), 4) for t in (0, 250, 500, 10_000)]
    [0.5, 0.75, 0.8333, 0.9]

  References:
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013, Sec. 4.1. https://proceedings.mlr.press/v28/sutskever13.html
  """
  fn = "momentum_schedule"
  _checks.check_scalar(fn, "max_momentum", max_momentum, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "steps_per_stage", steps_per_stage, low=0.0, low_open=True)

  def schedule(count):
    stage = _cycles.divmod_count(count, steps_per_stage)[0]
    return jnp.minimum(1 - 0.5 / (stage + 1), max_momentum)

  return schedule


_SCALING_RULES = ("linear", "sqrt")


def scale_learning_rate(
    learning_rate: ScalarOrSchedule,
    batch_size: Numeric,
    base_batch_size: Numeric,
    rule: str = "linear",
) -> ScalarOrSchedule:
  r"""Rescales a learning rate tuned at `base_batch_size` for training at `batch_size`.

  A batch :math:`k` times larger averages away :math:`k` times less gradient noise per step:
  SGD keeps the same trajectory per example by multiplying the learning rate by :math:`k`
  (linear rule); adaptive methods such as Adam by :math:`\sqrt{k}` (square-root rule).

  .. math::
      \eta' = \eta \cdot \frac{B}{B_0} \;\text{(linear)} \quad\text{or}\quad
      \eta \cdot \sqrt{B / B_0} \;\text{(sqrt)}

  with :math:`B` = `batch_size` and :math:`B_0` = `base_batch_size`.

  Args:
    learning_rate: :math:`\eta`, a float, a scalar array or a schedule.
    batch_size: :math:`B > 0`, the new batch size.
    base_batch_size: :math:`B_0 > 0`, the batch size `learning_rate` was tuned for.
    rule: 'linear' (SGD, Goyal et al.) or 'sqrt' (adaptive methods).

  Returns:
    The rescaled learning rate: a float for Python numbers, an array for arrays, a schedule for
    a schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.scale_learning_rate(0.1, batch_size=8192, base_batch_size=256)
    3.2
    >>> gradtx.scale_learning_rate(1e-3, 1024, 256, rule='sqrt')
    0.002

  References:
    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
    https://arxiv.org/abs/1706.02677
    Krizhevsky, "One weird trick for parallelizing convolutional neural networks", 2014.
    https://arxiv.org/abs/1404.5997
    Hoffer, Hubara & Soudry, "Train longer, generalize better", NeurIPS 2017.
    https://arxiv.org/abs/1705.08741
  """
  fn = "scale_learning_rate"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  _checks.check_scalar(fn, "batch_size", batch_size, low=0.0, low_open=True)
  _checks.check_scalar(fn, "base_batch_size", base_batch_size, low=0.0, low_open=True)
  _checks.check_choice(fn, "rule", rule, _SCALING_RULES)
  if isinstance(batch_size, numbers.Real) and isinstance(base_batch_size, numbers.Real):
    ratio = batch_size / base_batch_size
    factor = ratio if rule == "linear" else math.sqrt(ratio)
  else:
    ratio = jnp.asarray(batch_size, jnp.float32) / base_batch_size
    factor = ratio if rule == "linear" else jnp.sqrt(ratio)
  if callable(learning_rate):
    def schedule(count):
      return factor * learning_rate(count)

    return schedule
  return factor * learning_rate
