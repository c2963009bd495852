"""Schedules: optax parity for the shared names, NumPy references from the papers for the new
ones, jit and vmap (over counts and over the schedules' arguments), validation errors, and
schedules inside transformations."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref

STEPS = [0, 1, 2, 4, 5, 9, 10, 11, 20, 25, 29, 30, 50, 60, 99, 100, 101, 150, 199, 200, 201,
         1000, 10**7]
RTOL, ATOL = 1e-6, 1e-7


def _steps():
  return jnp.asarray(STEPS, jnp.int32)


_IDS = itertools.count()


def _case(name, **kwargs):
  return pytest.param(lambda lib: getattr(lib, name)(**kwargs), id=f"{name}-{next(_IDS)}")


# Builders `lib -> schedule`, called with lib = gradtx.schedules and lib = optax.
PARITY = [
    _case("constant_schedule", value=0.3),
    _case("linear_schedule", init_value=1.0, end_value=0.01, transition_steps=100),
    _case("linear_schedule", init_value=1.0, end_value=0.01, transition_steps=100,
          transition_begin=5),
    _case("linear_schedule", init_value=0.5, end_value=2.0, transition_steps=0),
    _case("polynomial_schedule", init_value=1.0, end_value=0.01, power=2, transition_steps=100,
          transition_begin=5),
    _case("polynomial_schedule", init_value=1.0, end_value=0.1, power=0.5, transition_steps=50),
    _case("exponential_decay", init_value=1.0, transition_steps=10, decay_rate=0.9),
    _case("exponential_decay", init_value=1.0, transition_steps=10, decay_rate=0.9,
          staircase=True),
    _case("exponential_decay", init_value=2.0, transition_steps=7, decay_rate=0.5,
          transition_begin=20, staircase=True),
    _case("exponential_decay", init_value=1.0, transition_steps=10, decay_rate=0.5,
          transition_begin=5, end_value=0.3),
    _case("exponential_decay", init_value=1.0, transition_steps=10, decay_rate=1.1,
          end_value=3.0),
    _case("exponential_decay", init_value=1.0, transition_steps=0, decay_rate=0.5),
    _case("piecewise_constant_schedule", init_value=1.0,
          boundaries_and_scales={100: 0.1, 200: 0.01}),
    _case("piecewise_constant_schedule", init_value=0.3,
          boundaries_and_scales={0: 2.0, 10: 0.5, 1000: 0.0}),
    _case("piecewise_constant_schedule", init_value=0.3),
    _case("piecewise_interpolate_schedule", interpolate_type="linear", init_value=1.0,
          boundaries_and_scales={4: 0.1, 8: 0.01}),
    _case("piecewise_interpolate_schedule", interpolate_type="cosine", init_value=1.0,
          boundaries_and_scales={10: 2.0, 100: 0.1, 200: 0.5}),
    _case("piecewise_interpolate_schedule", interpolate_type="linear", init_value=0.7),
    _case("piecewise_interpolate_schedule", interpolate_type="cosine", init_value=0.7,
          boundaries_and_scales={0: 2.0, 50: 0.5}),
    _case("warmup_constant_schedule", init_value=0.0, peak_value=1e-3, warmup_steps=10),
    _case("warmup_constant_schedule", init_value=0.5, peak_value=0.1, warmup_steps=0),
    _case("cosine_decay_schedule", init_value=1.0, decay_steps=100),
    _case("cosine_decay_schedule", init_value=0.5, decay_steps=150, alpha=0.1, exponent=2.0),
    _case("warmup_cosine_decay_schedule", init_value=0.0, peak_value=1.0, warmup_steps=10,
          decay_steps=100, end_value=0.1),
    _case("warmup_cosine_decay_schedule", init_value=0.1, peak_value=1.0, warmup_steps=0,
          decay_steps=200, exponent=1.5),
    _case("warmup_cosine_decay_schedule", init_value=0.1, peak_value=0.0, warmup_steps=5,
          decay_steps=50),
    _case("warmup_exponential_decay_schedule", init_value=0.0, peak_value=1.0, warmup_steps=10,
          transition_steps=20, decay_rate=0.5),
    _case("warmup_exponential_decay_schedule", init_value=0.0, peak_value=1.0, warmup_steps=10,
          transition_steps=20, decay_rate=0.5, transition_begin=5, staircase=True,
          end_value=0.1),
    _case("cosine_onecycle_schedule", transition_steps=100, peak_value=1.0),
    _case("cosine_onecycle_schedule", transition_steps=200, peak_value=0.5, pct_start=0.1,
          div_factor=10.0, final_div_factor=100.0),
    _case("linear_onecycle_schedule", transition_steps=100, peak_value=1.0),
    _case("linear_onecycle_schedule", transition_steps=200, peak_value=0.5, pct_start=0.25,
          pct_final=1.0),
    _case("sgdr_schedule", cosine_kwargs=[
        dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=50, end_value=0.1),
        dict(init_value=0.1, peak_value=0.5, warmup_steps=0, decay_steps=100)]),
    pytest.param(lambda lib: lib.join_schedules(
        [lib.constant_schedule(1.0), lib.linear_schedule(1.0, 0.0, 50),
         lib.cosine_decay_schedule(0.5, 100)], [10, 100]), id="join_schedules"),
]

# Schedules optax lacks (built from gradtx only).
NEW = {
    "warm_restarts_m1": lambda: gradtx.warm_restarts_schedule(1.0, 10),
    "warm_restarts_m2": lambda: gradtx.warm_restarts_schedule(1.0, 10, 2.0, 0.1, 0.5),
    "warm_restarts_m1.5": lambda: gradtx.warm_restarts_schedule(0.3, 7, 1.5, 0.01),
    "cyclic_triangular": lambda: gradtx.cyclic_schedule(0.1, 1.0, 10),
    "cyclic_triangular2": lambda: gradtx.cyclic_schedule(0.1, 1.0, 10, "triangular2"),
    "cyclic_exp_range": lambda: gradtx.cyclic_schedule(0.1, 1.0, 10, "exp_range", 0.99),
    "transformer": lambda: gradtx.transformer_schedule(512, 20, 2.0),
    "momentum": lambda: gradtx.momentum_schedule(0.99, 10),
    "scale_learning_rate": lambda: gradtx.scale_learning_rate(gradtx.cosine_decay_schedule(0.1, 100),
                                                          1024, 256, "sqrt"),
}
# (name, build) for every schedule above, built from gradtx.
ALL = [(p.id, lambda p=p: p.values[0](gradtx)) for p in PARITY] + list(NEW.items())


# --------------------------------------------------------------------------------------------
# optax parity.


@pytest.mark.parametrize("build", PARITY)
def test_optax_parity(build):
  ours = build(gradtx)(_steps())
  theirs = build(optax)
  try:
    theirs = jnp.broadcast_to(theirs(_steps()), (len(STEPS),))
  except (TypeError, ValueError):  # optax's piecewise_interpolate_schedule takes scalars only
    theirs = jax.jit(jax.vmap(theirs))(_steps())  # (jit: eager vmap is slow to compile)
  np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name, kwargs", [
    ("cosine_decay_schedule", dict(init_value=1.0, decay_steps=3 * 10**9)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=10,
                                          decay_steps=100, end_value=0.1)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=10, decay_rate=0.5,
                               staircase=True)),
    ("piecewise_constant_schedule", dict(init_value=1.0, boundaries_and_scales={100: 0.1})),
])
def test_optax_parity_at_python_int_steps(name, kwargs):
  ours, theirs = getattr(gradtx, name)(**kwargs), getattr(optax, name)(**kwargs)
  for count in (0, 1, 100, 10**7, 2 * 10**9):
    np.testing.assert_allclose(ours(count), theirs(count), rtol=RTOL, atol=ATOL)


def test_sgdr_schedule_restart_boundaries_match_optax():
  kwargs = [dict(init_value=0.0, peak_value=1.0, warmup_steps=3, decay_steps=10)] * 3
  steps = jnp.arange(40)
  ours = jax.jit(gradtx.sgdr_schedule(kwargs))(steps)
  theirs = jax.jit(jax.vmap(optax.sgdr_schedule(kwargs)))(steps)
  np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


# (init_value, peak_value, warmup_steps) for the bit-identity test.
WARMUP_CONSTANT = [(0.0, 1e-3, 10), (1e-4, 3e-3, 7), (0.5, 0.1, 41), (1e-6, 0.37, 13)]


def _warmup_constant_values(make, jit):
  """Each WARMUP_CONSTANT schedule `make(*args)` at steps 0..warmup_steps + 5, eagerly (on an
  array of counts) or under one jit."""
  def evaluate(steps):
    return [make(*args)(steps[:args[2] + 6]) for args in WARMUP_CONSTANT]
  steps = jnp.arange(50, dtype=jnp.int32)
  return jax.jit(evaluate)(steps) if jit else evaluate(steps)


def test_warmup_constant_schedule_is_linear_schedule_bit_for_bit():
  for jit in (False, True):
    got = _warmup_constant_values(gradtx.warmup_constant_schedule, jit)
    want = _warmup_constant_values(lambda i, p, w: gradtx.linear_schedule(i, p, w), jit)
    for (init, peak, warmup), g, w in zip(WARMUP_CONSTANT, got, want):
      np.testing.assert_array_equal(g, w, err_msg=f"{(init, peak, warmup)} jit={jit}")
      assert g.dtype == jnp.float32
      np.testing.assert_allclose(g[0], init, rtol=1e-6, atol=1e-7)  # (init - peak) + peak
      np.testing.assert_array_equal(g[warmup:], np.float32(peak))  # reached exactly, then held


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_warmup_constant_schedule_bit_identical_to_optax(jit):
  """Bit-identical to optax during the warm-up; from its end on gradtx holds `peak_value`
  exactly, where optax (eagerly for some values, under jit for others) leaves 1 ulp of
  `1 - count / steps` (gradtx's deliberate difference, see `polynomial_schedule`)."""
  got = _warmup_constant_values(gradtx.warmup_constant_schedule, jit)
  want = _warmup_constant_values(optax.warmup_constant_schedule, jit)
  for args, g, w in zip(WARMUP_CONSTANT, got, want):
    warmup = args[2]
    np.testing.assert_array_equal(g[:warmup], w[:warmup], err_msg=f"{args} jit={jit}")
    np.testing.assert_array_equal(g[warmup:], np.float32(args[1]))
    np.testing.assert_allclose(w[warmup:], args[1], rtol=1e-6)


def test_differences_from_optax_jit_gives_the_eager_values():
  # optax under jit steps one count late at some multiples of transition_steps (XLA divides by
  # multiplying with a rounded reciprocal) and leaves ~1e-8 at the end of a polynomial schedule
  periods = (41, 47, 55, 61)

  @jax.jit
  def evaluate(k):
    return ([gradtx.exponential_decay(1.0, p, 0.5, staircase=True)(k * p) for p in periods],
            [gradtx.momentum_schedule(0.999, p)(k * p) for p in periods],
            gradtx.polynomial_schedule(1.0, 0.1, 0.5, 50)(50 + k))

  decays, stages, end = evaluate(jnp.arange(20))
  for got in decays:
    np.testing.assert_array_equal(got, 0.5**np.arange(20, dtype=np.float32))
  for got in stages:
    np.testing.assert_allclose(got, 1 - 0.5 / np.arange(1, 21), rtol=1e-6)
  np.testing.assert_array_equal(end, np.float32(0.1))


# Bit-identity with optax for the polynomial family: optax's arithmetic order, so the float32
# bits are optax's eagerly and under jit (where XLA computes 1 - count / steps as
# fma(-count, 1 / steps, 1)), for int32 counts given as an array, carried by a scan, or kept by
# an optimizer. From the end of the transition on, gradtx gives end_value exactly instead.
BITS_CASES = [  # (init_value, end_value, power, transition_steps, transition_begin)
    (1.0, 0.0, 1, 10, 0), (0.1, 1e-3, 2, 7, 3), (3e-4, 7e-3, 0.5, 41, 0),
    (0.7, 0.3, 1.0, 30, 5), (1.0, 0.01, 3.0, 3, 0), (-0.5, 2.0, 1.7, 37, 11)]
BITS_STEPS = 64


def _bit_schedules(lib):
  """[(schedule, end_step)]: from end_step on (None: never) gradtx gives end_value exactly."""
  out = []
  for init, end, power, steps, begin in BITS_CASES:
    out += [(lib.polynomial_schedule(init, end, power, steps, begin), steps + begin),
            (lib.linear_schedule(init, end, steps, begin), steps + begin),
            (lib.warmup_cosine_decay_schedule(init, 1.0, steps, steps + 20, end, power), None),
            (lib.warmup_exponential_decay_schedule(init, 1.0, steps, 10, 0.9, begin), None)]
  return out


def _bit_values(lib):
  """Each schedule's values at steps 0..BITS_STEPS-1: eagerly, and under one jit as an int32
  array, as a scan's carried count and as `scale_by_learning_rate`'s state count."""
  schedules = [schedule for schedule, _ in _bit_schedules(lib)]
  counts = jnp.arange(BITS_STEPS, dtype=jnp.int32)

  def scanned(schedule):
    tx = lib.scale_by_learning_rate(schedule)

    def step(carry, _):
      count, state = carry
      updates, state = tx.update(jnp.ones([], jnp.float32), state)
      return (lib.safe_increment(count), state), (schedule(count), -updates)

    init = (jnp.zeros([], jnp.int32), tx.init(jnp.zeros([], jnp.float32)))
    return jax.lax.scan(step, init, None, length=BITS_STEPS)[1]

  jitted = jax.jit(lambda c: [(s(c), *scanned(s)) for s in schedules])(counts)
  return [(s(counts), *j) for s, j in zip(schedules, jitted)]


def test_polynomial_family_is_bit_identical_to_optax_eagerly_and_under_jit():
  ends = [end_step for _, end_step in _bit_schedules(gradtx)]
  for k, (ours, theirs, end_step) in enumerate(zip(_bit_values(gradtx), _bit_values(optax), ends)):
    case = BITS_CASES[k // 4]
    for mode, a, b in zip(("eager", "jit", "scan", "optimizer"), ours, theirs):
      a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
      np.testing.assert_array_equal(a[:end_step].view(np.uint32), b[:end_step].view(np.uint32),
                                    err_msg=f"schedule {k} of {case}, {mode}")
      if end_step is not None:  # optax under jit: ~1e-8 off, NaN for power < 1
        np.testing.assert_array_equal(a[end_step:], np.float32(case[1]),
                                      err_msg=f"schedule {k} of {case}, {mode}")


# --------------------------------------------------------------------------------------------
# Output type, jit and vmap over counts.


def test_jit_equals_eager_and_int32_counts_give_float32_scalars():
  jitted = jax.jit(lambda steps: [build()(steps) for _, build in ALL])(_steps())  # one compile
  for (name, build), vector in zip(ALL, jitted):
    assert vector.dtype == jnp.float32 and vector.shape == (len(STEPS),), name
    np.testing.assert_allclose(vector, build()(_steps()), rtol=RTOL, atol=ATOL, err_msg=name)
    scalar = jax.eval_shape(build(), jax.ShapeDtypeStruct((), jnp.int32))
    assert scalar.dtype == jnp.float32 and scalar.shape == (), name


def test_eager_scalar_counts_give_float32_scalar_arrays():
  for build in (lambda: gradtx.constant_schedule(2), lambda: gradtx.warm_restarts_schedule(1.0, 10, 2),
                lambda: gradtx.piecewise_constant_schedule(1.0, {5: 0.5}),
                lambda: gradtx.transformer_schedule(512), lambda: gradtx.momentum_schedule()):
    for count in (7, jnp.asarray(7, jnp.int32)):
      out = build()(count)
      assert isinstance(out, jax.Array) and out.dtype == jnp.float32 and out.shape == ()


# --------------------------------------------------------------------------------------------
# vmap over the schedules' arguments equals a Python loop.

VMAP = {
    "constant.value": (lambda v: gradtx.constant_schedule(v), [0.1, 0.5, 1.0]),
    "linear.init_value": (lambda v: gradtx.linear_schedule(v, 0.01, 100, 5), [0.1, 0.5, 1.0]),
    "polynomial.transition_steps": (lambda v: gradtx.polynomial_schedule(1.0, 0.1, 2, v),
                                    [0, 50, 100]),
    "polynomial.power": (lambda v: gradtx.polynomial_schedule(1.0, 0.1, v, 100), [0.5, 1.0, 3.0]),
    "exponential.decay_rate": (lambda v: gradtx.exponential_decay(1.0, 10, v, end_value=0.5),
                               [0.5, 0.9, 1.2]),
    "exponential.transition_steps": (lambda v: gradtx.exponential_decay(1.0, v, 0.5, 3, True),
                                     [0, 5, 10]),
    "piecewise_constant.scale": (lambda v: gradtx.piecewise_constant_schedule(
        1.0, {10: v, 100: 0.1}), [0.1, 0.5, 2.0]),
    "piecewise_interpolate.init_value": (lambda v: gradtx.piecewise_interpolate_schedule(
        "cosine", v, {10: 2.0, 100: 0.1}), [0.1, 0.5, 2.0]),
    "cosine.init_value": (lambda v: gradtx.cosine_decay_schedule(v, 100), [0.1, 0.5, 1.0]),
    "cosine.decay_steps": (lambda v: gradtx.cosine_decay_schedule(1.0, v, 0.1), [10, 100, 1000]),
    "warmup_cosine.peak_value": (lambda v: gradtx.warmup_cosine_decay_schedule(
        0.0, v, 10, 100, 0.05), [0.0, 0.5, 1.0]),
    "warmup_cosine.warmup_steps": (lambda v: gradtx.warmup_cosine_decay_schedule(
        0.0, 1.0, v, 100), [0, 10, 50]),
    "warmup_exponential.peak_value": (lambda v: gradtx.warmup_exponential_decay_schedule(
        0.0, v, 10, 20, 0.5, end_value=0.05), [0.1, 0.5, 1.0]),
    "cosine_onecycle.peak_value": (lambda v: gradtx.cosine_onecycle_schedule(100, v),
                                   [0.1, 0.5, 1.0]),
    "linear_onecycle.div_factor": (lambda v: gradtx.linear_onecycle_schedule(100, 1.0,
                                                                         div_factor=v),
                                   [5.0, 25.0, 100.0]),
    "sgdr.peak_value": (lambda v: gradtx.sgdr_schedule(
        [dict(init_value=0.0, peak_value=v, warmup_steps=5, decay_steps=50)] * 2),
                        [0.1, 0.5, 1.0]),
    "join.boundary": (lambda v: gradtx.join_schedules(
        [gradtx.constant_schedule(1.0), gradtx.linear_schedule(1.0, 0.0, 50)], [v]), [0, 10, 100]),
    "warm_restarts.init_value": (lambda v: gradtx.warm_restarts_schedule(v, 10, 2), [0.1, 1.0, 3.0]),
    "warm_restarts.first_period": (lambda v: gradtx.warm_restarts_schedule(1.0, v, 2.0),
                                   [5.0, 10.0, 17.0]),
    "warm_restarts.period_multiplier": (lambda v: gradtx.warm_restarts_schedule(1.0, 10, v),
                                        [1.0, 1.5, 2.0]),
    "warm_restarts.min_value": (lambda v: gradtx.warm_restarts_schedule(1.0, 10, 1.0, v),
                                [0.0, 0.1, 0.5]),
    "warm_restarts.decay_factor": (lambda v: gradtx.warm_restarts_schedule(1.0, 10, 2.0, 0.0, v),
                                   [0.5, 0.9, 1.0]),
    "cyclic.max_value": (lambda v: gradtx.cyclic_schedule(0.1, v, 10, "triangular2"),
                         [0.2, 1.0, 3.0]),
    "cyclic.step_size": (lambda v: gradtx.cyclic_schedule(0.1, 1.0, v), [5.0, 10.0, 40.0]),
    "cyclic.gamma": (lambda v: gradtx.cyclic_schedule(0.1, 1.0, 10, "exp_range", v),
                     [0.9, 0.99, 1.0]),
    "transformer.d_model": (lambda v: gradtx.transformer_schedule(v, 20), [128.0, 512.0, 1024.0]),
    "transformer.warmup_steps": (lambda v: gradtx.transformer_schedule(512, v), [1.0, 20.0, 4000.0]),
    "momentum.max_momentum": (lambda v: gradtx.momentum_schedule(v, 10), [0.0, 0.9, 0.99]),
    "scale_learning_rate.batch_size": (lambda v: gradtx.scale_learning_rate(
        gradtx.cosine_decay_schedule(0.1, 100), v, 256, "sqrt"), [256.0, 512.0, 4096.0]),
}


def test_vmap_over_schedule_arguments_equals_loop():
  names = sorted(VMAP)

  @jax.jit  # one compilation for every case
  def batched(steps):
    return [jax.vmap(lambda v, b=VMAP[n][0]: b(v)(steps))(jnp.asarray(VMAP[n][1]))
            for n in names]

  for name, got in zip(names, batched(_steps())):
    build, values = VMAP[name]
    looped = np.stack([np.asarray(build(v)(_steps())) for v in values])
    np.testing.assert_allclose(got, looped, rtol=1e-5, atol=ATOL, err_msg=name)


def test_vmap_over_learning_rates_in_a_training_loop_equals_separate_runs():
  def run(peak):
    tx = gradtx.scale_by_learning_rate(gradtx.warmup_cosine_decay_schedule(0.0, peak, 2, 10))
    params = jnp.ones(3)
    state = tx.init(params)
    for _ in range(5):
      updates, state = tx.update(2 * params, state)
      params = params + updates
    return params

  peaks = jnp.asarray([0.01, 0.1, 0.3])
  batched = jax.jit(jax.vmap(run))(peaks)
  np.testing.assert_allclose(batched, np.stack([run(float(p)) for p in peaks]), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# NumPy references from the papers.


def test_linear_schedule_is_the_deep_learning_book_linear_decay():
  schedule = gradtx.linear_schedule(0.1, 0.001, transition_steps=300, transition_begin=7)
  for t in (0, 7, 8, 100, 306, 307, 308, 10**6):
    np.testing.assert_allclose(schedule(t), ref.linear_decay(t, 0.1, 0.001, 300, 7), rtol=RTOL)


WARM_RESTARTS = [(1.0, 10, 1.0, 0.0, 1.0), (1.0, 10, 2.0, 0.1, 0.5), (0.3, 8, 3.0, 0.01, 0.9),
                 (0.3, 7, 1.5, 0.01, 1.0), (2.0, 2.5, 1.0, 0.5, 0.8)]


def test_warm_restarts_matches_reference_with_concrete_and_traced_arguments():
  steps = jnp.arange(3000)
  # every argument traced: the float32 closed form (concrete integer periods use int32 starts)
  traced = jax.jit(lambda args: [gradtx.warm_restarts_schedule(*a)(steps) for a in args])(
      WARM_RESTARTS)
  for args, got_traced in zip(WARM_RESTARTS, traced):
    expected = [ref.warm_restarts_schedule(t, *args) for t in range(3000)]
    got = gradtx.warm_restarts_schedule(*args)(steps)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6, err_msg=str(args))
    np.testing.assert_allclose(got_traced, expected, rtol=2e-5, atol=1e-6, err_msg=str(args))


def test_warm_restarts_restart_positions_are_exact_up_to_1e7_in_float32():
  # a traced period_multiplier takes the float32 closed form (concrete integer periods use exact
  # int32 cycle starts, tested at every restart of the int32 range below)
  steps = jnp.arange(10**7, dtype=jnp.int32)
  values = jax.jit(lambda m: gradtx.warm_restarts_schedule(1.0, 10, m)(steps))(2.0)
  jumps = np.flatnonzero(np.diff(np.asarray(values)) > 0.5) + 1  # the value jumps back up to 1
  assert jumps.tolist() == ref.restart_steps(10, 2, 10**7 - 1)
  np.testing.assert_array_equal(np.asarray(values)[jumps], 1.0)


@pytest.mark.parametrize("first_period, multiplier", [(10, 2), (3, 3), (1, 2), (1000, 5)])
def test_warm_restarts_exact_for_every_int32_count_with_integer_periods(first_period, multiplier):
  starts = ref.restart_steps(first_period, multiplier, 2**31 - 1)
  counts = sorted({c for s in starts for c in (s - 1, s, s + 1) if c < 2**31} | {2**31 - 1})
  schedule = gradtx.warm_restarts_schedule(1.0, first_period, multiplier, 0.0, 0.5)
  got = np.asarray(schedule(jnp.asarray(counts, jnp.int32)))
  expected = [ref.warm_restarts_schedule(c, 1.0, first_period, multiplier, 0.0, 0.5)
              for c in counts]
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)
  # the value at the i-th restart is exactly 0.5^i
  assert [float(got[counts.index(s)]) for s in starts] == [0.5**i for i in
                                                           range(1, len(starts) + 1)]
  top = gradtx.warm_restarts_schedule(1.0, 7)(jnp.asarray(2**31 - 1, jnp.int32))
  np.testing.assert_allclose(top, ref.warm_restarts_schedule(2**31 - 1, 1.0, 7), rtol=1e-6)


def test_warm_restarts_equals_optax_sgdr_with_the_same_cycles():
  lr, t0, m, lo, d = 0.5, 10, 2, 0.05, 0.7
  cycles = [dict(init_value=lr * d**k, peak_value=lr * d**k, warmup_steps=0,
                 decay_steps=t0 * m**k, end_value=lo) for k in range(6)]
  steps = jnp.arange(sum(c["decay_steps"] for c in cycles))
  np.testing.assert_allclose(gradtx.warm_restarts_schedule(lr, t0, m, lo, d)(steps),
                             jax.jit(optax.sgdr_schedule(cycles))(steps), rtol=1e-5,
                             atol=1e-7)


@pytest.mark.parametrize("mode, gamma", [("triangular", 1.0), ("triangular2", 1.0),
                                         ("exp_range", 0.995)])
def test_cyclic_matches_smiths_formula(mode, gamma):
  steps = np.arange(3000)
  got = gradtx.cyclic_schedule(0.01, 0.1, 25, mode, gamma)(jnp.asarray(steps))
  expected = [ref.cyclic_schedule(int(t), 0.01, 0.1, 25, mode, gamma) for t in steps]
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)


