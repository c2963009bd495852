"""Tests of gradtx/sign.py beyond the generic registry tests: validation, the paper's decay
functions, and the sign behaviour of PowerSign / AddSign."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import reference as ref

STEPS = 30


def _run(tx, grads):
  params = jnp.zeros_like(grads[0])
  state, step, out = tx.init(params), jax.jit(tx.update), []
  for g in grads:
    u, state = step(g, state, params)
    out.append(np.asarray(u, np.float64))
  return out


def _grads(seed=0, shape=(7,)):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(STEPS)]


# The paper's decay functions f(t) of the 0-based step t over T steps (Bello et al. 2017, Sec. 5),
# once in jnp (for gradtx) and once in np (for the reference).
T = STEPS
DECAYS = {
    "linear": (lambda t: 1.0 - t / T, lambda t: 1.0 - t / T),
    "cyclical": (lambda t: 0.5 * (1 + jnp.cos(2 * jnp.pi * 3 * t / T)),
                 lambda t: 0.5 * (1 + np.cos(2 * np.pi * 3 * t / T))),
    "restart": (lambda t: 0.5 * (1 + jnp.cos(jnp.pi * (t % 10) / 10)),
                lambda t: 0.5 * (1 + np.cos(np.pi * (t % 10) / 10))),
    "constant": (0.5, 0.5),
}


@pytest.mark.parametrize("name", ["scale_by_powersign", "scale_by_addsign"])
@pytest.mark.parametrize("decay", sorted(DECAYS))
def test_paper_decays_match_numpy_over_30_steps(name, decay):
  jdecay, ndecay = DECAYS[decay]
  alpha = 2.0 if name == "scale_by_powersign" else 1.5
  grads = _grads()
  got = _run(getattr(gradtx, name)(alpha=alpha, beta=0.7, decay=jdecay), grads)
  want = getattr(ref, name)([np.zeros(7)], [[np.asarray(g, np.float64)] for g in grads],
                            alpha=alpha, beta=0.7, decay=ndecay)
  for t, (a, (b,)) in enumerate(zip(got, want)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name} {decay} step {t}")


def test_powersign_multiplies_by_alpha_on_agreement_and_divides_on_disagreement():
  tx = gradtx.scale_by_powersign(alpha=2.0, beta=0.5)
  state = tx.init(jnp.zeros(2))
  u, state = tx.update(jnp.asarray([1.0, -1.0]), state)  # m = [0.5, -0.5]: agrees.
  np.testing.assert_allclose(u, [2.0, -2.0])
  u, state = tx.update(jnp.asarray([-0.1, 0.1]), state)  # m = [0.2, -0.2]: disagrees.
  np.testing.assert_allclose(u, [-0.05, 0.05], rtol=1e-6)
  np.testing.assert_allclose(state.mu, [0.2, -0.2], rtol=1e-6)


def test_addsign_adds_f_on_agreement_and_subtracts_on_disagreement():
  tx = gradtx.scale_by_addsign(alpha=1.0, beta=0.5, decay=lambda t: 0.5)
  state = tx.init(jnp.zeros(2))
  u, state = tx.update(jnp.asarray([1.0, -1.0]), state)
  np.testing.assert_allclose(u, [1.5, -1.5])
  u, state = tx.update(jnp.asarray([-0.1, 0.1]), state)
  np.testing.assert_allclose(u, [-0.05, 0.05], rtol=1e-6)


def test_decay_zero_removes_the_sign_term_and_default_is_one():
  g = _grads()[:3]
  # f = 0: PowerSign's factor is alpha^0 = 1, AddSign's is alpha (3 here).
  for tx, factor in ((gradtx.scale_by_powersign(decay=lambda t: 0.0), 1.0),
                     (gradtx.scale_by_addsign(alpha=3.0, decay=0.0), 3.0)):
    for a, b in zip(_run(tx, g), g):
      np.testing.assert_allclose(a, factor * np.asarray(b), rtol=1e-6)
  default = _run(gradtx.scale_by_powersign(), g)
  one = _run(gradtx.scale_by_powersign(decay=1.0), g)
  for a, b in zip(default, one):
    np.testing.assert_array_equal(a, b)


def test_state_fields_and_count():
  tx = gradtx.scale_by_powersign()
  state = tx.init({"w": jnp.zeros(3)})
  assert isinstance(state, gradtx.ScaleByPowersignState)
  assert state.count.dtype == jnp.int32
  _, state = tx.update({"w": jnp.ones(3)}, state)
  assert int(state.count) == 1
  assert isinstance(gradtx.scale_by_addsign().init(jnp.zeros(1)), gradtx.ScaleByAddsignState)


def test_none_leaves_pass_through_and_bf16_kept():
  for tx in (gradtx.scale_by_sign(), gradtx.scale_by_powersign(), gradtx.scale_by_addsign()):
    p = {"a": jnp.zeros(2, jnp.bfloat16), "b": jnp.zeros(1, jnp.bfloat16)}
    u, _ = tx.update({"a": jnp.ones(2, jnp.bfloat16), "b": None}, tx.init(p))
    assert u["b"] is None and u["a"].dtype == jnp.bfloat16


def test_scale_by_sign_values():
  tx = gradtx.scale_by_sign()
  u, _ = tx.update(jnp.asarray([-2.0, 0.0, 3.0]), tx.init(jnp.zeros(3)))
  np.testing.assert_array_equal(u, [-1.0, 0.0, 1.0])


def test_traced_hyperparameters_are_accepted():
  g = jnp.asarray([1.0, -2.0])

  def f(alpha, beta):
    tx = gradtx.scale_by_powersign(alpha=alpha, beta=beta)
    return tx.update(g, tx.init(g))[0]

  out = jax.vmap(f)(jnp.asarray([2.0, 3.0]), jnp.asarray([0.5, 0.9]))
  np.testing.assert_allclose(out, [[2.0, -4.0], [3.0, -6.0]], rtol=1e-6)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(alpha=0.0), ValueError, r"alpha must be in \(0, inf\]"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(alpha="e"), TypeError, "alpha"),
    (dict(alpha=float("inf")), ValueError, "alpha must be finite"),
    (dict(alpha=jnp.ones(2)), ValueError, "alpha.*jax.vmap"),
    (dict(beta=1.0), ValueError, r"beta must be in \[0, 1\)"),
    (dict(beta=-0.1), ValueError, "beta"),
    (dict(beta=lambda t: 0.9), TypeError, "beta"),
    (dict(beta=jnp.asarray([0.9, 0.8])), ValueError, "beta.*jax.vmap"),
    (dict(decay="linear"), TypeError, "decay"),
    (dict(decay=1.5), ValueError, "decay"),
    (dict(decay=-0.5), ValueError, "decay"),
    (dict(decay=jnp.ones(3)), ValueError, "decay.*jax.vmap"),
])
def test_powersign_validation(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.scale_by_powersign(**kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(alpha=-0.5), ValueError, r"alpha must be in \[0, inf\]"),
    (dict(alpha=None), TypeError, "alpha"),
    (dict(alpha=jnp.ones(2)), ValueError, "alpha.*jax.vmap"),
    (dict(beta=1.0), ValueError, "beta"),
    (dict(decay=[1.0]), TypeError, "decay"),
    (dict(decay=2.0), ValueError, "decay"),
])
def test_addsign_validation(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.scale_by_addsign(**kwargs)


def test_addsign_accepts_alpha_zero():
  gradtx.scale_by_addsign(alpha=0.0)


def test_messages_name_the_function():
  message = r"^gradtx.scale_by_powersign: alpha must be in \(0, inf\], got -1.0.$"
  with pytest.raises(ValueError, match=message):
    gradtx.scale_by_powersign(alpha=-1.0)
