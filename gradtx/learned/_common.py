"""Private helpers shared by the learned optimizers: the meta-parameter structure check and
Andrychowicz et al.'s gradient preprocessing."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def describe_tree(tree: Any) -> str:
  """A short rendering of a tree's structure with each leaf's shape and dtype."""
  shapes = jax.tree.map(lambda x: f"{tuple(jnp.shape(x))}:{jnp.result_type(x)}", tree)
  return str(shapes)


def check_meta_params(fn: str, meta_params: Any, expected: Any) -> None:
  """Raises a TypeError (not a pytree of arrays) or ValueError (structure or shapes) naming
  `meta_params` and showing the expected layout (`expected` is `init_meta_params`'s shapes).

  Works on traced meta-parameters: only structure and shapes are compared.
  """
  leaves = jax.tree.leaves(meta_params)
  for leaf in leaves:
    if not hasattr(leaf, "shape") or not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
      raise TypeError(
          f"gradtx.{fn}: meta_params must be a pytree of floating arrays as returned by "
          f"init_meta_params(key), got a leaf {leaf!r}. Expected: {describe_tree(expected)}")
  same = jax.tree.structure(meta_params) == jax.tree.structure(expected) and all(
      jnp.shape(a) == b.shape for a, b in zip(leaves, jax.tree.leaves(expected)))
  if not same:
    raise ValueError(
        f"gradtx.{fn}: meta_params do not have the structure init_meta_params(key) returns.\n"
        f"  expected: {describe_tree(expected)}\n  got:      {describe_tree(meta_params)}")


def preprocess_gradient(g: jax.Array, p: float = 10.0, axis: int = -1) -> jax.Array:
  r"""Andrychowicz et al.'s Appendix A preprocessing, two features per coordinate.

  .. math::
    \nabla \mapsto (\log|\nabla| / p, \operatorname{sign}\nabla) \text{ if } |\nabla| \ge e^{-p},
    \quad (-1, e^p \nabla) \text{ otherwise.}

  The two features are stacked along ``axis`` of the result.
  """
  a = jnp.abs(g)
  big = a >= jnp.exp(-p)
  log_term = jnp.log(jnp.maximum(a, jnp.exp(-p))) / p  # safe log: no NaN gradient at g = 0
  first = jnp.where(big, log_term, -1.0)
  second = jnp.where(big, jnp.sign(g), jnp.exp(p) * g)
  return jnp.stack([first, second], axis=axis)
