"""Tests of gradtx/projections/ (boxes, affine, balls, simplex) and gradtx.nnls (numerics.py).

Each projection: bit-identical to optax 0.2.8 on random pytrees (f32, bf16, mixed dtypes), a
NumPy float64 reference (the simplex by sorting and by bisection; the l1 ball against a
brute-force QP by scipy and its KKT conditions), the result lies in the set, projecting twice
equals projecting once, jit / vmap (a batch of radii equals a Python loop), gradients (optax's and
central differences in float64), and bad input naming the argument. nnls: bit-identical to
optax.nnls, scipy.optimize.nnls on well-conditioned problems, the scan's static length, jit /
vmap, bad input.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import projections as P

scipy_optimize = pytest.importorskip("scipy.optimize")

OP = optax.projections
NAMES = sorted(P.__all__)


def _tree(seed, dtype=jnp.float32, scale=2.0):
  """A nested pytree: a matrix, a vector inside a tuple, a scalar."""
  k = jax.random.split(jax.random.key(seed), 3)
  t = {"m": jax.random.normal(k[0], (3, 2)), "v": (jax.random.normal(k[1], (4,)),),
       "s": jax.random.normal(k[2], ())}
  return jax.tree.map(lambda x: (scale * x).astype(dtype), t)


def _normal(seed, dtype=jnp.float32):
  return _tree(seed + 100, dtype, scale=1.0)


def _calls(seed, dtype=jnp.float32):
  """(name, args, kwargs) covering each projection's argument variants (optax's calling forms:
  box bounds as full trees, since optax's scalar bounds only work for single-array trees)."""
  t, a = _tree(seed, dtype), _normal(seed, dtype)
  lower = jax.tree.map(lambda x: jnp.full_like(x, -0.5), t)
  upper = jax.tree.map(lambda x: jnp.full_like(x, 0.7), t)
  tiny = jax.tree.map(lambda x: x / 100, t)  # inside the unit balls: returned as is
  return [
      ("projection_non_negative", (t,), {}),
      ("projection_box", (t, lower, upper), {}),
      ("projection_hypercube", (t["m"],), {}),
      ("projection_hypercube", (t["m"],), {"scale": 0.3}),
      ("projection_linf_ball", (t,), {}),
      ("projection_linf_ball", (t,), {"scale": 0.25}),
      ("projection_vector", (t, a), {}),
      ("projection_hyperplane", (t, a, 0.5), {}),
      ("projection_halfspace", (t, a, -1.5), {}),
      ("projection_halfspace", (t, a, 100.0), {}),  # inside: unchanged
      ("projection_simplex", (t,), {}),
      ("projection_simplex", (t,), {"scale": 3.0}),
      ("projection_l1_sphere", (t,), {"scale": 2.0}),
      ("projection_l1_ball", (t,), {}),
      ("projection_l1_ball", (tiny,), {}),
      ("projection_l2_sphere", (t,), {"scale": 0.5}),
      ("projection_l2_ball", (t,), {}),
      ("projection_l2_ball", (tiny,), {"scale": 1.0}),
  ]


def _assert_trees_equal(got, want, dtype=None):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    w = jnp.asarray(w) if dtype is None else jnp.asarray(w).astype(dtype)
    assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
    np.testing.assert_array_equal(np.asarray(g, np.float64), np.asarray(w, np.float64))


def _flat(tree):
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])


# ------------------------------------------------------------------------------ optax parity


def test_every_optax_projection_is_here_with_optax_signature():
  assert NAMES == sorted(n for n in dir(OP) if not n.startswith("_"))
  import inspect
  for name in NAMES:
    ours, theirs = inspect.signature(getattr(P, name)), inspect.signature(getattr(OP, name))
    assert list(ours.parameters) == list(theirs.parameters), name
    assert [p.default for p in ours.parameters.values()] == [
        p.default for p in theirs.parameters.values()], name


