"""Annealed Gaussian gradient noise (Neelakantan et al.)."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import GradientTransformation
from gradtx.numerics import safe_increment

__all__ = ["AddNoiseState", "add_noise"]


def _is_typed_key(key: Any) -> bool:
  return isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _key_maker(key: Any, fn: str = "add_noise") -> tuple[Any, Any]:
  """Validates `key`; returns (a function building its raw uint32 data, the PRNG impl or None)."""
  if _is_typed_key(key):
    if key.shape != ():
      raise ValueError(f"gradtx.{fn}: key must be a single key, got shape {key.shape}.")
    return (lambda: jax.random.key_data(key)), jax.random.key_impl(key)
  raw_shape = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape
  if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == raw_shape:
    return (lambda: jnp.asarray(key)), None  # A raw key such as jax.random.PRNGKey(0).
  if isinstance(key, (bool, np.bool_)):
    is_int = False
  elif isinstance(key, (jax.Array, np.ndarray, np.generic)):
    is_int = np.issubdtype(key.dtype, np.integer)
  else:
    is_int = isinstance(key, numbers.Integral)
  if not is_int:
    raise TypeError(
        f"gradtx.{fn}: key must be an int seed or a jax PRNG key (jax.random.key(0)), got "
        f"{type(key).__name__} {key!r}.")
  if np.shape(key) != ():
    raise ValueError(
        f"gradtx.{fn}: key must be a scalar int seed, got an array of shape {np.shape(key)}.")
  return (lambda: jax.random.key_data(jax.random.key(key))), None


class AddNoiseState(NamedTuple):
  """State of `add_noise`: the step count and the PRNG key as raw `uint32` key data.

  Attributes:
    count: int32 scalar, the step count.
    rng_key: the PRNG key as raw `uint32` key data.
  """

  count: jax.Array  # int32 scalar
  rng_key: jax.Array  # uint32 key data (jax.random.key_data)


def _key_or_seed(fn: str, key: Any, seed: Any) -> Any:
  """optax's `key=None, *, seed=None` convention: `seed` is an old name for `key`, None means 0."""
  if seed is not None:
    if key is not None:
      raise ValueError(
          f"gradtx.{fn}: give key or seed, not both (seed is optax's older name for key); got "
          f"key={key!r} and seed={seed!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
      raise TypeError(f"gradtx.{fn}: seed must be an int, got {type(seed).__name__} {seed!r}.")
    return int(seed)
  return 0 if key is None else key


def add_noise(eta: Any = 0.01, gamma: Any = 0.55, key: Any = None, *, seed: int | None = None
              ) -> GradientTransformation:
  r"""Adds annealed Gaussian noise to the updates, as optax's `add_noise`.

  Noise helps very deep networks escape poor regions early in training; its variance decays
  polynomially so late training is nearly noiseless (Ruder 2016, Sec. 6.4).

  .. math::
      u_t = g_t + \epsilon_t, \qquad \epsilon_t \sim \mathcal{N}(0, \sigma_t^2), \qquad
      \sigma_t^2 = \eta / t^{\gamma}, \quad t = 1, 2, \dots

  with :math:`\eta` = `eta` and :math:`\gamma` = `gamma` (the paper's :math:`\eta/(1+t)^\gamma`
  with :math:`t` from 0). Each step splits the state's key into the next key and a sample key,
  then splits the sample key once per leaf, exactly as optax, so a given `key` yields optax's
  numbers. Noise is drawn in each leaf's dtype.

  Args:
    eta: the base variance :math:`\eta \geq 0` (paper: 0.01, 0.3 or 1.0); a float or array.
    gamma: the annealing exponent :math:`\gamma \geq 0` (paper: 0.55); a float or array.
    key: an int seed or a jax PRNG key (typed `jax.random.key` or raw `jax.random.PRNGKey`);
      `None` (optax's default) means 0.
    seed: optax's older name for an int `key` (deprecated there, still accepted by both);
      give `key` or `seed`, not both.

  Returns:
    A `GradientTransformation` with state `AddNoiseState(count, rng_key)`. Differences from
    optax: `rng_key` holds the raw `uint32` key data, so every state leaf is a plain array
    (checkpointable, comparable with NumPy); `eta` and `gamma` default to the paper's values;
    `params`, when passed, must have the updates' structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.add_noise(eta=0.0, key=0)
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0].tolist()
    [1.0, 1.0]

  References:
    Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach & Martens, "Adding Gradient Noise
    Improves Learning for Very Deep Networks", 2015. https://arxiv.org/abs/1511.06807
  """
  _checks.check_scalar("add_noise", "eta", eta, low=0)
  _checks.check_scalar("add_noise", "gamma", gamma, low=0)
  key = _key_or_seed("add_noise", key, seed)
  make_key_data, impl = _key_maker(key)

  def wrap(data):
    return jax.random.wrap_key_data(data) if impl is None else jax.random.wrap_key_data(
        data, impl=impl)

  def init_fn(params):
    del params
    return AddNoiseState(count=jnp.zeros([], jnp.int32), rng_key=make_key_data())

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is not None:  # Optional: the noise itself needs only the updates' shapes.
      _checks.check_same_structure("add_noise", "updates", updates, "params", params)
    count_inc = safe_increment(state.count)
    std = jnp.sqrt(eta / count_inc.astype(jnp.float32)**gamma)  # float: no int32 overflow
    rng_key, sample_key = jax.random.split(wrap(state.rng_key))
    leaves, treedef = jax.tree.flatten(updates)  # `None` leaves are empty subtrees here.
    keys = jax.random.split(sample_key, len(leaves))
    noisy = [
        g + _checks.as_dtype(std, g) * jax.random.normal(
            k, jnp.shape(g), jnp.asarray(g).dtype, out_sharding=jax.typeof(g).sharding)
        for g, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, noisy), AddNoiseState(
        count=count_inc, rng_key=jax.random.key_data(rng_key))

  return GradientTransformation(init_fn, update_fn)
