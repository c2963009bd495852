"""Tests for gradtx/accumulation.py: MultiSteps against optax, big-batch equivalence, schedules;
apply_every against optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params
from gradtx.transforms.accumulation import MultiSteps, MultiStepsState


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


def assert_trees(a, b, rtol=1e-5, atol=1e-6, what=""):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype, f"{what} leaf {i}: {x.dtype} != {y.dtype}"
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
      np.testing.assert_array_equal(x, y, err_msg=f"{what} leaf {i}")
    else:
      np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"{what} leaf {i}")


def _nan_at(grads, steps):
  out = []
  for i, g in enumerate(grads):
    if i in steps:
      g = dict(g, b=dict(g["b"], c=jnp.asarray(jnp.nan, jnp.float32)))
    out.append(g)
  return out


_K_SCHEDULE = lambda step: jnp.where(step < 2, 2, 3)  # noqa: E731

_CASES = {
    "k3-mean": dict(every_k_schedule=3),
    "k4-sum": dict(every_k_schedule=4, use_grad_mean=False),
    "k-schedule": dict(every_k_schedule=_K_SCHEDULE),
    "k1": dict(every_k_schedule=1),
    "skip-not-finite": dict(every_k_schedule=3, should_skip_update_fn=optax.skip_not_finite),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_matches_optax_over_20_steps(case):
  kwargs = _CASES[case]
  grads = make_grads()
  if "should_skip_update_fn" in kwargs:
    grads = _nan_at(grads, {4, 9, 10})
  got, gstate, _ = run(MultiSteps(gradtx.adam(0.1), **kwargs), grads)
  want, ostate, _ = run(optax.MultiSteps(optax.adam(0.1), **kwargs), grads)
  for i, (u, w) in enumerate(zip(got, want)):
    assert_trees(u, w, what=f"updates step {i}")
  assert isinstance(gstate, MultiStepsState)
  for field in MultiStepsState._fields:
    if field != "inner_opt_state":
      assert_trees(getattr(gstate, field), getattr(ostate, field), what=field)
  g_adam, o_adam = gstate.inner_opt_state[0], ostate.inner_opt_state[0]
  for field in ("count", "mu", "nu"):
    assert_trees(getattr(g_adam, field), getattr(o_adam, field), what=field)


def _loss(w, x, y):
  return jnp.mean((x @ w["w"] + w["b"] - y) ** 2)


@pytest.mark.parametrize("k", [2, 4])
def test_k_micro_batches_equal_one_big_batch(k):
  rng = np.random.default_rng(3)
  params = {"w": jnp.asarray(rng.normal(size=(5, 2)), jnp.float32), "b": jnp.zeros(2)}
  batches = [(jnp.asarray(rng.normal(size=(8 * k, 5)), jnp.float32),
              jnp.asarray(rng.normal(size=(8 * k, 2)), jnp.float32)) for _ in range(4)]
  grad = jax.jit(jax.grad(_loss))

  big_tx = gradtx.adam(0.05)
  big_params, big_state = params, big_tx.init(params)
  for x, y in batches:
    u, big_state = big_tx.update(grad(big_params, x, y), big_state, big_params)
    big_params = gradtx.apply_updates(big_params, u)

  tx = MultiSteps(gradtx.adam(0.05), every_k_schedule=k)
  step = jax.jit(tx.update)
  acc_params, state = params, tx.init(params)
  for x, y in batches:
    for xs, ys in zip(jnp.split(x, k), jnp.split(y, k)):
      u, state = step(grad(acc_params, xs, ys), state, acc_params)
      acc_params = gradtx.apply_updates(acc_params, u)
    assert bool(tx.has_updated(state))
  assert_trees(acc_params, big_params, what="params")
  assert_trees(state.inner_opt_state, big_state, what="adam state")
  assert int(state.gradient_step) == len(batches)


def test_every_k_schedule_changes_the_accumulation_length():
  tx = MultiSteps(gradtx.sgd(1.0), every_k_schedule=_K_SCHEDULE)
  state = tx.init(jnp.zeros(1))
  step = jax.jit(tx.update)
  emitted = []
  for i in range(13):
    u, state = step(jnp.asarray([float(i)]), state)
    emitted.append(bool(tx.has_updated(state)))
    if emitted[-1]:
      assert float(u[0]) != 0.0
    else:
      assert float(u[0]) == 0.0
  # k = 2 for the first two updates, then 3: emit after calls 2, 4, 7, 10, 13.
  assert [i + 1 for i, e in enumerate(emitted) if e] == [2, 4, 7, 10, 13]
  # The 5th update is the mean of calls 11..13, i.e. grads 10, 11, 12.
  assert float(u[0]) == pytest.approx(-11.0)


def test_jit_no_recompile_and_state_invariants():
  tx = MultiSteps(gradtx.adam(0.1), every_k_schedule=3)
  params = make_params()
  state = tx.init(params)
  traces = []

  def step(g, s):
    traces.append(1)
    return tx.update(g, s, params)

  step = jax.jit(step)
  for g in make_grads(7):
    u, new_state = step(g, state)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
      assert (a.shape, a.dtype) == (b.shape, b.dtype)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(g)):
      assert (a.shape, a.dtype) == (b.shape, b.dtype)
    state = new_state
  assert len(traces) == 1
  assert state.mini_step.dtype == jnp.int32 and state.gradient_step.dtype == jnp.int32


def test_eager_equals_jit():
  grads = make_grads(2)  # one hold, one emit (eager lax.cond is slow)
  tx = MultiSteps(gradtx.adam(0.1), every_k_schedule=2)
  eager, estate, _ = run(tx, grads, jit=False)
  jitted, jstate, _ = run(tx, grads)
  assert_trees(eager, jitted, what="updates")
  assert_trees(estate, jstate, what="state")


def test_bfloat16_grads_keep_dtype_and_accumulate_in_float32():
  tx = MultiSteps(gradtx.adam(0.1), every_k_schedule=2)
  p = jnp.zeros(3, jnp.bfloat16)
  state = tx.init(p)
  assert state.acc_grads.dtype == jnp.float32
  for _ in range(2):
    u, state = jax.jit(tx.update)(jnp.ones(3, jnp.bfloat16), state)
    assert u.dtype == jnp.bfloat16
  assert bool(tx.has_updated(state))


def test_gradient_transformation_in_chain_and_extra_args():
  inner = gradtx.chain(gradtx.sgd(1.0), gradtx.reduce_on_plateau(factor=0.5, patience=1))
  ms = MultiSteps(inner, every_k_schedule=2)
  tx = gradtx.chain(ms.gradient_transformation(), gradtx.scale(1.0))
  assert isinstance(ms.gradient_transformation(), gradtx.GradientTransformation)
  assert ms.inner_opt is inner
  state = tx.init(jnp.zeros(1))
  outs = []
  for loss in (1.0, 1.0, 2.0, 2.0):  # the inner sees value=1.0, then value=2.0 (no improvement)
    u, state = tx.update(jnp.ones(1), state, value=loss)
    outs.append(u.tolist())
  assert outs == [[0.0], [-1.0], [0.0], [-0.5]]
  # an optax inner without **extra_args is called without them
  ms = MultiSteps(optax.sgd(1.0), every_k_schedule=1)
  u, _ = ms.update(jnp.ones(1), ms.init(jnp.zeros(1)), value=1.0)
  assert u.tolist() == [-1.0]


def test_skipped_micro_batch_is_as_if_absent():
  grads = make_grads(9)
  faulty = _nan_at(grads, {2, 5})
  tx = MultiSteps(gradtx.adam(0.1), every_k_schedule=3,
                  should_skip_update_fn=optax.skip_not_finite)
  _, state, params = run(tx, faulty)
  _, want_state, want_params = run(MultiSteps(gradtx.adam(0.1), every_k_schedule=3),
                                   [g for i, g in enumerate(grads) if i not in {2, 5}])
  assert_trees(params, want_params, what="params")
  assert_trees(state.inner_opt_state, want_state.inner_opt_state, what="inner")
  assert int(state.skip_state["num_not_finite"]) == 0


def test_mismatched_updates_tree_raises():
  tx = MultiSteps(gradtx.adam(0.1), every_k_schedule=2)
  with pytest.raises(ValueError, match="updates"):
    tx.update({"x": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


@pytest.mark.parametrize("kwargs, err, name", [
    (dict(opt=gradtx.adam, every_k_schedule=2), TypeError, "opt"),
    (dict(every_k_schedule=0), ValueError, "every_k_schedule"),
    (dict(every_k_schedule=1.5), TypeError, "every_k_schedule"),
    (dict(every_k_schedule=True), TypeError, "every_k_schedule"),
    (dict(every_k_schedule=2, use_grad_mean="yes"), TypeError, "use_grad_mean"),
    (dict(every_k_schedule=2, should_skip_update_fn=3), TypeError, "should_skip_update_fn"),
    (dict(every_k_schedule=2, accumulator_dtype=jnp.int32), ValueError, "accumulator_dtype"),
])
def test_arguments_are_checked(kwargs, err, name):
  kwargs = {"opt": gradtx.adam(0.1), **kwargs}
  with pytest.raises(err, match=name):
    MultiSteps(**kwargs)


def test_should_skip_update_fn_must_return_a_bool_scalar():
  tx = MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (jnp.zeros(2), ()))
  with pytest.raises(ValueError, match="should_skip_update_fn"):
    tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))


# --- apply_every ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_apply_every_matches_optax_over_20_steps(k):
  grads = make_grads()
  got, state, _ = run(gradtx.apply_every(k), grads)
  want, ostate, _ = run(optax.apply_every(k), grads)
  for step, (u, w) in enumerate(zip(got, want)):
    for x, y in zip(jax.tree.leaves(u), jax.tree.leaves(w)):  # same arithmetic: bit-identical
      np.testing.assert_array_equal(x, y, err_msg=f"step {step}")
  assert type(state).__name__ == type(ostate).__name__ == "ApplyEvery"
  assert state._fields == ostate._fields == ("count", "grad_acc")
  assert state.count.dtype == jnp.int32
  for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(ostate)):
    assert x.shape == y.shape and x.dtype == y.dtype
    np.testing.assert_array_equal(x, y)


def test_apply_every_sums_k_steps_eager_equals_jit():
  grads = make_grads(steps=6)
  eager, state, _ = run(gradtx.apply_every(3), grads, jit=False)
  jitted, _, _ = run(gradtx.apply_every(3), grads)
  for a, b in zip(eager, jitted):
    assert_trees(a, b, rtol=0, atol=0)
  want = jax.tree.map(lambda *g: sum(g), *grads[3:6])
  assert_trees(eager[5], want, rtol=1e-6)
  assert float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(eager[4]))) == 0.0
  assert int(state.count) == 0


def test_apply_every_vmap_over_k_equals_a_loop():
  params, grads = make_params(), make_grads(steps=4)

  def last_update(k):
    tx = gradtx.apply_every(k)
    state = tx.init(params)
    for g in grads:
      u, state = tx.update(g, state, params)
    return u

  ks = jnp.asarray([1, 2, 4], jnp.int32)
  batched = jax.vmap(last_update)(ks)
  for i, k in enumerate([1, 2, 4]):
    assert_trees(jax.tree.map(lambda x: x[i], batched), last_update(k), rtol=0, atol=0)


def test_apply_every_none_updates_and_dtype():
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  tx = gradtx.apply_every(2)
  u, state = tx.update({"a": jnp.ones(2), "b": None}, tx.init(params))
  assert u["b"] is None and state.grad_acc["b"].dtype == jnp.float32
  bf16 = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
  u, state = tx.update(bf16, tx.init(params))
  assert u["a"].dtype == jnp.bfloat16 and state.grad_acc["a"].dtype == jnp.float32


@pytest.mark.parametrize("k, err", [(0, ValueError), (1.5, TypeError), (True, TypeError),
                                    (jnp.ones(2, jnp.int32), ValueError)])
def test_apply_every_bad_k(k, err):
  with pytest.raises(err, match=r"gradtx\.apply_every: k"):
    gradtx.apply_every(k)


def test_apply_every_mismatched_updates_raise():
  tx = gradtx.apply_every(2)
  with pytest.raises(ValueError, match="state.grad_acc"):
    tx.update({"x": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))
