"""Private input checks shared by the classification losses.

Shapes and dtypes are static, so every check runs in Python at trace time (also under `jit` and
`vmap`) and names the argument. Label *values* are traced, so they are never checked in Python:
an out-of-range integer label gives a NaN loss and NaN gradients instead (`label_validity`).
"""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._checks import is_tracer


def _dtype(x: Any) -> np.dtype:
  return jnp.result_type(x)


def floating(fn: str, name: str, x: Any) -> jax.Array:
  """`x` as an array with a floating dtype (bf16, f16, f32, f64), else a TypeError."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"gradtx.{fn}: {name} must have a floating dtype, got {x.dtype}.")
  return x


def probabilities(fn: str, x: Any) -> jax.Array:
  """`labels` that must be probabilities: a floating dtype; integer class indices are an error."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"gradtx.{fn}: labels must be probabilities with a floating dtype (e.g. one-hot rows), "
        f"got dtype {x.dtype}. For integer class indices use "
        "softmax_cross_entropy_with_integer_labels; for integer one-hot rows cast them to float.")
  return x


def integer_labels(fn: str, x: Any) -> jax.Array:
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.integer):
    raise TypeError(
        f"gradtx.{fn}: labels must be integer class indices, got dtype {x.dtype}. For "
        "probabilities or one-hot rows use softmax_cross_entropy.")
  return x


def broadcasts_to(fn: str, name: str, x: Any, shape: tuple[int, ...], what: str) -> None:
  """`x` broadcasts to `shape` without enlarging it (a larger `x` is an error, not a silent
  outer product such as `[B, 1]` logits against `[B]` labels giving `[B, B]`)."""
  xs = tuple(np.shape(x))
  try:
    out = jnp.broadcast_shapes(xs, tuple(shape))
  except ValueError:
    out = None
  if out != tuple(shape):
    raise ValueError(
        f"gradtx.{fn}: {name} of shape {xs} must broadcast to {what} {tuple(shape)}.")


def canonical_axes(fn: str, axis: Any, ndim: int) -> tuple[int, ...]:
  """`axis` (an int or a tuple of ints) as a sorted-as-given tuple of non-negative axes."""
  axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
  out = []
  for a in axes:
    try:
      a = operator.index(a)
    except TypeError:
      raise TypeError(
          f"gradtx.{fn}: axis must be an int or a tuple of ints, got {axis!r}.") from None
    if not -ndim <= a < ndim:
      raise ValueError(f"gradtx.{fn}: axis {a} is out of bounds for logits of rank {ndim}.")
    out.append(a % ndim)
  if len(set(out)) != len(out):
    raise ValueError(f"gradtx.{fn}: axis has repeated entries: {axis!r}.")
  return tuple(out)


def expand_where(fn: str, where: Any, axis: Any, shape: tuple[int, ...]) -> jax.Array | None:
  """optax's `where` convention: a mask of the batch shape gets the reduced axes back; then it
  must broadcast to the logits' shape."""
  if where is None:
    return None
  where = jnp.asarray(where)
  if where.ndim != len(shape):
    where = jnp.expand_dims(where, axis)
  broadcasts_to(fn, "where", where, shape, "the logits' shape")
  return where


def label_validity(labels: jax.Array, num_classes: int, dtype: Any) -> tuple[jax.Array, jax.Array]:
  """Wraps labels in [-n, 0) as NumPy indexing does; returns (labels in [0, n), a factor that is
  1 for a label in [-n, n) and NaN outside, to multiply the loss by)."""
  valid = (labels >= -num_classes) & (labels < num_classes)
  wrapped = jnp.where(labels < 0, labels + num_classes, labels)
  factor = jnp.where(valid, jnp.ones((), dtype), jnp.full((), jnp.nan, dtype))
  return wrapped, factor


def check_unit_interval(fn: str, name: str, value: Any, *, optional: bool = False) -> None:
  """A concrete value (scalar or array) must lie in [0, 1]; tracers are not checked."""
  if value is None and optional:
    return
  if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
    raise TypeError(f"gradtx.{fn}: {name} must be a number or an array, got a callable.")
  if is_tracer(value):
    return
  arr = np.asarray(value, dtype=np.float64)
  if not np.all((arr >= 0) & (arr <= 1)):
    raise ValueError(f"gradtx.{fn}: {name} must be in [0, 1], got {value!r}.")


def check_real(fn: str, name: str, value: Any, *, low: float | None = None) -> None:
  """A concrete value (scalar or array) must be finite (and >= `low`); tracers are not checked."""
  if callable(value) and not isinstance(value, (jax.Array, np.ndarray)):
    raise TypeError(f"gradtx.{fn}: {name} must be a number or an array, got a callable.")
  if is_tracer(value):
    return
  arr = np.asarray(value, dtype=np.float64)
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"gradtx.{fn}: {name} must be finite, got {value!r}.")
  if low is not None and not np.all(arr >= low):
    raise ValueError(f"gradtx.{fn}: {name} must be >= {low}, got {value!r}.")
