r"""Weight decay added to the updates (L2 regularization, or decoupled when added after scaling),
and Loshchilov & Hutter's normalized weight decay.

Decoupled weight decay in the paper's exact form
-------------------------------------------------
optax (and gradtx by default) multiply the decay by the full learning rate,
:math:`\theta_t = \theta_{t-1} - \eta_t (u_t + \lambda \theta_{t-1})`. Loshchilov & Hutter
separate the base learning rate :math:`\alpha` from the schedule multiplier :math:`\eta_t` and
multiply the decay by :math:`\eta_t` only (Algorithm 2):
:math:`\theta_t = \theta_{t-1} - \eta_t (\alpha u_t + \lambda \theta_{t-1})`, so that
:math:`\alpha` and :math:`\lambda` can be tuned independently. `adamw` and `sgdw` take the
multiplier as `schedule_multiplier=`.

AdamWR (Adam with warm restarts) is then a composition: the SGDR schedule as the multiplier
(:math:`\eta_{max} = 1, \eta_{min} = 0`) and the normalized weight decay of the current cycle,
both with the same periods in steps::

    T0, T_mult = 10 * steps_per_epoch, 2              # first cycle: 10 epochs, then 20, 40, ...
    tx = gradtx.adamw(
        1e-3,
        weight_decay=gradtx.normalized_weight_decay_schedule(
            0.05, batch_size, num_train_points, T0, T_mult, steps_per_epoch=steps_per_epoch),
        schedule_multiplier=gradtx.warm_restarts_schedule(1.0, T0, T_mult))
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx._trees import is_none
from gradtx.base import EmptyState, GradientTransformation, Numeric, ScalarOrSchedule, Schedule
from gradtx.numerics import safe_increment
from gradtx.transforms.masking import masked
from gradtx.tree.casting import cast_like

__all__ = [
    "WeightDecaySchedule",
    "add_decayed_weights",
    "normalized_weight_decay",
    "normalized_weight_decay_schedule",
]


class WeightDecaySchedule(NamedTuple):
  """State of `add_decayed_weights` with a schedule: the step count that drives it.

  optax's name and layout for a `weight_decay` schedule; gradtx uses it as well when only
  `schedule_multiplier` (not in optax) is a schedule.

  Attributes:
    count: int32 scalar, the step count.
  """

  count: jax.Array  # int32 scalar


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
    *,
    schedule_multiplier: ScalarOrSchedule | None = None,
) -> GradientTransformation:
  r"""Adds the parameters scaled by `weight_decay` to the updates, as optax's.

  Placed before the adaptive scaling this is L2 regularization; placed after it (just before
  `scale_by_learning_rate`) it is the decoupled weight decay of AdamW, which shrinks every
  weight by the same fraction of the learning rate. With `schedule_multiplier` the decay is also
  multiplied by Loshchilov & Hutter's :math:`\eta_t`, the term :math:`\eta_t \lambda
  \theta_{t-1}` of their SGDW (Algorithm 1, line 9), which bypasses the momentum buffer.

  .. math:: u_t = g_t + \eta_t \lambda_t \theta_t \quad (\lambda_t = \texttt{weight\_decay},
     \; \eta_t = \texttt{schedule\_multiplier}, \; 1 \text{ when None})

  Args:
    weight_decay: :math:`\lambda \geq 0`; a float, scalar array or schedule of the step count.
    mask: optional; a pytree of bools shaped like the params (or a prefix of it), or a function
      of the params returning one. Only `True` leaves are decayed (see `masked`), e.g. to skip
      biases: `lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`.
    schedule_multiplier: :math:`\eta_t \geq 0`, a float, scalar array or schedule; None (the
      default, optax's behaviour) multiplies by 1. Not in optax.

  Returns:
    A `GradientTransformation` whose state is, as optax's, `EmptyState()` (also named
    `AddDecayedWeightsState`) when the hyperparameters are constants, and
    `WeightDecaySchedule(count)` when `weight_decay` or `schedule_multiplier` is a schedule;
    wrapped in `MaskedState` when `mask` is given. Its `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.add_decayed_weights(0.1)
    >>> p = jnp.asarray([1.0, 2.0])
    >>> tx.update(jnp.zeros(2), tx.init(p), p)[0].tolist()
    [0.10000000149011612, 0.20000000298023224]

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    https://arxiv.org/abs/1711.05101
  """
  _checks.check_scalar("add_decayed_weights", "weight_decay", weight_decay, low=0, schedule=True)
  _checks.check_scalar("add_decayed_weights", "schedule_multiplier", schedule_multiplier, low=0,
                       schedule=True, optional=True)
  return _add_decayed_weights(weight_decay, mask, schedule_multiplier)


def _add_decayed_weights(weight_decay: Any, mask: Any, schedule_multiplier: Any = None
                         ) -> GradientTransformation:
  """`add_decayed_weights` without its `weight_decay >= 0` check: `fromage` adds a negative
  multiple of the params (its shrink factor minus one), as optax's fromage does."""
  is_zero = isinstance(weight_decay, (int, float)) and weight_decay == 0.0
  # Static: only a schedule needs the step count (a constant keeps optax's `EmptyState()`).
  scheduled = callable(weight_decay) or callable(schedule_multiplier)

  def init_fn(params):
    del params
    if scheduled:
      return WeightDecaySchedule(count=jnp.zeros([], jnp.int32))
    return EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error("add_decayed_weights")
    _checks.check_same_structure("add_decayed_weights", "updates", updates, "params", params)
    count = state.count if scheduled else None
    new_state = WeightDecaySchedule(count=safe_increment(count)) if scheduled else state
    if is_zero:  # A literal zero adds nothing (and keeps infinite params from making NaNs).
      return updates, new_state
    wd = _checks.resolve(weight_decay, count)
    if schedule_multiplier is not None:
      wd = _checks.resolve(schedule_multiplier, count) * wd
    out = jax.tree.map(
        lambda g, p: None if g is None else g + _checks.as_dtype(wd, g) * p,
        updates, params, is_leaf=is_none)
    return cast_like(out, updates), new_state

  tx = GradientTransformation(init_fn, update_fn)
  return tx if mask is None else masked(tx, mask)


