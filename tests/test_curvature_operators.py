"""gradtx.curvature's operators (Hessian, Gauss-Newton, Fisher) against dense `jax.hessian` /
Jacobians on a tiny MLP and a quadratic, batch averaging, jit/vmap, bad input; and optax's
second_order helpers and power_iteration on those operators, against optax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import flatten_util

import gradtx
from gradtx import curvature as cv

optax = pytest.importorskip("optax")


def mlp_params(dtype=jnp.float32):
  rng = np.random.default_rng(0)
  return {"w1": jnp.asarray(rng.normal(size=(3, 4)), dtype), "b1": jnp.asarray(rng.normal(size=4) * 0.1, dtype),
          "w2": jnp.asarray(rng.normal(size=(4, 2)), dtype)}


def data(dtype=jnp.float32, n=5, seed=1):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.normal(size=(n, 3)), dtype), jnp.asarray(rng.normal(size=(n, 2)), dtype)


def predict(p, x):
  return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]


def out_loss(z, y):
  return 0.5 * jnp.mean(jnp.sum((z - y) ** 2, axis=-1) + jnp.sum(z ** 4, axis=-1) * 0.1)


def loss(p, x, y):
  return out_loss(predict(p, x), y)


def dense_hessian(p, *args):
  flat, unravel = flatten_util.ravel_pytree(p)
  return jax.hessian(lambda f: loss(unravel(f), *args))(flat)


@pytest.mark.parametrize("x64", [False, True])
def test_hessian_matches_dense_and_products(x64):
  with jax.enable_x64(x64):
    dtype = jnp.float64 if x64 else jnp.float32
    p, (x, y) = mlp_params(dtype), data(dtype)
    op = cv.hessian(loss, p, x, y)
    want = np.asarray(dense_hessian(p, x, y))
    tol = dict(rtol=1e-10, atol=1e-10) if x64 else dict(rtol=2e-5, atol=2e-5)
    dense = jax.jit(op.to_dense)()
    np.testing.assert_allclose(dense, want, **tol)
    assert dense.shape == (op.size, op.size) == (24, 24)
    v = jax.tree.map(jnp.ones_like, p)
    np.testing.assert_allclose(op.ravel(op(v)), want @ np.ones(24), **tol)
    np.testing.assert_allclose(op.ravel(op.diagonal()), np.diag(want), **tol)


def test_gauss_newton_and_fisher_match_dense():
  p, (x, y) = mlp_params(), data()
  flat, unravel = flatten_util.ravel_pytree(p)
  z = predict(p, x)
  jac = jax.jacobian(lambda f: predict(unravel(f), x).ravel())(flat)
  h_out = jax.hessian(lambda zz: out_loss(zz.reshape(z.shape), y))(z.ravel())
  gn = cv.gauss_newton(predict, out_loss, p, x, loss_args=(y,)).to_dense()
  np.testing.assert_allclose(gn, jac.T @ h_out @ jac, rtol=1e-5, atol=1e-5)
  assert np.linalg.eigvalsh(np.asarray(gn, np.float64)).min() > -1e-5  # PSD
  # no *args: output_loss_fn(outputs)
  gn0 = cv.gauss_newton(lambda q: predict(q, x), lambda zz: out_loss(zz, y), p).to_dense()
  np.testing.assert_allclose(gn0, gn, rtol=1e-6, atol=1e-6)
  # empirical Fisher: mean over examples of g_i g_i^T
  ex_loss = lambda q, xi, yi: loss(q, xi[None], yi[None])
  g = jax.vmap(lambda xi, yi: flatten_util.ravel_pytree(jax.grad(ex_loss)(p, xi, yi))[0])(x, y)
  np.testing.assert_allclose(cv.fisher(ex_loss, p, x, y).to_dense(), g.T @ g / len(x),
                             rtol=1e-5, atol=1e-6)


def test_batch_averaging_iterable_and_stacked():
  p = mlp_params()
  batches = [data(seed=s) for s in (1, 2, 3)]
  want = sum(np.asarray(dense_hessian(p, *b)) for b in batches) / 3
  stacked = tuple(jnp.stack(t) for t in zip(*batches))
  np.testing.assert_allclose(cv.hessian(loss, p, batches=batches).to_dense(), want, rtol=2e-5,
                             atol=2e-5)
  np.testing.assert_allclose(cv.hessian(loss, p, stacked_batches=stacked).to_dense(), want,
                             rtol=2e-5, atol=2e-5)
  gn_list = cv.gauss_newton(predict, out_loss, p, batches=[((x,), (y,)) for x, y in batches])
  gn_stack = cv.gauss_newton(predict, out_loss, p, stacked_batches=((stacked[0],), (stacked[1],)))
  gn_each = sum(np.asarray(cv.gauss_newton(predict, out_loss, p, x, loss_args=(y,)).to_dense())
                for x, y in batches) / 3
  np.testing.assert_allclose(gn_list.to_dense(), gn_each, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(gn_stack.to_dense(), gn_each, rtol=1e-5, atol=1e-5)
  ex_loss = lambda q, xi, yi: loss(q, xi[None], yi[None])
  whole = cv.fisher(ex_loss, p, jnp.concatenate(stacked[0]), jnp.concatenate(stacked[1]))
  np.testing.assert_allclose(cv.fisher(ex_loss, p, batches=batches).to_dense(),
                             whole.to_dense(), rtol=1e-5, atol=2e-6)
  np.testing.assert_allclose(cv.fisher(ex_loss, p, stacked_batches=stacked).to_dense(),
                             whole.to_dense(), rtol=1e-5, atol=2e-6)


def test_jit_and_vmap():
  p, (x, y) = mlp_params(), data()
  v = jax.tree.map(jnp.ones_like, p)
  eager = cv.hessian(loss, p, x, y).matvec(v)
  jitted = jax.jit(lambda q, vv: cv.hessian(loss, q, x, y).matvec(vv))(p, v)
  for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  scales = jnp.asarray([0.5, 1.0, 2.0])
  batched = jax.vmap(lambda s: cv.hessian(loss, p, s * x, y).matvec(v))(scales)
  for i, s in enumerate(scales):
    single = cv.hessian(loss, p, s * x, y).matvec(v)
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
      np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-5)


def test_non_scalar_loss_raises_naming_loss():
  p, (x, y) = mlp_params(), data()
  with pytest.raises(ValueError, match="loss"):
    cv.hessian(lambda q, a, b: predict(q, a), p, x, y)
  with pytest.raises(ValueError, match="loss"):
    cv.gauss_newton(predict, lambda z, t: z - t, p, x, loss_args=(y,))
  with pytest.raises(ValueError, match="loss"):
    cv.fisher(lambda q, xi, yi: predict(q, xi[None]), p, x, y)
  with pytest.raises(ValueError, match="batches"):
    cv.hessian(loss, p, x, y, batches=[(x, y)])


def test_second_order_matches_optax():
  p, (x, y) = mlp_params(), data()
  flat = flatten_util.ravel_pytree(p)[0]
  v = jnp.linspace(-1.0, 1.0, flat.size)
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    want_hvp = optax.second_order.hvp(loss, v, p, x, y)
    want_diag = optax.second_order.hessian_diag(loss, p, x, y)
    want_fisher = optax.second_order.fisher_diag(loss, p, x, y)
  got_hvp = gradtx.second_order.hvp(loss, v, p, x, y)
  for a, b in zip(jax.tree.leaves(got_hvp), jax.tree.leaves(want_hvp)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # linearize vs jvp: same products
  np.testing.assert_allclose(gradtx.second_order.hessian_diag(loss, p, x, y), want_diag,
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(gradtx.second_order.fisher_diag(loss, p, x, y), want_fisher)


def test_power_iteration_matches_optax():
  m = jnp.asarray(np.diag([3.0, -5.0, 1.0, 0.5]) + 0.1, jnp.float32)
  for kwargs in (dict(), dict(num_iters=7), dict(key=jax.random.PRNGKey(3))):
    got, gv = gradtx.power_iteration(m, **kwargs)
    want, wv = optax.power_iteration(m, **kwargs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(gv, wv)
  p, (x, y) = mlp_params(), data()
  op = cv.hessian(loss, p, x, y)
  v0 = jax.tree.map(jnp.ones_like, p)
  got, _ = gradtx.power_iteration(op.matvec, v0=v0, num_iters=500)
  eig = np.linalg.eigvalsh(np.asarray(op.to_dense(), np.float64))
  assert abs(float(got)) == pytest.approx(np.max(np.abs(eig)), rel=1e-3)
  with pytest.raises(ValueError, match="v0"):
    gradtx.power_iteration(op.matvec)
