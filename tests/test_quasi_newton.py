"""Quasi-Newton methods and line searches (gradtx/transforms/linesearch.py, lbfgs.py, bfgs.py,
nonlinear_cg.py and gradtx/optimizers/quasi_newton.py): optax parity (bit-identical), SciPy
comparisons, vmap sweeps, non-finite values, errors, lax.scan, box constraints and flax nnx."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

optax = pytest.importorskip("optax")


# --- a nested params tree and a smooth non-quadratic loss -------------------------------------

def _params():
  return {"w": jnp.asarray([-1.2, 1.0, 0.4]), "b": {"c": jnp.asarray(0.3),
                                                     "d": jnp.asarray([[0.5, -0.2], [1.1, 0.7]])}}


def _loss(p):
  x = jnp.concatenate([p["w"], p["b"]["c"][None], p["b"]["d"].ravel()])
  return jnp.sum(10.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _run(lib, tx, params, steps, state=None, step_fn=None):
  """`steps` updates with value and grad from the state (both libraries' helper); returns the
  list of (params, state) after each step."""
  state = tx.init(params) if state is None else state
  step_fn = step_fn or _stepper(lib, tx)
  out = []
  for _ in range(steps):
    params, state = step_fn(params, state)
    out.append((params, state))
  return out


def _stepper(lib, tx, loss=_loss):
  value_and_grad = lib.value_and_grad_from_state(loss)

  @jax.jit
  def step(params, state):
    value, grad = value_and_grad(params, state=state)
    updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss)
    return lib.apply_updates(params, updates), state

  return step


PARITY = {
    "lbfgs": (lambda L: L.lbfgs(), {}),
    "sgd-zoom-fixed_steps": (lambda L: L.chain(L.sgd(0.05), L.scale_by_zoom_linesearch(
        12, **({"fixed_steps": True} if L is gradtx else {}))), {}),
    "sgd-backtracking-store_grad": (lambda L: L.chain(
        L.sgd(0.05), L.scale_by_backtracking_linesearch(
            12, store_grad=True, **({"fixed_steps": True} if L is gradtx else {}))), {}),
}


@functools.lru_cache(maxsize=None)
def _trajectories(config):
  make, _ = PARITY[config]
  return (_run(gradtx, make(gradtx), _params(), 25),
          _run(optax, make(optax), _params(), 25))


@pytest.mark.parametrize("config", list(PARITY))
def test_bit_identical_to_optax_over_25_steps(config):
  ours, theirs = _trajectories(config)
  for k, ((p, s), (q, t)) in enumerate(zip(ours, theirs)):
    for a, b in zip(jax.tree.leaves((p, s)), jax.tree.leaves((q, t))):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{config} step {k}")
  assert _loss(ours[-1][0]) < 0.25 * _loss(_params())


def _describe(x):
  """Type names, field names, nesting, leaf shapes and dtypes (what a checkpoint sees)."""
  if isinstance(x, tuple) and hasattr(x, "_fields"):
    return (type(x).__name__, tuple((f, _describe(getattr(x, f))) for f in x._fields))
  if isinstance(x, (tuple, list)):
    return tuple(_describe(v) for v in x)
  if isinstance(x, dict):
    return tuple((k, _describe(x[k])) for k in sorted(x))
  if x is None:
    return None
  return (jnp.shape(x), str(jnp.asarray(x).dtype))


@pytest.mark.parametrize("config", ["lbfgs", "sgd-backtracking-store_grad"])
def test_state_layout_and_checkpoint_cross_optax(config):
  flax_serialization = pytest.importorskip("flax.serialization")
  make, _ = PARITY[config]
  ours, theirs = _trajectories(config)
  assert _describe(ours[-1][1]) == _describe(theirs[-1][1])
  # optax's state after 3 steps, through flax.serialization into gradtx's, then 3 gradtx steps:
  # bit-identical to optax's own steps 4 to 6.
  params, optax_state = theirs[2]
  restored = flax_serialization.from_state_dict(
      make(gradtx).init(_params()), flax_serialization.to_state_dict(optax_state))
  tx = make(gradtx)
  cont = _run(gradtx, tx, params, 3, state=restored)
  for (p, s), (q, t) in zip(cont, theirs[3:6]):
    for a, b in zip(jax.tree.leaves((p, s)), jax.tree.leaves((q, t))):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --- SciPy comparison (float64) ----------------------------------------------------------------

def _problems():
  from sklearn.datasets import load_digits  # noqa: PLC0415
  rosen = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
  beale = lambda x: ((1.5 - x[0] + x[0] * x[1]) ** 2 + (2.25 - x[0] + x[0] * x[1] ** 2) ** 2
                     + (2.625 - x[0] + x[0] * x[1] ** 3) ** 2)
  features, labels = load_digits(return_X_y=True)
  features = jnp.asarray(np.c_[features / 16.0, np.ones(len(features))])
  targets = jnp.asarray((labels >= 5).astype(np.float64))

  def logistic(w):  # L2-regularised logistic regression: digits 0-4 against 5-9
    z = features @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - targets * z) + 5e-3 * jnp.sum(w[:-1] ** 2)

  eig = jnp.asarray(np.logspace(0, 4, 50))  # condition number 1e4
  b = jnp.asarray(np.random.default_rng(0).normal(size=50))
  quadratic = lambda x: 0.5 * jnp.sum(eig * x * x) - jnp.dot(b, x)
  return {
      "rosenbrock-2": (rosen, np.array([-1.2, 1.0])),
      "rosenbrock-100": (rosen, np.tile([-1.2, 1.0], 50)),
      "beale": (beale, np.array([1.0, 1.0])),
      "logistic-digits": (logistic, np.zeros(65)),
      "quadratic-cond1e4": (quadratic, np.zeros(50)),
  }


def _solve(tx, f, x0, gtol, max_iter):
  """Iterates `tx` inside one jitted while_loop until |grad|_inf <= gtol; (x, iterations)."""
  value_and_grad = gradtx.value_and_grad_from_state(f)

  def cond(carry):
    _, _, k, gnorm = carry
    return (gnorm > gtol) & (k < max_iter)

  def body(carry):
    x, state, k, _ = carry
    value, grad = value_and_grad(x, state=state)
    gnorm = jnp.max(jnp.abs(grad))
    updates, new_state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
    done = gnorm <= gtol  # count iterations as SciPy does: steps taken before the test holds
    x = jnp.where(done, x, x + updates)
    new_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), state, new_state)
    return x, new_state, k + jnp.where(done, 0, 1), gnorm

  x0 = jnp.asarray(x0)
  x, _, k, _ = jax.jit(lambda x: jax.lax.while_loop(
      cond, body, (x, tx.init(x), jnp.asarray(0), jnp.asarray(jnp.inf))))(x0)
  return np.asarray(x), int(k)


SCIPY_METHODS = {"BFGS": gradtx.bfgs, "L-BFGS-B": gradtx.lbfgs, "CG": gradtx.nonlinear_cg}


@pytest.mark.parametrize("method", list(SCIPY_METHODS))
def test_scipy_comparison_table(method):
  """gradtx's bfgs, lbfgs and nonlinear_cg against SciPy's BFGS, L-BFGS-B and CG: the same
  optimum to 1e-5 relative (float64, both stopped at |grad|_inf <= 1e-8), in at most 1.5x
  SciPy's iterations. One test per method, so the three tables run on different workers."""
  scipy_optimize = pytest.importorskip("scipy.optimize")
  pytest.importorskip("sklearn")
  gtol = 1e-8
  rows, failures = [], []
  make = SCIPY_METHODS[method]
  with jax.enable_x64(True):
    for name, (f, x0) in _problems().items():
      value_and_grad = jax.jit(jax.value_and_grad(f))
      fun = lambda x: tuple(np.asarray(a, np.float64) for a in value_and_grad(jnp.asarray(x)))
      options = dict(gtol=gtol, maxiter=20000)
      if method == "L-BFGS-B":
        options["ftol"] = 0.0
      ref = scipy_optimize.minimize(fun, x0, jac=True, method=method, options=options)
      x, k = _solve(make(), f, x0, gtol, 3 * ref.nit + 10)
      err = np.linalg.norm(x - ref.x) / max(np.linalg.norm(ref.x), 1e-12)
      rows.append(f"{name:18s} {method:9s} scipy {ref.nit:5d}  gradtx {k:5d}  "
                  f"ratio {k / ref.nit:4.2f}  rel. err {err:.1e}")
      if err > 1e-5 or k > 1.5 * ref.nit:
        failures.append(rows[-1])
  print("\n" + "\n".join(rows))
  assert not failures, "\n".join(failures)


# --- every nonlinear CG formula, stochastic L-BFGS on minibatches ------------------------------

def _quad(x):  # condition number 100
  return 0.5 * jnp.sum(jnp.logspace(0.0, 2.0, 6) * (x - 1.0) ** 2)


@pytest.mark.parametrize("method", ["fletcher_reeves", "polak_ribiere", "hestenes_stiefel",
                                    "dai_yuan"])
def test_every_cg_method_converges(method):
  tx = gradtx.nonlinear_cg(method, restart_threshold=0.2 if method == "fletcher_reeves" else None)
  x, _ = _solve(tx, _quad, np.zeros(6), 1e-4, 60)
  np.testing.assert_allclose(x, 1.0, atol=1e-4)


def test_stochastic_lbfgs_trains_logistic_regression_on_minibatches():
  rng = np.random.default_rng(0)
  features = jnp.asarray(rng.normal(size=(512, 8)), jnp.float32)
  targets = (features @ jnp.linspace(-1.0, 1.0, 8) > 0).astype(jnp.float32)

  def loss(w, x, y):
    z = x @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 1e-3 * jnp.sum(w ** 2)

  tx = gradtx.stochastic_lbfgs()

  @jax.jit
  def epoch(w, state, key):
    def step(carry, idx):
      w, state = carry
      x, y = features[idx], targets[idx]
      updates, state = tx.update(jax.grad(loss)(w, x, y), state, w, value_fn=loss, x=x, y=y)
      return (w + updates, state), None
    batches = jax.random.permutation(key, 512).reshape(8, 64)
    return jax.lax.scan(step, (w, state), batches)[0]

  w = jnp.zeros(8)
  state = tx.init(w)
  full = lambda w: loss(w, features, targets)
  start = full(w)
  for key in jax.random.split(jax.random.PRNGKey(0), 5):
    w, state = epoch(w, state, key)
  assert full(w) < 0.5 * start
  assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(state))


