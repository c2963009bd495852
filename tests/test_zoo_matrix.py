"""optax.contrib's matrix optimizers (muon, galore), DP-SGD, normalize and complex splitting:
bit-identical optax parity over 20 jitted steps, Newton-Schulz against NumPy, orthogonality,
GaLore's SVD only inside a cond under vmap, the shared matrix spec's errors, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from jaxprs import primitives_inside_cond, primitives_outside_cond
from trees import make_grads, make_params

G, O = gradtx.contrib, optax.contrib


def _parity(a, b, params, grads):
  """20 jitted steps of optax's `a` and gradtx's `b`: bit-identical updates."""
  sa, sb = a.init(params), b.init(params)
  ua, ub = jax.jit(a.update), jax.jit(b.update)
  for g in grads:
    x, sa = ua(g, sa, params)
    y, sb = ub(g, sb, params)
    for l1, l2 in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
      np.testing.assert_array_equal(l1, l2)
  return sb


def _matrices():
  rng = np.random.default_rng(0)
  return {"w": jnp.asarray(rng.normal(size=(6, 4)), jnp.float32),
          "t": jnp.asarray(rng.normal(size=(3, 2, 5)), jnp.float32),
          "b": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}


def _grads_like(params, steps=20, seed=1):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
          for _ in range(steps)]


@pytest.mark.parametrize("kw", [
    dict(),
    dict(nesterov=False, adaptive=True, weight_decay=0.1, consistent_rms=0.2),
    dict(ns_coeffs="dion", preconditioning="aol", adam_learning_rate=0.01, mu_dtype=jnp.bfloat16),
])
def test_muon_matches_optax(kw):
  params = _matrices()
  spec = lambda L: {"w": L.MuonDimensionNumbers(), "t": L.MuonDimensionNumbers(0, 2), "b": None}
  _parity(O.muon(0.1, muon_weight_dimension_numbers=spec(O), **kw),
          G.muon(0.1, muon_weight_dimension_numbers=spec(G), **kw), params, _grads_like(params))


def test_scale_by_muon_matches_optax_and_is_orthogonal():
  params = {"w": _matrices()["w"], "v": _matrices()["w"].T}
  spec = lambda L: {"w": L.MuonDimensionNumbers(), "v": L.MuonDimensionNumbers()}
  _parity(O.scale_by_muon(weight_dimension_numbers=spec(O)),  # optax needs the specs
          G.scale_by_muon(), params, _grads_like(params))
  # NumPy Newton-Schulz; singular values of the result near 1 (the quintic's band).
  tx = G.scale_by_muon(beta=0.0, nesterov=False)
  g = _grads_like(params, 1)[0]
  u, _ = jax.jit(tx.update)(g, tx.init(params))
  for k in params:
    np.testing.assert_allclose(u[k], ref.newton_schulz(g[k]), rtol=1e-3, atol=1e-4)
    s = np.linalg.svd(np.asarray(u[k], np.float64), compute_uv=False)
    assert np.all((s > 0.6) & (s < 1.25)), s
  exact = G.scale_by_muon(ns_coeffs=(1.5, -0.5, 0.0), ns_steps=40, beta=0.0, nesterov=False)
  u, _ = exact.update(g, exact.init(params))  # the cubic iteration converges to U V^T
  np.testing.assert_allclose(np.linalg.svd(np.asarray(u["w"]), compute_uv=False), 1, atol=1e-4)


@pytest.mark.parametrize("kw", [
    dict(rank=2, update_proj_gap=3),
    dict(rank=1, update_proj_gap=7, scale=0.5, weight_decay=0.1),
])
def test_galore_matches_optax_over_refreshes(kw):
  params = make_params()
  spec = lambda L: {"a": (None, L.GaLoreDimensionNumbers(1, 0)),
                    "b": {"c": None, "d": L.GaLoreDimensionNumbers((0, 1), 2)}}
  _parity(O.galore(0.1, weight_dimension_numbers=spec(O), **kw),
          G.galore(0.1, weight_dimension_numbers=spec(G), **kw), params, make_grads())


def test_galore_svd_only_inside_cond_under_vmap():
  params = {"w": jnp.ones((6, 4))}

  def step(lr, g, state):
    return G.galore(lr, rank=2, update_proj_gap=5).update(g, state, params)

  state = G.galore(0.1, rank=2).init(params)
  jaxpr = jax.make_jaxpr(jax.vmap(step, in_axes=(0, None, None)))(
      jnp.asarray([0.1, 0.2]), params, state)
  assert "svd" not in primitives_outside_cond(jaxpr)
  assert "svd" in primitives_inside_cond(jaxpr)


@pytest.mark.parametrize("momentum", [None, 0.9])
def test_dpsgd_matches_optax(momentum):
  params = make_params()
  rng = np.random.default_rng(2)
  per_example = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=(4,) + p.shape), jnp.float32),
                              params) for _ in range(20)]
  with pytest.warns(DeprecationWarning):  # optax's dpsgd passes its seed as the deprecated seed=
    a = O.dpsgd(0.1, 1.0, 0.5, 3, momentum=momentum, nesterov=momentum is not None)
  b = G.dpsgd(0.1, 1.0, 0.5, 3, momentum=momentum, nesterov=momentum is not None)
  _parity(a, b, params, per_example)
  a = O.differentially_private_aggregate(0.7, 1.1, jax.random.key(5))
  state = _parity(a, G.differentially_private_aggregate(0.7, 1.1, jax.random.key(5)), params,
                  per_example)
  assert state.rng_key.dtype == jnp.uint32  # raw key data (checkpointable)


def test_normalize_and_complex_match_optax():
  params = make_params()
  _parity(O.normalize(), G.normalize(), params, make_grads())
  assert G.NormalizeState is gradtx.EmptyState
  pc = {"z": jnp.asarray([1 + 2j, 3 - 1j], jnp.complex64), "r": jnp.ones(3)}
  grads = [{"z": pc["z"] * (i + 1.5) - 1j, "r": pc["r"] * (i - 3.0)} for i in range(20)]
  _parity(O.split_real_and_imaginary(optax.adam(0.1)),
          G.split_real_and_imaginary(gradtx.adam(0.1)), pc, grads)


def test_inject_hyperparams():
  params = _matrices()
  tx = gradtx.inject_hyperparams(G.muon)(learning_rate=0.1)
  u, state = tx.update(params, tx.init(params), params)
  assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.1)
  tx = gradtx.inject_hyperparams(G.galore, static_args=("rank", "update_proj_gap"))(
      learning_rate=0.1, rank=2)
  u, _ = tx.update(params, tx.init(params), params)
  assert u["w"].shape == (6, 4)


def test_matrix_spec_errors_name_the_leaf():
  params = {"dense": {"w": jnp.ones((3, 4)), "b": jnp.ones(4)}}
  tx = G.scale_by_muon(weight_dimension_numbers=G.MuonDimensionNumbers())
  with pytest.raises(ValueError, match=r"\['dense'\]\['b'\] of shape \(4,\)"):
    tx.update(params, tx.init(params))
  for bad in [G.MuonDimensionNumbers(0, 2), G.MuonDimensionNumbers(0, 0)]:
    tx = G.scale_by_muon(weight_dimension_numbers={"dense": {"w": bad, "b": None}})
    with pytest.raises(ValueError, match=r"\['dense'\]\['w'\]"):
      tx.update(params, tx.init(params))
  tx = G.galore(0.1, weight_dimension_numbers={"t": G.GaLoreDimensionNumbers(0, 1)})
  with pytest.raises(ValueError, match=r"\['t'\].*unnamed"):
    tx.init({"t": jnp.ones((2, 3, 4))})
  # optax's spec objects are accepted too.
  tx = G.scale_by_muon(weight_dimension_numbers={"w": O.MuonDimensionNumbers()})
  tx.update({"w": jnp.ones((3, 4))}, tx.init({"w": jnp.ones((3, 4))}))


@pytest.mark.parametrize("make, match", [
    (lambda: G.muon(0.1, beta=1.0), "beta"),
    (lambda: G.muon(0.1, ns_coeffs="nope"), "ns_coeffs"),
    (lambda: G.muon(0.1, ns_coeffs=(1.0, 2.0)), "ns_coeffs"),
    (lambda: G.muon(0.1, preconditioning="svd"), "preconditioning"),
    (lambda: G.muon(jnp.ones(2)), "learning_rate"),
    (lambda: G.scale_by_muon(eps=-1.0), "eps"),
    (lambda: G.scale_by_muon(nesterov=1), "nesterov"),
    (lambda: G.galore(0.1, rank=0), "rank"),
    (lambda: G.galore(0.1, rank=1.5), "rank"),
    (lambda: G.galore(0.1, update_proj_gap=0), "update_proj_gap"),
    (lambda: G.scale_by_galore(base_optimizer="adam"), "base_optimizer"),
    (lambda: G.dpsgd(0.1, -1.0, 1.0, 0), "l2_norm_clip"),
    (lambda: G.dpsgd(0.1, 1.0, -1.0, 0), "noise_multiplier"),
    (lambda: G.dpsgd(0.1, 1.0, 1.0, 0.5), "seed"),
    (lambda: G.differentially_private_aggregate(1.0, 1.0, key=1, seed=2), "seed"),
    (lambda: G.split_real_and_imaginary(3), "inner"),
])
def test_bad_input(make, match):
  with pytest.raises((TypeError, ValueError), match=match):
    make()
