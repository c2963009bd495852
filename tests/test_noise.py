"""Tests of gradtx/noise.py: statistics of the annealed noise, equality with optax for the same
key, the key splitting per step, and validation. (The registry has no deterministic reference.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

TREE = {"a": jnp.ones(3), "b": (jnp.zeros((2, 2)), jnp.asarray(0.5))}


def _steps(tx, updates, n):
  state, step, out = tx.init(updates), tx.update, []  # eager: random kernels are cached by shape
  for _ in range(n):
    u, state = step(updates, state)
    out.append(u)
  return out, state


def test_noise_statistics_mean_zero_variance_eta_over_t_gamma():
  n, eta, gamma = 100_000, 0.5, 0.55
  out, _ = _steps(gradtx.add_noise(eta, gamma, key=1), jnp.zeros(n), 3)
  for t, u in enumerate(out, start=1):
    x = np.asarray(u, np.float64)
    var = eta / t**gamma
    assert abs(x.mean()) < 5 * np.sqrt(var / n), t
    np.testing.assert_allclose(x.var(), var, rtol=0.03, err_msg=f"step {t}")


def test_zero_eta_is_identity():
  out, _ = _steps(gradtx.add_noise(0.0, 0.55, key=3), TREE, 2)
  for u in out:
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(TREE)):
      np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("key", [0, 42, "typed", "rbg"])
def test_equals_optax_for_the_same_key(key):
  if key == "typed":
    key = jax.random.key(7)
  elif key == "rbg":
    key = jax.random.key(7, impl="rbg")
  ours, ostate_ours = _steps(gradtx.add_noise(0.3, 0.55, key), TREE, 3)
  theirs, ostate = _steps(optax.add_noise(0.3, 0.55, key), TREE, 3)
  for u, v in zip(ours, theirs):
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v)):
      np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(ostate_ours.rng_key, jax.random.key_data(ostate.rng_key))
  assert int(ostate_ours.count) == int(ostate.count) == 3


def test_key_is_split_once_per_step_and_once_per_leaf():
  key, eta, gamma = jax.random.key(5), 0.2, 0.55
  tx = gradtx.add_noise(eta, gamma, key)
  zeros = {"a": jnp.zeros(3), "b": jnp.zeros((2,))}
  state = tx.init(zeros)
  np.testing.assert_array_equal(state.rng_key, jax.random.key_data(key))
  for t in (1, 2):
    u, state = tx.update(zeros, state)
    next_key, sample_key = jax.random.split(key)
    leaf_keys = jax.random.split(sample_key, 2)
    std = np.sqrt(eta / t**gamma)
    for i, name in enumerate(("a", "b")):
      want = std * jax.random.normal(leaf_keys[i], zeros[name].shape)
      np.testing.assert_allclose(u[name], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(state.rng_key, jax.random.key_data(next_key))
    key = next_key


def test_reproducible_and_fresh_each_step():
  a, _ = _steps(gradtx.add_noise(0.3, 0.55, key=11), TREE, 2)
  b, _ = _steps(gradtx.add_noise(0.3, 0.55, key=11), TREE, 2)
  c, _ = _steps(gradtx.add_noise(0.3, 0.55, key=12), TREE, 2)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  assert not np.allclose(a[0]["b"][0], c[0]["b"][0])
  assert not np.allclose(a[0]["b"][0] - TREE["b"][0], (a[1]["b"][0] - TREE["b"][0]))


def test_int_seed_raw_key_and_typed_key_agree():
  outs = [
      _steps(gradtx.add_noise(0.3, 0.55, key), TREE, 1)[0][0]
      for key in (3, jnp.asarray(3), jax.random.key(3), jax.random.PRNGKey(3))]
  for other in outs[1:]:
    for x, y in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(other)):
      np.testing.assert_array_equal(x, y)


def test_state_is_plain_arrays_and_dtypes_kept():
  tx = gradtx.add_noise(0.3, 0.55, key=jax.random.key(0))
  p = {"w": jnp.zeros(4, jnp.bfloat16), "frozen": None}
  state = tx.init(p)
  assert state.rng_key.dtype == jnp.uint32 and state.count.dtype == jnp.int32
  u, state2 = tx.update({"w": jnp.ones(4, jnp.bfloat16), "frozen": None}, state)
  assert u["w"].dtype == jnp.bfloat16 and u["frozen"] is None
  assert jax.tree.structure(state2) == jax.tree.structure(state)


def test_integer_gamma_does_not_overflow_the_step_count():
  tx = gradtx.add_noise(1.0, 2, key=0)  # int32 count**2 would overflow past 46340 steps
  state = tx.init(jnp.zeros(4))._replace(count=jnp.asarray(99_999, jnp.int32))
  u, _ = tx.update(jnp.zeros(4), state)
  assert np.all(np.isfinite(u)) and 0 < np.abs(np.asarray(u)).max() < 1e-3


def test_params_structure_mismatch_raises():
  tx = gradtx.add_noise(0.1, 0.55, key=0)
  with pytest.raises(ValueError, match="structure of params"):
    tx.update({"a": jnp.zeros(2)}, tx.init(None), {"b": jnp.zeros(2)})


def test_seed_sweep_under_vmap():
  def noise(seed):
    tx = gradtx.add_noise(0.3, 0.55, key=seed)
    return tx.update(jnp.zeros(3), tx.init(jnp.zeros(3)))[0]

  batched = jax.vmap(noise)(jnp.arange(2))
  np.testing.assert_allclose(batched[1], noise(1), rtol=1e-6)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(eta=-0.1), ValueError, r"eta must be in \[0, inf\]"),
    (dict(eta="x"), TypeError, "eta"),
    (dict(eta=lambda t: 0.1), TypeError, "eta"),
    (dict(eta=jnp.ones(2)), ValueError, "eta.*jax.vmap"),
    (dict(gamma=-1.0), ValueError, "gamma"),
    (dict(gamma=float("nan")), ValueError, "gamma must be finite"),
    (dict(gamma=jnp.ones(2)), ValueError, "gamma.*jax.vmap"),
    (dict(key="seed"), TypeError, "key"),
    (dict(key=1.5), TypeError, "key"),
    (dict(key=True), TypeError, "key"),
    (dict(key=None, seed=1.5), TypeError, "seed"),  # key=None means 0, as optax
    (dict(key=jnp.arange(3)), ValueError, "key"),
    (dict(key=jax.random.split(jax.random.key(0), 2)), ValueError, "key"),
])
def test_validation(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.add_noise(**kwargs)


def test_seed_is_optax_older_name_for_key_and_none_means_zero():
  """optax 0.2.8 still accepts `add_noise(..., seed=)` / `noisy_sgd(..., seed=)` and
  `key=None` (meaning 0): the same numbers as optax for each spelling."""
  ref, _ = _steps(optax.add_noise(0.1, 0.55, key=5), TREE, 3)
  for tx in (gradtx.add_noise(0.1, 0.55, seed=5), gradtx.add_noise(0.1, 0.55, 5)):
    out, _ = _steps(tx, TREE, 3)
    for u, r in zip(out, ref):
      jax.tree.map(np.testing.assert_array_equal, u, r)
  zero, _ = _steps(gradtx.add_noise(0.1, 0.55), TREE, 1)
  ref0, _ = _steps(optax.add_noise(0.1, 0.55, key=0), TREE, 1)
  jax.tree.map(np.testing.assert_array_equal, zero[0], ref0[0])
  sgd, _ = _steps(gradtx.noisy_sgd(0.1, seed=5), TREE, 2)
  ref_sgd, _ = _steps(optax.noisy_sgd(0.1, seed=5), TREE, 2)
  for u, r in zip(sgd, ref_sgd):
    jax.tree.map(np.testing.assert_array_equal, u, r)


def test_key_and_seed_together_raise():
  with pytest.raises(ValueError, match="key or seed"):
    gradtx.add_noise(0.1, 0.55, key=1, seed=2)
  with pytest.raises(ValueError, match="key or seed"):
    gradtx.noisy_sgd(0.1, key=1, seed=2)
  with pytest.raises(TypeError, match="seed must be an int"):
    gradtx.add_noise(0.1, 0.55, seed=1.5)
