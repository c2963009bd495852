"""Tests for gradtx/lookahead.py: the NumPy transcription of Algorithm 1 (Zhang et al. 2019) with
fast adam and fast SGD, optax parity of params and state, eager == jit, a vmap sweep of
slow_step_size, bfloat16, errors and a flax nnx training step."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from trees import STEPS, make_grads, make_params
from gradtx.transforms.lookahead import LookaheadParams, LookaheadState, lookahead

REF_ADAM = functools.partial(ref.adam, learning_rate=0.1)
# (sync_period, reset_state): every sync_period in (1, 3, 5), with and without reset. The slow
# step size follows reset_state, so that one compiled update (sync_period traced) serves each.
CONFIGS = [(k, reset) for k in (1, 3, 5) for reset in (False, True)]
ALPHA = {False: 0.5, True: 0.8}
GRADTX = (LookaheadParams, gradtx.apply_updates)
OPTAX = (optax.LookaheadParams, optax.apply_updates)


def run(tx, grads, params=None, jit=True, lib=GRADTX, step=None, **extra):
  """Applies `tx` (or `step`, its update) over `grads` with `lib`'s LookaheadParams and
  apply_updates; returns the params after each step and the last state."""
  params_cls, apply = lib
  params = params_cls.init_synced(make_params() if params is None else params)
  state = tx.init(params)
  if step is None:
    step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, params, **extra)
    params = apply(params, u)
    out.append(params)
  return out, state


@functools.lru_cache(maxsize=None)
def compiled(reset_state):
  """One jitted update of lookahead(adam) per reset_state, with sync_period traced."""
  def update(sync_period, updates, state, params):
    tx = lookahead(gradtx.adam(0.1), sync_period, ALPHA[reset_state], reset_state)
    return tx.update(updates, state, params)
  return jax.jit(update)


@functools.lru_cache(maxsize=None)
def trajectory(k, reset):
  """gradtx's trajectory for one configuration over the shared 20 gradients (computed once)."""
  step = functools.partial(compiled(reset), jnp.asarray(k, jnp.int32))
  return run(lookahead(gradtx.adam(0.1), k, ALPHA[reset], reset), make_grads(), step=step)


def assert_trees(a, b, rtol=1e-6, atol=1e-7, what=""):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    x, y = np.asarray(x), np.asarray(y)
    if np.issubdtype(x.dtype, np.integer):
      np.testing.assert_array_equal(x, y, err_msg=f"{what} leaf {i}")
    else:
      np.testing.assert_allclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol,
                                 atol=atol, err_msg=f"{what} leaf {i}")


def leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def _fields(state, path=()):
  """{path: leaf} keyed by NamedTuple field names and tuple indices."""
  if isinstance(state, tuple) and hasattr(state, "_fields"):
    return {k: v for f in state._fields for k, v in _fields(getattr(state, f), path + (f,)).items()}
  if isinstance(state, (tuple, list)):
    return {k: v for i, s in enumerate(state) for k, v in _fields(s, path + (i,)).items()}
  return {path: state}


@pytest.mark.parametrize("k, reset", CONFIGS)
def test_fast_adam_matches_numpy_algorithm_1(k, reset):
  got, _ = trajectory(k, reset)
  want = ref.lookahead(leaves64(make_params()), [leaves64(g) for g in make_grads()], REF_ADAM, k,
                       ALPHA[reset], reset_state=reset)
  assert len(want) == STEPS
  # Params of order 1 after up to 20 float32 adam steps (its float32 bias correction 1 - b2^t
  # alone is off by 1e-5 relative): atol 1e-5, where a lookahead mistake is of order 0.01.
  for t, (p, (theta, phi)) in enumerate(zip(got, want)):
    assert_trees(p.fast, theta, rtol=1e-5, atol=1e-5, what=f"fast step {t}")
    assert_trees(p.slow, phi, rtol=1e-5, atol=1e-5, what=f"slow step {t}")
    if (t + 1) % k == 0:  # synchronized, up to the rounding of optax's update formula
      assert_trees(p.fast, p.slow, 1e-6, 1e-7, what=f"synchronized at step {t}")


@pytest.mark.parametrize("k, reset", CONFIGS)
def test_matches_optax_params_and_state(k, reset):
  got, state = trajectory(k, reset)
  # optax runs eagerly: cheaper here than compiling six updates.
  want, ostate = run(optax.lookahead(optax.adam(0.1), k, ALPHA[reset], reset), make_grads(),
                     jit=False, lib=OPTAX)
  for t, (p, o) in enumerate(zip(got, want)):
    assert_trees(p.fast, o.fast, what=f"fast step {t}")
    assert_trees(p.slow, o.slow, what=f"slow step {t}")
  assert isinstance(state, LookaheadState) and state._fields == ostate._fields
  assert state.steps_since_sync.dtype == jnp.int32
  assert int(state.steps_since_sync) == int(ostate.steps_since_sync) == STEPS % k
  ours, theirs = _fields(state), _fields(ostate)
  shared = [key for key in ours if key in theirs]
  assert {("fast_state", 0, f) for f in ("count", "mu", "nu")} <= {key[:3] for key in shared}
  for key in shared:
    assert_trees(ours[key], theirs[key], what=f"state {key}")