def test_cyclic_triangular_shape_and_triangular2_halving():
  s, base, top = 20, 0.1, 1.1
  steps = jnp.arange(3000)
  tri = np.asarray(gradtx.cyclic_schedule(base, top, s)(steps))
  np.testing.assert_allclose(np.diff(tri[:s + 1]), (top - base) / s, rtol=1e-5)  # straight ramp
  np.testing.assert_allclose(np.diff(tri[s:2 * s + 1]), -(top - base) / s, rtol=1e-5)
  np.testing.assert_allclose(tri[[0, s, 2 * s, 3 * s, 4 * s]], [base, top, base, top, base],
                             rtol=1e-6)
  tri2 = np.asarray(gradtx.cyclic_schedule(base, top, s, "triangular2")(steps))
  peaks = tri2[[(2 * k + 1) * s for k in range(5)]]
  np.testing.assert_allclose(peaks, [base + (top - base) / 2**k for k in range(5)], rtol=1e-6)
  np.testing.assert_allclose(tri2[[2 * k * s for k in range(5)]], base, rtol=1e-6)


def test_transformer_peaks_at_warmup_step_and_matches_vaswani():
  d, w = 512, 4000
  schedule = gradtx.transformer_schedule(d, w)
  values = np.asarray(schedule(jnp.arange(3 * w)))
  assert int(np.argmax(values)) == w - 1  # step_num = count + 1 = w
  np.testing.assert_allclose(values[w - 1], (d * w)**-0.5, rtol=1e-6)
  for t in (0, 1, 100, w - 2, w - 1, w, 2 * w, 10**7):
    np.testing.assert_allclose(schedule(t), ref.transformer_schedule(t, d, w), rtol=1e-6)
  np.testing.assert_allclose(gradtx.transformer_schedule(64, 10, 3.0)(9), 3.0 * (640)**-0.5,
                             rtol=1e-6)


