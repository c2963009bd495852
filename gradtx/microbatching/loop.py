"""Microbatching: evaluate a function on a large batch one slice at a time, and combine.

`microbatch(fun, argnums, microbatch_size, accumulator)` splits the batch arguments into
`num_microbatches = batch_size // microbatch_size` microbatches, runs `fun` on each in a
`lax.fori_loop` with a static trip count (so peak memory is that of one microbatch, and the
result can be differentiated in reverse mode), and combines the outputs with the accumulator.
`micro_vmap` is `jax.vmap` built on it, and `micro_grad` per-example gradients on `micro_vmap`.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.microbatching.accumulators import (
    AccumulationType,
    canonicalize,
    check_accumulator,
)

__all__ = ["micro_grad", "micro_vmap", "microbatch", "reshape_batch_axis"]

# What `micro_grad`'s function returns beside the gradients: per-example values, metrics and aux
# (optax's namedtuple, also called `Aux`, with the same fields).
_Aux = collections.namedtuple("Aux", ["values", "metrics", "aux"])


# ----------------------------------------------------------------------------------------------
# Argument checks (all at construction, except those that need the call's arguments)
# ----------------------------------------------------------------------------------------------

def _is_static_int(x: Any) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_microbatch_size(fn: str, microbatch_size: Any) -> None:
  if microbatch_size is None:
    return
  if not _is_static_int(microbatch_size):
    raise TypeError(f"gradtx.{fn}: microbatch_size must be a Python int or None, got "
                    f"{type(microbatch_size).__name__} {microbatch_size!r}.")
  if microbatch_size < 1:
    raise ValueError(f"gradtx.{fn}: microbatch_size must be >= 1, got {microbatch_size}.")


def _int_tuple(fn: str, name: str, value: Any, *, allow_none: bool = False) -> tuple[Any, ...]:
  """An int, or a sequence of ints (and None where allowed), as a tuple."""
  items = (value,) if _is_static_int(value) else value
  if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
    raise TypeError(f"gradtx.{fn}: {name} must be an int or a sequence of ints, got "
                    f"{type(value).__name__} {value!r}.")
  for item in items:
    if not (_is_static_int(item) or (allow_none and item is None)):
      kinds = "ints or None" if allow_none else "ints"
      raise TypeError(f"gradtx.{fn}: {name} must hold {kinds}, got {item!r} in {value!r}.")
  return tuple(int(i) if i is not None else None for i in items)


def _str_tuple(fn: str, name: str, value: Any) -> tuple[str, ...]:
  items = (value,) if isinstance(value, str) else value
  if not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
    raise TypeError(f"gradtx.{fn}: {name} must be a str or a sequence of str, got {value!r}.")
  if len(set(items)) != len(items):
    raise ValueError(f"gradtx.{fn}: {name} must not repeat a name, got {value!r}.")
  return tuple(items)


def _check_common(fn: str, microbatch_size: Any, accumulator: Any,
                  num_real_microbatches: Any) -> None:
  _check_microbatch_size(fn, microbatch_size)
  check_accumulator(fn, accumulator)
  if num_real_microbatches is not None:
    _checks.check_int(fn, "num_real_microbatches", num_real_microbatches, 0)


def _positions(fn: str, name: str, argnums: tuple[int, ...], num_args: int) -> tuple[int, ...]:
  """`argnums` as non-negative positions among `num_args` positional arguments."""
  out = []
  for i in argnums:
    if not -num_args <= i < num_args:
      raise ValueError(f"gradtx.{fn}: {name} entry {i} is out of range: the function was called "
                       f"with {num_args} positional argument(s) ({name}={argnums}).")
    out.append(i % num_args)
  if len(set(out)) != len(out):
    raise ValueError(f"gradtx.{fn}: {name} must not name an argument twice, got {argnums} for "
                     f"{num_args} positional argument(s).")
  return tuple(out)


def _axis(fn: str, axis: int, ndim: int) -> int:
  if not -ndim <= axis < ndim:
    raise ValueError(f"gradtx.{fn}: in_axes entry {axis} is out of range for a batch argument "
                     f"leaf with {ndim} dimension(s).")
  return axis % ndim


# ----------------------------------------------------------------------------------------------
# reshape_batch_axis
# ----------------------------------------------------------------------------------------------

def _split_sharding(x: Any, axis: int, microbatch_size: int, fn: str) -> dict[str, Any]:
  """Under an explicit-axes mesh, the sharding of the split array: the batch axis's sharding
  moves to the `microbatch_size` axis and the new microbatch axis is replicated."""
  sharding = jax.typeof(x).sharding
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or not mesh.axis_names or not mesh.are_all_axes_explicit:
    return {}
  spec = tuple(sharding.spec)
  if len(spec) <= axis:  # the batch axis is not sharded
    new_spec = spec
  else:
    new_spec = spec[:axis] + (None, spec[axis]) + spec[axis + 1:]
  num_shards = x.shape[axis] // sharding.shard_shape(x.shape)[axis]
  if microbatch_size % num_shards:
    raise ValueError(f"gradtx.{fn}: the {num_shards} shards of the batch axis must evenly divide "
                     f"microbatch_size={microbatch_size}.")
  return {"out_sharding": jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*new_spec))}


def _split(tree: Any, microbatch_size: int, axis: int, fn: str) -> Any:
  def split_leaf(x):
    shape = np.shape(x)
    a = _axis(fn, axis, len(shape))
    if shape[a] % microbatch_size:
      raise ValueError(f"gradtx.{fn}: batch_size={shape[a]} (axis {a} of an array of shape "
                       f"{shape}) must be divisible by microbatch_size={microbatch_size}.")
    new_shape = shape[:a] + (shape[a] // microbatch_size, microbatch_size) + shape[a + 1:]
    return jnp.reshape(x, new_shape, order="F",
                       **_split_sharding(x, a, microbatch_size, fn))

  return jax.tree.map(split_leaf, tree)


def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
  """Splits the batch axis of every leaf into `(num_microbatches, microbatch_size)`.

  The split is column-major: microbatch `i` holds the examples
  :math:`i, i + n, i + 2n, \\dots` of the batch, where :math:`n` is `num_microbatches`. So the
  examples of each microbatch are spread over the whole batch, and a sharding of the batch axis
  carries over to the `microbatch_size` axis (the new microbatch axis is replicated).

  Args:
    tree: a pytree of arrays, each with a batch axis of the same size.
    microbatch_size: the number of examples per microbatch; divides the batch size.
    axis: the batch axis (negative counts from the end); the two new axes take its place.

  Returns:
    The pytree of reshaped arrays, of shape `shape[:axis] + (num_microbatches, microbatch_size)
    + shape[axis + 1:]`.

  Example:
    >>> import jax.numpy as jnp
    >>> import gradtx
    >>> gradtx.microbatching.reshape_batch_axis(jnp.arange(6), 2)
    Array([[0, 3],
           [1, 4],
           [2, 5]], dtype=int32)

  References:
    `optax.microbatching.reshape_batch_axis` (optax 0.2.8).
  """
  fn = "microbatching.reshape_batch_axis"
  _check_microbatch_size(fn, microbatch_size)
  if microbatch_size is None:
    raise TypeError(f"gradtx.{fn}: microbatch_size must be a Python int, got None.")
  if not _is_static_int(axis):
    raise TypeError(f"gradtx.{fn}: axis must be an int, got {axis!r}.")
  return _split(tree, microbatch_size, int(axis), fn)


# ----------------------------------------------------------------------------------------------
# microbatch
# ----------------------------------------------------------------------------------------------

def _microbatch(fn: str, fun: Callable[..., Any], argnums: Any, microbatch_size: int | None,
                accumulator: Any, argnames: Any, in_axes: Any,
                num_real_microbatches: Any) -> Callable[..., Any]:
  """`microbatch`, naming `fn` in its errors (`micro_vmap` builds on it)."""
  if not callable(fun):
    raise TypeError(f"gradtx.{fn}: fun must be callable, got {type(fun).__name__}.")
  argnums = _int_tuple(fn, "argnums", argnums)
  argnames = _str_tuple(fn, "argnames", argnames)
  if _is_static_int(in_axes):
    in_axes = (int(in_axes),) * (len(argnums) + len(argnames))
  in_axes = _int_tuple(fn, "in_axes", in_axes)
  if len(in_axes) != len(argnums) + len(argnames):
    raise ValueError(
        f"gradtx.{fn}: in_axes must have one entry per batch argument (argnums + argnames = "
        f"{len(argnums) + len(argnames)}), got {len(in_axes)}: {in_axes}.")
  _check_common(fn, microbatch_size, accumulator, num_real_microbatches)
  if microbatch_size is None:
    return fun
  pos_axes, name_axes = in_axes[:len(argnums)], in_axes[len(argnums):]

  def microbatched_fun(*args, **kwargs):
    positions = _positions(fn, "argnums", argnums, len(args))
    missing = [n for n in argnames if n not in kwargs]
    if missing:
      raise ValueError(f"gradtx.{fn}: argnames {missing} were not passed as keyword arguments "
                       f"(got {sorted(kwargs)}).")
    batch = ([(args[i], ax) for i, ax in zip(positions, pos_axes)]
             + [(kwargs[n], ax) for n, ax in zip(argnames, name_axes)])
    sizes = [np.shape(x)[_axis(fn, ax, np.ndim(x))]
             for tree, ax in batch for x in jax.tree.leaves(tree)]
    if not sizes:
      raise ValueError(f"gradtx.{fn}: the batch arguments (argnums={argnums}, argnames="
                       f"{argnames}) hold no arrays.")
    if len(set(sizes)) > 1:
      raise ValueError(f"gradtx.{fn}: the batch arguments must have equal-size batch axes "
                       f"(in_axes={in_axes}), found {sizes}.")
    batch_size = sizes[0]
    if batch_size % microbatch_size:
      raise ValueError(f"gradtx.{fn}: batch_size={batch_size} must be divisible by "
                       f"microbatch_size={microbatch_size}.")
    num_microbatches = batch_size // microbatch_size

    split_args, split_kwargs = list(args), dict(kwargs)
    for i, ax in zip(positions, pos_axes):
      split_args[i] = _split(args[i], microbatch_size, ax, fn)
    for name, ax in zip(argnames, name_axes):
      split_kwargs[name] = _split(kwargs[name], microbatch_size, ax, fn)
    acc = canonicalize(accumulator, num_microbatches)

    def take(tree, ax, index):
      # The microbatch axis of a split leaf sits where the batch axis was (counted on the leaf
      # before the split, which had one axis fewer).
      return jax.tree.map(
          lambda x: jnp.take(x, index, axis=ax if ax >= 0 else ax + x.ndim - 1), tree)

    def fun_on(index):
      call_args, call_kwargs = list(split_args), dict(split_kwargs)
      for i, ax in zip(positions, pos_axes):
        call_args[i] = take(call_args[i], ax, index)
      for name, ax in zip(argnames, name_axes):
        call_kwargs[name] = take(call_kwargs[name], ax, index)
      return fun(*call_args, **call_kwargs)

    def body(index, carry):
      return acc.update(carry, fun_on(index), index)

    carry = acc.init(jax.eval_shape(fun_on, 0))
    if num_real_microbatches is None:
      carry = jax.lax.fori_loop(0, num_microbatches, body, carry)
    elif not _checks.is_tracer(num_real_microbatches):
      num_real = int(num_real_microbatches)
      if num_real > num_microbatches:
        raise ValueError(f"gradtx.{fn}: num_real_microbatches={num_real} exceeds the "
                         f"{num_microbatches} microbatches of the batch.")
      carry = jax.lax.fori_loop(0, num_real, body, carry)
    else:
      # A traced count: every iteration runs, the ones past the count leave the carry as it is
      # (a static trip count, so the loop stays reverse-differentiable).
      def masked_body(index, carry):
        return jax.lax.cond(index < num_real_microbatches, functools.partial(body, index),
                            lambda c: c, carry)

      carry = jax.lax.fori_loop(0, num_microbatches, masked_body, carry)
    return acc.finalize(carry)

  return microbatched_fun


def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
  """Evaluates `fun` on a batch one microbatch at a time and combines the results.

  The batch arguments (`argnums`, `argnames`) are split by `reshape_batch_axis` into
  :math:`n = B / m` microbatches :math:`x_0, \\dots, x_{n-1}` of `microbatch_size` :math:`m`,
  and, for the SUM accumulator,

  .. math::

    \\mathrm{microbatched\\_fun}(x) = \\sum_{i=0}^{n-1} \\mathrm{fun}(x_i)

  computed sequentially in a `lax.fori_loop`, so only one microbatch is live at a time. MEAN
  divides the sum by :math:`n`, RUNNING_MEAN averages the microbatches run, CONCAT returns the
  outputs concatenated in the order of the examples.

  Args:
    fun: the function to evaluate.
    argnums: the index, or indices, of the positional arguments that have a batch axis.
    microbatch_size: the number of examples per microbatch; must divide the batch size. `None`
      returns `fun` unchanged.
    accumulator: an `Accumulator` or `AccumulationType`, or a pytree of them that is a prefix of
      `fun`'s output (one per subtree).
    argnames: the name, or names, of the keyword arguments that have a batch axis.
    in_axes: the batch axis of each argument of `argnums + argnames` (one int for all).
    num_real_microbatches: run only the first this many microbatches (an int, or an integer
      array that may be traced, to vary the batch size without recompiling).

  Returns:
    A function with `fun`'s arguments that returns the combined result.

  Example:
    >>> import jax.numpy as jnp
    >>> import gradtx
    >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
    >>> kinds = gradtx.microbatching.AccumulationType
    >>> gradtx.microbatch(fun, 0, 2, (kinds.CONCAT, kinds.SUM))(jnp.array([1, 2, 3, 4]))
    (Array([2, 3, 4, 5], dtype=int32), Array(30, dtype=int32))

  References:
    `optax.microbatching.microbatch` (optax 0.2.8).
  """
  return _microbatch("microbatch", fun, argnums, microbatch_size, accumulator, argnames,
                     in_axes, num_real_microbatches)


# ----------------------------------------------------------------------------------------------
# micro_vmap and micro_grad
# ----------------------------------------------------------------------------------------------

def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int | None] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: Any = AccumulationType.CONCAT,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
  """`jax.vmap` evaluated one microbatch at a time, optionally reducing over the batch axis.

  Each microbatch is mapped with `vmap_fn` and reduced with the accumulator's `aggregate`; the
  microbatches are then combined by `microbatch`. With the default CONCAT the result equals
  `jax.vmap(fun, in_axes)(...)`; MEAN or SUM return the mean or sum over the batch without
  materialising the per-example outputs.

  Args:
    fun: the function to map.
    in_axes: the mapped axis of each positional argument (`None`: not mapped); one int maps every
      positional argument along it. Keyword arguments are mapped along axis 0.
    out_axes: must be 0 (other values are not supported).
    microbatch_size: the number of examples per microbatch (`None`: one `vmap` of the batch).
    vmap_fn: a function with `jax.vmap`'s signature, e.g. to pass it options.
    accumulator: how to combine the per-example outputs (a pytree prefix of the output).
    num_real_microbatches: run only the first this many microbatches (see `microbatch`).

  Returns:
    The mapped function.

  Example:
    >>> import jax.numpy as jnp
    >>> import gradtx
    >>> gradtx.microbatching.micro_vmap(lambda x: x**2, microbatch_size=2)(jnp.arange(6))
    Array([ 0,  1,  4,  9, 16, 25], dtype=int32)

  References:
    `jax.vmap`, with `optax.microbatching.microbatch` (optax 0.2.8) over the microbatches.
  """
  fn = "microbatching.micro_vmap"
  if not _is_static_int(out_axes) or out_axes != 0:
    raise NotImplementedError(f"gradtx.{fn}: out_axes must be 0 (other values are not "
                              f"supported), got {out_axes!r}.")
  if not callable(fun):
    raise TypeError(f"gradtx.{fn}: fun must be callable, got {type(fun).__name__}.")
  if not _is_static_int(in_axes):
    _int_tuple(fn, "in_axes", in_axes, allow_none=True)
  _check_common(fn, microbatch_size, accumulator, num_real_microbatches)

  def wrapped_fn(*args, **kwargs):
    axes = ((int(in_axes),) * len(args) if _is_static_int(in_axes)
            else _int_tuple(fn, "in_axes", in_axes, allow_none=True))
    if len(axes) != len(args):
      raise ValueError(f"gradtx.{fn}: in_axes must have one entry per positional argument, got "
                       f"{len(axes)} for {len(args)} argument(s).")

    # vmap maps keyword arguments along axis 0: they travel as one batch keyword `kwargs`.
    def vmap_reduce(*mapped_args, kwargs):
      out = vmap_fn(fun, axes, out_axes)(*mapped_args, **kwargs)
      leaves = jax.tree.leaves(out)
      if not leaves:
        return out
      # Only `aggregate` is used here, which needs no count of microbatches.
      return canonicalize(accumulator, leaves[0].shape[0]).aggregate(out)

    mapped = tuple(i for i, ax in enumerate(axes) if ax is not None)
    micro_fn = _microbatch(fn, vmap_reduce, mapped, microbatch_size, accumulator, "kwargs",
                           tuple(axes[i] for i in mapped) + (0,), num_real_microbatches)
    return micro_fn(*args, kwargs=kwargs)

  return wrapped_fn


def _identity(x: Any) -> Any:
  return x


def _no_metrics(x: Any) -> None:
  del x


def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = _identity,
    metrics_fn: Callable[[Any], Any] = _no_metrics,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
  """Per-example gradients, transformed and combined over the batch, one microbatch at a time.

  For each example :math:`x_j` of the batch arguments it computes
  :math:`g_j = \\nabla_\\theta\\, \\mathrm{fun}(\\theta, x_j)` and returns

  .. math::

    \\Big(\\bigoplus_j \\mathrm{transform\\_fn}(g_j),\\;
    \\mathrm{Aux}(\\mathrm{values}=[f_j]_j, \\mathrm{metrics}=[\\mathrm{metrics\\_fn}(g_j)]_j,
    \\mathrm{aux}=[a_j]_j)\\Big)

  where :math:`\\bigoplus` is the accumulator (SUM by default) and the auxiliary outputs are kept
  per example (concatenated). Per-example clipping is `transform_fn`.

  Args:
    fun: the function to differentiate, `fun(params, batch, ...)` by default.
    has_aux: whether `fun` returns `(value, aux)`.
    argnums: the argument(s) to differentiate with respect to (as in `jax.grad`).
    batch_argnums: the positional argument(s) with a batch axis (axis 0).
    keep_batch_dim: whether `fun` expects a batch axis (it then sees batches of one example).
    microbatch_size: the number of examples per microbatch (`None`: one `vmap` of the batch).
    accumulator: how to combine the transformed gradients (a pytree prefix of them).
    transform_fn: applied to each per-example gradient before combining.
    metrics_fn: applied to each per-example gradient; returned per example in `aux.metrics`.
    num_real_microbatches: run only the first this many microbatches (see `microbatch`).

  Returns:
    A function of `fun`'s arguments returning `(combined, Aux(values, metrics, aux))`.

  Example:
    >>> import jax.numpy as jnp
    >>> import gradtx
    >>> loss = lambda w, x: 0.5 * jnp.mean((x @ w) ** 2)
    >>> g, aux = gradtx.microbatching.micro_grad(loss, microbatch_size=2)(
    ...     jnp.ones(1), jnp.arange(4.)[:, None])
    >>> g, aux.values
    (Array([14.], dtype=float32), Array([0. , 0.5, 2. , 4.5], dtype=float32))

  References:
    The per-example gradient transformations this serves, as cited by optax:
    https://arxiv.org/abs/2510.00236
  """
  fn = "microbatching.micro_grad"
  if not callable(fun):
    raise TypeError(f"gradtx.{fn}: fun must be callable, got {type(fun).__name__}.")
  _checks.check_bool(fn, "has_aux", has_aux)
  _checks.check_bool(fn, "keep_batch_dim", keep_batch_dim)
  _int_tuple(fn, "argnums", argnums)
  batch_argnums = _int_tuple(fn, "batch_argnums", batch_argnums)
  for name, f in (("transform_fn", transform_fn), ("metrics_fn", metrics_fn)):
    if not callable(f):
      raise TypeError(f"gradtx.{fn}: {name} must be callable, got {type(f).__name__}.")
  _check_common(fn, microbatch_size, accumulator, num_real_microbatches)

  with_aux = fun if has_aux else (lambda *args, **kwargs: (fun(*args, **kwargs), None))
  value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

  def grad_fn(*args, **kwargs):
    (value, aux), grad = value_and_grad(*args, **kwargs)
    return transform_fn(grad), _Aux(values=value, metrics=metrics_fn(grad), aux=aux)

  def micro_fn(*args, **kwargs):
    positions = _positions(fn, "batch_argnums", batch_argnums, len(args))
    in_axes = [None] * len(args)
    for i in positions:
      in_axes[i] = 0
    mapped = micro_vmap(grad_fn, in_axes=in_axes, accumulator=(accumulator,
                                                                AccumulationType.CONCAT),
                        microbatch_size=microbatch_size,
                        num_real_microbatches=num_real_microbatches)
    if keep_batch_dim:  # each example keeps a batch axis of size one
      args = list(args)
      for i in positions:
        args[i] = jax.tree.map(lambda x: jnp.expand_dims(x, axis=1), args[i])
    return mapped(*args, **kwargs)

  return micro_fn
