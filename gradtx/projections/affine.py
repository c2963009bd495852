"""Projections onto affine sets: a line through the origin, a hyperplane, a halfspace.

`x` and the normal `a` are pytrees of one structure (their inner product runs over all leaves);
the arithmetic is optax 0.2.8's (`tree.vdot` at `Precision.HIGHEST`), so results are
bit-identical to optax's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import tree as tree_math
from gradtx._checks import check_scalar, is_tracer

__all__ = [
    "projection_halfspace",
    "projection_hyperplane",
    "projection_vector",
]


def _check_normal(fn: str, x: Any, a: Any) -> None:
  """`a` has the structure and leaf shapes of `x`, and is not zero where its values are known."""
  x_def, a_def = jax.tree.structure(x), jax.tree.structure(a)
  if x_def != a_def:
    raise ValueError(f"gradtx.{fn}: a must have the structure of x.\n  x: {x_def}\n  a: {a_def}")
  for path_leaf, a_leaf in zip(jax.tree_util.tree_leaves_with_path(x), jax.tree.leaves(a)):
    path, x_leaf = path_leaf
    if jnp.shape(x_leaf) != jnp.shape(a_leaf):
      raise ValueError(
          f"gradtx.{fn}: a must have the leaf shapes of x, got {jnp.shape(a_leaf)} for x's "
          f"{jnp.shape(x_leaf)} at {jax.tree_util.keystr(path) or 'the root'}.")
  leaves = jax.tree.leaves(a)
  if leaves and not any(is_tracer(v) for v in leaves) and not any(
      np.any(np.asarray(v) != 0) for v in leaves):
    raise ValueError(f"gradtx.{fn}: a must be non-zero (it defines the direction), got all "
                     "zeros.")


def projection_vector(x: Any, a: Any) -> Any:
  r"""Projection onto the line spanned by the pytree `a`.

  .. math:: \operatorname{proj}_a x = \frac{\langle x, a \rangle}{\langle a, a \rangle}\, a

  Args:
    x: the pytree to project.
    a: the direction, a non-zero pytree of the structure and leaf shapes of `x`.

  Returns:
    The projection, a pytree of the structure of `a`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_vector({'w': jnp.array([1., 2.])}, {'w': jnp.array([0., 1.])})
    {'w': Array([0., 2.], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto affine sets).
  """
  _check_normal("projections.projection_vector", x, a)
  ratio = tree_math.vdot(x, a) / tree_math.vdot(a, a)
  return tree_math.scale(ratio, a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
  r"""Projection onto the hyperplane :math:`\{y : \langle a, y \rangle = b\}`.

  .. math::
    \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad
    \langle a, y \rangle = b
    \qquad\Longrightarrow\qquad
    y = x + \frac{b - \langle x, a \rangle}{\langle a, a \rangle}\, a

  Args:
    x: the pytree to project.
    a: the normal, a non-zero pytree of the structure and leaf shapes of `x`.
    b: the offset, a scalar.

  Returns:
    The projection, a pytree of the structure of `x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> x, a = {'w': jnp.array([1., 2.])}, {'w': jnp.array([0., 1.])}
    >>> gradtx.projections.projection_hyperplane(x, a, 0.5)
    {'w': Array([1. , 0.5], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto affine sets).
  """
  fn = "projections.projection_hyperplane"
  _check_normal(fn, x, a)
  check_scalar(fn, "b", b)
  step = (b - tree_math.vdot(x, a)) / tree_math.vdot(a, a)
  return tree_math.add_scale(x, step, a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
  r"""Projection onto the halfspace :math:`\{y : \langle a, y \rangle \le b\}`.

  Points inside stay; points outside go to the boundary hyperplane.

  .. math::
    \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad
    \langle a, y \rangle \le b
    \qquad\Longrightarrow\qquad
    y = x + \min\Big(\frac{b - \langle x, a \rangle}{\langle a, a \rangle}, 0\Big)\, a

  Args:
    x: the pytree to project.
    a: the normal, a non-zero pytree of the structure and leaf shapes of `x`.
    b: the offset, a scalar.

  Returns:
    The projection, a pytree of the structure of `x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> x, a = {'w': jnp.array([1., 2.])}, {'w': jnp.array([0., 1.])}
    >>> gradtx.projections.projection_halfspace(x, a, 0.5)
    {'w': Array([1. , 0.5], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto halfspaces).
  """
  fn = "projections.projection_halfspace"
  _check_normal(fn, x, a)
  check_scalar(fn, "b", b)
  step = (b - tree_math.vdot(x, a)) / tree_math.vdot(a, a)
  step = jnp.clip(step, max=0)
  return tree_math.add_scale(x, step, a)
