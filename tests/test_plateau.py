"""Tests of `reduce_on_plateau` (gradtx/wrappers.py) beyond the generic registry tests: optax
parity over loss sequences with plateaus, the NumPy reference, negative metrics (where optax
never reduces), mode='max', cooldown and min_scale, the required `value`, jit, and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from gradtx.contrib.plateau import ReduceLROnPlateauState, reduce_on_plateau

FIELDS = ReduceLROnPlateauState._fields
PARAMS = {"w": jnp.ones(3), "b": (jnp.asarray(2.0),)}


def _losses(n=100, seed=0):
  """A positive loss: a descent, a noisy plateau, a second descent and an exact plateau."""
  rng = np.random.default_rng(seed)
  return np.concatenate([
      np.linspace(5.0, 1.0, 20),
      1.0 + rng.normal(0.0, 1e-5, 30),
      np.linspace(1.0, 0.5, 10) + rng.normal(0.0, 1e-3, 10),
      np.full(n - 60, 0.5),
  ]).astype(np.float32)


def _run(tx, values, params=PARAMS):
  """Runs the jitted update over `values`; returns the states after each step and the jit."""
  step = jax.jit(tx.update)
  state, states = tx.init(params), []
  for v in values:
    _, state = step(params, state, value=jnp.asarray(v, jnp.float32))
    states.append(state)
  return states, step


CONFIGS = [
    dict(),
    dict(factor=0.5, patience=3, cooldown=2),
    dict(factor=0.5, patience=2, accumulation_size=3, min_scale=0.2, atol=1e-3),
    dict(factor=0.3, patience=1, cooldown=1, accumulation_size=2, rtol=1e-2, min_scale=0.01),
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=lambda k: ",".join(k) or "defaults")
def test_matches_optax_and_reference_on_positive_losses(kwargs):
  values = _losses()
  ours, _ = _run(reduce_on_plateau(**kwargs), values)
  theirs, _ = _run(optax.contrib.reduce_on_plateau(**kwargs), values)
  want = ref.reduce_on_plateau_states(values, **kwargs)
  for t, (a, b, w) in enumerate(zip(ours, theirs, want)):
    for f in FIELDS:  # bit for bit with optax, every counter and value, every step
      np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)),
                                    err_msg=f"{kwargs} step {t} {f}")
      np.testing.assert_allclose(float(getattr(a, f)), w[f], rtol=1e-6, err_msg=f"step {t} {f}")
  assert float(ours[-1].scale) < 1.0, "the sequence must exercise a reduction"


def test_updates_are_scaled_and_keep_structure_and_dtype():
  tx = reduce_on_plateau(factor=0.5, patience=1)
  state = tx.init(PARAMS)
  grads = {"w": jnp.ones(3), "b": (jnp.asarray(2.0, jnp.bfloat16),)}
  for v in (1.0, 1.0):
    u, state = tx.update(grads, state, value=v)
  assert float(state.scale) == 0.5
  assert jax.tree.structure(u) == jax.tree.structure(grads)
  np.testing.assert_array_equal(u["w"], 0.5 * np.ones(3))
  assert u["b"][0].dtype == jnp.bfloat16 and float(u["b"][0]) == 1.0


def test_negative_metric_reduces_where_optax_does_not():
  values = np.concatenate([[-1.0, -2.0, -3.0], np.full(20, -3.0)]).astype(np.float32)
  kwargs = dict(factor=0.5, patience=3)
  ours, _ = _run(reduce_on_plateau(**kwargs), values)
  theirs, _ = _run(optax.contrib.reduce_on_plateau(**kwargs), values)
  # optax: (1 - rtol) * best > best for best < 0, so every -3.0 counts as an improvement.
  assert all(float(s.scale) == 1.0 for s in theirs)
  want = ref.reduce_on_plateau_states(values, **kwargs)
  got = [float(s.scale) for s in ours]
  np.testing.assert_allclose(got, [w["scale"] for w in want])
  assert got[5] == 0.5 and got[-1] == 0.5**6
  assert float(ours[-1].best_value) == -3.0


def test_negative_metric_tolerance_is_relative_to_abs_best():
  # best = -100: an improvement must beat -100 - 1e-2 * 100 = -101.
  tx = reduce_on_plateau(factor=0.5, patience=1, rtol=1e-2)
  states, _ = _run(tx, [-100.0, -100.5, -101.5])
  assert [int(s.plateau_count) for s in states[:2]] == [0, 0]  # -100.5 counted (then reduced)
  assert float(states[1].scale) == 0.5 and float(states[1].best_value) == -100.0
  assert float(states[2].best_value) == -101.5 and float(states[2].scale) == 0.5


def test_mode_max_mirrors_mode_min():
  rng = np.random.default_rng(1)
  acc = np.concatenate([np.linspace(0.1, 0.9, 10), 0.9 + rng.normal(0, 1e-5, 30)])
  acc = acc.astype(np.float32)
  kwargs = dict(factor=0.5, patience=4, cooldown=2, rtol=1e-3)
  up, _ = _run(reduce_on_plateau(**kwargs, mode="max"), acc)
  down, _ = _run(reduce_on_plateau(**kwargs), -acc)
  want = ref.reduce_on_plateau_states(acc, **kwargs, mode="max")
  for t, (a, b, w) in enumerate(zip(up, down, want)):
    assert float(a.scale) == float(b.scale) == pytest.approx(w["scale"]), t
    assert float(a.best_value) == -float(b.best_value) == pytest.approx(w["best_value"]), t
    assert int(a.plateau_count) == int(b.plateau_count) == w["plateau_count"], t
  assert float(up[-1].scale) < 1.0
  assert float(reduce_on_plateau(mode="max").init(PARAMS).best_value) == -np.inf


def test_cooldown_and_min_scale_by_hand():
  tx = reduce_on_plateau(factor=0.5, patience=2, cooldown=2, min_scale=0.2)
  states, _ = _run(tx, np.ones(12))
  # evaluation 1 improves; 2, 3 plateau -> reduce; 4, 5 cooldown; 6, 7 plateau -> reduce; ...
  assert [float(s.scale) for s in states] == pytest.approx(
      [1, 1, .5, .5, .5, .5, .25, .25, .25, .25, .2, .2])
  assert [int(s.cooldown_count) for s in states[:6]] == [0, 0, 2, 1, 0, 0]
  assert [int(s.plateau_count) for s in states[:7]] == [0, 1, 0, 0, 0, 1, 0]


def test_accumulation_averages_values_between_evaluations():
  tx = reduce_on_plateau(factor=0.5, patience=1, accumulation_size=3)
  states, _ = _run(tx, [3.0, 6.0, 0.0, 9.0, 0.0])
  assert [int(s.count) for s in states] == [1, 2, 0, 1, 2]
  assert float(states[1].avg_value) == 4.5 and float(states[2].best_value) == 3.0
  assert float(states[4].avg_value) == 4.5


def test_rtol_and_atol_zero_allowed():  # optax rejects them; any strict improvement counts
  states, _ = _run(reduce_on_plateau(factor=0.5, patience=1, rtol=0.0, atol=0.0),
                   [1.0, 0.9999999, 0.9999999])
  assert [float(s.scale) for s in states] == [1.0, 1.0, 0.5]


def test_bfloat16_params_keep_float32_metric_state():
  params = {"w": jnp.ones(2, jnp.bfloat16)}
  tx = reduce_on_plateau()
  state = tx.init(params)
  assert state.scale.dtype == state.best_value.dtype == state.avg_value.dtype == jnp.float32
  u, state = tx.update(params, state, value=1.0001)
  assert u["w"].dtype == jnp.bfloat16 and float(state.best_value) == np.float32(1.0001)


def test_missing_value_raises_naming_value():
  tx = reduce_on_plateau()
  with pytest.raises(TypeError, match="value"):
    tx.update(PARAMS, tx.init(PARAMS))
  with pytest.raises(ValueError, match="value must be a scalar"):
    tx.update(PARAMS, tx.init(PARAMS), value=jnp.ones(2))


def test_value_reaches_it_through_gradtx_chain_not_optax_chain():
  tx = gradtx.chain(gradtx.scale(-1.0), reduce_on_plateau(factor=0.5, patience=1))
  state = tx.init(PARAMS)
  for v in (1.0, 1.0):
    u, state = tx.update(PARAMS, state, PARAMS, value=v)
  np.testing.assert_array_equal(u["w"], -0.5 * np.ones(3))
  otx = optax.chain(optax.scale(-1.0), reduce_on_plateau())
  with pytest.raises(TypeError, match="gradtx.chain"):
    otx.update(PARAMS, otx.init(PARAMS), PARAMS, value=1.0)


def test_jit_does_not_recompile_and_equals_eager():
  values = _losses()[::3]
  tx = reduce_on_plateau(factor=0.5, patience=2, cooldown=1)
  jitted, step = _run(tx, values)
  assert step._cache_size() == 1
  state = tx.init(PARAMS)
  for t, v in enumerate(values):
    _, state = tx.update(PARAMS, state, value=jnp.asarray(v))
    for f in FIELDS:
      np.testing.assert_array_equal(getattr(state, f), getattr(jitted[t], f))


def test_vmap_over_factor_and_over_a_batch_of_losses():
  values = _losses()[::2]

  def final_scale(factor, offset):
    tx = reduce_on_plateau(factor=factor, patience=2)
    state = tx.init(PARAMS)
    for v in values:
      _, state = tx.update(PARAMS, state, value=v + offset)
    return state.scale

  factors, offsets = jnp.asarray([0.1, 0.5]), jnp.asarray([0.0, 10.0])
  batched = jax.jit(jax.vmap(final_scale))(factors, offsets)
  for i in range(2):
    assert float(batched[i]) == pytest.approx(float(final_scale(float(factors[i]),
                                                                float(offsets[i]))))


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(factor=0.0), ValueError, "factor"),
    (dict(factor=1.0), ValueError, "factor"),
    (dict(factor="0.1"), TypeError, "factor"),
    (dict(patience=0), ValueError, "patience"),
    (dict(patience=2.5), TypeError, "patience"),
    (dict(patience=jnp.ones(2, jnp.int32)), ValueError, "patience"),
    (dict(rtol=-1e-4), ValueError, "rtol"),
    (dict(rtol=1.5), ValueError, "rtol"),
    (dict(atol=-1.0), ValueError, "atol"),
    (dict(atol=float("nan")), ValueError, "atol"),
    (dict(cooldown=-1), ValueError, "cooldown"),
    (dict(cooldown=True), TypeError, "cooldown"),
    (dict(accumulation_size=0), ValueError, "accumulation_size"),
    (dict(min_scale=-0.1), ValueError, "min_scale"),
    (dict(min_scale=2.0), ValueError, "min_scale"),
    (dict(mode="minimize"), ValueError, "mode"),
])
def test_invalid_arguments_raise_naming_the_argument(kwargs, error, name):
  with pytest.raises(error, match=name):
    reduce_on_plateau(**kwargs)


def test_flax_nnx_optimizer_forwards_value():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, gradtx.chain(gradtx.scale_by_learning_rate(1e-3),
                                          reduce_on_plateau(factor=0.5, patience=1)),
                      wrt=nnx.Param)

  @nnx.jit
  def step(m, o, loss):
    grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((1, 2)))))(m)
    o.update(m, grads, value=loss)

  for loss in (1.0, 1.0, 1.0):
    step(model, opt, jnp.asarray(loss))
  assert float(opt.opt_state[1].scale[...]) == 0.25
