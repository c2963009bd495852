"""Shampoo, SOAP and matrix_inverse_pth_root beyond the registry (tests/registry.py has their NumPy
references on the generic tree; tests/test_aliases.py, test_flax.py and test_checkpoint.py run
the aliases in nnx.Optimizer, linen's TrainState, vmap over the learning rate and Orbax): optax
parity and the error diagnostic of the root, the periodic work kept under a `cond` in a vmapped
sweep, the variants against the reference, chains with clipping, schedules and apply_if_finite,
and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from jaxprs import primitives_inside_cond, primitives_outside_cond

_RNG = np.random.default_rng(0)
_A = _RNG.normal(size=(6, 12)).astype(np.float32)
_B = _RNG.normal(size=(3, 5)).astype(np.float32)
# Positive definite (condition numbers ~10-30): the dense comparison measures the iterations,
# not float32's loss in the ridge directions of a singular matrix.
MATRICES = [jnp.asarray(_A @ _A.T), jnp.asarray(_B @ _B.T), jnp.asarray([[2.0]], jnp.float32)]


@pytest.mark.parametrize("p", [4])
def test_matrix_inverse_pth_root_matches_optax_and_reports_its_error(p):
  for a in MATRICES:
    root, error = gradtx.matrix_inverse_pth_root(a, p)
    want, want_error = optax.matrix_inverse_pth_root(a, p)
    np.testing.assert_array_equal(root, want)  # the same iterations, bit for bit
    assert float(error) == float(want_error) and error.dtype == jnp.float32
    # Against a dense float64 eigendecomposition of the same damped matrix: the root, and the
    # error as the residual max |H^p (A + eps I) - I| (float32 iterates, hence the tolerances).
    a64 = np.asarray(a, np.float64)
    w, v = np.linalg.eigh(a64)
    ridge = 1e-6 * max(w[-1], 1e-16)
    np.testing.assert_allclose(root, ref.inverse_root(a64, p), rtol=2e-3, atol=1e-5)
    damped = a64 + ridge * np.eye(len(a64))
    residual = np.abs(np.linalg.matrix_power(np.asarray(root, np.float64), p) @ damped
                      - np.eye(len(a64))).max()
    assert float(error) < 1e-5 and residual < 1e-3
    assert abs(residual - float(error)) < 1e-3


def test_matrix_inverse_pth_root_rejects_bad_p_and_shape():
  with pytest.raises(ValueError, match="p must be"):
    gradtx.matrix_inverse_pth_root(MATRICES[0], 3)
  with pytest.raises(ValueError, match="matrix must be a square"):
    gradtx.matrix_inverse_pth_root(jnp.ones((2, 3)), 2)


PARAMS = {"w": jnp.asarray(_RNG.normal(size=(3, 4)), jnp.float32),
          "k": jnp.asarray(_RNG.normal(size=(2, 3, 4)), jnp.float32),
          "b": jnp.asarray(_RNG.normal(size=4), jnp.float32)}
GRADS = [jax.tree.map(lambda p: jnp.asarray(_RNG.normal(size=p.shape), jnp.float32), PARAMS)
         for _ in range(7)]
SPECS = {"w": gradtx.contrib.MuonDimensionNumbers(),
         "k": gradtx.contrib.MuonDimensionNumbers(1, 2), "b": None}


def _leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name, kwargs, rtol", [
    # RMSProp grafting, EMA statistics, a batch of two (3, 4) matrices, blocks of 2 (3 -> 2 + 1).
    ("scale_by_shampoo", dict(beta2=0.9, graft="rmsprop", block_size=2, start_preconditioning_step=3,
                              preconditioning_compute_steps=2, weight_dimension_numbers=SPECS), 1e-3),
    # Refreshes at steps 3 and 6 (bases from one gradient: sides <= 4, rank-deficiency <= 1).
    ("scale_by_soap", dict(b1=0.9, b2=0.99, precondition_frequency=3,
                           weight_dimension_numbers=SPECS), 1e-3),
])
def test_variants_match_the_numpy_reference(name, kwargs, rtol):
  tx = getattr(gradtx, name)(**kwargs)
  step, state, got = jax.jit(tx.update), tx.init(PARAMS), []
  for g in GRADS:
    u, state = step(g, state)
    got.append(_leaves64(u))
  want = getattr(ref, name)(_leaves64(PARAMS), [_leaves64(g) for g in GRADS], **kwargs)
  for t, (gs, ws) in enumerate(zip(got, want)):
    for a, b in zip(gs, ws):
      np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-5, err_msg=f"{name} step {t}")


@pytest.mark.parametrize("make, expensive", [
    (lambda b: gradtx.scale_by_shampoo(beta2=b, preconditioning_compute_steps=5), {"while"}),
    (lambda b: gradtx.scale_by_soap(b2=b), {"eigh", "qr", "householder_product", "geqrf"}),
])
def test_vmapped_sweep_keeps_roots_and_bases_under_a_cond(make, expensive):
  """A sweep over a decay (the state batched along it) runs the inverse roots (Newton and power
  iterations: `while`) or SOAP's eigh / QR only inside a `cond`, not as a `select` every step."""
  def update(b, state):
    tx = make(b)
    return tx.update(GRADS[0], state)

  tx = make(0.9)
  states = jax.vmap(lambda b: make(b).init(PARAMS))(jnp.asarray([0.9, 0.99]))
  jaxpr = jax.make_jaxpr(jax.vmap(update))(jnp.asarray([0.9, 0.99]), states)
  outside = set(primitives_outside_cond(jaxpr))
  inside = set(primitives_inside_cond(jaxpr))
  assert not outside & expensive, outside & expensive
  assert inside & expensive
  del tx


