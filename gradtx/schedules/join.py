"""Joining schedules at step boundaries, with optax's name and values."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import Schedule

__all__ = [
    "join_schedules",
]


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

  References:
    `optax.join_schedules` (optax 0.2.8).
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
