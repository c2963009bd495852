"""gradtx/transforms/freezing.py: `freeze` and `selective_transform` against optax over 20 steps
(bit-identical, same state), jit and vmap, callable masks, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import make_grads, make_params

MASK = {"a": (True, False), "b": False}  # a prefix of the params: freeze a[0]


from state_audit import describe  # noqa: E402  (class names, fields, shapes, dtypes)


def _run(tx, grads, jit=True):
  params, state = make_params(), tx.init(make_params())
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, params)
    params = jax.tree.map(lambda p, x: p + x, params, u)
    out.append(u)
  return out, state


def _assert_same_run(tx, otx, grads, jit=True):
  got, state = _run(tx, grads, jit)
  want, ostate = _run(otx, grads)
  for step, (u, w) in enumerate(zip(got, want)):
    assert jax.tree.structure(u) == jax.tree.structure(w)
    for x, y in zip(jax.tree.leaves(u), jax.tree.leaves(w)):
      np.testing.assert_array_equal(x, y, err_msg=f"step {step}")
  assert describe(state) == describe(ostate)
  for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(ostate)):
    np.testing.assert_array_equal(x, y)
  return got, state


@pytest.mark.parametrize("mask", [MASK, True, False, jnp.asarray(True)],
                         ids=["prefix", "all", "none", "array"])
def test_freeze_matches_optax(mask):
  grads = make_grads()
  got, state = _assert_same_run(gradtx.freeze(mask), optax.transforms.freeze(mask), grads)
  assert state == gradtx.MaskedState(inner_state=gradtx.EmptyState())
  if mask is MASK:
    assert float(jnp.abs(got[-1]["a"][0]).sum()) == 0.0
    np.testing.assert_array_equal(got[-1]["b"]["d"], grads[-1]["b"]["d"])


def _momentum(lib):
  return lib.chain(lib.scale_by_adam(), lib.scale(-0.01))


def test_selective_transform_matches_optax_over_20_steps():
  grads = make_grads()
  got, state = _assert_same_run(
      gradtx.selective_transform(_momentum(gradtx), freeze_mask=MASK),
      optax.transforms.selective_transform(_momentum(optax), freeze_mask=MASK), grads)
  assert type(state).__name__ == "PartitionState"
  assert set(state.inner_states) == {"train", "freeze"}
  # the optimizer keeps no state for the frozen leaf
  assert isinstance(state.inner_states["train"].inner_state[0].mu["a"][0], gradtx.MaskedNode)
  assert float(jnp.abs(got[-1]["a"][0]).sum()) == 0.0


def test_eager_equals_jit_and_callable_mask_equals_tree():
  grads = make_grads(steps=3)
  eager, _ = _run(gradtx.selective_transform(_momentum(gradtx), freeze_mask=MASK), grads, False)
  by_fn = gradtx.selective_transform(
      _momentum(gradtx), freeze_mask=lambda params: {"a": (True, False), "b": False})
  jitted, _ = _run(by_fn, grads)
  for x, y in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(x, y, rtol=1e-6)
  frozen, _ = _run(gradtx.chain(_momentum(gradtx), gradtx.freeze(lambda p: MASK)), grads)
  assert float(jnp.abs(frozen[-1]["a"][0]).sum()) == 0.0


def test_vmap_over_learning_rates_equals_a_loop():
  params, g = make_params(), make_grads(steps=1)[0]

  def step(lr):
    tx = gradtx.selective_transform(gradtx.sgd(lr, momentum=0.9), freeze_mask=MASK)
    state = tx.init(params)
    u, state = tx.update(g, state, params)
    return tx.update(g, state, params)[0]

  lrs = jnp.asarray([0.1, 0.01])
  batched = jax.vmap(step)(lrs)
  for i, lr in enumerate([0.1, 0.01]):
    for x, y in zip(jax.tree.leaves(batched), jax.tree.leaves(step(lr))):
      np.testing.assert_allclose(x[i], y, rtol=1e-6)


def test_types_are_optax_types():
  assert isinstance(gradtx.freeze(True), gradtx.GradientTransformationExtraArgs)
  assert type(gradtx.freeze(True)).__name__ == type(optax.transforms.freeze(True)).__name__
  tx = gradtx.selective_transform(gradtx.sgd(0.1), freeze_mask=True)
  assert isinstance(tx, gradtx.GradientTransformationExtraArgs)
  assert gradtx.transforms.freeze is gradtx.freeze
  assert gradtx.transforms.selective_transform is gradtx.selective_transform


def test_bad_input_names_the_argument():
  with pytest.raises(TypeError, match=r"gradtx\.freeze: mask"):
    gradtx.freeze(None)
  with pytest.raises(TypeError, match=r"gradtx\.freeze: mask must be a bool or a pytree"):
    gradtx.freeze({"a": 1.0})
  with pytest.raises(TypeError, match=r"selective_transform: optimizer"):
    gradtx.selective_transform(gradtx.adam, freeze_mask=True)
  with pytest.raises(TypeError, match="freeze_mask"):
    gradtx.selective_transform(gradtx.adam(0.1), freeze_mask={"a": "yes"})
  with pytest.raises(TypeError, match="freeze_mask"):
    gradtx.selective_transform(gradtx.adam(0.1), freeze_mask=jnp.ones(2, bool))
  with pytest.raises(TypeError):  # freeze_mask is keyword-only, as in optax
    gradtx.selective_transform(gradtx.adam(0.1), True)  # pylint: disable=too-many-function-args
  tx = gradtx.selective_transform(gradtx.adam(0.1), freeze_mask=lambda p: {"a": 0, "b": 1})
  with pytest.raises(TypeError, match=r"freeze_mask\(params\)"):
    tx.init(make_params())
