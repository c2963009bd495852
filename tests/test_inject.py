"""inject_hyperparams (equals the plain alias, readable and writable state, vmap, optax.chain, flax
nnx, errors), set_hyperparams, and grid_sweep (equals the separate runs, chunked equals
unchunked)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params

STEPS = 12
from gradtx import _checks
from gradtx.tuning import sweep
from gradtx import InjectHyperparamsState
from gradtx.schedules.inject import inject_hyperparams, set_hyperparams
from gradtx.tuning.sweep import grid_sweep


def _mask_fn(params):
  """A callable mask (params -> tree of bools): must pass through, not be taken for a schedule."""
  return jax.tree.map(lambda p: p.ndim > 0, params)


def run(tx, grads, params=None, state=None, step=None, jit=False):
  """Applies `tx` over `grads`; returns (list of updates, list of states after each). Eager by
  default: a dozen small steps run faster than they compile."""
  params = make_params() if params is None else params
  state = tx.init(params) if state is None else state
  step = step or (jax.jit(tx.update) if jit else tx.update)
  ups, states = [], []
  for g in grads:
    u, state = step(g, state, params)
    params = gradtx.apply_updates(params, u)
    ups.append(u)
    states.append(state)
  return ups, states


def assert_trees_close(a, b, rtol=1e-6, atol=1e-7, what=""):
  assert jax.tree.structure(a) == jax.tree.structure(b), what
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol,
                               atol=atol, err_msg=what)


def signature(state):
  return jax.tree.structure(state), [(jnp.shape(x), jnp.asarray(x).dtype)
                                     for x in jax.tree.leaves(state)]


CONSTANT_CASES = {
    "adam": (gradtx.adam, dict(learning_rate=1e-2, b1=0.8, b2=0.99)),
    "adamw": (gradtx.adamw, dict(learning_rate=1e-2, weight_decay=0.1, mask=_mask_fn)),
    "sgd-momentum": (gradtx.sgd, dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    "rmsprop": (gradtx.rmsprop, dict(learning_rate=1e-2, decay=0.8, momentum=0.5,
                                     centered=True)),
}

SCHEDULE_CASES = {
    "adam": (gradtx.adam, dict(learning_rate=gradtx.warmup_cosine_decay_schedule(0.0, 0.1, 3, 12),
                               b1=0.8)),
    "adamw": (gradtx.adamw, dict(learning_rate=gradtx.cosine_decay_schedule(0.1, 12),
                                 weight_decay=lambda t: 0.1 * 0.9**t)),
    "sgd-momentum": (gradtx.sgd, dict(learning_rate=gradtx.exponential_decay(0.1, 3, 0.5),
                                      momentum=gradtx.linear_schedule(0.5, 0.95, 8))),
    "rmsprop": (gradtx.rmsprop, dict(learning_rate=gradtx.linear_schedule(1e-2, 1e-3, 10),
                                     momentum=0.9)),
}

# The numeric arguments (defaults included) each case stores in its state.
EXPECTED_KEYS = {
    "adam": {"learning_rate", "b1", "b2", "eps", "eps_root"},
    "adamw": {"learning_rate", "b1", "b2", "eps", "eps_root", "weight_decay"},
    "sgd-momentum": {"learning_rate", "momentum"},
    "rmsprop": {"learning_rate", "decay", "eps", "initial_scale", "momentum"},
}


def float32_alias(factory, kwargs, state):
  """The alias given, for every injected constant, the float32 array the state holds (defaults
  included); schedules, masks and flags as given."""
  constants = {k: v for k, v in state.hyperparams.items() if not callable(kwargs.get(k))}
  return factory(**{**kwargs, **constants})


@pytest.mark.parametrize("case", sorted(CONSTANT_CASES))
def test_equals_alias_with_constants(case):
  factory, kwargs = CONSTANT_CASES[case]
  grads = make_grads(STEPS)
  tx = inject_hyperparams(factory)(**kwargs)
  got, states = run(tx, grads)
  want, want_states = run(float32_alias(factory, kwargs, tx.init(make_params())), grads)
  assert_trees_close(got, want, what=case)
  assert_trees_close(states[-1].inner_state, want_states[-1], what=f"{case} inner state")
  # The alias with Python floats differs only by float32 rounding of 1 - b2 and the like.
  plain, _ = run(factory(**kwargs), grads)
  assert_trees_close(got, plain, rtol=5e-5, atol=1e-7, what=f"{case} Python floats")
  assert set(states[-1].hyperparams) == EXPECTED_KEYS[case]
  assert int(states[-1].count) == STEPS and states[-1].count.dtype == jnp.int32
  for name, value in states[-1].hyperparams.items():
    if name in kwargs:
      assert float(value) == pytest.approx(kwargs[name], rel=1e-6), name


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_equals_alias_with_schedules(case):
  factory, kwargs = SCHEDULE_CASES[case]
  grads = make_grads(STEPS)
  tx = inject_hyperparams(factory)(**kwargs)
  got, states = run(tx, grads)
  want, _ = run(float32_alias(factory, kwargs, tx.init(make_params())), grads)
  assert_trees_close(got, want, what=case)
  assert set(states[-1].hyperparams) == EXPECTED_KEYS[case]
  lr = kwargs["learning_rate"]
  assert float(tx.init(make_params()).hyperparams["learning_rate"]) == pytest.approx(
      float(lr(0)), rel=1e-6, abs=1e-7)
  for t, state in enumerate(states):  # after step t the state holds the value used at step t
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(float(lr(t)), rel=1e-6,
                                                                       abs=1e-7)


def test_schedule_is_evaluated_by_the_wrapper_unless_static():
  """scale_by_adam's own b1 schedule also uses b1(0) in its bias correction: injected, b1 is a
  plain value per step (optax's semantics); named in static_args, the inner schedule is used."""
  b1 = lambda t: 0.5 + 0.4 * (1.0 - 0.8**t)
  params, grads = make_params(), make_grads(steps=5)
  tx = inject_hyperparams(gradtx.adam)(learning_rate=1e-2, b1=b1)
  got, states = run(tx, grads, params)
  hyperparams = dict(tx.init(params).hyperparams)
  inner, p = tx.init(params).inner_state, params
  for t, g in enumerate(grads):
    want, inner = gradtx.adam(**{**hyperparams, "b1": b1(t)}).update(g, inner, p)
    assert_trees_close(got[t], want, what=f"step {t}")
    assert float(states[t].hyperparams["b1"]) == pytest.approx(b1(t), rel=1e-6)
    p = gradtx.apply_updates(p, want)
  tx = inject_hyperparams(gradtx.adam, static_args="b1")(learning_rate=1e-2, b1=b1)
  got, states = run(tx, grads, params)
  assert "b1" not in states[-1].hyperparams
  hyperparams.pop("b1")
  want, _ = run(gradtx.adam(**hyperparams, b1=b1), grads, params)
  assert_trees_close(got, want)


def test_matches_optax_inject_hyperparams():
  schedule = gradtx.cosine_decay_schedule(0.1, 12)
  kwargs = dict(learning_rate=schedule, weight_decay=0.05, b1=0.85)
  grads = make_grads(STEPS)
  got, states = run(inject_hyperparams(gradtx.adamw)(**kwargs), grads, jit=True)
  want, ostates = run(optax.inject_hyperparams(optax.adamw)(**kwargs), grads, jit=True)
  assert_trees_close(got, want)
  for s, o in zip(states, ostates):
    assert set(s.hyperparams) == set(o.hyperparams)
    assert_trees_close(s.hyperparams, o.hyperparams)
    assert int(s.count) == int(o.count)


def test_overwrite_between_steps_equals_alias_with_new_value_and_does_not_recompile():
  tx = inject_hyperparams(gradtx.adam)(learning_rate=1e-2)
  step = jax.jit(tx.update)
  params, grads = make_params(), make_grads(steps=5)
  state0 = tx.init(params)
  _, states = run(tx, grads[:3], params, step=step)
  state = states[-1]
  assert float(state.hyperparams["learning_rate"]) == pytest.approx(1e-2)

  hyperparams = dict(state0.hyperparams)  # float32 arrays, for the reference alias
  state.hyperparams["learning_rate"] = jnp.float32(1e-4)  # as in optax: mutate the dict
  got, state = step(grads[3], state, params)
  want, want_inner = gradtx.adam(**{**hyperparams, "learning_rate": jnp.float32(1e-4)}).update(
      grads[3], states[-1].inner_state, params)
  assert_trees_close(got, want)
  assert_trees_close(state.inner_state, want_inner)
  assert float(state.hyperparams["learning_rate"]) == pytest.approx(1e-4)

  state = set_hyperparams(state, learning_rate=3e-3, b1=0.5)  # Python floats, cast to float32
  got, new_state = step(grads[4], state, params)
  want, _ = gradtx.adam(**{**hyperparams, "learning_rate": jnp.float32(3e-3),
                           "b1": jnp.float32(0.5)}).update(grads[4], state.inner_state, params)
  assert_trees_close(got, want)
  assert signature(new_state) == signature(state0)
  assert step._cache_size() == 1, "overwriting a hyperparameter with an array recompiled"

  # A Python float is weakly typed: one more compiled variant, reused by later Python floats (the
  # step returns the float32 array, so the state's signature is restored).
  new_state.hyperparams["learning_rate"] = 1e-4
  _, new_state = step(grads[4], new_state, params)
  size = step._cache_size()
  for value in (2e-4, 3e-4):
    new_state.hyperparams["learning_rate"] = value
    _, new_state = step(grads[4], new_state, params)
    assert float(new_state.hyperparams["learning_rate"]) == pytest.approx(value)
  assert step._cache_size() == size
  assert signature(new_state) == signature(state0)


def test_set_hyperparams_finds_nested_states_and_leaves_input_unchanged():
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0),
                    inject_hyperparams(gradtx.sgd)(learning_rate=0.1, momentum=0.9))
  state = tx.init(make_params())
  new = set_hyperparams(state, momentum=0.5)
  assert float(new[1].hyperparams["momentum"]) == 0.5
  assert float(state[1].hyperparams["momentum"]) == pytest.approx(0.9)
  assert signature(new) == signature(state)
  with pytest.raises(ValueError, match="'lr'.*learning_rate, momentum"):
    set_hyperparams(state, lr=0.1)
  with pytest.raises(ValueError, match="no InjectHyperparamsState"):
    set_hyperparams(gradtx.adam(0.1).init(make_params()), learning_rate=0.1)