def _jit_run(lib, calls):
  """Every call of `calls` inside one jitted function (one compile): arrays are traced,
  names and keyword radii static."""
  run = jax.jit(lambda argss: [getattr(lib, n)(*a, **k) for (n, _, k), a in zip(calls, argss)])
  return run([a for _, a, _ in calls])


def test_eager_bit_identical_to_optax():
  calls = list({name: (name, args, kwargs) for name, args, kwargs in _calls(0)}.values())
  assert len(calls) == len(NAMES)
  for name, args, kwargs in calls:
    _assert_trees_equal(getattr(P, name)(*args, **kwargs), getattr(OP, name)(*args, **kwargs))


def test_jit_bit_identical_to_optax_and_close_to_eager():
  calls = [c for seed in range(2) for c in _calls(seed)]
  ours = _jit_run(P, calls)
  for got, want in zip(ours, _jit_run(OP, calls)):
    _assert_trees_equal(got, want)
  for (name, args, kwargs), got in zip(calls[:len(_calls(0))], ours):
    np.testing.assert_allclose(_flat(got), _flat(getattr(P, name)(*args, **kwargs)),
                               rtol=1e-6, atol=1e-7, err_msg=name)


def test_bit_identical_to_optax_bf16_and_mixed_dtypes():
  every = _calls(7, jnp.bfloat16)
  calls = list({c[0]: c for c in reversed(every)}.values()) + [every[13]]  # + l1 ball, outside
  assert len(calls) == len(NAMES) + 1 and calls[-1][0] == "projection_l1_ball"
  # optax's l1 ball fails on bf16 (its cond's branches differ: its simplex returns f32 there).
  theirs = iter(_jit_run(OP, [c for c in calls if c[0] != "projection_l1_ball"]))
  for (name, args, kwargs), ours in zip(calls, _jit_run(P, calls)):
    for leaf in jax.tree.leaves(ours):
      assert leaf.dtype == jnp.bfloat16, name  # bf16 in, bf16 out
    if name == "projection_l1_ball":  # compare with optax's branches
      inside = np.abs(_flat(args[0])).sum() <= 1
      _assert_trees_equal(ours, args[0] if inside else OP.projection_l1_sphere(*args, **kwargs),
                          jnp.bfloat16)
      continue
    # optax's simplex (and l1 sphere) returns f32 for an all-bf16 tree; gradtx casts that
    # same f32 result back to bf16.
    _assert_trees_equal(ours, next(theirs), jnp.bfloat16)
  # A mixed-dtype tree: optax's ravel/unravel casts back per leaf, so the results agree exactly.
  mixed = {"f": _tree(3)["m"], "h": _tree(4, jnp.bfloat16)["v"][0]}
  calls = [(n, (mixed,), {}) for n in ("projection_simplex", "projection_l1_sphere",
                                       "projection_l1_ball", "projection_l2_ball")]
  for got, want in zip(_jit_run(P, calls), _jit_run(OP, calls)):
    _assert_trees_equal(got, want)


# ------------------------------------------------------------------------- NumPy references


def _np_simplex_sort(v, s):
  """Duchi et al. 2008, Figure 1, in float64."""
  u = np.sort(v)[::-1]
  css = np.cumsum(u)
  j = np.arange(1, len(v) + 1)
  rho = np.nonzero(u - (css - s) / j > 0)[0][-1] + 1
  theta = (css[rho - 1] - s) / rho
  return np.maximum(v - theta, 0.0)