@pytest.mark.parametrize("alias", ["shampoo", "soap"])
def test_chain_with_clipping_schedule_and_apply_if_finite(alias):
  """clip_by_global_norm, a schedule, and a NaN batch skipped by apply_if_finite (params and the
  inner state unchanged by it; the count of the schedule does not move)."""
  schedule = gradtx.linear_schedule(0.05, 0.01, 6)
  kwargs = dict(preconditioning_compute_steps=2) if alias == "shampoo" else dict(
      precondition_frequency=2)
  tx = gradtx.apply_if_finite(
      gradtx.chain(gradtx.clip_by_global_norm(1.0), getattr(gradtx, alias)(schedule, **kwargs)),
      max_consecutive_errors=3)
  loss = lambda p: sum(jnp.sum((x - 1.0) ** 2) for x in jax.tree.leaves(p))

  @jax.jit
  def step(params, state, poison):
    grads = jax.grad(loss)(params)
    grads = jax.tree.map(lambda g: g * jnp.where(poison, jnp.nan, 1.0), grads)
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state

  params, state = PARAMS, tx.init(PARAMS)
  first = float(loss(params))
  for t in range(6):
    before = (params, state.inner_state)
    params, state = step(params, state, t == 2)
    if t == 2:
      for a, b in zip(jax.tree.leaves(before), jax.tree.leaves((params, state.inner_state))):
        np.testing.assert_array_equal(a, b)
      assert int(state.notfinite_count) == 1
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves((params, state)))
  assert float(loss(params)) < first


@pytest.mark.parametrize("factory, kwargs, match", [
    (gradtx.scale_by_shampoo, dict(block_size=0), "block_size"),
    (gradtx.scale_by_shampoo, dict(beta2=0.0), "beta2"),
    (gradtx.scale_by_shampoo, dict(matrix_epsilon=0.0), "matrix_epsilon"),
    (gradtx.scale_by_shampoo, dict(graft="adam"), "graft"),
    (gradtx.scale_by_shampoo, dict(preconditioning_compute_steps=0),
     "preconditioning_compute_steps"),
    (gradtx.scale_by_shampoo, dict(start_preconditioning_step=0), "start_preconditioning_step"),
    (gradtx.scale_by_soap, dict(precondition_frequency=0), "precondition_frequency"),
    (gradtx.scale_by_soap, dict(shampoo_beta=1.0), "shampoo_beta"),
    (gradtx.scale_by_soap, dict(b2=1.5), "b2"),
    (gradtx.scale_by_soap, dict(max_precond_dim=0), "max_precond_dim"),
])
def test_bad_input_raises_naming_the_argument(factory, kwargs, match):
  with pytest.raises(ValueError, match=match):
    factory(**kwargs)


def test_bad_matrix_spec_names_the_leaf():
  tx = gradtx.scale_by_shampoo(weight_dimension_numbers={"w": None, "k": None,
                                                         "b": gradtx.contrib.MuonDimensionNumbers()})
  with pytest.raises(ValueError, match=r"\['b'\]"):
    tx.init(PARAMS)
