"""gradtx.perturbations (make_perturbed_fun, Gumbel, Normal) and the top-level multi_normal:
bit-identical to optax for the same key, the estimator against the smoothed function's analytic
value and gradient, jit/vmap, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import gradtx
from gradtx import perturbations as pert

optax = pytest.importorskip("optax")

KEYS = [jax.random.key(s) for s in range(4)]
X = {"a": jnp.array([0.3, -0.2, 0.1]), "b": jnp.array([[0.5, -1.0], [0.0, 0.2]])}


def _argmax_tree(x):
  """Not differentiable: one-hot argmax of each leaf (flattened), as a tree."""
  return jax.tree.map(lambda v: jax.nn.one_hot(jnp.argmax(v.ravel()), v.size), x)


def _tree_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("noise_name,use_baseline", [("Gumbel", True), ("Normal", False)])
def test_values_and_gradients_bit_identical_to_optax(noise_name, use_baseline):
  ours = getattr(pert, noise_name)()
  theirs = getattr(optax.perturbations, noise_name)()

  def run(lib, noise):
    fn = lib.perturbations.make_perturbed_fun(_argmax_tree, 64, 0.5, noise, use_baseline)
    scalar = lambda k, x: sum(jnp.sum(v * w) for v, w in zip(
        jax.tree.leaves(fn(k, x)), [jnp.arange(3.0), jnp.arange(4.0)]))
    return jax.jit(lambda k, x: (fn(k, x), jax.grad(scalar, argnums=1)(k, x)))

  f_ours, f_theirs = run(gradtx, ours), run(optax, theirs)
  for key in KEYS:  # the same compiled pair, several keys
    _tree_equal(f_ours(key, X), f_theirs(key, X))


def test_optax_docstring_example_and_hessian_bit_identical():
  f = lambda x: jnp.sum(jnp.maximum(x, 0.0))
  key, x = jax.random.key(0), jnp.zeros(3)
  g = jax.grad(pert.make_perturbed_fun(f, 1000, 0.1), argnums=1)(key, x)
  g_opt = jax.grad(optax.perturbations.make_perturbed_fun(f, 1000, 0.1), argnums=1)(key, x)
  np.testing.assert_array_equal(g, g_opt)
  np.testing.assert_allclose(g, [0.686248, 0.718972, 0.579662], rtol=1e-5)
  # second order, through the magic box, unbiased as optax's (Normal noise, no baseline)
  h = jax.hessian(pert.make_perturbed_fun(f, 50, 0.5, pert.Normal(), False), argnums=1)(key, x)
  h_opt = jax.hessian(optax.perturbations.make_perturbed_fun(
      f, 50, 0.5, optax.perturbations.Normal(), False), argnums=1)(key, x)
  np.testing.assert_array_equal(h, h_opt)


def test_noise_sample_and_log_prob_bit_identical():
  z = jnp.linspace(-3.0, 3.0, 7)
  for name in ("Gumbel", "Normal"):
    ours, theirs = getattr(pert, name)(), getattr(optax.perturbations, name)()
    for shape, dtype in [((5,), jnp.float32), ((2, 3), jnp.bfloat16)]:
      a = ours.sample(KEYS[1], shape, dtype)
      np.testing.assert_array_equal(a, theirs.sample(KEYS[1], shape, dtype))
      assert a.dtype == dtype and a.shape == shape
    np.testing.assert_array_equal(ours.sample(KEYS[2]), theirs.sample(KEYS[2]))  # defaults
    np.testing.assert_array_equal(ours.log_prob(z), theirs.log_prob(z))
  # the equations, in float64 NumPy
  zn = np.linspace(-3.0, 3.0, 7)
  np.testing.assert_allclose(pert.Gumbel().log_prob(z), stats.gumbel_r.logpdf(zn), rtol=1e-5)
  np.testing.assert_allclose(pert.Normal().log_prob(z), stats.norm.logpdf(zn)
                             + 0.5 * np.log(2 * np.pi), rtol=1e-5, atol=1e-6)


def test_multi_normal_bit_identical_to_optax():
  assert not hasattr(optax.perturbations, "multi_normal")  # top level only, as in gradtx
  assert not hasattr(pert, "multi_normal") and gradtx.multi_normal is not None
  loc, log_scale = jnp.array([[0.5, -1.0, 2.0]]), jnp.array([0.1, -0.3, 0.0])
  ours, theirs = gradtx.multi_normal(loc, log_scale), optax.multi_normal(loc, log_scale)
  s = ours.sample((4,), KEYS[0])
  assert s.shape == (4, 1, 3)
  np.testing.assert_array_equal(s, theirs.sample((4,), KEYS[0]))
  np.testing.assert_array_equal(ours.log_prob(s), theirs.log_prob(s))
  np.testing.assert_allclose(  # NumPy reference: the sum of the normal log-densities
      ours.log_prob(s), stats.norm.logpdf(np.asarray(s), np.asarray(loc),
                                          np.exp(np.asarray(log_scale))).sum(axis=(-2, -1)),
      rtol=1e-5)
  _tree_equal(ours.params, theirs.params)
  np.testing.assert_array_equal(ours.log_scale, theirs.log_scale)
  assert type(ours).__name__ == type(theirs).__name__
  # differentiable in its parameters (the reparameterised sample and the log-density)
  grad = jax.grad(lambda m, ls: gradtx.multi_normal(m, ls).log_prob(jnp.zeros(3)))(
      jnp.zeros(3), jnp.zeros(3))
  np.testing.assert_allclose(grad, np.zeros(3), atol=1e-7)
  with pytest.raises(ValueError, match="log_scale"):
    gradtx.multi_normal(jnp.zeros(3), jnp.zeros(2))


def test_gumbel_argmax_expectation_is_softmax():
  """Berthet et al. (2020), Prop. 2.1 with Gumbel noise: E[onehot(argmax(x + sigma Z))] =
  softmax(x / sigma); the estimator's value and Jacobian match it and its analytic Jacobian."""
  x, sigma = jnp.array([0.2, -0.1, 0.4, 0.0]), 0.5
  onehot = lambda v: jax.nn.one_hot(jnp.argmax(v), v.size)
  fn = pert.make_perturbed_fun(onehot, 20_000, sigma)
  value, jac = jax.jit(lambda k: (fn(k, x), jax.jacobian(fn, argnums=1)(k, x)))(KEYS[3])
  p = special.softmax(np.asarray(x, np.float64) / sigma)
  jac_ref = (np.diag(p) - np.outer(p, p)) / sigma
  np.testing.assert_allclose(value, p, atol=0.015)  # Monte Carlo: 4 sigma of 20k draws
  np.testing.assert_allclose(jac, jac_ref, atol=0.06)
  np.testing.assert_allclose(np.asarray(jac).sum(axis=0), 0.0, atol=1e-4)  # rows sum to 1


