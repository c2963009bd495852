"""Tests for gradtx/layouts.py: flatten against optax and against the unflattened inner."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params
from gradtx.layouts import flatten


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
