"""gradtx.learned's learned optimizers and meta-training (issue 19, the "lstm" half): the LSTM and
MLP optimizers against NumPy transcriptions, permutation equivariance, meta-gradients against
finite differences, ES/PES unbiasedness, meta_train with each estimator, checkpoints, tasks, the
generic modes (jit, vmap, bf16, chain, extras, nnx) and bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import reference as ref
from gradtx import learned
from gradtx.learned import meta as _meta

# Small shared configurations (compile-bound suite: few, tiny jitted functions).
LSTM = learned.lstm_optimizer(hidden_size=5, num_layers=2)
MLP = learned.mlp_optimizer(hidden_size=6, num_hidden=1)
TINY_LSTM = learned.lstm_optimizer(hidden_size=4, num_layers=1)
LSTM_META = LSTM.init_meta_params(jax.random.key(0))
MLP_META = MLP.init_meta_params(jax.random.key(1))


def _params():
  return {"a": jnp.array([0.5, -1.0, 2.0]), "b": (jnp.array([[1.0, -2.0], [0.0, 3.0]]),)}


def _grads(steps=4):
  """Gradients over steps, with tiny (< e^-10) and zero entries for Appendix A's second branch."""
  rng = np.random.default_rng(0)
  out = []
  for t in range(steps):
    a = rng.normal(size=3).astype(np.float32)
    a[0] = 1e-6 if t % 2 else 0.0
    out.append({"a": jnp.asarray(a), "b": (jnp.asarray(rng.normal(size=(2, 2)), jnp.float32),)})
  return out


def _run(tx, grads, params):
  state = tx.init(params)
  ups = []
  update = jax.jit(tx.update)  # one compile instead of op-by-op dispatch
  for g in grads:
    u, state = update(g, state, params)
    params = gradtx.apply_updates(params, u)
    ups.append(u)
  return ups, state


def _np(tree):
  return jax.tree.map(np.asarray, tree)


@pytest.mark.parametrize("preprocess", [True, False])
def test_lstm_update_equals_numpy_transcription(preprocess):
  opt = learned.lstm_optimizer(hidden_size=5, num_layers=2, preprocess=preprocess)
  mp = opt.init_meta_params(jax.random.key(3))
  # Non-zero biases so every term of the cell is exercised.
  mp = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(4), x.shape), mp)
  grads = _grads()
  ups, state = _run(opt.transformation(mp), grads, _params())
  want = ref.lstm_optimizer([jax.tree.leaves(g) for g in grads], _np(mp), hidden_size=5,
                            preprocess=preprocess)
  for got, exp in zip(ups, want):
    for a, b in zip(jax.tree.leaves(got), exp):
      np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)  # f32 against the f64 loop
  assert state.hidden[1]["b"][0].shape == (5, 2, 2) and int(state.count) == 4


def test_mlp_update_equals_numpy_transcription_and_reads_params():
  grads, params = _grads(), _params()
  ups, state = _run(MLP.transformation(MLP_META), grads, params)
  want = ref.mlp_optimizer(jax.tree.leaves(params), [jax.tree.leaves(g) for g in grads],
                           _np(MLP_META), decays=(0.5, 0.9, 0.99, 0.999), rms_decay=0.999,
                           step_mult=1e-3, exp_mult=1e-3, eps=1e-8)
  for got, exp in zip(ups, want):
    for a, b in zip(jax.tree.leaves(got), exp):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-9)
  # The features include the parameter value and the momenta.
  np.testing.assert_allclose(state.mu[0]["a"], sum(0.5 ** (3 - t) * 0.5 * grads[t]["a"]
                                                  for t in range(4)), rtol=1e-6)
  tx = MLP.transformation(MLP_META)
  u1, _ = tx.update(grads[0], tx.init(params), params)
  u2, _ = tx.update(grads[0], tx.init(params), jax.tree.map(lambda x: 3 * x + 1, params))
  assert not np.allclose(u1["a"], u2["a"])


