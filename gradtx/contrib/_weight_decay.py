"""Private: the per-leaf weight-decay mask of the parameter-free optimizers (prodigy, dadapt_adamw,
mechanize), whose decay sits inside one update formula and so cannot be a separate
`add_decayed_weights(weight_decay, mask)` element of a chain without changing optax's state."""

from __future__ import annotations

from typing import Any

import jax

from gradtx import _checks


def check_mask(fn: str, mask: Any) -> None:
  """Validates `mask` when the optimizer is built: None, a function, or a pytree of bools."""
  if mask is None or callable(mask):
    return
  for m in jax.tree.leaves(mask):
    if not _checks.is_static_bool(m):
      raise TypeError(
          f"gradtx.{fn}: mask leaves must be Python bools (True to decay a leaf or subtree), got "
          f"{type(m).__name__} {m!r}; or pass a function of the params returning such a tree.")


def leaf_mask(fn: str, mask: Any, params: Any) -> list[bool]:
  """One Python bool per leaf of `params` (`jax.tree.leaves` order): whether it is decayed.

  `mask` is None (every leaf), a pytree of bools whose structure is a prefix of the params', or
  a function of the params returning one.
  """
  n = len(jax.tree.leaves(params))
  if mask is None:
    return [True] * n
  tree = mask(params) if callable(mask) else mask
  check_mask(fn, tree)
  try:
    full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
  except ValueError as e:
    raise ValueError(
        f"gradtx.{fn}: the structure of mask is not a prefix of the params' structure.\n"
        f"  mask: {jax.tree.structure(tree)}\n  params: {jax.tree.structure(params)}") from e
  return [bool(m) for m in jax.tree.leaves(full)]
