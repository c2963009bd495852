"""Tests for gradtx/adaptive.py beyond the generic registry tests: argument validation, the
Theano chapter's Adam with b1 decay, accumulator dtypes, NAdam's warm-up schedule, tree-structure
errors, `None` updates and a saturated step counter."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref

FACTORIES = {
    "scale_by_rss": gradtx.scale_by_rss,
    "scale_by_rms": gradtx.scale_by_rms,
    "scale_by_stddev": gradtx.scale_by_stddev,
    "scale_by_adadelta": gradtx.scale_by_adadelta,
    "scale_by_adam": gradtx.scale_by_adam,
    "scale_by_adamax": gradtx.scale_by_adamax,
    "scale_by_amsgrad": gradtx.scale_by_amsgrad,
    "scale_by_nadam": gradtx.scale_by_nadam,
}

# Variants whose state or update path differs (static flags).
VARIANTS = [
    ("scale_by_rss", {}),
    ("scale_by_rms", {}),
    ("scale_by_rms", dict(bias_correction=True, eps_in_sqrt=False)),
    ("scale_by_stddev", {}),
    ("scale_by_stddev", dict(bias_correction=True, eps=1.0)),
    ("scale_by_adadelta", {}),
    ("scale_by_adam", {}),
    ("scale_by_adam", dict(nesterov=True)),
    ("scale_by_adam", dict(b1=lambda t: 0.9 * 0.95 ** (1.0 * t), nesterov=True)),
    ("scale_by_adamax", {}),
    ("scale_by_amsgrad", {}),
    ("scale_by_amsgrad", dict(bias_correction_mu=False, bias_correction_nu=False)),
    ("scale_by_nadam", {}),
]
VARIANT_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(VARIANTS)]
# The generic registry test saturates every entry's counter; here, the paths with extra terms.
COUNTED = [VARIANTS[i] for i in (2, 4, 8, 11, 12)]
COUNTED_IDS = [VARIANT_IDS[i] for i in (2, 4, 8, 11, 12)]
ONE_EACH = [VARIANTS[i] for i in (0, 2, 3, 5, 8, 9, 10, 12)]  # every primitive, once
ONE_EACH_IDS = [VARIANT_IDS[i] for i in (0, 2, 3, 5, 8, 9, 10, 12)]


def _params(dtype=jnp.float32):
  rng = np.random.default_rng(0)
  return {"w": jnp.asarray(rng.normal(size=(2, 3)), dtype),
          "b": (jnp.asarray(rng.normal(), dtype), jnp.asarray(rng.normal(size=5), dtype))}


def _grads(steps, dtype=jnp.float32, seed=1):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), dtype), _params())
          for _ in range(steps)]


def _run(tx, params, grads):
  state, step, out = tx.init(params), jax.jit(tx.update), []
  for g in grads:
    u, state = step(g, state, params)
    params = gradtx.apply_updates(params, u)
    out.append(u)
  return out, state


def _assert_close(got, want, rtol=1e-5, atol=1e-6):
  for step, (g, w) in enumerate(zip(got, want)):
    for a, b in zip(jax.tree.leaves(g), w):
      np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=rtol, atol=atol,
                                 err_msg=f"step {step}")


def _leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


# ---------------------------------------------------------------------------------------------
# Validation: one case per rule, the error names the argument.
# ---------------------------------------------------------------------------------------------

BAD_ARGS = [
    ("scale_by_rss", dict(initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value"),
    ("scale_by_rss", dict(eps=-1e-7), ValueError, "eps"),
    ("scale_by_rss", dict(eps="small"), TypeError, "eps"),
    ("scale_by_rss", dict(eps=lambda t: 1e-7), TypeError, "eps"),
    ("scale_by_rms", dict(decay=1.5), ValueError, "decay"),
    ("scale_by_rms", dict(decay=-0.1), ValueError, "decay"),
    ("scale_by_rms", dict(decay=1.0, bias_correction=True), ValueError, "decay"),
    ("scale_by_rms", dict(decay=float("nan")), ValueError, "decay"),
    ("scale_by_rms", dict(eps=-1.0), ValueError, "eps"),
    ("scale_by_rms", dict(initial_scale=-1.0), ValueError, "initial_scale"),
    ("scale_by_rms", dict(eps_in_sqrt=1), TypeError, "eps_in_sqrt"),
    ("scale_by_rms", dict(bias_correction="yes"), TypeError, "bias_correction"),
    ("scale_by_stddev", dict(decay=1.01), ValueError, "decay"),
    ("scale_by_stddev", dict(decay=1.0, bias_correction=True), ValueError, "decay"),
    ("scale_by_stddev", dict(eps=-1.0), ValueError, "eps"),
    ("scale_by_stddev", dict(initial_scale=float("inf")), ValueError, "initial_scale"),
    ("scale_by_stddev", dict(eps_in_sqrt=None), TypeError, "eps_in_sqrt"),
    ("scale_by_stddev", dict(bias_correction=0), TypeError, "bias_correction"),
    ("scale_by_adadelta", dict(rho=1.0), ValueError, "rho"),
    ("scale_by_adadelta", dict(rho=-0.5), ValueError, "rho"),
    ("scale_by_adadelta", dict(eps=0.0), ValueError, "eps"),
    ("scale_by_adadelta", dict(rho=lambda t: 0.9), TypeError, "rho"),
    ("scale_by_adam", dict(b1=1.0), ValueError, "b1"),
    ("scale_by_adam", dict(b1=-0.1), ValueError, "b1"),
    ("scale_by_adam", dict(b1=True), TypeError, "b1"),
    ("scale_by_adam", dict(b1=jnp.asarray(1 + 2j)), TypeError, "b1"),
    ("scale_by_adam", dict(b2=1.0), ValueError, "b2"),
    ("scale_by_adam", dict(b2=lambda t: 0.999), TypeError, "b2"),
    ("scale_by_adam", dict(eps=-1e-8), ValueError, "eps"),
    ("scale_by_adam", dict(eps_root=-1e-8), ValueError, "eps_root"),
    ("scale_by_adam", dict(mu_dtype=jnp.int32), ValueError, "mu_dtype"),
    ("scale_by_adam", dict(mu_dtype="not a dtype"), TypeError, "mu_dtype"),
    ("scale_by_adam", dict(nu_dtype=jnp.int8), ValueError, "nu_dtype"),
    ("scale_by_adam", dict(nesterov=1), TypeError, "nesterov"),
    ("scale_by_adamax", dict(b1=1.0), ValueError, "b1"),
    ("scale_by_adamax", dict(b2=1.5), ValueError, "b2"),
    ("scale_by_adamax", dict(eps=-1.0), ValueError, "eps"),
    ("scale_by_adamax", dict(b1=lambda t: 0.9), TypeError, "b1"),
    ("scale_by_amsgrad", dict(b1=2.0), ValueError, "b1"),
    ("scale_by_amsgrad", dict(b2=1.0), ValueError, "b2"),
    ("scale_by_amsgrad", dict(eps=-1.0), ValueError, "eps"),
    ("scale_by_amsgrad", dict(eps_root=-1.0), ValueError, "eps_root"),
    ("scale_by_amsgrad", dict(mu_dtype=jnp.bool_), ValueError, "mu_dtype"),
    ("scale_by_amsgrad", dict(bias_correction_mu=None), TypeError, "bias_correction_mu"),
    ("scale_by_amsgrad", dict(bias_correction_nu="no"), TypeError, "bias_correction_nu"),
    ("scale_by_nadam", dict(b1=1.0), ValueError, "b1"),
    ("scale_by_nadam", dict(b2=-0.1), ValueError, "b2"),
    ("scale_by_nadam", dict(eps=-1.0), ValueError, "eps"),
    ("scale_by_nadam", dict(eps_root=-1.0), ValueError, "eps_root"),
    ("scale_by_nadam", dict(mu_dtype=jnp.int32), ValueError, "mu_dtype"),
    ("scale_by_nadam", dict(momentum_decay=-0.004), ValueError, "momentum_decay"),
    ("scale_by_nadam", dict(momentum_decay=float("inf")), ValueError, "momentum_decay"),
    ("scale_by_nadam", dict(momentum_decay=lambda t: 0.004), TypeError, "momentum_decay"),
]


@pytest.mark.parametrize("name,kwargs,exc,match", BAD_ARGS,
                         ids=[f"{n}-{m}-{i}" for i, (n, _, _, m) in enumerate(BAD_ARGS)])
def test_invalid_argument_raises_naming_it(name, kwargs, exc, match):
  with pytest.raises(exc, match=match) as info:
    FACTORIES[name](**kwargs)
  assert str(info.value).startswith(f"gradtx.{name}: ")


def test_error_message_format():
  with pytest.raises(ValueError) as info:
    gradtx.scale_by_adam(b1=1.5)
  assert str(info.value) == "gradtx.scale_by_adam: b1 must be in [0, 1), got 1.5."


@pytest.mark.parametrize("name,arg", [
    ("scale_by_rss", "initial_accumulator_value"), ("scale_by_rms", "decay"),
    ("scale_by_stddev", "eps"), ("scale_by_adadelta", "rho"), ("scale_by_adam", "b2"),
    ("scale_by_adam", "b1"), ("scale_by_adamax", "b1"), ("scale_by_amsgrad", "eps_root"),
    ("scale_by_nadam", "momentum_decay"),
])
def test_vector_hyperparameter_raises_with_vmap_hint(name, arg):
  with pytest.raises(ValueError, match=arg) as info:
    FACTORIES[name](**{arg: jnp.asarray([0.1, 0.2])})
  assert "scalar" in str(info.value) and "jax.vmap" in str(info.value)


def test_scalar_arrays_and_ints_are_accepted():
  g, p = jnp.asarray([0.5, -2.0]), jnp.zeros(2)
  for tx in (gradtx.scale_by_adam(b1=jnp.asarray(0.9), b2=np.float32(0.99), eps=0),
             gradtx.scale_by_adam(b1=0, b2=0, eps=0, nesterov=True)):
    u, _ = jax.jit(tx.update)(g, tx.init(p))
    np.testing.assert_allclose(u, [1.0, -1.0], rtol=1e-6)


def test_b1_schedule_must_return_a_scalar():
  with pytest.raises(ValueError, match="b1"):  # checked when the optimizer is built
    gradtx.scale_by_adam(b1=lambda t: jnp.full(2, 0.9))


# ---------------------------------------------------------------------------------------------
# Adam with b1 decay (Theano chapter) and epsilon placement.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [1 - 1e-8, 0.9])
def test_adam_b1_decay_matches_theano_chapter(lam):
  # The chapter: b1_t = b1 * l**(t-1) with t from 1; gradtx's schedules see the 0-based count.
  steps, lr = 25, 0.01
  tx = gradtx.chain(gradtx.scale_by_adam(b1=lambda t: 0.9 * lam ** (1.0 * t), eps=1e-6),
                    gradtx.scale_by_learning_rate(lr))
  params, grads = _params(), _grads(steps)
  got, _ = _run(tx, params, grads)
  want = ref.theano_adam(_leaves64(params), [_leaves64(g) for g in grads], learning_rate=lr,
                         b1=0.9, b2=0.999, l=lam)
  _assert_close(got, want)
  # The gradtx reference in its own (schedule) terms agrees with the chapter's transcription.
  gtx = ref.scale_by_adam(_leaves64(params), [_leaves64(g) for g in grads],
                          b1=lambda t: 0.9 * lam**t, eps=1e-6)
  for a, b in zip(want, gtx):
    for x, y in zip(a, b):
      np.testing.assert_allclose(x, -lr * y, rtol=1e-12)


def test_adam_b1_schedule_changes_the_moment_not_the_bias_correction():
  params, grads = _params(), _grads(4)
  sched, _ = _run(gradtx.scale_by_adam(b1=lambda t: 0.9 * 0.5 ** (1.0 * t)), params, grads)
  const, _ = _run(gradtx.scale_by_adam(b1=0.9), params, grads)
  same, _ = _run(gradtx.scale_by_adam(b1=lambda t: 0.9), params, grads)
  # Step 1 uses b1(0) in both the moment and the correction; later steps differ.
  _assert_close([sched[0]], [_leaves64(const[0])], rtol=1e-6)
  assert not np.allclose(_leaves64(sched[-1])[0], _leaves64(const[-1])[0], rtol=1e-3)
  _assert_close(same, [_leaves64(c) for c in const], rtol=1e-6, atol=1e-7)


def test_eps_outside_and_eps_root_inside_the_square_root():
  g = jnp.asarray([2.0])
  tx = gradtx.scale_by_adam(b1=0.0, b2=0.0, eps=1.0, eps_root=0.0)
  np.testing.assert_allclose(tx.update(g, tx.init(jnp.zeros(1)))[0], [2.0 / (2.0 + 1.0)])
  tx = gradtx.scale_by_adam(b1=0.0, b2=0.0, eps=0.0, eps_root=5.0)
  np.testing.assert_allclose(tx.update(g, tx.init(jnp.zeros(1)))[0], [2.0 / 3.0], rtol=1e-6)


ADAM_BITS = [dict(), dict(b1=0.5, b2=0.95, eps=1e-3, eps_root=1e-8), dict(nesterov=True)]


def _adam_bits(lib, params, grads, jit):
  """The updates and moments of `lib.scale_by_adam` for each of ADAM_BITS, flattened per step;
  under jit one compiled scan runs them all."""
  def run(txs, grads):
    out = []
    for tx in txs:
      state, steps = tx.init(params), []
      for g in grads:
        updates, state = tx.update(g, state)
        steps.append(jnp.concatenate(
            [jnp.ravel(x) for x in jax.tree.leaves((updates, state.mu, state.nu))]))
      out.append(jnp.stack(steps))
    return out

  txs = [lib.scale_by_adam(**kwargs) for kwargs in ADAM_BITS]
  if not jit:
    return run(txs, grads)
  stacked = jax.tree.map(lambda *g: jnp.stack(g), *grads)

  @jax.jit
  def scanned(stacked):
    def step(states, g):
      new = [tx.update(g, s) for tx, s in zip(txs, states)]
      flat = [jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves((u, s.mu, s.nu))])
              for u, s in new]
      return [s for _, s in new], flat
    return jax.lax.scan(step, [tx.init(params) for tx in txs], stacked)[1]

  return scanned(stacked)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("one_leaf", [False, True])
def test_scale_by_adam_is_bit_identical_to_optax(one_leaf, jit):
  # Eagerly, optax's bias correction is one jitted call on the whole tree, where XLA divides by
  # 1 - b^t; divided leaf by leaf, XLA multiplies by its rounded reciprocal instead (1 ulp).
  params = {"w": _params()["w"]} if one_leaf else _params()
  grads = [{"w": g["w"]} for g in _grads(25)] if one_leaf else _grads(25)
  ours, theirs = _adam_bits(gradtx, params, grads, jit), _adam_bits(optax, params, grads, jit)
  for kwargs, a, b in zip(ADAM_BITS, ours, theirs):
    np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32),
                                  err_msg=f"{kwargs}, jit={jit}")


def test_rms_with_bias_correction_equals_adam_without_momentum():
  params, grads = _params(), _grads(8)
  rms, _ = _run(gradtx.scale_by_rms(0.99, eps_in_sqrt=False, bias_correction=True), params,
                grads)
  adam, _ = _run(gradtx.scale_by_adam(0.0, 0.99), params, grads)
  _assert_close(rms, [_leaves64(a) for a in adam], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# NAdam (Dozat 2016 / torch.optim.NAdam).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [dict(), dict(b1=0.95, b2=0.99, momentum_decay=0.05)])
def test_nadam_matches_reference_for_30_steps(kwargs):
  params, grads = _params(), _grads(30, seed=3)
  got, state = _run(gradtx.scale_by_nadam(**kwargs), params, grads)
  want = ref.scale_by_nadam(_leaves64(params), [_leaves64(g) for g in grads], **kwargs)
  _assert_close(got, want)
  b1, psi = kwargs.get("b1", 0.9), kwargs.get("momentum_decay", 0.004)
  mu = [b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in range(1, 31)]
  assert state.mu_product.dtype == jnp.float32 and state.mu_product.shape == ()
  np.testing.assert_allclose(float(state.mu_product), np.prod(mu), rtol=1e-5)
  assert int(state.count) == 30


def test_nadam_first_step_closed_form():
  # t = 1: m = (1 - b1) g and v_hat = g^2 (exact for b2 = 0.5), so with eps = 0 torch.optim.NAdam's
  # first step is u = [(1 - mu1) / (1 - mu1) + mu2 (1 - b1) / (1 - mu1 mu2)] sign(g).
  b1, psi = 0.9, 0.004
  mu1, mu2 = (b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in (1, 2))
  tx = gradtx.scale_by_nadam(b2=0.5, eps=0.0)
  u, _ = tx.update(jnp.asarray([3.0, -0.5]), tx.init(jnp.zeros(2)))
  expected = 1.0 + mu2 * (1 - b1) / (1 - mu1 * mu2)
  np.testing.assert_allclose(u, [expected, -expected], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Accumulator dtypes.
# ---------------------------------------------------------------------------------------------


def _dtypes(tree):
  return {jnp.asarray(x).dtype for x in jax.tree.leaves(tree)}


@pytest.mark.parametrize("name,kwargs,fields", [
    ("scale_by_adam", dict(mu_dtype=jnp.float32, nu_dtype=jnp.float32), dict(mu=jnp.float32,
                                                                               nu=jnp.float32)),
    ("scale_by_adam", dict(nu_dtype=jnp.float32, nesterov=True),
     dict(mu=jnp.bfloat16, nu=jnp.float32)),
    ("scale_by_amsgrad", dict(mu_dtype=jnp.float32), dict(mu=jnp.float32, nu=jnp.bfloat16,
                                                          nu_max=jnp.bfloat16)),
    ("scale_by_nadam", dict(mu_dtype=jnp.float32), dict(mu=jnp.float32, nu=jnp.bfloat16)),
])
def test_accumulator_dtypes_with_bf16_params(name, kwargs, fields):
  params = _params(jnp.bfloat16)
  grads = _grads(3, jnp.bfloat16)
  tx = FACTORIES[name](**kwargs)
  got, state = _run(tx, params, grads)
  for field, dtype in fields.items():
    assert _dtypes(getattr(state, field)) == {jnp.dtype(dtype)}, field
  assert all(_dtypes(u) == {jnp.dtype(jnp.bfloat16)} for u in got)


def test_float32_moments_with_bf16_params_track_the_float32_run():
  grads = _grads(3, jnp.bfloat16)
  tx = gradtx.scale_by_adam(mu_dtype=jnp.float32, nu_dtype=jnp.float32)
  got, _ = _run(tx, _params(jnp.bfloat16), grads)
  f32, _ = _run(tx, _params(), [jax.tree.map(lambda g: g.astype(jnp.float32), g) for g in grads])
  for a, b in zip(jax.tree.leaves(got[-1]), jax.tree.leaves(f32[-1])):
    np.testing.assert_allclose(np.asarray(a, np.float32), b, rtol=1e-2, atol=1e-2)


def test_float32_hyperparameter_arrays_keep_bf16_updates_and_state():
  params = _params(jnp.bfloat16)
  for tx in (gradtx.scale_by_adam(b1=jnp.float32(0.9), b2=jnp.float32(0.99),
                                  eps=jnp.float32(1e-8), nesterov=True),
             gradtx.scale_by_rms(decay=jnp.float32(0.9), eps=jnp.float32(1e-8)),
             gradtx.scale_by_adadelta(rho=jnp.float32(0.9), eps=jnp.float32(1e-6)),
             gradtx.scale_by_nadam(b1=jnp.float32(0.9), momentum_decay=jnp.float32(0.004))):
    out, state = _run(tx, params, _grads(1, jnp.bfloat16))
    assert _dtypes(out[-1]) == {jnp.dtype(jnp.bfloat16)}
    init = tx.init(params)
    assert [x.dtype for x in jax.tree.leaves(state)] == [x.dtype for x in jax.tree.leaves(init)]


# ---------------------------------------------------------------------------------------------
# Tree structures, None updates, the saturated counter.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=VARIANT_IDS)
def test_tree_mismatch_raises_naming_both(name, kwargs):
  tx = FACTORIES[name](**kwargs)
  state = tx.init(_params())
  bad = {"w": jnp.ones((2, 3)), "c": jnp.ones(5)}
  with pytest.raises(ValueError, match="structure") as info:
    tx.update(bad, state)
  msg = str(info.value)
  assert f"gradtx.{name}" in msg and "updates" in msg and "state." in msg


@pytest.mark.parametrize("name,kwargs", ONE_EACH, ids=ONE_EACH_IDS)
def test_none_updates_pass_through_and_keep_state(name, kwargs):
  tx = FACTORIES[name](**kwargs)
  params = _params()
  state = tx.init(params)
  g = _grads(1)[0]
  g["b"] = (None, g["b"][1])
  u, new_state = jax.jit(tx.update)(g, state)
  assert u["b"][0] is None
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(new_state)):
    assert old.shape == new.shape and old.dtype == new.dtype
  for field in new_state._fields:
    sub = getattr(new_state, field)
    if isinstance(sub, dict):  # the moment of the frozen leaf is untouched
      np.testing.assert_array_equal(sub["b"][0], getattr(state, field)["b"][0])


@pytest.mark.parametrize("name,kwargs", COUNTED, ids=COUNTED_IDS)
def test_count_at_int32_max_keeps_working(name, kwargs):
  tx = FACTORIES[name](**kwargs)
  params = _params()
  state = tx.init(params)
  imax = jnp.iinfo(jnp.int32).max
  if "count" in state._fields:
    state = state._replace(count=jnp.asarray(imax, jnp.int32))
  step = jax.jit(tx.update)
  for g in _grads(3):
    u, state = step(g, state)
    for leaf in jax.tree.leaves(u) + jax.tree.leaves(state):
      assert np.all(np.isfinite(np.asarray(leaf, np.float64)))
    if "count" in state._fields:
      assert state.count.dtype == jnp.int32 and int(state.count) == imax


# ---------------------------------------------------------------------------------------------
# Behaviour documented in the docstrings.
# ---------------------------------------------------------------------------------------------


def test_rss_zero_accumulator_gives_zero_update_not_nan():
  tx = gradtx.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
  u, state = tx.update(jnp.asarray([0.0, 3.0]), tx.init(jnp.zeros(2)))
  np.testing.assert_array_equal(u, [0.0, 1.0])
  np.testing.assert_array_equal(state.sum_of_squares, [0.0, 9.0])


def test_stddev_with_bias_correction_first_step_has_zero_variance():
  tx = gradtx.scale_by_stddev(decay=0.5, eps=4.0, bias_correction=True)
  u, state = tx.update(jnp.asarray([3.0]), tx.init(jnp.zeros(1)))
  np.testing.assert_allclose(u, [3.0 / 2.0], rtol=1e-6)  # g / sqrt(0 + eps)
  assert int(state.count) == 1


def test_rms_and_stddev_state_classes_follow_the_bias_correction_flag():
  p = _params()
  assert type(gradtx.scale_by_rms().init(p)) is gradtx.ScaleByRmsState
  assert type(gradtx.scale_by_rms(bias_correction=True).init(p)) is gradtx.ScaleByRmsWithCountState
  assert type(gradtx.scale_by_stddev().init(p)) is gradtx.ScaleByRStdDevState
  assert (type(gradtx.scale_by_stddev(bias_correction=True).init(p))
          is gradtx.ScaleByRStdDevWithCountState)
  assert type(gradtx.scale_by_adamax().init(p)) is gradtx.ScaleByAdamState


def test_vmap_over_b1_schedule_scale_and_b2():
  params, grads = _params(), _grads(3)

  def train(b2, scale):
    tx = gradtx.scale_by_adam(b1=lambda t: scale * 0.9 ** (1.0 * t), b2=b2, nesterov=True)
    state, us = tx.init(params), []
    for g in grads:
      u, state = tx.update(g, state)
      us.append(u)
    return us

  b2s, scales = jnp.asarray([0.9, 0.999]), jnp.asarray([0.5, 0.9])
  batched = jax.jit(jax.vmap(train))(b2s, scales)
  for i in range(2):
    single = jax.jit(train)(float(b2s[i]), float(scales[i]))
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
      np.testing.assert_allclose(a[i], b, rtol=2e-5, atol=1e-6)