def test_permuting_coordinates_permutes_updates():
  g = jax.random.normal(jax.random.key(5), (3, 7))
  perm = np.random.default_rng(1).permutation(7)
  for opt, mp in ((LSTM, LSTM_META), (MLP, MLP_META)):
    tx = opt.transformation(mp)

    @jax.jit
    def two(g, p):
      u, s = tx.update(g, tx.init(p), p)
      return u, tx.update(2 * g, s, p)[0]

    p = jax.random.normal(jax.random.key(6), (3, 7))
    u, u2 = two(g, p)
    up, up2 = two(g[:, perm], p[:, perm])
    np.testing.assert_allclose(up, u[:, perm], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(up2, u2[:, perm], rtol=1e-6, atol=1e-9)


def test_meta_gradient_through_an_unroll_equals_finite_differences():
  with jax.enable_x64(True):  # float64 for the finite differences
    opt = learned.lstm_optimizer(hidden_size=3, num_layers=1)
    task = learned.quadratic_task(dim=2)
    mp = jax.tree.map(lambda x: x.astype(jnp.float64), opt.init_meta_params(jax.random.key(7)))
    problem = jax.tree.map(lambda x: x.astype(jnp.float64), task.sample(jax.random.key(8)))
    theta = jnp.array([0.3, -0.7], jnp.float64)

    def meta_loss(mp, second):
      tx = opt.transformation(mp)
      inner = (theta, tx.init(theta), problem)
      return _meta._unroll_fn(opt, task, 3, second)(mp, inner, jax.random.key(0))[0]

    @jax.jit  # one compile: both directional derivatives and the central difference
    def check(mp, direction, h):
      full = jax.jvp(lambda m: meta_loss(m, True), (mp,), (direction,))[1]
      first_order = jax.jvp(lambda m: meta_loss(m, False), (mp,), (direction,))[1]
      shift = lambda s: jax.tree.map(lambda a, d: a + s * d, mp, direction)
      fd = (meta_loss(shift(h), True) - meta_loss(shift(-h), True)) / (2 * h)
      return full, first_order, fd

    direction = jax.tree.map(lambda x: jax.random.normal(jax.random.key(9), x.shape, x.dtype), mp)
    full, first_order, fd = check(mp, direction, 1e-6)
    np.testing.assert_allclose(full, fd, rtol=1e-6)
    # The paper's first-order meta-gradient drops d(grad)/d(phi): close (the preprocessing
    # damps the gradient's sensitivity) but not equal.
    assert 1e-5 * abs(full) < abs(first_order - full) < 0.1 * abs(full)


def _mean_and_se(samples):
  samples = np.asarray(samples, np.float64)
  return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))


def test_es_estimate_is_unbiased_on_a_quadratic():
  a = jnp.array([[2.0, 0.5], [0.5, 1.0]])
  b = jnp.array([0.3, -0.2])
  phi = jnp.array([1.0, -1.5])
  unroll = lambda phi, s, key: (0.5 * phi @ a @ phi + b @ phi, s)
  one = lambda k: learned.es_gradient(unroll, phi, learned.es_init(jnp.zeros((1, 1)), phi), k,
                                      sigma=0.1, persistent=False)[0]
  samples = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 4000))
  mean, se = _mean_and_se(samples)
  assert np.all(np.abs(mean - np.asarray(a @ phi + b)) < 4 * se)


def test_pes_is_unbiased_over_truncations_and_truncated_es_is_not():
  # s_{t+1} = s_t + phi, loss_t = 0.5 ||s_{t+1} - c||^2, one step per truncation, K truncations:
  # the total loss is quadratic in phi with gradient sum_t t (s_0 + t phi - c).
  c, phi, K = jnp.array([1.0, 2.0]), jnp.array([0.3, -0.4]), 4
  true = sum(t * (t * phi - c) for t in range(1, K + 1))

  def unroll(phi, s, key):
    s = s + phi
    return 0.5 * jnp.sum((s - c) ** 2), s

  def total(key, persistent):
    state = learned.es_init(jnp.zeros((1, 2)), phi)
    g = jnp.zeros(2)
    for k in jax.random.split(key, K):
      gk, _, state = learned.es_gradient(unroll, phi, state, k, sigma=0.05, persistent=persistent)
      g = g + gk
    return g

  keys = jax.random.split(jax.random.key(1), 3000)
  pes = jax.jit(jax.vmap(lambda k: total(k, True)))(keys)
  mean, se = _mean_and_se(pes)
  assert np.all(np.abs(mean - np.asarray(true)) < 4 * se)
  es = jax.jit(jax.vmap(lambda k: total(k, False)))(keys)
  mean, se = _mean_and_se(es)
  assert np.any(np.abs(mean - np.asarray(true)) > 10 * se)  # ES drops the earlier truncations


