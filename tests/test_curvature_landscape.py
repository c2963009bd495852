"""Keskar sharpness (closed forms, brute force, subspace), loss landscapes, and
curvature_monitor (measurements vs eigh, every-k schedule, the cond under vmap)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import curvature as cv
from gradtx.curvature.sharpness import subspace_matrix
from jaxprs import primitives_inside_cond, primitives_outside_cond

H = jnp.asarray([1.0, 4.0, 9.0])


def test_keskar_closed_forms_and_ordering():
  eps = 0.05
  x = jnp.asarray([0.5, -1.0, 2.0])
  quad = lambda p, h: 0.5 * jnp.sum(h * (p - x) ** 2)
  # At the minimum of a quadratic, the max over the box is at a corner: 0.5 sum h b^2.
  bound = eps * (np.abs(np.asarray(x)) + 1)
  want = 100 * 0.5 * np.sum(np.asarray(H) * bound ** 2)
  got = cv.keskar_sharpness(quad, x, H, epsilon=eps)
  assert float(got) == pytest.approx(want, rel=1e-5)
  assert float(cv.keskar_sharpness(quad, x, 4 * H, epsilon=eps)) > float(got)  # sharper
  assert float(cv.keskar_sharpness(lambda p: jnp.asarray(2.0), x, epsilon=eps)) == 0.0
  # A linear loss: phi = 100 eps sum |c_i|(|x_i| + 1) / (1 + f(x)); zero along a bound
  # direction orthogonal to c (the subspace variant with A's column orthogonal to c).
  c = jnp.asarray([1.0, -2.0, 0.5])
  lin = lambda p: jnp.vdot(c, p) + 3.0
  f0 = float(lin(x))
  assert float(cv.keskar_sharpness(lin, x, epsilon=eps)) == pytest.approx(
      100 * np.sum(np.abs(np.asarray(c)) * bound) / (1 + f0), rel=1e-5)
  orth = lambda p: jnp.vdot(c, p - jnp.vdot(c, p) / jnp.vdot(c, c) * c) * 0 + 3.0
  assert float(cv.keskar_sharpness(orth, x, epsilon=eps, subspace_dim=2)) == 0.0


def test_keskar_full_and_subspace_agree_with_brute_force():
  eps = 0.2
  x = jnp.asarray([0.3, -0.4, 0.1])
  f = lambda p: jnp.sin(3 * p[0]) * p[1] + 0.5 * p[2] ** 2 - p[0] * p[2] + jnp.cos(p[1])
  f0 = float(f(x))
  grid = lambda b: [np.linspace(-bi, bi, 41) for bi in b]
  # full space
  b = eps * (np.abs(np.asarray(x)) + 1)
  ys = np.stack(np.meshgrid(*grid(b), indexing="ij"), -1).reshape(-1, 3)
  brute = float(jnp.max(jax.vmap(lambda y: f(x + y))(jnp.asarray(ys, jnp.float32))))
  got = float(cv.keskar_sharpness(f, x, epsilon=eps, num_steps=200))
  assert got == pytest.approx(100 * (brute - f0) / (1 + f0), rel=2e-2)
  # random 2-D subspace (the same A as the function draws from its key)
  key = jax.random.PRNGKey(5)
  a = np.asarray(subspace_matrix(jax.random.split(key)[1], 3, 2, jnp.float32))
  b = eps * (np.abs(np.linalg.pinv(a) @ np.asarray(x)) + 1)
  ys = np.stack(np.meshgrid(*grid(b), indexing="ij"), -1).reshape(-1, 2)
  brute = float(jnp.max(jax.vmap(lambda y: f(x + jnp.asarray(a) @ y))(jnp.asarray(ys))))
  got = float(cv.keskar_sharpness(f, x, epsilon=eps, subspace_dim=2, key=key, num_steps=200))
  assert got == pytest.approx(100 * (brute - f0) / (1 + f0), rel=2e-2)
  with pytest.raises(ValueError, match="epsilon"):
    cv.keskar_sharpness(f, x, epsilon=0.0)
  with pytest.raises(ValueError, match="subspace_dim"):
    cv.keskar_sharpness(f, x, subspace_dim=0)
  with pytest.raises(ValueError, match="loss"):
    cv.keskar_sharpness(lambda p: p, x)


def test_landscapes_and_interpolation():
  params = {"w": jnp.asarray([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.asarray([0.5, -0.5])}
  loss = lambda p, s: s * (jnp.sum(p["w"] ** 2) + jnp.sum(p["b"]))
  d = cv.filter_normalized_direction(params, jax.random.key(0))
  np.testing.assert_allclose(jnp.linalg.norm(d["w"], axis=0),
                             jnp.linalg.norm(params["w"], axis=0), rtol=1e-6)
  assert not np.any(np.asarray(d["b"]))
  d1 = cv.filter_normalized_direction(params, jax.random.key(0), zero_1d=False)
  assert float(jnp.linalg.norm(d1["b"])) == pytest.approx(float(jnp.linalg.norm(params["b"])))
  alphas = jnp.linspace(-1.0, 1.0, 5)
  want = [float(loss(jax.tree.map(lambda p, v: p + a * v, params, d), 2.0)) for a in alphas]
  np.testing.assert_allclose(cv.landscape_1d(loss, params, d, alphas, 2.0), want, rtol=1e-6)
  betas = jnp.asarray([0.0, 0.5])
  grid = cv.landscape_2d(loss, params, d, d1, alphas, betas, 2.0)
  assert grid.shape == (5, 2)
  np.testing.assert_allclose(grid[:, 0], want, rtol=1e-6)
  other = jax.tree.map(lambda p: -p, params)
  interp = cv.interpolate(loss, params, other, jnp.asarray([0.0, 0.5, 1.0]), 1.0)
  np.testing.assert_allclose(interp, [loss(params, 1.0), 0.0, loss(other, 1.0)], atol=1e-6)
  with pytest.raises(ValueError, match="direction"):
    cv.landscape_1d(loss, params, {"w": d["w"]}, alphas, 2.0)
  with pytest.raises(ValueError, match="dy"):
    cv.landscape_2d(loss, params, d, {"w": d["w"]}, alphas, betas, 2.0)
  with pytest.raises(ValueError, match="params_b"):
    cv.interpolate(loss, params, {"w": d["w"]}, alphas, 2.0)


def _scaled_loss(p, s):
  return 0.5 * s * jnp.sum(H * jnp.sin(p) ** 2)


def _value_fn(scale):
  return jax.tree_util.Partial(_scaled_loss, s=jnp.asarray(scale, jnp.float32))


def test_curvature_monitor_measures_every_k_and_matches_eigh():
  tx = gradtx.curvature_monitor(every=3, num_iters=3, num_probes=64)
  params = jnp.zeros(3)
  state = tx.init(params)
  step = jax.jit(tx.update)
  seen = []
  for t in range(7):
    u, state = step(jnp.ones(3), state, params, value_fn=_value_fn(1.0 + t))
    np.testing.assert_array_equal(u, jnp.ones(3))  # pass-through
    seen.append(gradtx.read_measures(state))
  # the Hessian at 0 is diag(s * H): top = 9 s, trace = 14 s (Rademacher probes are exact on a
  # diagonal matrix); measured at t = 0, 3, 6 (s = 1, 4, 7), kept in between.
  for t, s in [(0, 1), (1, 1), (2, 1), (3, 4), (5, 4), (6, 7)]:
    assert seen[t]["top_eigenvalue"] == pytest.approx(9.0 * s, rel=1e-5)
    assert seen[t]["hessian_trace"] == pytest.approx(14.0 * s, rel=1e-5)
  assert any("eig" in k for k in seen[0]) and any("trace" in k for k in seen[0])
  assert step._cache_size() == 1
  with pytest.raises(ValueError, match="value_fn"):
    tx.update(jnp.ones(3), tx.init(params), params)
  with pytest.raises(ValueError, match="every"):
    gradtx.curvature_monitor(every=0)


def test_curvature_monitor_vmap_keeps_products_inside_cond():
  tx = gradtx.curvature_monitor(every=4, num_iters=3, num_probes=2)
  params = jnp.zeros(3)

  def update(s, state):
    return tx.update(jnp.ones(3), state, params, value_fn=_value_fn(s))

  scales = jnp.asarray([1.0, 2.0])
  states = jax.vmap(lambda _: tx.init(params))(scales)  # batched count: a batched predicate
  jaxpr = jax.make_jaxpr(jax.vmap(update))(scales, states)
  outside, inside = primitives_outside_cond(jaxpr), primitives_inside_cond(jaxpr)
  assert "cond" in outside and "select_n" not in [p for p in outside if p == "sin"]
  for prim in ("sin", "cos", "eigh", "while", "scan"):
    assert prim not in outside, prim
  assert "sin" in inside and "eigh" in inside
  _, out = jax.jit(jax.vmap(update))(scales, states)
  np.testing.assert_allclose(out.monitor.measurements["top_eigenvalue"], 9.0 * scales, rtol=1e-5)