def _np_simplex_bisection(v, s):
  """The threshold theta with sum(max(v - theta, 0)) = s, by bisection (independent of sorting)."""
  lo, hi = v.min() - s, v.max()
  for _ in range(200):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if np.maximum(v - mid, 0).sum() > s else (lo, mid)
  return np.maximum(v - (lo + hi) / 2, 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_simplex_matches_numpy_sort_and_bisection(seed):
  t = _tree(seed)
  v = _flat(t)
  for s in (1.0, 0.3, 5.0):
    got = _flat(P.projection_simplex(t, s))
    ref = _np_simplex_sort(v, s)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref, _np_simplex_bisection(v, s), atol=1e-10)
  # The flattened order is jax.tree's: leaves keep their places.
  got = P.projection_simplex(t)
  np.testing.assert_allclose(np.asarray(got["m"]).ravel(),
                             _np_simplex_sort(v, 1.0)[:6], rtol=1e-5, atol=1e-6)


def _qp_l1_ball(x, r):
  """Brute force: min ||x - (y+ - y-)||^2 s.t. y+, y- >= 0, sum(y+ + y-) <= r (SLSQP)."""
  n = len(x)
  obj = lambda z: np.sum((x - z[:n] + z[n:]) ** 2)
  grad = lambda z: np.concatenate([-2 * (x - z[:n] + z[n:]), 2 * (x - z[:n] + z[n:])])
  res = scipy_optimize.minimize(
      obj, np.zeros(2 * n), jac=grad, method="SLSQP", bounds=[(0, None)] * (2 * n),
      constraints=[{"type": "ineq", "fun": lambda z: r - z.sum(),
                    "jac": lambda z: -np.ones(2 * n)}],
      options={"ftol": 1e-14, "maxiter": 500})
  assert res.success
  return res.x[:n] - res.x[n:]


def test_l1_ball_matches_scipy_qp_and_kkt():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    for trial in range(4):
      x = {"a": jnp.asarray(rng.normal(size=3) * 2), "b": jnp.asarray(rng.normal())}
      r = [0.5, 1.0, 2.5, 20.0][trial]
      y = _flat(P.projection_l1_ball(x, r))
      xf = _flat(x)
      np.testing.assert_allclose(y, _qp_l1_ball(xf, r), atol=1e-6)
      if np.abs(xf).sum() <= r:
        np.testing.assert_array_equal(y, xf)
        continue
      # KKT: y = sign(x) max(|x| - theta, 0) with theta > 0 and ||y||_1 = r.
      np.testing.assert_allclose(np.abs(y).sum(), r, rtol=1e-12)
      support = y != 0
      assert np.all(np.sign(y[support]) == np.sign(xf[support]))
      theta = np.abs(xf[support]) - np.abs(y[support])
      np.testing.assert_allclose(theta, theta[0], rtol=1e-10)
      assert theta[0] > 0 and np.all(np.abs(xf[~support]) <= theta[0] + 1e-12)


def test_closed_forms_match_numpy():
  t, a = _tree(1), _normal(1)
  x, av = _flat(t), _flat(a)
  np.testing.assert_allclose(_flat(P.projection_non_negative(t)), np.maximum(x, 0))
  np.testing.assert_allclose(_flat(P.projection_box(t, -0.5, 0.7)), np.clip(x, -0.5, 0.7),
                             rtol=1e-7)
  np.testing.assert_allclose(_flat(P.projection_hypercube(t, 0.3)), np.clip(x, 0, 0.3), rtol=1e-7)
  np.testing.assert_allclose(_flat(P.projection_linf_ball(t, 0.25)), np.clip(x, -0.25, 0.25),
                             rtol=1e-7)
  tol = {"rtol": 1e-5, "atol": 1e-6}
  np.testing.assert_allclose(_flat(P.projection_vector(t, a)), x @ av / (av @ av) * av, **tol)
  np.testing.assert_allclose(_flat(P.projection_hyperplane(t, a, 0.5)),
                             x + (0.5 - x @ av) / (av @ av) * av, **tol)
  np.testing.assert_allclose(_flat(P.projection_halfspace(t, a, -1.5)),
                             x + min((-1.5 - x @ av) / (av @ av), 0) * av, **tol)
  norm = np.linalg.norm(x)
  np.testing.assert_allclose(_flat(P.projection_l2_sphere(t, 0.5)), 0.5 * x / norm, **tol)
  np.testing.assert_allclose(_flat(P.projection_l2_ball(t, 0.5)), x * min(1, 0.5 / norm), **tol)
  np.testing.assert_allclose(_flat(P.projection_l1_sphere(t, 2.0)),
                             np.sign(x) * _np_simplex_sort(np.abs(x), 2.0), **tol)


