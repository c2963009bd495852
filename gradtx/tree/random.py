"""Random pytrees shaped like a given one (optax's `tree.random_like`, `tree.split_key_like`, ...)."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import jax

__all__ = [
    "random_like",
    "split_key_like",
    "unwrap_random_key_data",
]


def split_key_like(rng_key: Any, target_tree: Any) -> Any:
  """One key per leaf of `target_tree`: `jax.random.split(rng_key, n_leaves)` in that structure.

  Args:
    rng_key: a PRNG key.
    target_tree: the pytree whose structure the keys take.

  Returns:
    A pytree of keys with the structure of `target_tree`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> keys = gradtx.tree.split_key_like(jax.random.key(0), {'a': jnp.ones(2), 'b': jnp.ones(3)})
    >>> sorted(keys)
    ['a', 'b']

  References:
    `optax.tree_utils.tree_split_key_like` (optax 0.2.8).
  """
  treedef = jax.tree.structure(target_tree)
  return jax.tree.unflatten(treedef, jax.random.split(rng_key, treedef.num_leaves))


def random_like(
    rng_key: Any,
    target_tree: Any,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any = None,
) -> Any:
  """A pytree of random arrays shaped like `target_tree` (one split key per leaf).

  Args:
    rng_key: the PRNG key, split once per leaf with `split_key_like`.
    target_tree: the pytree whose structure, shapes and (by default) dtypes to take; leaves
      must be arrays.
    sampler: called as `sampler(key, shape, dtype)` (with `out_sharding=` the leaf's sharding
      where it accepts one), by default `jax.random.normal`.
    dtype: the dtype passed to `sampler`; `None` uses each leaf's dtype.

  Returns:
    A pytree of `sampler` draws with the structure of `target_tree`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> gradtx.tree.random_like(jax.random.key(0), {'w': jnp.ones((2, 3))})['w'].shape
    (2, 3)

  References:
    `optax.tree_utils.tree_random_like` (optax 0.2.8).
  """
  keys = split_key_like(rng_key, target_tree)
  if "out_sharding" in inspect.signature(sampler).parameters:
    draw = sampler
  else:
    draw = lambda key, shape, dt, *, out_sharding: sampler(key, shape, dt)  # noqa: E731
  return jax.tree.map(
      lambda leaf, key: draw(key, leaf.shape, dtype or leaf.dtype,
                             out_sharding=jax.typeof(leaf).sharding),
      target_tree, keys)


def unwrap_random_key_data(input_tree: Any) -> Any:
  """Replaces every typed PRNG key leaf by its raw `jax.random.key_data` (other leaves stay).

  Args:
    input_tree: a pytree, possibly holding typed PRNG keys.

  Returns:
    The pytree with each typed key replaced by its raw `uint32` key data.

  Example:
    >>> import jax, gradtx
    >>> gradtx.tree.unwrap_random_key_data({'k': jax.random.key(0)})['k'].dtype
    dtype('uint32')

  References:
    `optax.tree_utils.tree_unwrap_random_key_data` (optax 0.2.8).
  """

  def unwrap(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.key_data(x)
    return x

  return jax.tree.map(unwrap, input_tree)
