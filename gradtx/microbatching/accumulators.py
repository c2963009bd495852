"""How `microbatch` combines the outputs of its microbatches: `Accumulator` and `AccumulationType`.

An accumulator is the program `carry = init(shape of x_0); for i: carry = update(carry, x_i, i);
return finalize(carry)` over the microbatch outputs `x_0 ... x_{n-1}`, plus `aggregate`, the same
reduction applied at once to a stacked batch axis (`micro_vmap` uses it inside each microbatch).
The built-in kinds (`AccumulationType`) need the number of microbatches, known only at call time,
so `microbatch` turns them into accumulators then (`canonicalize`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["AccumulationType", "Accumulator"]


@dataclasses.dataclass(frozen=True)
class Accumulator:
  """A way to combine the outputs of the microbatches of a microbatched function.

  Given the microbatch outputs :math:`x_0, \\dots, x_{n-1}` it runs

  .. math::

    c \\leftarrow \\mathrm{init}(\\mathrm{shape}(x_0)), \\quad
    c \\leftarrow \\mathrm{update}(c, x_i, i) \\;(i = 0 \\dots n-1), \\quad
    \\mathrm{result} = \\mathrm{finalize}(c)

  An accumulator placed at a node of the output tree receives that whole subtree (the built-in
  kinds map over its leaves). Objects of this class are leaves of the `accumulator` pytree.

  Attributes:
    init: `f(shape_dtype_struct_tree)` -> the initial carry, from the shape/dtype of one
      microbatch's output (a `jax.ShapeDtypeStruct` tree).
    update: `f(carry, value, index)` -> the carry after the microbatch `index` with output `value`.
    finalize: `f(carry)` -> the result.
    aggregate: `f(per_example_values)` -> the same reduction over a leading batch axis, used by
      `micro_vmap` inside each microbatch.

  Example:
    >>> import jax.numpy as jnp
    >>> import gradtx
    >>> maximum = gradtx.microbatching.Accumulator(
    ...     init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
    ...     update=lambda c, x, i: jnp.maximum(c, x), finalize=lambda c: c,
    ...     aggregate=lambda x: jnp.max(x, axis=0))
    >>> gradtx.microbatch(jnp.max, 0, 2, maximum)(jnp.array([3., 7., 1., 5.]))
    Array(7., dtype=float32)
  """

  init: Callable[[Any], Any]
  update: Callable[[Any, Any, Any], Any]
  finalize: Callable[[Any], Any]
  aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
  """The built-in ways to combine microbatch outputs (leaf by leaf).

  `MEAN` divides the sum by the number of microbatches of the batch; `RUNNING_MEAN` keeps a
  running average, so it averages over the microbatches actually run (`num_real_microbatches`);
  `CONCAT` puts the outputs back in the order of the examples along axis 0. `MEAN` and
  `RUNNING_MEAN` need floating-point outputs.

  Attributes:
    MEAN: the sum divided by the number of microbatches of the batch.
    RUNNING_MEAN: the running average over the microbatches actually run.
    CONCAT: the outputs back in the order of the examples along axis 0.

  Example:
    >>> import jax.numpy as jnp
    >>> import gradtx
    >>> mean = gradtx.microbatching.AccumulationType.MEAN
    >>> gradtx.microbatch(jnp.mean, 0, 2, mean)(jnp.array([1., 2., 3., 6.]))
    Array(3., dtype=float32)
  """

  MEAN = enum.auto()
  """Average the microbatch outputs."""
  SUM = enum.auto()
  """Sum the microbatch outputs."""
  RUNNING_MEAN = enum.auto()
  """Average the microbatch outputs over `num_real_microbatches`."""
  CONCAT = enum.auto()
  """Concatenate the microbatch outputs along axis 0."""


def _floating_only(init: Callable[[Any], Any]) -> Callable[[Any], Any]:
  """`init` that first checks every output leaf is floating (MEAN and RUNNING_MEAN divide)."""

  def checked(value):
    for leaf in jax.tree.leaves(value):
      if not jnp.issubdtype(leaf.dtype, jnp.floating):
        raise ValueError(
            "gradtx.microbatch: MEAN and RUNNING_MEAN Accumulators require floating-point "
            f"values, got an output of dtype {leaf.dtype}; use SUM or CONCAT, or cast it.")
    return init(value)

  return checked


def _leafwise(acc: Accumulator) -> Accumulator:
  """An accumulator for one array applied to every leaf of a subtree."""
  return Accumulator(
      init=lambda value: jax.tree.map(acc.init, value),
      update=lambda carry, value, i: jax.tree.map(lambda c, v: acc.update(c, v, i), carry, value),
      finalize=lambda carry: jax.tree.map(acc.finalize, carry),
      aggregate=lambda values: jax.tree.map(acc.aggregate, values),
  )


def _sum() -> Accumulator:
  return _leafwise(Accumulator(
      init=jnp.zeros_like,
      update=lambda carry, value, _: carry + value,
      finalize=lambda carry: carry,
      aggregate=functools.partial(jnp.sum, axis=0),
  ))


def _mean(num_microbatches: int) -> Accumulator:
  # optax's order: the sum of the microbatch outputs, divided once at the end.
  return _leafwise(Accumulator(
      init=_floating_only(jnp.zeros_like),
      update=lambda carry, value, _: carry + value,
      finalize=lambda carry: carry / num_microbatches,
      aggregate=functools.partial(jnp.mean, axis=0),
  ))


def _running_mean_update(carry: jax.Array, value: jax.Array, index: Any) -> jax.Array:
  """mean_i = mean_{i-1} * i / (i + 1) + x_i * (1 - i / (i + 1)), in optax's arithmetic order."""
  p = index / (index + 1)
  # The cast keeps the carry's dtype whatever the index's dtype promotes p to (a no-op when the
  # loop index is weakly typed, as in optax's loops).
  return (carry * p + value * (1 - p)).astype(carry.dtype)


