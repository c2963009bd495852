"""DoG (top level and contrib), DoWG, COCOB, MoMo and MoMo-Adam (issue 14, slice cocob).

optax parity is bit-identical: gradtx follows optax's arithmetic order leaf for leaf, and both
run under `jax.jit` (eager and jit differ by XLA's fused multiply-adds, in optax too).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from trees import make_grads, make_params

optax = pytest.importorskip("optax")

STEPS = 24
_VALUES = [3.0 / (1.0 + 0.25 * t) for t in range(STEPS)]


def _run(tx, params, grads, value):
  step = jax.jit(tx.update)
  state, out = tx.init(params), []
  for i, g in enumerate(grads):
    kwargs = dict(value=jnp.float32(_VALUES[i])) if value else {}
    u, state = step(g, state, params, **kwargs)
    params = jax.tree.map(lambda p, d: p + d.reshape(p.shape), params, u)
    out.append(u)
  return out, state


_SCHED = lambda t: 0.5 / (1.0 + 0.1 * t)  # noqa: E731
_MASK = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731

# (id, name under gradtx / optax, kwargs, needs value=)
CASES = [
    ("dist", "scale_by_distance_over_gradients", dict(reps_rel=1e-3, global_scale=-1.0), False),
    ("dog", "contrib.dog", dict(learning_rate=0.5), False),
    ("dog-lr-wd", "contrib.dog",
     dict(init_step=("learning_rate", 0.1), weight_decay=0.01, mask=_MASK), False),
    ("dog-distance", "contrib.dog", dict(learning_rate=_SCHED, init_step=("distance", 0.1)),
     False),
    ("dowg-wd", "contrib.dowg", dict(init_estim_sq_dist=0.1, weight_decay=0.01), False),
    ("cocob-wd", "contrib.cocob",
     dict(learning_rate=_SCHED, alpha=50.0, weight_decay=0.01, mask=_MASK), False),
    ("momo", "contrib.momo", dict(), True),
    ("momo-adapt", "contrib.momo", dict(learning_rate=_SCHED, beta=0.8, lower_bound=1.0,
                                         weight_decay=0.01, adapt_lower_bound=True), True),
    ("momo_adam", "contrib.momo_adam", dict(), True),
    ("momo_adam-adapt", "contrib.momo_adam",
     dict(learning_rate=0.1, b1=0.8, b2=0.99, eps=1e-6, lower_bound=1.0, weight_decay=0.01,
          adapt_lower_bound=True), True),
]


def _get(lib, name):
  obj = lib
  for part in name.split("."):
    obj = getattr(obj, part)
  return obj


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bit_identical_to_optax_over_24_jitted_steps(case):
  _, name, kwargs, value = case
  params, grads = make_params(), make_grads(steps=STEPS)
  ours, our_state = _run(_get(gradtx, name)(**kwargs), params, grads, value)
  theirs, their_state = _run(_get(optax, name)(**kwargs), params, grads, value)
  for step, (a, b) in enumerate(zip(ours, theirs)):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      # optax's scale_by_distance_over_gradients returns shape (1,) for a scalar leaf.
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y).reshape(x.shape),
                                    err_msg=f"{name} step {step}")
  assert [type(s).__name__ for s in jax.tree.leaves(
      our_state, is_leaf=lambda s: hasattr(s, "_fields"))] == [type(s).__name__ for s in
          jax.tree.leaves(their_state, is_leaf=lambda s: hasattr(s, "_fields"))]
  for x, y in zip(jax.tree.leaves(our_state), jax.tree.leaves(their_state)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_top_level_and_transforms_export_the_same_object():
  assert gradtx.scale_by_distance_over_gradients is (
      gradtx.transforms.scale_by_distance_over_gradients)
  assert gradtx.ScaleByDistanceOverGradientsState is (
      gradtx.transforms.ScaleByDistanceOverGradientsState)
  assert not hasattr(gradtx, "dog") and not hasattr(gradtx, "momo")  # contrib only, as optax


def test_distance_over_gradients_keeps_leaf_shapes_and_dtypes():
  """optax returns a (1,)-shaped update for a scalar leaf and float32 for bfloat16 leaves."""
  params = {"s": jnp.asarray(1.5, jnp.bfloat16), "m": jnp.ones((2, 3), jnp.bfloat16)}
  tx = gradtx.scale_by_distance_over_gradients()
  state = tx.init(params)
  grads = jax.tree.map(lambda p: p * 0.5, params)
  for _ in range(2):
    u, new_state = tx.update(grads, state, params)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), u) == jax.tree.map(
        lambda x: (x.shape, x.dtype), params)
    assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)
    state = new_state


def test_none_updates_pass_through_and_keep_their_state():
  params = {"a": jnp.ones(3), "b": jnp.full((2,), 2.0)}
  grads = {"a": jnp.full(3, 0.1), "b": None}
  for tx in (gradtx.scale_by_distance_over_gradients(), gradtx.contrib.scale_by_cocob(),
             gradtx.contrib.momo()):
    state = tx.init(params)
    u, new_state = tx.update(grads, state, params, value=jnp.float32(1.0))
    assert u["b"] is None and u["a"].shape == (3,)
    assert np.all(np.isfinite(np.asarray(u["a"])))


def test_momo_without_value_names_value_and_shows_the_call():
  params = make_params()
  for tx in (gradtx.contrib.momo(), gradtx.contrib.momo_adam()):
    with pytest.raises(ValueError, match=r"`value`.*value=loss"):
      tx.update(make_grads(steps=1)[0], tx.init(params), params)
    with pytest.raises(ValueError, match="params"):
      tx.update(make_grads(steps=1)[0], tx.init(params), value=1.0)


def test_momo_mu_dtype_keeps_float32_moments_for_bf16_params():
  params = make_params(jnp.bfloat16)
  tx = gradtx.contrib.momo_adam(mu_dtype=jnp.float32, nu_dtype=jnp.float32)
  state = tx.init(params)
  u, state = jax.jit(tx.update)(make_grads(steps=1, dtype=jnp.bfloat16)[0], state, params,
                                value=jnp.float32(2.0))
  assert {x.dtype for x in jax.tree.leaves((state.exp_avg, state.exp_avg_sq))} == {
      jnp.dtype(jnp.float32)}
  assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("name, extra", [("contrib.dog", {}), ("contrib.cocob", {}),
                                         ("contrib.momo", {"value": jnp.float32(2.0)})])
def test_inject_hyperparams(name, extra):
  params, grads = make_params(), make_grads(steps=3)
  factory = _get(gradtx, name)
  tx = gradtx.inject_hyperparams(factory)(learning_rate=0.3)
  plain = factory(learning_rate=0.3)
  s1, s2 = tx.init(params), plain.init(params)
  for g in grads:
    u1, s1 = tx.update(g, s1, params, **extra)
    u2, s2 = plain.update(g, s2, params, **extra)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
  assert float(s1.hyperparams["learning_rate"]) == pytest.approx(0.3)


BAD = [
    ("scale_by_distance_over_gradients", dict(reps_rel=0.0), ValueError, "reps_rel"),
    ("scale_by_distance_over_gradients", dict(eps=-1.0), ValueError, "eps"),
    ("scale_by_distance_over_gradients", dict(param_dtype=jnp.int32), ValueError, "param_dtype"),
    ("scale_by_distance_over_gradients", dict(global_scale=float("nan")), ValueError,
     "global_scale"),
    ("contrib.dog", dict(init_step=("bogus", 1.0)), ValueError, "init_step"),
    ("contrib.dog", dict(init_step=1e-6), TypeError, "init_step"),
    ("contrib.dog", dict(init_step=("distance", -1.0)), ValueError, "init_step"),
    ("contrib.dog", dict(eps=-1.0), ValueError, "eps"),
    ("contrib.dog", dict(learning_rate="fast"), TypeError, "learning_rate"),
    ("contrib.dog", dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ("contrib.dowg", dict(init_estim_sq_dist=0.0), ValueError, "init_estim_sq_dist"),
    ("contrib.dowg", dict(eps=0.0), ValueError, "eps"),
    ("contrib.dowg", dict(learning_rate=jnp.ones(2)), ValueError, "learning_rate"),
    ("contrib.cocob", dict(alpha=0.0), ValueError, "alpha"),
    ("contrib.cocob", dict(eps=-1e-8), ValueError, "eps"),
    ("contrib.cocob", dict(weight_decay=float("inf")), ValueError, "weight_decay"),
    ("contrib.momo", dict(learning_rate=0.0), ValueError, "learning_rate"),
    ("contrib.momo", dict(beta=1.0), ValueError, "beta"),
    ("contrib.momo", dict(lower_bound=float("nan")), ValueError, "lower_bound"),
    ("contrib.momo", dict(weight_decay=-1.0), ValueError, "weight_decay"),
    ("contrib.momo", dict(adapt_lower_bound=1), TypeError, "adapt_lower_bound"),
    ("contrib.momo", dict(mu_dtype=jnp.int32), ValueError, "mu_dtype"),
    ("contrib.momo_adam", dict(b1=1.5), ValueError, "b1"),
    ("contrib.momo_adam", dict(b2=-0.1), ValueError, "b2"),
    ("contrib.momo_adam", dict(eps=-1.0), ValueError, "eps"),
    ("contrib.momo_adam", dict(nu_dtype="nope"), TypeError, "nu_dtype"),
]


@pytest.mark.parametrize("name, kwargs, error, match", BAD,
                         ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_argument(name, kwargs, error, match):
  with pytest.raises(error, match=match):
    _get(gradtx, name)(**kwargs)


def test_mismatched_trees_raise():
  params = make_params()
  bad = {"a": make_grads(steps=1)[0]["a"]}
  for tx in (gradtx.scale_by_distance_over_gradients(), gradtx.contrib.dowg(),
             gradtx.contrib.cocob(), gradtx.contrib.momo_adam()):
    with pytest.raises(ValueError, match="structure"):
      tx.update(bad, tx.init(params), params, value=1.0)
