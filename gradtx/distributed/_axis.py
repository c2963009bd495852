"""Private helpers shared by `gradtx.distributed`: axis-name and mesh checks, the per-worker
finiteness test, the average over the workers that leaves non-finite ones out, and the periodic
sync `cond`.

Every algorithm here runs unchanged under `jax.vmap(..., axis_name=)` (workers simulated on one
device) and under `jax.shard_map` (one worker per device): it only uses collectives over the
named axis (`psum`, `pmax`, `all_gather`, `axis_size`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks
from gradtx._trees import is_none

BIND_HINT = ("bind it with jax.vmap(..., axis_name=...) (workers simulated on one device) or "
             "jax.shard_map(..., mesh=mesh, ...) over a mesh with that axis (one worker per device)")


def check_axis_name(fn: str, axis_name: Any, optional: bool = False) -> None:
  """Validates the kind of an `axis_name` argument when the transformation is built: a string or
  a tuple of strings (several mesh axes acting as one replica axis)."""
  if axis_name is None and optional:
    return
  names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
  if not names or not all(isinstance(n, str) and n for n in names):
    raise TypeError(
        f"gradtx.{fn}: axis_name must be a non-empty string (or a tuple of them), "
        f"got {axis_name!r}.")


def check_axis_bound(fn: str, axis_name: Any) -> None:
  """Raises a ValueError naming `axis_name` unless it is bound here (by `vmap` or `shard_map`).

  Runs at trace time; `lax.axis_size` raises a NameError for an unbound name.
  """
  names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
  for name in names:
    try:
      lax.axis_size(name)
    except NameError as e:
      raise ValueError(
          f"gradtx.{fn}: the axis name {name!r} is not bound here; {BIND_HINT}, and "
          f"call init and update inside it.") from e


def check_mesh_axis(fn: str, mesh: Any, axis: Any) -> None:
  """Raises a ValueError naming `axis` and the mesh's axes unless `mesh` has that axis."""
  names = axis if isinstance(axis, tuple) else (axis,)
  missing = [n for n in names if n not in tuple(mesh.axis_names)]
  if missing:
    raise ValueError(
        f"gradtx.{fn}: the mesh has no axis {missing[0]!r}; its axes are "
        f"{tuple(mesh.axis_names)}.")


def num_workers(axis_name: Any) -> int:
  """The number of workers along `axis_name` (a Python int at trace time)."""
  return lax.axis_size(axis_name)


