"""Decoupled weight decay in Loshchilov & Hutter's exact form: `adamw` / `sgdw` with
`schedule_multiplier`, `add_decayed_weights(..., schedule_multiplier=)`, the normalized weight
decay and AdamWR, against NumPy transcriptions of the paper's Algorithms 1 and 2."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from gradtx.transforms.decay import normalized_weight_decay, normalized_weight_decay_schedule

STEPS = 45  # three warm-restart cycles of 5, 10 and 20 steps, and the start of a fourth
T0, T_MULT = 5, 2


def make_params():
  rng = np.random.default_rng(0)
  return {"w": (jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
                jnp.asarray(rng.normal(), jnp.float32)),
          "b": jnp.asarray(rng.normal(size=5), jnp.float32)}


def make_grads(steps=STEPS):
  rng = np.random.default_rng(1)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=np.shape(p)), jnp.float32),
                       make_params()) for _ in range(steps)]


def run(tx, params, grads):
  state, step, out = tx.init(params), jax.jit(tx.update), []
  for g in grads:
    u, state = step(g, state, params)
    params = gradtx.apply_updates(params, u)
    out.append([np.asarray(x, np.float64) for x in jax.tree.leaves(u)])
  return out, state


def leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def reference_run(fn, **kwargs):
  params, grads = make_params(), make_grads()
  return fn(leaves64(params), [leaves64(g) for g in grads], **kwargs)


def assert_updates_close(got, want, rtol=1e-5, atol=1e-6):
  assert len(got) == len(want) == STEPS
  for t, (g, w) in enumerate(zip(got, want)):
    for i, (a, b) in enumerate(zip(g, w)):
      np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {t} leaf {i}")


def sgdr(t):
  """The warm-restart multiplier: NumPy float64 for Python ints, gradtx's for traced counts."""
  if isinstance(t, (int, np.integer)):
    return ref.warm_restarts_schedule(int(t), 1.0, T0, T_MULT)
  return gradtx.warm_restarts_schedule(1.0, T0, T_MULT)(t)


MASK = {"w": (True, False), "b": True}


# --- the paper's algorithms -------------------------------------------------------------------


@pytest.mark.parametrize("mask", [None, MASK], ids=["all", "mask"])
def test_adamw_schedule_multiplier_matches_algorithm2_over_three_restarts(mask):
  kw = dict(learning_rate=0.02, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.25, mask=mask,
            schedule_multiplier=sgdr)
  got, _ = run(gradtx.adamw(**kw), make_params(), make_grads())
  assert_updates_close(got, reference_run(ref.adamw_algorithm2, **kw))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdw_schedule_multiplier_matches_algorithm1_over_three_restarts(nesterov):
  kw = dict(learning_rate=0.05, momentum=0.9, weight_decay=0.25, nesterov=nesterov, mask=MASK,
            schedule_multiplier=sgdr)
  got, _ = run(gradtx.sgdw(**kw), make_params(), make_grads())
  assert_updates_close(got, reference_run(ref.sgdw_algorithm1, **kw))


def test_sgdw_momentum_buffer_holds_eta_alpha_g_not_raw_gradients():
  """Algorithm 1 line 8 scales each gradient by its own eta_t before the momentum: after a
  restart the old momentum keeps its small multiplier (optax's form rescales it by eta_t)."""
  eta = lambda t: jnp.where(t == 0, 1.0, 0.0)  # one step at eta = 1, then eta = 0
  tx = gradtx.sgdw(1.0, momentum=0.5, weight_decay=0.0, schedule_multiplier=eta)
  p, g = jnp.zeros(1), jnp.ones(1)
  u0, s = tx.update(g, tx.init(p), p)
  u1, _ = tx.update(g, s, p)
  assert u0.tolist() == [-1.0] and u1.tolist() == [-0.5]  # m_1 = 0.5 m_0 + 0 * g


