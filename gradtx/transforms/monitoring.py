"""Monitoring: record measurements of updates in the state, watch training health, stop early.

`snapshot`, `monitor` and `measure_with_ema` keep optax's names, signatures and state fields. `health_monitor` records
the norms of the gradients, updates and params, the largest update and where non-finite values
first appeared; `read_measures` collects them from a nested state as a flat dict for logging.
`early_stopping` is a small jit-safe state machine over a validation metric (not a gradient
transformation).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    Params,
    Updates,
    init_empty_state,
    stateless,
)
from gradtx.combine import chain
from gradtx.numerics import global_norm
from gradtx.transforms.momentum import ema

__all__ = [
    "EarlyStopping",
    "EarlyStoppingState",
    "HealthMonitorState",
    "MonitorState",
    "SnapshotState",
    "early_stopping",
    "health_monitor",
    "measure_with_ema",
    "monitor",
    "read_measures",
    "snapshot",
]


def _check_name(fn: str, name: str, value: Any) -> None:
  if not isinstance(value, str):
    raise TypeError(f"gradtx.{fn}: {name} must be a str, got {type(value).__name__} {value!r}.")


def _call_update(tx: Any, updates, state, params, extra_args):
  if _checks.accepts_extra_args(tx.update):
    return tx.update(updates, state, params, **extra_args)
  return tx.update(updates, state, params)


class SnapshotState(NamedTuple):
  """State of `snapshot`: `{measure_name: measurement}` (optax's field name).

  Attributes:
    measurement: `{measure_name: measurement}`.
  """

  measurement: dict[str, Any]


def snapshot(measure_name: str, measure: Callable[[Updates], Any]) -> GradientTransformation:
  """Stores a measurement of the updates in the state, passing the updates through unchanged.

  Placed inside a chain, it sees the updates transformed by everything before it, e.g. the norm
  before clipping. `init` stores `measure(params)`, so the state keeps one structure throughout.

  Args:
    measure_name: the key of the measurement in `SnapshotState.measurement`.
    measure: a pure function of the updates returning a pytree of arrays.

  Returns:
    A pass-through `GradientTransformation` with state `SnapshotState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.snapshot('norm', gradtx.global_norm)
    >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
    >>> float(state.measurement['norm'])
    5.0

  References:
    `optax.transforms.snapshot` (optax 0.2.8).
  """
  _check_name("snapshot", "measure_name", measure_name)
  if not callable(measure):
    raise TypeError(f"gradtx.snapshot: measure must be callable, got {type(measure).__name__}.")

  def init_fn(params):
    return SnapshotState({measure_name: measure(params)})

  def update_fn(updates, state, params=None, **extra_args):
    del state, params, extra_args
    return updates, SnapshotState({measure_name: measure(updates)})

  return GradientTransformation(init_fn, update_fn)


class MonitorState(NamedTuple):
  """State of `monitor`: the latest measurements by name and each measure's own state.

  Attributes:
    measurements: the latest measurements by name.
    measure_states: each measure's own state.
  """

  measurements: dict[str, Any]
  measure_states: tuple[Any, ...]


def monitor(measures: dict[str, Any]) -> GradientTransformationExtraArgs:
  """Records several, possibly stateful, measurements of the updates (passes updates through).

  Each measure is either a function of the updates (stateless, as in `snapshot`) or a
  `GradientTransformation` whose *output updates* are the measurement, e.g. an `ema` of a norm;
  it receives the updates, its own state, the params and the extra arguments.

  Differences from optax: `init` fills `measurements` with zeros shaped like the first step's
  measurements (optax starts with an empty dict), so the state keeps one structure under `jit`,
  `lax.scan` and `flax.nnx.Optimizer`. Values from the first `update` on are identical.

  Args:
    measures: a dict from measurement name to a callable or a `GradientTransformation`.

  Returns:
    A pass-through `GradientTransformationExtraArgs` with state `MonitorState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.monitor({'norm': gradtx.global_norm})
    >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
    >>> float(state.measurements['norm'])
    5.0

  References:
    `optax.transforms.monitor` (optax 0.2.8).
  """
  if not isinstance(measures, dict):
    raise TypeError(f"gradtx.monitor: measures must be a dict from names to measures, got "
                    f"{type(measures).__name__}.")
  txs = {}
  for name, m in measures.items():
    _check_name("monitor", f"measures key {name!r}", name)
    if isinstance(m, GradientTransformation) or (
        hasattr(m, "init") and hasattr(m, "update") and not callable(m)):
      txs[name] = m
    elif callable(m):
      # Stateless, with state `EmptyState()` as optax's `stateless` wrapper of a callable.
      txs[name] = GradientTransformation(
          init_empty_state, lambda u, s, p=None, _m=m, **e: (_m(u), s))
    else:
      raise TypeError(f"gradtx.monitor: measures[{name!r}] must be callable or a "
                      f"GradientTransformation, got {type(m).__name__}.")
  names = tuple(txs)

  def init_fn(params):
    states = tuple(txs[n].init(params) for n in names)
    shapes = jax.eval_shape(
        lambda p, s: {n: _call_update(txs[n], p, si, p, {})[0] for n, si in zip(names, s)},
        params, states)
    measurements = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
    return MonitorState(measurements, states)

  def update_fn(updates, state, params=None, **extra_args):
    measurements, new_states = {}, []
    for n, s in zip(names, state.measure_states):
      measurements[n], s = _call_update(txs[n], updates, s, params, extra_args)
      new_states.append(s)
    return updates, MonitorState(measurements, tuple(new_states))

  return GradientTransformationExtraArgs(init_fn, update_fn)


def _as_float(tree: Any) -> Any:
  """Casts the non-floating leaves of a measurement (a bool `norm > c`, a count) to float32."""
  return jax.tree.map(
      lambda x: x if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
      else jnp.asarray(x, jnp.float32), tree)


def measure_with_ema(
    measure: Callable[[Updates], Any],
    decay: Any,
    debias: bool = True,
    accumulator_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
  r"""Measures the updates and returns the exponential moving average of the measurement.

  A measure for `monitor`: `chain(stateless(measure), ema(decay, debias, accumulator_dtype))`,
  its `ema` state shaped like `measure(params)`, as optax's. Its *output updates* are the
  average (which `monitor` records), e.g. how often the norm exceeded a clipping threshold.

  .. math::
      m_t = (1 - eta)\, f(g_t) + eta m_{t-1}, \qquad
      u_t = m_t / (1 - eta^t) \;	ext{(debias)} \;	ext{or}\; m_t

  Differences from optax: a bool or integer measurement is averaged in float32 from `init` on
  (optax's state starts bool or integer and turns float32 at the first update, which changes the
  state's dtype under `jit` and `lax.scan`); the averages are the same.

  Args:
    measure: :math:`f`, a pure function of the updates returning a pytree of arrays (called on
      the params in `init`, to shape the state).
    decay: :math:`eta` in [0, 1], a float or scalar array.
    debias: divide by :math:`1 - eta^t`.
    accumulator_dtype: floating dtype of the average (default: the measurement's, float32 for
      bool and integer measurements).

  Returns:
    A `GradientTransformationExtraArgs` whose state is `(EmptyState(), EmaState(count, ema))`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.monitor({'big': gradtx.measure_with_ema(
    ...     lambda u: gradtx.global_norm(u) > 1.0, decay=0.5, debias=False)})
    >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
    >>> float(state.measurements['big'])
    0.5

  References:
    `optax.transforms.measure_with_ema` (optax 0.2.8).
  """
  fn = "measure_with_ema"
  if not callable(measure):
    raise TypeError(f"gradtx.{fn}: measure must be a function of the updates, got "
                    f"{type(measure).__name__} {measure!r}.")
  _checks.check_scalar(fn, "decay", decay, low=0.0, high=1.0)
  _checks.check_bool(fn, "debias", debias)
  accumulator_dtype = _checks.check_dtype(fn, "accumulator_dtype", accumulator_dtype)
  base_ema = ema(decay, debias, accumulator_dtype)
  measurement_ema = base_ema._replace(
      init=lambda params: base_ema.init(_as_float(measure(params))))
  return chain(stateless(lambda updates, _: _as_float(measure(updates))), measurement_ema)


class HealthMonitorState(NamedTuple):
  """State of `health_monitor`: the inner state and the last step's measurements.

  Attributes:
    inner_state: the wrapped optimizer's state (`()` without one).
    grad_norm: float32, the global L2 norm of the incoming gradients.
    update_norm: float32, the global L2 norm of the outgoing updates.
    param_norm: float32, the global L2 norm of the params (NaN when params is None).
    max_abs_update: float32, the largest :math:`|u|` over all leaves.
    num_nonfinite: int32, the NaN/inf entries in the gradients.
    first_nonfinite_leaf: int32, the index of the first such leaf in `jax.tree.leaves(grads)`
      order, -1 if none.
  """

  inner_state: Any
  grad_norm: jax.Array          # global L2 norm of the incoming gradients
  update_norm: jax.Array        # global L2 norm of the outgoing updates
  param_norm: jax.Array         # global L2 norm of the params (NaN when params is None)
  max_abs_update: jax.Array     # largest |update| over all leaves
  num_nonfinite: jax.Array      # int32: number of NaN/inf entries in the gradients
  first_nonfinite_leaf: jax.Array  # int32: index in jax.tree.leaves(grads) order, -1 if none


def _norm32(tree) -> jax.Array:
  return global_norm(jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)).astype(jnp.float32)


def _max_abs(tree) -> jax.Array:
  maxima = [jnp.max(jnp.abs(x)).astype(jnp.float32)
            for x in jax.tree.leaves(tree) if jnp.size(x) > 0]
  return jnp.max(jnp.stack(maxima)) if maxima else jnp.zeros([], jnp.float32)


def _nonfinite(tree) -> tuple[jax.Array, jax.Array]:
  counts = [jnp.sum(~jnp.isfinite(x)).astype(jnp.int32) for x in jax.tree.leaves(tree)]
  if not counts:
    return jnp.zeros([], jnp.int32), jnp.full([], -1, jnp.int32)
  counts = jnp.stack(counts)
  bad = counts > 0
  first = jnp.where(jnp.any(bad), jnp.argmax(bad), -1).astype(jnp.int32)
  return jnp.sum(counts).astype(jnp.int32), first


def health_monitor(inner: GradientTransformation | None = None) -> GradientTransformation:
  """Records the health of every step: norms, the largest update and where NaNs appeared.

  Two placements. `health_monitor(opt)` wraps an optimizer: it sees the raw gradients going in
  and the final updates coming out, and returns `opt`'s updates. `health_monitor()` alone is a
  pass-through (updates unchanged) that measures whatever reaches it: last in a chain, its
  gradient and update norms both describe the final updates. Read the values with
  `read_measures(opt_state)`. Every state leaf is a scalar array, so it works under `jit`, `vmap`
  and `lax.scan`.

  Args:
    inner: an optional optimizer to wrap (a gradtx or optax transformation).

  Returns:
    A `GradientTransformation` with state `HealthMonitorState`. `first_nonfinite_leaf` is the
    position in `jax.tree.leaves(grads)` of the first leaf holding a NaN or inf (-1 if none);
    `param_norm` is NaN when `update` gets no params.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.health_monitor(gradtx.sgd(0.1))
    >>> _, state = tx.update({'w': jnp.asarray([3.0, 4.0])}, tx.init({'w': jnp.zeros(2)}))
    >>> {k: round(v, 3) for k, v in gradtx.read_measures(state).items() if 'norm' in k}
    {'grad_norm': 5.0, 'update_norm': 0.5, 'param_norm': nan}

  References:
    `optax.transforms.monitor` (optax 0.2.8), whose measurements it extends.
  """
  if inner is not None and not (hasattr(inner, "init") and hasattr(inner, "update")):
    raise TypeError(f"gradtx.health_monitor: inner must be a GradientTransformation or None, got "
                    f"{type(inner).__name__}.")

  def init_fn(params):
    zero = jnp.zeros([], jnp.float32)
    return HealthMonitorState(
        inner_state=() if inner is None else inner.init(params), grad_norm=zero,
        update_norm=zero, param_norm=zero, max_abs_update=zero,
        num_nonfinite=jnp.zeros([], jnp.int32), first_nonfinite_leaf=jnp.full([], -1, jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    grads = updates
    if params is not None:
      _checks.check_same_structure("health_monitor", "updates", grads, "params", params)
    inner_state = state.inner_state
    if inner is not None:
      updates, inner_state = _call_update(inner, grads, inner_state, params, extra_args)
    num_nonfinite, first = _nonfinite(grads)
    param_norm = (jnp.full([], jnp.nan, jnp.float32) if params is None else _norm32(params))
    return updates, HealthMonitorState(
        inner_state=inner_state, grad_norm=_norm32(grads), update_norm=_norm32(updates),
        param_norm=param_norm, max_abs_update=_max_abs(updates), num_nonfinite=num_nonfinite,
        first_nonfinite_leaf=first)

  return GradientTransformation(init_fn, update_fn)


_HEALTH_FIELDS = ("grad_norm", "update_norm", "param_norm", "max_abs_update", "num_nonfinite",
                  "first_nonfinite_leaf")
_MEASURE_STATES = (HealthMonitorState, SnapshotState, MonitorState)


def _scalar(x: Any) -> Any:
  arr = np.asarray(x)
  if arr.size != 1:
    return None
  return arr.reshape(()).item()


def read_measures(opt_state: Any) -> dict[str, float | int]:
  """Collects the measurements of `health_monitor`, `snapshot` and `monitor` as a flat dict.

  Searches a nested optimizer state (a chain's tuple, wrappers, `flax.nnx.Optimizer.opt_state`)
  and returns Python scalars ready for logging. Measurements that are not single numbers are
  skipped. Call it outside `jit` (it reads the values back to the host).

  Args:
    opt_state: the optimizer state, or any part of it.

  Returns:
    A dict from measurement name (the `HealthMonitorState` field names, or the names given to
    `snapshot` / `monitor`) to a Python float or int.

  Raises:
    ValueError: if no measurement state is found, or two measurements share a name.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.sgd(0.1), gradtx.snapshot('norm', gradtx.global_norm))
    >>> _, state = tx.update(jnp.asarray([3.0, 4.0]), tx.init(jnp.zeros(2)))
    >>> gradtx.read_measures(state)
    {'norm': 0.5}

  References:
    `jax.tree_util.tree_flatten_with_path`, over the states of `optax.transforms.monitor`
    (optax 0.2.8).
  """
  states = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, _MEASURE_STATES))
            if isinstance(s, _MEASURE_STATES)]
  if not states:
    raise ValueError(
        "gradtx.read_measures: opt_state contains no health_monitor, snapshot or monitor state. "
        "Hint: add gradtx.health_monitor() to the chain and pass the whole optimizer state.")
  out: dict[str, Any] = {}

  def put(name, value):
    if name in out:
      raise ValueError(f"gradtx.read_measures: two measurements are named {name!r}; give "
                       "snapshot/monitor measurements distinct names.")
    v = _scalar(value)
    if v is not None:
      out[name] = v

  for s in states:
    if isinstance(s, HealthMonitorState):
      for f in _HEALTH_FIELDS:
        put(f, getattr(s, f))
      # A wrapped optimizer may hold measurement states of its own; they are found below too.
    elif isinstance(s, SnapshotState):
      for k, v in s.measurement.items():
        put(k, v)
    else:
      for k, v in s.measurements.items():
        put(k, v)
  return out


class EarlyStoppingState(NamedTuple):
  """State of `early_stopping`.

  Attributes:
    best_metric: the best metric so far.
    best_params: the params where it was reached.
    steps_since_improvement: int32 scalar, the steps since the last improvement.
    should_stop: bool scalar, whether to stop (stays True once set).
  """

  best_metric: jax.Array
  best_params: Any
  steps_since_improvement: jax.Array
  should_stop: jax.Array


class EarlyStopping(NamedTuple):
  """The pure functions of `early_stopping`: `init(params)` and `update(state, metric, params)`.

  Attributes:
    init: `init(params) -> EarlyStoppingState`.
    update: `update(state, metric, params) -> EarlyStoppingState`.
  """

  init: Callable[[Params], EarlyStoppingState]
  update: Callable[[EarlyStoppingState, Any, Params], EarlyStoppingState]


def early_stopping(patience: int, min_delta: float = 0.0, mode: str = "min") -> EarlyStopping:
  r"""Early stopping with patience: stop when a validation metric has not improved for a while.

  Not a gradient transformation: call `update` once per evaluation, outside the optimizer. A
  metric improves when it beats the best so far by more than `min_delta`; then the best metric and
  params are kept and the counter resets, otherwise the counter grows. A NaN never improves.

  .. math:: \text{improved} = m_t < m^\ast - \delta \ (\text{min}), \quad
            \text{stop} \mathrel{|}= (t - t^\ast \ge \text{patience})

  Args:
    patience: number of evaluations without improvement tolerated before `should_stop`; an int
      >= 0.
    min_delta: the margin an improvement must exceed; a finite number >= 0.
    mode: `'min'` (lower is better, e.g. a loss) or `'max'` (e.g. accuracy).

  Returns:
    `EarlyStopping(init, update)`: `init(params)` returns an `EarlyStoppingState`;
    `update(state, metric, params)` returns the next one. Both are jit- and vmap-safe.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> es = gradtx.early_stopping(patience=1)
    >>> s = es.init(jnp.zeros(1))
    >>> for m in [1.0, 0.5, 0.7, 0.6]: s = es.update(s, m, jnp.asarray([m]))
    >>> bool(s.should_stop), float(s.best_metric), s.best_params.tolist()
    (True, 0.5, [0.5])

  References:
    Prechelt, "Early Stopping - But When?", Neural Networks: Tricks of the Trade, 1998.
  """
  if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)):
    raise TypeError(f"gradtx.early_stopping: patience must be an int, got "
                    f"{type(patience).__name__} {patience!r}.")
  if patience < 0:
    raise ValueError(f"gradtx.early_stopping: patience must be >= 0, got {patience}.")
  _checks.check_scalar("early_stopping", "min_delta", min_delta, low=0.0)
  _checks.check_choice("early_stopping", "mode", mode, ("min", "max"))
  sign = 1.0 if mode == "min" else -1.0  # compare sign * metric, lower is better

  def init_fn(params):
    return EarlyStoppingState(
        best_metric=jnp.asarray(sign * jnp.inf, jnp.float32),
        best_params=jax.tree.map(jnp.asarray, params),
        steps_since_improvement=jnp.zeros([], jnp.int32),
        should_stop=jnp.zeros([], jnp.bool_))

  def update_fn(state, metric, params):
    metric = jnp.asarray(metric, jnp.float32)
    if metric.shape != ():
      raise ValueError(f"gradtx.early_stopping: metric must be a scalar, got shape "
                       f"{metric.shape}.")
    improved = sign * metric < sign * state.best_metric - min_delta
    best_params = jax.tree.map(
        lambda new, old: jnp.where(improved, jnp.asarray(new).astype(old.dtype), old),
        params, state.best_params)
    wait = jnp.where(improved, 0, state.steps_since_improvement + 1).astype(jnp.int32)
    return EarlyStoppingState(
        best_metric=jnp.where(improved, metric, state.best_metric),
        best_params=best_params,
        steps_since_improvement=wait,
        should_stop=state.should_stop | ((wait >= patience) & ~improved))

  return EarlyStopping(init_fn, update_fn)
