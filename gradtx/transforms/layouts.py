"""Wrappers that change the layout of the arrays a transformation sees: `flatten`, `group_leaves`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks, _eager
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs

__all__ = [
    "flatten",
    "group_leaves",
]


def _ravel(tree: Any) -> jax.Array:
  """All leaves of `tree` (`None` leaves are absent) raveled and concatenated into one vector,
  in their common dtype."""
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros([0], jnp.float32)
  return jnp.concatenate([jnp.reshape(x, [-1]) for x in leaves])


def _unravel(like: Any, flat: jax.Array) -> Any:
  """Splits `flat` back into the leaves of `like`, each with its shape and dtype."""
  leaves, treedef = jax.tree.flatten(like)
  offsets = np.cumsum([np.size(x) for x in leaves])[:-1].tolist()
  pieces = jnp.split(flat, offsets) if leaves else []
  return jax.tree.unflatten(treedef, [
      jnp.reshape(p, jnp.shape(x)).astype(jnp.asarray(x).dtype) for p, x in zip(pieces, leaves)])


def flatten(inner: GradientTransformation) -> GradientTransformationExtraArgs:
  r"""Applies `inner` to one vector holding every parameter, instead of leaf by leaf.

  For a model with many small arrays this replaces one small kernel per leaf and per operation
  by one large one, at the cost of a concatenation and a split per step (and the memory of one
  flat copy). The inner state holds flat vectors. Element-wise transformations give the same
  numbers either way; ones that look at a whole leaf (block clipping, per-leaf norms) see one
  leaf.

  .. math:: u = \mathrm{unravel}(\mathrm{inner}(\mathrm{ravel}(g), \mathrm{ravel}(\theta)))

  Args:
    inner: the transformation to apply to the flat vector (gradtx or optax).

  Returns:
    A `GradientTransformationExtraArgs` whose state is `inner`'s state for a 1-D params vector.

  Differences from optax: each update leaf is cast back to its incoming dtype (optax returns the
  leaves in the concatenation's common dtype), and `updates` and `params` must have the same
  structure.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.flatten(gradtx.scale(2.0))
    >>> p = {'a': jnp.zeros(2), 'b': jnp.zeros(())}
    >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p))
    >>> u['a'].tolist(), u['b'].tolist()
    ([2.0, 2.0], 2.0)

  References:
    `optax.flatten` (optax 0.2.8).
  """
  return _relayout("flatten", inner, _ravel, _unravel)


def _relayout(fn: str, inner: GradientTransformation, pack: Any, unpack: Any
              ) -> GradientTransformationExtraArgs:
  """Runs `inner` on `pack(tree)` and returns `unpack(updates, inner's updates)`."""
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: inner must be a GradientTransformation with init and update, got "
        f"{type(inner).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    return inner.init(pack(params))

  def update_fn(updates, state, params=None, **extra_args):
    if not pass_extra_args:
      extra_args = {}
    packed_params = None
    if params is not None:
      _checks.check_same_structure(fn, "updates", updates, "params", params)
      packed_params = pack(params)
    packed, state = inner.update(pack(updates), state, packed_params, **extra_args)
    return unpack(updates, packed), state

  if _eager.is_traceable(inner.update):
    _eager.mark_traceable(update_fn)
  return GradientTransformationExtraArgs(init_fn, update_fn)


# Leaves of at least this many elements keep a buffer of their own (concatenating them would only
# copy them); smaller ones are packed, at most `_GROUP_LEAVES` per buffer: XLA:CPU compiles the
# split of one buffer into n outputs in time growing like n^2 (40 s for 2000 leaves in one buffer,
# 5 s in buffers of 64).
_OWN_BUFFER_SIZE = 1 << 16
_GROUP_LEAVES = 64
# On an accelerator a kernel launch costs more than copying a large leaf into its buffer: pack
# every leaf (ResNet-50 adam on an H100: 1.9 ms grouped this way, 2.3 ms with the CPU rule,
# 4.1 ms for optax).
_OWN_BUFFER_SIZE_ACCELERATOR = 1 << 62


def _own_buffer_size() -> int:
  return _OWN_BUFFER_SIZE if jax.default_backend() == "cpu" else _OWN_BUFFER_SIZE_ACCELERATOR


def _plan(leaves: list[Any]) -> list[tuple[str, list[int]]]:
  """Which leaves (by index into `leaves`; `None` leaves skipped) go into which named buffer."""
  by_dtype: dict[str, list[int]] = {}
  for i, x in enumerate(leaves):
    if x is not None:
      by_dtype.setdefault(jnp.result_type(x).name, []).append(i)
  plan, own = [], _own_buffer_size()
  for dtype, indices in by_dtype.items():
    small = [i for i in indices if np.size(leaves[i]) < own]
    groups = [[i] for i in indices if np.size(leaves[i]) >= own]
    groups += [small[k:k + _GROUP_LEAVES] for k in range(0, len(small), _GROUP_LEAVES)]
    plan += [(f"{dtype}_{n:05d}", g) for n, g in enumerate(groups)]
  return plan


def _group(tree: Any) -> dict[str, jax.Array]:
  """`tree`'s leaves raveled and concatenated into buffers of one dtype each (see `_plan`)."""
  leaves = jax.tree.leaves(tree, is_leaf=is_none)
  groups = {}
  for key, indices in _plan(leaves):
    parts = [jnp.reshape(jnp.asarray(leaves[i]), [-1]) for i in indices]
    groups[key] = parts[0] if len(parts) == 1 else jax.lax.concatenate(parts, 0)
  # The barrier keeps XLA from rewriting slice(elementwise(concatenate(...))) back into per-leaf
  # work, which would undo the grouping.
  return jax.lax.optimization_barrier(groups)


