"""Curvature-based steps: truncated Newton-CG, saddle-free Newton and Hessian-free (Martens).

Each `update(grads, state, params, *, value_fn=...)` builds the shared curvature operator
(`gradtx.curvature.hessian` of `value_fn`, or `gradtx.curvature.gauss_newton` of `residual_fn`)
at `params` once, and runs a bounded Krylov loop (CG or Lanczos) on it. The result is the
preconditioned gradient :math:`d \approx B^{-1} g` (positive orientation, like
`scale_by_lbfgs`): the aliases in `gradtx.optimizers.newton` flip the sign and add a line search.
Leaves whose gradient is `None` are held fixed (the curvature is that of the other leaves).
Non-finite values met inside a loop stop it; a non-finite direction falls back to the gradient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _krylov
from gradtx.base import GradientTransformationExtraArgs
from gradtx.curvature.lanczos import lanczos
from gradtx.curvature.operators import gauss_newton, hessian
from gradtx.numerics import safe_increment

__all__ = [
    "ScaleByHessianFreeState",
    "ScaleByNewtonCGState",
    "ScaleBySaddleFreeNewtonState",
    "scale_by_hessian_free",
    "scale_by_newton_cg",
    "scale_by_saddle_free_newton",
]


def _tolerance(cg_tol: Any, gnorm: jax.Array) -> jax.Array:
  """||r|| <= cg_tol ||g||, or Nocedal and Wright's forcing term min(0.5, sqrt||g||) ||g||."""
  if cg_tol is None:
    return jnp.minimum(0.5, jnp.sqrt(gnorm)) * gnorm
  return jnp.asarray(cg_tol, gnorm.dtype) * gnorm


def _finite_or(d: jax.Array, g: jax.Array) -> jax.Array:
  """d if finite, else the gradient g if finite, else zeros."""
  return jnp.where(_krylov.all_finite(d), d, jnp.where(_krylov.all_finite(g), g, 0))


def _output(flat: jax.Array, updates: Any, sub: Any) -> Any:
  """A flat direction as a tree like `updates` (its dtypes, `None` leaves kept)."""
  tree = _krylov.unraveler(sub)(flat)
  return jax.tree.map(lambda t, u: t.astype(u.dtype), tree, updates)


class ScaleByNewtonCGState(NamedTuple):
  """State of `scale_by_newton_cg`.

  Attributes:
    count: int32 scalar, the number of updates.
    cg_steps: int32 scalar, the CG steps (Hessian-vector products) of the last update.
  """

  count: jax.Array  # int32 scalar, the number of updates
  cg_steps: jax.Array  # int32 scalar, CG steps (Hessian-vector products) of the last update