# --- vmap sweeps: a batch of hyperparameters equals a Python loop ------------------------------

def test_vmapped_lbfgs_sweep_with_fixed_steps_equals_loop():
  x0 = jnp.asarray([-1.2, 1.0, 0.5])
  rosen = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

  def train(lr):
    tx = gradtx.lbfgs(learning_rate=lr, linesearch=gradtx.scale_by_zoom_linesearch(
        15, initial_guess_strategy="one", fixed_steps=True))
    value_and_grad = gradtx.value_and_grad_from_state(rosen)

    def step(carry, _):
      x, state = carry
      value, grad = value_and_grad(x, state=state)
      updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=rosen)
      return (x + updates, state), None

    (x, state), _ = jax.lax.scan(step, (x0, tx.init(x0)), None, length=8)
    return x, gradtx.tree.get(state, "num_linesearch_steps")

  lrs = jnp.asarray([0.5, 1.0, 2.0])
  batched, _ = jax.jit(jax.vmap(train))(lrs)
  train = jax.jit(train)
  for i, lr in enumerate(lrs):
    # rtol: batched dot products may round differently in the last bit.
    np.testing.assert_allclose(batched[i], train(lr)[0], rtol=1e-5, atol=1e-6)


def test_vmapped_stochastic_lbfgs_sweep_equals_loop():
  x0 = jnp.asarray([2.0, -1.0, 0.5])

  def train(delta):
    tx = gradtx.stochastic_lbfgs(delta=delta)

    def step(carry, _):
      x, state = carry
      updates, state = tx.update(jax.grad(_q3)(x), state, x, value_fn=_q3)
      return (x + updates, state), x

    return jax.lax.scan(step, (x0, tx.init(x0)), None, length=10)[1]

  deltas = jnp.asarray([0.5, 1.0, 4.0])
  batched = jax.jit(jax.vmap(train))(deltas)
  train = jax.jit(train)
  for i, d in enumerate(deltas):
    np.testing.assert_allclose(batched[i], train(d), rtol=1e-5, atol=1e-6)


