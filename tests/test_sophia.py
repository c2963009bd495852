"""Issue 17, the Hessian-diagonal and sharpness methods: contrib.sophia and contrib.sam against
optax (bit for bit), NumPy references of ASAM, AdaHessian and Entropy-SGD, their periodic work
under `vmap` (the jaxpr), chains with clipping and schedules, `apply_if_finite`, flax nnx and
linen (with an Orbax round trip), and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from jaxprs import primitives_inside_cond, primitives_outside_cond
from state_audit import describe  # class names, fields, shapes, dtypes

P0 = {"a": jnp.linspace(-1.0, 1.0, 5), "b": jnp.asarray([0.3, -0.7, 1.2])}


def loss(p):
  """Smooth, non-quadratic, with coupled leaves; `sin` appears only where the loss is evaluated
  (the HVP inside the update), which the jaxpr tests look for."""
  return (jnp.sum(jnp.sin(p["a"]) ** 2) + 0.1 * jnp.sum(p["b"] ** 4)
          + jnp.sum(p["a"][:3] * p["b"]))


LOSS = jax.tree_util.Partial(loss)  # a pytree: passes through jit without recompiling
GRAD = jax.tree_util.Partial(jax.grad(loss))


def _trajectory(tx, steps, **extra):
  """Params and state after each of `steps` jitted steps on `loss` (extras: obj_fn etc.)."""
  @jax.jit
  def step(p, s):
    u, s = tx.update(jax.grad(loss)(p), s, p, **extra)
    return optax.apply_updates(p, u), s

  p, s = P0, tx.init(P0)
  out = []
  for _ in range(steps):
    p, s = step(p, s)
    out.append((p, s))
  return out


def _assert_equal_trees(a, b, what):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{what} leaf {i}")


# --- Sophia: optax parity and periodic estimates under vmap ---------------------------------------

def test_sophia_bit_identical_to_optax_over_24_steps():
  ours = _trajectory(gradtx.contrib.sophia(0.1, update_interval=3), 24, obj_fn=LOSS)
  theirs = _trajectory(optax.contrib.sophia(0.1, update_interval=3), 24, obj_fn=LOSS)
  for t, ((p, s), (q, r)) in enumerate(zip(ours, theirs)):
    _assert_equal_trees(p, q, f"params step {t}")
    _assert_equal_trees(s, r, f"state step {t}")  # the Hutchinson key included
  assert describe(ours[-1][1]) == describe(theirs[-1][1])


def _vmapped_update_jaxpr(tx, **extra):
  """The jaxpr of `update` vmapped over a batch of 3 states (a sweep's batched count)."""
  states = jax.vmap(lambda _: tx.init(P0))(jnp.arange(3))
  grads = jax.tree.map(lambda x: jnp.stack([x] * 3), jax.grad(loss)(P0))
  return jax.make_jaxpr(jax.vmap(lambda g, s: tx.update(g, s, P0, **extra)))(grads, states)


def test_vmapped_estimates_stay_under_a_cond():
  for tx, extra in [(gradtx.contrib.sophia(0.1), dict(obj_fn=LOSS)),
                    (gradtx.adahessian(0.1, update_interval=4), dict(value_fn=LOSS))]:
    jaxpr = _vmapped_update_jaxpr(tx, **extra)
    assert "sin" in primitives_inside_cond(jaxpr)
    assert "sin" not in primitives_outside_cond(jaxpr)  # no HVP on the steps between
  # optax's lax.cond becomes a select: its HVP runs on every vmapped step.
  jaxpr = _vmapped_update_jaxpr(optax.contrib.sophia(0.1), obj_fn=LOSS)
  assert "sin" in primitives_outside_cond(jaxpr)


# (alias, the swept hyperparameter as a factory of its value, its values, update extras)
SWEEPS = {
    "sophia": (lambda v: gradtx.contrib.sophia(v, update_interval=2), [0.01, 0.1, 0.3],
               dict(obj_fn=LOSS)),
    "adahessian": (lambda v: gradtx.adahessian(0.1, b2=v, update_interval=2),
                   [0.9, 0.99, 0.999], dict(value_fn=LOSS)),
    "entropy_sgd": (lambda v: gradtx.entropy_sgd(0.5, gamma=v, inner_steps=3),
                    [0.01, 0.03, 0.1], dict(grad_fn=GRAD)),
}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_vmap_over_a_hyperparameter_equals_loop(name):
  make, values, extra = SWEEPS[name]

  def train(v):
    tx = make(v)

    def body(carry, _):
      p, s = carry
      u, s = tx.update(jax.grad(loss)(p), s, p, **extra)
      return (gradtx.apply_updates(p, u), s), None

    return jax.lax.scan(body, (P0, tx.init(P0)), None, length=6)[0][0]

  values = jnp.asarray(values)
  batched = jax.jit(jax.vmap(train))(values)
  run = jax.jit(train)
  for i, v in enumerate(values):
    for x, y in zip(jax.tree.leaves(batched), jax.tree.leaves(run(v))):
      np.testing.assert_allclose(x[i], y, rtol=1e-6, atol=1e-7)


# --- SAM: optax parity ---------------------------------------------------------------------------

# The default (sync_period=2, reset_state=True) is in the registry's optax comparison.
@pytest.mark.parametrize("sync_period,reset_state,opaque", [(3, False, False), (3, True, True)])
def test_sam_bit_identical_to_optax(sync_period, reset_state, opaque):
  def make(L):
    adv = L.chain(L.contrib.normalize(), L.sgd(0.05))
    return L.contrib.sam(L.sgd(0.1, momentum=0.9), adv, sync_period=sync_period,
                         reset_state=reset_state, opaque_mode=opaque)

  extra = dict(grad_fn=jax.tree_util.Partial(lambda p, i: GRAD(p))) if opaque else {}
  ours, theirs = _trajectory(make(gradtx), 20, **extra), _trajectory(make(optax), 20, **extra)
  for t, ((p, s), (q, r)) in enumerate(zip(ours, theirs)):
    _assert_equal_trees(p, q, f"params step {t}")
    _assert_equal_trees(s, r, f"state step {t}")
  assert describe(ours[-1][1]) == describe(theirs[-1][1])


# --- NumPy references ------------------------------------------------------------------------------

H = np.asarray([0.5, 1.0, 2.0, 4.0, 3.0, 0.25])
C = np.asarray([0.3, -0.2, 0.1, 0.0, -0.4, 0.2])


def _np_grad(w):
  """Gradient of sum(0.5 h w^2 + 0.1 w^4 + c w)."""
  return H * w + 0.4 * w ** 3 + C


def _jnp_loss(w):
  return jnp.sum(0.5 * jnp.asarray(H, jnp.float32) * w ** 2 + 0.1 * w ** 4
                 + jnp.asarray(C, jnp.float32) * w)


W0 = np.asarray([1.0, -0.5, 0.8, -1.2, 0.3, 0.6])


def test_asam_matches_numpy_reference():
  """Kwon et al. 2021, Alg. 1: eps = rho T^2 g / ||T g||, T = |w| + eta; w -= lr grad(w + eps)."""
  lr, rho, eta, steps = 0.1, 0.3, 0.01, 10
  w = W0.copy()
  want = []
  for _ in range(steps):
    g = _np_grad(w)
    t = np.abs(w) + eta
    eps = rho * t * t * g / np.linalg.norm(t * g)
    w = w - lr * _np_grad(w + eps)
    want.append(w.copy())
  tx = gradtx.asam(gradtx.sgd(lr), rho=rho, eta=eta)
  step = jax.jit(lambda w, s: tx.update(jax.grad(_jnp_loss)(w), s, w))
  w, s = jnp.asarray(W0, jnp.float32), tx.init(jnp.asarray(W0, jnp.float32))
  for t in range(steps):
    for _ in range(2):  # an ascent call, then the outer step
      u, s = step(w, s)
      w = w + u
    np.testing.assert_allclose(w, want[t], rtol=1e-5, atol=1e-6, err_msg=f"step {t}")


def test_adahessian_matches_numpy_reference():
  """Yao et al. 2021, Alg. 1 with eq. 10's block averaging (block 2) and a conv kernel's spatial
  average; a diagonal Hessian makes Hutchinson's z * Hz exact whatever the probes."""
  lr, b1, b2, eps, k, every, steps = 0.05, 0.9, 0.999, 1e-4, 0.5, 2, 12
  hk = np.linspace(0.5, 3.0, 24).reshape(2, 2, 2, 3)
  hv = H

  def f(p):
    return (0.5 * jnp.sum(jnp.asarray(hk, jnp.float32) * p["k"] ** 2)
            + 0.5 * jnp.sum(jnp.asarray(hv, jnp.float32) * p["v"] ** 2) + jnp.sum(p["v"]))

  w = {"k": np.linspace(-1, 1, 24).reshape(2, 2, 2, 3), "v": W0.copy()}
  d = {"k": np.broadcast_to(hk.mean(axis=(0, 1), keepdims=True), hk.shape),  # spatial mean
       "v": np.repeat(hv.reshape(3, 2).mean(axis=1), 2)}  # blocks of 2
  m = {n: np.zeros_like(x) for n, x in w.items()}
  v = {n: np.zeros_like(x) for n, x in w.items()}
  want = []
  for t in range(1, steps + 1):
    g = {"k": hk * w["k"], "v": hv * w["v"] + 1.0}
    if (t - 1) % every == 0:
      v = {n: b2 * v[n] + (1 - b2) * d[n] ** 2 for n in w}
    n_est = (t - 1) // every + 1
    for n in w:
      m[n] = b1 * m[n] + (1 - b1) * g[n]
      u = (m[n] / (1 - b1 ** t)) / (np.sqrt(v[n] / (1 - b2 ** n_est)) ** k + eps)
      w[n] = w[n] - lr * u
    want.append({n: x.copy() for n, x in w.items()})
  tx = gradtx.adahessian(lr, b1, b2, eps, hessian_power=k, update_interval=every, block_size=2)
  p = {"k": jnp.asarray(np.linspace(-1, 1, 24).reshape(2, 2, 2, 3), jnp.float32),
       "v": jnp.asarray(W0, jnp.float32)}
  step = jax.jit(lambda p, s: tx.update(jax.grad(f)(p), s, p, value_fn=jax.tree_util.Partial(f)))
  s = tx.init(p)
  for t in range(steps):
    u, s = step(p, s)
    p = gradtx.apply_updates(p, u)
    for n in p:
      # float32 vs float64 through the k-th root of small denominators over 12 steps
      np.testing.assert_allclose(p[n], want[t][n], rtol=1e-4, atol=1e-6, err_msg=f"{n} {t}")


def _entropy_reference(w, steps, lr, gamma, scoping, inner, eta, alpha):
  """Chaudhari et al. 2017, Alg. 1 without noise (eps = 0), gamma_t = gamma (1 + scoping)^t."""
  out = []
  for t in range(steps):
    g_t = gamma * (1 + scoping) ** t
    xp, mu = w.copy(), w.copy()
    for _ in range(inner):
      xp = xp - eta * (_np_grad(xp) - g_t * (w - xp))
      mu = (1 - alpha) * mu + alpha * xp
    w = w - lr * g_t * (w - mu)
    out.append(w.copy())
  return out


def test_entropy_sgd_matches_numpy_reference_and_uses_a_fori_loop():
  kw = dict(gamma=0.5, scoping=0.1, inner_steps=5, inner_learning_rate=0.1, alpha=0.75)
  want = _entropy_reference(W0.copy(), 8, 0.5, **{k if k != "inner_steps" else "inner": v for k, v
                                                   in kw.items() if k != "inner_learning_rate"},
                            eta=0.1)
  tx = gradtx.entropy_sgd(0.5, noise=0.0, **kw)
  grad_fn = jax.tree_util.Partial(jax.grad(_jnp_loss))
  step = jax.jit(lambda w, s: tx.update(jnp.zeros_like(w), s, w, grad_fn=grad_fn))
  w = jnp.asarray(W0, jnp.float32)
  s = tx.init(w)
  for t in range(8):
    u, s = step(w, s)
    w = w + u
    np.testing.assert_allclose(w, want[t], rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
  assert int(s[0].count) == 8
  names = primitives_outside_cond(jax.make_jaxpr(step)(w, s))
  assert {"while", "scan"} & set(names)  # the inner SGLD loop is one lax.fori_loop, not unrolled
  # With noise: the key advances, draws differ by key and repeat with the same key.
  noisy = lambda key: gradtx.scale_by_entropy_sgd(noise=0.1, inner_steps=3, key=key)
  k0, k1 = jax.random.PRNGKey(0), jax.random.PRNGKey(1)
  outs = [noisy(k).update(w, noisy(k).init(w), w, grad_fn=grad_fn) for k in (k0, k0, k1)]
  np.testing.assert_array_equal(outs[0][0], outs[1][0])
  assert not np.array_equal(outs[0][0], outs[2][0])
  assert not np.array_equal(outs[0][1].key, k0)


# --- chains, apply_if_finite, flax ---------------------------------------------------------------

def _aliases(lr):
  """The aliases under test, each built with `lr` (a float or a schedule)."""
  return {
      "sophia": gradtx.contrib.sophia(lr, update_interval=2),
      "adahessian": gradtx.adahessian(lr, update_interval=2),
      "asam": gradtx.asam(gradtx.sgd(lr), rho=0.05),
      "sam": gradtx.contrib.sam(gradtx.sgd(lr), gradtx.chain(gradtx.contrib.normalize(),
                                                             gradtx.sgd(0.05))),
      "entropy_sgd": gradtx.entropy_sgd(lr, gamma=1.0, inner_steps=3),
  }


XS = jnp.linspace(-1.0, 1.0, 8)[:, None] * jnp.asarray([[1.0, -0.5]])
YS = XS @ jnp.asarray([[2.0], [1.0]]) - 0.3


@pytest.mark.parametrize("name", sorted(_aliases(0.1)))
def test_nnx_optimizer_with_clipping_schedule_and_a_nonfinite_batch(name):
  nnx = pytest.importorskip("flax.nnx")
  schedule = gradtx.linear_schedule(0.1, 0.02, 20)
  tx = gradtx.apply_if_finite(
      gradtx.chain(gradtx.clip_by_global_norm(1.0), _aliases(schedule)[name]), 3)
  model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  graphdef, _ = nnx.split(model)

  @nnx.jit
  def train_step(model, opt, ys):
    value_fn = lambda p: jnp.mean((nnx.merge(graphdef, p)(XS) - ys) ** 2)
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(XS) - ys) ** 2))(model)
    opt.update(model, grads, value_fn=value_fn, obj_fn=value_fn, grad_fn=jax.grad(value_fn))
    return loss

  first = float(train_step(model, opt, YS))
  before = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
  train_step(model, opt, YS.at[0].set(jnp.nan))  # skipped: params unchanged
  _assert_equal_trees(nnx.state(model, nnx.Param), before, f"{name} after a NaN batch")
  for _ in range(10):
    last = float(train_step(model, opt, YS))
  assert np.isfinite(last) and last < first, f"{name}: {first} -> {last}"


