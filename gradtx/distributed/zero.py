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
import jax.extend.core as jex_core
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
  # concatenate, not jnp.pad: XLA:CPU fuses a reshape + pad into the shard's arithmetic with a
  # select per element, and that loop contracts multiply-adds into FMAs differently from the
  # unsharded update's (1 ulp apart on some elements); with concatenate the bits are the same.
  return jnp.concatenate([flat, jnp.zeros((pad,), flat.dtype)]) if pad else flat


def _unpad(x: jax.Array, like: Any, m: int) -> jax.Array:
  if not m:
    return x
  return jnp.reshape(x[:math.prod(like.shape)], like.shape)


# Primitives that act elementwise (an output element depends on the same element of each
# non-scalar operand); anything else applied to a shard-shaped operand sees only one shard.
_ELEMENTWISE = frozenset("""
    abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp convert_element_type copy
    copy_p cos cosh digamma div eq erf erf_inv erfc exp exp2 expm1 floor ge gt igamma igammac imag
    integer_pow is_finite le lgamma log log1p logistic lt max min mul ne neg nextafter not or pow
    real reduce_precision rem round rsqrt select_n shift_left shift_right_arithmetic
    shift_right_logical sign sin sinh sqrt square stop_gradient sub tan tanh xor
    bitcast_convert_type population_count""".split())
# The flat shard sizes the check traces with: primes no optimizer's own constants would produce.
_PROBE = 1_000_003


def _jaxprs(eqn: Any):
  """The sub-jaxprs of a higher-order primitive (jit, custom_jvp, cond, while, scan, ...)."""
  for v in eqn.params.values():
    for x in (v if isinstance(v, (tuple, list)) else (v,)):
      if isinstance(x, jex_core.ClosedJaxpr):
        yield x.jaxpr
      elif isinstance(x, jex_core.Jaxpr):
        yield x


def _first_non_elementwise(jaxpr: Any, big: set) -> str | None:
  """The first primitive of `jaxpr` (recursing into sub-jaxprs) that is not elementwise in the
  shard-sized dimensions `big`, described, or None."""
  def is_big(v):
    shape = getattr(getattr(v, "aval", None), "shape", ())
    return any(d in big for d in shape)

  for eqn in jaxpr.eqns:
    subs = list(_jaxprs(eqn))
    if subs:
      for sub in subs:
        found = _first_non_elementwise(sub, big)
        if found:
          return found
      continue
    vs = list(eqn.invars) + list(eqn.outvars)
    if not any(is_big(v) for v in vs):
      continue
    name = eqn.primitive.name
    shapes = {tuple(v.aval.shape) for v in vs if is_big(v)}
    small_ok = all(is_big(v) or math.prod(getattr(v.aval, "shape", ())) == 1 for v in vs)
    if name in _ELEMENTWISE and len(shapes) == 1 and small_ok:
      continue
    if name in ("broadcast_in_dim", "reshape", "squeeze", "expand_dims") and len(shapes) == 1 \
        and small_ok:
      continue  # a scalar broadcast to the shard, or a no-op reshape
    return f"`{name}` to a whole parameter-sized array"
  return None


def _elementwise_problem(tx: GradientTransformation, params: Any, extra_args: dict) -> str | None:
  """Why `tx` does not act elementwise on each parameter (so a shard's update would differ from
  the matching part of the whole update), or None. Traces `tx.init` on the params' shapes and
  on flat probe shards, and `tx.update` on the probe shards."""
  leaves, treedef = jax.tree.flatten(params, is_leaf=is_none)
  sizes = [None if x is None else _PROBE + 2 * i for i, x in enumerate(leaves)]
  flat = treedef.unflatten([None if x is None else jax.ShapeDtypeStruct((m,), x.dtype)
                            for x, m in zip(leaves, sizes)])
  whole = treedef.unflatten([None if x is None else jax.ShapeDtypeStruct(x.shape, x.dtype)
                             for x in leaves])
  big = {m for m in sizes if m}
  shape_of = {m: tuple(x.shape) for x, m in zip(leaves, sizes) if m}
  try:
    s_flat = jax.eval_shape(tx.init, flat)
    s_whole = jax.eval_shape(tx.init, whole)
  except Exception:  # noqa: BLE001 (any failure to trace: init or update raises it later)
    return None  # init's own error is more telling; zero's init raises it
  if jax.tree.structure(s_flat) != jax.tree.structure(s_whole):
    return "its state's structure depends on the parameters' shapes (e.g. factored moments)"
  for a, b in zip(jax.tree.leaves(s_flat), jax.tree.leaves(s_whole)):
    sa, sb = tuple(getattr(a, "shape", ())), tuple(getattr(b, "shape", ()))
    if len(sa) == 1 and sa[0] in big:
      if sb != shape_of[sa[0]]:
        return f"it keeps a state leaf of shape {sb} for a parameter of shape {shape_of[sa[0]]}"
    elif any(d in big for d in sa) or sa != sb:
      return f"it keeps a state leaf of shape {sb} that is not elementwise in its parameter"
  trace = jax.make_jaxpr(lambda g, s, p, e: tx.update(g, s, p, **e))
  # At init the extra arguments are unknown: a loss `value=` (polyak_sgd, line searches) is the
  # usual one; an update that needs others is checked again at update with the real ones.
  for extra in ((extra_args,) if extra_args else ({}, {"value": jnp.zeros((), jnp.float32)})):
    try:
      jaxpr = trace(flat, s_flat, flat, extra)
      break
    except Exception:  # noqa: BLE001 (any failure to trace: init or update raises it later)
      jaxpr = None
  if jaxpr is None:
    return None
  found = _first_non_elementwise(jaxpr.jaxpr, big)
  return None if found is None else f"its update applies {found} (a reduction, product, " \
      "random draw or reshape that would see one shard)"


