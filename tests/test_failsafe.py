"""Tests for gradtx/failsafe.py: apply_if_finite against optax, fault injection, give-up rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import STEPS, make_grads, make_params
from gradtx.transforms.failsafe import ApplyIfFiniteState, apply_if_finite


def poison(g, bad, leaf=1):
  """`g` with one element of one leaf replaced by `bad` (NaN or +-Inf)."""
  leaves, treedef = jax.tree.flatten(g)
  leaves[leaf] = leaves[leaf].reshape(-1).at[0].set(bad).reshape(leaves[leaf].shape)
  return jax.tree.unflatten(treedef, leaves)


def run(tx, grads, jit=True, **extra):
  params = make_params()
  state = tx.init(params)
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, params, **extra)
    params = gradtx.apply_updates(params, u)
    out.append(u)
  return out, state, params


def assert_trees(a, b, rtol=1e-6, atol=1e-7, equal_nan=False, what=""):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
      np.testing.assert_array_equal(x, y, err_msg=f"{what} leaf {i}")
    else:
      np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan,
                                 err_msg=f"{what} leaf {i}")


# NaN at 3, Inf at 7 and 8, -Inf at 12; NaN at 16, 17, 18 (three in a row: with
# max_consecutive_errors=2 the third is applied, after which adam's moments are NaN).
_BAD = {3: jnp.nan, 7: jnp.inf, 8: jnp.inf, 12: -jnp.inf, 16: jnp.nan, 17: jnp.nan, 18: jnp.nan}


def _faulty_grads():
  return [poison(g, _BAD[i], leaf=i % 4) if i in _BAD else g for i, g in enumerate(make_grads())]


def test_matches_optax_over_20_steps():
  grads = _faulty_grads()
  got, gstate, _ = run(apply_if_finite(gradtx.adam(0.1), 2), grads)
  want, ostate, _ = run(optax.apply_if_finite(optax.adam(0.1), 2), grads)
  for i, (u, w) in enumerate(zip(got, want)):
    assert_trees(u, w, rtol=1e-5, atol=1e-6, equal_nan=True, what=f"updates step {i}")
  for field in ("notfinite_count", "last_finite", "total_notfinite"):
    assert_trees(getattr(gstate, field), getattr(ostate, field), what=field)
  assert int(gstate.total_notfinite) == len(_BAD)
  assert int(gstate.notfinite_count) == 0 and bool(gstate.last_finite)
  g_adam, o_adam = gstate.inner_state[0], ostate.inner_state[0]
  for field in ("count", "mu", "nu"):
    assert_trees(getattr(g_adam, field), getattr(o_adam, field), rtol=1e-5, equal_nan=True,
                 what=field)
  # The give-up at step 18 made adam's moments NaN, in both libraries.
  assert any(np.isnan(np.asarray(x)).any() for x in jax.tree.leaves(g_adam.mu))


def test_eager_equals_jit():
  grads = _faulty_grads()[2:5]  # a NaN step between two finite ones (eager lax.cond is slow)
  tx = apply_if_finite(gradtx.adam(0.1), 2)
  eager, estate, _ = run(tx, grads, jit=False)
  jitted, jstate, _ = run(tx, grads)
  assert_trees(eager, jitted, what="updates")
  assert_trees(estate, jstate, what="state")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skipped_steps_are_as_if_absent(seed):
  rng = np.random.default_rng(seed)
  grads = make_grads(STEPS, seed=seed + 10)
  bad_steps = sorted(rng.choice(STEPS, size=6, replace=False).tolist())
  faulty = [poison(g, [jnp.nan, jnp.inf, -jnp.inf][int(rng.integers(3))],
                   leaf=int(rng.integers(4))) if i in bad_steps else g
            for i, g in enumerate(grads)]
  updates, state, params = run(apply_if_finite(gradtx.adam(0.05), STEPS), faulty)
  clean = [g for i, g in enumerate(grads) if i not in bad_steps]
  _, want_state, want_params = run(gradtx.adam(0.05), clean)
  assert_trees(params, want_params, what="params")
  assert_trees(state.inner_state, want_state, what="inner state")
  assert int(state.total_notfinite) == len(bad_steps)
  for i in bad_steps:
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(updates[i]))


def test_max_consecutive_errors_gives_up_after_that_many():
  tx = apply_if_finite(gradtx.sgd(1.0), max_consecutive_errors=3)
  state = tx.init(jnp.zeros(2))
  nan = jnp.asarray([1.0, jnp.nan])
  for expect in (1, 2, 3):
    u, state = tx.update(nan, state)
    assert u.tolist() == [0.0, 0.0]
    assert int(state.notfinite_count) == expect and not bool(state.last_finite)
  u, state = tx.update(nan, state)  # the 4th in a row is applied
  assert np.isnan(np.asarray(u)).any() and int(state.notfinite_count) == 4
  u, state = tx.update(jnp.ones(2), state)  # a finite step resets the run, not the total
  assert u.tolist() == [-1.0, -1.0]
  assert int(state.notfinite_count) == 0 and bool(state.last_finite)
  assert int(state.total_notfinite) == 4


def test_zero_max_consecutive_errors_applies_everything():
  tx = apply_if_finite(gradtx.scale(2.0), max_consecutive_errors=0)
  u, state = tx.update(jnp.asarray([1.0, jnp.inf]), tx.init(jnp.zeros(2)))
  assert u.tolist() == [2.0, float("inf")]
  assert int(state.total_notfinite) == 1


def test_state_structure_dtypes_and_no_recompile():
  tx = apply_if_finite(gradtx.adam(0.1), 2)
  params = make_params()
  state = tx.init(params)
  assert isinstance(state, ApplyIfFiniteState)
  traces = []

  def step(g, s):
    traces.append(1)
    return tx.update(g, s, params)

  step = jax.jit(step)
  grads = _faulty_grads()[:5]
  for g in grads:
    u, new_state = step(g, state)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
      assert (a.shape, a.dtype) == (b.shape, b.dtype)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(g)):
      assert (a.shape, a.dtype) == (b.shape, b.dtype)
    state = new_state
  assert len(traces) == 1
  assert state.notfinite_count.dtype == jnp.int32
  assert state.total_notfinite.dtype == jnp.int32
  assert state.last_finite.dtype == jnp.bool_


def test_bfloat16_updates_keep_dtype():
  tx = apply_if_finite(gradtx.adam(0.1), 1)
  p = jnp.zeros(3, jnp.bfloat16)
  state = tx.init(p)
  for g in (jnp.ones(3, jnp.bfloat16), jnp.asarray([1, jnp.nan, 1], jnp.bfloat16)):
    u, state = jax.jit(tx.update)(g, state)
    assert u.dtype == jnp.bfloat16
  assert int(state.total_notfinite) == 1


def test_extra_args_reach_inner_that_accepts_them():
  inner = gradtx.chain(gradtx.sgd(1.0), gradtx.reduce_on_plateau(factor=0.5, patience=1))
  tx = apply_if_finite(inner, 1)
  state = tx.init(jnp.zeros(1))
  for loss in (1.0, 2.0):
    u, state = tx.update(jnp.ones(1), state, value=loss)
  assert u.tolist() == [-0.5]
  # optax transformations without **extra_args are called without them.
  tx = apply_if_finite(optax.sgd(1.0), 1)
  u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), value=1.0, unknown=3)
  assert u.tolist() == [-1.0]


def test_inside_optax_chain_and_wrapping_optax():
  tx = optax.chain(apply_if_finite(gradtx.adam(0.1), 2), optax.scale(1.0))
  g = make_grads(1)[0]
  u, _ = tx.update(poison(g, jnp.nan), tx.init(make_params()))
  assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(u))


def test_none_leaves_pass_through():
  tx = apply_if_finite(gradtx.scale(2.0), 1)
  params = {"w": jnp.ones(2), "frozen": None}
  u, _ = tx.update({"w": jnp.ones(2), "frozen": None}, tx.init(params))
  assert u["frozen"] is None and u["w"].tolist() == [2.0, 2.0]


def test_inner_must_be_a_transformation():
  with pytest.raises(TypeError, match="inner"):
    apply_if_finite(gradtx.adam, 2)


@pytest.mark.parametrize("bad, err", [(-1, ValueError), (1.5, TypeError), (True, TypeError),
                                      (np.ones(2, np.int32), ValueError)])
def test_max_consecutive_errors_is_checked(bad, err):
  with pytest.raises(err, match="max_consecutive_errors"):
    apply_if_finite(gradtx.adam(0.1), bad)


# --- zero_nans ---------------------------------------------------------------------------------


from state_audit import describe  # noqa: E402  (class names, fields, shapes, dtypes)


def test_zero_nans_matches_optax_over_20_steps():
  grads = _faulty_grads()
  got, gstate, _ = run(gradtx.chain(gradtx.zero_nans(), gradtx.scale(-0.1)), grads)
  want, ostate, _ = run(optax.chain(optax.zero_nans(), optax.scale(-0.1)), grads)
  assert describe(gstate) == describe(ostate)
  assert describe(gstate[0]) == describe(gradtx.zero_nans().init(make_params()))
  for i, (u, w) in enumerate(zip(got, want)):
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(w)):
      np.testing.assert_array_equal(a, b, err_msg=f"step {i}")  # infinities pass through
  for a, b in zip(jax.tree.leaves(gstate), jax.tree.leaves(ostate)):
    np.testing.assert_array_equal(a, b)
  assert not any(bool(x) for x in jax.tree.leaves(gstate[0].found_nan))  # step 19 is clean
  tx = gradtx.zero_nans()
  _, state = tx.update(grads[18], tx.init(make_params()))  # a NaN in leaf 18 % 4 = 2 only
  assert [bool(x) for x in jax.tree.leaves(state.found_nan)] == [False, False, True, False]


def test_zero_nans_eager_none_leaves_and_vmap():
  tx = gradtx.zero_nans()
  params = {"w": jnp.ones(2), "frozen": None}
  u, state = tx.update({"w": jnp.asarray([jnp.nan, 1.0], jnp.bfloat16), "frozen": None},
                       tx.init(params))
  assert u["frozen"] is None and u["w"].dtype == jnp.bfloat16 and u["w"].tolist() == [0.0, 1.0]
  assert bool(state.found_nan["w"]) and state.found_nan["frozen"] is None
  assert describe(state) == describe(optax.zero_nans().init(params))
  batch = jnp.asarray([[1.0, jnp.nan], [1.0, 2.0]])
  out, s = jax.vmap(lambda g: tx.update(g, tx.init(g)))(batch)
  np.testing.assert_array_equal(out, [[1.0, 0.0], [1.0, 2.0]])
  assert s.found_nan.tolist() == [True, False]


# --- skip_not_finite / skip_large_updates inside MultiSteps ------------------------------------


def _multisteps_run(ms, grads, params):
  state = ms.init(params)
  step = jax.jit(ms.update)
  out = []
  for g in grads:
    u, state = step(g, state, params)
    out.append(u)
  return out, state


@pytest.mark.parametrize("which", ["not_finite", "large"])
def test_skip_functions_in_multisteps_match_optax(which):
  import functools

  grads = _faulty_grads()
  grads = [jax.tree.map(lambda x, s=(10.0 if i % 5 == 1 else 1.0): s * x, g)
           for i, g in enumerate(grads)]  # every 5th step large, to trip skip_large_updates
  if which == "not_finite":
    mine, theirs = gradtx.skip_not_finite, optax.skip_not_finite
  else:
    mine = functools.partial(gradtx.skip_large_updates, max_squared_norm=100.0)
    theirs = functools.partial(optax.skip_large_updates, max_squared_norm=100.0)
  params = make_params()
  got, gstate = _multisteps_run(
      gradtx.MultiSteps(gradtx.adam(0.1), 3, should_skip_update_fn=mine), grads, params)
  want, ostate = _multisteps_run(
      optax.MultiSteps(optax.adam(0.1), 3, should_skip_update_fn=theirs), grads, params)
  # The skip state and the MultiSteps fields (the inner adam state's layout is adam's business).
  for field in ("mini_step", "gradient_step", "acc_grads", "skip_state"):
    assert describe(getattr(gstate, field)) == describe(getattr(ostate, field)), field
    assert_trees(getattr(gstate, field), getattr(ostate, field), rtol=1e-6, atol=1e-7,
                 what=field)
  # adam's arithmetic is fused differently under jit by the two libraries: float32 rounding.
  for i, (u, w) in enumerate(zip(got, want)):
    assert_trees(u, w, rtol=1e-6, atol=1e-7, what=f"updates step {i}")
  key = "num_not_finite" if which == "not_finite" else "norm_squared"
  assert set(gstate.skip_state) == {"should_skip", key}
  assert int(gstate.gradient_step) < STEPS // 3  # some micro-batches were skipped
  assert all(np.isfinite(np.asarray(x)).all() for u in got for x in jax.tree.leaves(u))


def test_skip_functions_direct_values_and_errors():
  g = {"a": jnp.asarray([1.0, jnp.inf, jnp.nan]), "b": jnp.asarray(2.0), "frozen": None}
  skip, info = gradtx.skip_not_finite(g, 0, None)
  oskip, oinfo = optax.skip_not_finite({"a": g["a"], "b": g["b"]}, 0, None)
  assert bool(skip) and int(info["num_not_finite"]) == 2 == int(oinfo["num_not_finite"])
  assert info["num_not_finite"].dtype == oinfo["num_not_finite"].dtype
  ok = {"a": jnp.asarray([3.0, 4.0])}
  for m, expect in ((25.0, True), (25.01, False)):
    skip, info = gradtx.skip_large_updates(ok, 0, None, m)
    oskip, oinfo = optax.skip_large_updates(ok, 0, None, m)
    assert bool(skip) == bool(oskip) == expect
    np.testing.assert_array_equal(info["norm_squared"], oinfo["norm_squared"])
  assert bool(gradtx.skip_large_updates({"a": jnp.asarray(jnp.nan)}, 0, None, 1.0)[0])
  with pytest.raises(ValueError, match="max_squared_norm"):
    gradtx.skip_large_updates(ok, 0, None, -1.0)
  assert gradtx.skip_not_finite is gradtx.transforms.skip_not_finite
  assert isinstance(gradtx.ShouldSkipUpdateFunction, type)