def _q3(x):
  return jnp.sum(jnp.asarray([1.0, 3.0, 10.0]) * (x - 1.0) ** 2) + 0.1 * jnp.sum(x ** 4)


# --- non-finite values never reach params or state --------------------------------------------

def _nan_outside(x):
  """A bowl whose value is NaN outside the ball of radius 1.5 (a line search overshoots)."""
  v = jnp.sum((x - 1.0) ** 2)
  return jnp.where(jnp.sum(x ** 2) < 2.25, v, jnp.nan)


def _all_finite(tree):
  """No NaN anywhere, and finite values except the searches' error diagnostics (`inf` there,
  as optax's, says a search failed)."""
  ok = True
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact):
      continue
    diagnostic = "error" in jax.tree_util.keystr(path)
    ok &= bool(jnp.all(~jnp.isnan(leaf) if diagnostic else jnp.isfinite(leaf)))
  return ok


@pytest.mark.parametrize("make", [
    lambda: gradtx.lbfgs(),
    lambda: gradtx.chain(gradtx.sgd(10.0), gradtx.scale_by_backtracking_linesearch(
        5, store_grad=True)),
    lambda: gradtx.bfgs(),
], ids=["lbfgs-zoom", "backtracking", "bfgs"])
def test_nan_inside_the_line_search_never_reaches_params_or_state(make):
  tx = make()
  x = jnp.asarray([0.2, -0.1])
  state = tx.init(x)
  step = jax.jit(lambda x, s: tx.update(jax.grad(_nan_outside)(x), s, x, value_fn=_nan_outside))
  for _ in range(6):
    updates, state = step(x, state)
    x = x + updates
    assert _all_finite((x, state))
  # A loss that is NaN at every trial point: no step, and the state keeps finite values.
  always_nan = lambda y: jnp.where(jnp.all(y == x), _nan_outside(y), jnp.nan)
  updates, state = tx.update(jax.grad(_nan_outside)(x), state, x, value=_nan_outside(x),
                             grad=jax.grad(_nan_outside)(x), value_fn=always_nan)
  assert _all_finite((updates, state))
  np.testing.assert_array_equal(updates, 0.0)


