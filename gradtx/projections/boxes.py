"""Projections onto boxes: the non-negative orthant, a box, the hypercube and the l-infinity ball.

Each clips every element independently (the box is a product of intervals), with optax 0.2.8's
arithmetic (`jnp.clip`, `jax.nn.relu`), so results are bit-identical to optax's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._checks import check_bound, is_tracer

__all__ = [
    "projection_box",
    "projection_hypercube",
    "projection_linf_ball",
    "projection_non_negative",
]



def _bound_tree(fn: str, name: str, bound: Any, tree: Any) -> Any:
  """`bound` as a tree of `tree`'s structure: a tree of that structure is kept, a single scalar or
  array is broadcast to every leaf (optax requires the full tree unless `tree` is one array)."""
  tree_def = jax.tree.structure(tree)
  bound_def = jax.tree.structure(bound)
  if bound_def == tree_def:
    return bound
  if jax.tree_util.treedef_is_leaf(bound_def) and bound_def.num_leaves == 1:
    return jax.tree.map(lambda _: bound, tree)
  raise ValueError(
      f"gradtx.{fn}: {name} must be a scalar, an array or a tree of the structure of tree.\n"
      f"  tree: {tree_def}\n  {name}: {bound_def}")


def _concrete_leaves(tree: Any) -> list[np.ndarray] | None:
  """The leaves as NumPy arrays, or None if any leaf is traced (values unknown: no check)."""
  leaves = jax.tree.leaves(tree)
  if any(is_tracer(x) for x in leaves):
    return None
  return [np.asarray(x, dtype=np.float64) for x in leaves]


def _check_non_negative_tree(fn: str, name: str, value: Any) -> None:
  """A scalar or tree of bounds: every concrete element must be >= 0 (and not NaN)."""
  leaves = _concrete_leaves(value)
  if leaves is None:
    return
  for leaf in leaves:
    if np.any(np.isnan(leaf)) or np.any(leaf < 0):
      shown = leaf.item() if leaf.ndim == 0 else f"an array with minimum {np.nanmin(leaf)!r}"
      raise ValueError(f"gradtx.{fn}: {name} must be >= 0 elementwise, got {shown}.")


def projection_non_negative(tree: Any) -> Any:
  r"""Projection onto the non-negative orthant: every element is clipped at 0.

  .. math::
    \operatorname{argmin}_p \|x - p\|_2^2 \quad \text{subject to} \quad p \ge 0
    \qquad\Longrightarrow\qquad p = \max(x, 0)

  Args:
    tree: the pytree :math:`x` to project.

  Returns:
    The projection, a pytree of the structure and dtypes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_non_negative({'w': jnp.array([-1., 2.])})
    {'w': Array([0., 2.], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto boxes and balls).
  """
  return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
  r"""Projection onto the box :math:`\{p : \text{lower} \le p \le \text{upper}\}`.

  The box is a product of intervals, so each element is clipped on its own.

  .. math::
    \operatorname{argmin}_p \|x - p\|_2^2 \quad \text{subject to} \quad
    \text{lower} \le p \le \text{upper}
    \qquad\Longrightarrow\qquad p = \min(\max(x, \text{lower}), \text{upper})

  Args:
    tree: the pytree :math:`x` to project.
    lower: the lower bound: a scalar or array (broadcast to every leaf) or a pytree of the
      structure of `tree`.
    upper: the upper bound, as `lower`; where concrete, `lower <= upper` elementwise (else the
      box is empty and a ValueError names `upper`).

  Returns:
    The projection, a pytree of the structure of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_box({'w': jnp.array([-2., 0.5, 3.])}, -1., 1.)
    {'w': Array([-1. ,  0.5,  1. ], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto boxes and balls).
  """
  fn = "projections.projection_box"
  lower = _bound_tree(fn, "lower", lower, tree)
  upper = _bound_tree(fn, "upper", upper, tree)
  lo, hi = _concrete_leaves(lower), _concrete_leaves(upper)
  if lo is not None and hi is not None:
    for l, u in zip(lo, hi):
      if np.any(np.broadcast_to(l, np.broadcast_shapes(l.shape, u.shape)) > u):
        raise ValueError(
            f"gradtx.{fn}: upper must be >= lower elementwise (else the box is empty), got "
            f"lower {l.tolist()} and upper {u.tolist()}.")
  return jax.tree.map(jnp.clip, tree, lower, upper)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the hypercube :math:`[0, \text{scale}]^n` (the unit one by default).

  `projection_box` with `lower=0` and `upper=scale`.

  .. math::
    \operatorname{argmin}_p \|x - p\|_2^2 \quad \text{subject to} \quad
    0 \le p \le \text{scale}

  Args:
    tree: the pytree :math:`x` to project.
    scale: the side of the hypercube, >= 0: a scalar or a pytree of the structure of `tree`.

  Returns:
    The projection, a pytree of the structure of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_hypercube({'w': jnp.array([-2., 0.5, 3.])})
    {'w': Array([0. , 0.5, 1. ], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto boxes and balls).
  """
  _check_non_negative_tree("projections.projection_hypercube", "scale", scale)
  return projection_box(tree, lower=0, upper=scale)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the l-infinity ball of radius `scale`.

  Every element is clipped to :math:`[-\text{scale}, \text{scale}]`.

  .. math::
    \operatorname{argmin}_p \|x - p\|_2^2 \quad \text{subject to} \quad
    \|p\|_\infty \le \text{scale}

  Args:
    tree: the pytree :math:`x` to project.
    scale: the radius, a scalar >= 0 (`inf` leaves `tree` unchanged).

  Returns:
    The projection, a pytree of the structure and dtypes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_linf_ball({'w': jnp.array([-2., 0.5, 3.])})
    {'w': Array([-1. ,  0.5,  1. ], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto boxes and balls).
  """
  check_bound("projections.projection_linf_ball", "scale", scale)
  # Bounds shaped and typed like each leaf, as optax's `tree.full_like`.
  lower = jax.tree.map(lambda x: jnp.full_like(x, -scale), tree)
  upper = jax.tree.map(lambda x: jnp.full_like(x, scale), tree)
  return projection_box(tree, lower=lower, upper=upper)