def test_normal_relu_gradient_is_gaussian_cdf():
  """E[relu(x + sigma Z)], Z ~ N(0, 1), has gradient Phi(x / sigma)."""
  x, sigma = jnp.array([-0.3, 0.0, 0.2]), 0.4
  fn = pert.make_perturbed_fun(lambda v: jnp.sum(jnp.maximum(v, 0.0)), 20_000, sigma,
                               pert.Normal())
  g = jax.jit(jax.grad(fn, argnums=1))(KEYS[2], x)
  np.testing.assert_allclose(g, stats.norm.cdf(np.asarray(x) / sigma), atol=0.03)


def test_jit_and_vmap_over_keys_and_sigma():
  onehot = lambda v: jax.nn.one_hot(jnp.argmax(v), v.size)
  x = jnp.array([0.1, 0.3, -0.2])
  fn = pert.make_perturbed_fun(onehot, 32, 0.3)
  keys = jnp.stack(KEYS)
  batched = jax.vmap(fn, in_axes=(0, None))(keys, x)
  for k, key in enumerate(KEYS):
    np.testing.assert_allclose(batched[k], fn(key, x), rtol=1e-6)
  np.testing.assert_array_equal(jax.jit(fn)(KEYS[0], x), fn(KEYS[0], x))
  # sigma is traced: a batch of sigmas equals a Python loop
  sigmas = jnp.array([0.1, 0.5, 1.0])
  grad_at = lambda s: jax.grad(lambda y: jnp.sum(pert.make_perturbed_fun(onehot, 32, s)(
      KEYS[1], y) * jnp.arange(3.0)))(x)
  batched = jax.jit(jax.vmap(grad_at))(sigmas)
  for k, s in enumerate(sigmas):
    np.testing.assert_allclose(batched[k], grad_at(float(s)), rtol=1e-5, atol=1e-6)


def test_bad_input():
  f = lambda x: x
  for bad in (0, -3):
    with pytest.raises(ValueError, match="num_samples"):
      pert.make_perturbed_fun(f, num_samples=bad)
  with pytest.raises(TypeError, match="num_samples"):
    pert.make_perturbed_fun(f, num_samples=10.0)
  for bad in (-0.1, 0.0, float("nan")):
    with pytest.raises(ValueError, match="sigma"):
      pert.make_perturbed_fun(f, sigma=bad)
  with pytest.raises(ValueError, match="sigma"):
    pert.make_perturbed_fun(f, sigma=jnp.ones(3))
  with pytest.raises(TypeError, match="noise"):
    pert.make_perturbed_fun(f, noise=jax.random.gumbel)
  with pytest.raises(TypeError, match="fun"):
    pert.make_perturbed_fun(3.0)
  with pytest.raises(TypeError, match="use_baseline"):
    pert.make_perturbed_fun(f, use_baseline="yes")
  # optax's noise objects are accepted (the protocol, not the class)
  pert.make_perturbed_fun(f, noise=optax.perturbations.Normal())
