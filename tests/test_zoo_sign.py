"""The sign slice of the optimizer zoo (issue 14): lion, sign_sgd, signum, rprop, optimistic
gradient descent / Adam, polyak_sgd, asgd and block coordinate descent. Optax parity over 20
jitted steps on the nested test tree, bit-identical (the arithmetic follows optax's order), the
deliberate rprop fix, torch.optim comparisons, inject_hyperparams, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from jaxprs import primitives_outside_cond
import reference as ref
from trees import STEPS, make_grads, make_params

PARAMS, GRADS = make_params(), make_grads()
VALUES = [jnp.asarray(3.0 / (1.0 + i) - 0.5, jnp.float32) for i in range(STEPS)]


def run(tx, value=False, params=PARAMS, grads=GRADS):
  """20 jitted steps; returns (updates per step, final state)."""
  step = jax.jit(tx.update)
  state, p, out = tx.init(params), params, []
  for i, g in enumerate(grads):
    u, state = step(g, state, p, **({"value": VALUES[i]} if value else {}))
    p = gradtx.apply_updates(p, u)
    out.append(u)
  return out, state


def assert_trees_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


OPTAX_PARITY = [
    ("lion", dict(learning_rate=0.01)),
    ("lion", dict(learning_rate=optax.linear_schedule(0.01, 0.001, 10), b1=0.8, b2=0.9,
                  weight_decay=0.1, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))),
    ("lion", dict(learning_rate=0.01, mu_dtype=jnp.bfloat16)),
    ("scale_by_lion", dict(mode="smooth", smooth_beta=3.0)),
    ("scale_by_lion", dict(mode="refined", b1=0.5)),
    ("sign_sgd", dict(learning_rate=0.1)),
    ("signum", dict(learning_rate=0.1, beta=0.5)),
    ("signum", dict(learning_rate=0.1, accumulator_dtype=jnp.bfloat16)),
    ("optimistic_gradient_descent", dict(learning_rate=0.1, alpha=0.5, beta=2.0)),
    ("optimistic_adam", dict(learning_rate=0.01)),
    ("optimistic_adam", dict(learning_rate=0.01, optimism=0.1, nesterov=False)),
    ("optimistic_adam_v2", dict(learning_rate=0.01, alpha=0.5, beta=0.2)),
    ("optimistic_adam_v2", dict(learning_rate=0.01, nesterov=False, mu_dtype=jnp.bfloat16)),
    ("polyak_sgd", dict()),
    ("polyak_sgd", dict(max_learning_rate=0.3, scaling=0.5, f_min=0.1, eps=0.01)),
    ("polyak_sgd", dict(variant="sps+")),
    ("scale_by_polyak", dict(f_min=-1.0)),
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name,kwargs", OPTAX_PARITY,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTAX_PARITY)])
def test_bit_identical_to_optax(name, kwargs):
  value = "polyak" in name
  ours, ours_state = run(getattr(gradtx, name)(**kwargs), value)
  theirs, theirs_state = run(getattr(optax, name)(**kwargs), value)
  assert_trees_equal(ours, theirs)
  assert_trees_equal(ours_state, theirs_state)
  # optax's state classes: same names and fields, leaf for leaf
  describe = lambda s: [type(x).__name__ for x in jax.tree.leaves(
      s, is_leaf=lambda x: isinstance(x, tuple) and hasattr(x, "_fields"))]
  assert describe(ours_state) == describe(theirs_state)


def test_rprop_is_optax_one_step_earlier_with_the_same_state():
  """optax 0.2.8 returns the previous step's update (optax#1725); gradtx the current one. The
  states are bit-identical, and optax's update at t + 1 is gradtx's at t (zeroed where the sign
  flips at t + 1)."""
  kw = dict(learning_rate=0.1, eta_minus=0.4, eta_plus=1.3, min_step_size=1e-3,
            max_step_size=0.5)
  tx, otx = gradtx.scale_by_rprop(**kw), optax.scale_by_rprop(**kw)
  s, os_ = tx.init(PARAMS), otx.init(PARAMS)
  step, ostep = jax.jit(tx.update), jax.jit(otx.update)
  prev = None
  for g in GRADS:
    u, s = step(g, s, PARAMS)
    ou, os_ = ostep(g, os_, PARAMS)
    assert_trees_equal(s, os_)
    if prev is None:
      assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(ou))
    else:
      want = jax.tree.map(lambda o, p: np.where(np.asarray(o) == 0, 0.0, np.asarray(p)), ou, prev)
      assert_trees_equal(ou, want)
    prev = u


def test_rprop_matches_torch():
  torch = pytest.importorskip("torch")
  p0 = np.asarray(PARAMS["b"]["d"]).ravel()
  tp = torch.nn.Parameter(torch.tensor(p0))
  opt = torch.optim.Rprop([tp], lr=0.05, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), foreach=False)
  tx = gradtx.rprop(0.05)
  p, s = jnp.asarray(p0), tx.init(jnp.asarray(p0))
  step = jax.jit(tx.update)
  for g in GRADS:
    g = np.asarray(g["b"]["d"]).ravel()
    tp.grad = torch.tensor(g)
    opt.step()
    u, s = step(jnp.asarray(g), s, p)
    p = gradtx.apply_updates(p, u)
  # torch subtracts step * sign(g) in place; the same float32 operations here
  np.testing.assert_allclose(np.asarray(p), tp.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_asgd_matches_numpy_and_torch_with_averages():
  kw = dict(learning_rate=0.05, lambd=0.1, alpha=0.75, t0=4.0, weight_decay=0.2)
  ups, state = run(gradtx.asgd(**kw))
  leaves = lambda t: [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]
  want_u, want_ax = ref.asgd(leaves(PARAMS), [leaves(g) for g in GRADS], return_averages=True,
                             **kw)
  for got, want in zip(ups, want_u):
    for a, b in zip(leaves(got), want):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  for a, b in zip(leaves(gradtx.asgd_averaged_params(state)), want_ax[-1]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  torch = pytest.importorskip("torch")
  p0 = np.asarray(PARAMS["a"][1])
  tp = torch.nn.Parameter(torch.tensor(p0))
  opt = torch.optim.ASGD([tp], lr=kw["learning_rate"], lambd=kw["lambd"], alpha=kw["alpha"],
                         t0=kw["t0"], weight_decay=kw["weight_decay"], foreach=False)
  tx = gradtx.asgd(**kw)
  p, s = jnp.asarray(p0), tx.init(jnp.asarray(p0))
  step = jax.jit(tx.update)
  for g in GRADS:
    tp.grad = torch.tensor(np.asarray(g["a"][1]))
    opt.step()
    u, s = step(g["a"][1], s, p)
    p = gradtx.apply_updates(p, u)
  # float32 on both sides; torch computes p (1 - lambd eta) - eta g' in place, gradtx the delta
  # -eta (g' + lambd p) then p + delta: a few ulps apart
  np.testing.assert_allclose(np.asarray(p), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(gradtx.asgd_averaged_params(s)),
                             opt.state[tp]["ax"].numpy(), rtol=1e-5, atol=1e-6)


LABELS = {"a": ("x", "y"), "b": {"c": "x", "d": "y"}}


def test_block_coordinate_descent_inactive_states_do_not_move():
  tx = gradtx.block_coordinate_descent(gradtx.adam(0.1), LABELS, steps_per_block=2)
  step = jax.jit(tx.update)
  state = tx.init(PARAMS)
  for t, g in enumerate(GRADS[:8]):
    active = "x" if (t // 2) % 2 == 0 else "y"
    u, new = step(g, state, PARAMS)
    inactive = "y" if active == "x" else "x"
    assert_trees_equal(new.inner_states[inactive], state.inner_states[inactive])
    assert not all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(new.inner_states[active]), jax.tree.leaves(state.inner_states[active])))
    zero = [u["a"][0], u["b"]["c"]] if inactive == "x" else [u["a"][1], u["b"]["d"]]
    assert all(np.all(np.asarray(z) == 0) for z in zero)
    state = new
  assert int(state.count) == 8


def test_block_coordinate_descent_with_one_block_is_the_inner_transformation():
  ours, _ = run(gradtx.block_coordinate_descent(gradtx.adam(0.1), jax.tree.map(lambda _: 0,
                                                                                PARAMS)))
  theirs, _ = run(gradtx.adam(0.1))
  assert_trees_equal(ours, theirs)


def test_block_coordinate_descent_random_order_is_reproducible():
  def blocks(seed):
    tx = gradtx.block_coordinate_descent(gradtx.sgd(1.0), LABELS, "random", seed=seed)
    ups, _ = run(tx)
    return [bool(np.any(np.asarray(u["a"][0]) != 0)) for u in ups]

  a, b, c = blocks(0), blocks(0), blocks(1)
  assert a == b and a != c
  assert 0 < sum(a) < STEPS  # both blocks are visited


def test_block_coordinate_descent_vmap_over_learning_rate_equals_loop():
  def train(lr):
    ups, _ = run(gradtx.block_coordinate_descent(gradtx.sgd(lr, 0.9), LABELS),
                 grads=GRADS[:4])
    return ups

  lrs = jnp.asarray([0.01, 0.1])
  batched = jax.vmap(train)(lrs)
  for i, lr in enumerate(lrs):
    for b, single in zip(batched, train(float(lr))):
      for x, y in zip(jax.tree.leaves(b), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(x)[i], np.asarray(y), rtol=1e-6)


def test_block_coordinate_descent_vmapped_state_runs_only_the_active_block():
  """With the whole state vmapped (a batched step count), each block's inner update stays under
  a cond: a QR inside the inner transformation appears only inside cond branches, and the
  results equal the unbatched steps."""
  def qr_scale(updates, state, params=None):
    del params
    return jax.tree.map(lambda u: u * jnp.linalg.qr(jnp.eye(2))[0][0, 0], updates), state

  inner = gradtx.chain(gradtx.GradientTransformation(lambda p: gradtx.EmptyState(), qr_scale),
                       gradtx.sgd(0.1))
  tx = gradtx.block_coordinate_descent(inner, LABELS)
  states = jax.vmap(lambda c: tx.init(PARAMS)._replace(count=c))(jnp.asarray([0, 1]))
  grads = jax.tree.map(lambda g: jnp.stack([g, g]), GRADS[0])
  step = jax.vmap(lambda g, s: tx.update(g, s, PARAMS))
  names = primitives_outside_cond(jax.make_jaxpr(step)(grads, states))
  assert "qr" not in names and "cond" in names
  got, _ = step(grads, states)
  for i in range(2):
    want, _ = tx.update(GRADS[0], tx.init(PARAMS)._replace(count=jnp.asarray(i, jnp.int32)), PARAMS)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(np.asarray(x)[i], np.asarray(y), rtol=1e-6)


@pytest.mark.parametrize("name,kwargs", [
    ("lion", dict(learning_rate=0.01, weight_decay=0.1)),
    ("signum", dict(learning_rate=0.1)),
    ("optimistic_adam_v2", dict(learning_rate=0.01)),
    ("asgd", dict(learning_rate=0.05)),
])
def test_inject_hyperparams(name, kwargs):
  tx = gradtx.inject_hyperparams(getattr(gradtx, name))(**kwargs)
  ours, state = run(tx)
  plain, _ = run(getattr(gradtx, name)(**kwargs))
  # inject_hyperparams keeps every numeric hyperparameter as a float32 array (b1, eps, ...), so
  # 1 - b1 and friends round differently from the Python floats of the plain alias
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-7)
  assert "learning_rate" in state.hyperparams


def test_polyak_needs_value_and_names_it():
  tx = gradtx.polyak_sgd()
  with pytest.raises(ValueError, match=r"value.*value=loss"):
    tx.update(GRADS[0], tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("make,arg", [
    (lambda: gradtx.lion(0.1, b1=1.5), "b1"),
    (lambda: gradtx.lion(0.1, b2=-0.1), "b2"),
    (lambda: gradtx.lion(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: gradtx.scale_by_lion(mode="soft"), "mode"),
    (lambda: gradtx.scale_by_lion(mode="smooth", smooth_beta=0.0), "smooth_beta"),
    (lambda: gradtx.lion(0.1, mu_dtype=jnp.int32), "mu_dtype"),
    (lambda: gradtx.signum(0.1, beta=2.0), "signum: beta"),
    (lambda: gradtx.rprop(-0.1), "learning_rate"),
    (lambda: gradtx.rprop(0.1, eta_minus=1.5), "eta_minus"),
    (lambda: gradtx.rprop(0.1, eta_plus=0.5), "eta_plus"),
    (lambda: gradtx.rprop(0.1, min_step_size=-1.0), "min_step_size"),
    (lambda: gradtx.rprop(0.1, min_step_size=1.0, max_step_size=0.5), "max_step_size"),
    (lambda: gradtx.optimistic_gradient_descent(0.1, alpha="1"), "alpha"),
    (lambda: gradtx.optimistic_gradient_descent(0.1, beta=float("nan")), "beta"),
    (lambda: gradtx.optimistic_adam(lambda t: 0.1), "learning_rate"),
    (lambda: gradtx.optimistic_adam_v2(0.1, b1=1.0), "b1"),
    (lambda: gradtx.polyak_sgd(max_learning_rate=0.0), "max_learning_rate"),
    (lambda: gradtx.polyak_sgd(eps=-1.0), "eps"),
    (lambda: gradtx.polyak_sgd(variant="sps-"), "variant"),
    (lambda: gradtx.asgd(-0.1), "learning_rate"),
    (lambda: gradtx.asgd(0.1, lambd=-1.0), "lambd"),
    (lambda: gradtx.asgd(0.1, alpha=-1.0), "alpha"),
    (lambda: gradtx.asgd(0.1, t0=-1.0), "t0"),
    (lambda: gradtx.asgd(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: gradtx.block_coordinate_descent(gradtx.sgd(0.1), LABELS, "greedy"), "order"),
    (lambda: gradtx.block_coordinate_descent(gradtx.sgd(0.1), LABELS, steps_per_block=0),
     "steps_per_block"),
    (lambda: gradtx.block_coordinate_descent(gradtx.sgd(0.1), LABELS, seed=1.5), "seed"),
    (lambda: gradtx.block_coordinate_descent(gradtx.sgd, LABELS), "tx"),
    (lambda: gradtx.block_coordinate_descent(gradtx.sgd(0.1), None), "param_labels"),
])
def test_bad_input_names_the_argument(make, arg):
  with pytest.raises((ValueError, TypeError), match=arg):
    make()
