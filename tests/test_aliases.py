"""Every alias: built inside a function vmapped over its learning rate, in flax nnx.Optimizer and
linen TrainState, and the alias-level options (adadelta's default descends, sgdw = sgd at zero
decay, nadam's two forms, bad input)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import first_order_aliases
from gradtx import optimizers as aliases

ALIASES = first_order_aliases(aliases.__all__)  # second-order ones: trees.NEEDS_FUNCTIONS


# Aliases whose update needs the loss as `value=` (optax's polyak_sgd); the others get none.
NEEDS_VALUE = {"polyak_sgd"}


def quadratic_loss(p):
  return 0.5 * jnp.sum(p["w"] ** 2) + jnp.sum(p["b"] ** 2)


def quadratic_grads(p):
  return jax.grad(quadratic_loss)(p)


def train(tx, steps=5, value=False):
  """`steps` updates on the quadratic; `value=True` passes the loss to `update` as `value=`."""
  p = {"w": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.asarray(0.3)}
  state = tx.init(p)
  for _ in range(steps):
    extra = dict(value=quadratic_loss(p)) if value else {}
    u, state = tx.update(quadratic_grads(p), state, p, **extra)
    p = gradtx.apply_updates(p, u)
  return p


@pytest.mark.parametrize("name", ALIASES)
def test_alias_built_inside_vmap_over_learning_rate(name):
  factory = getattr(gradtx, name)
  lrs = jnp.asarray([1e-3, 1e-2, 5e-2])
  value = name in NEEDS_VALUE
  batched = jax.jit(jax.vmap(lambda lr: train(factory(lr), value=value)))(lrs)
  for i, lr in enumerate([1e-3, 1e-2, 5e-2]):
    single = train(factory(lr), value=value)
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
      np.testing.assert_allclose(a[i], b, rtol=2e-5, atol=1e-6, err_msg=f"{name} lr={lr}")


@pytest.mark.parametrize("name", ALIASES)
def test_alias_descends_and_rejects_vector_learning_rate(name):
  factory = getattr(gradtx, name)
  p0 = {"w": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.asarray(0.3)}
  loss = lambda p: 0.5 * jnp.sum(p["w"] ** 2) + jnp.sum(p["b"] ** 2)
  lr = 1.0 if name == "adadelta" else 1e-2
  p = jax.jit(lambda: train(factory(lr), steps=10, value=name in NEEDS_VALUE))()  # unrolled
  assert float(loss(p)) < float(loss(p0)), f"{name} did not descend"
  with pytest.raises(ValueError, match="learning_rate.*scalar.*vmap"):
    factory(jnp.asarray([1e-3, 1e-2]))
  with pytest.raises(ValueError, match="learning_rate"):
    factory(float("nan"))


def test_adadelta_default_descends_and_equals_optax_adadelta_one():
  p0 = {"w": jnp.asarray([1.0, -2.0, 0.5]), "b": jnp.asarray(0.3)}
  ours = train(gradtx.adadelta(), steps=20)
  theirs = train(optax.adadelta(1.0), steps=20)
  ascends = train(optax.adadelta(), steps=20)  # optax 0.2.8's default: no sign flip
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  assert float(jnp.abs(ours["w"]).sum()) < float(jnp.abs(p0["w"]).sum())
  assert float(jnp.abs(ascends["w"]).sum()) > float(jnp.abs(p0["w"]).sum())


def test_sgdw_without_decay_is_sgd_with_momentum():
  for a, b in zip(jax.tree.leaves(train(gradtx.sgdw(0.1, 0.9, weight_decay=0.0))),
                  jax.tree.leaves(train(gradtx.sgd(0.1, 0.9)))):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_nadam_forms_differ_and_optax_form_is_default():
  a, b = train(gradtx.nadam(0.05)), train(optax.nadam(0.05))
  c = train(gradtx.nadam(0.05, momentum_decay=0.004))
  np.testing.assert_allclose(a["w"], b["w"], rtol=1e-6)
  assert not np.allclose(a["w"], c["w"], rtol=1e-4)


def test_alias_option_errors():
  with pytest.raises(ValueError, match="nesterov"):
    gradtx.sgd(0.1, nesterov=True)
  with pytest.raises(ValueError, match="nesterov"):
    gradtx.rmsprop(0.1, nesterov=True)
  for alias in (gradtx.sgd, gradtx.sgdw, gradtx.rmsprop):
    with pytest.raises(ValueError, match=f"{alias.__name__}: momentum"):
      alias(0.1, momentum=1.5)
  with pytest.raises(ValueError, match="weight_decay"):
    gradtx.adamw(0.1, weight_decay=-1.0)
  with pytest.raises(ValueError, match="b1"):
    gradtx.adam(0.1, b1=1.5)
  with pytest.raises(ValueError, match="eps"):
    gradtx.adam(0.1, eps=-1.0)
  with pytest.raises(TypeError, match="learning_rate"):
    gradtx.adam("0.1")


def test_alias_signatures_keep_optax_positional_arguments():
  """`optax.X(a, b, c)` called positionally means the same as `gradtx.X(a, b, c)`."""
  checked = 0
  for name in ALIASES:
    theirs = getattr(optax, name, None)
    if theirs is None:
      continue
    positional = lambda f: [p.name for p in inspect.signature(f).parameters.values()
                            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    ours, their = positional(getattr(gradtx, name)), positional(theirs)
    assert ours[: len(their)] == their, f"{name}: {ours} vs optax {their}"
    checked += 1
  assert checked >= 12


def test_alias_signatures_accept_every_optax_keyword():
  """Every argument name optax's alias accepts (`nadam(nesterov=)`, `noisy_sgd(seed=)`, ...) is
  accepted by gradtx's, so optax code calling with keywords runs unchanged."""
  for name in ALIASES:
    theirs = getattr(optax, name, None)
    if theirs is None:
      continue
    missing = set(inspect.signature(theirs).parameters) - set(
        inspect.signature(getattr(gradtx, name)).parameters)
    assert not missing, f"gradtx.{name} lacks optax's arguments {sorted(missing)}"


