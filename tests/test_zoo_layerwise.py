"""Layer-wise and factored optimizers (issue 14): adafactor, sm3, lamb, lars, fromage and their
primitives. optax parity over 20 jitted steps (bit-identical: every transformation follows optax's
arithmetic order), inject_hyperparams, bad input, Adafactor's memory, SM3 on a scalar leaf."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params

STEPS = 20


def _tree(with_scalar=True):
  """The shared nested tree plus a (6, 8) matrix, so that factoring (min_dim_size_to_factor <= 6)
  has a real matrix to factor; without the scalar for optax's SM3 (which cannot update one)."""
  rng = np.random.default_rng(5)
  params = dict(make_params(), m=jnp.asarray(rng.normal(size=(6, 8)), jnp.float32))
  grads = [dict(g, m=jnp.asarray(rng.normal(size=(6, 8)), jnp.float32)) for g in make_grads()]
  if not with_scalar:
    drop = lambda t: {**t, "b": {"d": t["b"]["d"]}}
    params, grads = drop(params), [drop(g) for g in grads]
  return params, grads


def _run(tx, params, grads):
  """20 jitted steps applying the updates; returns every step's updates and the final state."""
  step = jax.jit(lambda g, s, p: tx.update(g, s, p))
  state, out = tx.init(params), []
  for g in grads:
    u, state = step(g, state, params)
    params = jax.tree.map(lambda p, x: p + x, params, u)
    out.append(u)
  return out, state


_MASK = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
_SCHED = lambda L: L.linear_schedule(0.1, 0.01, 10)

CASES = {
    "adafactor-factored": lambda L: L.adafactor(0.05, min_dim_size_to_factor=4),
    "adafactor-all": lambda L: L.adafactor(
        _SCHED(L), min_dim_size_to_factor=2, decay_rate=0.5, decay_offset=0,
        multiply_by_parameter_scale=False, clipping_threshold=None, momentum=0.9,
        weight_decay_rate=0.01, eps=1e-6, weight_decay_mask=_MASK),
    "adafactor-unfactored": lambda L: L.adafactor(0.1, factored=False, momentum=0.5),
    "lamb": lambda L: L.lamb(_SCHED(L), 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.1, mask=_MASK),
    "lars-nesterov-masks": lambda L: L.lars(_SCHED(L), 0.01, _MASK, 0.01, 1e-6, _MASK, 0.8, True),
    "fromage": lambda L: L.fromage(0.1),
    "fromage-schedule": lambda L: L.fromage(_SCHED(L), min_norm=1e-3),
    "stateless": lambda L: L.chain(L.scale_by_trust_ratio(0.1, 0.5, 1e-3),
                                   L.scale_by_param_block_norm(0.5),
                                   L.scale_by_param_block_rms(0.1), L.centralize(),
                                   L.normalize_by_update_norm(-2.0)),
}
SM3_CASES = {
    "sm3": lambda L: L.sm3(0.1),
    "sm3-b2": lambda L: L.chain(L.scale_by_sm3(0.5, 0.9, 1e-3), L.scale(-0.1)),
}


def _assert_equal_trees(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("case", sorted(CASES) + sorted(SM3_CASES))
def test_matches_optax_bit_for_bit(case):
  make = CASES.get(case) or SM3_CASES[case]
  params, grads = _tree(with_scalar=case not in SM3_CASES)
  got, got_state = _run(make(gradtx), params, grads)
  want, want_state = _run(make(optax), params, grads)
  for g, w in zip(got, want):
    _assert_equal_trees(g, w)
  _assert_equal_trees(got_state, want_state)  # same leaves in the same order (same layout)


def test_inject_hyperparams():
  params, grads = _tree()
  for name, kwargs in [("lamb", {}), ("lars", {}), ("fromage", {}),
                       ("adafactor", dict(min_dim_size_to_factor=4))]:
    tx = gradtx.inject_hyperparams(getattr(gradtx, name))(learning_rate=0.05, **kwargs)
    ref = getattr(gradtx, name)(0.05, **kwargs)
    state = tx.init(params)
    state.hyperparams["learning_rate"] = jnp.asarray(0.05)
    u, _ = tx.update(grads[0], state, params)
    want = ref.update(grads[0], ref.init(params), params)[0]
    # The injected rate is a float32 array, the direct one a Python float (fromage then forms
    # its shrink 1 / sqrt(1 + lr^2) in float32, not float64): a few roundings apart.
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), u,
                 want)


