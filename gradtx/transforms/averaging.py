"""Averages of the parameters kept in the optimizer state: Polyak averaging, an exponential moving
average of the params and snapshot ensembles at the ends of warm-restart cycles.

These transformations pass the updates through unchanged; they read `params + updates` (the params
the step produces) and keep an average or copies of them in the state. Put them last in the chain,
after the learning rate, so the updates they see are the final ones:
`chain(adam(1e-3), polyak_averaging())`. Evaluate with `averaged_params(opt_state)` or
`ensemble_predict(apply_fn, opt_state, x)`; training continues from the raw params.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, _cycles
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, Numeric
from gradtx.numerics import safe_increment

__all__ = [
    "EmaParamsState",
    "PolyakAveragingState",
    "SnapshotEnsembleState",
    "averaged_params",
    "ema_params",
    "ensemble_params",
    "ensemble_predict",
    "polyak_averaging",
    "snapshot_ensemble",
]


def _new_params(fn: str, updates: Any, params: Any, stored: Any, stored_name: str) -> Any:
  """The params the step produces, `params + updates` cast to the params' dtypes (as
  `apply_updates`), after checking the three trees against each other."""
  if params is None:
    raise _checks.missing_params_error(fn)
  _checks.check_same_structure(fn, "updates", updates, stored_name, stored)
  _checks.check_same_structure(fn, "params", params, stored_name, stored)
  return jax.tree.map(
      lambda u, p: p if u is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
      updates, params, is_leaf=is_none)


def _move_towards(average: Any, theta: Any, weight: jax.Array) -> Any:
  """`average + weight (theta - average)` per leaf, computed in at least float32 and stored in
  the average's dtype."""

  def move(a, th):
    dtype = jnp.promote_types(a.dtype, jnp.float32)
    a32 = a.astype(dtype)
    return (a32 + weight.astype(dtype) * (th.astype(dtype) - a32)).astype(a.dtype)

  return jax.tree.map(move, average, theta)


def _copy_params(params: Any, dtype: Any) -> Any:
  return jax.tree.map(lambda p: jnp.array(p, dtype=dtype), params)


class PolyakAveragingState(NamedTuple):
  r"""State of `polyak_averaging`: the number of averaged iterates and their mean.

  Attributes:
    count: int32 scalar, the number of averaged iterates.
    average: :math:`\hat\theta_t`, their mean.
  """

  count: jax.Array  # int32 scalar
  average: Any