def _check_normalized(fn: str, weight_decay_norm: Any, batch_size: Any,
                      num_train_points: Any) -> None:
  _checks.check_scalar(fn, "weight_decay_norm", weight_decay_norm, low=0.0)
  _checks.check_scalar(fn, "batch_size", batch_size, low=0.0, low_open=True)
  _checks.check_scalar(fn, "num_train_points", num_train_points, low=0.0, low_open=True)


def normalized_weight_decay(
    weight_decay_norm: Numeric,
    batch_size: Numeric,
    num_train_points: Numeric,
    num_epochs: Numeric,
) -> Numeric:
  r"""Loshchilov & Hutter's normalized weight decay: the decay for a given training budget.

  The best raw weight decay shrinks as a run makes more weight updates; normalizing by the
  number of batch passes makes one value :math:`\lambda_{norm}` work across batch sizes and
  run lengths. With warm restarts (AdamWR) `num_epochs` is the current cycle's length :math:`T_i`:
  see `normalized_weight_decay_schedule`.

  .. math:: \lambda = \lambda_{norm} \sqrt{\frac{b}{B T}}

  with :math:`\lambda_{norm}` = `weight_decay_norm`, :math:`b` = `batch_size`, :math:`B` =
  `num_train_points` and :math:`T` = `num_epochs`.

  Args:
    weight_decay_norm: :math:`\lambda_{norm} \geq 0` (the paper finds 0.025 to 0.05 good for
      AdamW on CIFAR-10).
    batch_size: :math:`b > 0`, the examples per step.
    num_train_points: :math:`B > 0`, the examples per epoch.
    num_epochs: :math:`T > 0`, the epochs of the run (or of the current restart cycle).

  Returns:
    :math:`\lambda`, a Python float when every argument is a Python number, else a float32 array
    (arguments may be arrays or tracers, e.g. under `jax.vmap`). Pass it as `weight_decay`.

  Example:
    >>> import gradtx
    >>> round(gradtx.normalized_weight_decay(0.05, 128, 50_000, 100), 8)
    0.00025298

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Sec. 3 and
    Appendix B.1. https://arxiv.org/abs/1711.05101
  """
  fn = "normalized_weight_decay"
  _check_normalized(fn, weight_decay_norm, batch_size, num_train_points)
  _checks.check_scalar(fn, "num_epochs", num_epochs, low=0.0, low_open=True)
  args = (weight_decay_norm, batch_size, num_train_points, num_epochs)
  if all(isinstance(a, numbers.Real) for a in args):
    return weight_decay_norm * math.sqrt(batch_size / (num_train_points * num_epochs))
  args = [jnp.asarray(a, jnp.float32) for a in args]
  return args[0] * jnp.sqrt(args[1] / (args[2] * args[3]))


