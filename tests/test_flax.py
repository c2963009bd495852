"""Flax integration beyond tests/test_aliases.py: linen's TrainState with every alias, and
parameter groups on an nnx model with LayerNorm (no weight decay on biases and norm scales)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from trees import first_order_aliases
from gradtx import optimizers as aliases

nnx = pytest.importorskip("flax.nnx")
train_state = pytest.importorskip("flax.training.train_state")
linen = pytest.importorskip("flax.linen")

ALIASES = first_order_aliases(aliases.__all__)  # second-order ones: trees.NEEDS_FUNCTIONS
X = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
Y = X @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])


# Aliases whose update needs an extra keyword argument (optax's polyak_sgd: the loss), which
# TrainState.apply_gradients cannot pass: it raises an error naming it, and the step calls
# tx.update itself.
UPDATE_NEEDS = {"polyak_sgd": "value"}


@pytest.mark.parametrize("name", ALIASES)
def test_linen_train_state_with_every_alias(name):
  model = linen.Dense(2)
  params = model.init(jax.random.key(0), X)
  lr = 1.0 if name == "adadelta" else 1e-2
  state = train_state.TrainState.create(apply_fn=model.apply, params=params,
                                        tx=getattr(gradtx, name)(lr))

  def loss_fn(p):
    return jnp.mean((state.apply_fn(p, X) - Y) ** 2)

  needs = UPDATE_NEEDS.get(name)

  @jax.jit
  def step(s):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean((s.apply_fn(p, X) - Y) ** 2))(s.params)
    if needs is None:
      return s.apply_gradients(grads=grads), loss
    updates, opt_state = s.tx.update(grads, s.opt_state, s.params, **{needs: loss})
    return s.replace(step=s.step + 1, params=gradtx.apply_updates(s.params, updates),
                     opt_state=opt_state), loss

  if needs is not None:
    with pytest.raises(ValueError, match=f"`{needs}`"):
      state.apply_gradients(grads=jax.tree.map(jnp.zeros_like, params))
  first = float(loss_fn(state.params))
  for _ in range(30):
    state, _ = step(state)
  last = float(loss_fn(state.params))
  assert int(state.step) == 30
  assert np.isfinite(last) and last < first, f"{name}: {first} -> {last}"
  assert jax.tree.structure(state.opt_state) == jax.tree.structure(state.tx.init(params))


class Block(nnx.Module):
  def __init__(self, rngs):
    self.dense = nnx.Linear(3, 8, rngs=rngs)
    self.norm = nnx.LayerNorm(8, rngs=rngs)
    self.out = nnx.Linear(8, 2, rngs=rngs)

  def __call__(self, x):
    return self.out(jax.nn.gelu(self.norm(self.dense(x))))


def decay_labels(params):
  """'no_decay' for biases and LayerNorm scales (one-dimensional leaves), 'decay' otherwise."""
  def label(path, leaf):
    names = {getattr(k, "key", None) for k in path}
    return "no_decay" if names & {"bias", "scale"} else "decay"
  return jax.tree_util.tree_map_with_path(label, params)


def test_nnx_param_groups_no_weight_decay_on_biases_and_layernorm_scales():
  model = Block(nnx.Rngs(0))
  tx = gradtx.multi_transform({"decay": gradtx.adamw(1e-2, weight_decay=0.5),
                               "no_decay": gradtx.adam(1e-2)}, decay_labels)
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))

  # A zero gradient isolates the decay: decayed leaves shrink by lr * wd, the others stay put.
  zero = jax.tree.map(jnp.zeros_like, before)
  opt.update(model, zero)
  after = nnx.state(model, nnx.Param)
  flat_before = dict(jax.tree_util.tree_flatten_with_path(before)[0])
  for path, new in jax.tree_util.tree_flatten_with_path(after)[0]:
    old = flat_before[path]
    names = {getattr(k, "key", None) for k in path}
    if names & {"bias", "scale"}:
      np.testing.assert_array_equal(new, old, err_msg=str(path))
    else:
      np.testing.assert_allclose(new, old * (1 - 1e-2 * 0.5), rtol=1e-6, err_msg=str(path))

  @nnx.jit
  def step(m, o):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(X) - Y) ** 2))(m)
    o.update(m, grads)
    return loss

  first = float(step(model, opt))
  for _ in range(40):
    last = float(step(model, opt))
  assert np.isfinite(last) and last < first


def test_nnx_optimizer_state_of_grouped_model_keeps_variable_metadata():
  model = Block(nnx.Rngs(0))
  tx = gradtx.multi_transform({"decay": gradtx.adamw(1e-2, weight_decay=0.1),
                               "no_decay": gradtx.adam(1e-2)}, decay_labels)
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  mu = opt.opt_state.inner_states["no_decay"].inner_state[0].mu
  assert isinstance(mu["norm"]["scale"], nnx.Variable) and mu["norm"]["scale"].shape == (8,)
  assert isinstance(mu["dense"]["kernel"].get_value(), gradtx.MaskedNode)