@pytest.mark.parametrize("estimator", ["tbptt", "pes"])
def test_meta_train_runs_and_checkpoints_round_trip(estimator, tmp_path):
  # tbptt on the LSTM, PES on the MLP optimizer (ES shares PES's code: `persistent=False`).
  opt = TINY_LSTM if estimator == "tbptt" else MLP
  start = opt.init_meta_params(jax.random.key(2))
  res = learned.meta_train(opt, learned.quadratic_task(3), gradtx.adam(1e-2),
                           key=jax.random.key(0), num_steps=3, unroll_length=2, horizon=4,
                           num_tasks=2, estimator=estimator, meta_params=start)
  assert res.history.shape == (3,) and np.all(np.isfinite(res.history))
  assert not np.allclose(jax.tree.leaves(res.meta_params)[-1], jax.tree.leaves(start)[-1])
  path = tmp_path / "meta.npz"
  learned.save_meta_params(path, res.meta_params)
  back = learned.load_meta_params(path, start)
  jax.tree.map(np.testing.assert_array_equal, back, res.meta_params)
  # An optimizer state (with bf16 leaves) round-trips too.
  tx = opt.transformation(res.meta_params)
  p = jnp.zeros(3, jnp.bfloat16)
  _, state = jax.jit(tx.update)(jnp.ones(3, jnp.bfloat16), tx.init(p), p)
  state = jax.tree.map(lambda x: x.astype(jnp.bfloat16) if x.dtype == jnp.float32 else x, state)
  learned.save_meta_params(tmp_path / "state.npz", state)
  back = learned.load_meta_params(tmp_path / "state.npz", state)
  assert jax.tree.structure(back) == jax.tree.structure(state)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a, np.float32),
                                                          np.asarray(b, np.float32)), back, state)
  with pytest.raises(ValueError, match="structure"):
    learned.load_meta_params(path, {"w": jnp.zeros(3)})


def test_jit_vmap_traced_meta_params_and_bf16():
  params, grads = _params(), _grads(2)
  opt, meta0 = TINY_LSTM, TINY_LSTM.init_meta_params(jax.random.key(0))

  def two_steps(mp, g0, g1, p):
    tx = opt.transformation(mp)
    u, s = tx.update(g0, tx.init(p), p)
    return tx.update(g1, s, p)[0]

  # jit against eager is covered by the NumPy tests (eager `tx.init`, jitted update); here the
  # jitted function is the reference for vmap.
  jitted = jax.jit(two_steps)
  eager = jitted(meta0, grads[0], grads[1], params)
  # vmap over task instances (a batch of params and grads) equals a Python loop.
  stack = lambda *ts: jax.tree.map(lambda *x: jnp.stack(x), *ts)
  g0s = stack(grads[0], grads[1], grads[0])
  g1s = stack(grads[1], grads[0], grads[0])
  batched = jax.vmap(two_steps, in_axes=(None, 0, 0, None))(meta0, g0s, g1s, params)
  for i in range(3):
    loop = jitted(meta0, jax.tree.map(lambda x: x[i], g0s),
                     jax.tree.map(lambda x: x[i], g1s), params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-7),
                 batched, loop)
  # A batch of meta-parameters (traced, vmapped) equals the loop over them.
  metas = stack(meta0, opt.init_meta_params(jax.random.key(11)))
  by_meta = jax.vmap(two_steps, in_axes=(0, None, None, None))(metas, grads[0], grads[1], params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0], b, rtol=1e-5, atol=1e-7),
               by_meta, eager)
  # bf16 gradients in, bf16 updates out; the state keeps its dtype.
  tx = opt.transformation(meta0)
  p16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
  s0 = tx.init(p16)
  u, s1 = jax.jit(tx.update)(p16, s0, p16)
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
  assert jax.tree.map(lambda x: x.dtype, s0) == jax.tree.map(lambda x: x.dtype, s1)


