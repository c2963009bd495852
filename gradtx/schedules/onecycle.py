"""Smith's one-cycle schedules (cosine and linear), with optax's names and values."""

from __future__ import annotations

from typing import Any

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule
from gradtx.schedules._common import _require_concrete
from gradtx.schedules.polynomial import piecewise_interpolate_schedule

__all__ = [
    "cosine_onecycle_schedule",
    "linear_onecycle_schedule",
]


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