@pytest.mark.parametrize("name", sorted(_aliases(0.1)))
def test_linen_train_state_and_orbax_round_trip_bit_identical(name, tmp_path):
  linen = pytest.importorskip("flax.linen")
  train_state = pytest.importorskip("flax.training.train_state")
  ocp = pytest.importorskip("orbax.checkpoint")
  model = linen.Dense(1)
  state = train_state.TrainState.create(apply_fn=model.apply,
                                        params=model.init(jax.random.key(0), XS),
                                        tx=_aliases(0.1)[name])

  @jax.jit
  def step(s):
    value_fn = lambda p: jnp.mean((s.apply_fn(p, XS) - YS) ** 2)
    grads = jax.grad(value_fn)(s.params)
    updates, opt_state = s.tx.update(grads, s.opt_state, s.params, value_fn=value_fn,
                                     obj_fn=value_fn, grad_fn=jax.grad(value_fn))
    return s.replace(step=s.step + 1, params=gradtx.apply_updates(s.params, updates),
                     opt_state=opt_state)

  for _ in range(2):
    state = step(state)
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(tmp_path / "ckpt", {"params": state.params, "opt_state": state.opt_state})
    ckpt.wait_until_finished()
    restored = ckpt.restore(tmp_path / "ckpt", jax.tree.map(
        ocp.utils.to_shape_dtype_struct, {"params": state.params, "opt_state": state.opt_state}))
  resumed = state.replace(params=restored["params"], opt_state=jax.tree.unflatten(
      jax.tree.structure(state.opt_state), jax.tree.leaves(restored["opt_state"])))
  for _ in range(3):
    state, resumed = step(state), step(resumed)
  _assert_equal_trees((resumed.params, resumed.opt_state), (state.params, state.opt_state), name)
  assert np.all(np.isfinite(jax.tree.leaves(state.params)[0]))