def test_chain_extra_args_none_leaves_and_nnx():
  params = {"a": jnp.ones(3), "b": (jnp.ones(2),)}
  tiny_meta = TINY_LSTM.init_meta_params(jax.random.key(0))
  for opt, mp in ((TINY_LSTM, tiny_meta), (MLP, MLP_META)):
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), opt.transformation(mp))
    g = {"a": jnp.ones(3), "b": (None,)}
    u, _ = jax.jit(lambda g, s, p: tx.update(g, s, p, value=jnp.array(1.0), unknown=3))(
        g, tx.init(params), params)
    assert u["b"] == (None,) and u["a"].shape == (3,)
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, TINY_LSTM.transformation(tiny_meta), wrt=nnx.Param)
  x = jnp.ones((4, 3))

  @nnx.jit
  def step(model, optimizer):
    grads = nnx.grad(lambda m: jnp.mean((m(x) - 1.0) ** 2))(model)
    optimizer.update(model, grads)

  before = np.asarray(model.kernel.value).copy()
  step(model, optimizer)
  step(model, optimizer)
  assert not np.allclose(before, model.kernel.value)


def test_tasks_digits_and_wrap_task():
  pytest.importorskip("sklearn")
  task = learned.digits_mlp_task(hidden=8, activation="relu", batch_size=512)
  curves = jax.jit(lambda: learned.evaluate(gradtx.adam(3e-2), task, key=jax.random.key(0),
                                            num_steps=5, num_tasks=2))()
  assert curves.shape == (2, 6) and np.all(curves[:, -1] < curves[:, 0])
  full = learned.wrap_task(lambda w, b: jnp.mean((b[0] * w - b[1]) ** 2), jnp.array(0.0),
                           (jnp.arange(4.0), 2 * jnp.arange(4.0)), None)
  assert float(full.loss(jnp.array(2.0), full.sample(None), jax.random.key(0))) == 0.0


def test_bad_input_names_the_argument():
  with pytest.raises(ValueError, match="meta_params"):
    LSTM.transformation(MLP_META)
  with pytest.raises(ValueError, match="meta_params"):
    LSTM.transformation({**LSTM_META, "out": {"w": jnp.zeros((3, 1)), "b": jnp.zeros(1)}})
  with pytest.raises(TypeError, match="meta_params"):
    MLP.transformation({"layers": ({"w": "x", "b": 1},) * 2})
  with pytest.raises(ValueError, match="unroll_length"):
    learned.meta_train(LSTM, learned.quadratic_task(2), gradtx.adam(1e-3), key=jax.random.key(0),
                       num_steps=1, unroll_length=0)
  with pytest.raises(ValueError, match="estimator"):
    learned.meta_train(LSTM, learned.quadratic_task(2), gradtx.adam(1e-3), key=jax.random.key(0),
                       num_steps=1, estimator="reinforce")
  with pytest.raises(ValueError, match="horizon"):
    learned.meta_train(LSTM, learned.quadratic_task(2), gradtx.adam(1e-3), key=jax.random.key(0),
                       num_steps=1, unroll_length=5, horizon=4)
  with pytest.raises(TypeError, match="meta_optimizer"):
    learned.meta_train(LSTM, learned.quadratic_task(2), "adam", key=jax.random.key(0),
                       num_steps=1)
  with pytest.raises(ValueError, match="hidden_size"):
    learned.lstm_optimizer(hidden_size=0)
  with pytest.raises(TypeError, match="preprocess"):
    learned.lstm_optimizer(preprocess=1)
  with pytest.raises(ValueError, match="decays"):
    learned.mlp_optimizer(decays=(0.9, 1.0))
  with pytest.raises(ValueError, match="params"):
    tx = MLP.transformation(MLP_META)
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
  with pytest.raises(ValueError, match="activation"):
    learned.digits_mlp_task(activation="gelu")
  with pytest.raises(ValueError, match="batch_size"):
    learned.wrap_task(lambda p, b: 0.0, 0.0, jnp.ones(3), 0)
  with pytest.raises(ValueError, match="sigma"):
    learned.es_gradient(lambda m, s, k: (0.0, s), jnp.ones(1),
                        learned.es_init(jnp.zeros((1, 1)), jnp.ones(1)), jax.random.key(0),
                        sigma=0.0)


def test_digits_without_scikit_learn_names_it(monkeypatch):
  import sys  # noqa: PLC0415

  from gradtx.learned import tasks  # noqa: PLC0415
  tasks._digits.cache_clear()
  monkeypatch.setitem(sys.modules, "sklearn", None)
  with pytest.raises(ImportError, match="scikit-learn"):
    learned.digits_mlp_task()
  tasks._digits.cache_clear()
