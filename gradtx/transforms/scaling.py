"""Scaling by a constant, by the learning rate, or by a schedule."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import (
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    init_empty_state,
)
from gradtx.numerics import safe_increment

__all__ = [
    "ScaleByScheduleState",
    "scale",
    "scale_by_learning_rate",
    "scale_by_schedule",
]


def _scale_tree(updates: Any, factor: Any) -> Any:
  return jax.tree.map(
      lambda g: None if g is None else _checks.as_dtype(factor, g) * g, updates,
      is_leaf=lambda x: x is None)


def scale(step_size: Any) -> GradientTransformation:
  r"""Multiplies every update by a constant.

  .. math:: u_t = \alpha g_t \quad (\alpha = \texttt{step\_size})

  Args:
    step_size: a finite scalar (float or array, possibly a tracer). For a step-dependent factor
      use `scale_by_schedule`.

  Returns:
    A stateless `GradientTransformation` (state `ScaleState()`, which is `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale(-0.1)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()
    [-0.10000000149011612]

  References:
    `optax.scale` (optax 0.2.8).
  """
  _checks.check_scalar("scale", "step_size", step_size)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return _scale_tree(updates, step_size), state

  return GradientTransformation(init_empty_state, update_fn)


class ScaleByScheduleState(NamedTuple):
  """The step count of `scale_by_schedule` and `scale_by_learning_rate`.

  Attributes:
    count: int32 scalar, the step count.
  """

  count: jax.Array  # int32 scalar


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
  r"""Multiplies the updates by a schedule of the step count.

  .. math:: u_t = \alpha(t) g_t, \quad t = 0, 1, \dots

  Args:
    step_size_fn: a callable from the int32 step count (starting at 0) to a scalar.

  Returns:
    A `GradientTransformation` whose state is `ScaleByScheduleState(count)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_schedule(lambda t: 1.0 / (t + 1))
    >>> u, s = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    >>> tx.update(jnp.ones(1), s)[0].tolist()
    [0.5]

  References:
    `optax.scale_by_schedule` (optax 0.2.8).
  """
  if not callable(step_size_fn):
    raise TypeError(
        "gradtx.scale_by_schedule: step_size_fn must be a callable of the step count, got "
        f"{type(step_size_fn).__name__}. Hint: use gradtx.scale for a constant.")
  _checks.check_schedule_output("scale_by_schedule", "step_size_fn", step_size_fn)
  return _scale_by_resolved("scale_by_schedule", "step_size_fn", step_size_fn, 1)


def _scale_by_resolved(fn: str, name: str, value: ScalarOrSchedule, sign: int
                       ) -> GradientTransformation:

  def init_fn(params):
    del params
    return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    step_size = _checks.resolve(value, state.count, fn=fn, name=name)
    factor = step_size if sign == 1 else -step_size
    return _scale_tree(updates, factor), ScaleByScheduleState(count=safe_increment(state.count))

  return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
  r"""Multiplies the updates by minus the learning rate (gradient *descent*).

  .. math:: u_t = -\eta_t g_t \quad (\eta_t = \texttt{learning\_rate}(t) \text{ or a constant})

  This is the only transformation that flips the sign: every other one returns deltas to be
  added. As optax, a constant learning rate keeps no state (`EmptyState()`) and a schedule keeps
  its step count (`ScaleByScheduleState(count)`, as `scale_by_schedule`): the state's structure
  depends on whether `learning_rate` is callable, never on its value.

  Args:
    learning_rate: a finite float, a scalar array (a tracer under `vmap` is fine) or a schedule.
      `None` (optax's default) is a unit learning rate, :math:`u_t = -g_t`: Zeiler's ADADELTA
      step, which descends. Deliberately not optax's meaning: optax returns `identity()` for
      `None`, which skips the sign flip, so that `adadelta()` *ascends* the loss.
    flip_sign: multiply by `-learning_rate` (default) or by `+learning_rate`.

  Returns:
    A `GradientTransformation` with state `EmptyState()` for a constant, or
    `ScaleByScheduleState(count)` for a schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_learning_rate(0.5)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()
    [-0.5]

  References:
    `optax.scale_by_learning_rate` (optax 0.2.8).
  """
  fn = "scale_by_learning_rate"
  if learning_rate is None:
    learning_rate = 1.0
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  _checks.check_bool(fn, "flip_sign", flip_sign)
  sign = -1 if flip_sign else 1
  if callable(learning_rate):
    return _scale_by_resolved(fn, "learning_rate", learning_rate, sign)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return _scale_tree(updates, learning_rate if sign == 1 else -learning_rate), state

  return GradientTransformation(init_empty_state, update_fn)
