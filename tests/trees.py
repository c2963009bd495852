"""The nested test pytree and its gradient sequences, shared by the test modules: a dict of a
tuple and a dict, with a scalar leaf and an odd shape (STYLE §10)."""

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 20


def make_params(dtype=jnp.float32):
  rng = np.random.default_rng(0)
  return {
      "a": (jnp.asarray(rng.normal(size=3), dtype), jnp.asarray(rng.normal(size=(2, 5)), dtype)),
      "b": {"c": jnp.asarray(rng.normal(), dtype), "d": jnp.asarray(rng.normal(size=(4, 1, 3)), dtype)},
  }


def make_grads(steps=STEPS, dtype=jnp.float32, seed=1):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), dtype), make_params())
          for _ in range(steps)]
