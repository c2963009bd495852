"""Tests of gradtx/wrappers.py (`masked`) beyond the generic registry tests: callable and prefix
masks, the inner state built from masked-in leaves only (as optax), errors, extra arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

PARAMS = {"a": (jnp.ones(3), jnp.ones((2, 5))),
          "b": {"c": jnp.asarray(1.0), "d": jnp.ones((4, 1, 3))}}
EMPTY = gradtx.MaskedState(gradtx.EmptyState())


def _grads(seed=0):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), PARAMS)


def _check(updates, grads, transformed, factor):
  """Leaves in `transformed` (paths as tuples) are `factor * g`; the others are `g` exactly."""
  flat_u = dict(jax.tree_util.tree_flatten_with_path(updates)[0])
  for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    want = factor * g if path in transformed else g
    np.testing.assert_allclose(flat_u[path], want, rtol=1e-6, err_msg=str(path))


def _paths(*keys):
  k = jax.tree_util
  table = {"a0": (k.DictKey("a"), k.SequenceKey(0)), "a1": (k.DictKey("a"), k.SequenceKey(1)),
           "c": (k.DictKey("b"), k.DictKey("c")), "d": (k.DictKey("b"), k.DictKey("d"))}
  return {table[x] for x in keys}


def test_prefix_mask():
  tx = gradtx.masked(gradtx.scale(2.0), {"a": True, "b": False})
  g = _grads()
  u, _ = tx.update(g, tx.init(PARAMS))
  _check(u, g, _paths("a0", "a1"), 2.0)


def test_full_mask_and_callable_mask():
  full = {"a": (False, True), "b": {"c": False, "d": True}}
  fn = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
  g = _grads()
  for mask in (full, fn):
    tx = gradtx.masked(gradtx.scale(-3.0), mask)
    u, _ = jax.jit(tx.update)(g, tx.init(PARAMS))
    _check(u, g, _paths("a1", "d"), -3.0)


def test_masked_out_leaves_are_returned_unchanged_objects():
  g = {"w": jnp.ones(2), "odd": jnp.asarray([jnp.nan, jnp.inf])}
  tx = gradtx.masked(gradtx.clip(0.5), {"w": True, "odd": False})
  u, _ = tx.update(g, tx.init(g))
  assert u["odd"] is g["odd"]
  np.testing.assert_array_equal(u["w"], [0.5, 0.5])


def test_inner_sees_masked_nodes_and_its_state_matches_optax():
  mask = {"a": (True, False), "b": {"c": False, "d": True}}
  seen = []

  def spy_update(updates, state, params=None, **extra):
    seen.append(updates)
    return updates, state

  spy = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), spy_update)
  gradtx.masked(spy, mask).update(_grads(), EMPTY)
  assert isinstance(seen[0]["a"][1], gradtx.MaskedNode)
  assert isinstance(seen[0]["b"]["c"], gradtx.MaskedNode)
  assert len(jax.tree.leaves(seen[0])) == 2
  assert jax.tree.leaves(gradtx.MaskedNode()) == []

  ours = gradtx.masked(gradtx.trace(0.9), mask).init(PARAMS)
  theirs = optax.masked(optax.trace(0.9), mask).init(PARAMS)
  assert isinstance(ours, gradtx.MaskedState)
  # Same layout as optax's state: two MaskedNode placeholders, moments for the masked-in leaves.
  ours_def, theirs_def = (str(jax.tree.structure(t.inner_state.trace)) for t in (ours, theirs))
  assert ours_def.count("MaskedNode") == theirs_def.count("MaskedNode") == 2
  assert [x.shape for x in jax.tree.leaves(ours.inner_state.trace)] == [(3,), (4, 1, 3)]
  assert [x.shape for x in jax.tree.leaves(theirs.inner_state.trace)] == [(3,), (4, 1, 3)]


def test_stateful_inner_over_steps_matches_optax():
  mask = lambda p: {"a": (True, False), "b": True}
  ours, theirs = gradtx.masked(gradtx.trace(0.5), mask), optax.masked(optax.trace(0.5), mask)
  s, os_ = ours.init(PARAMS), theirs.init(PARAMS)
  for seed in range(3):
    g = _grads(seed)
    u, s = ours.update(g, s, PARAMS)
    ou, os_ = theirs.update(g, os_, PARAMS)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(ou)):
      np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("bad_mask", [{"a": True}, {"a": (True,), "b": False},
                                      {"a": True, "b": {"c": True, "x": False}}])
def test_mask_structure_mismatch_raises_and_shows_both_structures(bad_mask):
  tx = gradtx.masked(gradtx.scale(2.0), bad_mask)
  with pytest.raises(ValueError, match=r"(?s)structure of mask.*mask: PyTreeDef.*params: PyTree"):
    tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"(?s)mask.*updates: PyTreeDef"):
    tx.update(_grads(), EMPTY)


def test_callable_mask_mismatch_raises_at_update():
  tx = gradtx.masked(gradtx.scale(2.0), lambda p: {"a": True})
  with pytest.raises(ValueError, match="mask"):
    tx.update(_grads(), EMPTY)


def test_none_updates_pass_through():
  tx = gradtx.masked(gradtx.scale(2.0), {"w": True, "f": True, "o": False})
  p = {"w": jnp.ones(1), "f": jnp.ones(1), "o": jnp.ones(1)}
  u, _ = tx.update({"w": jnp.ones(1), "f": None, "o": jnp.ones(1)}, tx.init(p))
  assert u["f"] is None and float(u["w"][0]) == 2.0 and float(u["o"][0]) == 1.0


def test_params_are_masked_for_the_inner():
  tx = gradtx.masked(gradtx.add_decayed_weights(1.0), {"w": True, "b": False})
  p = {"w": jnp.ones(1), "b": jnp.ones(1)}
  u, _ = tx.update({"w": jnp.zeros(1), "b": jnp.zeros(1)}, tx.init(p), p)
  assert float(u["w"][0]) == 1.0 and float(u["b"][0]) == 0.0


def test_extra_args_are_forwarded_and_optionally_masked():
  got = {}

  def update(updates, state, params=None, **extra):
    got.update(extra)
    return updates, state

  inner = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), update)
  g = {"w": jnp.ones(1), "b": jnp.ones(1)}
  mask = {"w": True, "b": False}
  gradtx.masked(inner, mask).update(g, EMPTY, tag=g, other=3)
  assert got["tag"] is g and got["other"] == 3
  gradtx.masked(inner, mask, mask_compatible_extra_args=True).update(g, EMPTY, tag=g, other=3)
  assert isinstance(got["tag"]["b"], gradtx.MaskedNode) and got["other"] == 3


def test_optax_inner_without_extra_args():
  tx = gradtx.masked(optax.scale(2.0), {"w": True})
  u, _ = tx.update({"w": jnp.ones(1)}, tx.init({"w": jnp.ones(1)}), some_extra=1.0)
  assert float(u["w"][0]) == 2.0


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(inner=lambda u: u, mask={"w": True}), TypeError, "inner"),
    (dict(inner=gradtx.scale(1.0), mask=None), TypeError, "mask"),
    (dict(inner=gradtx.scale(1.0), mask={"w": 1}), TypeError, "mask leaves must be"),
    (dict(inner=gradtx.scale(1.0), mask={"w": "yes"}), TypeError, "mask"),
    (dict(inner=gradtx.scale(1.0), mask={"w": jnp.asarray([True, False])}), TypeError, "mask"),
    (dict(inner=gradtx.scale(1.0), mask={"w": True}, mask_compatible_extra_args=1), TypeError,
     "mask_compatible_extra_args"),
])
def test_validation(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.masked(**kwargs)


def test_callable_mask_must_return_bools():
  tx = gradtx.masked(gradtx.scale(1.0), lambda p: jax.tree.map(lambda x: x.ndim, p))
  with pytest.raises(TypeError, match="mask"):
    tx.init({"w": jnp.ones(2)})
