"""ZeRO: an optimizer whose state is split over the devices of a mesh axis (stages 1 and 2).

Each parameter with at least as many elements as the axis has devices is flattened, zero-padded
to a multiple of the device count, and cut into equal contiguous shards; every device keeps the
optimizer state of its shard only, updates it from its shard of the gradient, and the updates are
all-gathered. Smaller parameters (scalars, tiny biases) keep a replicated state.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.distributed.sharding import check_mesh_axis, is_variable

__all__ = ["zero"]


def _value(x: Any) -> Any:
  """The array inside a flax nnx Variable (zero's state holds plain arrays)."""
  if is_variable(x):
    return x.get_value() if hasattr(x, "get_value") else x[...]
  return x


def _shard_size(leaf: Any, n: int) -> int:
  """Elements per device of a split leaf (ceil(size / n)), or 0 for a replicated one."""
  size = math.prod(leaf.shape)
  return -(-size // n) if size >= n else 0


def _flatten_pad(x: jax.Array, m: int, n: int) -> jax.Array:
  """(shape) -> (n * m,): flatten and zero-pad to n equal shards (at most n - 1 elements)."""
  if not m:
    return x
  flat = jnp.reshape(x, (-1,))
  pad = n * m - flat.shape[0]
  return jnp.pad(flat, (0, pad)) if pad else flat


def _unpad(x: jax.Array, like: Any, m: int) -> jax.Array:
  if not m:
    return x
  return jnp.reshape(x[:math.prod(like.shape)], like.shape)


def zero(tx: GradientTransformation, mesh: Any, axis: str) -> GradientTransformation:
  """ZeRO-1/2: `tx` with its state split evenly over the devices of `axis`.

  Each parameter :math:`p` with :math:`|p| \\ge n` elements (:math:`n` devices along `axis`) is
  flattened and zero-padded to :math:`n m` elements, :math:`m = \\lceil |p| / n \\rceil` (at most
  :math:`n - 1` padding elements, 28 bytes of float32 on 8 devices), and device :math:`i` owns
  elements :math:`[i m, (i + 1) m)`. A step, under `jax.shard_map` on `mesh`:

  .. math::

    g_i = \\mathrm{slice}_i(g) \\ (\\text{or reduce-scatter}), \\quad
    (u_i, s_i) = \\mathrm{tx.update}(g_i, s_i, p_i), \\quad
    u = \\mathrm{all\\_gather}(u_1, \\dots, u_n)

  so each device holds :math:`1/n` of the moments. State leaves that belong to a split parameter
  are stored flat and padded, `(n m,)`, sharded along `axis`; the other leaves (counts, keys,
  moments of parameters with fewer than :math:`n` elements) are replicated. The state keeps the
  structure and classes of `tx.init(params)`. Results equal the unsharded `tx` bit for bit when
  `tx` acts elementwise on each parameter (SGD, momentum, Adam, AdamW, RMSProp, Lion, ...);
  optimizers that reduce over a whole leaf or over all leaves (LAMB, LARS, Fromage, NovoGrad,
  Adafactor, SM3, polyak_sgd, gradient clipping by norm) would see one shard and are not
  supported. Works under `jax.jit` in JAX's auto and explicit sharding modes.

  Args:
    tx: the optimizer to shard; it must act elementwise on each parameter.
    mesh: a `jax.sharding.Mesh` with an axis named `axis`.
    axis: the mesh axis (data-parallel axis) to split the state along.

  Returns:
    A GradientTransformation: `init(params)` takes replicated params,
    `update(grads, state, params)` replicated gradients, and returns replicated updates.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.zero(gradtx.adam(0.1), jax.make_mesh((1,), ('data',)), 'data')
    >>> params = {'w': jnp.ones(3)}
    >>> updates, state = jax.jit(tx.update)(params, tx.init(params), params)
    >>> print(updates['w'].round(3))
    [-0.1 -0.1 -0.1]

  References:
    Rajbhandari, Rasley, Ruwase and He, "ZeRO: Memory Optimizations Toward Training Trillion
    Parameter Models", SC 2020, https://arxiv.org/abs/1910.02054.
  """
  if not (hasattr(tx, "init") and hasattr(tx, "update")):
    raise TypeError("gradtx.distributed.zero: tx must be a GradientTransformation, got "
                    f"{type(tx).__name__}.")
  n = check_mesh_axis("zero", mesh, axis)
  explicit = mesh.axis_types[mesh.axis_names.index(axis)] == AxisType.Explicit

  def layout(tree):
    """Per leaf: elements per device (0: replicated leaf); `None` updates stay None."""
    return jax.tree.map(lambda x: _shard_size(x, n), tree, is_leaf=is_none)

  def local_shapes(tree, sizes, extra):
    return jax.tree.map(
        lambda x, m: jax.ShapeDtypeStruct(x.shape if not m else (m + extra,), x.dtype),
        tree, sizes, is_leaf=is_none)

  def state_specs(abstract_params, sizes):
    """P(axis) for the state leaves of split params, P() for the others: a leaf belongs to a
    split param when its local shape follows the shard size (found by tracing init twice)."""
    a = jax.eval_shape(tx.init, local_shapes(abstract_params, sizes, 0))
    b = jax.eval_shape(tx.init, local_shapes(abstract_params, sizes, 1))
    shard_sizes = {m for m in jax.tree.leaves(sizes) if m}

    def spec(x, y):
      if x.shape == y.shape:
        return P()
      if len(x.shape) != 1 or x.shape[0] not in shard_sizes:
        raise ValueError(
            "gradtx.distributed.zero: tx keeps a state leaf of local shape "
            f"{x.shape} that is not elementwise in its parameter; zero supports optimizers "
            "that act elementwise on each parameter (sgd, adam, adamw, ...).")
      return P(axis)
    return jax.tree.map(spec, a, b)

  def place(tree, specs):
    """Explicit mode: move each leaf to its spec (a local slice for replicated values); auto
    mode lets shard_map do it."""
    if not explicit:
      return tree
    return jax.tree.map(lambda x, s: jax.reshard(x, NamedSharding(mesh, s)), tree, specs)

  def leaf_specs(sizes):
    return jax.tree.map(lambda m: P(axis) if m else P(), sizes)

  def init_fn(params):
    params = jax.tree.map(_value, params, is_leaf=is_variable)
    sizes = layout(params)
    specs = state_specs(params, sizes)
    flat = jax.tree.map(lambda x, m: _flatten_pad(x, m, n), params, sizes, is_leaf=is_none)
    in_specs = leaf_specs(sizes)
    return jax.shard_map(tx.init, mesh=mesh, in_specs=(in_specs,), out_specs=specs)(
        place(flat, in_specs))

  def update_fn(updates, state, params=None, **extra_args):
    if params is not None:
      params = jax.tree.map(_value, params, is_leaf=is_variable)
    sizes = layout(updates)
    specs = state_specs(updates, sizes)
    in_specs = leaf_specs(sizes)
    flat_g = jax.tree.map(lambda x, m: _flatten_pad(x, m, n), updates, sizes, is_leaf=is_none)
    flat_p = None if params is None else jax.tree.map(
        lambda x, m: _flatten_pad(x, m, n), params, sizes, is_leaf=is_none)

    def local(g, s, p):
      u, s = tx.update(g, s, p, **extra_args)
      # All-gather the split updates; the replicated ones are already whole everywhere.
      u = jax.tree.map(lambda x, m: jax.lax.all_gather(x, axis, tiled=True) if m else x,
                       u, sizes, is_leaf=is_none)
      return u, s

    p_specs = P() if params is None else in_specs
    out_u = jax.tree.map(lambda _: P(), sizes)
    # check_vma=False: all_gather's result is the same on every device, which JAX's public
    # all_gather does not record, so shard_map is told the gathered updates are replicated.
    u, new_state = jax.shard_map(
        local, mesh=mesh, in_specs=(in_specs, specs, p_specs), out_specs=(out_u, specs),
        check_vma=False)(
            place(flat_g, in_specs), state, None if params is None else place(flat_p, in_specs))
    u = jax.tree.map(lambda x, like, m: _unpad(x, like, m), u, updates, sizes, is_leaf=is_none)
    return u, new_state

  return GradientTransformation(init_fn, update_fn)
