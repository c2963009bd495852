"""Arithmetic and reductions over pytrees (optax's `tree.add`, `tree.vdot`, `tree.norm`, ...).

Each function follows optax 0.2.8's arithmetic order leaf for leaf (sums reduce left to right
from 0, in flattening order), so results are bit-identical to optax's. Trees of different
structures raise a `ValueError` naming the argument and showing both structures.
"""

from __future__ import annotations

import builtins
import functools
import operator
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from gradtx._checks import check_bool
from gradtx._trees import is_none

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "clip",
    "conj",
    "div",
    "max",
    "min",
    "mul",
    "norm",
    "real",
    "scale",
    "size",
    "sub",
    "sum",
    "vdot",
    "where",
]


def _map(fn: str, names: Sequence[str], f: Callable[..., Any], *trees: Any,
         is_leaf: Callable[[Any], bool] | None = None) -> Any:
  """`jax.tree.map(f, *trees)`; a structure mismatch raises a ValueError naming the argument.

  The structures are compared only when the map fails, so a successful call costs nothing more.
  """
  try:
    return jax.tree.map(f, *trees, is_leaf=is_leaf)
  except ValueError as e:
    first = jax.tree.structure(trees[0], is_leaf=is_leaf)
    for name, tree in zip(names[1:], trees[1:]):
      other = jax.tree.structure(tree, is_leaf=is_leaf)
      if other != first:
        raise ValueError(
            f"gradtx.tree.{fn}: the structure of {name} does not match {names[0]}.\n"
            f"  {names[0]}: {first}\n  {name}: {other}") from e
    raise


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
  """Leafwise sum of two or more pytrees: `tree_x + tree_y + ...`.

  Args:
    tree_x: first pytree.
    tree_y: second pytree, of the same structure.
    *other_trees: more pytrees of the same structure to add.

  Returns:
    The sum, with the structure of `tree_x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.add({'a': jnp.ones(2)}, {'a': jnp.ones(2)}, {'a': jnp.ones(2)})
    {'a': Array([3., 3.], dtype=float32)}

  References:
    `optax.tree_utils.tree_add` (optax 0.2.8).
  """
  trees = (tree_x, tree_y, *other_trees)
  names = ("tree_x", "tree_y", *(f"other_trees[{i}]" for i in range(len(other_trees))))
  # Python's sum, as optax: 0 + x + y + ... (so -0.0 + -0.0 gives +0.0 as there).
  return _map("add", names, lambda *leaves: builtins.sum(leaves), *trees)