def scale_by_newton_cg(
    damping: Any = 0.0,
    cg_tol: Any = None,
    max_cg_steps: int | None = None,
    *,
    detect_negative_curvature: bool = True,
    fixed_steps: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Truncated Newton: conjugate gradient on the damped Newton system.

  Builds the Hessian operator of `value_fn` at `params` (`gradtx.curvature.hessian`: one
  linearisation, then one cheap product per CG step) and runs CG from zero on

  .. math:: (H + \lambda I)\, d = g, \qquad \|g - (H + \lambda I) d\| \le \eta \|g\|,
            \quad \eta = \min(0.5, \sqrt{\|g\|}) \text{ by default}

  stopping early on negative curvature :math:`p^\top (H + \lambda I) p \le 0` (returning the
  iterate so far, or :math:`g` on the first step: a descent direction either way), on
  non-finite values, or after `max_cg_steps`. :math:`\lambda` = `damping`.

  Args:
    damping: :math:`\lambda \ge 0` added to the Hessian (a float or scalar array).
    cg_tol: the relative residual tolerance :math:`\eta > 0`; `None` is Nocedal and Wright's
      forcing term :math:`\min(0.5, \sqrt{\|g\|})` (superlinear convergence, SciPy's choice).
    max_cg_steps: the bound on CG steps (>= 1); `None` is twice the number of parameters, at
      most 250.
    detect_negative_curvature: stop CG on negative curvature (`False`: plain Newton, which
      a saddle point attracts).
    fixed_steps: run exactly `max_cg_steps` CG trips (finished ones change nothing), so
      every lane of a `vmap` does the same work.

  Returns:
    A `GradientTransformationExtraArgs` with state `ScaleByNewtonCGState(count, cg_steps)`;
    `update(grads, state, params, *, value_fn)` needs `params` and `value_fn`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda x: jnp.sum(jnp.asarray([1.0, 4.0]) * x ** 2)
    >>> x = jnp.asarray([1.0, 1.0]); tx = gradtx.scale_by_newton_cg(cg_tol=1e-6)
    >>> d, _ = tx.update(jax.grad(f)(x), tx.init(x), x, value_fn=f)
    >>> [round(v, 4) for v in d.tolist()]  # H^{-1} g: the whole way to the minimum
    [1.0, 1.0]

  References:
    Nocedal and Wright, Numerical Optimization, 2nd ed., Springer 2006, Algorithm 7.1;
    Dembo and Steihaug, `Truncated-Newton algorithms for large-scale unconstrained optimization
    <https://doi.org/10.1007/BF02592055>`_, Mathematical Programming 1983.
  """
  fn = "scale_by_newton_cg"
  _checks.check_scalar(fn, "damping", damping, low=0.0)
  _krylov.check_cg(fn, cg_tol, max_cg_steps, fixed_steps)
  _checks.check_bool(fn, "detect_negative_curvature", detect_negative_curvature)

  def init_fn(params):
    del params
    return ScaleByNewtonCGState(count=jnp.zeros([], jnp.int32), cg_steps=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                residual_fn=None, **extra_args):
    del value, grad, residual_fn, extra_args
    _krylov.check_update(fn, updates, params)
    if value_fn is None:
      raise _krylov.missing_error(fn, "value_fn")
    sub = _krylov.present(updates, params)
    op = hessian(_krylov.restrict(value_fn, params), sub)
    dtype = _krylov.work_dtype(op.dtype)
    g = _krylov.ravel(updates, dtype)
    gnorm = jnp.linalg.norm(g)
    res = _krylov.truncated_cg(
        _krylov.flat_operator(op, dtype), g, damping=damping, tol=_tolerance(cg_tol, gnorm),
        max_steps=_krylov.cg_bound(max_cg_steps, op.size), fixed_steps=fixed_steps,
        detect_negative_curvature=detect_negative_curvature)
    d = _finite_or(res.x, g)
    return _output(d, updates, sub), ScaleByNewtonCGState(
        count=safe_increment(state.count), cg_steps=res.steps)

  return GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleBySaddleFreeNewtonState(NamedTuple):
  """State of `scale_by_saddle_free_newton`.

  Attributes:
    count: int32 scalar, the step count.
    min_eigenvalue: the smallest Ritz value of the last update's Krylov subspace.
  """

  count: jax.Array  # int32 scalar
  min_eigenvalue: jax.Array  # the smallest Ritz value of the last update's Krylov subspace


def scale_by_saddle_free_newton(
    damping: Any = 1e-3,
    krylov_dim: int = 20,
) -> GradientTransformationExtraArgs:
  r"""Saddle-free Newton: the gradient rescaled by :math:`|H|^{-1}` in a Krylov subspace.

  A `krylov_dim`-step Lanczos run on the Hessian of `value_fn` at `params`, started from the
  gradient, gives an orthonormal basis :math:`V` (rows) and a tridiagonal :math:`T = Q \Lambda
  Q^\top`; the step uses the absolute values of the Ritz values, so directions of negative
  curvature are descended instead of climbed (Newton's step climbs them, and a saddle attracts
  it):

  .. math:: d = V^\top Q \,(|\Lambda| + \lambda I)^{-1} Q^\top V g

  with :math:`\lambda` = `damping`. The gradient lies in the Krylov space (it starts it). The
  Lanczos loop is a fixed-length `fori_loop` of :math:`\min(k, n)` steps.

  Args:
    damping: :math:`\lambda > 0`, added to :math:`|\Lambda|` (bounds the step where the
      curvature vanishes).
    krylov_dim: :math:`k \ge 1`, the Lanczos steps (at most the number of parameters are used).

  Returns:
    A `GradientTransformationExtraArgs` with state
    `ScaleBySaddleFreeNewtonState(count, min_eigenvalue)`; `update(grads, state, params, *,
    value_fn)` needs `params` and `value_fn`. Memory: :math:`k` vectors of the params' size.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda x: x[0] ** 2 - x[1] ** 2  # a saddle: H = diag(2, -2)
    >>> x = jnp.asarray([1.0, 1.0]); tx = gradtx.scale_by_saddle_free_newton(damping=1e-6)
    >>> d, _ = tx.update(jax.grad(f)(x), tx.init(x), x, value_fn=f)
    >>> [round(v, 3) for v in d.tolist()]  # |H|^{-1} g: x - d leaves along y
    [1.0, -1.0]

  References:
    Dauphin, Pascanu, Gulcehre, Cho, Ganguli and Bengio, `Identifying and attacking the saddle
    point problem in high-dimensional non-convex optimization
    <https://arxiv.org/abs/1406.2572>`_, NeurIPS 2014 (Algorithm 1).
  """
  fn = "scale_by_saddle_free_newton"
  _checks.check_scalar(fn, "damping", damping, low=0.0, low_open=True)
  _checks.check_int(fn, "krylov_dim", krylov_dim, 1)

  def init_fn(params):
    return ScaleBySaddleFreeNewtonState(
        count=jnp.zeros([], jnp.int32),
        min_eigenvalue=jnp.zeros([], _krylov.scalar_dtype(params)))

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                residual_fn=None, **extra_args):
    del value, grad, residual_fn, extra_args
    _krylov.check_update(fn, updates, params)
    if value_fn is None:
      raise _krylov.missing_error(fn, "value_fn")
    sub = _krylov.present(updates, params)
    op = hessian(_krylov.restrict(value_fn, params), sub)
    dtype = _krylov.work_dtype(op.dtype)
    g = _krylov.ravel(updates, dtype)
    start = jnp.where(jnp.any(g != 0) & _krylov.all_finite(g), g, jnp.ones_like(g))
    k = min(int(krylov_dim), op.size)
    # The key only completes the basis after a breakdown (an invariant subspace, where the
    # gradient's coefficients are zero): the step does not depend on it.
    alphas, betas, basis = lanczos(op, jax.random.key(0), k,
                                   v0=_krylov.unraveler(sub)(start))
    v = jax.vmap(lambda b: _krylov.ravel(b, dtype))(basis)  # (k, n)
    t = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
    lam, q = jnp.linalg.eigh(t.astype(dtype))
    coeff = q.T @ (v @ g)
    d = v.T @ (q @ (coeff / (jnp.abs(lam) + jnp.asarray(damping, dtype))))
    d = _finite_or(d, g)
    min_eig = jnp.where(jnp.all(jnp.isfinite(lam)), jnp.min(lam), 0.0)
    return _output(d, updates, sub), ScaleBySaddleFreeNewtonState(
        count=safe_increment(state.count), min_eigenvalue=min_eig.astype(state.min_eigenvalue.dtype))

  return GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleByHessianFreeState(NamedTuple):
  r"""State of `scale_by_hessian_free`.

  Attributes:
    count: int32 scalar, the step count.
    damping: :math:`\lambda`, the Levenberg-Marquardt damping, adapted every update.
    direction: the last CG solution (params-shaped), CG's warm start.
    cg_steps: int32 scalar, the CG steps of the last update.
  """

  count: jax.Array  # int32 scalar
  damping: jax.Array  # lambda, the Levenberg-Marquardt damping, adapted every update
  direction: Any  # the last CG solution (params-shaped), CG's warm start
  cg_steps: jax.Array  # int32 scalar, CG steps of the last update


def scale_by_hessian_free(
    init_damping: Any = 1.0,
    warm_start_decay: Any = 0.95,
    cg_tol: Any = 1e-4,
    max_cg_steps: int | None = None,
    *,
    fixed_steps: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Hessian-free optimisation: damped Gauss-Newton CG with warm starts and adapted damping.

  Each update builds the Gauss-Newton operator :math:`G = J^\top J` of `residual_fn` (when given;
  else the Hessian of `value_fn`) at `params`, runs CG on :math:`(G + \lambda I) d = g` from
  :math:`d_0 = \zeta\, d_{t-1}` (the last solution), evaluates the reduction ratio of the step
  :math:`-d` and adapts :math:`\lambda` (Martens 2010, Section 4.1):

  .. math:: \rho = \frac{f(\theta - d) - f(\theta)}{-g^\top d + \tfrac12 d^\top G d}, \quad
            \lambda \leftarrow \tfrac32 \lambda \text{ if } \rho < \tfrac14, \quad
            \lambda \leftarrow \tfrac23 \lambda \text{ if } \rho > \tfrac34

  A step that does not decrease the loss (or is not finite) is rejected: the update is zero.

  Args:
    init_damping: the first :math:`\lambda > 0`.
    warm_start_decay: :math:`\zeta \in [0, 1]`, the warm start's decay.
    cg_tol: relative residual tolerance of CG, > 0.
    max_cg_steps: the bound on CG steps (>= 1; `None`: twice the parameters, at most 250).
    fixed_steps: run exactly `max_cg_steps` CG trips (same work on every `vmap` lane).

  Returns:
    A `GradientTransformationExtraArgs` with state
    `ScaleByHessianFreeState(count, damping, direction, cg_steps)`; `update(grads, state,
    params, *, residual_fn)` or `(..., value_fn)` needs `params` and one of them.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> r = lambda x: x - jnp.asarray([1.0, 2.0])
    >>> x = jnp.zeros(2); tx = gradtx.scale_by_hessian_free(init_damping=1e-6)
    >>> g = jax.grad(lambda p: 0.5 * jnp.sum(r(p) ** 2))(x)
    >>> d, s = tx.update(g, tx.init(x), x, residual_fn=r)
    >>> [round(v, 3) for v in d.tolist()]
    [-1.0, -2.0]

  References:
    Martens, `Deep learning via Hessian-free optimization
    <https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf>`_, ICML 2010.
  """
  fn = "scale_by_hessian_free"
  _checks.check_scalar(fn, "init_damping", init_damping, low=0.0, low_open=True)
  _checks.check_scalar(fn, "warm_start_decay", warm_start_decay, low=0.0, high=1.0)
  _checks.check_scalar(fn, "cg_tol", cg_tol, low=0.0, low_open=True)
  _krylov.check_cg(fn, cg_tol, max_cg_steps, fixed_steps)

  def init_fn(params):
    return ScaleByHessianFreeState(
        count=jnp.zeros([], jnp.int32),
        damping=jnp.asarray(init_damping, _krylov.scalar_dtype(params)),
        direction=jax.tree.map(jnp.zeros_like, params),
        cg_steps=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                residual_fn=None, **extra_args):
    del value, grad, extra_args
    _krylov.check_update(fn, updates, params)
    _checks.check_same_structure(fn, "updates", updates, "state.direction", state.direction)
    if value_fn is None and residual_fn is None:
      raise _krylov.missing_error(fn, "value_fn or residual_fn")
    sub = _krylov.present(updates, params)
    if residual_fn is not None:
      loss = _krylov.sum_of_squares_loss(residual_fn)
      op = gauss_newton(_krylov.restrict(residual_fn, params), _krylov.half_sum_of_squares, sub)
    else:
      loss = value_fn
      op = hessian(_krylov.restrict(value_fn, params), sub)
    f = _krylov.restrict(loss, params)
    dtype = _krylov.work_dtype(op.dtype)
    matvec = _krylov.flat_operator(op, dtype)
    g = _krylov.ravel(updates, dtype)
    lam = state.damping.astype(dtype)
    x0 = jnp.asarray(warm_start_decay, dtype) * _krylov.ravel(
        _krylov.present(updates, state.direction), dtype)
    x0 = jnp.where(_krylov.all_finite(x0), x0, 0)
    res = _krylov.truncated_cg(
        matvec, g, damping=lam, tol=jnp.asarray(cg_tol, dtype) * jnp.linalg.norm(g),
        max_steps=_krylov.cg_bound(max_cg_steps, op.size), fixed_steps=fixed_steps, x0=x0)
    d = jnp.where(_krylov.all_finite(res.x), res.x, 0)
    unravel = _krylov.unraveler(sub)
    x = _krylov.ravel(sub, dtype)
    f0 = jnp.asarray(f(sub)).astype(dtype)
    f1 = jnp.asarray(f(unravel(x - d))).astype(dtype)
    predicted = jnp.vdot(g, d) - 0.5 * jnp.vdot(d, matvec(d))  # the model's decrease
    rho = (f0 - f1) / jnp.where(predicted > 0, predicted, 1)
    ok = jnp.isfinite(f1) & jnp.isfinite(f0) & (f1 < f0) & (predicted > 0)
    rho = jnp.where(ok, rho, -1)
    lam = jnp.where(rho < 0.25, 1.5 * lam, jnp.where(rho > 0.75, lam * (2 / 3), lam))
    step = jnp.where(ok, d, 0)
    direction = jax.tree.map(lambda t, old: old if t is None else t, unravel(d), state.direction,
                             is_leaf=lambda a: a is None)
    return _output(step, updates, sub), ScaleByHessianFreeState(
        count=safe_increment(state.count),
        damping=lam.astype(state.damping.dtype),
        direction=jax.tree.map(lambda a, b: a.astype(b.dtype), direction, state.direction),
        cg_steps=res.steps)

  return GradientTransformationExtraArgs(init_fn, update_fn)
