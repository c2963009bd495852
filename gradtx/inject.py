"""Hyperparameters kept in the optimizer state (`inject_hyperparams`, `set_hyperparams`), and grid
sweeps over hyperparameters run as one jitted, vmapped program (`grid_sweep`).

Two ways to change a hyperparameter without recompiling: keep it in the state, where it can be
read, overwritten, checkpointed and vmapped (`inject_hyperparams`); or build the optimizer inside
the function you vmap, so it closes over a batched tracer (`grid_sweep` runs that pattern over the
Cartesian product of several grids).
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import GradientTransformation, OptState
from gradtx.tree import safe_increment

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "WrappedScheduleState",
    "grid_sweep",
    "inject_hyperparams",
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


class WrappedScheduleState(NamedTuple):
  """The state of one scheduled hyperparameter of `inject_hyperparams`: its step count.

  optax's name and layout (optax wraps each plain schedule in a `WrappedSchedule`, whose state
  this is), so an `inject_hyperparams` checkpoint restores across the two libraries.
  """

  count: jax.Array  # int32 scalar: the schedule's step


class InjectStatefulHyperparamsState(NamedTuple):
  """State of `inject_hyperparams`: step count, hyperparameter values, schedule states, and the
  inner state (optax's class name and fields).

  `hyperparams` is a dict from argument name to a scalar array: the value used at the last step
  (at step 0 after `init`). Overwrite a constant one between steps with
  `state.hyperparams['learning_rate'] = jnp.asarray(1e-4)` or `set_hyperparams`; scheduled ones
  are recomputed at each step from their `hyperparams_states[name].count`, so overwriting them
  has no effect (as in optax). `hyperparams_states` maps each scheduled name to its
  `WrappedScheduleState(count)` (empty when nothing is scheduled).
  """

  count: jax.Array  # int32 scalar: the number of updates so far
  hyperparams: dict[str, jax.Array]
  hyperparams_states: dict[str, WrappedScheduleState]
  inner_state: OptState


# The name gradtx has always used for this state. optax 0.2.8 also exports a deprecated 3-field
# `InjectHyperparamsState(count, hyperparams, inner_state)` that its `inject_hyperparams` no
# longer returns; gradtx binds the name to the state its `inject_hyperparams` does return, so
# `isinstance(state, gradtx.InjectHyperparamsState)` finds it.
InjectHyperparamsState = InjectStatefulHyperparamsState


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., GradientTransformation]:
  """Wraps an optimizer factory so that its numeric hyperparameters live in the state.

  `inject_hyperparams(adamw)(learning_rate=..., weight_decay=...)` takes `adamw`'s arguments.
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

  The state is laid out as optax's: `InjectStatefulHyperparamsState(count, hyperparams,
  hyperparams_states, inner_state)`, with a `WrappedScheduleState(count)` per schedule.
  Differences from optax: optax's stateful schedules (`StatefulSchedule` objects) are not
  supported; callables that are not schedules (masks, dtypes) need no `static_args`; floats are
  stored in at least float32 (optax stores bfloat16 for bfloat16 params, rounding `b2 = 0.999`
  to 1), and `hyperparam_dtype` casts every float, strongly typed arrays included; `update`
  without `params` takes the dtype from the updates (optax falls back to float32).

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
  """
  if not callable(inner_factory):
    raise TypeError(
        "gradtx.inject_hyperparams: inner_factory must be a function returning a transformation "
        f"(e.g. gradtx.adamw, not gradtx.adamw(1e-3)), got {type(inner_factory).__name__}.")
  factory_name = getattr(inner_factory, "__name__", type(inner_factory).__name__)
  fn = f"inject_hyperparams({factory_name})"
  try:
    sig = inspect.signature(inner_factory)
  except (TypeError, ValueError) as e:
    raise TypeError(f"gradtx.{fn}: cannot read the signature of inner_factory: {e}") from e
  static_names = {static_args} if isinstance(static_args, str) else set(static_args)
  for name in static_names:
    if not isinstance(name, str) or name not in sig.parameters:
      raise ValueError(
          f"gradtx.inject_hyperparams: static_args must name arguments of {factory_name}, got "
          f"{name!r}; {factory_name} takes {', '.join(sig.parameters)}.")
  hyperparam_dtype = _checks.check_dtype("inject_hyperparams", "hyperparam_dtype",
                                         hyperparam_dtype)
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
      elif _is_schedule(value):
        schedules[name] = value
      else:
        static[name] = value

    def build(hyperparams):
      return _call(inner_factory, sig, {**static, **hyperparams})

    step0 = jnp.zeros([], jnp.int32)
    probe = build({**numeric, **{k: s(step0) for k, s in schedules.items()}})
    takes_extra = _checks.accepts_extra_args(probe.update)

    def init_fn(params):
      dtype = hyperparam_dtype or _float_dtype(params)
      count = jnp.zeros([], jnp.int32)
      hyperparams = {k: _as_state_value(v, dtype, force) for k, v in numeric.items()}
      schedule_states = {k: WrappedScheduleState(count=jnp.zeros([], jnp.int32))
                         for k in schedules}
      hyperparams.update({k: _as_state_value(s(schedule_states[k].count), dtype, force)
                          for k, s in schedules.items()})
      return InjectStatefulHyperparamsState(count, hyperparams, schedule_states,
                                            build(hyperparams).init(params))

    def update_fn(updates, state, params=None, **extra_args):
      dtype = hyperparam_dtype or _float_dtype(updates if params is None else params)
      hyperparams = {k: _as_state_value(v, dtype, force) for k, v in state.hyperparams.items()}
      hyperparams.update({k: _as_state_value(s(state.hyperparams_states[k].count), dtype, force)
                          for k, s in schedules.items()})
      schedule_states = {k: WrappedScheduleState(count=safe_increment(s.count))
                         for k, s in state.hyperparams_states.items()}
      inner = build(hyperparams)
      if takes_extra:
        updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
      else:
        updates, inner_state = inner.update(updates, state.inner_state, params)
      return updates, InjectStatefulHyperparamsState(safe_increment(state.count), hyperparams,
                                                     schedule_states, inner_state)

    return GradientTransformation(init_fn, update_fn)

  return wrapped_factory


def _is_inject_state(x: Any) -> bool:
  return isinstance(x, InjectStatefulHyperparamsState)


def set_hyperparams(state: OptState, **values: Any) -> OptState:
  """Returns `state` with new values for injected hyperparameters, cast to their stored dtypes.

  The functional form of `state.hyperparams[name] = value`: it finds every
  `InjectHyperparamsState` inside `state` (alone, in a `chain`'s tuple, ...) holding `name`, and
  keeps each value's dtype, so the state's signature is unchanged and a jitted step does not
  recompile. Values may be tracers or batched: `jax.vmap(lambda lr: set_hyperparams(state,
  learning_rate=lr))(lrs)` is a batch of states for a vmapped `update`. Scheduled
  hyperparameters are recomputed at each step, so setting them has no effect.

  Args:
    state: a state containing at least one `InjectHyperparamsState`.
    **values: hyperparameter names and their new values.

  Returns:
    A new state; `state` itself is not modified.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)
    >>> state = gradtx.set_hyperparams(tx.init(jnp.zeros(1)), learning_rate=2.0)
    >>> state.hyperparams['learning_rate']
    Array(2., dtype=float32)
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
          "gradtx.set_hyperparams: state contains no InjectHyperparamsState; build the optimizer "
          "with gradtx.inject_hyperparams(factory)(...) to keep hyperparameters in its state.")
    raise ValueError(
        f"gradtx.set_hyperparams: the state holds no hyperparameter {missing[0]!r}; it holds "
        f"{', '.join(sorted(held))}.")
  return new_state


def grid_sweep(
    train_fn: Callable[..., Any],
    /,
    *,
    chunk_size: int | str | None = "auto",
    **grids: Any,
) -> Any:
  """Runs `train_fn` on every combination of the grids, as one jitted, vmapped program.

  `train_fn(**hyperparams)` trains one configuration and returns a pytree of arrays (final loss,
  params, a loss curve); it builds its optimizer from the traced values it receives, e.g.
  `gradtx.adamw(learning_rate=learning_rate, weight_decay=weight_decay)`, or writes them into an
  injected state with `set_hyperparams`, and loops with `jax.lax.scan`. The Cartesian product of
  the 1-d `grids` is flattened, vmapped and compiled once with `jax.jit`: 64 learning rates x 4
  weight decays are 256 trainings in one program, with results of shape `(64, 4, ...)`, the grid
  axes in keyword order. A grid of integer seeds gives repeats of each configuration. Calling
  `grid_sweep` again with the same `train_fn` and grid shapes reuses the compiled program.

  `chunk_size=None` vectorizes all configurations at once, the usual best on an accelerator.
  `chunk_size=k` runs the
  flattened grid as a `jax.lax.map` over chunks of `k` vmapped configurations, inside the same
  compiled program, so peak memory is that of `k` runs; choose it when the full batch does not fit
  (large models, big grids on an accelerator). The default `'auto'` is `None` on accelerators
  and 8 on CPU, where vectorizing more configurations than that ran slower in our measurements
  (their working set outgrows the caches; benchmarks/RESULTS.md, "Sweeps"). Each
  configuration's numbers are those of its own run either way.

  Args:
    train_fn: a function of the grids' names returning a pytree of arrays.
    chunk_size: 'auto', None, or the number of configurations vectorized together (an
      int >= 1).
    **grids: one non-empty 1-d array (or list) of values per argument of `train_fn`.

  Returns:
    `train_fn`'s output with leading axes `tuple(len(g) for g in grids.values())`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> def train(lr, wd):  # one adamw step on sum(p**2) from p = 1
    ...   tx, p = gradtx.adamw(lr, weight_decay=wd), jnp.ones(1)
    ...   return gradtx.apply_updates(p, tx.update(2 * p, tx.init(p), p)[0])
    >>> gradtx.grid_sweep(train, lr=jnp.asarray([0.1, 0.2, 0.5]), wd=jnp.asarray([0.0, 1.0])).shape
    (3, 2, 1)
  """
  if not callable(train_fn):
    raise TypeError(
        f"gradtx.grid_sweep: train_fn must be callable, got {type(train_fn).__name__}.")
  if isinstance(chunk_size, str) and chunk_size == "auto":
    chunk_size = _AUTO_CPU_CHUNK if jax.default_backend() == "cpu" else None
  if chunk_size is not None and (isinstance(chunk_size, bool)
                                 or not isinstance(chunk_size, numbers.Integral)
                                 or chunk_size < 1):
    raise ValueError(
        f"gradtx.grid_sweep: chunk_size must be 'auto', None or an int >= 1, got "
        f"{chunk_size!r}.")
  if not grids:
    raise ValueError(
        "gradtx.grid_sweep: give at least one grid, e.g. "
        "grid_sweep(train, learning_rate=jnp.logspace(-4, -1, 64)).")
  names = list(grids)
  axes = []
  for name, grid in grids.items():
    axis = jnp.asarray(grid)
    if axis.ndim != 1 or axis.shape[0] == 0:
      raise ValueError(
          f"gradtx.grid_sweep: {name} must be a non-empty 1-d grid of values, got shape "
          f"{axis.shape}.")
    axes.append(axis)
  shape = tuple(axis.shape[0] for axis in axes)
  try:
    program = _sweep_program(train_fn, tuple(names), shape, chunk_size)
  except TypeError:  # an unhashable callable (e.g. a callable object): compile uncached
    program = _sweep_program.__wrapped__(train_fn, tuple(names), shape, chunk_size)
  return program(*axes)


# Configurations vectorized together on CPU by chunk_size='auto' (measured: benchmarks/).
_AUTO_CPU_CHUNK = 8


@functools.lru_cache(maxsize=32)
def _sweep_program(train_fn: Callable[..., Any], names: tuple[str, ...], shape: tuple[int, ...],
                   chunk_size: int | None) -> Callable[..., Any]:
  """The jitted sweep, cached so that calling `grid_sweep` again with the same `train_fn` and
  grid shapes reuses the compiled program instead of compiling a new one."""
  size = int(np.prod(shape))

  def one(values):
    return train_fn(**dict(zip(names, values)))

  def run_all(*axes):
    flat = [m.reshape(-1) for m in jnp.meshgrid(*axes, indexing="ij")]
    if chunk_size is None or chunk_size >= size:
      out = jax.vmap(one)(flat)
    else:
      out = jax.lax.map(one, flat, batch_size=int(chunk_size))
    return jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), out)

  return jax.jit(run_all)
