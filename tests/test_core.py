"""The contract: GradientTransformation, chain, identity, set_to_zero, stateless, apply_updates,
and interoperation with optax.chain, flax nnx.Optimizer and flax linen's TrainState."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx


def params():
  return {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}


def test_gradient_transformation_is_optax_shaped_namedtuple():
  tx = gradtx.trace(0.9)
  assert isinstance(tx, gradtx.GradientTransformation)
  assert tx._fields == ("init", "update")
  assert tx._fields == optax.GradientTransformation._fields
  # no arrays inside the transformation object (flax nnx keeps it static)
  assert jax.tree.leaves(tx, is_leaf=callable) == [tx.init, tx.update]


def test_chain_composes_in_order_and_state_is_tuple():
  tx = gradtx.chain(gradtx.scale(2.0), gradtx.trace(0.5), gradtx.scale_by_learning_rate(0.1))
  state = tx.init(params())
  assert isinstance(state, tuple) and len(state) == 3
  u, state = tx.update(jax.tree.map(jnp.ones_like, params()), state)
  np.testing.assert_allclose(u["b"], -0.2)
  u, state = tx.update(jax.tree.map(jnp.ones_like, params()), state)
  np.testing.assert_allclose(u["b"], -0.1 * (2.0 + 0.5 * 2.0))


def test_chain_rejects_non_transformations():
  with pytest.raises(TypeError, match="argument 1"):
    gradtx.chain(gradtx.scale(1.0), gradtx.trace)


def test_chain_rejects_wrong_state():
  tx = gradtx.chain(gradtx.scale(1.0), gradtx.scale(2.0))
  with pytest.raises(ValueError, match="state"):
    tx.update(params(), (gradtx.EmptyState(),))


def test_identity_set_to_zero_stateless():
  p = params()
  u, _ = gradtx.identity().update(p, gradtx.identity().init(p))
  assert u is p
  z, _ = gradtx.set_to_zero().update(p, gradtx.EmptyState())
  assert all(float(jnp.abs(x).sum()) == 0.0 for x in jax.tree.leaves(z))
  tx = gradtx.stateless(lambda u, p: jax.tree.map(lambda a, b: a + b, u, p))
  out, state = tx.update(p, tx.init(p), p)
  np.testing.assert_allclose(out["w"], 2 * p["w"])
  assert state == gradtx.EmptyState()
  with pytest.raises(TypeError, match="f must be callable"):
    gradtx.stateless(3)


def test_apply_updates_keeps_dtype_and_none():
  p = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(2)}
  u = {"a": jnp.full(2, 0.5, jnp.float32), "b": None}
  out = gradtx.apply_updates(p, u)
  assert out["a"].dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out["a"], np.float32), 1.5)
  assert out["b"] is p["b"]


def test_none_params_take_no_update_as_optax():
  """optax's own unit tests: `apply_updates(None, x)` and `incremental_update(None, x, 1)` are
  None; a None param leaf stays None whatever its update subtree."""
  x = jnp.asarray([1.0, 2.0, 3.0])
  assert gradtx.apply_updates(None, x) is None and optax.apply_updates(None, x) is None
  assert gradtx.incremental_update(None, x, 1) is None
  params, updates = {"a": None, "b": x}, {"a": (x, x), "b": x}
  ours, theirs = gradtx.apply_updates(params, updates), optax.apply_updates(params, updates)
  assert ours["a"] is None and theirs["a"] is None
  np.testing.assert_array_equal(ours["b"], theirs["b"])
  np.testing.assert_array_equal(jax.jit(gradtx.apply_updates)(params, updates)["b"], theirs["b"])


def test_apply_updates_structure_mismatch_names_both():
  with pytest.raises(ValueError, match="updates does not match params"):
    gradtx.apply_updates({"a": jnp.ones(1), "b": jnp.ones(1)}, {"a": jnp.ones(1)})


def test_safe_increment_saturates():
  imax = jnp.iinfo(jnp.int32).max
  assert int(gradtx.safe_increment(jnp.asarray(imax, jnp.int32))) == imax
  assert int(gradtx.safe_increment(jnp.asarray(5, jnp.int32))) == 6
  assert gradtx.safe_increment(jnp.asarray(5, jnp.int32)).dtype == jnp.int32


def test_none_updates_pass_through_trace():
  p = {"a": jnp.ones(2), "b": jnp.ones(2)}
  tx = gradtx.trace(0.9)
  s = tx.init(p)
  u, s2 = tx.update({"a": jnp.ones(2), "b": None}, s)
  assert u["b"] is None
  np.testing.assert_allclose(s2.trace["b"], s.trace["b"])


def test_gradtx_inside_optax_chain_and_optax_inside_gradtx_chain():
  p = params()
  g = jax.tree.map(lambda x: 0.1 * x + 1.0, p)
  ours_in_theirs = optax.chain(gradtx.trace(0.9), optax.scale(-0.1))
  theirs_in_ours = gradtx.chain(optax.trace(0.9), gradtx.scale(-0.1))
  reference = optax.sgd(0.1, momentum=0.9)
  s1, s2, s3 = ours_in_theirs.init(p), theirs_in_ours.init(p), reference.init(p)
  for _ in range(5):
    u1, s1 = jax.jit(ours_in_theirs.update)(g, s1, p)
    u2, s2 = jax.jit(theirs_in_ours.update)(g, s2, p, value=jnp.asarray(1.0))  # extra args dropped
    u3, s3 = reference.update(g, s3, p)
    for a, b, c in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), jax.tree.leaves(u3)):
      np.testing.assert_allclose(a, c, rtol=1e-6)
      np.testing.assert_allclose(b, c, rtol=1e-6)


def test_flax_linen_train_state():
  train_state = pytest.importorskip("flax.training.train_state")
  p = {"w": jnp.asarray([2.0, -3.0])}
  loss = lambda p: jnp.sum(p["w"] ** 2)
  state = train_state.TrainState.create(
      apply_fn=None, params=p, tx=gradtx.chain(gradtx.trace(0.5), gradtx.scale_by_learning_rate(0.1)))

  @jax.jit
  def step(state):
    return state.apply_gradients(grads=jax.grad(loss)(state.params))

  l0 = float(loss(state.params))
  for _ in range(20):
    state = step(state)
  assert float(loss(state.params)) < 1e-2 * l0
  assert int(state.step) == 20


def test_flax_nnx_optimizer():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  tx = gradtx.chain(gradtx.trace(0.9), gradtx.scale_by_learning_rate(0.05))
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])

  def loss_fn(m):
    return jnp.mean((m(x) - y) ** 2)

  @nnx.jit
  def step(m, o):
    loss, grads = nnx.value_and_grad(loss_fn)(m)
    o.update(m, grads)
    return loss

  first = float(step(model, opt))
  for _ in range(50):
    last = float(step(model, opt))
  assert last < 0.1 * first


# --- GradientTransformationExtraArgs and with_extra_args_support ----------------------------------


def _plain(lib):
  """A transformation whose update takes no extra arguments (it would raise on any)."""
  return lib.GradientTransformation(lambda p: lib.EmptyState(),
                                    lambda u, s, p=None: (jax.tree.map(lambda x: 2 * x, u), s))


def test_extra_args_class_relations_equal_optax():
  for lib in (gradtx, optax):
    tx = lib.GradientTransformationExtraArgs(lambda p: (), lambda u, s, p=None, **e: (u, s))
    assert isinstance(tx, lib.GradientTransformation) and isinstance(tx, tuple)
    assert issubclass(lib.GradientTransformationExtraArgs, lib.GradientTransformation)
    assert not isinstance(_plain(lib), lib.GradientTransformationExtraArgs)
    assert tx._fields == ("init", "update")
    assert lib.with_extra_args_support(tx) is tx
    wrapped = lib.with_extra_args_support(_plain(lib))
    assert type(wrapped) is lib.GradientTransformationExtraArgs
    u, _ = wrapped.update(jnp.ones(2), wrapped.init(None), None, value=1.0)
    np.testing.assert_array_equal(u, 2 * np.ones(2))
  # a NamedTuple of two functions, hashable, no arrays inside (flax nnx keeps it static)
  tx = gradtx.adam(1e-3)
  assert jax.tree.leaves(tx, is_leaf=callable) == [tx.init, tx.update] and hash(tx) == hash(tx)


def test_factory_types_equal_optax():
  def make(lib):
    return [lib.adam(1e-3), lib.sgd(0.1), lib.chain(lib.scale(1.0)), lib.scale(1.0),
            lib.identity(), lib.set_to_zero(), lib.masked(lib.scale(1.0), True),
            lib.named_chain(("s", lib.scale(1.0))), lib.partition({"a": lib.scale(1.0)}, "a"),
            lib.conditionally_transform(lib.scale(1.0), lambda step: step > 0),
            lib.with_extra_args_support(lib.scale(1.0)), lib.monitor({"n": lambda u: 0.0}),
            lib.apply_if_finite(lib.sgd(0.1), 2), lib.inject_hyperparams(lib.sgd)(0.1),
            lib.lookahead(lib.sgd(0.1), 2, 0.5), lib.add_noise(0.1, 0.5, 0), lib.trace(0.9),
            lib.scale_by_adam(), lib.clip_by_global_norm(1.0), lib.add_decayed_weights(0.1),
            lib.flatten(lib.sgd(0.1)), lib.MultiSteps(lib.sgd(0.1), 2).gradient_transformation()]
  for ours, theirs in zip(make(gradtx), make(optax)):
    assert type(ours).__name__ == type(theirs).__name__, theirs
    assert (isinstance(ours, gradtx.GradientTransformationExtraArgs)
            == isinstance(theirs, optax.GradientTransformationExtraArgs))


def test_chain_gives_extra_args_only_to_members_that_take_them():
  seen = []

  def recording(u, s, p=None, **extra_args):
    seen.append(sorted(extra_args))
    return u, s

  ours = gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), recording)
  theirs = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), recording)
  tx = gradtx.chain(_plain(optax), ours, theirs, optax.scale(0.5))
  u, _ = tx.update(jnp.ones(2), tx.init(jnp.ones(2)), value=jnp.asarray(1.0))
  np.testing.assert_array_equal(u, np.ones(2))  # the plain members ran, without `value`
  assert seen == [["value"], ["value"]]
  nested = gradtx.chain(optax.chain(optax.scale(2.0)), gradtx.chain(ours))
  nested.update(jnp.ones(2), nested.init(jnp.ones(2)), value=1.0)
  assert seen[-1] == ["value"]


def test_with_extra_args_support_bad_input():
  with pytest.raises(TypeError, match=r"with_extra_args_support: tx must be"):
    gradtx.with_extra_args_support(gradtx.adam)
  assert isinstance(gradtx.TransformUpdateExtraArgsFn, type)
  assert gradtx.transforms.ConditionFn.__name__ == optax.transforms.ConditionFn.__name__


# --- periodic_update -----------------------------------------------------------------------------


def test_periodic_update_matches_optax_under_jit_and_vmap():
  new, old = params(), jax.tree.map(lambda x: -x, params())
  ours, theirs = jax.jit(gradtx.periodic_update), jax.jit(optax.periodic_update)
  for step in range(21):
    for period in (1, 3):
      got, want = ours(new, old, step, period), theirs(new, old, step, period)
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)
  steps = jnp.arange(6)
  batched = jax.vmap(lambda s: gradtx.periodic_update(new, old, s, 3))(steps)
  for i in range(6):
    np.testing.assert_array_equal(batched["w"][i], (new if i % 3 == 0 else old)["w"])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(steps=1, update_period=0), ValueError, "update_period"),
    (dict(steps=1, update_period=2.0), TypeError, "update_period"),
    (dict(steps=1.5, update_period=2), TypeError, "steps"),
    (dict(steps=-1, update_period=2), ValueError, "steps"),
])
def test_periodic_update_bad_input(kwargs, exc, match):
  with pytest.raises(exc, match=rf"periodic_update: {match}"):
    gradtx.periodic_update(params(), params(), **kwargs)
  with pytest.raises(ValueError, match="old_tensors"):
    gradtx.periodic_update(params(), {"w": jnp.ones(1)}, 1, 2)
