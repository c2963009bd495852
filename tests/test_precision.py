"""gradtx/precision.py: `mixed_precision` (a float32 master copy of low-precision params) and the
optimizer-state memory helpers `state_bytes` / `state_bytes_per_param`, with a table of the state
size of every alias."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import optimizers as aliases
from gradtx.transforms.precision import MixedPrecisionState, mixed_precision, state_bytes, state_bytes_per_param
from trees import first_order_aliases, make_grads, make_params

BF16 = jnp.bfloat16


def _train(tx, p0, g, steps):
  """`steps` updates with the constant gradient `g` under one lax.scan; returns (params, state)."""

  def body(carry, _):
    p, s = carry
    u, s = tx.update(g, s, p)
    return (gradtx.apply_updates(p, u), s), None

  (p, s), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, length=steps)
  return p, s


_train_jit = jax.jit(_train, static_argnums=(0, 3))


# --- tiny updates: stall without a master copy, accumulate with it ------------------------------


@pytest.mark.parametrize("dtype,inner",
                         [(BF16, gradtx.sgd(1e-4)), (jnp.float16, gradtx.adam(1e-4))],
                         ids=["bfloat16-sgd", "float16-adam"])
def test_ten_thousand_tiny_updates_accumulate_only_with_a_master_copy(dtype, inner):
  # Each step is -1e-4 * (-1) = +1e-4, below half the spacing of the numbers just above 1.0
  # (eps / 2: 2^-8 in bfloat16, 2^-11 in float16), so alone it rounds away; 10^4 of them move 1.0
  # to 2.0.
  assert 1e-4 < float(jnp.finfo(dtype).eps) / 2
  p0, g = jnp.ones(3, dtype), jnp.full(3, -1.0, dtype)
  stalled, _ = _train_jit(inner, p0, g, 10**4)
  assert stalled.dtype == dtype
  np.testing.assert_array_equal(np.asarray(stalled, np.float32), 1.0)
  moved, state = _train_jit(mixed_precision(inner), p0, g, 10**4)
  assert moved.dtype == dtype and state.master.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(state.master), 2.0, atol=1e-3)  # float32 sum of 1e-4s
  np.testing.assert_array_equal(np.asarray(moved), np.asarray(state.master.astype(dtype)))
  np.testing.assert_allclose(np.asarray(moved, np.float32), 2.0, atol=float(jnp.finfo(dtype).eps))


# --- mixed_precision(adam) on bfloat16 params is float32 adam, rounded --------------------------

_STEPS = 8
_GRADS = make_grads(steps=_STEPS, dtype=BF16)
_P0 = make_params(BF16)


def _run(tx, params, grads, step):
  state = tx.init(params)
  ups = []
  for g in grads:
    u, state = step(g, state, params)
    params = gradtx.apply_updates(params, u)
    ups.append(u)
  return params, state, ups


def test_mixed_precision_adam_on_bfloat16_equals_float32_adam_rounded():
  tx = mixed_precision(gradtx.adam(0.05))
  step = jax.jit(tx.update)
  params, state, ups = _run(tx, _P0, _GRADS, step)
  # float32 adam on the same (float32-cast) params and gradients.
  ref = gradtx.adam(0.05)
  to32 = lambda tree: jax.tree.map(lambda x: x.astype(jnp.float32), tree)
  p32, s32, _ = _run(ref, to32(_P0), [to32(g) for g in _GRADS], jax.jit(ref.update))
  for m, p, want in zip(jax.tree.leaves(state.master), jax.tree.leaves(params),
                        jax.tree.leaves(p32)):
    assert m.dtype == jnp.float32 and p.dtype == BF16
    np.testing.assert_allclose(np.asarray(m), np.asarray(want), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(p), np.asarray(m.astype(BF16)))
  inner_moments = jax.tree.leaves((state.inner_state[0].mu, state.inner_state[0].nu))
  assert all(leaf.dtype == jnp.float32 for leaf in inner_moments)
  for a, b in zip(inner_moments, jax.tree.leaves((s32[0].mu, s32[0].nu))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
  assert all(leaf.dtype == BF16 for leaf in jax.tree.leaves(ups))
  # Eager gives the same numbers as jit (on one leaf: each eager op compiles once per shape).
  p, grads = _P0["b"]["d"], [g["b"]["d"] for g in _GRADS[:2]]
  eager = _run(tx, p, grads, tx.update)[:2]
  jitted = _run(tx, p, grads, jax.jit(tx.update))[:2]
  for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6,
                               atol=1e-7)


def test_vmap_over_learning_rate_equals_loop():
  p0, g = jnp.ones(4, BF16), jnp.asarray([1.0, -2.0, 0.5, 0.0], BF16)

  def train(lr):
    return _train(mixed_precision(gradtx.adam(lr)), p0, g, 5)[1].master

  lrs = (1e-3, 1e-2, 1e-1)
  batched = jax.jit(jax.vmap(train))(jnp.asarray(lrs, jnp.float32))
  for i, lr in enumerate(lrs):
    np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(train(lr)), rtol=2e-6)


def test_float32_leaves_get_no_master_and_unchanged_updates():
  params = {"lo": jnp.ones(3, BF16), "hi": make_params()}
  inner = gradtx.adamw(0.1, weight_decay=0.1)
  tx = mixed_precision(inner)
  state = tx.init(params)
  assert state.master["hi"] == jax.tree.map(lambda _: None, params["hi"])
  assert state.master["lo"].dtype == jnp.float32
  params32 = {"lo": jnp.ones(3, jnp.float32), "hi": params["hi"]}
  assert state_bytes(tx, params) == state_bytes(inner, params32) + 3 * 4  # + the master
  grads = {"lo": jnp.ones(3, BF16), "hi": make_grads(steps=1)[0]}
  u, _ = tx.update(grads, state, params)
  want, _ = inner.update(grads["hi"], inner.init(params["hi"]), params["hi"])
  for a, b in zip(jax.tree.leaves(u["hi"]), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --- bit-exactness: apply_updates(params, u) is the rounded master -----------------------------


def _steps(tx, p, grads):
  """Per step: (params before, params after, the master after)."""
  state, out = tx.init(p), []
  step = jax.jit(tx.update)
  for g in grads:
    u, state = step(g, state, p)
    new = gradtx.apply_updates(p, u)
    out.append((p, new, state.master))
    p = new
  return out


def test_apply_updates_gives_the_rounded_master_bit_for_bit():
  rng = np.random.default_rng(0)
  n = 2048
  # |params| in [0.5, 4] and Adam steps of ~1e-2: each step changes a param by far less than a
  # factor of 2, where Sterbenz's lemma makes round(master) - param exact in bfloat16.
  p = jnp.asarray(rng.choice([-1, 1], n) * rng.uniform(0.5, 4.0, n), BF16)
  grads = [jnp.asarray(rng.normal(size=n), BF16) for _ in range(40)]
  for before, after, master in _steps(mixed_precision(gradtx.adam(1e-2)), p, grads):
    np.testing.assert_array_equal(np.asarray(after), np.asarray(master.astype(BF16)))
    assert np.any(np.asarray(after != before))
  # Steps as large as the params (SGD, lr 1, params ~N(0, 1)): exact wherever the param changes
  # by less than a factor of 2; elsewhere the update may round once, and the next step corrects it.
  p = jnp.asarray(rng.normal(size=n), BF16)
  grads = [jnp.asarray(rng.normal(size=n), BF16) for _ in range(10)]
  inexact = 0
  for before, after, master in _steps(mixed_precision(gradtx.sgd(1.0)), p, grads):
    target = np.asarray(master.astype(BF16), np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
      ratio = target / np.asarray(before, np.float32)
    sterbenz = (ratio >= 0.5) & (ratio <= 2.0)
    assert sterbenz.sum() > n // 4
    np.testing.assert_array_equal(np.asarray(after, np.float32)[sterbenz], target[sterbenz])
    inexact += int(np.sum(np.asarray(after, np.float32) != target))
  assert inexact > 0  # the documented regime exists: large jumps are not always exact


def test_params_changed_outside_are_moved_back_to_the_master():
  tx = mixed_precision(gradtx.sgd(0.0))
  p = jnp.asarray([1.0, 2.0], BF16)
  state = tx.init(p)
  edited = p + jnp.asarray([0.5, 0.0], BF16)
  u, _ = tx.update(jnp.zeros(2, BF16), state, edited)
  np.testing.assert_array_equal(np.asarray(gradtx.apply_updates(edited, u)), np.asarray(p))


# --- composition: chain, optax, None leaves, flax nnx ------------------------------------------


def test_inside_chain_with_optax_inner_and_none_leaves():
  params = {"w": jnp.ones(3, BF16), "frozen": jnp.ones(2, BF16)}
  w_grad = jnp.asarray([1.0, -1.0, 2.0], BF16)
  # optax 0.2.8's adam does not take None gradients, so it gets a zero one.
  for inner, frozen in ((gradtx.adam(0.1), None), (optax.adam(0.1), jnp.zeros(2, BF16))):
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), mixed_precision(inner))
    u, state = jax.jit(tx.update)({"w": w_grad, "frozen": frozen}, tx.init(params), params)
    assert u["w"].dtype == BF16 and (frozen is not None or u["frozen"] is None)
    master = state[1].master
    np.testing.assert_array_equal(np.asarray(master["frozen"]), 1.0)
    np.testing.assert_array_equal(np.asarray(gradtx.apply_updates(params, u)["w"]),
                                  np.asarray(master["w"].astype(BF16)))
  otx = optax.chain(optax.clip_by_global_norm(1.0), mixed_precision(gradtx.sgd(0.1)))
  u, _ = otx.update({"w": w_grad, "frozen": None}, otx.init(params), params)
  assert u["w"].dtype == BF16 and u["frozen"] is None


def test_flax_nnx_optimizer_with_bfloat16_and_float32_layers():
  nnx = pytest.importorskip("flax.nnx")

  class Model(nnx.Module):
    def __init__(self, rngs):
      self.low = nnx.Linear(3, 8, rngs=rngs, param_dtype=BF16)
      self.out = nnx.Linear(8, 2, rngs=rngs)  # float32: no master copy

    def __call__(self, x):
      return self.out(jnp.tanh(self.low(x)).astype(jnp.float32))

  x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0, -1.0], [0.5, 0.0], [0.0, 2.0]])
  model = Model(nnx.Rngs(0))
  opt = nnx.Optimizer(model, mixed_precision(gradtx.adam(1e-2)), wrt=nnx.Param)
  assert opt.opt_state.master["low"]["kernel"].dtype == jnp.float32
  assert opt.opt_state.master["out"]["kernel"].get_value() is None

  @nnx.jit
  def step(model, opt):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    opt.update(model, grads)
    return loss

  first = float(step(model, opt))
  for _ in range(15):
    last = float(step(model, opt))
  assert last < 0.5 * first
  assert model.low.kernel.dtype == BF16
  # Within one bfloat16 rounding of the master (bit-equal but where a step near zero changed a
  # param by more than a factor of 2; see test_apply_updates_gives_the_rounded_master_bit_for_bit).
  np.testing.assert_allclose(np.asarray(model.low.kernel[...], np.float32),
                             np.asarray(opt.opt_state.master["low"]["kernel"][...]), rtol=2**-8)
  n_low, n_out = 3 * 8 + 8, 8 * 2 + 2
  assert state_bytes(opt.opt_state) == n_low * 12 + n_out * 8 + 4


# --- errors ----------------------------------------------------------------------------------


def test_bad_inputs():
  with pytest.raises(ValueError, match="master_dtype"):
    mixed_precision(gradtx.adam(0.1), master_dtype=jnp.int32)
  with pytest.raises(ValueError, match="master_dtype"):
    mixed_precision(gradtx.adam(0.1), master_dtype=jnp.complex64)
  with pytest.raises(TypeError, match="master_dtype"):
    mixed_precision(gradtx.adam(0.1), master_dtype=None)
  with pytest.raises(TypeError, match="master_dtype"):
    mixed_precision(gradtx.adam(0.1), master_dtype="not a dtype")
  with pytest.raises(TypeError, match="inner"):
    mixed_precision(gradtx.adam)
  tx = mixed_precision(gradtx.adam(0.1))
  p = jnp.ones(2, BF16)
  with pytest.raises(ValueError, match="params"):
    tx.update(p, tx.init(p))
  with pytest.raises(TypeError, match=r"params\['n'\]"):
    tx.init({"w": p, "n": jnp.arange(2)})
  with pytest.raises(ValueError, match="structure"):
    tx.update({"w": p}, tx.init({"w": p, "v": p}), {"w": p})
  with pytest.raises(ValueError, match="params"):
    state_bytes(tx)
  with pytest.raises(ValueError, match="params"):
    state_bytes(tx.init(p), p)
  with pytest.raises(ValueError, match="params"):
    state_bytes_per_param(tx.init(p), None)
  with pytest.raises(ValueError, match="params"):
    state_bytes_per_param(tx, {})


# --- state memory of every alias ---------------------------------------------------------------

# (alias, kwargs, bytes per float32 param, constant bytes (int32 counts, PRNG key)). With every
# leaf's state in the params' dtype, a bfloat16 param takes half; under `mixed_precision` a
# bfloat16 param takes 4 (the float32 master) + the float32 figure. Where state that does not
# grow with the number of elements is kept in the params' dtype (per-leaf norms, per-row and
# per-column statistics of the 1024 x 1024 leaf), `constant` is a pair (with float32 params,
# with bfloat16 params). Every figure equals optax's for the same alias.
STATE_BYTES = [
    ("sgd", dict(learning_rate=0.1), 0, 0),
    ("sgd", dict(learning_rate=0.1, momentum=0.9), 4, 0),
    ("sgdw", dict(learning_rate=0.1), 4, 0),
    ("noisy_sgd", dict(learning_rate=0.1), 0, 12),
    ("adagrad", dict(learning_rate=0.1), 4, 0),
    ("adadelta", dict(), 8, 0),
    ("rmsprop", dict(learning_rate=0.1), 4, 0),
    ("rmsprop", dict(learning_rate=0.1, centered=True), 8, 0),
    ("rmsprop", dict(learning_rate=0.1, momentum=0.9), 8, 0),
    ("adam", dict(learning_rate=0.1), 8, 4),
    ("adamw", dict(learning_rate=0.1), 8, 4),
    ("nadam", dict(learning_rate=0.1), 8, 4),
    ("nadamw", dict(learning_rate=0.1), 8, 4),
    ("amsgrad", dict(learning_rate=0.1), 12, 4),
    ("adamax", dict(learning_rate=0.1), 8, 4),
    ("adamaxw", dict(learning_rate=0.1), 8, 4),
    ("powersign", dict(learning_rate=0.1), 4, 4),
    ("addsign", dict(learning_rate=0.1), 4, 4),
    ("adabelief", dict(learning_rate=0.1), 8, 4),
    # Factored: a row (1024,) and a column (1024,) statistic, a (1,) placeholder v and the count.
    ("adafactor", dict(), 0, (2 * 1024 * 4 + 4 + 4, 2 * 1024 * 2 + 2 + 4)),
    # Unfactored: the full v, (1,) placeholders for the row and column statistics, the count.
    ("adafactor", dict(factored=False), 4, (4 + 4 + 4, 2 + 2 + 4)),
    ("adan", dict(learning_rate=0.1), 16, 4),
    ("asgd", dict(), 4, 8),
    ("fromage", dict(learning_rate=0.1), 0, 0),
    ("lamb", dict(learning_rate=0.1), 8, 4),
    ("lars", dict(learning_rate=0.1), 4, 0),
    ("lion", dict(learning_rate=0.1), 4, 4),
    ("novograd", dict(learning_rate=0.1), 4, (4 + 4, 2 + 4)),  # nu: one norm per leaf
    ("optimistic_adam", dict(learning_rate=0.1), 12, 5),
    ("optimistic_adam_v2", dict(learning_rate=0.1), 12, 5),
    ("optimistic_gradient_descent", dict(learning_rate=0.1), 4, 1),
    ("polyak_sgd", dict(), 0, 0),
    ("radam", dict(learning_rate=0.1), 8, 4),
    ("rprop", dict(learning_rate=0.1), 8, 0),
    # Shampoo / SOAP: params-shaped state (the graft's nu and the momentum trace; SOAP's mu and
    # nu) plus four float32 Kronecker matrices per block, kept in float32 whatever the params'
    # dtype: 64 blocks of 128 x 128 (Shampoo), one 1024 x 1024 of each (SOAP), 16 bytes a param.
    ("shampoo", dict(learning_rate=0.1), 8, ((16 << 20) + 4, (16 << 20) + 4)),
    ("soap", dict(learning_rate=0.1), 8, ((16 << 20) + 4, (16 << 20) + 4)),
    ("sign_sgd", dict(learning_rate=0.1), 0, 0),
    ("signum", dict(learning_rate=0.1), 4, 4),
    ("sm3", dict(learning_rate=0.1), 4, (2 * 1024 * 4, 2 * 1024 * 2)),  # per-dimension mu
    ("yogi", dict(learning_rate=0.1), 8, 4),
]
_N = 1 << 20  # a 1024 x 1024 leaf, traced abstractly: nothing is allocated
_ABSTRACT = {"w": jax.ShapeDtypeStruct((1024, 1024), jnp.float32)}
_ABSTRACT_BF16 = {"w": jax.ShapeDtypeStruct((1024, 1024), BF16)}


def test_every_alias_has_a_state_size_row():
  assert {row[0] for row in STATE_BYTES} == set(first_order_aliases(aliases.__all__))


@pytest.mark.parametrize("name,kwargs,per_param,constant", STATE_BYTES,
                         ids=[f"{r[0]}-{'-'.join(r[1]) or 'default'}" for r in STATE_BYTES])
def test_state_bytes_of_every_alias(name, kwargs, per_param, constant):
  c32, c16 = constant if isinstance(constant, tuple) else (constant, constant)
  tx = getattr(aliases, name)(**kwargs)
  assert state_bytes(tx, _ABSTRACT) == per_param * _N + c32
  assert state_bytes_per_param(tx, _ABSTRACT) == pytest.approx(per_param + c32 / _N)
  assert state_bytes(tx, _ABSTRACT_BF16) == per_param // 2 * _N + c16
  # Under mixed_precision the inner optimizer sees float32 masters: the float32 constant.
  assert state_bytes(mixed_precision(tx), _ABSTRACT_BF16) == (4 + per_param) * _N + c32
  assert state_bytes(mixed_precision(tx), _ABSTRACT) == per_param * _N + c32
  reference = getattr(optax, name, None) or getattr(optax.contrib, name, None)
  if reference is not None:  # same state layout as optax: the same bytes (asgd is gradtx's)
    assert state_bytes(reference(**kwargs), _ABSTRACT_BF16) == per_param // 2 * _N + c16


def test_state_bytes_with_moment_dtypes_and_real_states():
  assert state_bytes(gradtx.adam(0.1, mu_dtype=BF16), _ABSTRACT) == 6 * _N + 4
  assert state_bytes(gradtx.adam(0.1, mu_dtype=jnp.float32, nu_dtype=jnp.float32),
                     _ABSTRACT_BF16) == 8 * _N + 4
  sgdw32 = gradtx.sgdw(0.1, accumulator_dtype=jnp.float32)
  assert state_bytes(sgdw32, _ABSTRACT_BF16) == 4 * _N
  p = jnp.ones(3, BF16)
  u, s = sgdw32.update(p, sgdw32.init(p), p)
  assert u.dtype == BF16 and s[0].trace.dtype == jnp.float32
  assert state_bytes(gradtx.sgd(0.1, 0.9, accumulator_dtype=BF16), _ABSTRACT) == 2 * _N
  assert state_bytes(optax.adam(0.1), _ABSTRACT) == 8 * _N + 4  # one count, as gradtx
  # A built state (arrays, nnx-free) counts the same as the abstract one.
  params = make_params(BF16)
  tx = mixed_precision(gradtx.adamw(0.1))
  n = sum(x.size for x in jax.tree.leaves(params))
  assert state_bytes(tx.init(params)) == state_bytes(tx, params) == 12 * n + 4
  assert state_bytes_per_param(tx.init(params), params) == (12 * n + 4) / n
  assert isinstance(tx.init(params), MixedPrecisionState)


def test_state_bytes_counts_prng_keys_by_their_data():
  typed = optax.add_noise(0.1, 0.5, 0)  # optax keeps a typed key
  assert state_bytes(typed, jnp.zeros(10)) == 4 + 8
