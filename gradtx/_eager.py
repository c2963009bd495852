"""Fast eager calls: a chain of gradtx's own transformations compiles itself when called eagerly.

Called without `jax.jit`, an optimizer's `update` runs each of its dozens of element-wise ops as a
separate dispatch per leaf: Adam on a ResNet-50-sized tree is thousands of dispatches and a
parameter-sized temporary per op. `jit_when_eager(update)` returns an `update` that, called
eagerly on a tree worth compiling (`MANY_LEAVES` leaves or `MANY_ELEMENTS` elements or more),
calls a `jax.jit` of itself, cached per transformation. Small trees stay eager: there dispatch
costs little, and compiling each new optimizer would cost more than it saves (tests, doctests,
one-off calls). Under an outer transformation (`jit`, `vmap`, `grad`, `scan`) the arguments are
tracers and the plain function runs, so it inlines into the caller's program exactly as before.

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

# Eager calls on trees this large (either count) are compiled; smaller ones stay eager.
MANY_LEAVES = 16
MANY_ELEMENTS = 1 << 16

_TRACEABLE: "weakref.WeakSet[Callable[..., Any]]" = weakref.WeakSet()
_ARRAY_TYPES = (jax.Array, np.ndarray, np.generic, float, int, complex, bool)


def mark_traceable(update: Callable[..., Any]) -> Callable[..., Any]:
  """Records that `update` calls no user code that could need eager execution."""
  _TRACEABLE.add(update)
  return update


# Modules whose transformations call no user code but schedules (which must trace: gradtx traces
# every schedule once when the transformation is built).
_PRIMITIVE_MODULES = frozenset(
    f"gradtx.transforms.{m}"
    for m in ("adaptive", "clipping", "decay", "momentum", "noise", "scaling", "sign"))
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


def _large(leaves: list[Any]) -> bool:
  return len(leaves) >= MANY_LEAVES or sum(np.size(x) for x in leaves) >= MANY_ELEMENTS


def worth_compiling(tree: Any) -> bool:
  """An eager call (no tracers) on a large tree (see `MANY_LEAVES`) of plain float arrays."""
  leaves = jax.tree.leaves(tree)
  if not _large(leaves) or not _all_concrete_arrays(leaves):
    return False
  return not any(getattr(x, "dtype", None) == jax.dtypes.float0 for x in leaves)


def jit_when_eager(update: Callable[..., Any]) -> Callable[..., Any]:
  """Wraps a traceable `update(updates, state, params=None, **extra_args)`; see the module doc."""
  jitted = jax.jit(update)

  def dispatch(updates, state, params=None, **extra_args):
    if (not _large(jax.tree.leaves(updates))
        or not _all_concrete_arrays((updates, state, params, extra_args))):
      return update(updates, state, params, **extra_args)
    return jitted(updates, state, params, **extra_args)

  dispatch.__wrapped__ = update  # type: ignore[attr-defined]
  return mark_traceable(dispatch)