def _ungroup(like: Any, groups: dict[str, jax.Array]) -> Any:
  """Splits the buffers back into the leaves of `like` (same shapes and dtypes)."""
  leaves, treedef = jax.tree.flatten(like, is_leaf=is_none)
  out: list[Any] = [None] * len(leaves)
  for key, indices in _plan(leaves):
    flat, start = groups[key], 0
    for i in indices:
      x = leaves[i]
      size = int(np.size(x))
      piece = flat if len(indices) == 1 else jax.lax.slice(flat, (start,), (start + size,))
      out[i] = jnp.reshape(piece, jnp.shape(x)).astype(jnp.result_type(x))
      start += size
  return jax.tree.unflatten(treedef, out)


def group_leaves(inner: GradientTransformation) -> GradientTransformationExtraArgs:
  r"""Applies `inner` to one contiguous vector per dtype instead of leaf by leaf.

  For models with many small arrays (thousands of biases and norm scales) the per-leaf cost
  dominates an optimizer step: every leaf is a separate kernel per operation, a separate state
  buffer, and separate compile work. `group_leaves` concatenates the leaves of each dtype into
  a few vectors, runs `inner` once on the dict `{name: vector}` and splits the result back, so
  the state holds a few buffers per moment instead of one per leaf. Leaves are packed 64 to a
  buffer (XLA compiles the split of one buffer into n leaves in time growing like n squared); on
  CPU, leaves of 65536 elements or more keep a buffer each (copying them costs more than their
  kernels), on accelerators every leaf is packed (there a kernel launch costs more: on an H100,
  ResNet-50's adam step takes 1.9 ms grouped against optax's 4.1 ms). Unlike `flatten` (optax's `flatten`) it
  never promotes: bfloat16 leaves stay in a bfloat16 group next to a float32 group.

  .. math:: u = \mathrm{ungroup}(\mathrm{inner}(\mathrm{group}(g), \mathrm{group}(\theta)))

  Element-wise transformations (sgd, momentum, the Adam and RMSprop families, sign methods,
  weight decay) and global ones (`clip_by_global_norm`) give the same numbers grouped or not;
  transformations that look at one leaf at a time (`clip_by_block_rms`, trust ratios,
  factored moments, per-leaf masks) see one leaf per dtype, so do not group them. Updates must
  have the dtypes of the params the state was built for. The grouping costs one concatenation
  and one split per step; it pays off with many small leaves and costs a little with few large
  ones (see benchmarks/RESULTS.md).

  Args:
    inner: the transformation to apply to the grouped vectors (gradtx or optax).

  Returns:
    A `GradientTransformationExtraArgs` whose state is `inner`'s state for the dict of vectors.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.group_leaves(gradtx.adam(0.1))
    >>> p = {'b': jnp.zeros(2), 'w': jnp.zeros((2, 2)), 'h': jnp.zeros(1, jnp.bfloat16)}
    >>> u, _ = tx.update(p, tx.init(p), p)
    >>> sorted(tx.init(p)[0].mu), u['w'].shape, u['h'].dtype
    (['bfloat16_00000', 'float32_00000'], (2, 2), dtype(bfloat16))

  References:
    `jax.flatten_util.ravel_pytree`, per dtype; as `optax.flatten` (optax 0.2.8) for one dtype.
  """
  # The barrier keeps XLA from looking through the split (see `_group`).
  return _relayout("group_leaves", inner, _group,
                   lambda like, grouped: _ungroup(like, jax.lax.optimization_barrier(grouped)))
