"""Curvature-based methods (transforms/newton.py, transforms/least_squares.py, optimizers/newton.py):
SciPy's Newton-CG, dense NumPy steps (tests/reference.py), saddle escape, optimistix's
Gauss-Newton and Levenberg-Marquardt, Moré's damping rule, vmap sweeps and fixed trip counts,
injected NaNs, chain / scan / nnx, missing arguments and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import reference as ref


def _descend(tx, f, x, steps, **kw):
  """`steps` jitted updates of `tx` on the loss `f` (value, grad and value_fn passed)."""
  @jax.jit
  def step(x, s):
    v, g = jax.value_and_grad(f)(x)
    u, s = tx.update(g, s, x, value=v, grad=g, value_fn=f, **kw)
    return gradtx.apply_updates(x, u), s

  s = tx.init(x)
  for _ in range(steps):
    x, s = step(x, s)
  return x, s


# --- SciPy's Newton-CG ---------------------------------------------------------------------------

def _rosen(x):
  return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _beale(p):
  x, y = p[0], p[1]
  return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2 + (2.625 - x + x * y ** 3) ** 2


def _problems():
  from sklearn.datasets import load_digits  # noqa: PLC0415
  a = jnp.diag(jnp.logspace(0, 4, 20))  # condition number 1e4
  xs, ys = load_digits(return_X_y=True)
  xs, ys = jnp.asarray(xs[:300] / 16.0), jnp.asarray((ys[:300] % 2 == 0).astype(float))

  def logistic(w):
    z = xs @ w[:-1] + w[-1]
    return jnp.mean(jnp.logaddexp(0, z) - ys * z) + 5e-3 * jnp.sum(w[:-1] ** 2)

  return {"rosenbrock-2": (_rosen, np.array([-1.2, 1.0])),
          "rosenbrock-100": (_rosen, np.zeros(100)),
          "beale": (_beale, np.array([1.0, 1.0])),
          "quadratic-1e4": (lambda x: 0.5 * x @ a @ x - jnp.sum(x), np.zeros(20)),
          "logistic-digits": (logistic, np.zeros(65))}


def test_newton_cg_matches_scipy_newton_cg():
  """gradtx.newton_cg reaches SciPy's Newton-CG optimum to 1e-5 relative within 1.5x its
  iterations (float64 on both sides)."""
  so = pytest.importorskip("scipy.optimize")
  pytest.importorskip("sklearn")
  table = []
  with jax.enable_x64(True):
    for name, (f, x0) in _problems().items():
      fg = jax.jit(jax.value_and_grad(f))
      hvp = jax.jit(lambda x, v, f=f: jax.jvp(jax.grad(f), (x,), (v,))[1])
      res = so.minimize(lambda x: float(fg(x)[0]), x0, jac=lambda x: np.asarray(fg(x)[1]),
                        hessp=lambda x, v: np.asarray(hvp(x, v)), method="Newton-CG",
                        options=dict(xtol=1e-10))
      tx = gradtx.newton_cg()

      @jax.jit
      def step(x, s, f=f, tx=tx):
        v, g = jax.value_and_grad(f)(x)
        u, s = tx.update(g, s, x, value=v, grad=g, value_fn=f)
        return x + u, s

      x = jnp.asarray(x0)
      s = tx.init(x)
      budget = int(1.5 * res.nit)
      scale = max(np.linalg.norm(res.x), 1.0)
      for it in range(1, budget + 1):
        x, s = step(x, s)
        err = np.linalg.norm(np.asarray(x) - res.x) / scale
        if err <= 1e-5:
          break
      table.append((name, res.nit, it, err))
      assert err <= 1e-5, (name, err, it, res.nit)
  print("\nproblem, scipy Newton-CG iterations, gradtx.newton_cg iterations, relative error")
  for row in table:
    print(*row)


# --- dense NumPy references ----------------------------------------------------------------------

def _spd_and_indefinite(n=6):
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(n, n)))
  spd = q @ np.diag(np.linspace(0.5, 4.0, n)) @ q.T
  indefinite = q @ np.diag(np.linspace(-3.0, 2.0, n)) @ q.T
  return spd, indefinite, rng.normal(size=n)


def test_steps_match_dense_numpy():
  with jax.enable_x64(True):
    spd, indefinite, b = _spd_and_indefinite()
    x = jnp.asarray(b)
    for hess, tx, want in [
        (spd, gradtx.scale_by_newton_cg(damping=0.3, cg_tol=1e-12),
         lambda g: ref.newton_cg_step(spd, g, 0.3)),
        (indefinite, gradtx.scale_by_saddle_free_newton(damping=0.2, krylov_dim=6),
         lambda g: ref.saddle_free_newton_step(indefinite, g, 0.2))]:
      f = lambda p, h=jnp.asarray(hess): 0.5 * p @ h @ p
      g = jax.grad(f)(x)
      d, _ = tx.update(g, tx.init(x), x, value_fn=f)
      np.testing.assert_allclose(np.asarray(d), want(np.asarray(g)), rtol=1e-9, atol=1e-12)

    # Levenberg-Marquardt and Hessian-free on a linear residual r = J x - y: the exact ratio is 1.
    jac = np.random.default_rng(1).normal(size=(9, 6))
    y = np.random.default_rng(2).normal(size=9)
    r = lambda p: jnp.asarray(jac) @ p - jnp.asarray(y)
    g = jax.grad(lambda p: 0.5 * jnp.sum(r(p) ** 2))(x)
    want, predicted = ref.levenberg_marquardt_step(jac, np.asarray(r(x)), 0.5)
    lm = gradtx.scale_by_levenberg_marquardt(init_damping=0.5, cg_tol=1e-12)
    d, s = lm.update(g, lm.init(x), x, residual_fn=r)
    np.testing.assert_allclose(np.asarray(d), want, rtol=1e-9)
    np.testing.assert_allclose(float(s.ratio), 1.0, rtol=1e-9)
    assert float(s.damping) == ref.more_damping_update(0.5, 1.0)
    hf = gradtx.scale_by_hessian_free(init_damping=0.5, cg_tol=1e-12)
    d, s = hf.update(g, hf.init(x), x, residual_fn=r)
    np.testing.assert_allclose(np.asarray(d), want, rtol=1e-9)
    assert float(s.damping) == pytest.approx(0.5 * 2 / 3)  # rho = 1 > 3/4 (Martens)
    np.testing.assert_allclose(np.asarray(s.direction), want, rtol=1e-9)  # next warm start


def test_levenberg_marquardt_damping_follows_more():
  """A poor or failed step raises the damping (a rejected one also returns zeros), a good one
  lowers it, as Moré's radius updates; the loss never increases."""
  r = lambda p: jnp.asarray([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])  # Rosenbrock's residuals
  loss = lambda p: 0.5 * jnp.sum(r(p) ** 2)
  tx = gradtx.scale_by_levenberg_marquardt(init_damping=1e-6)
  step = jax.jit(lambda g, s, x: tx.update(g, s, x, residual_fn=r))
  x, s = jnp.asarray([-1.2, 1.0]), tx.init(jnp.zeros(2))
  seen = set()
  for _ in range(30):
    lam = float(s.damping)
    d, s = step(jax.grad(loss)(x), s, x)
    rho = float(s.ratio)
    assert float(s.damping) == pytest.approx(
        min(max(ref.more_damping_update(lam, rho), 1e-10), 1e10), rel=1e-6)
    if rho <= 1e-4:
      assert not np.any(np.asarray(d))
      seen.add("rejected")
    else:
      seen.add("good" if rho > 0.75 else "poor" if rho < 0.25 else "fair")
    new = x - d
    assert float(loss(new)) <= float(loss(x))
    x = new
  assert {"rejected", "good"} <= seen
  np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=1e-4)


