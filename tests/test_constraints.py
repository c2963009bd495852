"""Tests of gradtx/transforms/constraints.py: keep_params_nonnegative against optax and a NumPy
projection, jit/eager/vmap, None leaves, state and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import STEPS, make_grads, make_params


def _params():
  return jax.tree.map(jnp.abs, make_params())  # the transformation expects params >= 0


def _run(tx, jit=True, steps=STEPS):
  params = _params()
  state = tx.init(params)
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in make_grads(steps):
    u, state = step(g, state, params)
    params = jax.tree.map(lambda p, x: p + x, params, u)
    out.append(u)
  return out, state, params


def test_matches_optax_bit_identically_over_20_steps():
  got, gstate, gparams = _run(gradtx.chain(gradtx.scale(-0.5), gradtx.keep_params_nonnegative()))
  want, ostate, _ = _run(optax.chain(optax.scale(-0.5), optax.keep_params_nonnegative()))
  assert len(got) == STEPS >= 20
  for u, w in zip(got, want):
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(w)):
      np.testing.assert_array_equal(a, b)
  for p in jax.tree.leaves(gparams):
    assert (np.asarray(p) >= 0).all()
  assert any((np.asarray(p) == 0).any() for p in jax.tree.leaves(gparams))  # it did project
  assert gstate[1] == gradtx.EmptyState() and type(ostate[1]).__name__ == "EmptyState"


def test_equals_numpy_projection_eager_equals_jit():
  """The update that lands p + u on max(p + u, 0): u' = -p where p + u < 0, else u."""
  tx = gradtx.keep_params_nonnegative()
  params = _params()
  for g in make_grads(3):
    u, _ = tx.update(g, tx.init(params), params)
    uj, _ = jax.jit(tx.update)(g, tx.init(params), params)
    for ui, uji, gi, pi in zip(*map(jax.tree.leaves, (u, uj, g, params))):
      pi, gi = np.asarray(pi, np.float64), np.asarray(gi, np.float64)
      np.testing.assert_array_equal(ui, uji)
      np.testing.assert_allclose(ui, np.where(pi + gi < 0, -pi, gi), rtol=1e-7)
      np.testing.assert_allclose(pi + np.asarray(ui), np.maximum(pi + gi, 0.0), atol=1e-6)


def test_vmap_over_params_none_leaves_and_dtype():
  tx = gradtx.keep_params_nonnegative()
  ps = jnp.asarray([[1.0, 0.5], [0.0, 2.0]])
  us, _ = jax.vmap(lambda p: tx.update(-jnp.ones(2), tx.init(p), p))(ps)
  np.testing.assert_array_equal(us, [[-1.0, -0.5], [-0.0, -1.0]])
  params = {"w": jnp.ones(2, jnp.bfloat16), "frozen": None}
  u, state = tx.update({"w": -3 * jnp.ones(2, jnp.bfloat16), "frozen": None}, tx.init(params),
                       params)
  assert u["frozen"] is None and u["w"].dtype == jnp.bfloat16 and u["w"].tolist() == [-1, -1]
  assert state == gradtx.EmptyState()


def test_state_names_and_errors():
  assert gradtx.NonNegativeParamsState is gradtx.EmptyState
  assert gradtx.transforms.NonNegativeParamsState is gradtx.EmptyState
  assert optax.NonNegativeParamsState is optax.EmptyState
  tx = gradtx.keep_params_nonnegative()
  with pytest.raises(ValueError, match="params"):
    tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))
  with pytest.raises(ValueError, match="structure"):
    tx.update({"w": jnp.ones(2)}, gradtx.EmptyState(), {"v": jnp.ones(2)})