# --- calling convention, errors, lax.scan ------------------------------------------------------

@pytest.mark.parametrize("make", [gradtx.lbfgs, gradtx.bfgs, gradtx.nonlinear_cg,
                                  gradtx.stochastic_lbfgs])
def test_missing_value_fn_raises_naming_it_also_through_chain(make):
  x = jnp.ones(2)
  for tx in (make(), gradtx.chain(gradtx.clip_by_global_norm(1.0), make())):
    with pytest.raises(ValueError, match="value_fn=lambda p"):
      tx.update(x, tx.init(x), x)
  with pytest.raises(ValueError, match="params"):
    make().update(x, make().init(x), value_fn=_quad)


def test_value_and_grad_default_from_value_fn_and_extras():
  """`value`/`grad` are computed from value_fn when omitted; extras that value_fn takes by name
  reach it (as optax's), others, and residual_fn=, are ignored."""
  x = jnp.asarray([0.3, -0.2, 0.1])
  data = jnp.asarray([1.0, 2.0, 3.0])
  loss = lambda p, data: jnp.sum((p - data) ** 2)
  tx = gradtx.lbfgs()
  v, g = jax.value_and_grad(loss)(x, data)
  want, _ = tx.update(g, tx.init(x), x, value=v, grad=g, value_fn=loss, data=data)
  got, _ = tx.update(g, tx.init(x), x, value_fn=loss, data=data, residual_fn=lambda p: p,
                     unknown=1.0)
  np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("call, match", [
    (lambda: gradtx.lbfgs(memory_size=0), "memory_size"),
    (lambda: gradtx.scale_by_lbfgs(memory_size=0), "memory_size"),
    (lambda: gradtx.stochastic_lbfgs(memory_size=0), "memory_size"),
    (lambda: gradtx.stochastic_lbfgs(delta=0.0), "delta"),
    (lambda: gradtx.nonlinear_cg("conjugate"), "method"),
    (lambda: gradtx.nonlinear_cg(restart_period=0), "restart_period"),
    (lambda: gradtx.scale_by_zoom_linesearch(0), "max_linesearch_steps"),
    (lambda: gradtx.scale_by_zoom_linesearch(10, initial_guess_strategy="two"),
     "initial_guess_strategy"),
    (lambda: gradtx.scale_by_zoom_linesearch(10, slope_rtol=1.5), "slope_rtol"),
    (lambda: gradtx.scale_by_backtracking_linesearch(10, decrease_factor=1.0),
     "decrease_factor"),
    (lambda: gradtx.scale_by_backtracking_linesearch(10, fixed_steps="yes"), "fixed_steps"),
    (lambda: gradtx.value_and_grad_from_state(3.0), "value_fn"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises((ValueError, TypeError), match=match):
    call()


def test_value_and_grad_from_state_needs_a_stored_gradient():
  tx = gradtx.chain(gradtx.sgd(1.0), gradtx.scale_by_backtracking_linesearch(5))
  with pytest.raises(ValueError, match="store_grad=True"):
    gradtx.value_and_grad_from_state(_quad)(jnp.zeros(6), state=tx.init(jnp.zeros(6)))


def test_lax_scan_over_steps_and_jit_of_a_clipped_chain():
  tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.bfgs())
  x0 = jnp.zeros(6)

  def step(carry, _):
    x, state = carry
    updates, state = tx.update(jax.grad(_quad)(x), state, x, value_fn=_quad)
    return (x + updates, state), None

  (x, state), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=30))((x0, tx.init(x0)))
  assert jax.tree.structure(state) == jax.tree.structure(tx.init(x0))
  np.testing.assert_allclose(x, 1.0, atol=1e-3)