def _quadratic_train(tx, params, steps=3):
  """A few steps on sum(p**2) from `params`; returns the final params."""
  state = tx.init(params)
  for _ in range(steps):
    g = jax.grad(lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p)))(params)
    u, state = tx.update(g, state, params)
    params = gradtx.apply_updates(params, u)
  return params


def test_vmap_over_batch_of_injected_states_equals_loop():
  tx = inject_hyperparams(gradtx.adamw)(learning_rate=1e-2, weight_decay=1e-2)
  params = make_params()
  lrs = jnp.asarray([1e-3, 1e-2, 1e-1])
  wds = jnp.asarray([0.0, 1e-2, 0.3])

  def train(state, p):
    for _ in range(3):
      g = jax.grad(lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p)))(p)
      u, state = tx.update(g, state, p)
      p = gradtx.apply_updates(p, u)
    return p, state

  states = jax.vmap(lambda lr, wd: set_hyperparams(tx.init(params), learning_rate=lr,
                                                   weight_decay=wd))(lrs, wds)
  batched_p, batched_s = jax.jit(jax.vmap(train, in_axes=(0, None)))(states, params)
  for i in range(3):
    s = set_hyperparams(tx.init(params), learning_rate=lrs[i], weight_decay=wds[i])
    p, s = train(s, params)
    assert_trees_close(jax.tree.map(lambda x: x[i], batched_p), p, rtol=1e-5, atol=1e-7)
    assert_trees_close(jax.tree.map(lambda x: x[i], batched_s), s, rtol=1e-5, atol=1e-7)


