"""Tests of gradtx/clipping.py beyond the generic registry tests: the Theano clip_norms
transcription, the clipping boundary, None leaves, dtypes and validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def clip_norms(gs, c):
  """Deep Learning with Theano, update rules chapter, transcribed to NumPy:
  norm = T.sqrt(sum([T.sum(g**2) for g in gs])); T.switch(T.ge(norm, c), g*c/norm, g)."""
  norm = np.sqrt(sum([np.sum(g**2) for g in gs]))
  return [np.where(norm >= c, g * c / norm, g) for g in gs]


def _tree(scale, seed=0):
  rng = np.random.default_rng(seed)
  return {"a": (jnp.asarray(scale * rng.normal(size=3), jnp.float32),
                jnp.asarray(scale * rng.normal(size=(2, 5)), jnp.float32)),
          "b": jnp.asarray(scale * rng.normal(), jnp.float32)}


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("max_norm", [0.5, 5.0])
def test_clip_by_global_norm_equals_theano_clip_norms(scale, max_norm):
  g = _tree(scale)
  tx = gradtx.clip_by_global_norm(max_norm)
  u, _ = tx.update(g, tx.init(g))
  want = clip_norms([np.asarray(x, np.float64) for x in jax.tree.leaves(g)], max_norm)
  for a, b in zip(jax.tree.leaves(u), want):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert float(gradtx.global_norm(u)) <= max_norm * (1 + 1e-6)


def test_clip_by_global_norm_at_the_boundary_matches_theano():
  g = {"a": jnp.asarray([3.0]), "b": jnp.asarray([4.0])}  # norm exactly 5
  tx = gradtx.clip_by_global_norm(5.0)
  u, _ = tx.update(g, tx.init(g))
  want = clip_norms([np.asarray([3.0]), np.asarray([4.0])], 5.0)
  np.testing.assert_allclose([u["a"][0], u["b"][0]], [w[0] for w in want], rtol=1e-7)


def test_clip_by_global_norm_keeps_direction_and_zero_is_safe():
  g = {"a": jnp.asarray([30.0, -40.0])}
  tx = gradtx.clip_by_global_norm(1.0)
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(u["a"], [0.6, -0.8], rtol=1e-6)
  z, _ = tx.update({"a": jnp.zeros(2)}, tx.init(g))
  np.testing.assert_array_equal(z["a"], [0.0, 0.0])


def test_clip_by_block_rms_is_per_leaf():
  g = {"big": jnp.asarray([3.0, -3.0]), "small": jnp.asarray([0.1, 0.2])}
  tx = gradtx.clip_by_block_rms(1.0)
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(u["big"], [1.0, -1.0], rtol=1e-6)
  np.testing.assert_array_equal(u["small"], g["small"])


def test_clip_elementwise():
  tx = gradtx.clip(0.5)
  u, _ = tx.update(jnp.asarray([-2.0, 0.25, 0.5, 7.0]), tx.init(None))
  np.testing.assert_array_equal(u, [-0.5, 0.25, 0.5, 0.5])
  tx0 = gradtx.clip(0.0)
  np.testing.assert_array_equal(tx0.update(jnp.asarray([1.0, -1.0]), tx0.init(None))[0], [0, 0])


@pytest.mark.parametrize("tx", [gradtx.clip(0.1), gradtx.clip_by_global_norm(0.1),
                                gradtx.clip_by_block_rms(0.1)], ids=["clip", "global", "block"])
def test_none_leaves_and_bf16(tx):
  g = {"w": 3 * jnp.ones(3, jnp.bfloat16), "frozen": None}
  u, state = tx.update(g, tx.init(g))
  assert u["frozen"] is None and u["w"].dtype == jnp.bfloat16
  assert state == gradtx.EmptyState()


@pytest.mark.parametrize("factory", [gradtx.clip, gradtx.clip_by_global_norm,
                                     gradtx.clip_by_block_rms])
def test_scalar_array_and_traced_hyperparameters(factory):
  g = {"w": 3 * jnp.ones(3, jnp.bfloat16)}
  tx = factory(jnp.asarray(0.1, jnp.float32))  # f32 array on bf16 updates: bf16 out
  assert tx.update(g, tx.init(g))[0]["w"].dtype == jnp.bfloat16

  def f(h):
    t = factory(h)
    return t.update(g, t.init(g))[0]["w"]

  out = jax.vmap(f)(jnp.asarray([0.1, 100.0]))
  np.testing.assert_allclose(np.asarray(out[1], np.float32), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("factory,arg,value,exc,match", [
    (gradtx.clip, "max_delta", -1.0, ValueError, r"max_delta must be in \[0, inf\]"),
    (gradtx.clip, "max_delta", "1", TypeError, "max_delta"),
    (gradtx.clip, "max_delta", jnp.ones(2), ValueError, "max_delta.*jax.vmap"),
    (gradtx.clip, "max_delta", float("inf"), ValueError, "max_delta must be finite"),
    (gradtx.clip_by_global_norm, "max_norm", -1.0, ValueError,
     r"^gradtx.clip_by_global_norm: max_norm must be in \[0, inf\], got -1.0.$"),
    (gradtx.clip_by_global_norm, "max_norm", lambda t: 1.0, TypeError, "max_norm"),
    (gradtx.clip_by_global_norm, "max_norm", jnp.ones(3), ValueError, "max_norm.*jax.vmap"),
    (gradtx.clip_by_block_rms, "threshold", -1.0, ValueError, r"threshold must be in \[0, inf\]"),
    (gradtx.clip_by_block_rms, "threshold", None, TypeError, "threshold"),
    (gradtx.clip_by_block_rms, "threshold", jnp.ones(2), ValueError, "threshold.*jax.vmap"),
])
def test_validation(factory, arg, value, exc, match):
  with pytest.raises(exc, match=match):
    factory(**{arg: value})