def test_projection_box_after_the_step_gives_lbfgs_b_solution():
  """Projected L-BFGS (see gradtx.optimizers.quasi_newton's docstring) against SciPy's L-BFGS-B
  on a coupled box-constrained quadratic whose bounds are active in two coordinates."""
  scipy_optimize = pytest.importorskip("scipy.optimize")
  rng = np.random.default_rng(0)
  m = rng.normal(size=(6, 6))
  a = np.diag(np.logspace(0.0, 1.0, 6)) + 0.1 * m @ m.T
  t = np.asarray([2.0, -3.0, 0.2, 0.1, -0.3, 0.4])
  a32, t32 = jnp.asarray(a, jnp.float32), jnp.asarray(t, jnp.float32)
  f = lambda x: 0.5 * (x - t32) @ a32 @ (x - t32)
  lower, upper = jnp.full(6, -0.5), jnp.full(6, 0.5)
  tx = gradtx.lbfgs()

  project = lambda p: gradtx.projections.projection_box(p, lower, upper)

  @jax.jit
  def step(x, state):
    g = jax.grad(f)(x)
    g = jnp.where(((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0)), 0.0, g)
    updates, state = tx.update(g, state, x, value_fn=lambda p: f(project(p)))
    return project(gradtx.apply_updates(x, updates)), state

  x, state = jnp.zeros(6), tx.init(jnp.zeros(6))
  for _ in range(50):
    x, state = step(x, state)
  ref = scipy_optimize.minimize(lambda v: (0.5 * (v - t) @ a @ (v - t), a @ (v - t)),
                                np.zeros(6), jac=True, method="L-BFGS-B",
                                bounds=[(-0.5, 0.5)] * 6, options=dict(gtol=1e-12, ftol=0.0))
  assert np.sum(np.isclose(np.abs(ref.x), 0.5)) >= 2
  np.testing.assert_allclose(x, ref.x, atol=1e-5)


def test_nnx_optimizer_passes_value_fn():
  nnx = pytest.importorskip("flax.nnx")
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
  y = x @ jnp.asarray([[1.0], [-2.0], [0.5]]) + 0.3
  optimizer = nnx.Optimizer(model, gradtx.lbfgs(), wrt=nnx.Param)
  graphdef, _, rest = nnx.split(model, nnx.Param, ...)

  def loss(model):
    return jnp.mean((model(x) - y) ** 2)

  @nnx.jit
  def train_step(model, optimizer):
    value, grads = nnx.value_and_grad(loss)(model)
    value_fn = lambda params: loss(nnx.merge(graphdef, params, rest))
    optimizer.update(model, grads, value=value, grad=grads, value_fn=value_fn)
    return value

  first = train_step(model, optimizer)
  for _ in range(10):
    last = train_step(model, optimizer)
  assert last < 1e-4 * first