# --- saddles -------------------------------------------------------------------------------------

def test_saddle_free_newton_escapes_where_newton_converges_to_the_saddle():
  f = lambda p: p[0] ** 2 - p[1] ** 2 + p[1] ** 4 / 2  # saddle at 0, minima at (0, +-1)
  x0 = jnp.asarray([0.5, 1e-3])
  x, _ = _descend(gradtx.saddle_free_newton(), f, x0, 25)
  np.testing.assert_allclose(np.abs(np.asarray(x)), [0.0, 1.0], atol=1e-4)
  newton = gradtx.newton_cg(detect_negative_curvature=False, linesearch=None, cg_tol=1e-6)
  x, _ = _descend(newton, f, x0, 10)
  np.testing.assert_allclose(np.asarray(x), [0.0, 0.0], atol=1e-6)
  # Negative-curvature detection alone already keeps newton_cg off the saddle (descent).
  x, _ = _descend(gradtx.newton_cg(), f, x0, 40)
  assert float(f(x)) < -0.49

  # The quadratic saddle of Dauphin et al. (2014, Figure 2): Newton jumps onto it in one step,
  # saddle-free Newton leaves along the negative-curvature direction.
  g = lambda p: 5 * p[0] ** 2 - p[1] ** 2
  x1 = jnp.asarray([1.0, 0.1])
  x, _ = _descend(newton, g, x1, 1)
  np.testing.assert_allclose(np.asarray(x), [0.0, 0.0], atol=1e-6)
  x, s = _descend(gradtx.saddle_free_newton(linesearch=None), g, x1, 3)
  assert abs(float(x[0])) < 1e-3 and abs(float(x[1])) > 0.7
  assert float(s[0].min_eigenvalue) == pytest.approx(-2.0, rel=1e-4)


