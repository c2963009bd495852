"""Tests of gradtx/averaging.py beyond the generic registry tests (which check that the updates
pass through): the averages of a real optimizer's iterates against NumPy, the accessors in nested
states, the snapshot ring buffer against a NumPy loop and SGDR's restarts, jit / vmap, ensemble
predictions, flax nnx and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from trees import make_params
import reference as ref
from gradtx.transforms.averaging import EmaParamsState, PolyakAveragingState, SnapshotEnsembleState, averaged_params, ema_params, ensemble_params, ensemble_predict, polyak_averaging, snapshot_ensemble

STEPS = 25


def grad_fn(params, t):
  """Gradient of 0.5 |p|^2 plus a deterministic step-dependent perturbation (so the iterates
  move in varied directions)."""
  rng = np.random.default_rng(100 + t)
  return jax.tree.map(lambda p: p + jnp.asarray(rng.normal(size=p.shape), p.dtype), params)


def train(tx, steps=STEPS, params=None):
  """Runs the jitted chain; returns the iterates theta_1..theta_T (leaf lists, float64), the
  states after each step, the initial params and the jitted update."""
  params = make_params() if params is None else params
  params0 = params
  state, step = tx.init(params), jax.jit(tx.update)
  thetas, states = [], []
  for t in range(steps):
    u, state = step(grad_fn(params, t), state, params)
    params = gradtx.apply_updates(params, u)
    thetas.append([np.asarray(x, np.float64) for x in jax.tree.leaves(params)])
    states.append(state)
  return thetas, states, params0, step


def momentum_chain(*tail):
  return gradtx.chain(gradtx.trace(0.9), gradtx.scale_by_learning_rate(0.1), *tail)


def leaves(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def assert_leaves_close(got, want, rtol=1e-5, atol=1e-6, msg=""):
  assert len(got) == len(want)
  for i, (a, b) in enumerate(zip(got, want)):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{msg} leaf {i}")


# --- polyak_averaging and ema_params ---------------------------------------------------------


def test_polyak_average_of_momentum_iterates_matches_numpy():
  thetas, states, _, step = train(momentum_chain(polyak_averaging()))
  want = ref.polyak_average(thetas)
  for t, s in enumerate(states):
    assert isinstance(s[-1], PolyakAveragingState) and int(s[-1].count) == t + 1
    assert_leaves_close(leaves(averaged_params(s)), want[t], msg=f"step {t}")
  assert step._cache_size() == 1


@pytest.mark.parametrize("decay, debias", [(0.9, True), (0.8, False), (0.0, True)])
def test_ema_of_momentum_iterates_matches_numpy(decay, debias):
  thetas, states, params0, step = train(momentum_chain(ema_params(decay, debias=debias)))
  want = ref.ema_average(thetas, leaves(params0), decay, debias=debias)
  for t, s in enumerate(states):
    assert_leaves_close(leaves(averaged_params(s)), want[t], msg=f"step {t}")
  assert step._cache_size() == 1
  if decay == 0.0:  # no memory: the average is the last iterate
    assert_leaves_close(leaves(averaged_params(states[-1])), thetas[-1])


def test_averaging_passes_updates_through_and_starts_at_the_params():
  params = {"w": jnp.arange(3.0), "b": (jnp.asarray(2.0),)}
  for tx in (polyak_averaging(), ema_params(0.99), snapshot_ensemble(2, 3)):
    state = tx.init(params)
    g = jax.tree.map(jnp.ones_like, params)
    u, _ = tx.update(g, state, params)
    assert u is g
  params = make_params()
  for tx in (polyak_averaging(), ema_params(0.99), ema_params(0.9, debias=False)):
    assert_leaves_close(leaves(averaged_params(tx.init(params))), leaves(params), 0, 0)


def test_averaging_dtypes():
  params = make_params(jnp.bfloat16)
  for tx in (polyak_averaging(), ema_params(0.9)):
    _, states, _, _ = train(gradtx.chain(gradtx.scale(-0.1), tx), steps=2, params=params)
    for leaf in jax.tree.leaves(averaged_params(states[-1])):
      assert leaf.dtype == jnp.bfloat16
  _, states, _, _ = train(gradtx.chain(gradtx.scale(-0.1), polyak_averaging(jnp.float32)),
                          steps=2, params=params)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(averaged_params(states[-1])))


def test_none_updates_leave_the_iterate_unchanged():
  params = {"w": jnp.ones(2), "frozen": jnp.full(2, 3.0)}
  tx = polyak_averaging()
  state = tx.init(params)
  for _ in range(3):
    _, state = tx.update({"w": jnp.ones(2), "frozen": None}, state, params)
    params = gradtx.apply_updates(params, {"w": jnp.ones(2), "frozen": None})
  avg = averaged_params(state)
  np.testing.assert_allclose(avg["w"], [3.0, 3.0])  # mean of 2, 3, 4
  np.testing.assert_allclose(avg["frozen"], [3.0, 3.0])


def test_accessor_finds_the_state_in_nested_chains():
  params = make_params()
  inner = gradtx.chain(gradtx.scale(-0.1), gradtx.chain(gradtx.identity(), ema_params(0.5)))
  tx = gradtx.chain(gradtx.trace(0.5), inner)
  state = tx.init(params)
  for t in range(3):
    u, state = tx.update(grad_fn(params, t), state, params)
    params = gradtx.apply_updates(params, u)
  found = state[1][1][1]
  assert isinstance(found, EmaParamsState)
  assert averaged_params(state) is found.average
  assert averaged_params(found) is found.average
  # the masked-in leaves of a masked averaging transformation
  masked = gradtx.masked(polyak_averaging(), {"a": True, "b": False})
  mstate = masked.init(params)
  assert jax.tree.structure(averaged_params(mstate)["a"]) == jax.tree.structure(params["a"])


def test_accessor_errors():
  params = make_params()
  with pytest.raises(ValueError, match="no polyak_averaging or ema_params"):
    averaged_params(gradtx.chain(gradtx.trace(0.9)).init(params))
  two = gradtx.chain(polyak_averaging(), ema_params(0.9)).init(params)
  with pytest.raises(ValueError, match="2 polyak_averaging or ema_params states"):
    averaged_params(two)
  assert averaged_params(two[1]) is two[1].average
  with pytest.raises(ValueError, match="no snapshot_ensemble"):
    ensemble_params(two)


# --- snapshot_ensemble -------------------------------------------------------------------------


def _check_ring(states, thetas, end_steps, num_snapshots):
  want = ref.snapshot_ring(thetas, end_steps, num_snapshots)
  for t, (s, (slots, stored, nxt)) in enumerate(zip(states, want)):
    assert int(s.num_stored) == stored and int(s.next_index) == nxt, f"step {t}"
    snaps, valid = ensemble_params(s)
    assert valid.tolist() == [k < stored for k in range(num_snapshots)]
    snaps = [np.asarray(x, np.float64) for x in jax.tree.leaves(snaps)]
    for k, slot in enumerate(slots):
      got = [x[k] for x in snaps]
      if slot is None:
        assert all(not g.any() for g in got), f"step {t}: empty slot {k} must stay zero"
      else:
        # the snapshot is p + u inside the jitted update, where XLA may fuse the learning-rate
        # product into the sum: equal to `apply_updates` outside jit up to rounding
        assert_leaves_close(got, slot, rtol=1e-6, atol=1e-7, msg=f"step {t} slot {k}")


@pytest.mark.parametrize("num_snapshots, first_period, multiplier, steps", [
    (3, 2, 2, 40),    # restarts after steps 2, 6, 14, 30: wraps once
    (4, 3, 1, 30),    # every 3 steps: 10 snapshots, wraps twice
    (1, 5, 1, 12),
])
def test_snapshot_ring_buffer_matches_numpy(num_snapshots, first_period, multiplier, steps):
  lr = gradtx.warm_restarts_schedule(0.1, first_period, multiplier)
  tx = gradtx.chain(gradtx.trace(0.5), gradtx.scale_by_learning_rate(lr),
                    snapshot_ensemble(num_snapshots, first_period, multiplier))
  thetas, states, _, step = train(tx, steps=steps)
  ends = ref.restart_steps(first_period, multiplier, steps)
  assert len(ends) > num_snapshots  # the buffer wraps around
  assert isinstance(states[-1][-1], SnapshotEnsembleState)
  _check_ring([s[-1] for s in states], thetas, set(ends), num_snapshots)
  assert step._cache_size() == 1


# periods of at least 2 steps, so that every restart is a visible jump of the schedule
@pytest.mark.parametrize("first_period, multiplier", [(3, 1), (2, 2), (2, 3), (2.5, 1.0),
                                                      (2.0, 1.5)])
def test_snapshots_are_taken_where_warm_restarts_schedule_restarts(first_period, multiplier):
  schedule = gradtx.warm_restarts_schedule(1.0, first_period, multiplier)
  steps = 40
  # the step t ends a cycle iff the schedule jumps back up at t + 1
  restarts = {t + 1 for t in range(steps)
              if float(schedule(t + 1)) > float(schedule(t))}
  assert restarts
  tx = snapshot_ensemble(64, first_period, multiplier)
  params = jnp.zeros(())
  state, step = tx.init(params), jax.jit(tx.update)
  stored_at = set()
  for t in range(steps):
    before = int(state.num_stored)
    _, state = step(jnp.ones(()), state, params)
    params = params + 1.0
    if int(state.num_stored) > before:
      stored_at.add(t + 1)
  assert stored_at == restarts
  # the stored values are the params after those steps, oldest first
  snaps, valid = ensemble_params(state)
  assert snaps[valid].tolist() == sorted(float(s) for s in restarts)


def test_snapshot_traced_periods_equal_concrete():
  def stored(first_period):
    tx = snapshot_ensemble(3, first_period)
    params = jnp.zeros(2)
    state = tx.init(params)
    for _ in range(7):
      _, state = tx.update(jnp.ones(2), state, params)
      params = params + 1.0
    return state.snapshots, state.num_stored

  batched = jax.jit(jax.vmap(stored))(jnp.asarray([2.0, 3.0, 4.0]))
  for i, p in enumerate((2, 3, 4)):
    snaps, n = stored(p)
    np.testing.assert_array_equal(batched[0][i], snaps)
    assert int(batched[1][i]) == int(n)


def test_snapshot_count_saturation_stops_recording():
  tx = snapshot_ensemble(2, 1)
  params = jnp.zeros(1)
  state = tx.init(params)._replace(count=jnp.asarray(2**31 - 2, jnp.int32))
  _, state = tx.update(jnp.ones(1), state, params)  # count reaches int32 max: a cycle end
  assert int(state.num_stored) == 1
  _, state = tx.update(jnp.ones(1), state, params)  # saturated: no more snapshots
  assert int(state.num_stored) == 1 and int(state.count) == 2**31 - 1


def test_vmap_over_a_batch_of_models_equals_a_loop():
  txs = [polyak_averaging(), ema_params(0.7), snapshot_ensemble(2, 2)]
  rng = np.random.default_rng(3)
  batch = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
  grads = [jnp.asarray(rng.normal(size=(3, 4)), jnp.float32) for _ in range(5)]
  for tx in txs:
    def run(params, gs):
      state = tx.init(params)
      for g in gs:
        _, state = tx.update(g, state, params)
        params = params + g
      return state

    batched = jax.jit(jax.vmap(run, in_axes=(0, 1)))(batch, jnp.stack(grads))
    for i in range(3):
      single = run(batch[i], [g[i] for g in grads])
      for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=1e-6)


# --- ensemble_predict -----------------------------------------------------------------------


def _softmax_np(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_ensemble_predict_averages_softmax_of_stored_snapshots():
  rng = np.random.default_rng(5)
  params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": jnp.zeros(4)}
  x = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
  apply_fn = lambda p, x: jax.nn.softmax(x @ p["w"] + p["b"])
  tx = gradtx.chain(gradtx.scale(-0.3), snapshot_ensemble(3, 2))
  state = tx.init(params)
  history = []
  for t in range(10):  # snapshots after steps 2, 4, 6, 8, 10: the last three stay
    g = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    u, state = tx.update(g, state, params)
    params = gradtx.apply_updates(params, u)
    history.append(jax.tree.map(np.asarray, params))
    got = ensemble_predict(apply_fn, state, x)
    kept = [history[s - 1] for s in (2, 4, 6, 8, 10) if s <= t + 1][-3:]
    if not kept:
      assert np.isnan(np.asarray(got)).all()  # nothing stored yet
      continue
    want = np.mean([_softmax_np(np.asarray(x, np.float64) @ p["w"] + p["b"]) for p in kept], 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
    np.testing.assert_allclose(np.asarray(got).sum(-1), 1.0, rtol=1e-5)


def test_ensemble_predict_masks_empty_slots_and_keeps_pytrees():
  tx = snapshot_ensemble(4, 1)
  params = jnp.ones(2)
  state = tx.init(params)
  _, state = tx.update(jnp.ones(2), state, params)  # one snapshot: [2, 2]; three zero slots

  def apply_fn(p, x, *, scale):
    unit = p / jnp.linalg.norm(p)  # NaN for the empty (zero) slots
    return {"y": scale * unit * x, "n": jnp.sum(p).astype(jnp.int32)}

  out = jax.jit(lambda s, x: ensemble_predict(apply_fn, s, x, scale=2.0))(state, 3.0)
  np.testing.assert_allclose(out["y"], 6.0 / np.sqrt(2.0) * np.ones(2), rtol=1e-6)
  assert out["n"].dtype == jnp.float32 and float(out["n"]) == 4.0


# --- flax nnx and errors --------------------------------------------------------------------


def test_flax_nnx_optimizer_with_averaging_and_snapshots():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  tx = gradtx.chain(gradtx.scale_by_learning_rate(0.05), polyak_averaging(),
                    snapshot_ensemble(2, 5))
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])
  kernels = []

  @nnx.jit
  def step(m, o):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(m)
    o.update(m, grads)
    return loss

  for _ in range(10):
    step(model, opt)
    kernels.append(np.asarray(model.kernel[...], np.float64))
  avg = averaged_params(opt.opt_state)
  np.testing.assert_allclose(np.asarray(avg["kernel"][...]), np.mean(kernels, 0), rtol=1e-5)
  snaps, valid = ensemble_params(opt.opt_state)
  assert valid.tolist() == [True, True]
  np.testing.assert_allclose(np.asarray(snaps["kernel"][...][1]), kernels[9], rtol=1e-6)


@pytest.mark.parametrize("make, error, name", [
    (lambda: ema_params(1.0), ValueError, "decay"),
    (lambda: ema_params(-0.1), ValueError, "decay"),
    (lambda: ema_params(lambda t: 0.9), TypeError, "decay"),
    (lambda: ema_params(0.9, debias="yes"), TypeError, "debias"),
    (lambda: ema_params(0.9, accumulator_dtype=jnp.int32), ValueError, "accumulator_dtype"),
    (lambda: polyak_averaging("banana"), TypeError, "accumulator_dtype"),
    (lambda: snapshot_ensemble(0, 10), ValueError, "num_snapshots"),
    (lambda: snapshot_ensemble(2.0, 10), TypeError, "num_snapshots"),
    (lambda: snapshot_ensemble(jnp.asarray(2), 10), TypeError, "num_snapshots"),
    (lambda: snapshot_ensemble(2, 0), ValueError, "first_period"),
    (lambda: snapshot_ensemble(2, 10, 0.5), ValueError, "period_multiplier"),
    (lambda: ensemble_predict("f", snapshot_ensemble(2, 1).init(jnp.zeros(1))), TypeError,
     "apply_fn"),
])
def test_invalid_arguments_raise_naming_the_argument(make, error, name):
  with pytest.raises(error, match=name):
    make()


@pytest.mark.parametrize("tx", [polyak_averaging(), ema_params(0.9), snapshot_ensemble(2, 2)],
                         ids=["polyak", "ema", "snapshot"])
def test_update_needs_params_and_matching_trees(tx):
  params = make_params()
  state = tx.init(params)
  with pytest.raises(ValueError, match="params"):
    tx.update(params, state)
  bad = {"a": params["a"]}
  with pytest.raises(ValueError, match="structure"):
    tx.update(bad, state, params)
  with pytest.raises(ValueError, match="structure"):
    tx.update(params, state, bad)