def sub(tree_x: Any, tree_y: Any) -> Any:
  """Leafwise difference of two pytrees: `tree_x - tree_y`.

  Args:
    tree_x: first pytree.
    tree_y: second pytree, of the same structure.

  Returns:
    The difference, with the structure of `tree_x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.sub({'a': jnp.ones(2)}, {'a': jnp.ones(2)})
    {'a': Array([0., 0.], dtype=float32)}

  References:
    `optax.tree_utils.tree_sub` (optax 0.2.8).
  """
  return _map("sub", ("tree_x", "tree_y"), operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
  """Leafwise product of two pytrees: `tree_x * tree_y`.

  Args:
    tree_x: first pytree.
    tree_y: second pytree, of the same structure.

  Returns:
    The product, with the structure of `tree_x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.mul({'a': jnp.array([2., 2.])}, {'a': jnp.array([3., 3.])})
    {'a': Array([6., 6.], dtype=float32)}

  References:
    `optax.tree_utils.tree_mul` (optax 0.2.8).
  """
  return _map("mul", ("tree_x", "tree_y"), operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
  """Leafwise quotient of two pytrees: `tree_x / tree_y`.

  Args:
    tree_x: the numerator pytree.
    tree_y: the denominator pytree, of the same structure.

  Returns:
    The quotient, with the structure of `tree_x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.div({'a': jnp.array([3., 3.])}, {'a': jnp.array([2., 2.])})
    {'a': Array([1.5, 1.5], dtype=float32)}

  References:
    `optax.tree_utils.tree_div` (optax 0.2.8).
  """
  return _map("div", ("tree_x", "tree_y"), operator.truediv, tree_x, tree_y)


def scale(scalar: Any, tree: Any) -> Any:
  """Multiplies every leaf by a scalar: `scalar * tree`.

  Args:
    scalar: a scalar (a number or a scalar array).
    tree: pytree.

  Returns:
    The scaled pytree, with the structure of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.scale(0.5, {'a': jnp.ones(2)})
    {'a': Array([0.5, 0.5], dtype=float32)}

  References:
    `optax.tree_utils.tree_scale` (optax 0.2.8).
  """
  return jax.tree.map(lambda x: scalar * x, tree)


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
  """Adds a scaled tree: `tree_x + scalar * tree_y`; `None` leaves of `tree_x` stay `None`.

  Args:
    tree_x: pytree (may hold `None` leaves).
    scalar: a scalar (a number or a scalar array).
    tree_y: pytree of the same structure.

  Returns:
    `tree_x + scalar * tree_y`, with the structure of `tree_x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.add_scale({'a': jnp.ones(2)}, 0.5, {'a': jnp.ones(2)})
    {'a': Array([1.5, 1.5], dtype=float32)}

  References:
    `optax.tree_utils.tree_add_scale` (optax 0.2.8).
  """
  scalar = jnp.asarray(scalar)
  return _map("add_scale", ("tree_x", "tree_y"),
              lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y, is_leaf=is_none)


def _vdot(a: Any, b: Any) -> jax.Array:
  # optax 0.2.8 compares version strings and so takes its `jnp.vdot` branch on jax >= 0.10;
  # the same call here keeps the contraction (and its rounding) identical.
  return jnp.vdot(jnp.asarray(a), jnp.asarray(b), precision=jax.lax.Precision.HIGHEST)


def vdot(tree_x: Any, tree_y: Any) -> Any:
  r"""Inner product of two pytrees, :math:`\sum_i \langle \bar x_i, y_i \rangle` (conjugating `tree_x`).

  Each leaf's product runs at `Precision.HIGHEST`; the leaf results add left to right from 0.

  Args:
    tree_x: first pytree (conjugated).
    tree_y: second pytree, of the same structure.

  Returns:
    A scalar array (the Python int 0 for empty trees).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.vdot({'a': jnp.array([1., 2.])}, {'a': jnp.array([3., 4.])})
    Array(11., dtype=float32)

  References:
    `optax.tree_utils.tree_vdot` (optax 0.2.8).
  """
  vdots = _map("vdot", ("tree_x", "tree_y"), _vdot, tree_x, tree_y)
  return jax.tree.reduce(operator.add, vdots, initializer=0)


def sum(tree: Any, associative_reduction: bool = False) -> Any:  # noqa: A001 (optax's name)
  """Sum of all elements of a pytree (each leaf's `jnp.sum`, added left to right from 0).

  Args:
    tree: pytree.
    associative_reduction: add the leaf sums with `jax.tree.reduce_associative` (a balanced
      tree of additions: faster to compile for large trees, rounded differently).

  Returns:
    A scalar (the Python int 0 for an empty tree, as optax).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.sum({'a': jnp.ones(2), 'b': jnp.ones(3)})
    Array(5., dtype=float32)

  References:
    `optax.tree_utils.tree_sum` (optax 0.2.8).
  """
  check_bool("tree.sum", "associative_reduction", associative_reduction)
  sums = jax.tree.map(jnp.sum, tree)
  if associative_reduction:
    return jax.tree.reduce_associative(operator.add, sums, identity=0)
  return jax.tree.reduce(operator.add, sums, initializer=0)


def _leaf_reduce(reduce_leaf: Callable[[Any], Any]) -> Callable[[Any], Any]:
  """`reduce_leaf`, or None (an empty subtree, skipped by the reduction) for a zero-size leaf."""
  return lambda x: None if jnp.size(x) == 0 else reduce_leaf(x)


def max(tree: Any) -> Any:  # noqa: A001 (optax's name)
  """Largest element of a pytree (`-inf` for an empty tree; zero-size leaves are skipped).

  Args:
    tree: pytree.

  Returns:
    A scalar.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.max({'a': jnp.array([1., 4.]), 'b': jnp.array(2.)})
    Array(4., dtype=float32)

  References:
    `optax.tree_utils.tree_max` (optax 0.2.8).
  """
  maxes = jax.tree.map(_leaf_reduce(jnp.max), tree)
  return jax.tree.reduce(jnp.maximum, maxes, initializer=-float("inf"))


def min(tree: Any) -> Any:  # noqa: A001 (optax's name)
  """Smallest element of a pytree (`inf` for an empty tree; zero-size leaves are skipped).

  Args:
    tree: pytree.

  Returns:
    A scalar.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.min({'a': jnp.array([1., 4.]), 'b': jnp.array(2.)})
    Array(1., dtype=float32)

  References:
    `optax.tree_utils.tree_min` (optax 0.2.8).
  """
  mins = jax.tree.map(_leaf_reduce(jnp.min), tree)
  return jax.tree.reduce(jnp.minimum, mins, initializer=float("inf"))


def size(tree: Any) -> int:
  """Total number of elements of a pytree (a Python int).

  Args:
    tree: pytree.

  Returns:
    The number of elements, a Python int.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.size({'a': jnp.ones((2, 3)), 'b': jnp.ones(4)})
    10

  References:
    `optax.tree_utils.tree_size` (optax 0.2.8).
  """
  return builtins.sum(jnp.size(leaf) for leaf in jax.tree.leaves(tree))


def conj(tree: Any) -> Any:
  """Complex conjugate of every leaf (real leaves are unchanged).

  Args:
    tree: pytree.

  Returns:
    The conjugated pytree, same structure and dtypes.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.conj({'a': jnp.array([1 + 2j])})
    {'a': Array([1.-2.j], dtype=complex64)}

  References:
    `optax.tree_utils.tree_conj` (optax 0.2.8).
  """
  return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
  """Real part of every leaf.

  Args:
    tree: pytree.

  Returns:
    The pytree of real parts (real dtypes), same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.real({'a': jnp.array([1 + 2j])})
    {'a': Array([1.], dtype=float32)}

  References:
    `optax.tree_utils.tree_real` (optax 0.2.8).
  """
  return jax.tree.map(jnp.real, tree)


def _square(x: Any) -> Any:
  """`|x|^2` as optax's norm computes it: `re(x)^2 + im(x)^2` (also for real `x`)."""
  return jnp.square(x.real) + jnp.square(x.imag)


_ORDS = "None, 1, 2, inf (or 'inf', 'infinity')"


def norm(tree: Any, ord: int | str | float | None = None,  # noqa: A002 (optax's name)
         squared: bool = False) -> jax.Array:
  r"""Vector norm of a whole pytree, as if its leaves were flattened into one vector.

  .. math:: \|x\|_2 = \sqrt{\textstyle\sum_i |x_i|^2},\quad \|x\|_1 = \sum_i |x_i|,\quad
     \|x\|_\infty = \max_i |x_i|

  Args:
    tree: pytree (real or complex leaves).
    ord: the order: `None` or 2 (Euclidean), 1, or `inf` (also `'inf'`, `'infinity'`).
    squared: return the norm squared.

  Returns:
    A scalar array.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.norm({'a': jnp.array([3.]), 'b': jnp.array([-4.])})
    Array(5., dtype=float32)

  References:
    `optax.tree_utils.tree_norm` (optax 0.2.8).
  """
  check_bool("tree.norm", "squared", squared)
  if ord is None or (not isinstance(ord, str) and ord == 2):
    sqnorm = sum(jax.tree.map(_square, tree))
    return jnp.array(sqnorm if squared else jnp.sqrt(sqnorm))
  if not isinstance(ord, str) and ord == 1:
    out = sum(jax.tree.map(jnp.abs, tree))
  elif ord in ("inf", "infinity") or (not isinstance(ord, str) and ord == jnp.inf):
    out = max(jax.tree.map(jnp.abs, tree))
  else:
    raise ValueError(f"gradtx.tree.norm: ord must be one of {_ORDS}, got {ord!r}.")
  return jnp.array(_square(out) if squared else out)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
  """Clips every element to `[min_value, max_value]` (`None`: no bound on that side).

  Args:
    tree: pytree.
    min_value: lower bound (a scalar) or `None`.
    max_value: upper bound (a scalar) or `None`.

  Returns:
    The clipped pytree, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.clip({'a': jnp.array([-2., 0.5, 2.])}, -1.0, 1.0)
    {'a': Array([-1. ,  0.5,  1. ], dtype=float32)}

  References:
    `optax.tree_utils.tree_clip` (optax 0.2.8).
  """
  return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


def where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
  """Leafwise `jnp.where(condition, x, y)`: `tree_x` where `condition` holds, else `tree_y`.

  Args:
    condition: a boolean (scalar or broadcastable to every leaf).
    tree_x: pytree taken where `condition` holds.
    tree_y: pytree of the same structure, taken elsewhere.

  Returns:
    A pytree with the structure of `tree_x`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.tree.where(jnp.array(False), {'a': jnp.ones(1)}, {'a': jnp.zeros(1)})
    {'a': Array([0.], dtype=float32)}

  References:
    `optax.tree_utils.tree_where` (optax 0.2.8).
  """
  return _map("where", ("tree_x", "tree_y"), lambda x, y: jnp.where(condition, x, y),
              tree_x, tree_y)


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
             equal_nan: bool = False) -> Any:
  """Whether two pytrees are elementwise equal within a tolerance (`jnp.allclose` per leaf).

  Args:
    a: first pytree.
    b: second pytree, of the same structure.
    rtol: relative tolerance.
    atol: absolute tolerance.
    equal_nan: count NaNs in the same places as equal.

  Returns:
    A boolean scalar array (the Python `True` for empty trees, as optax).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> bool(gradtx.tree.allclose({'a': jnp.ones(2)}, {'a': jnp.ones(2) + 1e-7}))
    True

  References:
    `optax.tree_utils.tree_allclose` (optax 0.2.8).
  """
  close = _map("allclose", ("a", "b"),
               lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b)
  return functools.reduce(operator.and_, jax.tree.leaves(close), True)