def all_finite(tree: Any) -> jax.Array:
  """Whether every entry of every leaf of `tree` is finite (a bool scalar, this worker's)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
  """`on_true` where the scalar `pred` holds, else `on_false`, leaf by leaf (None passes)."""
  return jax.tree.map(lambda a, b: None if a is None else jnp.where(pred, a, b), on_true,
                      on_false, is_leaf=is_none)


def masked_sum(tree: Any, axis_name: Any, ok: jax.Array) -> Any:
  """The sum over the workers whose `ok` holds (the others add zero)."""
  return jax.tree.map(
      lambda x: None if x is None else lax.psum(jnp.where(ok, x, jnp.zeros_like(x)), axis_name),
      tree, is_leaf=is_none)


def masked_mean(tree: Any, axis_name: Any, ok: jax.Array) -> tuple[Any, jax.Array]:
  """The mean over the workers whose `ok` holds, and how many they are.

  A worker whose values are not finite is left out of the round's average (it neither poisons
  the others with NaN nor counts in the denominator). With no worker left the mean is zero.
  """
  count = lax.psum(ok.astype(jnp.int32), axis_name)
  total = masked_sum(tree, axis_name, ok)

  def mean(s):
    if s is None:
      return None
    return (s / jnp.maximum(count, 1).astype(s.dtype)).astype(s.dtype)

  return jax.tree.map(mean, total, is_leaf=is_none), count


def uniform(pred: jax.Array, axis_name: Any) -> jax.Array:
  """`pred` made the same on every worker (true if it holds on any), so that a `lax.cond` on it
  stays a `cond` under `vmap(axis_name=)`: a reduction over the vmapped axis is unbatched."""
  return lax.pmax(jnp.asarray(pred, jnp.int32), axis_name) > 0


def sync_cond(pred: jax.Array, axis_name: Any, sync: Callable[..., Any],
              local: Callable[..., Any], *operands: Any) -> Any:
  """`sync(*operands)` on the steps where `pred` holds (on some worker), else `local(*operands)`.

  The predicate is first made uniform over the replica axis, so the collectives in `sync` run
  only on sync steps (one `lax.cond`, not a `select` of both branches) under `vmap(axis_name=)`
  and under `shard_map`. (`gradtx._periodic.cond` cannot hold collectives over the vmapped axis:
  its batching rule re-`vmap`s the branches without the axis name. Inside a further, outer
  `vmap` over hyperparameters the predicate is batched and the sync runs as a `select`: the
  same values, computed on every step.)
  """
  names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
  return lax.cond(uniform(pred, axis_name), lambda *a: varying(sync(*a), names),
                  lambda *a: varying(local(*a), names), *operands)


def names(axis_name: Any) -> tuple:
  return axis_name if isinstance(axis_name, tuple) else (axis_name,)


def varying(tree: Any, names: tuple) -> Any:
  """Marks every leaf as varying over `names` under `shard_map` (its results of a collective are
  invariant, a worker's own values varying, and a `cond`'s branches must agree); a no-op where
  the leaf already varies, and under `vmap`."""
  mesh = jax.sharding.get_abstract_mesh()
  manual = set(getattr(mesh, "manual_axes", ()) or ()) if mesh is not None else set()
  names = tuple(n for n in names if n in manual)  # under vmap: none (nothing to cast)

  def cast(x):
    if x is None or not names:
      return x
    mat = getattr(jax.typeof(x), "manual_axis_type", None)
    have = mat.varying if mat is not None else frozenset()
    missing = tuple(n for n in names if n not in have)
    return lax.pcast(x, missing, to="varying") if missing else x

  return jax.tree.map(cast, tree, is_leaf=is_none)


def tree_add(a: Any, b: Any) -> Any:
  return jax.tree.map(lambda x, y: None if x is None else x + y, a, b, is_leaf=is_none)


def tree_sub(a: Any, b: Any) -> Any:
  return jax.tree.map(lambda x, y: None if x is None else x - y, a, b, is_leaf=is_none)


def check_transformation(fn: str, name: str, tx: Any) -> None:
  """A GradientTransformation (gradtx's or optax's): something with `init` and `update`."""
  if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: {name} must be a GradientTransformation with init and "
        f"update, got {type(tx).__name__}. Hint: call the factory, e.g. gradtx.sgd(0.1).")


def local_step(fn: str, axis_name: Any, inner: Any, pass_extra_args: bool, updates: Any,
               inner_state: Any, params: Any, extra_args: dict) -> tuple[Any, Any, Any, jax.Array]:
  """A worker's own step of `inner`, shared by local SGD, DiLoCo and EASGD.

  Checks `params` and the axis, runs ``inner.update`` and leaves the worker's state and params
  where they were when its gradient is not finite. Returns ``(u, inner_state, local, ok)``:
  the inner update (zeros on a non-finite round), the new inner state, the worker's local
  params ``params + u`` and whether its gradient was finite.
  """
  if params is None:
    raise _checks.missing_params_error(fn)
  check_axis_bound(fn, axis_name)
  _checks.check_same_structure(fn, "params", params, "updates", updates)
  extra_args = extra_args if pass_extra_args else {}
  ok = all_finite(updates)
  u, new_inner_state = inner.update(updates, inner_state, params, **extra_args)
  u = select(ok, u, jax.tree.map(jnp.zeros_like, u))
  new_inner_state = select(ok, new_inner_state, inner_state)
  return u, new_inner_state, tree_add(params, u), ok

