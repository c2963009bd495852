"""Plots of a schedule and of a learning-rate range test (matplotlib, imported on use)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import ScalarOrSchedule
from gradtx.tuning.range_test import LRRangeTestResult

__all__ = [
    "plot_lr_range_test",
    "plot_schedule",
]


def _pyplot(fn: str) -> Any:
  try:
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(
        f"gradtx.{fn} needs matplotlib, an optional dependency: pip install matplotlib") from e
  return plt


def plot_schedule(
    schedule: ScalarOrSchedule, num_steps: int, ax: Any = None, label: str | None = None
) -> Any:
  """Plots a schedule's value at steps `0 .. num_steps - 1` with matplotlib.

  Call it several times with labels to compare schedules on one Axes.

  Args:
    schedule: a schedule (a callable of the int32 step count), or a constant.
    num_steps: the number of steps to draw, >= 1.
    ax: a matplotlib Axes; default the current one (`plt.gca()`).
    label: the line's legend label (a legend is drawn when given).

  Returns:
    The matplotlib Axes.

  Example:
    >>> import gradtx
    >>> ax = gradtx.plot_schedule(gradtx.warm_restarts_schedule(1.0, 10, 2), 70)  # doctest: +SKIP

  References:
    `matplotlib.axes.Axes.plot`, on the values of an `optax` schedule (optax 0.2.8).
  """
  fn = "plot_schedule"
  _checks.check_scalar(fn, "schedule", schedule, schedule=True)
  if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 1:
    raise ValueError(f"gradtx.{fn}: num_steps must be an int >= 1, got {num_steps!r}.")
  plt = _pyplot(fn)
  steps = jnp.arange(int(num_steps), dtype=jnp.int32)
  if callable(schedule):
    values = jax.vmap(schedule)(steps)
  else:
    values = jnp.broadcast_to(jnp.asarray(schedule, jnp.float32), steps.shape)
  ax = plt.gca() if ax is None else ax
  ax.plot(np.asarray(steps), np.asarray(values, np.float64), label=label)
  ax.set_xlabel("step")
  ax.set_ylabel("value")
  if label is not None:
    ax.legend()
  return ax


def plot_lr_range_test(result: LRRangeTestResult, ax: Any = None) -> Any:
  """Plots an `lr_range_test` result: the loss against a log-scale learning rate.

  The raw loss is drawn faint, the smoothed loss solid, with a dashed vertical line at the
  suggested rate.

  Args:
    result: an `LRRangeTestResult`.
    ax: a matplotlib Axes; default the current one (`plt.gca()`).

  Returns:
    The matplotlib Axes.

  Example:
    >>> ax = gradtx.plot_lr_range_test(result)  # doctest: +SKIP

  References:
    Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017, Section 3.3
    (the learning-rate range test). https://arxiv.org/abs/1506.01186
  """
  if not isinstance(result, LRRangeTestResult):
    raise TypeError("gradtx.plot_lr_range_test: result must be an LRRangeTestResult, got "
                    f"{type(result).__name__}.")
  plt = _pyplot("plot_lr_range_test")
  ax = plt.gca() if ax is None else ax
  lrs = np.asarray(result.learning_rates, np.float64)
  line, = ax.plot(lrs, np.asarray(result.smoothed_losses, np.float64), label="smoothed loss")
  ax.plot(lrs, np.asarray(result.losses, np.float64), color=line.get_color(), alpha=0.3,
          label="loss")
  suggested = float(result.suggested_learning_rate)
  if math.isfinite(suggested):
    ax.axvline(suggested, color="k", linestyle="--", label=f"suggested {suggested:.2e}")
  ax.set_xscale("log")
  ax.set_xlabel("learning rate")
  ax.set_ylabel("loss")
  ax.legend()
  return ax