# --- least squares against optimistix ------------------------------------------------------------

def _least_squares_problems():
  t = jnp.linspace(0.0, 3.0, 20)
  y_exp = 2.5 * jnp.exp(-1.3 * t) + 0.5
  # A realisable regression: targets from a teacher MLP (3 tanh units), fitted from a perturbed
  # teacher (40 residuals, 10 weights), so both solvers can reach a zero loss.
  xs = jnp.linspace(-2.0, 2.0, 40)[:, None]
  teacher = {"w1": jnp.asarray([[1.0, -1.5, 0.7]]), "b1": jnp.asarray([0.1, -0.2, 0.3]),
             "w2": jnp.asarray([0.8, 0.5, -1.2]), "b2": jnp.asarray(0.1)}
  y_mlp = jnp.tanh(xs @ teacher["w1"] + teacher["b1"]) @ teacher["w2"] + teacher["b2"]
  keys = iter(jax.random.split(jax.random.key(0), 4))
  mlp0 = jax.tree.map(lambda w: w + 0.3 * jax.random.normal(next(keys), jnp.shape(w)), teacher)

  def mlp(p):
    return jnp.tanh(xs @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - y_mlp

  return {
      "exponential decay": (lambda p: p[0] * jnp.exp(-p[1] * t) + p[2] - y_exp,
                            jnp.asarray([1.0, 0.5, 0.0]), 30),
      "Powell singular": (lambda p: jnp.stack([p[0] + 10 * p[1], jnp.sqrt(5.0) * (p[2] - p[3]),
                                               (p[1] - 2 * p[2]) ** 2,
                                               jnp.sqrt(10.0) * (p[0] - p[3]) ** 2]),
                          jnp.asarray([3.0, -1.0, 0.0, 1.0]), 60),
      "MLP regression": (mlp, mlp0, 150),
  }


def test_gauss_newton_and_levenberg_marquardt_match_optimistix():
  optx = pytest.importorskip("optimistix")
  table = []
  with jax.enable_x64(True):
    for name, (r, x0, steps) in _least_squares_problems().items():
      x0 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), x0)
      loss = lambda p, r=r: 0.5 * sum(jnp.sum(v ** 2) for v in jax.tree.leaves(r(p)))
      sol = optx.least_squares(lambda p, _, r=r: r(p), optx.LevenbergMarquardt(1e-10, 1e-10),
                               x0, max_steps=1000, throw=False)
      want = float(loss(sol.value))
      for opt in (gradtx.gauss_newton(), gradtx.levenberg_marquardt()):
        @jax.jit
        def step(x, s, opt=opt, r=r, loss=loss):
          u, s = opt.update(jax.grad(loss)(x), s, x, residual_fn=r)
          return gradtx.apply_updates(x, u), s

        x, s = x0, opt.init(x0)
        for _ in range(steps):
          x, s = step(x, s)
        got = float(loss(x))
        table.append((name, type(s[0]).__name__, got, want))
        if name == "MLP regression":  # non-convex: the same fit, not necessarily the same weights
          assert got < 1e-12 and want < 1e-12, (name, got, want)
        elif name == "Powell singular":  # the minimiser 0 is singular: linear convergence
          assert got < 1e-12 and want < 1e-12
          np.testing.assert_allclose(np.asarray(x), 0.0, atol=2e-3)
        else:
          np.testing.assert_allclose(np.asarray(x), np.asarray(sol.value), rtol=1e-7)
  print("\nproblem, method, gradtx loss, optimistix LM loss")
  for row in table:
    print(*row)