# --------------------------------------------------------------- in the set, and idempotent


def _in_set(name, args, kwargs, p):
  """Asserts that the projection `p` lies in the set that (args, kwargs) define."""
  y = _flat(p)
  scale = np.float32(kwargs.get("scale", 1.0))  # the set's bound as the f32 arrays hold it
  tol = 1e-5 * max(1.0, scale)
  if name == "projection_non_negative":
    assert np.all(y >= 0)
  elif name == "projection_box":
    assert np.all(y >= _flat(args[1])) and np.all(y <= _flat(args[2]))
  elif name == "projection_hypercube":
    assert np.all(y >= 0) and np.all(y <= scale)
  elif name == "projection_linf_ball":
    assert np.max(np.abs(y)) <= scale
  elif name == "projection_vector":
    a = _flat(args[1])
    np.testing.assert_allclose(y, (y @ a) / (a @ a) * a, rtol=1e-5, atol=1e-6)
  elif name == "projection_hyperplane":
    np.testing.assert_allclose(y @ _flat(args[1]), args[2], atol=1e-5)
  elif name == "projection_halfspace":
    assert y @ _flat(args[1]) <= args[2] + 1e-5
  elif name == "projection_simplex":
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(), scale, atol=tol)
  elif name == "projection_l1_sphere":
    np.testing.assert_allclose(np.abs(y).sum(), scale, atol=tol)
  elif name == "projection_l1_ball":
    assert np.abs(y).sum() <= scale + tol
  elif name == "projection_l2_sphere":
    np.testing.assert_allclose(np.linalg.norm(y), scale, atol=tol)
  elif name == "projection_l2_ball":
    assert np.linalg.norm(y) <= scale + tol
  else:
    raise AssertionError(name)


def _others(x, seed):
  return jax.tree.map(lambda v: v * (seed - 1) + 0.3, x)


def test_in_the_set_idempotent_and_nearest():
  """The projection p of x lies in the set C; projecting p again gives p; and, for convex C,
  <x - p, y - p> <= 0 for other points y of C (projections of other points)."""
  calls = _calls(5)

  def run(argss):
    out = []
    for (name, _, kwargs), args in zip(calls, argss):
      fn = getattr(P, name)
      once = fn(*args, **kwargs)
      twice = fn(once, *args[1:], **kwargs)
      others = [fn(_others(args[0], seed), *args[1:], **kwargs) for seed in (0, 2)]
      out.append((once, twice, others))
    return out

  for (name, args, kwargs), (once, twice, others) in zip(
      calls, jax.jit(run)([a for _, a, _ in calls])):
    _in_set(name, args, kwargs, once)
    np.testing.assert_allclose(_flat(twice), _flat(once), rtol=2e-6, atol=1e-6, err_msg=name)
    if name in ("projection_l1_sphere", "projection_l2_sphere"):
      continue  # spheres are not convex
    x, p = _flat(args[0]), _flat(once)
    for y in map(_flat, others):
      assert (x - p) @ (y - p) <= 1e-4 * (1 + np.abs(x - p).sum()), name


def test_box_broadcasts_scalar_bounds_over_a_tree():
  # optax requires full trees of bounds unless the tree is one array; gradtx broadcasts a scalar.
  t = _tree(2)
  full = lambda v: jax.tree.map(lambda x: jnp.full_like(x, v), t)
  _assert_trees_equal(P.projection_box(t, -0.5, 0.7), OP.projection_box(t, full(-0.5), full(0.7)))
  _assert_trees_equal(P.projection_hypercube(t, 0.3), OP.projection_box(t, full(0.0), full(0.3)))
  scales = jax.tree.map(lambda x: jnp.full_like(x, 0.2), t)
  np.testing.assert_array_equal(_flat(P.projection_hypercube(t, scales)),
                                np.clip(_flat(t), 0, np.float32(0.2)))


