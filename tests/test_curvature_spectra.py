"""gradtx.curvature's estimators and spectra on quadratics with a known spectrum: Hutchinson
within its own standard error (and the standard error against its closed form), Lanczos / top /
bottom eigenpairs against NumPy `eigh`, the SLQ density, jit/vmap, a flax nnx model, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import jax.flatten_util  # noqa: F401
import pytest

from gradtx import curvature as cv

N = 24
SPECTRUM = np.concatenate([np.linspace(-2.0, -1.0, 4), np.linspace(0.5, 1.5, 16),
                           [4.0, 6.0, 8.0, 10.0]])  # well separated extremes, two clusters


def quadratic(dtype):
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(N, N)))
  h = (q * SPECTRUM) @ q.T
  hj = jnp.asarray(h, dtype)
  params = {"a": jnp.zeros((4, 3), dtype), "b": jnp.zeros(12, dtype)}
  loss = lambda p: 0.5 * cv.LinearOperator(lambda v: v, p, "id").ravel(p) @ hj @ (
      cv.LinearOperator(lambda v: v, p, "id").ravel(p))
  return cv.hessian(loss, params), h


def test_hutchinson_within_stderr_and_stderr_closed_form():
  op, h = quadratic(jnp.float32)
  m = 400
  est, se = jax.jit(lambda k: cv.hutchinson_trace(op, k, m))(jax.random.key(1))
  # Var(z^T H z) = 2 sum_{i != j} H_ij^2 for Rademacher z.
  exact_se = np.sqrt(2 * (np.sum(h ** 2) - np.sum(np.diag(h) ** 2)) / m)
  assert abs(float(est) - np.trace(h)) < 4 * float(se)
  assert float(se) == pytest.approx(exact_se, rel=0.25)
  diag, dse = cv.hutchinson_diagonal(op, jax.random.key(2), m)
  flat, flat_se = op.ravel(diag), op.ravel(dse)
  assert jax.tree.structure(diag) == jax.tree.structure(op.params)
  exact_dse = np.sqrt((np.sum(h ** 2, axis=1) - np.diag(h) ** 2) / m)
  z = np.abs(np.asarray(flat) - np.diag(h)) / np.asarray(flat_se)
  assert np.mean(z < 2.5) > 0.9 and np.all(z < 5)
  np.testing.assert_allclose(flat_se, exact_dse, rtol=0.3)
  # per-leaf traces come for free
  np.testing.assert_allclose(float(jnp.sum(diag["a"]) + jnp.sum(diag["b"])), float(jnp.sum(flat)),
                             rtol=1e-5)
  _, nan_se = cv.hutchinson_trace(op, jax.random.key(0), 1)
  assert np.isnan(nan_se)


@pytest.mark.parametrize("x64", [False, True])
def test_lanczos_and_extreme_eigenpairs_match_eigh(x64):
  with jax.enable_x64(x64):
    dtype = jnp.float64 if x64 else jnp.float32
    op, h = quadratic(dtype)
    alphas, betas, basis = cv.lanczos(op, jax.random.key(0), N)  # order == dimension: allowed
    assert alphas.shape == (N,) and betas.shape == (N - 1,)
    assert jax.tree.leaves(basis)[0].shape[0] == N
    t = np.diag(np.asarray(alphas, np.float64)) + np.diag(np.asarray(betas, np.float64), 1) + \
        np.diag(np.asarray(betas, np.float64), -1)
    rtol = 1e-9 if x64 else 1e-5
    np.testing.assert_allclose(np.linalg.eigvalsh(t), SPECTRUM, rtol=rtol, atol=rtol * 10)
    vals, vecs = jax.jit(lambda k: cv.top_eigenvalues(op, 3, k, order=20))(jax.random.key(1))
    np.testing.assert_allclose(vals, [10.0, 8.0, 6.0], rtol=rtol)
    assert vals.dtype == dtype
    q = np.linalg.eigh(h)[1]
    flat_vecs = jax.vmap(op.ravel)(vecs)
    np.testing.assert_allclose(np.abs(np.asarray(flat_vecs) @ q[:, [-1, -2, -3]]).diagonal(), 1,
                               rtol=1e-4)
    lows, _ = cv.bottom_eigenvalues(op, 2, jax.random.key(2), order=20)
    np.testing.assert_allclose(lows, [-2.0, -2.0 + 1 / 3], rtol=rtol * 10)


def test_spectral_density_integrates_to_one_where_eigh_puts_mass():
  op, _ = quadratic(jnp.float32)
  grid, dens, ritz, w = jax.jit(lambda k: cv.spectral_density(op, k, 20, 4))(jax.random.key(0))
  assert ritz.shape == w.shape == (4, 20)
  np.testing.assert_allclose(jnp.sum(w, axis=1), 1.0, rtol=1e-5)
  assert float(jnp.trapezoid(dens, grid)) == pytest.approx(1.0, abs=1e-5)
  assert float(jnp.max(jnp.diff(grid))) * 10 < 14.0  # fine grid
  mass = lambda lo, hi: float(jnp.trapezoid(jnp.where((grid >= lo) & (grid <= hi), dens, 0), grid))
  assert mass(-2.3, 10.3) > 0.98
  assert mass(0.3, 1.7) == pytest.approx(16 / 24, abs=0.15)  # the bulk
  assert mass(-2.3, -0.8) == pytest.approx(4 / 24, abs=0.1)   # the negative cluster


def test_vmap_over_operators_equals_loop():
  op, _ = quadratic(jnp.float32)
  scales = jnp.asarray([0.5, 1.0, 2.0])

  def top(s):
    scaled = cv.hessian(lambda p: s * 0.5 * jnp.vdot(op.ravel(p), op.ravel(op(p))), op.params)
    return cv.top_eigenvalues(scaled, 1, jax.random.key(0), order=20)[0][0]

  batched = jax.jit(jax.vmap(top))(scales)
  np.testing.assert_allclose(batched, [10 * float(s) for s in scales], rtol=1e-5)


def test_bad_input_names_the_argument():
  op, _ = quadratic(jnp.float32)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="num_probes"):
    cv.hutchinson_trace(op, key, 0)
  with pytest.raises(ValueError, match="num_probes"):
    cv.hutchinson_diagonal(op, key, 0)
  with pytest.raises(ValueError, match="num_probes"):
    cv.spectral_density(op, key, 4, 0)
  with pytest.raises(ValueError, match="order"):
    cv.lanczos(op, key, N + 1)
  with pytest.raises(ValueError, match="order"):
    cv.spectral_density(op, key, N + 1, 1)
  with pytest.raises(ValueError, match="k"):
    cv.top_eigenvalues(op, N + 1, key)
  with pytest.raises(TypeError, match="op"):
    cv.hutchinson_trace(lambda v: v, key, 3)


def test_flax_nnx_model():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Sequential(nnx.Linear(3, 4, rngs=nnx.Rngs(0)), jnp.tanh,
                         nnx.Linear(4, 1, rngs=nnx.Rngs(1)))
  graphdef, params = nnx.split(model, nnx.Param)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 3)), jnp.float32)
  y = jnp.sin(x[:, :1])

  def loss(p, xb, yb):
    return jnp.mean((nnx.merge(graphdef, p)(xb) - yb) ** 2)

  @nnx.jit
  def measure(p):
    op = cv.hessian(loss, p, x, y)
    return op.to_dense(), cv.top_eigenvalues(op, 1, jax.random.key(0), order=21)[0]

  dense, top = measure(params)
  flat, unravel = jax.flatten_util.ravel_pytree(params)
  want = jax.hessian(lambda f: loss(unravel(f), x, y))(flat)
  np.testing.assert_allclose(dense, want, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(top[0], np.linalg.eigvalsh(np.asarray(want, np.float64))[-1],
                             rtol=1e-4)
  d = cv.filter_normalized_direction(params, jax.random.key(1))
  kernel = d["layers"][0]["kernel"].get_value() if hasattr(d["layers"][0]["kernel"], "get_value") \
      else d["layers"][0]["kernel"].value
  want_norms = jnp.linalg.norm(params["layers"][0]["kernel"].value, axis=0)
  np.testing.assert_allclose(jnp.linalg.norm(kernel, axis=0), want_norms, rtol=1e-5)
