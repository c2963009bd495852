"""Sharded optimizer state: a `jax.sharding.Sharding` for every leaf of an optimizer's state.

Moments follow their parameter: the moment of a parameter sharded over the mesh is sharded like
it, and the moment of a replicated parameter is split along the data-parallel axis (ZeRO-1).
Scalars (counts, keys) stay replicated. Flax nnx's sharding metadata on the params
(`nnx.with_partitioning`, `nnx.Param(..., out_sharding=...)`) is honoured.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gradtx.tree.access import map_params

__all__ = ["state_sharding"]


def check_mesh_axis(fn: str, mesh: Any, axis: Any) -> int:
  """The number of devices along `axis` of `mesh`; a ValueError naming the axis and the mesh's
  axes when the mesh has no such axis."""
  names = getattr(mesh, "axis_names", None)
  if names is None:
    raise TypeError(f"gradtx.distributed.{fn}: mesh must be a jax.sharding.Mesh (e.g. "
                    f"jax.make_mesh((8,), ('data',))), got {type(mesh).__name__}.")
  if axis not in names:
    raise ValueError(f"gradtx.distributed.{fn}: the mesh has no axis {axis!r}; its axes are "
                     f"{tuple(names)}. Pass axis= one of them, or build the mesh with "
                     f"jax.make_mesh(..., axis_names=(..., {axis!r})).")
  return int(mesh.shape[axis])


def is_variable(x: Any) -> bool:
  """A flax nnx Variable (recognised without importing flax): it carries sharding metadata."""
  return type(x).__module__.startswith("flax.") and hasattr(x, "get_metadata")


def _names_from_variable(v: Any) -> tuple | None:
  meta = v.get_metadata()
  for key in ("out_sharding", "sharding_names", "sharding"):
    names = meta.get(key) if isinstance(meta, Mapping) else None
    if names is not None:
      return tuple(names)
  return None


def _to_mesh_spec(names: tuple, mesh: Any, rules: Mapping[str, Any] | None) -> P:
  """Sharding names -> a PartitionSpec over `mesh`: names that are mesh axes are kept, logical
  names go through `rules`, the others (and None) leave their dimension unsharded."""
  def one(name):
    if name is None:
      return None
    if isinstance(name, (tuple, list)):
      kept = tuple(a for a in (one(x) for x in name) if a is not None)
      return kept if kept else None
    if rules is not None and name in rules:
      name = rules[name]
      if name is None or isinstance(name, (tuple, list)):
        return one(name)
    return name if name in mesh.axis_names else None
  return P(*(one(n) for n in names))


def param_spec(leaf: Any, mesh: Any, rules: Mapping[str, Any] | None = None) -> P:
  """The PartitionSpec of one parameter: its nnx metadata, else its NamedSharding, else P()."""
  if is_variable(leaf):
    names = _names_from_variable(leaf)
    if names is not None:
      return _to_mesh_spec(names, mesh, rules)
    leaf = leaf.get_value() if hasattr(leaf, "get_value") else leaf[...]
  sharding = getattr(leaf, "sharding", None)
  if isinstance(sharding, NamedSharding):
    return _to_mesh_spec(tuple(sharding.spec), mesh, rules)
  return P()


def _uses_mesh(spec: P) -> bool:
  return any(s is not None for s in spec)


def split_spec(shape: tuple, n: int, axis: str) -> P:
  """Split along `axis` on the largest dimension that `n` divides; P() if none does (a Sharding
  cannot pad: `zero` flattens and pads such leaves instead)."""
  if math.prod(shape) < n:
    return P()
  dims = [d for d in range(len(shape)) if shape[d] % n == 0 and shape[d] > 0]
  if not dims:
    return P()
  d = max(dims, key=lambda i: (shape[i], -i))
  return P(*(axis if i == d else None for i in range(len(shape))))


class _Mark:
  """A state leaf with the index of the parameter it is a moment of (None: not a moment)."""

  def __init__(self, index, leaf):
    self.index, self.leaf = index, leaf


def state_sharding(tx: Any, params: Any, mesh: Any, axis: str, *,
                   rules: Mapping[str, Any] | None = None) -> Any:
  """A sharding for every leaf of `tx.init(params)`: moments follow their param (ZeRO-1).

  The rule, leaf by leaf of the state:

  .. math::

    \\mathrm{sharding}(s) = \\begin{cases}
      \\mathrm{sharding}(p) & s \\text{ a moment of } p,\\ p \\text{ sharded over the mesh} \\\\
      \\text{split along axis} & s \\text{ otherwise replicated},\\ |s| \\ge n \\\\
      \\text{replicated} & \\text{scalars and leaves with fewer than } n \\text{ elements}
    \\end{cases}

  where :math:`n` is the number of devices along `axis`. A leaf is split on its largest
  dimension that :math:`n` divides; a leaf with no such dimension stays replicated, because a
  `Sharding` cannot pad (`gradtx.distributed.zero` flattens and pads those). A parameter's
  sharding comes from flax nnx's metadata (`nnx.with_partitioning(init, ('data', None))`,
  `out_sharding=`), else from its array's `NamedSharding`; sharding names that are not mesh axes
  go through `rules` (logical name -> mesh axis) or leave their dimension unsharded. Moments are
  found as optax's `tree_map_params` finds them (`tx.init` on a placeholder); nothing is
  computed (`jax.eval_shape`).

  Args:
    tx: the plain optimizer (a GradientTransformation).
    params: the parameters: arrays, `jax.ShapeDtypeStruct`s, or an nnx state of Variables.
    mesh: a `jax.sharding.Mesh` (explicit or auto axis types).
    axis: the mesh axis to split otherwise replicated state along (the data-parallel axis).
    rules: optional mapping from logical sharding names to mesh axes.

  Returns:
    A pytree with the structure of `tx.init(params)` and a `NamedSharding` at every leaf, for
    `jax.jit(tx.init, out_shardings=...)` or `jax.device_put`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> mesh = jax.make_mesh((1,), ('data',))
    >>> sh = gradtx.distributed.state_sharding(gradtx.adam(1e-3), {'w': jnp.zeros(4)}, mesh, 'data')
    >>> sh[0].mu['w'].spec
    P('data',)

  References:
    Rajbhandari, Rasley, Ruwase and He, "ZeRO: Memory Optimizations Toward Training Trillion
    Parameter Models", SC 2020, https://arxiv.org/abs/1910.02054.
  """
  n = check_mesh_axis("state_sharding", mesh, axis)
  if not hasattr(tx, "init"):
    raise TypeError("gradtx.distributed.state_sharding: tx must be a GradientTransformation, got "
                    f"{type(tx).__name__}.")
  variables = jax.tree.leaves(params, is_leaf=is_variable)
  specs = [param_spec(v, mesh, rules) for v in variables]
  shapes = jax.eval_shape(tx.init, params)
  index_tree = jax.tree.unflatten(jax.tree.structure(params), range(len(variables)))
  try:
    marked = map_params(tx, lambda leaf, i: _Mark(i, leaf), shapes, index_tree,
                        transform_non_params=lambda leaf: _Mark(None, leaf))
  except Exception:  # noqa: BLE001 - an init that needs real params: no moments recognised.
    marked = jax.tree.map(lambda leaf: _Mark(None, leaf), shapes)

  def sharding(mark: _Mark) -> NamedSharding:
    shape = tuple(mark.leaf.shape)
    if mark.index is not None:
      spec, pshape = specs[mark.index], tuple(jax.tree.leaves(variables[mark.index])[0].shape)
      if _uses_mesh(spec) and shape == pshape:
        return NamedSharding(mesh, spec)
    return NamedSharding(mesh, split_spec(shape, n, axis))

  return jax.tree.map(sharding, marked, is_leaf=lambda x: isinstance(x, _Mark))