# ------------------------------------------------------------------------------- jit / vmap


@functools.partial(jax.jit, static_argnums=0)
def _project_batch(names, t, scales):
  return [jax.vmap(lambda s, n=name: getattr(P, n)(t, s))(scales) for name in names]


def test_vmap_over_radii_and_trees_equals_a_loop():
  t = _tree(3)
  scales = jnp.array([0.1, 0.5, 1.0, 4.0, 50.0])
  names = ("projection_hypercube", "projection_linf_ball", "projection_simplex",
           "projection_l1_sphere", "projection_l1_ball", "projection_l2_sphere",
           "projection_l2_ball")
  batched = _project_batch(names, t, scales)  # traced radii pass the checks
  one = jax.jit(lambda s: [getattr(P, n)(t, s) for n in names])
  for i, s in enumerate(scales):
    for name, out, want in zip(names, batched, one(s)):
      np.testing.assert_allclose(_flat(jax.tree.map(lambda x, i=i: x[i], out)), _flat(want),
                                 rtol=1e-6, atol=1e-7, err_msg=f"{name} {s}")
  # A batch of trees and normals through the affine projections.
  ts = jax.tree.map(lambda *xs: jnp.stack(xs), *[_tree(s) for s in range(3)])
  a = _normal(0)
  out = jax.vmap(lambda x: (P.projection_hyperplane(x, a, 0.5), P.projection_simplex(x)))(ts)
  for i in range(3):
    x = _tree(i)
    np.testing.assert_allclose(_flat(jax.tree.map(lambda y, i=i: y[i], out[0])),
                               _flat(P.projection_hyperplane(x, a, 0.5)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_flat(jax.tree.map(lambda y, i=i: y[i], out[1])),
                               _flat(P.projection_simplex(x)), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------- gradients


def test_gradients_match_optax_and_finite_differences():
  with jax.enable_x64(True):
    rng = np.random.default_rng(1)
    x = rng.normal(size=6) * 1.5  # no ties, no zeros: every projection is differentiable here
    a = jnp.asarray(rng.normal(size=6))
    directions = jnp.asarray(rng.normal(size=(2, 6)))
    cases = (lambda v: P.projection_simplex(v, 1.0),
             lambda v: P.projection_l1_ball(v, 2.0),
             lambda v: P.projection_l1_sphere(v, 2.0),
             lambda v: P.projection_l2_ball(v, 1.0),
             lambda v: P.projection_l2_sphere(v, 1.0),
             lambda v: P.projection_halfspace(v, a, -1.0),
             lambda v: P.projection_box(v, -0.5, 0.5))
    eps = 1e-6

    @jax.jit
    def jvps_and_differences(v, ds):
      return [(jax.vmap(lambda d, f=f: jax.jvp(f, (v,), (d,))[1])(ds),
               jax.vmap(lambda d, f=f: (f(v + eps * d) - f(v - eps * d)) / (2 * eps))(ds))
              for f in cases]

    for i, (tangents, differences) in enumerate(jvps_and_differences(jnp.asarray(x), directions)):
      np.testing.assert_allclose(tangents, differences, atol=1e-6, err_msg=str(i))
    # The simplex's custom JVP: the same Jacobian as optax's, columns summing to 0.
    jac = jax.jit(jax.jacobian(P.projection_simplex))(jnp.asarray(x))
    np.testing.assert_array_equal(
        jac, jax.jit(jax.jacobian(OP.projection_simplex))(jnp.asarray(x)))
    np.testing.assert_allclose(np.asarray(jac).sum(axis=0), 0, atol=1e-12)
  # f32 gradients of a loss through a tree: equal to optax's, finite.
  t, w = _tree(0), _normal(0)
  names = ("projection_simplex", "projection_l1_ball", "projection_l2_ball")
  grads = lambda lib: jax.jit(lambda tr: [jax.grad(
      lambda u, n=n: gradtx.tree.vdot(getattr(lib, n)(u), w))(tr) for n in names])(t)
  for g, want in zip(grads(P), grads(OP)):
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(g))
    _assert_trees_equal(g, want)


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["projection_hypercube", "projection_linf_ball",
                                  "projection_l1_ball", "projection_l1_sphere",
                                  "projection_l2_ball", "projection_l2_sphere",
                                  "projection_simplex"])
