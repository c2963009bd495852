"""Fast eager calls: a chain of gradtx's own transformations compiles itself when called eagerly.

Called without `jax.jit`, an optimizer's `update` runs each of its dozens of element-wise ops as a
separate dispatch per leaf: Adam on a ResNet-50-sized tree is thousands of dispatches and a
parameter-sized temporary per op. `jit_when_eager(update)` returns an `update` that, from its
`EAGER_CALLS_BEFORE_JIT + 1`-th eager call on (the first calls on a small tree stay eager, so
one-off calls pay no compilation), or from the first on a tree of `MANY_LEAVES` or more, calls a `jax.jit` of itself, cached per transformation. Under an outer
transformation (`jit`, `vmap`, `grad`, `scan`) the arguments are tracers and the plain function
runs, so it inlines into the caller's program exactly as before.

Only transformations known to be traceable are compiled this way (`mark_traceable`): gradtx's
element-wise primitives and chains made only of them. A chain holding a user's own
transformation stays eager, so its Python side effects (prints, host callbacks, value-dependent
`if`s) behave as the user wrote them.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import jax
import numpy as np

# The first eager calls of each transformation on a small tree stay eager (op-by-op dispatch
# compiles each op once per shape, cached across transformations); later ones, and every call on
# a tree of many leaves (where op-by-op costs seconds of per-shape compiles), are compiled.
EAGER_CALLS_BEFORE_JIT = 2
MANY_LEAVES = 16

_TRACEABLE: "weakref.WeakSet[Callable[..., Any]]" = weakref.WeakSet()
_ARRAY_TYPES = (jax.Array, np.ndarray, np.generic, float, int, complex, bool)


def mark_traceable(update: Callable[..., Any]) -> Callable[..., Any]:
  """Records that `update` calls no user code that could need eager execution."""
  _TRACEABLE.add(update)
  return update


# Modules whose transformations call no user code but schedules (which must trace: gradtx traces
# every schedule once when the transformation is built).
_PRIMITIVE_MODULES = frozenset(
    f"gradtx.{m}" for m in ("adaptive", "clipping", "decay", "momentum", "noise", "scaling", "sign"))
_BASE_PRIMITIVES = ("identity.", "set_to_zero.")


def is_traceable(update: Callable[..., Any]) -> bool:
  """Whether `update` is one of gradtx's own traceable update functions (see `mark_traceable`)."""
  module = getattr(update, "__module__", None)
  if module in _PRIMITIVE_MODULES:
    return True
  if module == "gradtx.base" and getattr(update, "__qualname__", "").startswith(_BASE_PRIMITIVES):
    return True
  try:
    return update in _TRACEABLE
  except TypeError:  # not weak-referenceable (e.g. a builtin): unknown, so not traceable
    return False


def _all_concrete_arrays(tree: Any) -> bool:
  for leaf in jax.tree.leaves(tree):
    if isinstance(leaf, jax.core.Tracer) or not isinstance(leaf, _ARRAY_TYPES):
      return False
  return True


def worth_compiling(tree: Any) -> bool:
  """An eager call (no tracers) on `MANY_LEAVES` or more plain float arrays."""
  leaves = jax.tree.leaves(tree)
  if len(leaves) < MANY_LEAVES or not _all_concrete_arrays(leaves):
    return False
  return not any(getattr(x, "dtype", None) == jax.dtypes.float0 for x in leaves)


def jit_when_eager(update: Callable[..., Any]) -> Callable[..., Any]:
  """Wraps a traceable `update(updates, state, params=None, **extra_args)`; see the module doc."""
  jitted = jax.jit(update)
  eager_calls = [0]

  def dispatch(updates, state, params=None, **extra_args):
    if not _all_concrete_arrays((updates, state, params, extra_args)):
      return update(updates, state, params, **extra_args)
    if eager_calls[0] < EAGER_CALLS_BEFORE_JIT and len(jax.tree.leaves(updates)) < MANY_LEAVES:
      eager_calls[0] += 1
      return update(updates, state, params, **extra_args)
    return jitted(updates, state, params, **extra_args)

  dispatch.__wrapped__ = update  # type: ignore[attr-defined]
  return mark_traceable(dispatch)
