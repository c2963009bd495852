"""Tests of gradtx/numerics.py: safe_increment on every counter dtype, safe_norm and
safe_root_mean_squares (values bit-identical to optax, finite gradients at 0)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

X32 = ["int8", "int16", "int32", "uint8", "uint16", "uint32", "float16", "bfloat16", "float32"]
X64 = ["int64", "uint64", "float64"]  # JAX has these only with jax_enable_x64


def _counters(dtype):
  dtype = jnp.dtype(dtype)
  info = jnp.iinfo(dtype) if jnp.issubdtype(dtype, jnp.integer) else jnp.finfo(dtype)
  top = np.asarray(info.max, dtype)
  return [jnp.asarray(0, dtype), jnp.asarray(7, dtype), jnp.asarray(top, dtype) - 1,
          jnp.asarray(top, dtype), jnp.asarray([0, 1, top], dtype)]


def _check_increment(dtype):
  for c in _counters(dtype):
    got, want = gradtx.safe_increment(c), optax.safe_increment(c)
    assert got.dtype == want.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  top = _counters(dtype)[3]
  assert gradtx.safe_increment(top) == top  # saturates, no wrap to the minimum


@pytest.mark.parametrize("dtype", X32)
def test_safe_increment_every_dtype_as_optax(dtype):
  _check_increment(dtype)


def test_safe_increment_64_bit_dtypes_with_x64():
  with jax.enable_x64(True):
    for dtype in X64:
      _check_increment(dtype)
  assert not jax.config.jax_enable_x64


def test_safe_increment_python_int_jit_and_alias():
  assert gradtx.safe_int32_increment is gradtx.safe_increment  # as optax's two names
  assert int(gradtx.safe_increment(3)) == 4
  f = jax.jit(gradtx.safe_increment)
  top = jnp.asarray(2**31 - 1, jnp.int32)
  assert int(f(top)) == 2**31 - 1 and f(top).dtype == jnp.int32
  np.testing.assert_array_equal(jax.vmap(gradtx.safe_increment)(jnp.asarray([0, 2**31 - 1])),
                                [1, 2**31 - 1])


@pytest.mark.parametrize("bad", [jnp.asarray(True), jnp.asarray(1 + 0j, jnp.complex64)])
def test_safe_increment_rejects_other_dtypes(bad):
  with pytest.raises(ValueError, match="count"):
    gradtx.safe_increment(bad)


_X = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), jnp.float32)
_NORM_CASES = [
    dict(), dict(ord=1), dict(ord=np.inf), dict(ord="fro"), dict(ord="nuc"),
    dict(axis=0), dict(axis=1, keepdims=True), dict(ord=1, axis=1), dict(axis=(0, 1)),
    dict(ord=3, axis=0), dict(keepdims=True),
]


@pytest.mark.parametrize("min_norm", [1e-6, 2.0])
def test_safe_norm_values_bit_identical_to_optax(min_norm):
  for kw in _NORM_CASES:
    for x in (_X, jnp.zeros((3, 4)), _X.at[0].set(0.0)):
      got = gradtx.safe_norm(x, min_norm, **kw)
      want = optax.safe_norm(x, min_norm, **kw)
      assert got.shape == want.shape and got.dtype == want.dtype, kw
      np.testing.assert_array_equal(got, want, err_msg=str(kw))
      plain = jnp.maximum(jnp.linalg.norm(x, **kw), min_norm)
      np.testing.assert_allclose(got, plain, rtol=1e-6, err_msg=str(kw))


def test_safe_norm_gradient_at_zero_is_finite_as_optax():
  def loss(lib, kw):
    return lambda x: jnp.sum(lib.safe_norm(x, 1e-3, **kw))

  naive = jax.grad(lambda x: jnp.maximum(jnp.linalg.norm(x), 1e-3))(jnp.zeros(3))
  assert np.isnan(np.asarray(naive)).all()  # what safe_norm avoids
  x = jnp.zeros((3, 4)).at[1].set(_X[1])  # row 1 non-zero, the others 0
  for kw in (dict(), dict(axis=1), dict(axis=0, keepdims=True), dict(ord=1, axis=1)):
    for point in (jnp.zeros((3, 4)), x):
      got = jax.jit(jax.grad(loss(gradtx, kw)))(point)
      want = jax.jit(jax.grad(loss(optax, kw)))(point)
      assert np.isfinite(np.asarray(got)).all(), kw
      np.testing.assert_array_equal(got, want, err_msg=str(kw))
  g = jax.grad(loss(gradtx, dict(axis=1)))(x)
  np.testing.assert_array_equal(g[0], 0.0)  # rows at the floor get no gradient
  np.testing.assert_allclose(g[1], x[1] / jnp.linalg.norm(x[1]), rtol=1e-6)


def test_safe_root_mean_squares_values_and_gradients():
  for x in (_X, jnp.zeros(5), jnp.asarray([1e-4, -1e-4]), jnp.asarray([3.0 + 4j, 0j])):
    for m in (1e-6, 0.5):
      got = gradtx.safe_root_mean_squares(x, m)
      want = optax.safe_root_mean_squares(x, m)
      np.testing.assert_array_equal(got, want)
      ref = max(np.sqrt(np.mean(np.abs(np.asarray(x, np.complex128)) ** 2)), m)
      np.testing.assert_allclose(got, ref, rtol=1e-6)
  g = jax.grad(lambda x: gradtx.safe_root_mean_squares(x, 1e-6))(jnp.zeros(4))
  np.testing.assert_array_equal(g, 0.0)
  g = jax.grad(lambda x: gradtx.safe_root_mean_squares(x, 1e-6))(_X)
  np.testing.assert_array_equal(
      g, jax.grad(lambda x: optax.safe_root_mean_squares(x, 1e-6))(_X))


def test_safe_norm_vmap_over_min_norm_equals_loop():
  mins = jnp.asarray([0.1, 3.0, 50.0])
  out = jax.vmap(lambda m: gradtx.safe_norm(_X, m, axis=1))(mins)
  for i, m in enumerate(mins):
    np.testing.assert_array_equal(out[i], gradtx.safe_norm(_X, m, axis=1))