@pytest.mark.parametrize("alias", ["adamw", "sgdw"])
def test_decay_is_multiplied_by_eta_only_not_by_alpha(alias):
  """theta_t = theta_{t-1} - eta_t (alpha step + lambda theta): with zero gradients the update
  is -eta lambda theta whatever alpha is; optax's form gives -alpha lambda theta."""
  p, zeros = jnp.asarray([2.0, -4.0]), jnp.zeros(2)
  make = getattr(gradtx, alias)
  for alpha in (1e-3, 0.1):
    tx = make(alpha, weight_decay=0.5, schedule_multiplier=0.25)
    u, _ = tx.update(zeros, tx.init(p), p)
    np.testing.assert_allclose(u, -0.25 * 0.5 * p, rtol=1e-6)
    tx = make(alpha, weight_decay=0.5)
    u, _ = tx.update(zeros, tx.init(p), p)
    np.testing.assert_allclose(u, -alpha * 0.5 * p, rtol=1e-6)


@pytest.mark.parametrize("alias", ["adamw", "sgdw"])
def test_unit_multiplier_with_decay_alpha_lambda_equals_optax_form(alias):
  params, grads = make_params(), make_grads(steps=10)
  make, alpha, lam = getattr(gradtx, alias), 0.03, 0.2
  ours, _ = run(make(alpha, weight_decay=alpha * lam, schedule_multiplier=1.0), params, grads)
  default, _ = run(make(alpha, weight_decay=lam), params, grads)
  for a, b in zip(ours, default):
    for x, y in zip(a, b):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


def test_adamw_paper_form_equals_optax_with_lr_alpha_eta_and_decay_lambda_over_alpha():
  params, grads = make_params(), make_grads()
  alpha, lam = 0.01, 0.3
  eta = gradtx.warm_restarts_schedule(1.0, T0, T_MULT)
  ours, _ = run(gradtx.adamw(alpha, weight_decay=lam, schedule_multiplier=eta), params, grads)
  theirs, _ = run(optax.adamw(lambda t: alpha * eta(t), weight_decay=lam / alpha), params, grads)
  for a, b in zip(ours, theirs):
    for x, y in zip(a, b):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


# --- AdamWR -----------------------------------------------------------------------------------


@pytest.mark.parametrize("steps_per_epoch", [None, 3])
def test_adamwr_matches_numpy_reference_over_three_cycles(steps_per_epoch):
  b, n_train, lam_norm = 16, 80, 0.3  # 5 steps per epoch by default
  spe = n_train / b if steps_per_epoch is None else steps_per_epoch
  wd = normalized_weight_decay_schedule(lam_norm, b, n_train, T0, T_MULT,
                                        steps_per_epoch=steps_per_epoch)
  tx = gradtx.adamw(0.01, weight_decay=wd,
                    schedule_multiplier=gradtx.warm_restarts_schedule(1.0, T0, T_MULT))
  got, _ = run(tx, make_params(), make_grads())

  def ref_wd(t):
    return ref.normalized_weight_decay(lam_norm, b, n_train,
                                       ref.warm_restart_period(t, T0, T_MULT) / spe)

  want = reference_run(ref.adamw_algorithm2, learning_rate=0.01, weight_decay=ref_wd,
                       schedule_multiplier=lambda t: ref.warm_restarts_schedule(t, 1.0, T0,
                                                                                T_MULT))
  assert_updates_close(got, want)


def test_adamwr_trains_a_regression():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(64, 4)), jnp.float32)
  y = x @ jnp.asarray([1.0, -2.0, 0.5, 3.0])
  loss = lambda p: jnp.mean((x @ p - y) ** 2)
  tx = gradtx.adamw(0.1, weight_decay=normalized_weight_decay_schedule(0.01, 8, 64, 8, 2),
                    schedule_multiplier=gradtx.warm_restarts_schedule(1.0, 8, 2))

  def step(carry, _):
    p, s = carry
    u, s = tx.update(jax.grad(loss)(p), s, p)
    return (gradtx.apply_updates(p, u), s), None

  p0 = jnp.zeros(4)
  (p, _), _ = jax.lax.scan(step, (p0, tx.init(p0)), None, length=120)  # restarts at 8, 24, 56
  assert float(loss(p)) < 0.01 * float(loss(p0))