def test_negative_radius_raises_naming_scale(name):
  # optax returns garbage silently (e.g. projection_l2_ball with scale=-1 flips the sign).
  t = _tree(0)
  with pytest.raises(ValueError, match="scale"):
    getattr(P, name)(t, -1.0)
  with pytest.raises(ValueError, match="scale"):
    getattr(P, name)(t, jnp.asarray(-0.5))
  # A traced radius is not checked (its value is unknown).
  jax.jit(lambda s: getattr(P, name)(t, s))(0.5)


def test_bad_input_raises_naming_the_argument():
  t, a = _tree(0), _normal(0)
  for name in ("projection_simplex", "projection_l1_sphere", "projection_l1_ball"):
    with pytest.raises(ValueError, match="scale"):  # optax: NaN
      getattr(P, name)(t, 0.0)
    with pytest.raises(ValueError, match="scale"):
      getattr(P, name)(t, jnp.ones(3))
  with pytest.raises(ValueError, match="tree"):
    P.projection_simplex({"a": jnp.zeros((0,))})
  with pytest.raises(ValueError, match="scale"):
    P.projection_hypercube(t, jax.tree.map(lambda x: jnp.full_like(x, -1.0), t))
  with pytest.raises(ValueError, match="upper"):  # an empty box
    P.projection_box(t, 1.0, -1.0)
  with pytest.raises(ValueError, match="lower"):
    P.projection_box(t, {"m": 0.0}, 1.0)
  with pytest.raises(ValueError, match="a must have the structure"):
    P.projection_vector(t, {"m": a["m"]})
  with pytest.raises(ValueError, match="a must have the leaf shapes"):
    P.projection_hyperplane(t, {**a, "m": a["m"].T}, 0.0)
  with pytest.raises(ValueError, match="a must be non-zero"):
    P.projection_halfspace(t, jax.tree.map(jnp.zeros_like, a), 0.0)
  with pytest.raises(ValueError, match="b"):
    P.projection_hyperplane(t, a, jnp.ones(2))
  with pytest.raises(TypeError, match="scale"):
    P.projection_l2_ball(t, "1")


# ------------------------------------------------------------------------------------ nnls


def _problem(seed, m, n, k=(), dtype=jnp.float32):
  ka, kb = jax.random.split(jax.random.key(seed))
  return (jax.random.normal(ka, (m, n), dtype=dtype), jax.random.normal(kb, (m, *k), dtype=dtype))


def test_nnls_bit_identical_to_optax():
  import inspect
  assert list(inspect.signature(gradtx.nnls).parameters) == list(
      inspect.signature(optax.nnls).parameters)
  for seed, (m, n, k), iters, kwargs in [
      (0, (10, 6, ()), 0, {}), (2, (10, 6, ()), 30, {}), (3, (8, 11, (3,)), 12, {}),
      (4, (10, 6, (2,)), 25, {"unroll": 5, "L": 80.0}), (5, (6, 4, ()), 5, {"unroll": True})]:
    A, b = _problem(seed, m, n, k)
    np.testing.assert_array_equal(gradtx.nnls(A, b, iters, **kwargs),
                                  optax.nnls(A, b, iters, **kwargs))
  Ab, bb = _problem(5, 10, 6, (), jnp.bfloat16)
  got = gradtx.nnls(Ab, bb, 10)
  assert got.dtype == jnp.bfloat16 and got.shape == (6,)
  np.testing.assert_array_equal(np.asarray(got, np.float32),
                                np.asarray(optax.nnls(Ab, bb, 10), np.float32))
  zero = jnp.zeros((4, 3))  # Q = 0: L is replaced by 1, x stays 0
  np.testing.assert_array_equal(gradtx.nnls(zero, jnp.ones(4), 5), jnp.zeros(3))


