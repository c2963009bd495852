"""Private argument checks shared by the loss families (classification, sparsemax, regression,
similarity, divergences, ranking, segmentation, ctc).

Every check runs in Python on static information (dtypes, shapes, axes), so it raises at trace
time under `jit`, with a message naming the function and the argument. Values are never read
here: they may be tracers (the scalar hyperparameter checks skip them). Integer label *values*
are traced too: an out-of-range label gives a NaN loss and NaN gradients instead
(`label_validity`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._checks import is_tracer


def _dtype(x: Any) -> Any:
  return jax.dtypes.result_type(x)


def floating(fn: str, name: str, x: Any) -> jax.Array:
  """`x` as a JAX array; a TypeError naming `name` unless its dtype is floating."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    hint = ""
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
      hint = (" Integer or boolean values are not accepted where probabilities, scores or "
              "real values are expected; cast them (x.astype(jnp.float32)) if that is meant.")
    raise TypeError(
        f"gradtx.{fn}: {name} must have a floating-point dtype, got {x.dtype}.{hint}")
  return x


def real(fn: str, name: str, x: Any) -> jax.Array:
  """`x` as a JAX array; a TypeError naming `name` if it is complex or not numeric."""
  x = jnp.asarray(x)
  if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)
          or x.dtype == jnp.bool_):
    raise TypeError(f"gradtx.{fn}: {name} must be real-valued, got dtype {x.dtype}.")
  return x


def same_shape(fn: str, name_a: str, a: jax.Array, name_b: str, b: jax.Array) -> None:
  """A ValueError naming `name_b` unless `a` and `b` have the same shape (no broadcasting)."""
  if np.shape(a) != np.shape(b):
    raise ValueError(
        f"gradtx.{fn}: {name_b} must have the shape of {name_a}, got {name_b} of shape "
        f"{np.shape(b)} and {name_a} of shape {np.shape(a)}.")


def broadcasts_to(fn: str, name: str, x: jax.Array, shape: tuple[int, ...], of: str) -> None:
  """A ValueError naming `name` unless `x` broadcasts to `shape` without changing it."""
  try:
    out = np.broadcast_shapes(np.shape(x), shape)
  except ValueError:
    out = None
  if out != tuple(shape):
    raise ValueError(
        f"gradtx.{fn}: {name} of shape {np.shape(x)} does not broadcast to the shape {shape} "
        f"of {of}.")


def rank_at_least(fn: str, name: str, x: jax.Array, rank: int) -> None:
  if np.ndim(x) < rank:
    raise ValueError(f"gradtx.{fn}: {name} must have at least {rank} dimension(s), got shape "
                     f"{np.shape(x)}.")


def rank_exactly(fn: str, name: str, x: jax.Array, rank: int) -> None:
  if np.ndim(x) != rank:
    raise ValueError(f"gradtx.{fn}: {name} must have rank {rank}, got shape {np.shape(x)}.")


def axes(fn: str, axis: Any, ndim: int, name: str = "axis", allow_none: bool = True
         ) -> tuple[int, ...]:
  """Validates an `axis` argument (None, an int or a sequence of ints) against `ndim`; returns
  the axes it names as non-negative ints (every axis for None)."""
  if axis is None:
    if not allow_none:
      raise TypeError(f"gradtx.{fn}: {name} must be an int or a tuple of ints, got None.")
    return tuple(range(ndim))
  items: Sequence[Any] = axis if isinstance(axis, (tuple, list)) else (axis,)
  out = []
  for a in items:
    if isinstance(a, (bool, np.bool_)):
      raise TypeError(f"gradtx.{fn}: {name} must be an int or a tuple of ints, got {axis!r}.")
    try:
      a = operator.index(a)
    except TypeError:
      raise TypeError(
          f"gradtx.{fn}: {name} must be an int or a tuple of ints, got {axis!r}.") from None
    if not -ndim <= a < ndim:
      raise ValueError(
          f"gradtx.{fn}: {name}={axis!r} is out of range for inputs of rank {ndim}.")
    out.append(a % ndim)
  if len(set(out)) != len(out):
    raise ValueError(f"gradtx.{fn}: {name}={axis!r} repeats an axis.")
  return tuple(out)


def pair_over_axes(fn: str, name_a: str, a: jax.Array, name_b: str, b: jax.Array, axis: Any
                   ) -> tuple[int, ...]:
  """Shapes of two operands reduced together over `axis`: they must broadcast against each
  other, but not along the reduced axes, where both must have the full size (a vector of
  length 1 or a missing dimension stretched along the reduction is a silent bug). Returns the
  broadcast shape."""
  sa, sb = np.shape(a), np.shape(b)
  try:
    shape = np.broadcast_shapes(sa, sb)
  except ValueError:
    raise ValueError(
        f"gradtx.{fn}: {name_b} of shape {sb} does not broadcast against {name_a} of shape "
        f"{sa}.") from None
  reduced = axes(fn, axis, len(shape))
  for ax in reduced:
    for name, s in ((name_a, sa), (name_b, sb)):
      k = ax - (len(shape) - len(s))
      size = s[k] if k >= 0 else 1
      if size != shape[ax]:
        raise ValueError(
            f"gradtx.{fn}: {name_a} (shape {sa}) and {name_b} (shape {sb}) must have the same "
            f"size along the reduced axis {ax} (axis={axis!r}); {name} would be broadcast "
            "along it.")
  return tuple(shape)


def where_mask(fn: str, where: Any, shape: tuple[int, ...], of: str) -> Any:
  """`where` as a boolean array that broadcasts to `shape` (or None)."""
  if where is None:
    return None
  where = jnp.asarray(where)
  if where.dtype != jnp.bool_:
    raise TypeError(f"gradtx.{fn}: where must be a boolean mask, got dtype {where.dtype}.")
  broadcasts_to(fn, "where", where, shape, of)
  return where


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


def expand_where(fn: str, where: Any, axis: Any, shape: tuple[int, ...]) -> jax.Array | None:
  """optax's `where` convention: a mask of the batch shape gets the reduced axes back; then it
  must broadcast to the logits' shape."""
  if where is None:
    return None
  where = jnp.asarray(where)
  if where.ndim != len(shape):
    where = jnp.expand_dims(where, axis)
  broadcasts_to(fn, "where", where, shape, "logits")
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
