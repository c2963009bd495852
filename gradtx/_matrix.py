"""Private: which axes of a leaf form a matrix (shared by muon and galore, later Shampoo/SOAP).

optax keeps two copies of the same spec, `MuonDimensionNumbers` and `GaLoreDimensionNumbers`
(fields `reduction_axis=0, output_axis=1`), each with its own reshape code. gradtx has one class,
defined (as public classes must be, in a family module) in `gradtx/contrib/muon.py` as
`MuonDimensionNumbers` and bound to `GaLoreDimensionNumbers` in `gradtx/contrib/__init__.py`;
this module holds the code they share: `is_spec`, `resolve_specs` turning a spec, a pytree of specs or a function of the params into one spec
(or `None`: not a matrix leaf) per leaf, and `matrix_view` reshaping a leaf to its
`(batch, reduction, output)` matrix view and back, with errors naming the leaf's path and shape.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax

from gradtx._trees import is_none


def is_spec(x: Any) -> bool:
  """A dimension-numbers spec: a NamedTuple with fields (reduction_axis, output_axis), i.e.
  gradtx's `MuonDimensionNumbers` (= `GaLoreDimensionNumbers`) or either of optax's classes
  (recognised by their fields, since gradtx never imports optax)."""
  return isinstance(x, tuple) and getattr(x, "_fields", None) == ("reduction_axis", "output_axis")


def is_spec_or_none(x: Any) -> bool:
  return x is None or is_spec(x)


def resolve_specs(fn: str, name: str, specs: Any, tree: Any,
                  for_leaf: Callable[[jax.Array, Any], Any]) -> Any:
  """One spec (or `None`: not a matrix leaf) per leaf of `tree`, in `tree`'s structure.

  `specs` may be `None` or a single spec (then `for_leaf(leaf, specs)` decides each leaf), a
  function of `tree` returning specs, or a pytree of specs and `None`s with `tree`'s structure
  or a prefix of it (a spec or `None` at a node covers its whole subtree). `None` leaves of
  `tree` (optax's `None` updates) get `None`.
  """
  if specs is None or is_spec(specs):
    return jax.tree.map(lambda x: None if x is None else for_leaf(x, specs), tree,
                        is_leaf=is_none)
  if callable(specs):
    specs = specs(tree)
  try:
    return jax.tree.map(
        lambda s, sub: jax.tree.map(lambda x: None if x is None else s, sub, is_leaf=is_none),
        specs, tree, is_leaf=is_spec_or_none)
  except ValueError as e:
    raise ValueError(
        f"gradtx.{fn}: {name} must be a dimension-numbers spec, a pytree of specs and None "
        f"with the params' structure (or a prefix of it), or a function returning one; got "
        f"{jax.tree.structure(specs, is_leaf=is_spec_or_none)} for params "
        f"{jax.tree.structure(tree, is_leaf=is_none)}.") from e


def _axes(fn: str, where: str, shape: tuple[int, ...], spec: Any, field: str) -> tuple[int, ...]:
  value = getattr(spec, field)
  axes = (value,) if isinstance(value, int) else tuple(value)
  ndim = len(shape)
  for ax in axes:
    if isinstance(ax, bool) or not isinstance(ax, int):
      raise TypeError(f"gradtx.{fn}: the {field} of the spec for leaf {where} of shape {shape} "
                      f"must be ints, got {value!r}.")
    if not -ndim <= ax < ndim:
      raise ValueError(f"gradtx.{fn}: the {field} {value!r} of the spec for leaf {where} is out "
                       f"of range for its shape {shape} ({ndim} axes).")
  if not axes:
    raise ValueError(f"gradtx.{fn}: the {field} of the spec for leaf {where} of shape {shape} "
                     "names no axis.")
  return tuple(ax % ndim for ax in axes)


class MatrixView(NamedTuple):
  """A leaf's matrix view: `to_matrix(x)` has `shape`; `from_matrix` inverts it."""

  to_matrix: Callable[[jax.Array], jax.Array]
  from_matrix: Callable[[jax.Array], jax.Array]
  shape: tuple[int, ...]  # (batch, reduction, output), or (reduction, output) without batch
  fan_in: int  # the product of the reduction axes' sizes
  fan_out: int  # the product of the output axes' sizes


def matrix_view(fn: str, path: str, shape: tuple[int, ...], spec: Any, *,
                batch: bool = True) -> MatrixView:
  """The matrix view of a leaf of `shape` at `path` (as `jax.tree_util.keystr` writes it).

  With `batch`, the axes that `spec` does not name are flattened into one leading batch axis
  (`(batch, reduction, output)`, as optax's Muon); without it every axis must be named
  (`(reduction, output)`, as optax's GaLore). Raises a ValueError naming the leaf and its shape
  when it has no such view: fewer than 2 axes, axes out of range, overlapping or missing.
  """
  shape = tuple(shape)
  where = path or "<root>"
  if len(shape) < 2:
    raise ValueError(
        f"gradtx.{fn}: leaf {where} of shape {shape} has no 2-D matrix view but was given the "
        f"matrix spec {spec!r}; give it None (not a matrix) in the dimension numbers.")
  red = _axes(fn, where, shape, spec, "reduction_axis")
  out = _axes(fn, where, shape, spec, "output_axis")
  if len(set(red)) != len(red) or len(set(out)) != len(out) or set(red) & set(out):
    raise ValueError(f"gradtx.{fn}: the reduction axes {red} and output axes {out} of the spec "
                     f"for leaf {where} of shape {shape} must be distinct.")
  rest = tuple(sorted(set(range(len(shape))) - set(red) - set(out)))
  if rest and not batch:
    raise ValueError(f"gradtx.{fn}: the spec {spec!r} for leaf {where} of shape {shape} leaves "
                     f"axes {rest} unnamed; {fn} needs every axis in reduction_axis or "
                     "output_axis.")
  perm = rest + red + out
  inv_perm = tuple(sorted(range(len(shape)), key=lambda i: perm[i]))
  sizes = lambda axes: tuple(shape[a] for a in axes)
  fan_in, fan_out = math.prod(sizes(red)), math.prod(sizes(out))
  flat = ((math.prod(sizes(rest)),) if batch else ()) + (fan_in, fan_out)
  unflat = sizes(perm)
  return MatrixView(
      to_matrix=lambda x: x.transpose(perm).reshape(flat),
      from_matrix=lambda x: x.reshape(unflat).transpose(inv_perm),
      shape=flat, fan_in=fan_in, fan_out=fan_out)


def map_with_specs(f: Callable[..., Any], specs: Any, *trees: Any) -> Any:
  """`f(path, spec, *leaves)` over the leaves of `trees[0]` (with `specs` in its structure, as
  `resolve_specs` returns it); `None` leaves of the first tree pass through as `None`."""

  def g(path, x, *rest):
    return None if x is None else f(jax.tree_util.keystr(path), *rest[-1:], x, *rest[:-1])

  return jax.tree_util.tree_map_with_path(g, trees[0], *trees[1:], specs, is_leaf=is_none)