# --- vmap sweeps, fixed trip counts, NaNs --------------------------------------------------------

def test_vmap_over_damping_equals_loop_and_fixed_steps():
  f = lambda x: _rosen(x) + 0.1 * jnp.sum(x ** 4)
  x0 = jnp.asarray([-1.2, 1.0, 0.5])

  def train(damping, fixed):
    tx = gradtx.newton_cg(damping=damping, fixed_steps=fixed, max_cg_steps=6)
    def body(carry, _):
      x, s = carry
      v, g = jax.value_and_grad(f)(x)
      u, s = tx.update(g, s, x, value=v, grad=g, value_fn=f)
      return (x + u, s), None
    return jax.lax.scan(body, (x0, tx.init(x0)), None, length=8)[0][0]

  dampings = jnp.asarray([0.0, 0.1, 1.0])
  for fixed in (False, True):
    batched = jax.jit(jax.vmap(lambda d, fixed=fixed: train(d, fixed)))(dampings)
    single = jax.jit(lambda d, fixed=fixed: train(d, fixed))
    for i, d in enumerate(dampings):
      np.testing.assert_allclose(batched[i], single(d), rtol=1e-5, atol=1e-6)
  # A fixed trip count does the same work on every lane and gives the same iterates.
  np.testing.assert_allclose(jax.jit(lambda: train(0.1, True))(),
                             jax.jit(lambda: train(0.1, False))(), rtol=1e-5, atol=1e-6)


def test_injected_nans_never_reach_params_or_state():
  def f(x):  # NaN wherever x[0] > 0.5: the line search's full steps land there
    return jnp.where(x[0] > 0.5, jnp.nan, _rosen(x))

  for tx in (gradtx.newton_cg(), gradtx.saddle_free_newton()):
    x, s = _descend(tx, f, jnp.asarray([-1.2, 1.0]), 15)
    assert np.all(np.isfinite(np.asarray(x))) and float(x[0]) <= 0.5
    assert not any(np.any(np.isnan(np.asarray(l))) for l in jax.tree.leaves(s))
    assert float(f(x)) < float(f(jnp.asarray([-1.2, 1.0])))
  # NaN curvature (and value) at the params: no step, finite state.
  g = lambda x: jnp.sum(x ** 2) + 0.0 * jnp.sqrt(x[0] - 10.0)
  for tx in (gradtx.newton_cg(), gradtx.saddle_free_newton(), gradtx.hessian_free()):
    x0 = jnp.asarray([1.0, 2.0])
    x, s = _descend(tx, g, x0, 2)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(x0))
    # No NaN in the state (a line search keeps inf, its init's "no value", for the NaN value).
    assert not any(np.any(np.isnan(np.asarray(l))) for l in jax.tree.leaves(s))
  # NaN residuals at the trial points: LM rejects the step and raises its damping.
  r = lambda p: jnp.where(p[0] > 0.5, jnp.nan, p - 1.0)
  lm = gradtx.levenberg_marquardt(init_damping=1e-6)
  x0 = jnp.zeros(2)
  u, s = lm.update(jax.grad(lambda p: 0.5 * jnp.sum((p - 1.0) ** 2))(x0), lm.init(x0), x0,
                   residual_fn=r)
  assert not np.any(np.asarray(u)) and float(s[0].damping) == pytest.approx(1e-5)


# --- chain, scan, nnx ----------------------------------------------------------------------------