def test_momentum_schedule_matches_sutskever():
  schedule = gradtx.momentum_schedule()
  for t in (0, 1, 249, 250, 499, 500, 750, 12_249, 12_250, 10**7):
    np.testing.assert_allclose(schedule(t), ref.momentum_schedule(t), rtol=1e-6)
  np.testing.assert_allclose(schedule(jnp.asarray([0, 250, 500, 10**6])),
                             [0.5, 0.75, 5 / 6, 0.99], rtol=1e-6)


def test_scale_learning_rate_on_floats_arrays_and_schedules():
  out = gradtx.scale_learning_rate(0.1, 1024, 256)
  assert isinstance(out, float) and out == pytest.approx(0.4)
  out = gradtx.scale_learning_rate(1e-3, 1024, 256, rule="sqrt")
  assert isinstance(out, float) and out == pytest.approx(ref.scale_learning_rate(1e-3, 1024, 256,
                                                                                 "sqrt"))
  out = gradtx.scale_learning_rate(jnp.asarray(0.1), 64, 256)
  assert isinstance(out, jax.Array)
  np.testing.assert_allclose(out, 0.025, rtol=1e-6)
  base = gradtx.cosine_decay_schedule(0.1, 100)
  scaled = gradtx.scale_learning_rate(base, 512, 128, rule="sqrt")
  assert callable(scaled)
  np.testing.assert_allclose(scaled(_steps()), 2.0 * base(_steps()), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Schedules inside transformations, under jit.


def _run(tx, grads):
  @jax.jit
  def step(params, state, g):
    updates, state = tx.update(g, state, params)
    return params + updates, state, updates

  params = jnp.zeros(3)
  state, out = tx.init(params), []
  for g in grads:
    params, state, updates = step(params, state, g)
    out.append(np.asarray(updates))
  return out


GRADS = [np.array([1.0, -2.0, 0.5]) * (k + 1) for k in range(8)]


def test_schedule_in_scale_by_learning_rate_under_jit():
  schedule = gradtx.warm_restarts_schedule(0.1, 3, 2.0)
  got = _run(gradtx.scale_by_learning_rate(schedule), GRADS)
  for t, (u, g) in enumerate(zip(got, GRADS)):
    np.testing.assert_allclose(u, -ref.warm_restarts_schedule(t, 0.1, 3, 2.0) * g, rtol=1e-6)


def test_momentum_schedule_in_trace_under_jit():
  got = _run(gradtx.trace(decay=gradtx.momentum_schedule(0.9, steps_per_stage=2)), GRADS)
  expected = ref.trace([np.zeros(3)], [[g] for g in GRADS],
                       decay=lambda t: ref.momentum_schedule(t, 0.9, 2))
  for u, e in zip(got, expected):
    np.testing.assert_allclose(u, e[0], rtol=1e-6)


def test_momentum_and_learning_rate_schedules_in_sgd_under_jit():
  sgd = gradtx.sgd
  lr = gradtx.scale_learning_rate(gradtx.cyclic_schedule(0.01, 0.1, 2), 512, 256)
  got = _run(sgd(lr, momentum=gradtx.momentum_schedule(0.9, steps_per_stage=2)), GRADS)
  traces = ref.trace([np.zeros(3)], [[g] for g in GRADS],
                     decay=lambda t: ref.momentum_schedule(t, 0.9, 2))
  for t, (u, v) in enumerate(zip(got, traces)):
    eta = ref.scale_learning_rate(ref.cyclic_schedule(t, 0.01, 0.1, 2), 512, 256)
    np.testing.assert_allclose(u, -eta * v[0], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Validation: one test per rule, matching the argument's name.


def _traced_onecycle():
  return jax.jit(lambda n: gradtx.cosine_onecycle_schedule(n, 1.0)(0))(100)


ERRORS = {
    "constant.value.kind": (lambda: gradtx.constant_schedule("a"), TypeError, "value"),
    "constant.value.shape": (lambda: gradtx.constant_schedule(jnp.ones(3)), ValueError,
                             "value must be a scalar"),
    "polynomial.transition_steps": (lambda: gradtx.polynomial_schedule(1.0, 0.0, 1, -1), ValueError,
                                    "transition_steps"),
    "polynomial.transition_begin": (lambda: gradtx.polynomial_schedule(1.0, 0.0, 1, 10, -1),
                                    ValueError, "transition_begin"),
    "polynomial.power": (lambda: gradtx.polynomial_schedule(1.0, 0.0, float("nan"), 10), ValueError,
                         "power"),
    "linear.transition_steps": (lambda: gradtx.linear_schedule(1.0, 0.0, -5), ValueError,
                                "transition_steps"),
    "linear.end_value": (lambda: gradtx.linear_schedule(1.0, float("inf"), 5), ValueError,
                         "end_value"),
    "warmup_constant.warmup_steps": (lambda: gradtx.warmup_constant_schedule(0.0, 1.0, -1),
                                     ValueError, "warmup_constant_schedule: warmup_steps"),
    "warmup_constant.peak_value": (lambda: gradtx.warmup_constant_schedule(0.0, float("nan"), 5),
                                   ValueError, "warmup_constant_schedule: peak_value"),
    "warmup_constant.init_value": (lambda: gradtx.warmup_constant_schedule("0", 1.0, 5),
                                   TypeError, "warmup_constant_schedule: init_value"),
    "exponential.decay_rate.zero": (lambda: gradtx.exponential_decay(1.0, 10, 0.0), ValueError,
                                    "decay_rate"),
    "exponential.decay_rate.negative": (lambda: gradtx.exponential_decay(1.0, 10, -0.5), ValueError,
                                        "decay_rate"),
    "exponential.transition_steps": (lambda: gradtx.exponential_decay(1.0, -10, 0.5), ValueError,
                                     "transition_steps"),
    "exponential.transition_begin": (lambda: gradtx.exponential_decay(1.0, 10, 0.5, -1), ValueError,
                                     "transition_begin"),
    "exponential.staircase": (lambda: gradtx.exponential_decay(1.0, 10, 0.5, staircase="yes"),
                              TypeError, "staircase"),
    "exponential.end_value": (lambda: gradtx.exponential_decay(1.0, 10, 0.5, end_value=jnp.ones(2)),
                              ValueError, "end_value"),
    "piecewise_constant.kind": (lambda: gradtx.piecewise_constant_schedule(1.0, [(10, 0.1)]),
                                TypeError, "boundaries_and_scales"),
    "piecewise_constant.scale": (lambda: gradtx.piecewise_constant_schedule(1.0, {10: -0.1}),
                                 ValueError, "boundaries_and_scales"),
    "piecewise_constant.boundary": (lambda: gradtx.piecewise_constant_schedule(1.0, {-10: 0.1}),
                                    ValueError, "boundaries_and_scales"),
    "piecewise_constant.boundary_kind": (lambda: gradtx.piecewise_constant_schedule(1.0, {"a": 0.1}),
                                         TypeError, "boundaries_and_scales"),
    "piecewise_interpolate.type": (lambda: gradtx.piecewise_interpolate_schedule("cubic", 1.0),
                                   ValueError, "interpolate_type"),
    "piecewise_interpolate.scale": (lambda: gradtx.piecewise_interpolate_schedule(
        "linear", 1.0, {5: -1.0}), ValueError, "boundaries_and_scales"),
    "cosine.decay_steps": (lambda: gradtx.cosine_decay_schedule(1.0, 0), ValueError, "decay_steps"),
    "cosine.init_value": (lambda: gradtx.cosine_decay_schedule(gradtx.constant_schedule(1.0), 10),
                          TypeError, "init_value"),
    "warmup_cosine.decay_steps": (lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
                                  ValueError, "decay_steps must be greater than warmup_steps"),
    "warmup_cosine.warmup_steps": (lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, -1, 10),
                                   ValueError, "warmup_steps"),
    "warmup_exponential.warmup_steps": (lambda: gradtx.warmup_exponential_decay_schedule(
        0.0, 1.0, -1, 10, 0.5), ValueError, "warmup_steps"),
    "warmup_exponential.decay_rate": (lambda: gradtx.warmup_exponential_decay_schedule(
        0.0, 1.0, 1, 10, 0.0), ValueError, "decay_rate"),
    "onecycle.transition_steps": (lambda: gradtx.cosine_onecycle_schedule(0, 1.0), ValueError,
                                  "transition_steps"),
    "onecycle.transition_steps.traced": (_traced_onecycle, TypeError, "transition_steps"),
    "onecycle.pct_start": (lambda: gradtx.linear_onecycle_schedule(100, 1.0, pct_start=1.5),
                           ValueError, "pct_start"),
    "onecycle.pct_final": (lambda: gradtx.linear_onecycle_schedule(100, 1.0, 0.5, 0.4), ValueError,
                           "pct_final"),
    "onecycle.div_factor": (lambda: gradtx.cosine_onecycle_schedule(100, 1.0, div_factor=0.0),
                            ValueError, "div_factor"),
    "onecycle.final_div_factor": (lambda: gradtx.linear_onecycle_schedule(
        100, 1.0, final_div_factor=-1.0), ValueError, "final_div_factor"),
    "sgdr.empty": (lambda: gradtx.sgdr_schedule([]), ValueError, "cosine_kwargs"),
    "sgdr.decay_steps": (lambda: gradtx.sgdr_schedule([dict(init_value=1.0, peak_value=1.0,
                                                        warmup_steps=0)]), ValueError,
                         "cosine_kwargs"),
    "join.boundaries": (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)] * 2, [1, 2]),
                        ValueError, "boundaries"),
    "join.schedules": (lambda: gradtx.join_schedules([1.0, gradtx.constant_schedule(1.0)], [5]),
                       TypeError, "schedules"),
    "join.empty": (lambda: gradtx.join_schedules([], []), ValueError, "schedules"),
    "warm_restarts.first_period": (lambda: gradtx.warm_restarts_schedule(1.0, 0), ValueError,
                                   "first_period"),
    "warm_restarts.period_multiplier": (lambda: gradtx.warm_restarts_schedule(1.0, 10, 0.5),
                                        ValueError, "period_multiplier"),
    "warm_restarts.decay_factor": (lambda: gradtx.warm_restarts_schedule(1.0, 10, 2.0, 0.0, 0.0),
                                   ValueError, "decay_factor"),
    "warm_restarts.init_value": (lambda: gradtx.warm_restarts_schedule(float("nan"), 10),
                                 ValueError, "init_value"),
    "warm_restarts.min_value": (lambda: gradtx.warm_restarts_schedule(1.0, 10, min_value="x"),
                                TypeError, "min_value"),
    "cyclic.base_value": (lambda: gradtx.cyclic_schedule(1.0, 0.1, 10), ValueError,
                          "base_value must be <= max_value"),
    "cyclic.step_size": (lambda: gradtx.cyclic_schedule(0.1, 1.0, 0), ValueError, "step_size"),
    "cyclic.mode": (lambda: gradtx.cyclic_schedule(0.1, 1.0, 10, "sawtooth"), ValueError, "mode"),
    "cyclic.gamma": (lambda: gradtx.cyclic_schedule(0.1, 1.0, 10, "exp_range", 1.5), ValueError,
                     "gamma"),
    "transformer.d_model": (lambda: gradtx.transformer_schedule(0), ValueError, "d_model"),
    "transformer.warmup_steps": (lambda: gradtx.transformer_schedule(512, 0), ValueError,
                                 "warmup_steps"),
    "transformer.scale": (lambda: gradtx.transformer_schedule(512, 10, -1.0), ValueError, "scale"),
    "momentum.max_momentum": (lambda: gradtx.momentum_schedule(1.0), ValueError, "max_momentum"),
    "momentum.steps_per_stage": (lambda: gradtx.momentum_schedule(0.9, 0), ValueError,
                                 "steps_per_stage"),
    "scale_lr.batch_size": (lambda: gradtx.scale_learning_rate(0.1, 0, 256), ValueError,
                            "batch_size"),
    "scale_lr.base_batch_size": (lambda: gradtx.scale_learning_rate(0.1, 256, -1), ValueError,
                                 "base_batch_size"),
    "scale_lr.rule": (lambda: gradtx.scale_learning_rate(0.1, 256, 128, "cubic"), ValueError,
                      "rule"),
    "scale_lr.learning_rate": (lambda: gradtx.scale_learning_rate("x", 256, 128), TypeError,
                               "learning_rate"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_invalid_arguments_raise_naming_the_argument(name):
  fn, error, match = ERRORS[name]
  with pytest.raises(error, match=match):
    fn()


def test_vector_hyperparameter_error_points_to_the_sweep_pattern():
  with pytest.raises(ValueError, match="init_value.*vmap"):
    gradtx.cosine_decay_schedule(jnp.ones(3), 100)