def test_built_inside_vmap_with_traced_hyperparameters_equals_alias():
  params = make_params()
  lrs = jnp.asarray([1e-3, 3e-2, 0.3])
  batched = jax.jit(jax.vmap(
      lambda lr: _quadratic_train(inject_hyperparams(gradtx.rmsprop)(lr, momentum=0.5), params)
  ))(lrs)
  single = jax.jit(lambda lr: _quadratic_train(gradtx.rmsprop(lr, momentum=0.5), params))
  for i, lr in enumerate(lrs):
    assert_trees_close(jax.tree.map(lambda x: x[i], batched), single(lr), rtol=1e-5, atol=1e-7)


def test_in_optax_chain_and_with_optax_factories():
  grads = make_grads(steps=10)
  got, states = run(optax.chain(optax.clip_by_global_norm(1.0),
                                inject_hyperparams(gradtx.adam)(learning_rate=1e-2)), grads)
  want, _ = run(optax.chain(optax.clip_by_global_norm(1.0), gradtx.adam(1e-2)), grads)
  assert_trees_close(got, want)
  assert isinstance(states[-1][1], InjectHyperparamsState)
  tx = inject_hyperparams(gradtx.adam)(learning_rate=1e-2)  # extra arguments reach the inner
  u, _ = tx.update(grads[0], tx.init(make_params()), make_params(), value=jnp.ones(()))
  assert_trees_close(u, got[0])
  # An optax factory inside gradtx's wrapper, inside gradtx.chain, equals optax's own wrapper.
  got, _ = run(gradtx.chain(inject_hyperparams(optax.adam)(learning_rate=1e-2, b1=0.8)), grads)
  want, _ = run(optax.inject_hyperparams(optax.adam)(learning_rate=1e-2, b1=0.8), grads)
  assert_trees_close([u for u in got], want)


def test_flax_nnx_optimizer_reads_and_overwrites_hyperparameters():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  tx = inject_hyperparams(gradtx.adamw)(learning_rate=5e-2, weight_decay=1e-3)
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])

  @nnx.jit
  def step(m, o):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(m)
    o.update(m, grads)
    return loss

  first = float(step(model, opt))
  for _ in range(5):
    last = float(step(model, opt))
  assert last < first
  for leaf in jax.tree.leaves(opt.opt_state):
    assert isinstance(leaf, jax.Array)
  assert int(opt.opt_state.count[...]) == 6
  assert float(opt.opt_state.hyperparams["learning_rate"][...]) == pytest.approx(5e-2)
  # Overwrite through the optimizer's state: zero learning rate freezes the model.
  opt.opt_state.hyperparams["learning_rate"][...] = jnp.asarray(0.0)
  kernel = np.asarray(model.kernel[...])
  step(model, opt)
  np.testing.assert_array_equal(np.asarray(model.kernel[...]), kernel)


def test_non_numeric_and_static_args_pass_through():
  params = make_params()
  tx = inject_hyperparams(gradtx.adamw)(1e-2, mu_dtype=jnp.bfloat16, mask=_mask_fn,
                                        nesterov=True)
  state = tx.init(params)
  assert set(state.hyperparams) == EXPECTED_KEYS["adamw"]
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(state.inner_state[0].mu))
  # A schedule named in static_args is handed to the inner factory as is: not in the state.
  schedule = gradtx.exponential_decay(0.1, 2, 0.5)
  tx = inject_hyperparams(gradtx.sgd, static_args="learning_rate")(schedule, momentum=0.9)
  grads = make_grads(steps=4)
  got, states = run(tx, grads)
  assert set(states[-1].hyperparams) == {"momentum"}
  want, _ = run(gradtx.sgd(schedule, momentum=0.9), grads)
  assert_trees_close(got, want)
  # None and bools pass through: sgd without momentum stores only the learning rate.
  assert set(inject_hyperparams(gradtx.sgd)(0.1).init(params).hyperparams) == {"learning_rate"}


