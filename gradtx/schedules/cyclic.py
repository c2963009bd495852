"""Smith's cyclical learning rates (triangular, triangular2, exp_range; WACV 2017): a schedule from the sources that optax lacks."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule

__all__ = [
    "cyclic_schedule",
]


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