def _running_mean() -> Accumulator:
  return _leafwise(Accumulator(
      init=_floating_only(jnp.zeros_like),
      update=_running_mean_update,
      finalize=lambda carry: carry,
      aggregate=functools.partial(jnp.mean, axis=0),
  ))


def _merged_sharding(carry: jax.Array) -> dict[str, Any]:
  """Under an explicit-axes mesh, the sharding of `carry` with its leading (microbatch) axis,
  which is not sharded, merged away; nothing otherwise."""
  sharding = jax.typeof(carry).sharding
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or not mesh.axis_names or not mesh.are_all_axes_explicit:
    return {}
  spec = jax.sharding.PartitionSpec(*tuple(sharding.spec)[1:])
  return {"out_sharding": jax.sharding.NamedSharding(mesh, spec)}


def _concat(num_microbatches: int) -> Accumulator:
  def init(value):
    # zeros_like keeps the sharding of the microbatch output (an explicit-axes mesh); the new
    # leading axis is replicated.
    return jnp.broadcast_to(jnp.zeros_like(value), (num_microbatches,) + tuple(value.shape))

  def finalize(carry):
    # Row j of microbatch i is example i + num_microbatches * j (`reshape_batch_axis` splits the
    # batch in column-major order), so the column-major merge restores the examples' order.
    return jnp.reshape(carry, (-1,) + carry.shape[2:], order="F", **_merged_sharding(carry))

  return _leafwise(Accumulator(
      init=init,
      update=lambda carry, value, index: carry.at[index].set(value),
      finalize=finalize,
      aggregate=lambda values: values,
  ))


def is_accumulator_leaf(x: Any) -> bool:
  return isinstance(x, (Accumulator, AccumulationType))


def check_accumulator(fn: str, accumulator: Any) -> None:
  """Raises a ValueError naming `accumulator` if a leaf is not an Accumulator or
  AccumulationType (optax finds it when the function is called)."""
  for leaf in jax.tree.leaves(accumulator, is_leaf=is_accumulator_leaf):
    if not is_accumulator_leaf(leaf):
      raise ValueError(
          f"gradtx.{fn}: accumulator must be an Accumulator, an AccumulationType or a pytree "
          f"of them (a prefix of the function's output), got a leaf {leaf!r}.")


def canonicalize(accumulator: Any, num_microbatches: int) -> Accumulator:
  """One Accumulator for a pytree (a prefix of the output tree) of Accumulators and
  AccumulationTypes, for a batch of `num_microbatches` microbatches."""

  def one(acc):
    if isinstance(acc, Accumulator):
      return acc
    if acc is AccumulationType.SUM:
      return _sum()
    if acc is AccumulationType.RUNNING_MEAN:
      return _running_mean()
    if num_microbatches <= 0:
      raise ValueError(f"gradtx.microbatch: num_microbatches={num_microbatches} must be positive "
                       f"(the batch is empty).")
    if acc is AccumulationType.MEAN:
      return _mean(num_microbatches)
    if acc is AccumulationType.CONCAT:
      return _concat(num_microbatches)
    raise ValueError(f"gradtx.microbatch: unknown accumulator {acc!r}.")

  accs = jax.tree.map(one, accumulator, is_leaf=is_accumulator_leaf)

  def over(method):
    # Each accumulator receives the subtree of the output (or carry) below its position.
    return lambda *trees: jax.tree.map(lambda acc, *xs: getattr(acc, method)(*xs), accs, *trees,
                                       is_leaf=is_accumulator_leaf)

  return Accumulator(
      init=over("init"),
      update=lambda carry, value, index: jax.tree.map(
          lambda acc, c, v: acc.update(c, v, index), accs, carry, value),
      finalize=over("finalize"),
      aggregate=over("aggregate"),
  )
