"""gradtx._periodic.cond: periodic work stays periodic under `vmap` (the issue-14 rule)."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradtx._periodic import cond
from jaxprs import primitives_inside_cond, primitives_outside_cond


def _update(count, lr, x):
  """Every third step an expensive QR (the 'refresh'); otherwise a cheap scaling."""
  return cond(count % 3 == 0, lambda x: lr * jnp.linalg.qr(x)[0], lambda x: 2.0 * lr * x, x)


def _reference(count, lr, x):
  return lax.cond(count % 3 == 0, lambda x: lr * jnp.linalg.qr(x)[0], lambda x: 2.0 * lr * x, x)


X = jnp.arange(16.0).reshape(4, 4) + jnp.eye(4)
COUNTS = jnp.arange(6).reshape(2, 3)
LRS = jnp.asarray([1.0, 0.5])
XS = jnp.stack([jnp.stack([X + i + j for j in range(3)]) for i in range(2)])


def _qr_outside_cond(jaxpr):
  return [n for n in primitives_outside_cond(jaxpr) if n == "qr"]


def test_vmapped_batched_predicate_keeps_the_expensive_branch_under_a_cond():
  jaxpr = jax.make_jaxpr(jax.vmap(_update))(COUNTS[0], jnp.ones(3), XS[0])
  assert any(n == "qr" for n in primitives_inside_cond(jaxpr))
  assert not _qr_outside_cond(jaxpr)
  # lax.cond itself would run the QR on every step (a select over both branches):
  plain = jax.make_jaxpr(jax.vmap(_reference))(COUNTS[0], jnp.ones(3), XS[0])
  assert _qr_outside_cond(plain) and "cond" not in primitives_outside_cond(plain)


def test_values_equal_a_loop_nested_vmap_and_jit():
  got = jax.jit(jax.vmap(jax.vmap(_update, (0, None, 0)), (0, 0, 0)))(COUNTS, LRS, XS)
  for i in range(2):
    for j in range(3):
      want = _reference(COUNTS[i, j], LRS[i], XS[i, j])
      np.testing.assert_allclose(got[i, j], want, rtol=1e-6, atol=1e-6)
  # Unbatched predicate, batched closed-over learning rate.
  got = jax.vmap(_update, (None, 0, None))(jnp.asarray(3), LRS, X)
  for i in range(2):
    np.testing.assert_allclose(got[i], _reference(3, LRS[i], X), rtol=1e-6)


def test_gradients_equal_lax_cond():
  for count in (0, 1):
    for argnum in (1, 2):
      got = jax.grad(lambda *a: _update(*a).sum(), argnum)(jnp.asarray(count), 2.0, X)
      want = jax.grad(lambda *a: _reference(*a).sum(), argnum)(jnp.asarray(count), 2.0, X)
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  got = jax.vmap(jax.grad(lambda x, c: _update(c, 2.0, x).sum()))(XS[0], COUNTS[0])
  for j in range(3):
    want = jax.grad(lambda x: _reference(COUNTS[0, j], 2.0, x).sum())(XS[0, j])
    np.testing.assert_allclose(got[j], want, rtol=1e-5, atol=1e-6)


def test_pytree_operands_with_mixed_batching():
  """Operands may be pytrees whose leaves are partly batched (an optimizer state: a batched
  moment beside an unbatched count)."""
  def f(count, lr, state):
    return cond(count % 2 == 0, lambda s: {"m": lr * s["m"] + s["k"], "k": s["k"]},
                lambda s: {"m": s["m"] - lr, "k": s["k"] + 1.0}, state)

  state = {"m": jnp.arange(3.0), "k": jnp.asarray(2.0)}
  for count in (0, 1):
    got = jax.vmap(lambda lr, m: f(count, lr, {"m": m, "k": state["k"]}))(LRS, jnp.stack([state["m"]] * 2))
    for i in range(2):
      want = lax.cond(count % 2 == 0, lambda s: {"m": LRS[i] * s["m"] + s["k"], "k": s["k"]},
                      lambda s: {"m": s["m"] - LRS[i], "k": s["k"] + 1.0}, state)
      np.testing.assert_allclose(got["m"][i], want["m"])
      np.testing.assert_allclose(got["k"][i], want["k"])