def test_adafactor_state_is_far_below_adams():
  params = {"w": jax.ShapeDtypeStruct((256, 512), jnp.float32)}
  adafactor = gradtx.state_bytes_per_param(gradtx.adafactor(1e-3), params)
  adam = gradtx.state_bytes_per_param(gradtx.adam(1e-3), params)
  assert adam > 8.0 and adafactor < 0.05  # (256 + 512 + 2) * 4 bytes + count over 131072 elements


def test_sm3_scalar_leaf_keeps_an_accumulator():
  # optax's scale_by_sm3 raises IndexError on a scalar leaf; gradtx accumulates it as a 1-vector.
  tx = gradtx.scale_by_sm3(b1=0.0)
  s = jnp.asarray(2.0)
  state = tx.init(s)
  assert [x.shape for x in state.mu] == [()]
  u, state = tx.update(s, state)
  u2, _ = tx.update(s, state)
  v = gradtx.scale_by_sm3(b1=0.0)
  want = v.update(jnp.asarray([2.0]), v.update(jnp.asarray([2.0]), v.init(jnp.zeros(1)))[1])[0]
  np.testing.assert_array_equal(u2, want[0])


def test_none_updates_pass_through():
  params = {"a": jnp.ones((3, 4)), "b": jnp.ones(2)}
  grads = {"a": None, "b": jnp.ones(2)}
  for tx in [gradtx.lamb(0.1), gradtx.lars(0.1), gradtx.fromage(0.1), gradtx.sm3(0.1),
             gradtx.adafactor(0.1, min_dim_size_to_factor=2), gradtx.centralize(),
             gradtx.scale_by_param_block_rms(), gradtx.normalize_by_update_norm()]:
    u, _ = tx.update(grads, tx.init(params), params)
    assert u["a"] is None and u["b"].shape == (2,)


@pytest.mark.parametrize("make, match", [
    (lambda: gradtx.scale_by_factored_rms(factored=1), "factored"),
    (lambda: gradtx.scale_by_factored_rms(decay_rate=-0.5), "decay_rate"),
    (lambda: gradtx.scale_by_factored_rms(step_offset=1.5), "step_offset"),
    (lambda: gradtx.scale_by_factored_rms(min_dim_size_to_factor=0), "min_dim_size_to_factor"),
    (lambda: gradtx.scale_by_factored_rms(epsilon=-1.0), "epsilon"),
    (lambda: gradtx.scale_by_factored_rms(decay_rate_fn=0.8), "decay_rate_fn"),
    (lambda: gradtx.adafactor(multiply_by_parameter_scale=None), "multiply_by_parameter_scale"),
    (lambda: gradtx.adafactor(clipping_threshold=-1.0), "adafactor: clipping_threshold"),
    (lambda: gradtx.adafactor(0.1, dtype_momentum="int32"), "dtype_momentum"),
    (lambda: gradtx.adafactor(learning_rate=float("nan")), "learning_rate"),
    (lambda: gradtx.scale_by_sm3(b1=1.5), "b1"),
    (lambda: gradtx.scale_by_sm3(b2=-0.1), "b2"),
    (lambda: gradtx.scale_by_sm3(eps=-1.0), "eps"),
    (lambda: gradtx.sm3(0.1, momentum=2.0), "sm3: momentum"),
    (lambda: gradtx.scale_by_trust_ratio(min_norm=-1.0), "min_norm"),
    (lambda: gradtx.scale_by_trust_ratio(trust_coefficient=jnp.ones(2)), "trust_coefficient"),
    (lambda: gradtx.lars(0.1, eps=-1.0), "eps"),
    (lambda: gradtx.lamb(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: gradtx.fromage("0.1"), "learning_rate"),
    (lambda: gradtx.scale_by_param_block_norm(min_scale=-1.0), "min_scale"),
    (lambda: gradtx.scale_by_param_block_rms(min_scale="a"), "min_scale"),
    (lambda: gradtx.normalize_by_update_norm(scale_factor=0.0), "scale_factor"),
    (lambda: gradtx.normalize_by_update_norm(eps=-1.0), "eps"),
])
def test_bad_input_names_the_argument(make, match):
  with pytest.raises((TypeError, ValueError), match=match):
    make()


def test_missing_params_raises():
  for tx in [gradtx.scale_by_trust_ratio(), gradtx.scale_by_param_block_norm(),
             gradtx.scale_by_factored_rms()]:
    with pytest.raises(ValueError, match="params"):
      tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