# --- bad input and missing extras -----------------------------------------------------------------

def test_bad_input_names_the_argument():
  sgd = gradtx.sgd(0.1)
  cases = [
      (lambda: gradtx.contrib.sophia(0.1, update_interval=0), "update_interval"),
      (lambda: gradtx.contrib.sophia(0.1, gamma=0.0), "gamma"),
      (lambda: gradtx.contrib.sophia(0.1, b1=1.0), "b1"),
      (lambda: gradtx.contrib.sophia(0.1, clip_threshold=-1.0), "clip_threshold"),
      (lambda: gradtx.contrib.sophia(0.1, verbose=True), "print_win_rate_every_n_steps"),
      (lambda: gradtx.contrib.sophia(0.1, hessian_diagonal_fn=len), "hessian_diagonal_fn"),
      (lambda: gradtx.contrib.sam(sgd, sgd, sync_period=0), "sync_period"),
      (lambda: gradtx.contrib.sam(sgd, "sgd"), "adv_optimizer"),
      (lambda: gradtx.asam(sgd, rho=0.0), "rho"),
      (lambda: gradtx.asam(sgd, eta=-1.0), "eta"),
      (lambda: gradtx.adahessian(update_interval=0), "update_interval"),
      (lambda: gradtx.adahessian(hessian_power=2.0), "hessian_power"),
      (lambda: gradtx.adahessian(block_size=0), "block_size"),
      (lambda: gradtx.adahessian(eps=-1.0), "eps"),
      (lambda: gradtx.entropy_sgd(inner_steps=0), "inner_steps"),
      (lambda: gradtx.entropy_sgd(gamma=0.0), "gamma"),
      (lambda: gradtx.entropy_sgd(inner_learning_rate=0.0), "inner_learning_rate"),
      (lambda: gradtx.entropy_sgd(alpha=0.0), "alpha"),
      (lambda: gradtx.entropy_sgd(noise=-1.0), "noise"),
  ]
  for make, arg in cases:
    with pytest.raises((ValueError, TypeError), match=arg):
      make()


def test_missing_extra_arguments_raise_from_update_also_through_chain():
  x = jnp.ones(2)
  sgd = gradtx.sgd(0.1)
  for tx, name in [(gradtx.contrib.sophia(0.1), "obj_fn"), (gradtx.adahessian(), "value_fn"),
                   (gradtx.entropy_sgd(), "grad_fn or value_fn"),
                   (gradtx.contrib.sam(sgd, sgd, opaque_mode=True), "grad_fn")]:
    for t in (tx, gradtx.chain(gradtx.clip_by_global_norm(1.0), tx)):
      with pytest.raises(ValueError, match=rf"needs {name}.*update\(grads, state, params, "):
        t.update(x, t.init(x), x, value=1.0)
      with pytest.raises(ValueError, match="params"):
        t.update(x, t.init(x), None, value_fn=jnp.sum, obj_fn=jnp.sum, grad_fn=jnp.sign)


def test_sophia_takes_value_fn_as_obj_fn():
  tx = gradtx.contrib.scale_by_sophia()
  a = tx.update(P0, tx.init(P0), P0, obj_fn=loss)
  b = tx.update(P0, tx.init(P0), P0, value_fn=loss)
  _assert_equal_trees(a, b, "value_fn=")