def test_hyperparameter_dtypes_are_stable():
  params = make_params(jnp.bfloat16)
  grads = make_grads(steps=3, dtype=jnp.bfloat16)
  # bfloat16 params: hyperparameters in float32 (in bfloat16, b2 = 0.999 would round to 1).
  tx = inject_hyperparams(gradtx.adam)(learning_rate=1e-2)
  state0 = tx.init(params)
  assert all(v.dtype == jnp.float32 for v in state0.hyperparams.values())
  assert float(state0.hyperparams["b2"]) == pytest.approx(0.999)
  state = state0
  for g in grads:
    u, state = tx.update(g, state)  # no params: the dtype comes from the updates
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
  assert signature(state) == signature(state0)
  # An explicit hyperparam_dtype is used for every float, and kept by update.
  tx16 = inject_hyperparams(gradtx.sgd, hyperparam_dtype=jnp.bfloat16)(
      learning_rate=jnp.float32(0.1), momentum=0.9)
  state = tx16.init(params)
  assert all(v.dtype == jnp.bfloat16 for v in state.hyperparams.values())
  u, state = tx16.update(grads[0], state, params)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
  assert all(v.dtype == jnp.bfloat16 for v in state.hyperparams.values())


def test_error_unknown_hyperparameter_names_argument_and_factory():
  with pytest.raises(TypeError, match=r"unknown hyperparameter 'lr'.*adamw takes learning_rate"):
    inject_hyperparams(gradtx.adamw)(lr=1e-3)
  with pytest.raises(TypeError, match="inject_hyperparams\\(adam\\).*learning_rate"):
    inject_hyperparams(gradtx.adam)()


def test_error_non_scalar_hyperparameter_points_to_vmap():
  with pytest.raises(ValueError, match=r"learning_rate must be a scalar.*shape \(2,\)") as e:
    inject_hyperparams(gradtx.adamw)(learning_rate=jnp.asarray([1e-3, 1e-2]))
  assert _checks.SWEEP_HINT in str(e.value)


def test_errors_at_construction():
  with pytest.raises(ValueError, match="b1"):
    inject_hyperparams(gradtx.adam)(1e-3, b1=1.5)  # the inner factory's own check
  with pytest.raises(ValueError, match="static_args.*'lr'"):
    inject_hyperparams(gradtx.adam, static_args=("lr",))
  with pytest.raises(TypeError, match="inner_factory"):
    inject_hyperparams(gradtx.adam(1e-3))
  with pytest.raises(ValueError, match="hyperparam_dtype"):
    inject_hyperparams(gradtx.adam, hyperparam_dtype=jnp.int32)


# --- grid_sweep ----------------------------------------------------------------------------------

SWEEP_STEPS = 30
LRS = jnp.logspace(-3.0, -0.5, 64)
WDS = jnp.asarray([0.0, 1e-3, 1e-2, 1e-1])


def _regression_data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(32, 4)).astype(np.float32)
  y = x @ np.asarray([1.0, -2.0, 0.5, 3.0], np.float32) + 0.1 * rng.normal(size=32)
  return jnp.asarray(x), jnp.asarray(y, jnp.float32)


def _loss(p, x, y):
  return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def _scan_train(tx, state=None):
  x, y = _regression_data()
  p0 = {"w": jnp.zeros(4), "b": jnp.zeros(())}

  def body(carry, _):
    p, s = carry
    loss, g = jax.value_and_grad(_loss)(p, x, y)
    u, s = tx.update(g, s, p)
    return (gradtx.apply_updates(p, u), s), loss

  init = tx.init(p0) if state is None else state(p0)
  (p, _), losses = jax.lax.scan(body, (p0, init), None, length=SWEEP_STEPS)
  return {"params": p, "losses": losses}


def train_adamw(learning_rate, weight_decay):
  return _scan_train(gradtx.adamw(learning_rate=learning_rate, weight_decay=weight_decay))


_INJECTED = inject_hyperparams(gradtx.adamw)(learning_rate=1e-3, weight_decay=0.0)


def train_injected(learning_rate, weight_decay):
  """The same training with one optimizer built outside, its hyperparameters set in the state."""
  return _scan_train(_INJECTED, state=lambda p: set_hyperparams(
      _INJECTED.init(p), learning_rate=learning_rate, weight_decay=weight_decay))


@functools.lru_cache(maxsize=None)
def full_sweep():
  return grid_sweep(train_adamw, learning_rate=LRS, weight_decay=WDS)


