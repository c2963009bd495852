"""Tests for gradtx/conditional.py beyond the generic registry tests: optax parity of the two
wrappers with adam inside (the combinations the registry does not run), the inner state standing
still on skipped steps, eager == jit, extra-argument forwarding, the saturating step counter,
bfloat16, errors, and `stateless_with_tree_map`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from trees import make_grads, make_params
from gradtx.base import stateless_with_tree_map
from gradtx.transforms.conditional import ConditionallyMaskState, ConditionallyTransformState, conditionally_mask, conditionally_transform

STEPS = 12
REF_ADAM = functools.partial(ref.adam, learning_rate=0.1)


def every_third_step(step):
  return step % 3 == 0


def from_step_5(step):
  return step >= 5


def run(tx, grads, jit=True, **extra):
  """Applies `tx` over `grads`; returns the updates and the states after each step."""
  params = make_params()
  state = tx.init(params)
  step = jax.jit(tx.update) if jit else tx.update
  updates, states = [], []
  for g in grads:
    u, state = step(g, state, params, **extra)
    params = gradtx.apply_updates(params, u)
    updates.append(u)
    states.append(state)
  return updates, states


def assert_trees(a, b, rtol=1e-6, atol=1e-7, what=""):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
      np.testing.assert_array_equal(x, y, err_msg=f"{what} leaf {i}")
    else:
      np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol,
                                 atol=atol, err_msg=f"{what} leaf {i}")


def leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


# (ours, optax's, condition, mask): the registry runs transform/every_third_step and
# mask/from_step_5; these are the other two combinations.
CASES = [
    (conditionally_transform, optax.conditionally_transform, from_step_5, False),
    (conditionally_mask, optax.conditionally_mask, every_third_step, True),
]


@pytest.mark.parametrize("ours, theirs, cond, mask", CASES,
                         ids=["transform-from_step_5", "mask-every_third_step"])
def test_matches_optax_numpy_and_skips_inner_state(ours, theirs, cond, mask):
  grads = make_grads(steps=STEPS)
  tx = ours(gradtx.adam(0.1), cond)
  got, states = run(tx, grads)
  want, ostates = run(theirs(optax.adam(0.1), cond), grads)
  numpy = ref.conditionally_apply(leaves64(make_params()), [leaves64(g) for g in grads],
                                  REF_ADAM, cond, mask=mask)
  applied = 0
  for t, (u, w, n, s, o) in enumerate(zip(got, want, numpy, states, ostates)):
    assert_trees(u, w, what=f"optax step {t}")
    assert_trees(u, n, 1e-5, 1e-6, what=f"numpy step {t}")
    assert type(s).__name__ == type(o).__name__ and s._fields == o._fields
    assert s.step.dtype == jnp.int32 and int(s.step) == int(o.step) == t + 1
    adam, oadam = s.inner_state[0], o.inner_state[0]
    assert_trees((adam.count, adam.mu, adam.nu), (oadam.count, oadam.mu, oadam.nu),
                 what=f"adam state step {t}")
    applied += bool(cond(t))
    assert int(adam.count) == applied  # the inner state advanced on applied steps only
    if not cond(t):
      assert_trees(u, jax.tree.map(jnp.zeros_like, grads[t]) if mask else grads[t], 0, 0)
      if t > 0:
        assert_trees(s.inner_state, states[t - 1].inner_state, 0, 0, f"skipped step {t}")
  assert 0 < applied < STEPS
  # Eagerly, a concrete step picks one branch without lax.cond: same numbers.
  eager, estates = run(tx, grads[:4], jit=False)
  assert_trees(eager, got[:4], what="eager updates")
  assert_trees(estates[-1], states[3], what="eager state")


def _scale_by_extra_arg():
  """An inner transformation that needs the extra keyword argument `factor`: u = factor g."""
  def update(updates, state, params=None, *, factor, **extra_args):
    del params, extra_args
    return jax.tree.map(lambda g: factor * g, updates), state
  return gradtx.GradientTransformation(gradtx.init_empty_state, update)


@pytest.mark.parametrize("wrapper", [conditionally_transform, conditionally_mask])
def test_extra_args_forwarding(wrapper):
  g = {"w": jnp.ones(2)}
  # forward_extra_args: the condition reads `apply`; the inner always gets `factor`.
  tx = wrapper(_scale_by_extra_arg(), lambda step, *, apply, **kw: apply, forward_extra_args=True)
  state = tx.init(g)
  u, state = tx.update(g, state, factor=3.0, apply=True)
  assert_trees(u, {"w": 3.0 * jnp.ones(2)}, 0, 0)
  u, state = jax.jit(tx.update)(g, state, factor=3.0, apply=jnp.asarray(False))
  assert_trees(u, {"w": (0.0 if wrapper is conditionally_mask else 1.0) * jnp.ones(2)}, 0, 0)
  assert int(state.step) == 2
  # Without it, the condition gets the step alone, and an optax inner gets no extra arguments.
  tx = wrapper(optax.scale(2.0), lambda step: step < 1)
  u, _ = tx.update(g, tx.init(g), factor=3.0)
  assert_trees(u, {"w": 2.0 * jnp.ones(2)}, 0, 0)


@pytest.mark.parametrize("wrapper, state_cls",
                         [(conditionally_transform, ConditionallyTransformState),
                          (conditionally_mask, ConditionallyMaskState)])
def test_step_saturates_at_int32_max(wrapper, state_cls):
  g = {"w": jnp.ones(2)}
  tx = wrapper(gradtx.trace(0.5), lambda step: step % 2 == 1)
  state = tx.init(g)
  assert isinstance(state, state_cls)
  imax = jnp.iinfo(jnp.int32).max
  state = state._replace(step=jnp.asarray(imax, jnp.int32))
  u, state = tx.update(g, state)
  assert int(state.step) == imax and state.step.dtype == jnp.int32
  assert_trees(u, g, 0, 0)  # imax is odd: applied, the first trace step is g itself


def test_bfloat16_keeps_dtypes_and_state_signature():
  # Traced abstractly (jax.eval_shape), so both lax.cond branches must agree.
  params = make_params(jnp.bfloat16)
  for wrapper in (conditionally_transform, conditionally_mask):
    tx = wrapper(optax.adam(0.1), every_third_step)
    state0 = state = jax.eval_shape(tx.init, params)
    for g in make_grads(steps=2, dtype=jnp.bfloat16):
      u, state = jax.eval_shape(tx.update, g, state, params)
      assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}
      assert jax.tree.structure(state) == jax.tree.structure(state0)
      assert [(x.shape, x.dtype) for x in jax.tree.leaves(state)] == [
          (x.shape, x.dtype) for x in jax.tree.leaves(state0)]


@pytest.mark.parametrize("wrapper", [conditionally_transform, conditionally_mask])
def test_bad_arguments_raise(wrapper):
  fn = wrapper.__name__
  with pytest.raises(TypeError, match="inner"):
    wrapper(gradtx.adam, every_third_step)
  with pytest.raises(TypeError, match="should_transform_fn"):
    wrapper(gradtx.adam(0.1), 3)
  with pytest.raises(TypeError, match="forward_extra_args"):
    wrapper(gradtx.adam(0.1), every_third_step, forward_extra_args=1)
  g = {"w": jnp.ones(2)}
  for cond, error in ((lambda step: jnp.ones(2, bool), ValueError),
                      (lambda step: 0.5 * step, TypeError)):
    tx = wrapper(gradtx.scale(2.0), cond)
    with pytest.raises(error, match=f"{fn}: should_transform_fn"):
      tx.update(g, tx.init(g))
  # An inner that changes the tree structure, and mismatched trees, raise even on skipped steps.
  bad_inner = gradtx.stateless(lambda u, p: {"v": u["w"]})
  for step in (0, 1):
    tx = wrapper(bad_inner, lambda s: s == 0)
    state = tx.init(g)._replace(step=jnp.asarray(step, jnp.int32))
    with pytest.raises(ValueError, match="structure of inner's updates"):
      tx.update(g, state)
    tx = wrapper(gradtx.adam(0.1), lambda s: s == 0)
    state = tx.init(g)._replace(step=jnp.asarray(step, jnp.int32))
    with pytest.raises(ValueError, match="structure"):
      tx.update({"w": jnp.ones(2), "b": jnp.ones(1)}, state)


def test_stateless_with_tree_map_matches_optax():
  params, g = make_params(), make_grads(steps=1)[0]
  f = lambda u, p: u + (0.0 if p is None else 0.1 * p)  # noqa: E731
  tx, otx = stateless_with_tree_map(f), optax.stateless_with_tree_map(f)
  state = tx.init(params)
  assert state == gradtx.EmptyState()
  for p in (params, None):
    u, new_state = tx.update(g, state, p, some_unknown_argument=1.0)
    assert_trees(u, otx.update(g, otx.init(params), p)[0], 0, 0)
    assert jax.tree.structure(u) == jax.tree.structure(g) and new_state == state
  u, _ = tx.update({"w": None, "v": jnp.ones(1)}, state, {"w": jnp.ones(1), "v": jnp.ones(1)})
  assert u["w"] is None and np.allclose(u["v"], 1.1)
  with pytest.raises(ValueError, match="structure"):
    tx.update(g, state, {"a": params["a"]})
  with pytest.raises(TypeError, match="stateless_with_tree_map: f"):
    stateless_with_tree_map(None)


@pytest.mark.parametrize("wrapper", [conditionally_transform, conditionally_mask])
def test_vmap_over_inner_learning_rate_equals_loop(wrapper):
  params, grads = make_params(), make_grads(6)
  lrs = [0.01, 0.1, 0.3]

  def train(lr):
    tx = wrapper(gradtx.adam(lr), every_third_step)
    p, state = params, tx.init(params)
    for g in grads:
      u, state = tx.update(g, state, p)
      p = gradtx.apply_updates(p, u)
    return p

  batched = jax.jit(jax.vmap(train))(jnp.asarray(lrs, jnp.float32))
  for i, lr in enumerate(lrs):
    single = jax.jit(train)(jnp.float32(lr))
    assert_trees(jax.tree.map(lambda x: x[i], batched), single, rtol=1e-6, atol=1e-7,
                 what=f"lr={lr}")
