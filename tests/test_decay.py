"""Tests of gradtx/decay.py beyond the generic registry tests: the missing-params error, the
state that never depends on constant-vs-schedule (a difference from optax), masks, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

P = {"w": jnp.asarray([[1.0, -2.0]]), "b": jnp.asarray([0.5])}
G = {"w": jnp.asarray([[0.1, 0.1]]), "b": jnp.asarray([0.2])}


def test_adds_weight_decay_times_params():
  tx = gradtx.add_decayed_weights(0.1)
  u, _ = tx.update(G, tx.init(P), P)
  np.testing.assert_allclose(u["w"], [[0.2, -0.1]], rtol=1e-6)
  np.testing.assert_allclose(u["b"], [0.25], rtol=1e-6)


def test_schedule_is_called_with_the_step_count():
  tx = gradtx.add_decayed_weights(lambda t: 0.1 * (t + 1))
  state = tx.init(P)
  for t in range(3):
    u, state = tx.update(G, state, P)
    np.testing.assert_allclose(u["b"], 0.2 + 0.1 * (t + 1) * 0.5, rtol=1e-6)
  assert int(state.count) == 3


def test_missing_params_raises_naming_params():
  tx = gradtx.add_decayed_weights(0.1)
  with pytest.raises(ValueError, match="add_decayed_weights.*params"):
    tx.update(G, tx.init(P))
  masked = gradtx.add_decayed_weights(0.1, mask={"w": True, "b": False})
  with pytest.raises(ValueError, match="params"):
    masked.update(G, masked.init(P))


def test_params_structure_mismatch_raises():
  tx = gradtx.add_decayed_weights(0.1)
  with pytest.raises(ValueError, match="structure of params"):
    tx.update(G, tx.init(P), {"w": P["w"]})


def test_state_is_optax_layout_empty_for_constant_count_for_schedule():
  const, sched = gradtx.add_decayed_weights(0.1), gradtx.add_decayed_weights(lambda t: 0.1)
  s1, s2 = const.init(P), sched.init(P)
  # As optax: `AddDecayedWeightsState` is `EmptyState`, and a schedule keeps its step count.
  assert gradtx.AddDecayedWeightsState is gradtx.EmptyState
  assert s1 == gradtx.EmptyState() == optax.add_decayed_weights(0.1).init(P)
  assert s2 == gradtx.WeightDecaySchedule(count=jnp.zeros([], jnp.int32))
  assert type(optax.add_decayed_weights(lambda t: 0.1).init(P)).__name__ == "WeightDecaySchedule"
  _, s1 = const.update(G, s1, P)
  assert s1 == gradtx.EmptyState()
  _, s2 = sched.update(G, s2, P)
  assert int(s2.count) == 1 and s2.count.dtype == jnp.int32
  # The value never changes the structure: a literal zero keeps the constant's EmptyState.
  assert gradtx.add_decayed_weights(0.0).init(P) == gradtx.EmptyState()


def test_zero_constant_skips_like_optax():
  p = {"w": jnp.asarray([jnp.inf, 1.0])}
  g = {"w": jnp.asarray([0.5, 0.5])}
  tx = gradtx.add_decayed_weights(0.0)
  u, _ = tx.update(g, tx.init(p), p)
  np.testing.assert_array_equal(u["w"], g["w"])
  want, _ = optax.add_decayed_weights(0.0).update(g, optax.EmptyState(), p)
  np.testing.assert_array_equal(u["w"], want["w"])


@pytest.mark.parametrize("mask", [{"w": True, "b": False},
                                  lambda p: jax.tree.map(lambda x: x.ndim > 1, p)],
                         ids=["tree", "callable"])
def test_mask_decays_only_masked_in_leaves(mask):
  tx = gradtx.add_decayed_weights(0.1, mask=mask)
  state = tx.init(P)
  assert isinstance(state, gradtx.MaskedState)
  assert isinstance(state.inner_state, gradtx.AddDecayedWeightsState)
  u, _ = tx.update(G, state, P)
  np.testing.assert_allclose(u["w"], [[0.2, -0.1]], rtol=1e-6)
  np.testing.assert_array_equal(u["b"], G["b"])


def test_mask_structure_mismatch_raises_naming_mask():
  tx = gradtx.add_decayed_weights(0.1, mask={"w": True, "x": False})
  with pytest.raises(ValueError, match="mask"):
    tx.init(P)


def test_none_updates_and_dtypes():
  p = {"w": jnp.ones(2, jnp.bfloat16), "f": jnp.ones(1, jnp.bfloat16)}
  tx = gradtx.add_decayed_weights(jnp.asarray(0.5, jnp.float32))
  u, _ = tx.update({"w": jnp.ones(2, jnp.bfloat16), "f": None}, tx.init(p), p)
  assert u["f"] is None and u["w"].dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(u["w"], np.float32), [1.5, 1.5])


def test_traced_weight_decay_under_vmap():
  def f(wd):
    tx = gradtx.add_decayed_weights(wd)
    return tx.update(G, tx.init(P), P)[0]["b"]

  np.testing.assert_allclose(jax.vmap(f)(jnp.asarray([0.0, 1.0])), [[0.2], [0.7]], rtol=1e-6)


@pytest.mark.parametrize("value,exc,match", [
    (-0.1, ValueError, r"weight_decay must be in \[0, inf\]"),
    ("0.1", TypeError, "weight_decay"),
    (True, TypeError, "weight_decay"),
    (float("nan"), ValueError, "weight_decay must be finite"),
    (jnp.ones(2), ValueError, "weight_decay.*jax.vmap"),
])
def test_validation(value, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.add_decayed_weights(value)


def test_none_updates_pass_through_as_optax():
  """optax's own unit test: `add_decayed_weights(0.1).update(None, state, params)` returns None;
  a None update leaf (or subtree) stays None and the other leaves are decayed."""
  w = (jnp.ones(2), {"a": jnp.ones(2), "b": jnp.full(2, 2.0)})
  tx = gradtx.add_decayed_weights(0.1)
  assert tx.update(None, tx.init(w), w)[0] is None
  assert optax.add_decayed_weights(0.1).update(None, 0, w)[0] is None
  updates = (None, {"a": jnp.ones(2), "b": None})
  ours = tx.update(updates, tx.init(w), w)[0]
  theirs = optax.add_decayed_weights(0.1).update(updates, optax.EmptyState(), w)[0]
  assert ours[0] is None and ours[1]["b"] is None
  jax.tree.map(np.testing.assert_array_equal, ours, theirs)
  with pytest.raises(ValueError, match="structure"):
    tx.update({"x": jnp.ones(2)}, tx.init(w), w)
