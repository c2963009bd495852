"""Tests of gradtx/combine.py's `named_chain` and `partition` (also `multi_transform`; `chain` is
covered in test_core.py): optax parity, extra arguments, flax nnx, and errors."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import MultiTransformState, multi_transform
from gradtx.combine import named_chain

PARAMS = {"a": (jnp.ones(3), jnp.ones((2, 5))),
          "b": {"c": jnp.asarray(1.0), "d": jnp.ones((4, 1, 3))}}
STEPS = 10


def _grads(steps=STEPS, seed=0):
  rng = np.random.default_rng(seed)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), PARAMS)
          for _ in range(steps)]


def _run(tx, grads, jit=True, **extra):
  params, state = PARAMS, tx.init(PARAMS)
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, params, **extra)
    params = optax.apply_updates(params, u)
    out.append(u)
  return out, state


def _assert_trees_close(a, b, what=""):
  assert jax.tree.structure(a) == jax.tree.structure(b), what
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                               rtol=1e-6, atol=1e-7, err_msg=what)


def _labels(params):
  """'a' for the leaves under key 'a', 'b' for the others (works on any params tree)."""
  return jax.tree_util.tree_map_with_path(lambda path, _: path[0].key, params)


# --- named_chain ---------------------------------------------------------------------------------


def test_named_chain_matches_optax():
  ours = named_chain(("clip", gradtx.clip_by_global_norm(1.0)), ("adam", gradtx.scale_by_adam()),
                     ("lr", gradtx.scale_by_learning_rate(0.01)))
  theirs = optax.named_chain(("clip", optax.clip_by_global_norm(1.0)),
                             ("adam", optax.scale_by_adam()),
                             ("lr", optax.scale_by_learning_rate(0.01)))
  grads = _grads()
  got, state = _run(ours, grads)
  want, ostate = _run(theirs, grads)
  for step, (u, w) in enumerate(zip(got, want)):
    _assert_trees_close(u, w, f"step {step}")
  assert type(state) is dict  # a plain dict (optax: OrderedDict), which flax.serialization handles
  assert set(state) == set(ostate) == {"clip", "adam", "lr"}
  np.testing.assert_array_equal(state["adam"].count, ostate["adam"].count)
  _assert_trees_close(state["adam"].mu, ostate["adam"].mu, "mu")
  _assert_trees_close(state["adam"].nu, ostate["adam"].nu, "nu")


def test_named_chain_eager_equals_jit_and_state_is_stable():
  tx = named_chain(("trace", gradtx.trace(0.9)), ("sgd", gradtx.sgd(0.1)))
  grads = _grads(steps=3)
  eager, s1 = _run(tx, grads, jit=False)
  jitted, s2 = _run(tx, grads)
  for a, b in zip(eager, jitted):
    _assert_trees_close(a, b)
  assert jax.tree.structure(s1) == jax.tree.structure(s2) == jax.tree.structure(tx.init(PARAMS))


def test_named_chain_forwards_extra_args_to_members_that_accept_them():
  # optax.scale's update takes no **kwargs: it is called without `value`.
  tx = named_chain(("optax", optax.scale(1.0)),
                   ("plateau", gradtx.reduce_on_plateau(factor=0.5, patience=1)))
  state = tx.init(PARAMS)
  g = _grads(steps=1)[0]
  for loss in (1.0, 2.0):
    u, state = tx.update(g, state, PARAMS, value=jnp.asarray(loss))
  _assert_trees_close(u, jax.tree.map(lambda x: 0.5 * x, g))
  assert float(state["plateau"].scale) == 0.5


def test_named_chain_in_optax_chain():
  tx = optax.chain(named_chain(("s", gradtx.scale(2.0))), optax.scale(-1.0))
  u, _ = tx.update(PARAMS, tx.init(PARAMS))
  _assert_trees_close(u, jax.tree.map(lambda x: -2.0 * x, PARAMS))


def test_named_chain_duplicate_names_raise():
  with pytest.raises(ValueError, match=r"names must be unique.*\['a'\]"):
    named_chain(("a", gradtx.scale(1.0)), ("b", gradtx.scale(1.0)), ("a", gradtx.trace(0.9)))


def test_named_chain_bad_arguments_raise():
  with pytest.raises(TypeError, match="argument 0 must be a \\(name, transformation\\) pair"):
    named_chain(gradtx.scale(1.0))
  with pytest.raises(TypeError, match="name of argument 0 must be a str"):
    named_chain((0, gradtx.scale(1.0)))
  with pytest.raises(TypeError, match="transformation named 'adam'"):
    named_chain(("adam", gradtx.adam))


def test_named_chain_wrong_state_raises():
  tx = named_chain(("a", gradtx.scale(1.0)), ("b", gradtx.scale(1.0)))
  other = named_chain(("a", gradtx.scale(1.0)))
  with pytest.raises(ValueError, match="state must be the dict with keys"):
    tx.update(PARAMS, other.init(PARAMS))


# --- multi_transform -----------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [_labels, {"a": "a", "b": "b"},
                                    {"a": ("a", "b"), "b": {"c": "b", "d": "a"}}],
                         ids=["callable", "prefix", "full"])
def test_multi_transform_matches_optax(labels):
  ours = multi_transform({"a": gradtx.sgd(0.1), "b": gradtx.adam(0.01)}, labels)
  theirs = optax.multi_transform({"a": optax.sgd(0.1), "b": optax.adam(0.01)}, labels)
  grads = _grads()
  got, state = _run(ours, grads)
  want, ostate = _run(theirs, grads)
  for step, (u, w) in enumerate(zip(got, want)):
    _assert_trees_close(u, w, f"step {step}")
  assert isinstance(state, MultiTransformState) and set(state.inner_states) == {"a", "b"}
  for label in ("a", "b"):
    assert type(state.inner_states[label]).__name__ == "MaskedState"
    assert type(ostate.inner_states[label]).__name__ == "MaskedState"
  # gradtx's scale_by_learning_rate keeps a count (optax's constant one is stateless), so compare
  # the same-named fields of the adam member, MaskedNode placeholders included.
  adam, oadam = state.inner_states["b"].inner_state[0], ostate.inner_states["b"].inner_state[0]
  np.testing.assert_array_equal(adam.count, oadam.count)
  for field in ("mu", "nu"):
    got_f, want_f = getattr(adam, field), getattr(oadam, field)
    is_node = lambda x: type(x).__name__ == "MaskedNode"
    assert (jax.tree.map(is_node, got_f, is_leaf=is_node)
            == jax.tree.map(is_node, want_f, is_leaf=is_node))
    np.testing.assert_allclose(np.concatenate([np.ravel(x) for x in jax.tree.leaves(got_f)]),
                               np.concatenate([np.ravel(x) for x in jax.tree.leaves(want_f)]),
                               rtol=1e-6, atol=1e-7, err_msg=field)


def test_multi_transform_members_see_only_their_leaves():
  tx = multi_transform({"a": gradtx.adam(0.01), "b": gradtx.trace(0.9)}, _labels)
  state = tx.init(PARAMS)
  mu_a = state.inner_states["a"].inner_state[0].mu
  assert isinstance(mu_a["b"]["c"], gradtx.MaskedNode)
  assert isinstance(mu_a["b"]["d"], gradtx.MaskedNode)
  assert mu_a["a"][1].shape == (2, 5)
  trace_b = state.inner_states["b"].inner_state.trace
  assert isinstance(trace_b["a"][0], gradtx.MaskedNode) and trace_b["b"]["d"].shape == (4, 1, 3)


def test_multi_transform_unused_label_and_extra_args():
  # 'unused' labels no leaf; the plateau member gets `value`, optax.scale (no **kwargs) does not.
  tx = multi_transform({"a": optax.scale(-1.0),
                        "b": gradtx.reduce_on_plateau(factor=0.5, patience=1),
                        "unused": gradtx.trace(0.9)}, _labels)
  state = tx.init(PARAMS)
  g = _grads(steps=1)[0]
  step = jax.jit(tx.update)
  for loss in (1.0, 2.0):
    u, state = step(g, state, PARAMS, value=jnp.asarray(loss))
  _assert_trees_close(u["a"], jax.tree.map(lambda x: -x, g["a"]))
  _assert_trees_close(u["b"], jax.tree.map(lambda x: 0.5 * x, g["b"]))
  assert jax.tree.leaves(state.inner_states["unused"].inner_state.trace) == []


def test_multi_transform_no_weight_decay_on_biases():
  """With zero gradients only weight decay moves the params: kernels move, biases do not."""
  params = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}}
  labels = lambda p: jax.tree_util.tree_map_with_path(
      lambda path, _: "no_decay" if path[-1].key == "bias" else "decay", p)
  tx = multi_transform({"decay": gradtx.adamw(0.1, weight_decay=0.5),
                        "no_decay": gradtx.adam(0.1)}, labels)
  u, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  np.testing.assert_allclose(u["dense"]["kernel"], -0.1 * 0.5 * np.ones((3, 2)), rtol=1e-6)
  np.testing.assert_array_equal(u["dense"]["bias"], np.zeros(2))


def test_multi_transform_flax_nnx_biases_without_weight_decay():
  nnx = pytest.importorskip("flax.nnx")

  class MLP(nnx.Module):
    def __init__(self, rngs):
      self.hidden = nnx.Linear(3, 8, rngs=rngs)
      self.out = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):
      return self.out(jax.nn.tanh(self.hidden(x)))

  def labels(params):  # by path name; init sees Variable-wrapped params, update raw arrays
    names = lambda path: {getattr(k, "key", None) for k in path}
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "no_decay" if "bias" in names(path) else "decay", params)

  model = MLP(nnx.Rngs(0))
  tx = multi_transform({"decay": gradtx.adamw(1e-2, weight_decay=0.1),
                        "no_decay": gradtx.adam(1e-2)}, labels)
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  decay_mu = opt.opt_state.inner_states["decay"].inner_state[0].mu
  assert isinstance(decay_mu["hidden"]["kernel"], nnx.Variable)
  assert decay_mu["hidden"]["kernel"].shape == (3, 8)
  assert isinstance(decay_mu["hidden"]["bias"].get_value(), gradtx.MaskedNode)

  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])
  loss_fn = lambda m: jnp.mean((m(x) - y) ** 2)

  @nnx.jit
  def step(m, o):
    loss, grads = nnx.value_and_grad(loss_fn)(m)
    o.update(m, grads)
    return loss

  first = float(step(model, opt))
  for _ in range(30):
    last = float(step(model, opt))
  assert np.isfinite(last) and last < first, f"{first} -> {last}"


def test_multi_transform_missing_label_raises():
  with pytest.raises(ValueError, match=r"param_labels has labels with no entry in transforms: "
                                       r"\['c'\]"):
    multi_transform({"a": gradtx.sgd(0.1), "b": gradtx.sgd(0.1)}, {"a": "a", "b": "c"})
  tx = multi_transform({"a": gradtx.sgd(0.1)}, _labels)  # callable: checked in init and update
  with pytest.raises(ValueError, match=r"param_labels .* transforms: \['b'\]"):
    tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"param_labels .* transforms: \['b'\]"):
    tx.update(PARAMS, MultiTransformState({"a": gradtx.MaskedState(())}), PARAMS)


def test_multi_transform_bad_arguments_raise():
  with pytest.raises(TypeError, match="transforms must be a dict"):
    multi_transform([gradtx.sgd(0.1)], {"a": 0, "b": 0})
  with pytest.raises(TypeError, match=r"transforms\['a'\] must be a GradientTransformation"):
    multi_transform({"a": gradtx.sgd}, {"a": "a", "b": "a"})
  with pytest.raises(TypeError, match="param_labels must be"):
    multi_transform({"a": gradtx.sgd(0.1)}, None)
  with pytest.raises(TypeError, match="mask_compatible_extra_args"):
    multi_transform({"a": gradtx.sgd(0.1)}, "a", mask_compatible_extra_args=1)


def test_multi_transform_wrong_state_and_structure_raise():
  tx = multi_transform({"a": gradtx.sgd(0.1), "b": gradtx.adam(0.01)}, {"a": "a", "b": "b"})
  with pytest.raises(ValueError, match="state must be the PartitionState"):
    tx.update(PARAMS, gradtx.EmptyState())
  with pytest.raises(ValueError, match="structure"):
    tx.update({"a": PARAMS["a"]}, tx.init(PARAMS))


# --- partition (optax's newer name; multi_transform is the same function) -----------------------


def describe(tree):
  """A normalised description of a state: class names, field names, nesting, leaf shape/dtype."""
  if isinstance(tree, tuple) and hasattr(tree, "_fields"):
    return (type(tree).__name__, tuple((f, describe(getattr(tree, f))) for f in tree._fields))
  if isinstance(tree, (tuple, list)):
    return (type(tree).__name__, tuple(describe(x) for x in tree))
  if isinstance(tree, dict):  # optax's OrderedDict and gradtx's dict alike
    return ("dict", tuple(sorted((k, describe(v)) for k, v in tree.items())))
  return (tuple(np.shape(tree)), str(jnp.result_type(tree)))


def _pair(lib):
  """The same partition in either library: Adam on 'a', an EMA on 'b', an unused label."""
  return lib.transforms.partition(
      {"a": lib.chain(lib.scale_by_adam(), lib.scale(-0.01)),
       "b": lib.chain(lib.ema(0.9), lib.scale(-0.1)),
       "unused": lib.scale(3.0)}, _labels)


def test_partition_equals_optax_over_20_steps_with_the_same_state():
  grads = _grads(steps=20)
  got, state = _run(_pair(gradtx), grads)
  want, ostate = _run(_pair(optax), grads)
  for step, (u, w) in enumerate(zip(got, want)):
    for x, y in zip(jax.tree.leaves(u), jax.tree.leaves(w)):  # same arithmetic: bit-identical
      np.testing.assert_array_equal(x, y, err_msg=f"step {step}")
  assert describe(state) == describe(ostate)
  assert type(state).__name__ == "PartitionState"
  for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(ostate)):
    np.testing.assert_array_equal(x, y)


def test_partition_old_names_are_the_same_objects():
  assert optax.multi_transform is optax.transforms.partition  # what gradtx mirrors
  assert optax.MultiTransformState is optax.transforms.PartitionState
  assert gradtx.multi_transform is gradtx.partition is gradtx.transforms.partition
  assert gradtx.transforms.multi_transform is gradtx.partition
  assert gradtx.MultiTransformState is gradtx.PartitionState is gradtx.transforms.PartitionState
  assert gradtx.transforms.MultiTransformState is gradtx.PartitionState


def test_combinators_return_optax_types():
  ours = [gradtx.chain(gradtx.scale(1.0)), gradtx.named_chain(("s", gradtx.scale(1.0))),
          gradtx.partition({"a": gradtx.scale(1.0)}, "a")]
  theirs = [optax.chain(optax.scale(1.0)), optax.named_chain(("s", optax.scale(1.0))),
            optax.transforms.partition({"a": optax.scale(1.0)}, "a")]
  assert [type(t).__name__ for t in ours] == [type(t).__name__ for t in theirs]
  assert all(isinstance(t, gradtx.GradientTransformationExtraArgs) for t in ours)


def test_partition_errors_name_partition_and_the_argument():
  with pytest.raises(TypeError, match=r"gradtx\.partition: transforms must be a dict"):
    gradtx.partition([gradtx.sgd(0.1)], "a")
  with pytest.raises(ValueError, match=r"gradtx\.partition: param_labels has labels"):
    gradtx.partition({"a": gradtx.sgd(0.1)}, {"a": "a", "b": "b"})
  with pytest.raises(TypeError, match="mask_compatible_extra_args"):
    gradtx.partition({"a": gradtx.sgd(0.1)}, "a", mask_compatible_extra_args="yes")