@pytest.mark.parametrize("nesterov", [True, False])
def test_nadam_nesterov_keyword_equals_optax(nesterov):
  params = {"w": jnp.asarray([1.0, -2.0, 3.0]), "b": jnp.asarray(0.5)}
  for name in ("nadam", "nadamw"):
    runs = []
    for lib in (gradtx, optax):
      tx = getattr(lib, name)(0.1, nesterov=nesterov)

      def body(_, carry, tx=tx, lib=lib):
        p, s = carry
        u, s = tx.update(quadratic_grads(p), s, p)
        return lib.apply_updates(p, u), s

      runs.append(jax.jit(lambda p, tx=tx, body=body: jax.lax.fori_loop(
          0, 20, body, (p, tx.init(p)))[0])(params))
    jax.tree.map(np.testing.assert_array_equal, *runs)
  with pytest.raises(ValueError, match="nesterov"):
    gradtx.nadam(0.1, momentum_decay=0.004, nesterov=False)


@pytest.mark.parametrize("name", ALIASES)
def test_alias_trains_flax_nnx_model(name):
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  lr = 1.0 if name == "adadelta" else 1e-2
  opt = nnx.Optimizer(model, getattr(gradtx, name)(lr), wrt=nnx.Param)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])
  loss_fn = lambda m: jnp.mean((m(x) - y) ** 2)

  @nnx.jit
  def step(m, o):
    loss, grads = nnx.value_and_grad(loss_fn)(m)
    o.update(m, grads, **(dict(value=loss) if name in NEEDS_VALUE else {}))
    return loss

  first = float(step(model, opt))
  for _ in range(30):
    last = float(step(model, opt))
  assert np.isfinite(last) and last < first, f"{name}: {first} -> {last}"


def test_adamw_nnx_moments_keep_variable_metadata():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, gradtx.adamw(1e-2, weight_decay=1e-3), wrt=nnx.Param)
  mu = opt.opt_state[0].mu
  kernel = mu["kernel"]
  assert isinstance(kernel, nnx.Variable) and kernel.shape == (3, 2)


def test_linen_train_state_with_adamw():
  train_state = pytest.importorskip("flax.training.train_state")
  p = {"w": jnp.asarray([2.0, -3.0])}
  loss = lambda p: jnp.sum(p["w"] ** 2)
  state = train_state.TrainState.create(apply_fn=None, params=p, tx=gradtx.adamw(0.1))
  step = jax.jit(lambda s: s.apply_gradients(grads=jax.grad(loss)(s.params)))
  for _ in range(100):
    state = step(state)
  assert float(loss(state.params)) < 1e-2


def test_learning_rate_none_is_the_unit_step_and_descends():
  """optax's `scale_by_learning_rate(None)` / `adadelta(None)` are accepted; gradtx's meaning is
  the unit step -g (Zeiler's ADADELTA), never optax's sign-less ascent. The state's structure is
  optax's (EmptyState either way)."""
  g = {"w": jnp.asarray([1.0, -2.0]), "b": jnp.asarray(0.5)}
  tx = gradtx.scale_by_learning_rate()
  u, state = tx.update(g, tx.init(g))
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, -b), u, g)
  assert state == gradtx.EmptyState() and type(
      optax.scale_by_learning_rate(None).init(g)).__name__ == "EmptyState"
  from state_audit import describe  # class names, fields, shapes, dtypes
  for lr in (None, 1.0):
    assert describe(gradtx.adadelta(lr).init(g)) == describe(optax.adadelta(lr).init(g))
  ref = gradtx.adadelta(1.0)
  s1, s2 = gradtx.adadelta(None).init(g), ref.init(g)
  for _ in range(3):
    u1, s1 = gradtx.adadelta(None).update(g, s1, g)
    u2, s2 = ref.update(g, s2, g)
    jax.tree.map(np.testing.assert_array_equal, u1, u2)
  assert float(train(gradtx.adadelta(None), steps=20)["w"][1]) > -2.0  # descends towards 0