# --- normalized weight decay ------------------------------------------------------------------


def test_normalized_weight_decay_formula_and_types():
  got = normalized_weight_decay(0.05, 128, 50_000, 100)
  assert isinstance(got, float)
  assert got == pytest.approx(0.05 * math.sqrt(128 / (50_000 * 100)), rel=1e-15)
  arr = normalized_weight_decay(jnp.asarray(0.05), 128, 50_000, 100)
  assert isinstance(arr, jax.Array) and arr.dtype == jnp.float32 and arr.shape == ()
  np.testing.assert_allclose(arr, got, rtol=1e-6)
  swept = jax.vmap(lambda l, t: normalized_weight_decay(l, 128, 50_000, t))(
      jnp.asarray([0.025, 0.05]), jnp.asarray([10.0, 40.0]))
  np.testing.assert_allclose(swept, [0.025 * math.sqrt(128 / 500_000),
                                     0.05 * math.sqrt(128 / 2_000_000)], rtol=1e-6)


def restart_steps(schedule, last):
  """Steps where a warm-restart schedule jumps back up."""
  v = np.asarray(jax.vmap(schedule)(jnp.arange(last, dtype=jnp.int32)))
  return [int(t) for t in np.nonzero(v[1:] > v[:-1] + 1e-6)[0] + 1]


@pytest.mark.parametrize("first_period,mult", [(5, 2), (7, 1), (7.5, 1.5), (3, 3)])
def test_normalized_schedule_changes_exactly_at_the_warm_restarts(first_period, mult):
  last = 200
  wd = normalized_weight_decay_schedule(0.1, 10, 100, first_period, mult)
  values = np.asarray(jax.vmap(wd)(jnp.arange(last, dtype=jnp.int32)))
  changes = [int(t) for t in np.nonzero(values[1:] != values[:-1])[0] + 1]
  restarts = restart_steps(gradtx.warm_restarts_schedule(1.0, first_period, mult), last)
  if mult == 1:
    assert changes == [] and len(restarts) > 10
  else:
    assert changes == restarts and len(restarts) >= 3
  for t in (0, 13, 57, last - 1):  # default steps_per_epoch = B / b: lambda_norm / sqrt(P_i)
    want = 0.1 / math.sqrt(ref.warm_restart_period(t, first_period, mult))
    np.testing.assert_allclose(values[t], want, rtol=2e-6)


def test_normalized_schedule_jit_equals_eager_and_late_steps():
  wd = normalized_weight_decay_schedule(0.05, 32, 1000, 40, 2, steps_per_epoch=32)
  for t in (0, 39, 40, 119, 120, 10**7):
    want = ref.normalized_weight_decay(0.05, 32, 1000, ref.warm_restart_period(t, 40, 2) / 32)
    np.testing.assert_allclose(wd(t), want, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(wd)(jnp.int32(t)), want, rtol=1e-6)
  assert wd(jnp.int32(5)).dtype == jnp.float32 and wd(jnp.int32(5)).shape == ()


# --- add_decayed_weights(schedule_multiplier=) --------------------------------------------------


def test_add_decayed_weights_multiplier_scales_only_the_decay():
  p, g = jnp.asarray([1.0, -2.0]), jnp.asarray([0.5, 0.5])
  tx = gradtx.add_decayed_weights(0.1, schedule_multiplier=lambda t: 0.5 * (t + 1))
  state = tx.init(p)
  for t in range(3):
    u, state = tx.update(g, state, p)
    np.testing.assert_allclose(u, g + 0.5 * (t + 1) * 0.1 * p, rtol=1e-6)