def _check_elementwise(tx: GradientTransformation, params: Any, extra_args: dict) -> None:
  problem = _elementwise_problem(tx, params, extra_args)
  if problem is not None:
    raise ValueError(
        "gradtx.distributed.zero: tx does not act elementwise on each parameter: "
        f"{problem}. zero gives each device one flat shard of every parameter, so such an "
        "optimizer (lamb, lars, fromage, novograd, adafactor, sm3, noisy_sgd, polyak_sgd, "
        "clipping by a norm, ...) would compute something else. Keep its state sharded with "
        "gradtx.distributed.state_sharding(tx, params, mesh, axis) instead (jax.jit(tx.init, "
        "out_shardings=...)).")


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
  Adafactor, SM3, polyak_sgd, gradient clipping by norm) or draw per-element noise (noisy_sgd)
  would see one shard: `init` (and `update`, with its extra arguments) traces `tx` on flat
  shards and raises for them; keep their state sharded with :func:`state_sharding` instead.
  Works under `jax.jit` in JAX's auto and explicit sharding modes.

  Args:
    tx: the optimizer to shard; it must act elementwise on each parameter.
    mesh: a `jax.sharding.Mesh` with an axis named `axis`.
    axis: the mesh axis (data-parallel axis) to split the state along.

  Returns:
    A GradientTransformation: `init(params)` takes replicated params,
    `update(grads, state, params)` replicated gradients, and returns replicated updates.

  Raises:
    ValueError: at `init`, when `tx` does not act elementwise on each parameter (a reduction,
      dot product, cumulative sum, random draw or reshape over a parameter in its update, or a
      state leaf whose shape is not its parameter's nor a scalar's).

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

  checked = set()

  def check(tree, extra_args):
    """Raise unless tx is elementwise on this tree (once per tree shapes and extra args)."""
    key = (jax.tree.structure(tree, is_leaf=is_none),
           tuple((x.shape, str(x.dtype)) for x in jax.tree.leaves(tree)),
           jax.tree.structure(extra_args),
           tuple((jnp.shape(x), str(jnp.result_type(x))) for x in jax.tree.leaves(extra_args)))
    if key not in checked:
      _check_elementwise(tx, tree, extra_args)
      checked.add(key)

  def init_fn(params):
    params = jax.tree.map(_value, params, is_leaf=is_variable)
    check(params, {})
    sizes = layout(params)
    specs = state_specs(params, sizes)
    flat = jax.tree.map(lambda x, m: _flatten_pad(x, m, n), params, sizes, is_leaf=is_none)
    in_specs = leaf_specs(sizes)
    return jax.shard_map(tx.init, mesh=mesh, in_specs=(in_specs,), out_specs=specs)(
        place(flat, in_specs))

  def update_fn(updates, state, params=None, **extra_args):
    if params is not None:
      params = jax.tree.map(_value, params, is_leaf=is_variable)
    check(updates, extra_args)
    sizes = layout(updates)
    specs = state_specs(updates, sizes)
    in_specs = leaf_specs(sizes)
    flat_g = jax.tree.map(lambda x, m: _flatten_pad(x, m, n), updates, sizes, is_leaf=is_none)
    flat_p = None if params is None else jax.tree.map(
        lambda x, m: _flatten_pad(x, m, n), params, sizes, is_leaf=is_none)

    def local(g, s, p):
      # The barrier keeps XLA from fusing the slicing of this device's shard (reshape,
      # dynamic-slice) into tx's arithmetic: LLVM contracts that fused loop's multiply-adds
      # into FMAs differently from the unsharded update's plain loop (1 ulp apart on XLA:CPU
      # with FMA; without FMA, --xla_cpu_max_isa=SSE4_2, the bits agree either way).
      g, s, p = jax.lax.optimization_barrier((g, s, p))
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
