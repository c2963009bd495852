"""Eager calls of gradtx's own chains and of apply_updates compile themselves (gradtx/_eager.py).

The behaviour that matters: the numbers are those of the jitted step (large trees compile, small
ones stay eager); chains holding a user's transformation stay eager (its Python code sees concrete values on every call); under jit, vmap
and grad the plain function runs; bad input still raises where the user made the mistake.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import _eager


def _tree(n, seed=0):
  rng = np.random.default_rng(seed)
  return {f"w{i:02d}": jnp.asarray(rng.standard_normal(3), jnp.float32) for i in range(n)}


def _steps(tx, params, grads, jit):
  state = tx.init(params)
  update = jax.jit(tx.update) if jit else tx.update
  apply = jax.jit(gradtx.apply_updates) if jit else gradtx.apply_updates
  for g in grads:
    u, state = update(g, state, params)
    params = apply(params, u)
  return params, state


def _big_leaf(seed=0):
  return {"w": jnp.asarray(np.random.default_rng(seed).standard_normal(_eager.MANY_ELEMENTS),
                           jnp.float32)}


@pytest.mark.parametrize("make", [lambda s: _tree(3, s), lambda s: _tree(20, s), _big_leaf],
                         ids=["small-tree-eager", "many-leaves-compiled", "big-leaf-compiled"])
def test_eager_steps_equal_jitted_steps(make):
  params = make(0)
  grads = [make(k + 1) for k in range(3)]
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adamw(0.1, weight_decay=0.1))
  assert hasattr(tx.update, "__wrapped__")  # gradtx's own chain: compiled when eager
  eager = _steps(tx, params, grads, jit=False)
  jitted = _steps(tx, params, grads, jit=True)
  for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_chain_with_a_user_transformation_stays_eager():
  seen = []

  def record(updates, state, params=None):
    seen.append(float(updates["w00"][0]))  # needs a concrete value: fails under jit
    return updates, state

  user = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), record)
  tx = gradtx.chain(user, gradtx.adam(0.1))
  assert not hasattr(tx.update, "__wrapped__")
  params = _tree(20)
  state = tx.init(params)
  for k in range(3):
    _, state = tx.update(jax.tree.map(lambda x: x + k, params), state, params)
  np.testing.assert_allclose(seen, [float(params["w00"][0]) + k for k in range(len(seen))])
  assert len(seen) == 3


def test_under_vmap_and_grad_the_plain_function_runs():
  params = _tree(20)

  def loss_after_step(lr):
    tx = gradtx.sgd(lr, momentum=0.9)
    u, _ = tx.update(params, tx.init(params), params)
    return sum(jnp.sum(x) for x in jax.tree.leaves(gradtx.apply_updates(params, u)))

  total = sum(float(jnp.sum(x)) for x in jax.tree.leaves(params))
  np.testing.assert_allclose(jax.grad(loss_after_step)(0.5), -total, rtol=1e-5)
  lrs = jnp.asarray([0.0, 0.5])
  np.testing.assert_allclose(jax.vmap(loss_after_step)(lrs), [total, total - 0.5 * total],
                             rtol=1e-5)


def test_apply_updates_many_leaves_eager_and_integer_leaf_still_raises():
  params = _tree(20)
  updates = jax.tree.map(lambda x: -x, params)
  out = gradtx.apply_updates(params, updates)  # 20 leaves: the compiled path
  for x in jax.tree.leaves(out):
    np.testing.assert_array_equal(np.asarray(x), 0.0)
  params["step"] = jnp.zeros(3, jnp.int32)
  updates["step"] = jnp.ones(3, jnp.float32)
  with pytest.raises(TypeError, match=r"params\['step'\] has dtype int32"):
    gradtx.apply_updates(params, updates)