def test_grid_sweep_equals_256_separate_runs():
  out = full_sweep()
  assert out["losses"].shape == (64, 4, SWEEP_STEPS)
  assert out["params"]["w"].shape == (64, 4, 4) and out["params"]["b"].shape == (64, 4)
  single = jax.jit(train_adamw)  # traced hyperparameters: one compile for the 256 runs
  runs = [[single(lr, wd) for wd in WDS] for lr in LRS]
  want = jax.tree.map(lambda *xs: jnp.stack(xs), *[jax.tree.map(lambda *ys: jnp.stack(ys), *r)
                                                   for r in runs])
  assert single._cache_size() == 1
  assert_trees_close(out, want, rtol=1e-5, atol=1e-6)
  # The sweep is not degenerate: the learning rate matters and a good one fits the data.
  final = np.asarray(out["losses"][:, :, -1])
  assert final.min() < 0.1 * final.max()


def test_grid_sweep_chunked_equals_unchunked():
  out = full_sweep()
  # `out` ran with the default chunk_size='auto' (chunks of 8 on CPU); this one all at once.
  chunked = grid_sweep(train_adamw, chunk_size=None, learning_rate=LRS, weight_decay=WDS)
  assert jax.tree.structure(chunked) == jax.tree.structure(out)
  assert_trees_close(chunked, out, rtol=1e-5, atol=1e-6)  # vectorized differently: rounding
  if jax.default_backend() == "cpu":  # 'auto' (the default) is chunks of 8 on CPU
    assert sweep._AUTO_CPU_CHUNK == 8


def test_grid_sweep_through_injected_state_equals_separate_runs():
  lrs = LRS[::8]
  got = grid_sweep(train_injected, learning_rate=lrs, weight_decay=WDS)
  assert got["losses"].shape == (8, 4, SWEEP_STEPS)
  single = jax.jit(train_injected)
  for i, lr in enumerate(lrs):
    for j, wd in enumerate(WDS):
      assert_trees_close(jax.tree.map(lambda x: x[i, j], got), single(lr, wd), rtol=1e-5,
                         atol=1e-6)
  # The closure sweep keeps b2 = 0.999 as a Python float: equal up to float32 rounding of 1 - b2.
  assert_trees_close(got, jax.tree.map(lambda x: x[::8], full_sweep()), rtol=2e-4, atol=1e-5)


def test_grid_sweep_errors():
  with pytest.raises(ValueError, match="learning_rate must be a non-empty 1-d grid"):
    grid_sweep(train_adamw, learning_rate=jnp.ones((2, 2)), weight_decay=WDS)
  with pytest.raises(ValueError, match="weight_decay must be a non-empty 1-d grid"):
    grid_sweep(train_adamw, learning_rate=LRS, weight_decay=[])
  with pytest.raises(ValueError, match="chunk_size"):
    grid_sweep(train_adamw, chunk_size=0, learning_rate=LRS, weight_decay=WDS)
  with pytest.raises(ValueError, match="chunk_size must be 'auto'"):
    grid_sweep(train_adamw, chunk_size="fast", learning_rate=LRS, weight_decay=WDS)
  with pytest.raises(ValueError, match="at least one grid"):
    grid_sweep(train_adamw)
  with pytest.raises(TypeError, match="train_fn"):
    grid_sweep(None, learning_rate=LRS)


def test_grid_sweep_reuses_its_compiled_program():
  traces = []

  def train(lr):
    traces.append(1)  # runs once per trace, not per configuration
    tx = gradtx.adam(lr)
    p = jnp.ones(3)
    return gradtx.apply_updates(p, tx.update(2 * p, tx.init(p), p)[0])

  first = gradtx.grid_sweep(train, lr=jnp.asarray([0.1, 0.2]))
  second = gradtx.grid_sweep(train, lr=jnp.asarray([0.3, 0.4]))  # same shapes: no new trace
  assert len(traces) == 1
  gradtx.grid_sweep(train, lr=jnp.asarray([0.1, 0.2, 0.3]))  # a new grid shape traces again
  assert len(traces) == 2
  np.testing.assert_allclose(first[:, 0], [0.9, 0.8], rtol=1e-5)
  np.testing.assert_allclose(second[:, 0], [0.7, 0.6], rtol=1e-5)


# --- inject_stateful_hyperparams, StatefulSchedule, WrappedSchedule -----------------------------

STATEFUL_STEPS = 25


class HalveOnRise(gradtx.schedules.StatefulSchedule):
  """A stateful schedule fed by `update`'s extra argument `value` (the loss): the value halves
  whenever the loss rises. The same instance serves gradtx and optax (a structural protocol)."""

  def __init__(self, init_value):
    self.init_value = init_value

  def init(self):
    return {"value": jnp.asarray(self.init_value, jnp.float32),
            "last": jnp.asarray(jnp.inf, jnp.float32)}

  def update(self, state, value=None, **extra_args):
    del extra_args
    rose = value > state["last"]
    return {"value": jnp.where(rose, state["value"] / 2, state["value"]), "last": value}

  def __call__(self, state, **extra_args):
    del extra_args
    return state["value"]


# Losses passed as `value=`: they rise at steps 3, 7, 11, ...
LOSSES = [jnp.float32(1.0 / (1 + t) + (0.5 if t % 4 == 3 else 0.0)) for t in range(STATEFUL_STEPS)]


