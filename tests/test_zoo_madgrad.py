"""optax.contrib's madgrad, acprop, ademamix, simplified_ademamix and adopt, and the decay masks,
decay schedules and moment dtypes that every existing optimizer with those features accepts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params

STEPS = 20
_MASK = {"a": (True, False), "b": {"c": False, "d": True}}


def _run(tx, params, grads):
  """20 jitted steps of `tx` (params follow the updates); the updates and the final state."""
  step = jax.jit(tx.update)
  state, out = tx.init(params), []
  for g in grads:
    u, state = step(g, state, params)
    params = jax.tree.map(lambda p, d: p + d, params, u)
    out.append(u)
  return out, state


# Every variant optax exposes; arithmetic follows optax's order, so bit-identical.
_PARITY = [
    ("madgrad", dict(learning_rate=0.01)),
    ("madgrad", dict(learning_rate=lambda t: 0.02 / (1.0 + t), momentum=0.5, weight_decay=0.1)),
    ("acprop", dict(learning_rate=0.01, weight_decay=0.1, mask=_MASK)),
    ("ademamix", dict(learning_rate=0.01, b3=lambda t: 0.999 - 0.1 * 0.9**t,
                      alpha=lambda t: 5.0 * jnp.minimum(t / 10.0, 1.0), weight_decay=0.1)),
    ("simplified_ademamix", dict(learning_rate=0.01, alpha=2.0, weight_decay=0.1)),
    ("adopt", dict(learning_rate=0.01)),
    ("adopt", dict(learning_rate=0.01, nesterov=True, use_clipping=False)),
]


@pytest.mark.parametrize("name,kwargs", _PARITY, ids=[f"{n}-{i}" for i, (n, _) in
                                                    enumerate(_PARITY)])
def test_bit_identical_to_optax(name, kwargs):
  params, grads = make_params(), make_grads(STEPS)
  got, state = _run(getattr(gradtx.contrib, name)(**kwargs), params, grads)
  want, ostate = _run(getattr(optax.contrib, name)(**kwargs), params, grads)
  for g, w in zip(got, want):
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(w)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert [type(s).__name__ for s in state] == [type(s).__name__ for s in ostate]
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(ostate)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_inject_hyperparams_learning_rate():
  params, grads = make_params(), make_grads(3)
  for name in ("madgrad", "acprop", "ademamix", "simplified_ademamix", "adopt"):
    tx = gradtx.inject_hyperparams(getattr(gradtx.contrib, name))(learning_rate=0.01)
    got, state = _run(tx, params, grads)
    want, _ = _run(getattr(gradtx.contrib, name)(0.01), params, grads)
    # atol of about one float32 ulp of the params: madgrad's update is x_new - x, so the
    # injected float32 rate (vs a Python float) can move it by one ulp of x.
    np.testing.assert_allclose(jax.tree.leaves(got[-1])[1], jax.tree.leaves(want[-1])[1],
                               rtol=1e-6, atol=2.4e-7, err_msg=name)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.01)


def test_adopt_first_step_is_zero_and_madgrad_needs_params():
  params, grads = make_params(), make_grads(1)
  tx = gradtx.contrib.adopt(0.1)
  u, _ = tx.update(grads[0], tx.init(params))
  assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(u))
  tx = gradtx.contrib.madgrad(0.1)
  with pytest.raises(ValueError, match="params"):
    tx.update(grads[0], tx.init(params))


@pytest.mark.parametrize("call,match", [
    (lambda: gradtx.contrib.madgrad(-0.1), "learning_rate"),
    (lambda: gradtx.contrib.madgrad(0.1, momentum=1.0), "momentum"),
    (lambda: gradtx.contrib.madgrad(0.1, eps=-1.0), "eps"),
    (lambda: gradtx.contrib.madgrad(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: gradtx.contrib.madgrad(0.1, mu_dtype=jnp.int32), "mu_dtype"),
    (lambda: gradtx.contrib.acprop(0.1, b1=1.0), "b1"),
    (lambda: gradtx.contrib.acprop(0.1, b2=-0.1), "b2"),
    (lambda: gradtx.contrib.acprop(0.1, eps_root=-1.0), "eps_root"),
    (lambda: gradtx.contrib.ademamix(0.1, b3=1.5), "b3"),
    (lambda: gradtx.contrib.ademamix(0.1, alpha=-1.0), "alpha"),
    (lambda: gradtx.contrib.ademamix(0.1, alpha=lambda t: jnp.ones(2)), "alpha"),
    (lambda: gradtx.contrib.simplified_ademamix(0.1, b1=1.0), "b1"),
    (lambda: gradtx.contrib.simplified_ademamix(0.1, alpha="x"), "alpha"),
    (lambda: gradtx.contrib.adopt(0.1, b2=1.0), "b2"),
    (lambda: gradtx.contrib.adopt(0.1, eps=0.0, use_clipping=False), "eps"),
    (lambda: gradtx.contrib.adopt(0.1, clip_value_fn="x"), "clip_value_fn"),
    (lambda: gradtx.contrib.adopt(0.1, clip_value_fn=-1.0), "clip_value_fn"),
    (lambda: gradtx.contrib.adopt(0.1, nesterov=1), "nesterov"),
    (lambda: gradtx.adadelta(mask=_MASK, weight_decay_mask=_MASK), "mask"),
    (lambda: gradtx.rmsprop(0.1, nu_dtype="int8"), "nu_dtype"),
    (lambda: gradtx.adamax(0.1, mu_dtype=jnp.int32), "mu_dtype"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises((TypeError, ValueError), match=match):
    call()


# --- consistency beyond optax: decay mask and schedule, moment dtypes -------------------------

# Every optimizer with a weight_decay argument, as (learning_rate, weight_decay, mask) -> tx.
_DECOUPLED = {
    "adamw": lambda lr, wd, mask: gradtx.adamw(lr, weight_decay=wd, mask=mask),
    "nadamw": lambda lr, wd, mask: gradtx.nadamw(lr, weight_decay=wd, mask=mask),
    "adamaxw": lambda lr, wd, mask: gradtx.adamaxw(lr, weight_decay=wd, mask=mask),
    "sgdw": lambda lr, wd, mask: gradtx.sgdw(lr, weight_decay=wd, mask=mask),
    "acprop": lambda lr, wd, mask: gradtx.contrib.acprop(lr, weight_decay=wd, mask=mask),
    "ademamix": lambda lr, wd, mask: gradtx.contrib.ademamix(lr, weight_decay=wd, mask=mask),
    "simplified_ademamix": lambda lr, wd, mask: gradtx.contrib.simplified_ademamix(
        lr, weight_decay=wd, mask=mask),
}
# L2 decay added to the gradient before the adaptive scaling (optax's placement).
_COUPLED = {
    "adadelta": lambda lr, wd, mask: gradtx.adadelta(lr, weight_decay=wd, mask=mask),
    # momentum 0: (1 - c) x0 + c x0 is x0 only up to rounding, and masked leaves must stay put.
    "madgrad": lambda lr, wd, mask: gradtx.contrib.madgrad(lr, 0.0, weight_decay=wd, mask=mask),
}
_SCHEDULE = lambda t: 0.1 * (t + 1.0)  # grows with the step


def _steps(tx, params, steps=3):
  """Updates of `tx` over `steps` steps of zero gradients at fixed params."""
  zeros = jax.tree.map(jnp.zeros_like, params)
  state, step, out = tx.init(params), jax.jit(tx.update), []
  for _ in range(steps):
    u, state = step(zeros, state, params)
    out.append([np.asarray(x, np.float64) for x in jax.tree.leaves(u)])
  return out


@pytest.mark.parametrize("name", sorted(_DECOUPLED))
def test_decoupled_decay_mask_and_schedule(name):
  """With zero gradients the adaptive part is 0, so the update is exactly -lr wd(t) p on the
  decayed leaves: 0 on the masked ones, and wd follows the step of the schedule."""
  params = make_params()
  leaves, mask = jax.tree.leaves(params), jax.tree.leaves(_MASK)
  for t, us in enumerate(_steps(_DECOUPLED[name](1.0, _SCHEDULE, _MASK), params)):
    for u, p, decayed in zip(us, leaves, mask):
      want = -_SCHEDULE(t) * np.asarray(p, np.float64) if decayed else np.zeros_like(u)
      np.testing.assert_allclose(u, want, rtol=1e-6, atol=0, err_msg=f"{name} step {t}")


@pytest.mark.parametrize("name", sorted(_COUPLED))
def test_coupled_decay_mask_and_schedule(name):
  """L2 decay goes through the scaling: masked leaves (zero gradient) do not move, decayed ones
  do; a schedule equals the constant wd(0) at the first step and departs from it later."""
  params = make_params()
  mask = jax.tree.leaves(_MASK)
  scheduled = _steps(_COUPLED[name](0.1, _SCHEDULE, _MASK), params)
  constant = _steps(_COUPLED[name](0.1, _SCHEDULE(0), _MASK), params)
  for us in scheduled:
    for u, decayed in zip(us, mask):
      assert np.any(u != 0) if decayed else np.all(u == 0), name
  for a, b in zip(scheduled[0], constant[0]):
    np.testing.assert_array_equal(a, b)
  assert any(np.any(a != b) for a, b in zip(scheduled[2], constant[2])), name


# Every optimizer that keeps moments, with float32 moments for bfloat16 params.
_F32 = dict(mu_dtype=jnp.float32, nu_dtype=jnp.float32)
_MOMENTS = {
    "adam": lambda: gradtx.adam(0.01, **_F32),
    "adamw": lambda: gradtx.adamw(0.01, **_F32),
    "nadam-warmup": lambda: gradtx.nadam(0.01, momentum_decay=0.004, **_F32),
    "adamax": lambda: gradtx.adamax(0.01, **_F32),
    "adamaxw": lambda: gradtx.adamaxw(0.01, **_F32),
    "amsgrad": lambda: gradtx.amsgrad(0.01, **_F32),
    "adagrad": lambda: gradtx.adagrad(0.01, nu_dtype=jnp.float32),
    "adadelta": lambda: gradtx.adadelta(nu_dtype=jnp.float32, weight_decay=0.1),
    "rmsprop-centered-momentum": lambda: gradtx.rmsprop(0.01, centered=True, momentum=0.9,
                                                        **_F32),
    "sgdw": lambda: gradtx.sgdw(0.01, accumulator_dtype=jnp.float32),
    "madgrad": lambda: gradtx.contrib.madgrad(0.01, weight_decay=0.1, **_F32),
    "acprop": lambda: gradtx.contrib.acprop(0.01, **_F32),
    "ademamix": lambda: gradtx.contrib.ademamix(0.01, **_F32),
    "simplified_ademamix": lambda: gradtx.contrib.simplified_ademamix(0.01, **_F32),
    "adopt": lambda: gradtx.contrib.adopt(0.01, **_F32),
}


@pytest.mark.parametrize("name", sorted(_MOMENTS))
def test_bf16_params_f32_moments(name):
  """bf16 params and grads with f32 moments: every float state leaf shaped like a param stays
  f32 (madgrad's x0 copy of the params stays bf16), every update stays bf16, all finite."""
  params, grads = make_params(jnp.bfloat16), make_grads(3, jnp.bfloat16)
  tx = _MOMENTS[name]()
  state, step = tx.init(params), jax.jit(tx.update)
  for g in grads:
    u, state = step(g, state, params)
    params = gradtx.apply_updates(params, u)
    assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}, name
    assert all(np.all(np.isfinite(np.asarray(x, np.float32))) for x in jax.tree.leaves(u))
  x0 = getattr(jax.tree.leaves(state, is_leaf=lambda s: hasattr(s, "x0"))[0], "x0", None) \
      if name == "madgrad" else None
  x0_ids = {id(x) for x in jax.tree.leaves(x0)}
  moments = [x for x in jax.tree.leaves(state) if jnp.ndim(x) > 0 and id(x) not in x0_ids]
  assert moments and {x.dtype for x in moments} == {jnp.dtype(jnp.float32)}, name


def test_default_dtypes_keep_optax_layout():
  """Without mu_dtype / nu_dtype the new arguments change nothing: optax's state dtypes for bf16
  params (the bf16 moments optax keeps)."""
  params = make_params(jnp.bfloat16)
  for name in ("adamax", "amsgrad", "adagrad", "adadelta", "rmsprop"):
    ours = gradtx.__dict__[name](0.1).init(params)
    theirs = getattr(optax, name)(0.1).init(params)
    assert [x.dtype for x in jax.tree.leaves(ours)] == [x.dtype for x in jax.tree.leaves(theirs)]