def normalized_weight_decay_schedule(
    weight_decay_norm: Numeric,
    batch_size: Numeric,
    num_train_points: Numeric,
    first_period: Numeric,
    period_multiplier: Numeric = 1.0,
    *,
    steps_per_epoch: Numeric | None = None,
) -> Schedule:
  r"""AdamWR's normalized weight decay, a schedule of the warm-restart cycle.

  The decay is :math:`\lambda_{norm} \sqrt{b / (B T_i)}` for the warm-restart cycle :math:`i`
  that contains the step.

  Use it as `weight_decay` together with `warm_restarts_schedule(1.0, first_period,
  period_multiplier)` as the `schedule_multiplier` of `adamw` or `sgdw`: both take the same
  periods in steps, so the decay changes exactly at the restarts (the cycle is found with the
  same code). Each cycle of :math:`P_i = T_0 m^i` steps lasts :math:`T_i = P_i / s` epochs:

  .. math::
      \lambda_t = \lambda_{norm} \sqrt{\frac{b}{B T_i}}, \quad T_i = \frac{T_0 m^i}{s}

  with :math:`T_0` = `first_period`, :math:`m` = `period_multiplier` and :math:`s` =
  `steps_per_epoch`. With the default :math:`s = B / b` this is
  :math:`\lambda_{norm} / \sqrt{P_i}`: one over the root of the cycle's number of steps.

  Args:
    weight_decay_norm: :math:`\lambda_{norm} \geq 0`.
    batch_size: :math:`b > 0`, the examples per step.
    num_train_points: :math:`B > 0`, the examples per epoch.
    first_period: :math:`T_0 > 0`, the first cycle's length in steps (as `warm_restarts_schedule`).
    period_multiplier: :math:`m \geq 1`, the growth factor of the periods.
    steps_per_epoch: :math:`s > 0`, to convert steps to epochs; default `num_train_points /
      batch_size` (pass `math.ceil(...)` if the last, smaller batch of an epoch is kept).

  Returns:
    A schedule of the int32 step count returning float32 scalars.

  Example:
    >>> import gradtx
    >>> wd = gradtx.normalized_weight_decay_schedule(0.05, 100, 1000, first_period=10,
    ...                                              period_multiplier=2)
    >>> [round(float(wd(t)), 5) for t in (0, 9, 10, 29, 30)]
    [0.01581, 0.01581, 0.01118, 0.01118, 0.00791]

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Sec. 3 and
    Appendix B.1. https://arxiv.org/abs/1711.05101
  """
  fn = "normalized_weight_decay_schedule"
  _check_normalized(fn, weight_decay_norm, batch_size, num_train_points)
  _checks.check_scalar(fn, "first_period", first_period, low=0.0, low_open=True)
  _checks.check_scalar(fn, "period_multiplier", period_multiplier, low=1.0)
  _checks.check_scalar(fn, "steps_per_epoch", steps_per_epoch, low=0.0, low_open=True,
                       optional=True)
  integer_periods = None
  if _cycles.concrete(first_period) and _cycles.concrete(period_multiplier):
    t0, m = _cycles.num(first_period), _cycles.num(period_multiplier)
    if t0 == int(t0) and m == int(m) and t0 <= _cycles.INT32_MAX and m <= _cycles.INT32_MAX:
      integer_periods = (int(t0), int(m))

  def schedule(count):
    spe = (jnp.asarray(num_train_points, jnp.float32) / batch_size if steps_per_epoch is None
           else steps_per_epoch)
    period = _cycle_period(jnp.asarray(count), first_period, period_multiplier, integer_periods)
    return normalized_weight_decay(weight_decay_norm, batch_size, num_train_points,
                                   period / spe)

  return schedule


# Compiled once (as `_warm_restarts`): evaluated op by op, the cycle search is slow eagerly.
@functools.partial(jax.jit, static_argnums=3)
def _cycle_period(count, first_period, period_multiplier, integer_periods):
  """The length in steps of the warm-restart cycle containing `count` (float32)."""
  t = jnp.maximum(count, 0)
  if integer_periods is not None and jnp.issubdtype(t.dtype, jnp.integer):
    return _cycles.cycle_table(*integer_periods)(t.astype(jnp.int32))[2]
  return _cycles.cycle_float(t, first_period, period_multiplier)[2]