def test_chain_with_clipping_under_jit_and_scan():
  f = lambda p: jnp.sum((p["w"] - 3.0) ** 2) + jnp.sum(p["b"] ** 4) + p["b"][0] * p["w"][0]
  p0 = {"w": jnp.zeros(3), "b": jnp.ones(2)}
  for opt in (gradtx.newton_cg(), gradtx.saddle_free_newton(), gradtx.hessian_free()):
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), opt)

    @jax.jit
    def run(p):
      def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(f)(p), s, p, value_fn=f)
        return (gradtx.apply_updates(p, u), s), f(p)
      return jax.lax.scan(body, (p, tx.init(p)), None, length=25)

    (p, _), losses = run(p0)
    assert float(f(p)) < 0.5 * float(losses[0])
    assert np.all(np.diff(np.asarray(losses)) <= 1e-6)  # never increases


def test_nnx_optimizer_passes_value_fn():
  nnx = pytest.importorskip("flax.nnx")
  xs = jnp.linspace(-1, 1, 16)[:, None]
  ys = 2.0 * xs - 0.5
  model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
  graphdef, _ = nnx.split(model)
  for tx in (gradtx.newton_cg(), gradtx.chain(gradtx.clip_by_global_norm(10.0),
                                              gradtx.saddle_free_newton())):
    model = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, opt):
      value_fn = lambda p: jnp.mean((nnx.merge(graphdef, p)(xs) - ys) ** 2)
      grads = nnx.grad(lambda m: jnp.mean((m(xs) - ys) ** 2))(model)
      opt.update(model, grads, value_fn=value_fn)

    for _ in range(3):
      train_step(model, opt)
    np.testing.assert_allclose(np.asarray(model.kernel[...]).ravel(), [2.0], atol=1e-4)


# --- missing arguments and bad input --------------------------------------------------------------

def test_missing_arguments_raise_from_update_also_through_chain():
  x = jnp.ones(2)
  for tx, name in [(gradtx.newton_cg(), "value_fn"), (gradtx.saddle_free_newton(), "value_fn"),
                   (gradtx.hessian_free(), "value_fn or residual_fn"),
                   (gradtx.gauss_newton(), "residual_fn"),
                   (gradtx.levenberg_marquardt(), "residual_fn")]:
    for t in (tx, gradtx.chain(gradtx.clip_by_global_norm(1.0), tx)):
      with pytest.raises(ValueError, match=rf"needs {name}.*update\(grads, state, params, "):
        t.update(x, t.init(x), x, value=jnp.asarray(1.0), grad=x)
    with pytest.raises(ValueError, match="params"):
      tx.update(x, tx.init(x), None, value_fn=jnp.sum, residual_fn=lambda p: p)
  # Unneeded ones are accepted and ignored.
  tx = gradtx.levenberg_marquardt()
  u, _ = tx.update(x, tx.init(x), x, value=1.0, grad=x, value_fn=jnp.sum,
                   residual_fn=lambda p: p)
  assert np.all(np.isfinite(np.asarray(u)))


@pytest.mark.parametrize("factory,kwargs,arg", [
    (gradtx.newton_cg, dict(cg_tol=0.0), "cg_tol"),
    (gradtx.newton_cg, dict(max_cg_steps=0), "max_cg_steps"),
    (gradtx.newton_cg, dict(damping=-1.0), "damping"),
    (gradtx.newton_cg, dict(linesearch="zoom"), "linesearch"),
    (gradtx.newton_cg, dict(fixed_steps=1), "fixed_steps"),
    (gradtx.newton_cg, dict(fixed_trip_count=True), "fixed_trip_count"),  # one spelling only
    (gradtx.saddle_free_newton, dict(damping=0.0), "damping"),
    (gradtx.saddle_free_newton, dict(krylov_dim=0), "krylov_dim"),
    (gradtx.hessian_free, dict(init_damping=0.0), "init_damping"),
    (gradtx.hessian_free, dict(warm_start_decay=1.5), "warm_start_decay"),
    (gradtx.hessian_free, dict(cg_tol=-1.0), "cg_tol"),
    (gradtx.gauss_newton, dict(cg_tol=0.0), "cg_tol"),
    (gradtx.levenberg_marquardt, dict(init_damping=-1.0), "init_damping"),
    (gradtx.levenberg_marquardt, dict(min_damping=1.0, max_damping=0.5), "max_damping"),
])
def test_bad_input_names_the_argument(factory, kwargs, arg):
  with pytest.raises((ValueError, TypeError), match=arg):
    factory(**kwargs)