def test_nnls_matches_scipy_and_is_non_negative():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    for m, n in ((8, 4), (12, 6)):
      # Well conditioned: a random orthogonal matrix times singular values in [1, 3].
      u, _ = np.linalg.qr(rng.normal(size=(m, n)))
      v, _ = np.linalg.qr(rng.normal(size=(n, n)))
      A = u @ np.diag(np.linspace(1, 3, n)) @ v
      b = rng.normal(size=m)
      x = np.asarray(gradtx.nnls(jnp.asarray(A), jnp.asarray(b), 2000))
      want, _ = scipy_optimize.nnls(A, b)
      assert np.all(x >= 0)
      np.testing.assert_allclose(x, want, atol=1e-8)
  A, b = _problem(0, 10, 6)
  x = np.asarray(gradtx.nnls(A, b, 200))
  want, _ = scipy_optimize.nnls(np.asarray(A, np.float64), np.asarray(b, np.float64))
  assert np.all(x >= 0)
  np.testing.assert_allclose(x, want, atol=1e-3)


def test_nnls_bounded_iterations_jit_and_vmap():
  A, b = _problem(1, 6, 4)
  jaxpr = jax.make_jaxpr(lambda A, b: gradtx.nnls(A, b, 7))(A, b)
  scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
  assert len(scans) == 1 and scans[0].params["length"] == 7  # a fixed trip count
  solve = jax.jit(gradtx.nnls, static_argnames=("iters", "unroll"))
  np.testing.assert_allclose(solve(A, b, iters=20), gradtx.nnls(A, b, 20), rtol=1e-6, atol=1e-7)
  bs = jnp.stack([b, -b, 2 * b])
  Ls = jnp.array([30.0, 40.0, 50.0])
  batched = jax.vmap(lambda bi, L: gradtx.nnls(A, bi, 20, L=L))(bs, Ls)  # traced L passes
  for i in range(3):
    np.testing.assert_allclose(batched[i], gradtx.nnls(A, bs[i], 20, L=float(Ls[i])),
                               rtol=1e-5, atol=1e-6)


def test_nnls_bad_input_names_the_argument():
  A, b = _problem(0, 5, 3)
  with pytest.raises(ValueError, match="b must have A's number of rows"):  # optax: assert
    gradtx.nnls(A, b[:4], 5)
  with pytest.raises(ValueError, match="A must be a matrix"):
    gradtx.nnls(A[0], b, 5)
  with pytest.raises(ValueError, match="b must have shape"):
    gradtx.nnls(A, jnp.ones((5, 2, 2)), 5)
  with pytest.raises(TypeError, match="b must have a floating dtype"):
    gradtx.nnls(A, jnp.ones(5, jnp.int32), 5)
  with pytest.raises(ValueError, match="iters"):
    gradtx.nnls(A, b, -1)
  with pytest.raises(TypeError, match="iters"):
    gradtx.nnls(A, b, 5.0)
  with pytest.raises(TypeError, match="iters"):
    jax.jit(lambda n: gradtx.nnls(A, b, n))(3)
  with pytest.raises(ValueError, match="unroll"):
    gradtx.nnls(A, b, 5, unroll=0)
  with pytest.raises(ValueError, match="L"):
    gradtx.nnls(A, b, 5, L=-1.0)