def polyak_averaging(accumulator_dtype: Any = None) -> GradientTransformation:
  r"""Keeps the uniform running average of the parameter iterates (Polyak averaging).

  The mean of the points an optimizer visits is often better than the last one: in a convex
  problem it cancels the noise of SGD, and on a trajectory that oscillates across a valley it sits
  near the floor. The updates pass through unchanged; the average lives in the state. Put it last
  in the chain (it averages `params + updates`) and read it with `averaged_params(opt_state)`.

  .. math::
      \theta_t = \theta_{t-1} + u_t, \qquad
      \hat\theta_t = \frac{1}{t}\sum_{i=1}^{t} \theta_i
      = \hat\theta_{t-1} + \frac{1}{t}\left(\theta_t - \hat\theta_{t-1}\right)

  with :math:`u_t` the incoming (final) updates; :math:`\hat\theta_0 = \theta_0`, the params
  given to `init`, which step 1 replaces.

  Args:
    accumulator_dtype: dtype of the average (default: the params' dtype).

  Returns:
    A `GradientTransformation` with state `PolyakAveragingState(count, average)`; `update`
    needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(-1.0), gradtx.polyak_averaging())
    >>> params, state = jnp.zeros(1), tx.init(jnp.zeros(1))
    >>> for _ in range(3):  # params -1, -2, -3
    ...   u, state = tx.update(jnp.ones(1), state, params); params = params + u
    >>> gradtx.averaged_params(state).tolist()
    [-2.0]

  References:
    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM Journal on
    Control and Optimization 30(4), 1992.
    Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, Sec. 8.7.3, eq. (8.39).
  """
  fn = "polyak_averaging"
  accumulator_dtype = _checks.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

  def init_fn(params):
    return PolyakAveragingState(
        count=jnp.zeros([], jnp.int32), average=_copy_params(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    theta = _new_params(fn, updates, params, state.average, "state.average")
    count = safe_increment(state.count)
    average = _move_towards(state.average, theta, 1.0 / count.astype(jnp.float32))
    return updates, PolyakAveragingState(count=count, average=average)

  return GradientTransformation(init_fn, update_fn)


class EmaParamsState(NamedTuple):
  r"""State of `ema_params`: the step count and the (debiased) moving average of the params.

  Attributes:
    count: int32 scalar, the step count.
    average: :math:`\hat\theta_t`, the (debiased) moving average of the params.
  """

  count: jax.Array  # int32 scalar
  average: Any


def ema_params(
    decay: Numeric,
    debias: bool = True,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
  r"""Keeps an exponential moving average of the parameter iterates.

  Polyak averaging weighs a point visited long ago in a non-convex landscape as much as the
  latest; an exponentially decaying average forgets it (the Deep Learning book's eq. 8.40), with a
  memory of about :math:`1 / (1 - \beta)` steps. The updates pass through unchanged; put it last
  in the chain and read the average with `averaged_params(opt_state)`.

  .. math::
      \theta_t = \theta_{t-1} + u_t, \qquad m_t = \beta m_{t-1} + (1 - \beta)\,\theta_t, \\
      \hat\theta_t = \frac{m_t}{1 - \beta^t},\; m_0 = 0 \;\text{(debias)} \qquad\text{or}\qquad
      \hat\theta_t = m_t,\; m_0 = \theta_0

  The state stores :math:`\hat\theta_t` itself, updated as
  :math:`\hat\theta_t = \hat\theta_{t-1} + w_t (\theta_t - \hat\theta_{t-1})` with
  :math:`w_t = (1 - \beta) / (1 - \beta^t)` (debias; :math:`w_1 = 1`, and
  :math:`\beta \to 1` gives Polyak's :math:`1/t`) or :math:`1 - \beta`.

  Args:
    decay: :math:`\beta` in [0, 1), a float or a scalar array (e.g. 0.999).
    debias: divide by :math:`1 - \beta^t`, as Adam's bias correction, so the average is a
      weighted mean of :math:`\theta_1 \ldots \theta_t` from the first step; without it the
      average starts at the initial params :math:`\theta_0` (as TensorFlow's
      `ExponentialMovingAverage`), never at zero.
    accumulator_dtype: dtype of the average (default: the params' dtype).

  Returns:
    A `GradientTransformation` with state `EmaParamsState(count, average)`; `update` needs
    `params`. Before the first step, `average` holds the initial params.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(-1.0), gradtx.ema_params(0.5))
    >>> params, state = jnp.zeros(1), tx.init(jnp.zeros(1))
    >>> for _ in range(2):  # params -1, -2: (0.5 * -1 + -2) / 1.5
    ...   u, state = tx.update(jnp.ones(1), state, params); params = params + u
    >>> [round(x, 4) for x in gradtx.averaged_params(state).tolist()]
    [-1.6667]

  References:
    Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, Sec. 8.7.3, eq. (8.40).
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Sec. 3 (bias
    correction). https://arxiv.org/abs/1412.6980
  """
  fn = "ema_params"
  _checks.check_scalar(fn, "decay", decay, low=0.0, high=1.0, high_open=True)
  _checks.check_bool(fn, "debias", debias)
  accumulator_dtype = _checks.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

  def init_fn(params):
    return EmaParamsState(
        count=jnp.zeros([], jnp.int32), average=_copy_params(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    theta = _new_params(fn, updates, params, state.average, "state.average")
    count = safe_increment(state.count)
    beta = jnp.asarray(decay)
    beta = beta.astype(jnp.promote_types(beta.dtype, jnp.float32))
    weight = 1 - beta
    if debias:
      # `lax.pow` as in `bias_correction`: the same value eagerly and under jit.
      weight = weight / (1 - jax.lax.pow(beta, count.astype(beta.dtype)))
    average = _move_towards(state.average, theta, weight)
    return updates, EmaParamsState(count=count, average=average)

  return GradientTransformation(init_fn, update_fn)


_AVERAGING_STATES = (PolyakAveragingState, EmaParamsState)


def _find_state(opt_state: Any, types: tuple, what: str, fn: str) -> Any:
  """The single state of one of `types` inside a (nested) optimizer state."""
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, types))
           if isinstance(s, types)]
  if not found:
    raise ValueError(
        f"gradtx.{fn}: opt_state contains no {what} state. Hint: add gradtx.{what}(...) last in "
        "the chain and pass the chain's state.")
  if len(found) > 1:
    raise ValueError(
        f"gradtx.{fn}: opt_state contains {len(found)} {what} states; pass the part of the state "
        "that holds the one you want, e.g. opt_state[-1].")
  return found[0]


def averaged_params(opt_state: Any) -> Any:
  r"""Returns the averaged params kept by `polyak_averaging` or `ema_params` for evaluation.

  Searches a nested optimizer state (a chain's tuple, `masked`, `inject_hyperparams` or
  `flax.nnx.Optimizer.opt_state`) for the single averaging state and returns its average, already
  debiased, with the params' structure. Before the first step it is the initial params.
  It is :math:`\hat\theta_t = \frac1t \sum_{i=1}^t \theta_i` for `polyak_averaging` and
  :math:`\hat\theta_t = m_t / (1 - \beta^t)`, :math:`m_t = \beta m_{t-1} + (1 - \beta)\theta_t`,
  for `ema_params` (see them).

  Args:
    opt_state: the optimizer state, or any part of it containing exactly one averaging state.

  Returns:
    The averaged params.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(-1.0), gradtx.polyak_averaging())
    >>> gradtx.averaged_params(tx.init({'w': jnp.ones(2)}))['w'].tolist()
    [1.0, 1.0]

  References:
    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
    Optim. 30(4), 1992.
  """
  state = _find_state(
      opt_state, _AVERAGING_STATES, "polyak_averaging or ema_params", "averaged_params")
  return state.average


class SnapshotEnsembleState(NamedTuple):
  """State of `snapshot_ensemble`: a ring buffer of params snapshots.

  Attributes:
    count: int32 scalar, the step count.
    snapshots: the snapshots, each leaf with a leading axis of `num_snapshots`.
    num_stored: int32 scalar in [0, num_snapshots], the snapshots stored.
    next_index: int32 scalar in [0, num_snapshots), the next slot.
  """

  count: jax.Array  # int32 scalar
  snapshots: Any
  num_stored: jax.Array  # int32 scalar in [0, num_snapshots]
  next_index: jax.Array  # int32 scalar in [0, num_snapshots)


def snapshot_ensemble(
    num_snapshots: int,
    first_period: Numeric,
    period_multiplier: Numeric = 1.0,
) -> GradientTransformation:
  r"""Snapshot ensembles: records the params at the end of every warm-restart cycle.

  The snapshots are kept in a ring buffer of `num_snapshots` slots.

  Trained with a cyclic cosine schedule, a network converges to a different local minimum at the
  end of every cycle; saving each of those points gives an ensemble for the cost of one training
  run. The cycles are those of `warm_restarts_schedule(init_value, first_period,
  period_multiplier)`: pass it the same `first_period` and `period_multiplier` (the learning
  rate's own step count and this transformation's must agree; both count `update` calls from 0).
  The updates pass through unchanged; put it last in the chain. Predict with
  `ensemble_predict(apply_fn, opt_state, x)`.

  .. math::
      S_k = T_0 \frac{m^k - 1}{m - 1} \;(m > 1) \;\text{or}\; k T_0 \;(m = 1), \qquad
      \text{store}\; \theta_{t+1} = \theta_t + u_t \;\text{when}\; t + 1 \in \{S_1, S_2, \ldots\}

  with :math:`T_0` = `first_period`, :math:`m` = `period_multiplier` and :math:`t` the 0-based
  step count: the stored params are those after the last (smallest learning rate) step of a
  cycle. The newest `num_snapshots` snapshots are kept; the oldest is overwritten. For Smith's
  `cyclic_schedule(..., step_size)` use `first_period=2 * step_size`.

  Args:
    num_snapshots: :math:`M \ge 1`, the ensemble size (a Python int: it fixes the state's
      shapes). The state holds :math:`M` copies of the params.
    first_period: :math:`T_0 > 0`, the first cycle's length in steps (may be traced).
    period_multiplier: :math:`m \ge 1`, the growth factor of the cycles (may be traced).

  Returns:
    A `GradientTransformation` with state `SnapshotEnsembleState(count, snapshots, num_stored,
    next_index)`; `update` needs `params`. Cycle ends are exact integers for every int32 count
    when `first_period` and `period_multiplier` are concrete integers, as in
    `warm_restarts_schedule` (up to 2**24 steps otherwise).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(-1.0), gradtx.snapshot_ensemble(2, first_period=2))
    >>> params, state = jnp.zeros(1), tx.init(jnp.zeros(1))
    >>> for _ in range(6):  # params -1 ... -6; cycles end after steps 2, 4, 6
    ...   u, state = tx.update(jnp.ones(1), state, params); params = params + u
    >>> gradtx.ensemble_params(state)[0].tolist()  # slot 0 was -2, then overwritten by -6
    [[-6.0], [-4.0]]

  References:
    Huang, Li, Pleiss, Liu, Hopcroft & Weinberger, "Snapshot Ensembles: Train 1, get M for
    free", ICLR 2017. https://arxiv.org/abs/1704.00109
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
    https://arxiv.org/abs/1608.03983
  """
  fn = "snapshot_ensemble"
  if isinstance(num_snapshots, (bool, np.bool_)) or not isinstance(
      num_snapshots, (int, np.integer)):
    raise TypeError(
        f"gradtx.{fn}: num_snapshots must be a Python int (it fixes the state's shapes), got "
        f"{type(num_snapshots).__name__} {num_snapshots!r}.")
  if num_snapshots < 1:
    raise ValueError(f"gradtx.{fn}: num_snapshots must be >= 1, got {num_snapshots}.")
  num_snapshots = int(num_snapshots)
  _checks.check_scalar(fn, "first_period", first_period, low=0.0, low_open=True)
  _checks.check_scalar(fn, "period_multiplier", period_multiplier, low=1.0)
  integer_periods = None
  if _cycles.concrete(first_period) and _cycles.concrete(period_multiplier):
    t0, m = _cycles.num(first_period), _cycles.num(period_multiplier)
    if t0 == int(t0) and m == int(m) and t0 <= _cycles.INT32_MAX and m <= _cycles.INT32_MAX:
      integer_periods = (int(t0), int(m))

  def init_fn(params):
    return SnapshotEnsembleState(
        count=jnp.zeros([], jnp.int32),
        snapshots=jax.tree.map(
            lambda p: jnp.zeros((num_snapshots,) + jnp.shape(p), jnp.asarray(p).dtype), params),
        num_stored=jnp.zeros([], jnp.int32),
        next_index=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    theta = _new_params(fn, updates, params, state.snapshots, "state.snapshots")
    is_end = _ends_cycle(state.count, first_period, period_multiplier, integer_periods)
    index = state.next_index

    def write(buffer, th):
      slot = jnp.where(is_end, th.astype(buffer.dtype), buffer[index])
      return jax.lax.dynamic_update_index_in_dim(buffer, slot, index, 0)

    snapshots = jax.tree.map(write, state.snapshots, theta)
    stored = is_end.astype(jnp.int32)
    return updates, SnapshotEnsembleState(
        count=safe_increment(state.count),
        snapshots=snapshots,
        num_stored=jnp.minimum(state.num_stored + stored, num_snapshots),
        next_index=(index + stored) % num_snapshots)

  return GradientTransformation(init_fn, update_fn)


# One compiled kernel (as `warm_restarts_schedule`'s): op by op, the cycle index would dispatch
# dozens of primitives per eager step.
@functools.partial(jax.jit, static_argnums=3)
def _ends_cycle(count, first_period, period_multiplier, integer_periods):
  """Whether step `count` (0-based) is the last of its warm-restart cycle: `count + 1` starts the
  next cycle, with the cycles of `warm_restarts_schedule` (never once the count saturates)."""
  if integer_periods is not None:  # the schedule's exact integer cycle starts
    cycle = _cycles.cycle_table(*integer_periods)
  else:
    cycle = lambda t: _cycles.cycle_float(t, first_period, period_multiplier)
  following = safe_increment(count)
  return (following != count) & (cycle(following)[0] != cycle(count)[0])


def ensemble_params(opt_state: Any) -> tuple[Any, jax.Array]:
  r"""Returns the snapshots kept by `snapshot_ensemble` and a mask of the filled slots.

  The ensemble's prediction is the mean of the models at the valid snapshots,
  :math:`\hat y(x) = \frac1M \sum_{m=1}^{M} f(x; \theta_m)`.

  Args:
    opt_state: the optimizer state, or any part of it containing exactly one
      `SnapshotEnsembleState`.

  Returns:
    `(snapshots, valid)`: the params with a leading axis of `num_snapshots` on every leaf, in
    ring-buffer order (slot `(next_index - 1) % num_snapshots` is the newest), and a bool array
    of shape `(num_snapshots,)`, True for the slots holding a snapshot.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.snapshot_ensemble(3, first_period=10)
    >>> gradtx.ensemble_params(tx.init(jnp.zeros(2)))[1].tolist()
    [False, False, False]

  References:
    Huang, Li, Pleiss, Liu, Hopcroft & Weinberger, "Snapshot Ensembles: Train 1, Get M for
    Free", ICLR 2017. https://arxiv.org/abs/1704.00109
  """
  state = _find_state(opt_state, (SnapshotEnsembleState,), "snapshot_ensemble", "ensemble_params")
  leaves = jax.tree.leaves(state.snapshots)
  if not leaves:
    raise ValueError("gradtx.ensemble_params: the snapshot_ensemble state holds no params.")
  num_snapshots = jnp.shape(leaves[0])[0]
  return state.snapshots, jnp.arange(num_snapshots) < state.num_stored


def ensemble_predict(apply_fn: Callable[..., Any], opt_state: Any, *args: Any,
                     **kwargs: Any) -> Any:
  r"""Averages the predictions of the stored snapshots: the snapshot ensemble's output.

  .. math::
      h(x) = \frac{1}{|V|} \sum_{k \in V} f(\theta^{(k)}, x)

  over the filled slots :math:`V`. `apply_fn` runs once per slot under `jax.vmap` (empty slots
  too, their outputs discarded with `where`, so a NaN there does not leak). Return
  probabilities from `apply_fn` (e.g. `jax.nn.softmax(logits)`), as Huang et al. average the
  softmax outputs. The result is NaN until the first cycle ends (no snapshot yet).

  Args:
    apply_fn: `apply_fn(params, *args, **kwargs)` returning a pytree of arrays.
    opt_state: the optimizer state, or a part of it, holding one `SnapshotEnsembleState`.
    *args: inputs passed to `apply_fn` unchanged (not vmapped), e.g. a batch `x`.
    **kwargs: keyword inputs passed to `apply_fn` unchanged.

  Returns:
    The mean of `apply_fn`'s outputs over the stored snapshots, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.snapshot_ensemble(2, first_period=1)
    >>> state, params = tx.init(jnp.zeros(1)), jnp.zeros(1)
    >>> for g in (1.0, 3.0):  # snapshots 1 and 4
    ...   u, state = tx.update(g * jnp.ones(1), state, params); params = params + u
    >>> gradtx.ensemble_predict(lambda p, x: p * x, state, 2.0).tolist()
    [5.0]

  References:
    Huang, Li, Pleiss, Liu, Hopcroft & Weinberger, "Snapshot Ensembles: Train 1, get M for
    free", ICLR 2017, Sec. 3 (ensembling at test time). https://arxiv.org/abs/1704.00109
  """
  if not callable(apply_fn):
    raise TypeError(
        f"gradtx.ensemble_predict: apply_fn must be callable, got {type(apply_fn).__name__}.")
  snapshots, valid = ensemble_params(opt_state)
  outputs = jax.vmap(lambda p: apply_fn(p, *args, **kwargs))(snapshots)
  num_valid = jnp.sum(valid)

  def mean(out):
    mask = valid.reshape((-1,) + (1,) * (jnp.ndim(out) - 1))
    total = jnp.sum(jnp.where(mask, out, jnp.zeros_like(out)), axis=0)
    dtype = total.dtype if jnp.issubdtype(total.dtype, jnp.inexact) else jnp.float32
    return total / num_valid.astype(dtype)

  return jax.tree.map(mean, outputs)