# (sync_period, slow_step_size, reset_state). With slow_step_size = 0.5 = 1 - 0.5, XLA shares
# optax's slow update (0.5 * sync) * d in its fast update u - (sync * 0.5) * d; on a scalar leaf
# it then skips the fused multiply-add, so only optax's products give optax's bits there.
BIT_CONFIGS = [(1, 0.5, False), (3, 0.5, True), (2, 0.3, False), (4, 0.8, True)]


def _bit_trajectory(lib, jit, configs=BIT_CONFIGS):
  """The updates of `lib.lookahead` (the same optax fast optimizer for both libraries) along
  optax's params, flattened per step, for each configuration."""
  out = []
  for k, alpha, reset in configs:
    tx = lib.lookahead(optax.sgd(0.03, momentum=0.9), k, alpha, reset)
    update = jax.jit(tx.update) if jit else tx.update
    params = lib.LookaheadParams.init_synced(make_params())
    state, steps = tx.init(params), []
    for g in make_grads():
      updates, state = update(g, state, params)
      params = lib.LookaheadParams(*optax.apply_updates(tuple(params), tuple(updates)))
      steps.append(np.concatenate([np.ravel(x) for x in jax.tree.leaves((updates, params))]))
    out.append(np.stack(steps))
  return out


@pytest.mark.parametrize("jit", [True, False])
def test_updates_are_bit_identical_to_optax(jit):
  configs = BIT_CONFIGS if jit else BIT_CONFIGS[:2]
  for config, ours, theirs in zip(configs, _bit_trajectory(gradtx, jit, configs),
                                  _bit_trajectory(optax, jit, configs)):
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32),
                                  err_msg=f"{config}, jit={jit}")


def test_non_finite_fast_step_off_sync_does_not_reach_the_slow_weights():
  tx = lookahead(gradtx.sgd(0.1), sync_period=3, slow_step_size=0.5)
  params = LookaheadParams.init_synced(jnp.ones(2))
  updates, _ = tx.update(jnp.asarray([jnp.inf, 1.0]), tx.init(params), params)
  np.testing.assert_array_equal(updates.slow, [0.0, 0.0])
  np.testing.assert_array_equal(updates.fast, np.float32([-np.inf, -0.1]))


def test_eager_equals_jit():
  # Every step synchronizes and resets adam.
  eager, estate = run(lookahead(gradtx.adam(0.1), 1, ALPHA[True], True), make_grads(steps=2),
                      jit=False)
  jitted, jstate = trajectory(1, True)
  assert_trees(eager, jitted[:2], what="params")
  assert jax.tree.structure(estate) == jax.tree.structure(jstate)


def test_vmap_over_slow_step_size_matches_numpy_fast_sgd():
  params, grads = make_params(), make_grads(steps=5)

  def train(alpha):
    return run(lookahead(gradtx.sgd(0.1), 2, alpha), grads, params, jit=False)[0][-1]

  values = (0.0, 0.5, 1.0)
  batched = jax.jit(jax.vmap(train))(jnp.asarray(values))
  fast_sgd = functools.partial(ref.sgd, learning_rate=0.1)
  for i, v in enumerate(values):
    theta, phi = ref.lookahead(leaves64(params), [leaves64(g) for g in grads], fast_sgd, 2, v)[-1]
    assert_trees(jax.tree.map(lambda x: x[i], batched), LookaheadParams(theta, phi), 1e-5, 1e-6,
                 f"alpha={v}")
  # alpha = 0: the slow weights never move; alpha = 1: lookahead is the fast optimizer alone.
  assert_trees(jax.tree.map(lambda x: x[0], batched).slow, params, 0, 0, "alpha=0")
  plain = params
  for g in grads[:4]:
    plain = gradtx.apply_updates(plain, jax.tree.map(lambda x: -0.1 * x, g))
  assert_trees(jax.tree.map(lambda x: x[2], batched).slow, plain, 1e-6, 1e-6, "alpha=1")


def _signature(tree):
  return jax.tree.structure(tree), [(x.shape, x.dtype, getattr(x, "weak_type", False))
                                    for x in jax.tree.leaves(tree)]


def test_bfloat16_keeps_dtypes_and_state_signature():
  # Traced abstractly (jax.eval_shape): a stable state signature means no recompilation.
  lp = LookaheadParams.init_synced(make_params(jnp.bfloat16))
  tx = lookahead(gradtx.sgd(0.1, momentum=0.9), 2, 0.5, reset_state=True)
  state = state0 = jax.eval_shape(tx.init, lp)
  for g in make_grads(steps=2, dtype=jnp.bfloat16):
    u, state = jax.eval_shape(tx.update, g, state, lp)
    assert isinstance(u, LookaheadParams)
    assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}
    lp = jax.eval_shape(gradtx.apply_updates, lp, u)
    assert _signature(lp) == _signature(LookaheadParams.init_synced(make_params(jnp.bfloat16)))
    assert _signature(state) == _signature(state0)


