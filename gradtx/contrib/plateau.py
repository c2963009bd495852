"""Reduce the learning rate on a plateau of the loss (optax.contrib's `reduce_on_plateau`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs
from gradtx.numerics import safe_increment

__all__ = [
    "ReduceLROnPlateauState",
    "reduce_on_plateau",
]


def _metric_dtype(params: Any) -> Any:
  """The dtype of reduce_on_plateau's scalars: the params' widest float dtype, at least float32."""
  dtypes = [jnp.asarray(x).dtype for x in jax.tree.leaves(params)]
  dtype = jnp.float32
  for d in dtypes:
    if jnp.issubdtype(d, jnp.floating):
      dtype = jnp.promote_types(dtype, d)
  return dtype


_PLATEAU_MODES = ("min", "max")


class ReduceLROnPlateauState(NamedTuple):
  """State of `reduce_on_plateau`, with optax's field names.

  Attributes:
    scale: float scalar, the factor that multiplies the updates.
    best_value: float scalar, the best accumulated metric so far.
    plateau_count: int32 scalar, the evaluations without improvement.
    cooldown_count: int32 scalar, the evaluations left in the cooldown.
    count: int32 scalar, the values accumulated towards the next evaluation.
    avg_value: float scalar, their running mean.
  """

  scale: jax.Array  # float scalar
  best_value: jax.Array  # float scalar
  plateau_count: jax.Array  # int32 scalar
  cooldown_count: jax.Array  # int32 scalar
  count: jax.Array  # int32 scalar
  avg_value: jax.Array  # float scalar


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
    *,
    mode: str = "min",
) -> GradientTransformationExtraArgs:
  r"""Multiplies the updates by a scale that shrinks by `factor` when the loss stops improving.

  Each `update` takes the current loss (or any monitored metric) as `value=`. The values are
  averaged over `accumulation_size` calls; each average is one evaluation. After `patience`
  evaluations in a row without improvement the scale is multiplied by `factor` (never below
  `min_scale`), then `cooldown` evaluations pass before plateaus are counted again. Put it after
  the learning rate, `chain(adam(1e-3), reduce_on_plateau())`, and pass the loss through
  `gradtx.chain` or `flax.nnx.Optimizer.update(..., value=loss)` (`optax.chain` drops it).

  .. math::
      \bar v = \tfrac{1}{K}\sum_{k=1}^{K} v_k, \quad
      \text{improved} = \bar v < b - \rho\,|b| - \alpha \;(\text{min}) \;\text{or}\;
      \bar v > b + \rho\,|b| + \alpha \;(\text{max}), \\
      s \leftarrow \max(\phi\, s, s_{min}) \;\text{after}\; P \;\text{evaluations without
      improvement}, \quad u_t = s\, g_t

  with :math:`K` = `accumulation_size`, :math:`b` = `best_value`, :math:`\rho` = `rtol`,
  :math:`\alpha` = `atol`, :math:`\phi` = `factor`, :math:`P` = `patience`, :math:`s_{min}` =
  `min_scale`.

  Args:
    factor: :math:`\phi` in (0, 1), the factor applied to the scale on a plateau.
    patience: :math:`P \ge 1`, evaluations without improvement before the scale is reduced.
    rtol: :math:`\rho` in [0, 1], the relative tolerance of an improvement.
    atol: :math:`\alpha \ge 0`, the absolute tolerance of an improvement.
    cooldown: evaluations (>= 0) after a reduction during which plateaus are not counted.
    accumulation_size: values (>= 1) averaged into one evaluation; 1 for a validation loss,
      more for noisy mini-batch losses.
    min_scale: :math:`s_{min}` in [0, 1], the scale below which no reduction goes.
    mode: 'min' for losses (improvement = decrease) or 'max' for accuracies.

  Returns:
    A `GradientTransformationExtraArgs` with state `ReduceLROnPlateauState(scale, best_value,
    plateau_count, cooldown_count, count, avg_value)`, whose `update(updates, state,
    params=None, *, value)` requires the scalar metric `value`.

  Differences from optax (`optax.contrib.reduce_on_plateau`, 0.2.8): the tolerance is relative
  to :math:`|b|`, so negative metrics (log-likelihoods, ELBOs) work; for :math:`b \ge 0` the test
  is optax's `avg < (1 - rtol) * best - atol`, bit for bit, whose threshold lies above a negative
  `best`, so optax counts a plateau below zero as progress and never reduces. `mode='max'` is
  added. `scale`, `best_value` and `avg_value` are at least float32 (optax uses the params'
  dtypes, so bfloat16 params average the loss in bfloat16) and the scale is cast to each update's
  dtype. `patience` must be >= 1 (optax's `patience=0`
  reduces on every improvement) and `rtol = atol = 0` is allowed (any strict improvement).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.reduce_on_plateau(factor=0.5, patience=2)
    >>> state = tx.init(jnp.zeros(1))
    >>> for loss in (3.0, 2.0, 2.0, 2.0):
    ...   u, state = tx.update(jnp.ones(1), state, value=loss)
    >>> u.tolist()
    [0.5]

  References:
    Bourez, "Deep Learning with Theano", Packt 2017, the update-rules chapter: reduce the
    learning rate by a factor when the training loss stops improving.
    PyTorch's `torch.optim.lr_scheduler.ReduceLROnPlateau`; `optax.contrib.reduce_on_plateau`.
  """
  fn = "reduce_on_plateau"
  _checks.check_scalar(fn, "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
  _checks.check_int(fn, "patience", patience, 1,
             " patience=1 reduces after the first evaluation without improvement.")
  _checks.check_scalar(fn, "rtol", rtol, low=0.0, high=1.0)
  _checks.check_scalar(fn, "atol", atol, low=0.0)
  _checks.check_int(fn, "cooldown", cooldown, 0)
  _checks.check_int(fn, "accumulation_size", accumulation_size, 1)
  _checks.check_scalar(fn, "min_scale", min_scale, low=0.0, high=1.0)
  _checks.check_choice(fn, "mode", mode, _PLATEAU_MODES)
  sign = 1.0 if mode == "min" else -1.0  # compare in 'min' coordinates: sign * value

  def init_fn(params):
    dtype = _metric_dtype(params)
    return ReduceLROnPlateauState(
        scale=jnp.ones([], dtype),
        best_value=jnp.asarray(sign * jnp.inf, dtype),
        plateau_count=jnp.zeros([], jnp.int32),
        cooldown_count=jnp.zeros([], jnp.int32),
        count=jnp.zeros([], jnp.int32),
        avg_value=jnp.zeros([], dtype))

  def evaluate(state):
    """One evaluation of the accumulated average: the new scale, best value and counters."""
    v, b = sign * state.avg_value, sign * state.best_value
    # b - rtol |b| - atol, written as optax's (1 - rtol) b - atol when b >= 0 (same rounding);
    # an infinite b (no evaluation yet) is its own threshold.
    threshold = jnp.where(b >= 0, (1 - rtol) * b, (1 + rtol) * b) - atol
    improved = v < jnp.where(jnp.isinf(b), b, threshold.astype(b.dtype))
    best = jnp.where(improved, state.avg_value, state.best_value)
    plateau = jnp.where(improved, 0, safe_increment(state.plateau_count))
    in_cooldown = state.cooldown_count > 0
    reduce = jnp.logical_and(~in_cooldown, plateau >= patience)
    scale = jnp.where(reduce, state.scale * factor, state.scale)
    scale = jnp.where(in_cooldown, state.scale, jnp.maximum(scale, min_scale))
    return ReduceLROnPlateauState(
        scale=scale.astype(state.scale.dtype),
        best_value=best.astype(state.best_value.dtype),
        plateau_count=jnp.where(in_cooldown | reduce, 0, plateau).astype(jnp.int32),
        cooldown_count=jnp.where(
            in_cooldown, state.cooldown_count - 1, jnp.where(reduce, cooldown, 0)
        ).astype(jnp.int32),
        count=jnp.zeros([], jnp.int32),
        avg_value=jnp.zeros_like(state.avg_value))

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del params, extra_args
    if value is None:
      raise TypeError(
          f"gradtx.{fn}: update needs the monitored metric as the keyword argument value, e.g. "
          "tx.update(grads, state, params, value=loss). Hint: gradtx.chain and "
          "flax.nnx.Optimizer.update forward it; optax.chain forwards extra arguments only to "
          "optax's GradientTransformationExtraArgs, so use gradtx.chain.")
    if jnp.shape(value) != ():
      raise ValueError(f"gradtx.{fn}: value must be a scalar (the loss or metric), got an array "
                       f"of shape {jnp.shape(value)}. Hint: pass the mean loss.")
    count = safe_increment(state.count)
    value = jnp.asarray(value).astype(state.avg_value.dtype)
    avg = ((state.count * state.avg_value + value) / count).astype(state.avg_value.dtype)
    accumulated = state._replace(count=count, avg_value=avg)
    evaluated = evaluate(accumulated)
    new_state = jax.tree.map(
        lambda e, a: jnp.where(count == accumulation_size, e, a), evaluated, accumulated)
    scale = new_state.scale
    updates = jax.tree.map(
        lambda g: None if g is None else g * scale.astype(jnp.asarray(g).dtype), updates,
        is_leaf=is_none)
    return updates, new_state

  return GradientTransformationExtraArgs(init_fn, update_fn)