def run_stateful(tx, grads, params, jit=False):
  """Like `run`, passing the step's loss as `value=`; returns (updates, states)."""
  state = tx.init(params)
  step = jax.jit(tx.update) if jit else tx.update
  ups, states = [], []
  for g, loss in zip(grads, LOSSES):
    u, state = step(g, state, params, value=loss)
    params = gradtx.apply_updates(params, u)
    ups.append(u)
    states.append(state)
  return ups, states


from state_audit import describe  # noqa: E402  (class names, fields, shapes, dtypes)


def assert_trees_equal(a, b, what=""):
  """Bit-identical leaves and equal descriptions (the libraries' classes differ, so treedefs do)."""
  assert describe(a) == describe(b), what
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=what)


def _optax_stateful(factory):
  with pytest.warns(DeprecationWarning):  # optax 0.2.8 deprecates the name; gradtx does not
    return optax.inject_stateful_hyperparams(factory)


def _decay(t):
  """A plain schedule, the same function for both libraries (so only the wrappers differ)."""
  return 0.05 * 0.9 ** t


def test_stateful_wrapper_equals_optax_bit_for_bit_on_the_same_factory(jit=True):
  """gradtx's and optax's wrappers around the same (optax) factory: same hyperparameter values,
  schedule states and updates over 25 steps, with a plain schedule (WrappedSchedule) and a
  custom StatefulSchedule fed by `value=`."""
  params, grads = make_params(), make_grads(STATEFUL_STEPS)
  kwargs = lambda: dict(learning_rate=HalveOnRise(0.1), b1=lambda t: 0.9 - 0.4 * 0.8 ** t,
                        eps=1e-6)
  got, states = run_stateful(
      gradtx.inject_stateful_hyperparams(optax.adamw)(**kwargs()), grads, params, jit)
  want, ostates = run_stateful(_optax_stateful(optax.adamw)(**kwargs()), grads, params, jit)
  assert_trees_equal(got, want)
  assert_trees_equal(states, ostates)  # count, hyperparams, hyperparams_states, inner state
  lrs = [s.hyperparams["learning_rate"] for s in states]
  # The loss rises at steps 3, 7, ..., 23; the value halves from the step after each rise.
  assert lrs[3] == np.float32(0.1) and lrs[4] == np.float32(0.05)
  assert lrs[-1] == np.float32(0.1) / 2**6
  assert [int(s.hyperparams_states["b1"].count) for s in states] == list(range(1, 26))


def test_stateful_gradtx_factories_equal_optax():
  params, grads = make_params(), make_grads(STATEFUL_STEPS)
  for gfac, ofac, kwargs in [
      (gradtx.sgd, optax.sgd, lambda: dict(learning_rate=HalveOnRise(0.1), momentum=_decay)),
      (gradtx.adam, optax.adam, lambda: dict(learning_rate=_decay, b1=0.8)),
  ]:
    got, states = run_stateful(gradtx.inject_stateful_hyperparams(gfac)(**kwargs()), grads, params,
                               jit=True)
    want, ostates = run_stateful(_optax_stateful(ofac)(**kwargs()), grads, params, jit=True)
    # The inner algorithms' own rounding (e.g. adam's bias correction order), not the wrapper's.
    assert_trees_close(got, want, rtol=1e-5, atol=1e-7, what=gfac.__name__)
    assert_trees_equal([s.hyperparams for s in states], [s.hyperparams for s in ostates])
    assert_trees_equal([s.hyperparams_states for s in states],
                       [s.hyperparams_states for s in ostates])


def test_stateful_state_structure_equals_optax_for_float32_params():
  params = make_params()
  kwargs = lambda: dict(b1=gradtx.linear_schedule(0.5, 0.9, 10), b2=0.99)
  state = gradtx.inject_stateful_hyperparams(gradtx.scale_by_adam)(**kwargs()).init(params)
  ostate = _optax_stateful(optax.scale_by_adam)(**kwargs()).init(params)
  assert describe(state) == describe(ostate)
  assert type(state).__name__ == "InjectStatefulHyperparamsState"
  assert type(state.hyperparams_states["b1"]).__name__ == "WrappedScheduleState"
  # optax 0.2.8's inject_hyperparams returns the same state; gradtx's keeps InjectHyperparamsState.
  assert describe(optax.inject_hyperparams(optax.scale_by_adam)(**kwargs()).init(params)) == \
      describe(state)
  tx = gradtx.inject_stateful_hyperparams(gradtx.sgd)(HalveOnRise(0.1), momentum=0.9)
  u, after = tx.update(make_grads(1)[0], tx.init(params), params, value=jnp.float32(1.0))
  assert describe(after) == describe(tx.init(params))
  assert after.count.dtype == jnp.int32


def test_stateful_vmap_over_schedule_states_and_hyperparameters_equals_loop():
  params, grads = make_params(), make_grads(6)
  tx = gradtx.inject_stateful_hyperparams(gradtx.sgd)(HalveOnRise(0.1), momentum=0.9)
  lrs, momenta = jnp.asarray([0.01, 0.1, 0.3]), jnp.asarray([0.0, 0.5, 0.9])

  def start(lr, momentum):
    state = set_hyperparams(tx.init(params), momentum=momentum)
    schedule_state = dict(state.hyperparams_states["learning_rate"], value=lr)
    return state._replace(hyperparams_states={"learning_rate": schedule_state})

  def train(state):
    p = params
    for g, loss in zip(grads, LOSSES):
      u, state = tx.update(g, state, p, value=loss)
      p = gradtx.apply_updates(p, u)
    return p, state

  batched = jax.jit(jax.vmap(lambda lr, m: train(start(lr, m))))(lrs, momenta)
  for i in range(3):
    want = train(start(lrs[i], momenta[i]))
    assert_trees_close(jax.tree.map(lambda x: x[i], batched), want, rtol=1e-6, atol=1e-7)