def test_init_accepts_plain_and_optax_params():
  params = make_params()
  tx = lookahead(gradtx.adam(0.1), 2, 0.5)
  want = tx.init(LookaheadParams.init_synced(params))
  for p in (params, optax.LookaheadParams.init_synced(params)):
    assert jax.tree.structure(tx.init(p)) == jax.tree.structure(want)
    assert_trees(tx.init(p), want, 0, 0)


def _scale_by_extra_arg():
  """A fast optimizer that needs the extra keyword argument `factor`: u = factor g."""
  def update(updates, state, params=None, *, factor, **extra_args):
    del params, extra_args
    return jax.tree.map(lambda g: factor * g, updates), state
  return gradtx.GradientTransformation(gradtx.init_empty_state, update)


def test_extra_args_reach_a_fast_optimizer_that_takes_them():
  lp = LookaheadParams.init_synced({"w": jnp.zeros(2)})
  g = {"w": jnp.ones(2)}
  tx = lookahead(_scale_by_extra_arg(), 1, 0.5)
  u, _ = tx.update(g, tx.init(lp), lp, factor=-2.0, some_unknown_argument=1.0)
  assert_trees(u, LookaheadParams(fast={"w": -jnp.ones(2)}, slow={"w": -jnp.ones(2)}), 0, 0)
  # An optax fast optimizer without **extra_args does not receive them.
  tx = lookahead(optax.scale(-1.0), 2, 0.5)
  u, _ = tx.update(g, tx.init(lp), lp, some_unknown_argument=1.0)
  assert_trees(u.fast, {"w": -jnp.ones(2)}, 0, 0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(fast_optimizer=lambda: None), TypeError, "fast_optimizer"),
    (dict(sync_period=0), ValueError, "sync_period"),
    (dict(sync_period=2.0), TypeError, "sync_period"),
    (dict(sync_period=jnp.ones(2, jnp.int32)), ValueError, "sync_period"),
    (dict(slow_step_size=1.5), ValueError, "slow_step_size"),
    (dict(slow_step_size=-0.1), ValueError, "slow_step_size"),
    (dict(slow_step_size=float("nan")), ValueError, "slow_step_size"),
    (dict(slow_step_size="0.5"), TypeError, "slow_step_size"),
    (dict(slow_step_size=lambda t: 0.5), TypeError, "slow_step_size"),
    (dict(slow_step_size=jnp.ones(3)), ValueError, "slow_step_size"),
    (dict(reset_state="yes"), TypeError, "reset_state"),
])
def test_bad_arguments_raise(kwargs, error, match):
  args = dict(fast_optimizer=gradtx.sgd(0.1), sync_period=2, slow_step_size=0.5)
  with pytest.raises(error, match=match):
    lookahead(**{**args, **kwargs})


def test_bad_update_inputs_raise():
  params = make_params()
  g = make_grads(steps=1)[0]
  tx = lookahead(gradtx.sgd(0.1), 2, 0.5)
  lp = LookaheadParams.init_synced(params)
  state = tx.init(lp)
  with pytest.raises(ValueError, match="params"):
    tx.update(g, state)
  with pytest.raises(TypeError, match="LookaheadParams"):
    tx.update(g, state, params)
  with pytest.raises(ValueError, match="params.fast"):
    tx.update(LookaheadParams(g, g), state, lp)
  with pytest.raises(ValueError, match="params.slow"):
    tx.update(g, state, LookaheadParams(params, {"a": params["a"]}))


def test_flax_nnx_training_step():
  nnx = pytest.importorskip("flax.nnx")

  class Affine(nnx.Module):
    def __init__(self):
      self.w = nnx.Param(jnp.zeros((3, 2)))
      self.b = nnx.Param(jnp.zeros(2))

    def __call__(self, x):
      return x @ self.w[...] + self.b[...]

  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]]) + 0.5
  graphdef, params = nnx.split(Affine(), nnx.Param)
  tx = lookahead(gradtx.sgd(0.1, momentum=0.5), sync_period=5, slow_step_size=0.5)
  lp = LookaheadParams.init_synced(params)
  state = tx.init(lp)

  def loss(p):
    return jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2)

  @jax.jit
  def train_step(lp, state):
    grads = jax.grad(loss)(lp.fast)  # gradients at the fast weights
    updates, state = tx.update(grads, state, lp)
    return gradtx.apply_updates(lp, updates), state

  first = float(loss(lp.slow))
  for _ in range(20):
    lp, state = train_step(lp, state)
  assert float(loss(lp.slow)) < 0.2 * first  # evaluate at the slow weights
  assert_trees(lp.fast, lp.slow, 1e-6, 1e-7, "synchronized after 20 = 4 x 5 steps")
  assert type(lp.slow) is type(params)
  assert jax.tree.structure(state) == jax.tree.structure(tx.init(lp))
