"""Cosine decay (one SGDR cycle), its warm-up variant and SGDR as joined cosine cycles, with optax's names and values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule
from gradtx.schedules._common import _polynomial
from gradtx.schedules.join import join_schedules

__all__ = [
    "cosine_decay_schedule",
    "sgdr_schedule",
    "warmup_cosine_decay_schedule",
]


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
