"""Tests for gradtx/monitoring.py: snapshot/monitor/measure_with_ema against optax, the health
monitor against NumPy, NaN provenance, vmap/jit, early stopping against a Python loop, and
argument errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.transforms.monitoring import EarlyStoppingState, HealthMonitorState, early_stopping, health_monitor, monitor, read_measures, snapshot


def make_params():
  rng = np.random.default_rng(0)
  return {"a": (jnp.asarray(rng.normal(size=3), jnp.float32),
                jnp.asarray(rng.normal(size=(2, 5)), jnp.float32)),
          "b": {"c": jnp.asarray(rng.normal(), jnp.float32),
                "d": jnp.asarray(rng.normal(size=(4, 1, 3)), jnp.float32)}}


def make_grads(steps=5, seed=1):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), make_params())
          for _ in range(steps)]


def np_norm(tree):
  return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree))))


# --- snapshot / monitor: optax parity ------------------------------------------------------------


def _run_pair(gtx, otx, steps=5):
  params = make_params()
  gs, os_ = gtx.init(params), otx.init(params)
  gstep, ostep = jax.jit(gtx.update), jax.jit(otx.update)
  pg = po = params
  for g in make_grads(steps):
    ug, gs = gstep(g, gs, pg)
    uo, os_ = ostep(g, os_, po)
    pg, po = gradtx.apply_updates(pg, ug), optax.apply_updates(po, uo)
    for a, b in zip(jax.tree.leaves(ug), jax.tree.leaves(uo)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    yield gs, os_


def test_snapshot_matches_optax():
  gtx = gradtx.chain(gradtx.sgd(0.1, momentum=0.9), snapshot("n", gradtx.global_norm),
                     gradtx.clip_by_global_norm(0.05))
  otx = optax.chain(optax.sgd(0.1, momentum=0.9), optax.snapshot("n", optax.tree.norm),
                    optax.clip_by_global_norm(0.05))
  for gs, os_ in _run_pair(gtx, otx):
    np.testing.assert_allclose(gs[1].measurement["n"], optax.tree.get(os_, "n"), rtol=1e-6)
    assert type(gs[1]).__name__ == "SnapshotState" and gs[1]._fields == os_[1]._fields


def test_monitor_matches_optax():
  def measures(lib):
    return {"norm": lib.global_norm if lib is gradtx else optax.tree.norm,
            "ema": optax.measure_with_ema(lambda u: optax.tree.norm(u) > 1.0, decay=0.9)}
  gtx = gradtx.chain(gradtx.sgd(0.1, momentum=0.9), monitor(measures(gradtx)),
                     gradtx.clip_by_global_norm(1.0))
  otx = optax.chain(optax.sgd(0.1, momentum=0.9), optax.monitor(measures(optax)),
                    optax.clip_by_global_norm(1.0))
  s0 = gtx.init(make_params())
  assert set(s0[1].measurements) == {"norm", "ema"}  # structure fixed at init (differs from optax)
  for gs, os_ in _run_pair(gtx, otx):
    assert gs[1]._fields == os_[1]._fields
    for k in ("norm", "ema"):
      np.testing.assert_allclose(gs[1].measurements[k], os_[1].measurements[k], rtol=1e-6)
    assert jax.tree.structure(gs[1].measurements) == jax.tree.structure(s0[1].measurements)


# --- health monitor ------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [True, False])
def test_health_monitor_matches_numpy(wrapped):
  opt = gradtx.chain(gradtx.clip_by_global_norm(3.0), gradtx.adam(0.05))
  tx = health_monitor(opt) if wrapped else gradtx.chain(opt, health_monitor())
  ref = opt
  params = make_params()
  state, rstate = tx.init(params), ref.init(params)
  step = jax.jit(tx.update)
  for g in make_grads(6):
    u, state = step(g, state, params)
    ru, rstate = ref.update(g, rstate, params)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(ru)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    m = read_measures(state)
    np.testing.assert_allclose(m["grad_norm"], np_norm(g if wrapped else ru), rtol=1e-5)
    np.testing.assert_allclose(m["update_norm"], np_norm(ru), rtol=1e-5)
    np.testing.assert_allclose(m["param_norm"], np_norm(params), rtol=1e-5)
    np.testing.assert_allclose(
        m["max_abs_update"], max(np.abs(np.asarray(x)).max() for x in jax.tree.leaves(ru)),
        rtol=1e-6)
    assert m["num_nonfinite"] == 0 and m["first_nonfinite_leaf"] == -1
    params = gradtx.apply_updates(params, u)


@pytest.mark.parametrize("k", [0, 2, 3])
def test_nan_provenance(k):
  tx = health_monitor(gradtx.sgd(0.1))
  params = make_params()
  g = make_grads(1)[0]
  leaves, treedef = jax.tree.flatten(g)
  x = np.asarray(leaves[k]).copy().reshape(-1)
  x[0] = np.nan
  if x.size > 1:
    x[-1] = np.inf
  leaves[k] = jnp.asarray(x.reshape(np.shape(leaves[k])))
  leaves[-1] = leaves[-1].at[0, 0, 1].set(jnp.nan) if k != 3 else leaves[-1]
  g = jax.tree.unflatten(treedef, leaves)
  _, state = jax.jit(tx.update)(g, tx.init(params), params)
  m = read_measures(state)
  assert m["first_nonfinite_leaf"] == k
  assert m["num_nonfinite"] == int(np.sum(~np.isfinite(np.concatenate(
      [np.ravel(l) for l in jax.tree.leaves(g)]))))
  assert np.isnan(m["grad_norm"])
  # a clean step clears the flags
  _, state = jax.jit(tx.update)(make_grads(1)[0], state, params)
  assert read_measures(state)["first_nonfinite_leaf"] == -1


def test_health_monitor_state_invariants_and_no_recompile():
  tx = gradtx.chain(gradtx.sgd(0.1), health_monitor())
  params = make_params()
  state = tx.init(params)
  traces = []

  def step(g, s, p):
    traces.append(1)
    return tx.update(g, s, p)

  jstep = jax.jit(step)
  s0 = state
  for g in make_grads(3):
    _, state = jstep(g, state, params)
  assert len(traces) == 1
  assert jax.tree.structure(s0) == jax.tree.structure(state)
  for a, b in zip(jax.tree.leaves(s0), jax.tree.leaves(state)):
    assert a.shape == b.shape and a.dtype == b.dtype
  hs = state[-1]
  assert isinstance(hs, HealthMonitorState)
  assert hs.num_nonfinite.dtype == jnp.int32 and hs.grad_norm.dtype == jnp.float32
  # no params: param_norm is NaN, everything else still measured
  _, st = tx.update(make_grads(1)[0], s0)
  assert np.isnan(read_measures(st)["param_norm"])


def test_health_monitor_vmap_over_runs():
  params = make_params()
  grads = make_grads(3)
  lrs = jnp.asarray([0.01, 0.1, 1.0])

  def train(lr):
    tx = health_monitor(gradtx.sgd(lr))
    state, p = tx.init(params), params
    for g in grads:
      u, state = tx.update(g, state, p)
      p = gradtx.apply_updates(p, u)
    return state

  batched = jax.jit(jax.vmap(train))(lrs)
  single_run = jax.jit(train)
  for i, lr in enumerate([0.01, 0.1, 1.0]):
    single = single_run(jnp.float32(lr))
    for f in ("grad_norm", "update_norm", "param_norm", "max_abs_update",
              "first_nonfinite_leaf"):
      np.testing.assert_allclose(getattr(batched, f)[i], getattr(single, f), rtol=1e-6)
  np.testing.assert_allclose(batched.update_norm, lrs * np_norm(grads[-1]), rtol=1e-5)


def test_read_measures_nested_and_errors():
  tx = gradtx.chain(snapshot("pre", gradtx.global_norm), gradtx.sgd(0.1),
                    monitor({"post": gradtx.global_norm, "vec": lambda u: jnp.ones(2)}),
                    health_monitor())
  params = make_params()
  _, state = tx.update(make_grads(1)[0], tx.init(params), params)
  m = read_measures(state)
  assert {"pre", "post", "grad_norm", "first_nonfinite_leaf"} <= set(m) and "vec" not in m
  assert isinstance(m["num_nonfinite"], int) and isinstance(m["pre"], float)
  with pytest.raises(ValueError, match="no health_monitor"):
    read_measures(gradtx.sgd(0.1).init(params))
  dup = gradtx.chain(snapshot("x", gradtx.global_norm), snapshot("x", gradtx.global_norm))
  with pytest.raises(ValueError, match="'x'"):
    read_measures(dup.init(params))


def test_inside_optax_chain():
  tx = optax.chain(optax.sgd(0.1), health_monitor())
  params = make_params()
  g = make_grads(1)[0]
  u, state = tx.update(g, tx.init(params), params)
  np.testing.assert_allclose(read_measures(state)["update_norm"], 0.1 * np_norm(g), rtol=1e-5)


# --- early stopping ------------------------------------------------------------------------------


def ref_early_stopping(metrics, patience, min_delta, mode):
  best, best_i, wait, stop, out = (np.inf if mode == "min" else -np.inf), -1, 0, False, []
  for i, m in enumerate(metrics):
    better = m < best - min_delta if mode == "min" else m > best + min_delta
    if better:
      best, best_i, wait = m, i, 0
    else:
      wait += 1
      stop = stop or wait >= patience
    out.append((best, best_i, wait, stop))
  return out


METRICS = [1.0, 0.8, 0.79, 0.85, 0.7, 0.71, 0.695, 0.9, 0.9, 0.5, 0.6, 0.6]


@pytest.mark.parametrize("patience,min_delta,mode", [
    (1, 0.0, "min"), (2, 0.0, "min"), (2, 0.02, "min"), (0, 0.0, "min"),
    (2, 0.0, "max"), (3, 0.05, "max")])
def test_early_stopping_matches_python_loop(patience, min_delta, mode):
  es = early_stopping(patience, min_delta, mode)
  params = {"w": jnp.zeros(2), "b": jnp.zeros([], jnp.int32)}
  state = es.init(params)
  step = jax.jit(es.update)
  want = ref_early_stopping(METRICS, patience, min_delta, mode)
  for i, (m, (best, best_i, wait, stop)) in enumerate(zip(METRICS, want)):
    state = step(state, m, {"w": jnp.full(2, float(i)), "b": jnp.asarray(i, jnp.int32)})
    np.testing.assert_allclose(state.best_metric, best, rtol=1e-6)
    assert int(state.steps_since_improvement) == wait and bool(state.should_stop) == stop, i
    assert state.best_params["w"].tolist() == [float(best_i)] * 2
    assert int(state.best_params["b"]) == best_i and state.best_params["b"].dtype == jnp.int32


def test_early_stopping_nan_and_vmap():
  es = early_stopping(1)
  s = es.update(es.update(es.init(jnp.zeros(1)), 1.0, jnp.ones(1)), jnp.nan, jnp.full(1, 9.0))
  assert bool(s.should_stop) and float(s.best_metric) == 1.0 and s.best_params.tolist() == [1.0]
  metrics = jnp.asarray([[1.0, 0.5, 0.6], [1.0, 2.0, 3.0]])

  def run(ms):
    st = es.init(jnp.zeros(1))
    for j in range(3):
      st = es.update(st, ms[j], jnp.full(1, ms[j]))
    return st

  out = jax.vmap(run)(metrics)
  assert isinstance(out, EarlyStoppingState)
  assert out.should_stop.tolist() == [True, True]
  assert out.best_metric.tolist() == [0.5, 1.0]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,exc,match", [
    (lambda: snapshot(3, gradtx.global_norm), TypeError, "measure_name"),
    (lambda: snapshot("n", 3), TypeError, "measure"),
    (lambda: monitor([gradtx.global_norm]), TypeError, "measures"),
    (lambda: monitor({"n": 3}), TypeError, r"measures\['n'\]"),
    (lambda: health_monitor(3), TypeError, "inner"),
    (lambda: early_stopping(1.5), TypeError, "patience"),
    (lambda: early_stopping(True), TypeError, "patience"),
    (lambda: early_stopping(-1), ValueError, "patience"),
    (lambda: early_stopping(1, min_delta=-0.1), ValueError, "min_delta"),
    (lambda: early_stopping(1, min_delta=float("nan")), ValueError, "min_delta"),
    (lambda: early_stopping(1, min_delta="a"), TypeError, "min_delta"),
    (lambda: early_stopping(1, mode="best"), ValueError, "mode"),
])
def test_errors(make, exc, match):
  with pytest.raises(exc, match=match):
    make()


def test_early_stopping_metric_must_be_scalar():
  es = early_stopping(1)
  with pytest.raises(ValueError, match="metric"):
    es.update(es.init(jnp.zeros(1)), jnp.ones(2), jnp.zeros(1))


def test_flax_nnx_optimizer():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, health_monitor(gradtx.sgd(0.1)), wrt=nnx.Param)

  @nnx.jit
  def step(model, opt, x):
    grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
    opt.update(model, grads)

  step(model, opt, jnp.ones((4, 3)))
  m = read_measures(opt.opt_state)
  np.testing.assert_allclose(m["update_norm"], 0.1 * m["grad_norm"], rtol=1e-5)
  assert m["first_nonfinite_leaf"] == -1 and m["param_norm"] > 0


# --- measure_with_ema ----------------------------------------------------------------------------


def _norm(u):  # the same measure for both libraries, so only the averaging is compared
  return jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(u)))


def _leaf_means(u):  # a pytree measurement
  return {"a": jnp.mean(u["a"][1]), "d": jnp.mean(u["b"]["d"], axis=0)}


@pytest.mark.parametrize("measure, debias", [(_norm, True), (_leaf_means, False)],
                         ids=["norm-debias", "tree"])
def test_measure_with_ema_matches_optax_over_20_steps(measure, debias):
  gtx = gradtx.measure_with_ema(measure, 0.9, debias=debias)
  otx = optax.measure_with_ema(measure, 0.9, debias=debias)
  params = make_params()
  gs, os_ = gtx.init(params), otx.init(params)
  gstep, ostep = jax.jit(gtx.update), jax.jit(otx.update)
  for g in make_grads(steps=20):
    ug, gs = gstep(g, gs, params)
    uo, os_ = ostep(g, os_, params)
    for a, b in zip(jax.tree.leaves(ug), jax.tree.leaves(uo)):  # same arithmetic: bit-identical
      np.testing.assert_array_equal(a, b)
  assert [type(s).__name__ for s in gs] == [type(s).__name__ for s in os_] == [
      "EmptyState", "EmaState"]
  assert gs[1]._fields == os_[1]._fields
  for a, b in zip(jax.tree.leaves(gs), jax.tree.leaves(os_)):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
  assert type(gtx).__name__ == type(otx).__name__ == "GradientTransformationExtraArgs"


def test_measure_with_ema_bool_measure_in_monitor_keeps_a_float32_state():
  clipped = lambda u: _norm(u) > 2.0  # noqa: E731
  gtx = gradtx.monitor({"clipped": gradtx.measure_with_ema(clipped, decay=0.9)})
  otx = optax.monitor({"clipped": optax.measure_with_ema(clipped, decay=0.9)})
  params = make_params()
  s0 = gtx.init(params)
  assert s0.measure_states[0][1].ema.dtype == jnp.float32  # optax's starts bool (a difference)
  gs, os_ = s0, otx.init(params)
  step = jax.jit(gtx.update)
  for g in make_grads(steps=6):
    _, gs = step(jax.tree.map(lambda x: 0.5 * x, g), gs, params)
    _, os_ = otx.update(jax.tree.map(lambda x: 0.5 * x, g), os_, params)
    np.testing.assert_array_equal(gs.measurements["clipped"], os_.measurements["clipped"])
    assert jax.tree.map(jnp.dtype, gs) == jax.tree.map(jnp.dtype, s0)


def test_measure_with_ema_vmap_over_decay_equals_a_loop():
  params, grads = make_params(), make_grads(steps=3)

  def run(decay):
    tx = gradtx.measure_with_ema(_norm, decay)
    state = tx.init(params)
    for g in grads:
      m, state = tx.update(g, state, params)
    return m

  decays = [0.5, 0.9]
  np.testing.assert_allclose(jax.vmap(run)(jnp.asarray(decays)), [run(d) for d in decays],
                             rtol=1e-6)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(measure=3, decay=0.9), TypeError, r"measure_with_ema: measure"),
    (dict(measure=_norm, decay=1.5), ValueError, r"measure_with_ema: decay"),
    (dict(measure=_norm, decay="0.9"), TypeError, r"measure_with_ema: decay"),
    (dict(measure=_norm, decay=0.9, debias="yes"), TypeError, r"measure_with_ema: debias"),
    (dict(measure=_norm, decay=0.9, accumulator_dtype=jnp.int32), ValueError,
     r"measure_with_ema: accumulator_dtype"),
])
def test_measure_with_ema_bad_input(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.measure_with_ema(**kwargs)


def test_measure_with_ema_matches_numpy_reference():
  """The debiased EMA of a measurement (Kingma & Ba 2015, Alg. 1's moment and bias correction):
  m_t = b m_{t-1} + (1 - b) x_t, reported as m_t / (1 - b^t), in float64."""
  decay, params = 0.8, make_params()
  tx = gradtx.measure_with_ema(_norm, decay)
  state, step, m = tx.init(params), jax.jit(tx.update), 0.0
  for t, g in enumerate(make_grads(steps=8), start=1):
    out, state = step(g, state, params)
    x = np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(g)))
    m = decay * m + (1 - decay) * x
    np.testing.assert_allclose(float(out), m / (1 - decay**t), rtol=1e-5)
