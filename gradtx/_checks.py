"""Private validation and hyperparameter resolution shared by every factory.

Factories validate their arguments when the user builds the optimizer (so the traceback points at
the user's line); `update` functions only compare tree structures, at trace time.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._trees import is_none

SWEEP_HINT = (
    "To sweep over several values, build the optimizer inside the function you vmap: "
    "jax.vmap(lambda lr: train(gradtx.adam(lr)))(lrs)."
)


def accepts_extra_args(update: Any) -> bool:
  """Whether an `update` function takes `**extra_args` (gradtx's and optax's ExtraArgs ones do);
  plain optax transformations do not, and are called without extra arguments."""
  try:
    parameters = inspect.signature(update).parameters.values()
  except (TypeError, ValueError):
    return False
  return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def is_tracer(x: Any) -> bool:
  return isinstance(x, jax.core.Tracer)


def _schedule_name(value: Any) -> str:
  return getattr(value, "__name__", type(value).__name__)


def _non_scalar_schedule_error(where: str, shape: Any) -> ValueError:
  return ValueError(
      f"{where} must return a scalar for each step count, got an array of shape {shape}. "
      f"{SWEEP_HINT}")


def check_schedule_output(fn: str, name: str, schedule: Any) -> None:
  """Traces `schedule` on an abstract int32 step (`jax.eval_shape`: no computation) and raises a
  ValueError naming `name` if it returns anything but a scalar.

  A schedule that cannot be traced abstractly (Python control flow on the step, a wrong
  signature) is left to fail, or to be checked by `resolve`, at update time.
  """
  try:
    out = jax.eval_shape(schedule, jax.ShapeDtypeStruct((), jnp.int32))
  except Exception:  # noqa: BLE001 - any tracing failure defers the check to `resolve`.
    return
  leaves = jax.tree.leaves(out)
  if len(leaves) != 1 or not hasattr(leaves[0], "shape"):
    raise ValueError(f"gradtx.{fn}: the {name} schedule must return a scalar for each step "
                     f"count, got a {type(out).__name__} of {len(leaves)} values.")
  if leaves[0].shape != ():
    raise _non_scalar_schedule_error(f"gradtx.{fn}: the {name} schedule", leaves[0].shape)


def resolve(value: Any, count: jax.Array, *, fn: str | None = None, name: str | None = None
            ) -> Any:
  """The value of a hyperparameter at step `count`: `value(count)` for a schedule, else `value`.

  A schedule's output must be a scalar. Factories already check that when they are built
  (`check_scalar(..., schedule=True)` traces the schedule once); this is the fallback for
  schedules that could not be traced then. It names `fn` and `name` when given.
  """
  if callable(value):
    out = value(count)
    if jnp.shape(out) != ():
      where = (f"gradtx.{fn}: the {name} schedule" if fn and name else
               f"gradtx: the schedule {_schedule_name(value)}")
      raise _non_scalar_schedule_error(where, jnp.shape(out))
    return out
  return value


def as_dtype(value: Any, like: jax.Array) -> Any:
  """Casts a resolved hyperparameter to the dtype of a leaf (Python numbers stay weakly typed)."""
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return value
  return jnp.asarray(value).astype(jnp.asarray(like).dtype)


def _describe(value: Any) -> str:
  if isinstance(value, (jax.Array, np.ndarray)) and not is_tracer(value):
    arr = np.asarray(value)
    if arr.ndim == 0:
      return repr(arr.item())
    return f"an array of shape {arr.shape}"
  return repr(value)


def check_scalar(
    fn: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    schedule: bool = False,
    optional: bool = False,
) -> None:
  """Validates a numeric hyperparameter: kind, scalar shape, finiteness and range.

  Tracers and schedules get only the kind and shape checks (their values are unknown here); a
  schedule's output shape is found by tracing it once on an abstract step.
  """
  if value is None and optional:
    return
  if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
    if schedule:
      check_schedule_output(fn, name, value)
      return
    raise TypeError(
        f"gradtx.{fn}: {name} must be a number or a scalar array, got a callable "
        f"{getattr(value, '__name__', type(value).__name__)}; {name} does not accept a schedule.")
  if isinstance(value, bool) or not isinstance(
      value, (numbers.Real, jax.Array, np.ndarray, np.generic)):
    kinds = "a number, a scalar array or a schedule" if schedule else "a number or a scalar array"
    raise TypeError(f"gradtx.{fn}: {name} must be {kinds}, got {type(value).__name__} {value!r}.")
  shape = np.shape(value)
  if shape != ():
    raise ValueError(
        f"gradtx.{fn}: {name} must be a scalar, got an array of shape {shape}. {SWEEP_HINT}")
  if is_tracer(value):
    return
  dtype = np.asarray(value).dtype
  if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
          or dtype == jnp.bfloat16):
    raise TypeError(f"gradtx.{fn}: {name} must be real-valued, got dtype {dtype}.")
  v = float(np.asarray(value, dtype=np.float64))
  if not math.isfinite(v):
    raise ValueError(f"gradtx.{fn}: {name} must be finite, got {_describe(value)}.")
  lo = "(" if low_open else "["
  hi = ")" if high_open else "]"
  rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
  if low is not None and (v < low or (low_open and v == low)):
    raise ValueError(f"gradtx.{fn}: {name} must be in {rng}, got {_describe(value)}.")
  if high is not None and (v > high or (high_open and v == high)):
    raise ValueError(f"gradtx.{fn}: {name} must be in {rng}, got {_describe(value)}.")


def check_int(fn: str, name: str, value: Any, low: int, hint: str = "") -> None:
  """Validates an integer hyperparameter: a Python int or an integer scalar array (a tracer is
  checked for kind and shape only), >= `low`."""
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, (int, np.integer, jax.Array, np.ndarray)):
    raise TypeError(
        f"gradtx.{fn}: {name} must be an int, got {type(value).__name__} {value!r}.")
  if np.shape(value) != ():
    raise ValueError(f"gradtx.{fn}: {name} must be a scalar, got an array of shape "
                     f"{np.shape(value)}. {SWEEP_HINT}")
  if not jnp.issubdtype(jnp.asarray(value).dtype, jnp.integer):
    raise TypeError(
        f"gradtx.{fn}: {name} must be an int, got dtype {jnp.asarray(value).dtype}.")
  if not is_tracer(value) and int(value) < low:
    raise ValueError(f"gradtx.{fn}: {name} must be >= {low}, got {int(value)}.{hint}")


def check_bound(fn: str, name: str, value: Any) -> None:
  """Validates a non-negative scalar bound that may be `inf` (a clipping norm that never clips):
  a number or scalar array, not NaN, >= 0; a tracer is checked for kind and shape only."""
  if isinstance(value, bool) or not isinstance(
      value, (numbers.Real, jax.Array, np.ndarray, np.generic)):
    raise TypeError(
        f"gradtx.{fn}: {name} must be a number or a scalar array, got {type(value).__name__} "
        f"{value!r}.")
  if np.shape(value) != ():
    raise ValueError(
        f"gradtx.{fn}: {name} must be a scalar, got an array of shape {np.shape(value)}. "
        f"{SWEEP_HINT}")
  if is_tracer(value):
    return
  v = float(np.asarray(value, dtype=np.float64))
  if math.isnan(v) or v < 0:
    raise ValueError(f"gradtx.{fn}: {name} must be in [0, inf], got {_describe(value)}.")


def check_dtype(fn: str, name: str, dtype: Any) -> Any:
  """Validates an optional floating dtype argument and returns it canonicalized (or None)."""
  if dtype is None:
    return None
  try:
    canonical = jax.dtypes.canonicalize_dtype(jnp.dtype(dtype))
  except TypeError as e:
    raise TypeError(f"gradtx.{fn}: {name} must be a dtype or None, got {dtype!r}.") from e
  if not jnp.issubdtype(canonical, jnp.inexact):
    raise ValueError(f"gradtx.{fn}: {name} must be a floating dtype, got {canonical}.")
  return canonical


def check_bool(fn: str, name: str, value: Any) -> None:
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"gradtx.{fn}: {name} must be a bool, got {type(value).__name__} {value!r}.")


def check_choice(fn: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
  if value not in choices:
    raise ValueError(f"gradtx.{fn}: {name} must be one of {choices}, got {value!r}.")


def is_static_bool(x: Any) -> bool:
  """A mask leaf known when the transformation is built: a Python/NumPy bool or a concrete
  scalar bool array (not a tracer)."""
  if isinstance(x, (bool, np.bool_)):
    return True
  return (isinstance(x, (jax.Array, np.ndarray)) and not is_tracer(x) and np.shape(x) == ()
          and x.dtype == np.bool_)


def check_same_structure(fn: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
  """Raises a ValueError naming both trees when their structures differ (`None` in `a` matches
  any subtree of `b`, as optax's `None` updates do).

  Runs at trace time only under `jit`; in eager mode it is one treedef comparison per call.
  """
  sa = jax.tree.structure(a, is_leaf=is_none)
  try:  # a `None` in `a` stands for the whole subtree of `b` there (optax's None updates)
    b = jax.tree.map(lambda x, y: None if x is None else y, a, b, is_leaf=is_none)
  except ValueError:  # not even a prefix: the comparison below shows both structures
    pass
  sb = jax.tree.structure(b, is_leaf=is_none)
  if sa != sb:
    raise ValueError(
        f"gradtx.{fn}: the structure of {name_b} does not match {name_a}.\n"
        f"  {name_a}: {sa}\n  {name_b}: {sb}\n"
        "Hint: init the optimizer with the same params pytree you pass gradients for.")


_EXTRA_ARG_MEANING = {
    "value_fn": "the loss as a function of the params (closing over the batch)",
    "value": "the loss at params",
    "grad": "the gradient of the loss at params",
    "residual_fn": "the residuals as a function of the params",
    "value_fn or residual_fn": "the loss (or the residuals) as a function of the params",
    "grad_fn": "the gradient of the loss as a function of the params",
    "grad_fn or value_fn": "the gradient (or the loss) as a function of the params",
}


def missing_extra_arg_error(fn: str, name: str, call: str) -> ValueError:
  """The error `update` raises when a keyword extra argument it needs (`value_fn=`,
  `residual_fn=`, ...) is missing: it names the argument and shows the call (STYLE §13)."""
  return ValueError(f"gradtx.{fn}: update needs {name}, {_EXTRA_ARG_MEANING[name]}; call {call}.")


def missing_params_error(fn: str) -> ValueError:
  return ValueError(
      f"gradtx.{fn}: this transformation needs the current params; call "
      "update(updates, state, params) with params=<the current parameters>.")