def test_stateful_hyperparameters_stored_in_at_least_float32():
  """The inject_hyperparams rule (a deliberate difference from optax, which stores bfloat16 for
  bfloat16 params and rounds b2 = 0.999 to 1)."""
  params, grads = make_params(jnp.bfloat16), make_grads(3, dtype=jnp.bfloat16)
  tx = gradtx.inject_stateful_hyperparams(gradtx.adam)(learning_rate=_decay)
  state = tx.init(params)
  assert all(v.dtype == jnp.float32 for v in state.hyperparams.values())
  assert float(state.hyperparams["b2"]) == pytest.approx(0.999)
  for g in grads:
    u, new = tx.update(g, state, params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
    assert describe(new) == describe(state)
    state = new
  ostate = _optax_stateful(optax.adam)(learning_rate=_decay).init(params)
  assert ostate.hyperparams["b2"].dtype == jnp.bfloat16 and float(ostate.hyperparams["b2"]) == 1.0
  tx16 = gradtx.inject_stateful_hyperparams(gradtx.sgd, hyperparam_dtype=jnp.bfloat16)(_decay)
  assert tx16.init(params).hyperparams["learning_rate"].dtype == jnp.bfloat16


def test_wrapped_schedule_and_protocol():
  schedule = gradtx.WrappedSchedule(gradtx.linear_schedule(1.0, 0.0, 4))
  state = schedule.init()
  assert type(state).__name__ == "WrappedScheduleState" and state.count.dtype == jnp.int32
  values = []
  for _ in range(6):
    values.append(float(schedule(state, value=1.0)))  # extra arguments are ignored
    state = schedule.update(state, value=1.0)
  assert values == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
  assert isinstance(schedule, gradtx.schedules.StatefulSchedule)
  assert isinstance(schedule, optax.schedules.StatefulSchedule)
  assert isinstance(optax.WrappedSchedule(_decay), gradtx.schedules.StatefulSchedule)
  assert not isinstance(_decay, gradtx.schedules.StatefulSchedule)
  assert not isinstance(gradtx.adam(0.1), gradtx.schedules.StatefulSchedule)
  # optax's wrapped schedule works inside gradtx's wrapper, and set_hyperparams finds the state.
  tx = gradtx.inject_stateful_hyperparams(gradtx.sgd)(optax.WrappedSchedule(_decay), momentum=0.5)
  state = set_hyperparams(tx.init(make_params()), momentum=0.9)
  assert float(state.hyperparams["momentum"]) == pytest.approx(0.9)


def test_inject_hyperparams_is_the_stateful_wrapper_as_in_optax():
  """optax 0.2.8's inject_hyperparams takes stateful schedules and returns the stateful layout:
  gradtx's inject_hyperparams and inject_stateful_hyperparams are one wrapper."""
  p = jnp.zeros(2)
  a = inject_hyperparams(gradtx.sgd)(learning_rate=HalveOnRise(0.1))
  b = gradtx.inject_stateful_hyperparams(gradtx.sgd)(learning_rate=HalveOnRise(0.1))
  sa, sb = a.init(p), b.init(p)
  for loss in (1.0, 2.0, 1.5):
    ua, sa = a.update(jnp.ones(2), sa, p, value=jnp.float32(loss))
    ub, sb = b.update(jnp.ones(2), sb, p, value=jnp.float32(loss))
    np.testing.assert_array_equal(ua, ub)
  assert type(sa) is gradtx.InjectStatefulHyperparamsState is gradtx.InjectHyperparamsState
  jax.tree.map(np.testing.assert_array_equal, sa, sb)


def test_stateful_errors():
  with pytest.raises(TypeError, match="WrappedSchedule: schedule_fn"):
    gradtx.WrappedSchedule(0.1)
  with pytest.raises(TypeError, match="inject_stateful_hyperparams: inner_factory"):
    gradtx.inject_stateful_hyperparams(gradtx.adam(1e-3))
  with pytest.raises(ValueError, match="inject_stateful_hyperparams: static_args.*'lr'"):
    gradtx.inject_stateful_hyperparams(gradtx.adam, static_args="lr")
  with pytest.raises(TypeError, match=r"inject_stateful_hyperparams\(adamw\): unknown "
                     r"hyperparameter 'lr'"):
    gradtx.inject_stateful_hyperparams(gradtx.adamw)(lr=1e-3)
  with pytest.raises(ValueError, match="inject_stateful_hyperparams: hyperparam_dtype"):
    gradtx.inject_stateful_hyperparams(gradtx.adam, hyperparam_dtype=jnp.int32)
  with pytest.raises(ValueError, match="b1"):  # the inner factory's check, at step 0's value
    gradtx.inject_stateful_hyperparams(gradtx.adam)(1e-3, b1=gradtx.WrappedSchedule(lambda t: 1.5))
  with pytest.raises(ValueError, match="learning_rate must be a scalar"):
    gradtx.inject_stateful_hyperparams(gradtx.sgd)(learning_rate=jnp.ones(2))


# --- a schedule reaching a boundary value optax accepts -----------------------------------------


def test_clip_by_global_norm_schedule_to_zero_runs_and_equals_optax():
  """optax accepts max_norm=0 (zero updates); gradtx validates max_norm >= 0, so the schedule's
  last value, which inject_hyperparams hands to the factory as a concrete array, must not raise."""
  params = {"w": jnp.asarray([0.5, -1.0, 2.0]), "b": jnp.asarray(0.3)}  # small: 120 eager steps
  grads = [jax.tree.map(lambda p: jnp.cos(p + t), params) for t in range(120)]
  # The stateful wrapper shares the machinery: a shorter schedule crossing the same boundary.
  for wrap, end, steps in [(inject_hyperparams, 99, 120),
                           (gradtx.inject_stateful_hyperparams, 9, 12)]:
    schedule = gradtx.linear_schedule(1.0, 0.0, end)
    got, states = run(wrap(gradtx.clip_by_global_norm)(max_norm=schedule), grads[:steps], params)
    want, _ = run(optax.inject_hyperparams(optax.clip_by_global_norm)(max_norm=schedule),
                  grads[:steps], params)
    # g * (c / |g|) where optax computes (g / |g|) * c (README): equal up to rounding.
    assert_trees_close(got, want, rtol=1e-6, atol=1e-7)
    assert float(states[-1].hyperparams["max_norm"]) == 0.0
    for u in got[end:]:
      assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(u))


