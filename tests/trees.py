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


# Aliases whose `update` needs a function of the params (`value_fn=` or `residual_fn=`: the
# second-order methods of issue 16), which the generic first-order alias tables (a gradient, at
# most a `value=`) cannot drive. Each is covered, jit / vmap / nnx / NaN / bad input included, in
# the test file named here.
NEEDS_FUNCTIONS = {
    "newton_cg": "tests/test_newton.py",
    "saddle_free_newton": "tests/test_newton.py",
    "hessian_free": "tests/test_newton.py",
    "gauss_newton": "tests/test_newton.py",
    "levenberg_marquardt": "tests/test_newton.py",
    "lbfgs": "tests/test_quasi_newton.py",
    "bfgs": "tests/test_quasi_newton.py",
    "nonlinear_cg": "tests/test_quasi_newton.py",
    "stochastic_lbfgs": "tests/test_quasi_newton.py",
    "adahessian": "tests/test_sophia.py",
    "asam": "tests/test_sophia.py",
    "entropy_sgd": "tests/test_sophia.py",
    "kfac": "tests/test_kfac.py",
}


def first_order_aliases(names):
  """`names` without the aliases of NEEDS_FUNCTIONS, sorted."""
  return sorted(n for n in names if n not in NEEDS_FUNCTIONS)
