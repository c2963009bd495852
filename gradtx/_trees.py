"""Private pytree helpers that several modules need (defined once here)."""

from __future__ import annotations

from typing import Any

import jax


def is_none(x: Any) -> bool:
  """`is_leaf` predicate that keeps `None` leaves (optax's convention: `None` updates pass)."""
  return x is None


@jax.tree_util.register_pytree_node_class
class ParamsPlaceholder:
  """The stand-in params `tree.map_params` passes to `init`: a pytree node without children.

  Every tree map over it returns it unchanged, so the state built from it holds a placeholder
  wherever the real state holds a params-shaped tree. Wrappers that transform the params before
  the inner `init` (`masked`) pass it through untouched (see `is_params_placeholder`).
  """

  def tree_flatten(self):
    return (), None

  @classmethod
  def tree_unflatten(cls, aux, children):
    del aux, children
    return cls()


def is_params_placeholder(x: Any) -> bool:
  """True for gradtx's `ParamsPlaceholder` and for optax's (`optax.tree.map_params` on a gradtx
  wrapper), recognised by its class name since gradtx never imports optax."""
  cls = type(x)
  return isinstance(x, ParamsPlaceholder) or (
      cls.__name__ == "_ParamsPlaceholder" and cls.__module__.startswith("optax."))


def map_skip_none(f: Any, first: Any, *rest: Any) -> Any:
  """Maps `f` over the leaves of `first` and `rest`; `None` leaves of `first` (absent updates)
  pass through as `None`."""
  return jax.tree.map(
      lambda x, *r: None if x is None else f(x, *r), first, *rest, is_leaf=is_none)