def test_clip_by_global_norm_zero_gives_zero_updates_without_nan():
  zeros = jax.tree.map(jnp.zeros_like, make_params())
  for max_norm in (0.0, jnp.float32(0.0)):
    tx = gradtx.clip_by_global_norm(max_norm)
    for g in (make_grads(1)[0], zeros):
      for update in (tx.update, jax.jit(tx.update)):
        u, _ = update(g, tx.init(None))
        for x in jax.tree.leaves(u):
          np.testing.assert_array_equal(np.asarray(x), 0.0)
  # optax returns NaN for a zero gradient at max_norm=0 (0 / 0); a deliberate difference.
  u, _ = optax.clip_by_global_norm(0.0).update(zeros, optax.EmptyState())
  assert np.isnan(np.asarray(u["b"]["c"]))
  assert float(gradtx.clip_by_global_norm(1.0).update(zeros, gradtx.EmptyState())[0]["b"]["c"]) == 0


@pytest.mark.parametrize("factory, kwargs", [
    ("sgd", dict(learning_rate=0.0, momentum=0.0)),
    ("adam", dict(learning_rate=0.0, b1=0.0, b2=0.0, eps=0.0)),
    ("adamw", dict(learning_rate=0.1, b1=0.0, weight_decay=0.0)),
    ("rmsprop", dict(learning_rate=0.1, decay=0.0, momentum=0.0, eps=0.0)),
    ("add_decayed_weights", dict(weight_decay=0.0)),
    ("clip", dict(max_delta=0.0)),
], ids=lambda x: x if isinstance(x, str) else "")
def test_boundary_values_reached_by_schedules_are_accepted_as_in_optax(factory, kwargs):
  """Each hyperparameter scheduled from 0.5 down to its boundary value: injected, the wrapper
  hands the factory the concrete value at each step, which must not raise."""
  params, grads = make_params(), make_grads(4)
  sched = {k: gradtx.linear_schedule(0.5, v, 2) for k, v in kwargs.items()}
  got, states = run(inject_hyperparams(getattr(gradtx, factory))(**sched), grads, params)
  want, _ = run(optax.inject_hyperparams(getattr(optax, factory))(**sched), grads, params)
  assert_trees_close(got, want, rtol=1e-5, atol=1e-7, what=factory)
  for k, v in kwargs.items():
    assert states[-1].hyperparams[k] == np.float32(v), k


def test_clip_by_block_rms_schedule_to_zero_runs_and_equals_optax():
  params = {"w": jnp.asarray([0.5, -1.0, 2.0]), "z": jnp.zeros(2)}
  grads = [{"w": jnp.cos(params["w"] + t), "z": jnp.zeros(2)} for t in range(8)]
  schedule = gradtx.linear_schedule(1.0, 0.0, 5)
  got, _ = run(inject_hyperparams(gradtx.clip_by_block_rms)(threshold=schedule), grads, params)
  want, _ = run(optax.inject_hyperparams(optax.clip_by_block_rms)(threshold=schedule), grads,
                params)
  assert_trees_close([u["w"] for u in got], [u["w"] for u in want])
  # An all-zero block at threshold 0: zeros (optax: 0 / NaN = NaN, a deliberate difference).
  assert all(not np.any(np.asarray(u["z"])) for u in got)
  assert np.isnan(np.asarray(want[-1]["z"])).all()
  assert all(not np.any(np.asarray(u["w"])) for u in got[5:])