def test_add_decayed_weights_state_depends_only_on_constant_or_schedule():
  """A constant multiplier keeps optax's `EmptyState()`; a schedule (not in optax) keeps the step
  count in optax's `WeightDecaySchedule(count)`, as a `weight_decay` schedule does."""
  p = {"a": jnp.ones(3)}
  for m in (None, 0.5, 0.0, jnp.float32(0.5)):
    assert gradtx.add_decayed_weights(0.1, schedule_multiplier=m).init(p) == gradtx.EmptyState()
  scheduled = gradtx.add_decayed_weights(0.1, schedule_multiplier=lambda t: 1.0).init(p)
  assert scheduled == gradtx.WeightDecaySchedule(count=jnp.zeros([], jnp.int32))


def test_alias_state_depends_only_on_constant_or_schedule_multiplier():
  p = make_params()
  for alias in (gradtx.adamw, gradtx.sgdw):
    s1 = alias(0.1, schedule_multiplier=0.5).init(p)
    s2 = alias(0.1, schedule_multiplier=0.25).init(p)
    assert jax.tree.structure(s1) == jax.tree.structure(s2)  # the value never changes it
  # A schedule multiplier keeps its count where it is used (and only there).
  s = gradtx.adamw(0.1, schedule_multiplier=sgdr).init(p)
  assert [type(x).__name__ for x in s] == [
      "ScaleByAdamState", "EmptyState", "EmptyState", "ScaleByScheduleState"]
  s = gradtx.sgdw(0.1, schedule_multiplier=sgdr).init(p)
  assert [type(x).__name__ for x in s] == [
      "EmptyState", "ScaleByScheduleState", "TraceState", "WeightDecaySchedule", "EmptyState"]


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", ["adamw", "sgdw", "add_decayed_weights"])
def test_negative_or_vector_multiplier_raises_naming_it(fn):
  make = getattr(gradtx, fn)
  with pytest.raises(ValueError, match=f"{fn}: schedule_multiplier must be in"):
    make(0.1, schedule_multiplier=-0.5)
  with pytest.raises(ValueError, match="schedule_multiplier must be a scalar"):
    make(0.1, schedule_multiplier=jnp.ones(2))
  with pytest.raises(TypeError, match="schedule_multiplier"):
    make(0.1, schedule_multiplier="cosine")


@pytest.mark.parametrize("name,args", [
    ("weight_decay_norm", (-0.1, 128, 1000, 10)),
    ("batch_size", (0.1, 0, 1000, 10)),
    ("num_train_points", (0.1, 128, -5, 10)),
    ("num_epochs", (0.1, 128, 1000, 0)),
])
def test_normalized_weight_decay_validates_each_argument(name, args):
  with pytest.raises(ValueError, match=f"normalized_weight_decay: {name}"):
    normalized_weight_decay(*args)


@pytest.mark.parametrize("name,kwargs", [
    ("weight_decay_norm", dict(weight_decay_norm=-1.0)),
    ("batch_size", dict(batch_size=0)),
    ("num_train_points", dict(num_train_points=0)),
    ("first_period", dict(first_period=0)),
    ("period_multiplier", dict(period_multiplier=0.5)),
    ("steps_per_epoch", dict(steps_per_epoch=0)),
])
def test_normalized_schedule_validates_each_argument(name, kwargs):
  args = dict(weight_decay_norm=0.05, batch_size=32, num_train_points=1000, first_period=10,
              period_multiplier=2, steps_per_epoch=None)
  with pytest.raises(ValueError, match=f"normalized_weight_decay_schedule: {name}"):
    normalized_weight_decay_schedule(**{**args, **kwargs})


def test_adamwr_in_flax_nnx_optimizer():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  tx = gradtx.adamw(0.05, weight_decay=normalized_weight_decay_schedule(0.05, 8, 32, 5, 2),
                    schedule_multiplier=gradtx.warm_restarts_schedule(1.0, 5, 2))
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0], [2.0], [-1.0]])

  @nnx.jit
  def train_step(model, opt):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    opt.update(model, grads)
    return loss

  first = float(train_step(model, opt))
  for _ in range(30):
    last = float(train_step(model, opt))
  assert last < 0.5 * first
