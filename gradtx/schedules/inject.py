"""Hyperparameters kept in the optimizer state: `inject_hyperparams`, `set_hyperparams`, and
`inject_stateful_hyperparams` for schedules with a state of their own (`StatefulSchedule`,
`WrappedSchedule`).

Keeping a hyperparameter in the state lets it be read, overwritten between steps without
recompiling, checkpointed and vmapped (a batch of states is a batch of optimizers). The other way,
building the optimizer inside the function you vmap, is `gradtx.tuning.grid_sweep`.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable, Iterable, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs, OptState
from gradtx.numerics import safe_increment

__all__ = [
    "InjectStatefulHyperparamsState",
    "StatefulSchedule",
    "WrappedSchedule",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "set_hyperparams",
]


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _is_numeric(value: Any) -> bool:
  """A real number or an integer/floating array (concrete or traced); not a bool, key or mask."""
  if isinstance(value, (bool, np.bool_)):
    return False
  if isinstance(value, (jax.Array, np.ndarray, np.generic)):
    return bool(jnp.issubdtype(value.dtype, jnp.integer)
                or jnp.issubdtype(value.dtype, jnp.floating))
  return isinstance(value, numbers.Real)


def _is_schedule(value: Any) -> bool:
  """A callable is a schedule if, called on an int32 step, it returns one real scalar.

  Checked abstractly (`jax.eval_shape`, no computation). Classes such as `jnp.float32` and
  callables that fail on a step or return something else (masks `params -> tree of bools`) are not
  schedules.
  """
  if not callable(value) or isinstance(value, type):
    return False
  try:
    out = jax.eval_shape(value, jax.ShapeDtypeStruct((), jnp.int32))
  except Exception:  # pylint: disable=broad-except  (any failure means "not a schedule")
    return False
  return (isinstance(out, jax.ShapeDtypeStruct) and out.shape == ()
          and bool(jnp.issubdtype(out.dtype, jnp.integer)
                   or jnp.issubdtype(out.dtype, jnp.floating)))


def _float_dtype(tree: Any) -> Any:
  """The widest floating dtype among the leaves of `tree`, and at least float32 (JAX's default
  float), so that `b2 = 0.999` does not round to 1 for bfloat16 params."""
  dtypes = [x.dtype for x in jax.tree.leaves(tree)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]
  return functools.reduce(jnp.promote_types, dtypes, jnp.result_type(float))


def _as_state_value(value: Any, dtype: Any, force: bool) -> jax.Array:
  """A hyperparameter as a strongly typed scalar array for the state.

  Floats that are not already strongly typed JAX arrays (Python floats, NumPy values, weakly
  typed arrays) become `dtype`, as in optax; with `force` (an explicit `hyperparam_dtype`) every
  float does. Integers stay integers.
  """
  x = jnp.asarray(value)
  if jnp.issubdtype(x.dtype, jnp.floating):
    if force or not isinstance(value, jax.Array) or getattr(value, "weak_type", False):
      return jnp.asarray(x, dtype=dtype)
    return value
  return jnp.asarray(x, dtype=x.dtype)


def _bind(sig: inspect.Signature, fn: str, factory_name: str, args: tuple,
          kwargs: dict) -> dict[str, Any]:
  """All arguments by name, defaults applied; `**kwargs` of the factory flattened into names."""
  takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
  if not takes_var_kw:
    for name in kwargs:
      if name not in sig.parameters:
        raise TypeError(
            f"gradtx.{fn}: unknown hyperparameter {name!r}; {factory_name} takes "
            f"{', '.join(sig.parameters)}.")
  try:
    bound = sig.bind(*args, **kwargs)
  except TypeError as e:
    raise TypeError(
        f"gradtx.{fn}: {e} ({factory_name} takes {', '.join(sig.parameters)}).") from None
  bound.apply_defaults()
  arguments = {}
  for name, value in bound.arguments.items():
    if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
      arguments.update(value)
    else:
      arguments[name] = value
  return arguments


def _call(factory: Callable[..., Any], sig: inspect.Signature, values: dict[str, Any]) -> Any:
  """Calls `factory` with the named `values` (the inverse of `_bind`)."""
  args, kwargs = [], {}
  for p in sig.parameters.values():
    if p.kind in _POSITIONAL:
      args.append(values[p.name])
    elif p.kind is inspect.Parameter.VAR_POSITIONAL:
      args.extend(values[p.name])
    elif p.kind is inspect.Parameter.KEYWORD_ONLY:
      kwargs[p.name] = values[p.name]
  kwargs.update({k: v for k, v in values.items() if k not in sig.parameters})
  return factory(*args, **kwargs)


@runtime_checkable
class StatefulSchedule(Protocol):
  """A schedule with a state of its own: `init`, `update` and `__call__` (optax's protocol).

  `init()` returns the first state (a pytree of arrays), `update(state, **extra_args)` the next
  one and `schedule(state, **extra_args)` the value at `state`; the extra arguments are those
  given to the optimizer's `update` (a loss value, a metric), so the value can react to
  training. `inject_stateful_hyperparams` keeps the states in the optimizer state. Any object
  with these three methods is one (a structural check, so optax's stateful schedules count).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> class HalveOnRise:  # halves the value whenever the loss rises
    ...   def init(self): return (jnp.float32(1.0), jnp.float32(jnp.inf))
    ...   def update(self, s, value): return (jnp.where(value > s[1], s[0] / 2, s[0]), value)
    ...   def __call__(self, s, **extra_args): return s[0]
    >>> isinstance(HalveOnRise(), gradtx.schedules.StatefulSchedule)
    True
  """

  def init(self) -> Any:
    """Returns the schedule's first state."""

  def update(self, state: Any, **extra_args: Any) -> Any:
    """Returns the schedule's state after one more step."""

  def __call__(self, state: Any, **extra_args: Any) -> Any:
    """Returns the schedule's value at `state`."""


class WrappedScheduleState(NamedTuple):
  """State of a `WrappedSchedule`: the step count at which to evaluate the schedule."""

  count: jax.Array  # int32 scalar


class WrappedSchedule:
  """A plain schedule `count -> value` as a `StatefulSchedule` whose state is the step count.

  `inject_stateful_hyperparams` wraps every plain schedule in one; its state is
  `WrappedScheduleState(count)`, starting at 0 and advanced with `safe_increment`.

  Args:
    schedule_fn: the schedule, a function of the int32 step count.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.WrappedSchedule(gradtx.linear_schedule(1.0, 0.0, 4))
    >>> state = schedule.update(schedule.init())
    >>> float(schedule(state))
    0.75
  """

  def __init__(self, schedule_fn: Callable[[jax.Array], Any]):
    if not callable(schedule_fn) or isinstance(schedule_fn, type):
      raise TypeError(
          "gradtx.WrappedSchedule: schedule_fn must be a schedule (a function of the step "
          f"count), got {type(schedule_fn).__name__} {schedule_fn!r}.")
    self.schedule_fn = schedule_fn

  def init(self) -> WrappedScheduleState:
    """Returns the state at step 0."""
    return WrappedScheduleState(count=jnp.zeros([], jnp.int32))

  def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
    """Returns the state one step later (extra arguments are ignored)."""
    del extra_args
    return WrappedScheduleState(count=safe_increment(state.count))

  def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
    """Returns `schedule_fn(state.count)` (extra arguments are ignored)."""
    del extra_args
    return self.schedule_fn(state.count)


class InjectStatefulHyperparamsState(NamedTuple):
  """State of `inject_hyperparams` and `inject_stateful_hyperparams`.

  optax 0.2.8's class, fields and layout, so checkpoints interchange; gradtx also names it
  `InjectHyperparamsState`.

  `hyperparams` is a dict from argument name to a scalar array: the value used at the last step
  (at step 0 after `init`). Overwrite a constant one between steps with
  `state.hyperparams['learning_rate'] = jnp.asarray(1e-4)` or `set_hyperparams`; scheduled ones
  are recomputed at each step from their schedule's state, so overwriting them has no effect (as
  in optax). `hyperparams_states` maps each scheduled name to its schedule's state
  (`WrappedScheduleState(count)` for a plain schedule; empty when nothing is scheduled).

  Attributes:
    count: int32 scalar, the number of updates so far.
    hyperparams: a dict from argument name to a scalar array, the value used at the last step.
    hyperparams_states: a dict from each scheduled name to its schedule's state.
    inner_state: the inner transformation's state.
  """

  count: jax.Array  # int32 scalar: the number of updates so far
  hyperparams: dict[str, jax.Array]
  hyperparams_states: dict[str, Any]
  inner_state: OptState


def _is_stateful_schedule(value: Any) -> bool:
  """An instance (not a class) with `init`, `update` and `__call__`: a `StatefulSchedule`."""
  return not isinstance(value, type) and isinstance(value, StatefulSchedule)


def _inject(
    wrapper: str,
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str],
    hyperparam_dtype: Any,
) -> Callable[..., GradientTransformation]:
  """The machinery of `inject_hyperparams` and `inject_stateful_hyperparams` (one, as in optax
  0.2.8, whose `inject_hyperparams` keeps the stateful layout).

  Sorts the factory's arguments into numeric constants (kept in the state, overwritable),
  schedules (evaluated by the wrapper at each step) and static arguments (passed through), and
  returns the factory that builds the wrapped transformation. Every schedule is a
  `StatefulSchedule` (plain ones wrapped in `WrappedSchedule`) whose state is kept in
  `hyperparams_states`.
  """
  if not callable(inner_factory):
    raise TypeError(
        f"gradtx.{wrapper}: inner_factory must be a function returning a transformation "
        f"(e.g. gradtx.adamw, not gradtx.adamw(1e-3)), got {type(inner_factory).__name__}.")
  factory_name = getattr(inner_factory, "__name__", type(inner_factory).__name__)
  fn = f"{wrapper}({factory_name})"
  try:
    sig = inspect.signature(inner_factory)
  except (TypeError, ValueError) as e:
    raise TypeError(f"gradtx.{fn}: cannot read the signature of inner_factory: {e}") from e
  static_names = {static_args} if isinstance(static_args, str) else set(static_args)
  for name in static_names:
    if not isinstance(name, str) or name not in sig.parameters:
      raise ValueError(
          f"gradtx.{wrapper}: static_args must name arguments of {factory_name}, got "
          f"{name!r}; {factory_name} takes {', '.join(sig.parameters)}.")
  hyperparam_dtype = _checks.check_dtype(wrapper, "hyperparam_dtype", hyperparam_dtype)
  force = hyperparam_dtype is not None

  @functools.wraps(inner_factory)
  def wrapped_factory(*args: Any, **kwargs: Any) -> GradientTransformation:
    arguments = _bind(sig, fn, factory_name, args, kwargs)
    numeric, schedules, static = {}, {}, {}
    for name, value in arguments.items():
      if name in static_names:
        static[name] = value
      elif _is_numeric(value):
        if np.shape(value) != ():
          raise ValueError(
              f"gradtx.{fn}: {name} must be a scalar, got an array of shape {np.shape(value)}. "
              f"{_checks.SWEEP_HINT} Or vmap over a batch of states (gradtx.set_hyperparams); "
              "to pass a non-scalar argument unchanged, name it in static_args.")
        numeric[name] = value
      elif _is_stateful_schedule(value):
        schedules[name] = value
      elif _is_schedule(value):
        schedules[name] = WrappedSchedule(value)
      else:
        static[name] = value

    def build(hyperparams):
      return _call(inner_factory, sig, {**static, **hyperparams})

    def cast(values, dtype):
      return {k: _as_state_value(v, dtype, force) for k, v in values.items()}

    # The schedules' values at a step, each of its own state (extra arguments of `update` reach
    # them, as in optax).
    def scheduled(state, extra_args):
      return {k: f(state.hyperparams_states[k], **extra_args) for k, f in schedules.items()}

    # Validates the arguments by building the inner transformation once, with the step-0 values.
    probe = build({**numeric, **{k: f(f.init()) for k, f in schedules.items()}})
    takes_extra = _checks.accepts_extra_args(probe.update)

    def init_fn(params):
      dtype = hyperparam_dtype or _float_dtype(params)
      count = jnp.zeros([], jnp.int32)
      hyperparams = cast(numeric, dtype)
      schedule_states = {k: f.init() for k, f in schedules.items()}
      hyperparams.update(cast({k: f(schedule_states[k]) for k, f in schedules.items()}, dtype))
      return InjectStatefulHyperparamsState(count, hyperparams, schedule_states,
                                            build(hyperparams).init(params))

    def update_fn(updates, state, params=None, **extra_args):
      dtype = hyperparam_dtype or _float_dtype(updates if params is None else params)
      hyperparams = cast(state.hyperparams, dtype)
      hyperparams.update(cast(scheduled(state, extra_args), dtype))
      inner = build(hyperparams)
      if takes_extra:
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
      else:
        updates, inner_state = inner.update(updates, state.inner_state, params)
      count = safe_increment(state.count)
      schedule_states = {k: f.update(state.hyperparams_states[k], **extra_args)
                         for k, f in schedules.items()}
      return updates, InjectStatefulHyperparamsState(count, hyperparams, schedule_states,
                                                     inner_state)

    return GradientTransformationExtraArgs(init_fn, update_fn)

  return wrapped_factory


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
  r"""Wraps an optimizer factory so that its numeric hyperparameters live in the state.

  `inject_hyperparams(adamw)(learning_rate=..., weight_decay=...)` takes `adamw`'s arguments.
  With :math:`\mathcal{T}` = `inner_factory` and :math:`c_t` the step count in the state:

  .. math::
      h_t = \sigma_h(c_{t-1}) \text{ (a schedule) or the stored } h, \qquad
      (u_t, S_t) = \mathcal{T}(h_t).\mathrm{update}(g_t, S_{t-1}), \quad c_t = c_{t-1} + 1.

  Every numeric one (a float, an int, a scalar array or a schedule; defaults included) is stored as
  a scalar array in `state.hyperparams`; each `update` evaluates the schedules at `state.count`,
  rebuilds the inner transformation from the values in the state and applies it. The values can
  thus be read, overwritten between steps without recompiling, checkpointed, and vmapped (a batch
  of states is a batch of optimizers), and any numeric argument can take a schedule.

  Bools, None, strings, dtypes, masks, transformations, arguments named in `static_args`, and
  callables that are not schedules pass through unchanged. A callable counts as a schedule when,
  called on an int32 step, it returns one real scalar (checked with `jax.eval_shape`): a mask
  `params -> tree of bools` does not. The wrapper evaluates schedules itself, so the inner
  transformation sees one value per step; where the inner math uses more of a schedule
  (`scale_by_adam`'s `b1` schedule also uses `b1(0)`), name it in `static_args`. Arguments are
  validated when the wrapper is called, by building the inner transformation once.

  Values are stored as arrays: float32 rounds `1 - b2` (1e-5 relative for `b2 = 0.999`), so
  results equal the alias given the same float32 arrays, and its Python-float form to ~1e-5, as
  in optax. Assigning a weakly typed value (`1e-4`, `jnp.asarray(1e-4)`) makes a jitted step
  compile one more variant; `jnp.float32(1e-4)` or `set_hyperparams` keep the exact signature.

  The state is optax 0.2.8's `InjectStatefulHyperparamsState(count, hyperparams,
  hyperparams_states, inner_state)`: each schedule is wrapped in a `WrappedSchedule` and
  evaluated at its own `WrappedScheduleState(count)`, and a `StatefulSchedule` may be given too
  (as `inject_stateful_hyperparams`). Differences from optax: callables that are not schedules
  (masks, dtypes) need no `static_args`; floats are stored in at least float32 (optax stores bfloat16 for bfloat16
  params, rounding `b2 = 0.999` to 1), and `hyperparam_dtype` casts every float, strongly typed
  arrays included; `update` without `params` takes the dtype from the updates (optax falls back
  to float32).

  Args:
    inner_factory: a function returning a transformation, e.g. `gradtx.adamw` or `optax.adam`.
    static_args: a name or names of arguments always passed through unchanged.
    hyperparam_dtype: dtype of the float hyperparameters; by default the widest float dtype of the
      params given to `init`, and at least float32.

  Returns:
    A function with `inner_factory`'s arguments returning a `GradientTransformation` whose state
    is an `InjectStatefulHyperparamsState` (also named `InjectHyperparamsState`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=1e-3, weight_decay=1e-4)
    >>> state = tx.init(jnp.zeros(2))
    >>> state.hyperparams['learning_rate'] = jnp.asarray(0.5)
    >>> tx.update(jnp.ones(2), state, jnp.zeros(2))[0].tolist()
    [-0.5, -0.5]

  References:
    `optax.inject_hyperparams` (optax 0.2.8).
  """
  return _inject("inject_hyperparams", inner_factory, static_args, hyperparam_dtype)


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
  r"""Wraps an optimizer factory: its hyperparameters and their schedules' states live in the state.

  At each step, with :math:`\mathcal{T}` = `inner_factory`, :math:`\sigma_h` the schedule of
  hyperparameter :math:`h` and :math:`z_{h,t}` its schedule state,

  .. math::
      z_{h,t} = \sigma_h.\mathrm{update}(z_{h,t-1}), \quad h_t = \sigma_h(z_{h,t-1}), \qquad
      (u_t, S_t) = \mathcal{T}(h_t).\mathrm{update}(g_t, S_{t-1}).

  As `inject_hyperparams`, but a hyperparameter may also be a `StatefulSchedule`: a schedule with
  its own state, advanced at each step by `schedule.update(state, **extra_args)` and read by
  `schedule(state, **extra_args)`, so it can depend on what `update` is given (a loss value, a
  metric). Plain schedules are wrapped in `WrappedSchedule`, whose state is its step count. The
  schedules' states are kept in `state.hyperparams_states`; the other rules (what counts as a
  hyperparameter, overwriting values, vmapping states, `set_hyperparams`) are
  `inject_hyperparams`'s.

  Differences from optax: floats are stored in at least float32, as by gradtx's
  `inject_hyperparams` (optax stores bfloat16 for bfloat16 params, rounding `b2 = 0.999` to 1);
  callables that are not schedules (masks) need no `static_args`; no DeprecationWarning (optax
  0.2.8 deprecates this name in favour of its `inject_hyperparams`; in gradtx the two are the
  same wrapper). With float32 params the state's structure is optax's.

  Args:
    inner_factory: a function returning a transformation, e.g. `gradtx.adamw` or `optax.adam`.
    static_args: a name or names of arguments always passed through unchanged.
    hyperparam_dtype: dtype of the float hyperparameters; by default the widest float dtype of the
      params given to `init`, and at least float32.

  Returns:
    A function with `inner_factory`'s arguments returning a `GradientTransformation` whose state
    is an `InjectStatefulHyperparamsState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> sgd = gradtx.inject_stateful_hyperparams(gradtx.sgd)
    >>> tx = sgd(learning_rate=gradtx.linear_schedule(1.0, 0.0, 4))
    >>> u, state = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    >>> u.tolist(), state.hyperparams_states['learning_rate'].count.tolist()
    ([-1.0], 1)

  References:
    `optax.inject_stateful_hyperparams` (optax 0.2.8).
  """
  return _inject("inject_stateful_hyperparams", inner_factory, static_args, hyperparam_dtype)


def _is_inject_state(x: Any) -> bool:
  return isinstance(x, InjectStatefulHyperparamsState)


def set_hyperparams(state: OptState, **values: Any) -> OptState:
  r"""Returns `state` with new values for injected hyperparameters, cast to their stored dtypes.

  The functional form of `state.hyperparams[name] = value`,
  :math:`h_{name} \leftarrow \operatorname{cast}(v, \operatorname{dtype}(h_{name}))`: it finds every
  `InjectHyperparamsState` or `InjectStatefulHyperparamsState` inside `state` (alone, in a
  `chain`'s tuple, ...) holding `name`, and
  keeps each value's dtype, so the state's signature is unchanged and a jitted step does not
  recompile. Values may be tracers or batched: `jax.vmap(lambda lr: set_hyperparams(state,
  learning_rate=lr))(lrs)` is a batch of states for a vmapped `update`. Scheduled
  hyperparameters are recomputed at each step, so setting them has no effect.

  Args:
    state: a state containing at least one `InjectHyperparamsState` or
      `InjectStatefulHyperparamsState`.
    **values: hyperparameter names and their new values.

  Returns:
    A new state; `state` itself is not modified.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
    >>> state = gradtx.set_hyperparams(tx.init(jnp.zeros(1)), learning_rate=2.0)
    >>> state.hyperparams['learning_rate']
    Array(2., dtype=float32)

  References:
    The state of `optax.inject_hyperparams` (optax 0.2.8), which it edits functionally.
  """
  found: set[str] = set()
  held: set[str] = set()

  def replace(node):
    if not _is_inject_state(node):
      return node
    hyperparams = dict(node.hyperparams)
    held.update(hyperparams)
    for name, value in values.items():
      if name in hyperparams:
        hyperparams[name] = jnp.asarray(value, dtype=jnp.asarray(hyperparams[name]).dtype)
        found.add(name)
    return node._replace(hyperparams=hyperparams)

  new_state = jax.tree.map(replace, state, is_leaf=_is_inject_state)
  missing = [name for name in values if name not in found]
  if missing:
    if not held:
      raise ValueError(
          "gradtx.set_hyperparams: state contains no InjectHyperparamsState or "
          "InjectStatefulHyperparamsState; build the optimizer with "
          "gradtx.inject_hyperparams(factory)(...) to keep hyperparameters in its state.")
    raise ValueError(
        f"gradtx.set_hyperparams: the state holds no hyperparameter {missing[0]!r}; it holds "
        f"{', '.join(sorted(held))}.")
  return new_state
