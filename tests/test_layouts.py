"""Tests for gradtx/transforms/layouts.py: flatten against optax and against the unflattened inner."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params
from gradtx.transforms.layouts import flatten


def run(tx, grads, params=None, **extra):
  params = make_params() if params is None else params
  state = tx.init(params)
  step = jax.jit(tx.update)
  out = []
  for g in grads:
    u, state = step(g, state, params, **extra)
    params = gradtx.apply_updates(params, u)
    out.append(u)
  return out, state, params


def assert_trees(a, b, rtol=1e-6, atol=1e-7, what=""):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol,
                               atol=atol, err_msg=f"{what} leaf {i}")


def test_matches_optax_over_20_steps():
  grads = make_grads()
  got, gstate, _ = run(flatten(gradtx.adamw(0.1, weight_decay=0.1)), grads)
  want, ostate, _ = run(optax.flatten(optax.adamw(0.1, weight_decay=0.1)), grads)
  for i, (u, w) in enumerate(zip(got, want)):
    assert jax.tree.structure(u) == jax.tree.structure(w)
    assert_trees(u, w, what=f"updates step {i}")
  for field in ("count", "mu", "nu"):
    assert_trees(getattr(gstate[0], field), getattr(ostate[0], field), what=field)
  assert gstate[0].mu.shape == (3 + 10 + 1 + 12,)


def test_elementwise_inner_equals_unflattened():
  grads = make_grads(6)
  got, _, gparams = run(flatten(gradtx.adam(0.1)), grads)
  want, _, wparams = run(gradtx.adam(0.1), grads)
  assert_trees(gparams, wparams, rtol=1e-6, what="params")


def test_mixed_dtypes_keep_each_leaf_dtype_and_no_recompile():
  params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.zeros(3, jnp.float32)}
  tx = flatten(gradtx.adam(0.1))
  state = tx.init(params)
  step = jax.jit(tx.update)
  for _ in range(3):
    u, new_state = step(jax.tree.map(jnp.ones_like, params), state, params)
    assert u["w"].dtype == jnp.bfloat16 and u["b"].dtype == jnp.float32
    assert u["w"].shape == (2, 3) and u["b"].shape == (3,)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    state = new_state
  assert step._cache_size() == 1


def test_none_leaves_pass_through():
  tx = flatten(gradtx.scale(2.0))
  u, _ = tx.update({"w": jnp.ones(2), "frozen": None}, tx.init({"w": jnp.zeros(2)}))
  assert u["frozen"] is None and u["w"].tolist() == [2.0, 2.0]


def test_extra_args_reach_inner_that_accepts_them():
  tx = flatten(gradtx.chain(gradtx.sgd(1.0), gradtx.reduce_on_plateau(factor=0.5, patience=1)))
  state = tx.init(jnp.zeros(1))
  for loss in (1.0, 2.0):
    u, state = tx.update(jnp.ones(1), state, value=loss)
  assert u.tolist() == [-0.5]
  tx = flatten(optax.sgd(1.0))
  u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), value=1.0)
  assert u.tolist() == [-1.0]


def test_inner_must_be_a_transformation():
  with pytest.raises(TypeError, match="inner"):
    flatten(gradtx.adam)


def test_mismatched_params_structure_raises():
  tx = flatten(gradtx.adam(0.1))
  params = make_params()
  with pytest.raises(ValueError, match="params"):
    tx.update({"a": make_grads(1)[0]["a"]}, tx.init(params), params)


# --- group_leaves ---------------------------------------------------------------------------------

from gradtx.transforms import layouts  # noqa: E402
from gradtx.transforms.layouts import group_leaves  # noqa: E402


def _many_leaves(n=10, seed=0, big=None):
  rng = np.random.default_rng(seed)
  tree = {f"l{i:02d}": jnp.asarray(rng.standard_normal((i % 3 + 1, 2)), jnp.float32)
          for i in range(n)}
  tree["h"] = jnp.asarray(rng.standard_normal(3), jnp.bfloat16)
  tree["s"] = jnp.asarray(rng.standard_normal(()), jnp.float32)
  if big is not None:
    tree["big"] = jnp.asarray(rng.standard_normal(big), jnp.float32)
  return tree


@pytest.fixture
def small_groups(monkeypatch):
  # Exercise the packing rules on a cheap tree: 3 leaves per buffer, 16+ elements own a buffer.
  monkeypatch.setattr(layouts, "_GROUP_LEAVES", 3)
  monkeypatch.setattr(layouts, "_OWN_BUFFER_SIZE", 16)
  monkeypatch.setattr(layouts, "_OWN_BUFFER_SIZE_ACCELERATOR", 16)


@pytest.mark.parametrize("make", [
    lambda m: m.adam(0.1), lambda m: m.sgd(0.1, momentum=0.9),
    lambda m: m.chain(m.clip_by_global_norm(0.5), m.adamw(0.1, weight_decay=0.1))],
    ids=["adam", "momentum", "clip+adamw"])
def test_group_leaves_equals_ungrouped_and_optax(small_groups, make):
  params = _many_leaves(big=20)
  grads = [jax.tree.map(lambda x, k=k: (x * (k + 1) / 3).astype(x.dtype), params) for k in range(4)]
  tx = group_leaves(make(gradtx))
  state = tx.init(params)
  # "big" (20 elements) has a buffer of its own; the other 11 float32 leaves pack 3 to a buffer;
  # the bfloat16 leaf gets a buffer of its dtype.
  plan = layouts._plan(jax.tree.leaves(params))
  names = sorted(params)
  assert [(k, [names[i] for i in ix]) for k, ix in plan] == [
      ("float32_00000", ["big"]), ("float32_00001", ["l00", "l01", "l02"]),
      ("float32_00002", ["l03", "l04", "l05"]), ("float32_00003", ["l06", "l07", "l08"]),
      ("float32_00004", ["l09", "s"]), ("bfloat16_00000", ["h"])]
  assert jax.tree.leaves(state)  # the packed moments
  moments = [s for s in jax.tree.leaves(state, is_leaf=lambda x: hasattr(x, "_fields"))
             if isinstance(s, tuple) and any(isinstance(f, dict) for f in s)]
  first = next(f for f in moments[0] if isinstance(f, dict))
  assert sorted(first) == sorted(k for k, _ in plan)
  assert first["float32_00002"].shape == (6 + 2 + 4,)
  got = run_tree(tx, params, grads)
  for other in (make(gradtx), make(optax)):
    want = run_tree(other, params, grads)
    for u, w in zip(got, want):
      assert jax.tree.map(jnp.dtype, u) == jax.tree.map(jnp.dtype, w)
      # float32 leaves to rounding; the bfloat16 leaf to one bfloat16 ulp (clip+adamw's global
      # norm sums the buffers in another order).
      assert_trees({k: v for k, v in u.items() if k != "h"},
                   {k: v for k, v in w.items() if k != "h"}, rtol=2e-6, atol=1e-7)
      assert_trees(u["h"], w["h"], rtol=1e-2, atol=1e-3)


def run_tree(tx, params, grads, jit=True):
  state = tx.init(params)
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, params)
    params = gradtx.apply_updates(params, u)
    out.append(u)
  return out


def test_group_leaves_eager_equals_jit_and_keeps_none_leaves(small_groups):
  params = _many_leaves(n=5)
  grads = [jax.tree.map(lambda x: x * 0.5, params)]
  grads_none = [dict(grads[0], l00=None)]
  tx = group_leaves(gradtx.adam(0.1))
  assert_trees(run_tree(tx, params, grads, jit=False), run_tree(tx, params, grads))
  mask = {k: k != "l00" for k in params}
  masked = gradtx.masked(group_leaves(gradtx.adam(0.1)), mask)
  u = run_tree(masked, params, grads)[0]
  np.testing.assert_array_equal(u["l00"], grads[0]["l00"])  # masked out: passed through
  u_none = run_tree(group_leaves(gradtx.sgd(1.0)), dict(params, l00=None), grads_none)[0]
  assert u_none["l00"] is None


def test_group_leaves_vmaps_over_the_learning_rate():
  params = _many_leaves(n=4)

  def one(lr):
    tx = group_leaves(gradtx.adam(lr))
    return tx.update(params, tx.init(params), params)[0]["l01"]

  lrs = jnp.asarray([0.1, 0.2, 0.5])
  np.testing.assert_allclose(jax.vmap(one)(lrs), np.stack([one(lr) for lr in lrs]), rtol=1e-6)


def test_group_leaves_rejects_a_factory():
  with pytest.raises(TypeError, match="inner must be a GradientTransformation"):
    group_leaves(gradtx.adam)
