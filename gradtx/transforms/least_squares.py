r"""Nonlinear least squares: Gauss-Newton and Levenberg-Marquardt steps for `residual_fn` problems.

The loss is :math:`f(\theta) = \tfrac12 \|r(\theta)\|^2` for a residual pytree :math:`r`; the
gradient passed to `update` is :math:`g = J^\top r`. Both solve their linear system matrix-free
with conjugate gradient on the shared operator `gradtx.curvature.gauss_newton` (:math:`J^\top J`
products, one linearisation per update), in a bounded loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _krylov
from gradtx.base import GradientTransformationExtraArgs
from gradtx.curvature.operators import gauss_newton
from gradtx.numerics import safe_increment

__all__ = [
    "ScaleByGaussNewtonState",
    "ScaleByLevenbergMarquardtState",
    "scale_by_gauss_newton",
    "scale_by_levenberg_marquardt",
]


def _setup(fn: str, updates: Any, params: Any, residual_fn: Any):
  _krylov.check_update(fn, updates, params)
  if residual_fn is None:
    raise _krylov.missing_error(fn, "residual_fn")
  sub = _krylov.present(updates, params)
  op = gauss_newton(_krylov.restrict(residual_fn, params), _krylov.half_sum_of_squares, sub)
  dtype = _krylov.work_dtype(op.dtype)
  return sub, op, dtype, _krylov.flat_operator(op, dtype), _krylov.ravel(updates, dtype)


def _output(flat: jax.Array, updates: Any, sub: Any) -> Any:
  tree = _krylov.unraveler(sub)(flat)
  return jax.tree.map(lambda t, u: t.astype(u.dtype), tree, updates)


class ScaleByGaussNewtonState(NamedTuple):
  """State of `scale_by_gauss_newton`.

  Attributes:
    count: int32 scalar, the step count.
    cg_steps: int32 scalar, the CG steps of the last update.
  """

  count: jax.Array  # int32 scalar
  cg_steps: jax.Array  # int32 scalar, CG steps of the last update


def scale_by_gauss_newton(
    damping: Any = 0.0,
    cg_tol: Any = 1e-6,
    max_cg_steps: int | None = None,
    *,
    fixed_steps: bool = False,
) -> GradientTransformationExtraArgs:
  r"""The Gauss-Newton step of a nonlinear least-squares problem, solved by CG.

  .. math:: (J^\top J + \lambda I)\, d = g = J^\top r, \qquad
            \|g - (J^\top J + \lambda I) d\| \le \eta \|g\|

  with :math:`J` the Jacobian of `residual_fn` at `params` (never formed: products through
  `gradtx.curvature.gauss_newton`), :math:`\lambda` = `damping`, :math:`\eta` = `cg_tol`.
  The step :math:`-d` is the minimiser of the linearised residual :math:`\|r + J s\|^2`.

  Args:
    damping: :math:`\lambda \ge 0` (a fixed Levenberg damping; see
      `scale_by_levenberg_marquardt` for the adapted one).
    cg_tol: :math:`\eta > 0`, CG's relative residual tolerance.
    max_cg_steps: the bound on CG steps (>= 1; `None`: twice the parameters, at most 250).
    fixed_steps: run exactly `max_cg_steps` CG trips (same work on every `vmap` lane).

  Returns:
    A `GradientTransformationExtraArgs` with state `ScaleByGaussNewtonState(count, cg_steps)`;
    `update(grads, state, params, *, residual_fn)` needs `params` and `residual_fn`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> r = lambda x: jnp.asarray([x[0] - 1.0, 2.0 * (x[1] - 3.0)])
    >>> x = jnp.zeros(2); tx = gradtx.scale_by_gauss_newton()
    >>> g = jax.grad(lambda p: 0.5 * jnp.sum(r(p) ** 2))(x)
    >>> [round(v, 4) for v in tx.update(g, tx.init(x), x, residual_fn=r)[0].tolist()]
    [-1.0, -3.0]

  References:
    Nocedal and Wright, Numerical Optimization, 2nd ed., Springer 2006, Section 10.3.
  """
  fn = "scale_by_gauss_newton"
  _checks.check_scalar(fn, "damping", damping, low=0.0)
  _krylov.check_cg(fn, cg_tol, max_cg_steps, fixed_steps, tol_optional=False)

  def init_fn(params):
    del params
    return ScaleByGaussNewtonState(count=jnp.zeros([], jnp.int32),
                                   cg_steps=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                residual_fn=None, **extra_args):
    del value, grad, value_fn, extra_args
    sub, op, dtype, matvec, g = _setup(fn, updates, params, residual_fn)
    res = _krylov.truncated_cg(
        matvec, g, damping=damping, tol=jnp.asarray(cg_tol, dtype) * jnp.linalg.norm(g),
        max_steps=_krylov.cg_bound(max_cg_steps, op.size), fixed_steps=fixed_steps)
    d = jnp.where(_krylov.all_finite(res.x), res.x, jnp.where(_krylov.all_finite(g), g, 0))
    return _output(d, updates, sub), ScaleByGaussNewtonState(
        count=safe_increment(state.count), cg_steps=res.steps)

  return GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleByLevenbergMarquardtState(NamedTuple):
  r"""State of `scale_by_levenberg_marquardt`.

  Attributes:
    count: int32 scalar, the step count.
    damping: :math:`\lambda`, adapted from the reduction ratio.
    ratio: :math:`\rho`, the last reduction ratio (-1 for a rejected, non-finite step).
    cg_steps: int32 scalar, the CG steps of the last update.
  """

  count: jax.Array  # int32 scalar
  damping: jax.Array  # lambda, adapted from the reduction ratio
  ratio: jax.Array  # rho, the last reduction ratio (-1 for a rejected, non-finite step)
  cg_steps: jax.Array  # int32 scalar, CG steps of the last update


def scale_by_levenberg_marquardt(
    init_damping: Any = 1e-3,
    cg_tol: Any = 1e-6,
    max_cg_steps: int | None = None,
    *,
    min_damping: Any = 1e-10,
    max_damping: Any = 1e10,
    fixed_steps: bool = False,
) -> GradientTransformationExtraArgs:
  r"""The Levenberg-Marquardt step, with its damping adapted from the reduction ratio.

  Each update solves the damped Gauss-Newton system by CG, evaluates the loss at the trial
  point and the ratio of the actual to the predicted decrease (Moré 1978, eq. 4.3):

  .. math::
      (J^\top J + \lambda I) d = g, \quad
      \rho = \frac{f(\theta) - f(\theta - d)}{g^\top d - \tfrac12 \|J d\|^2}, \\
      \lambda \leftarrow 10\lambda \ (\rho < 10^{-4}:\ \text{rejected, } u = 0), \quad
      \lambda \leftarrow 2\lambda \ (\rho < \tfrac14), \quad
      \lambda \leftarrow \lambda / 2 \ (\rho > \tfrac34)

  Moré's trust-region updates (shrink the radius, by a factor in :math:`[1/10, 1/2]`, when
  :math:`\rho < 1/4`; double it when :math:`\rho > 3/4`; accept when :math:`\rho > 10^{-4}`)
  act on the damping, which varies inversely with the radius; :math:`\lambda` stays in
  [`min_damping`, `max_damping`]. A rejected step returns zeros (the trial point is thrown
  away), so the loss never increases.

  Args:
    init_damping: the first :math:`\lambda > 0`.
    cg_tol: CG's relative residual tolerance, > 0.
    max_cg_steps: the bound on CG steps (>= 1; `None`: twice the parameters, at most 250).
    min_damping: the smallest damping, > 0.
    max_damping: the largest damping, >= `min_damping`.
    fixed_steps: run exactly `max_cg_steps` CG trips (same work on every `vmap` lane).

  Returns:
    A `GradientTransformationExtraArgs` with state
    `ScaleByLevenbergMarquardtState(count, damping, ratio, cg_steps)`; `update(grads, state,
    params, *, residual_fn)` needs `params` and `residual_fn`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> r = lambda x: jnp.asarray([x[0] - 1.0, 2.0 * (x[1] - 3.0)])
    >>> x = jnp.zeros(2); tx = gradtx.scale_by_levenberg_marquardt(init_damping=1e-8)
    >>> g = jax.grad(lambda p: 0.5 * jnp.sum(r(p) ** 2))(x)
    >>> d, s = tx.update(g, tx.init(x), x, residual_fn=r)
    >>> [round(v, 4) for v in d.tolist()], round(float(s.ratio), 4)
    ([-1.0, -3.0], 1.0)

  References:
    Moré, `The Levenberg-Marquardt algorithm: implementation and theory
    <https://doi.org/10.1007/BFb0067700>`_, Numerical Analysis, Lecture Notes in Mathematics
    630, Springer 1978; Marquardt, `An algorithm for least-squares estimation of nonlinear
    parameters <https://doi.org/10.1137/0111030>`_, SIAM J. Appl. Math. 1963.
  """
  fn = "scale_by_levenberg_marquardt"
  _checks.check_scalar(fn, "init_damping", init_damping, low=0.0, low_open=True)
  _checks.check_scalar(fn, "min_damping", min_damping, low=0.0, low_open=True)
  _checks.check_scalar(fn, "max_damping", max_damping, low=0.0, low_open=True)
  if not any(map(_checks.is_tracer, (min_damping, max_damping))) and float(max_damping) < float(
      min_damping):
    raise ValueError(f"gradtx.{fn}: max_damping must be >= min_damping ({min_damping}), got "
                     f"{max_damping}.")
  _krylov.check_cg(fn, cg_tol, max_cg_steps, fixed_steps, tol_optional=False)

  def init_fn(params):
    dtype = _krylov.scalar_dtype(params)
    return ScaleByLevenbergMarquardtState(
        count=jnp.zeros([], jnp.int32), damping=jnp.asarray(init_damping, dtype),
        ratio=jnp.zeros([], dtype), cg_steps=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                residual_fn=None, **extra_args):
    del value, grad, value_fn, extra_args
    sub, op, dtype, matvec, g = _setup(fn, updates, params, residual_fn)
    lam = state.damping.astype(dtype)
    res = _krylov.truncated_cg(
        matvec, g, damping=lam, tol=jnp.asarray(cg_tol, dtype) * jnp.linalg.norm(g),
        max_steps=_krylov.cg_bound(max_cg_steps, op.size), fixed_steps=fixed_steps)
    d = jnp.where(_krylov.all_finite(res.x), res.x, 0)
    f = _krylov.restrict(_krylov.sum_of_squares_loss(residual_fn), params)
    unravel = _krylov.unraveler(sub)
    x = _krylov.ravel(sub, dtype)
    f0 = jnp.asarray(f(sub)).astype(dtype)
    f1 = jnp.asarray(f(unravel(x - d))).astype(dtype)
    predicted = jnp.vdot(g, d) - 0.5 * jnp.vdot(d, matvec(d))
    finite = jnp.isfinite(f0) & jnp.isfinite(f1) & (predicted > 0)
    rho = jnp.where(finite, (f0 - f1) / jnp.where(predicted > 0, predicted, 1), -1)
    accept = rho > 1e-4
    lam = jnp.where(~accept, 10 * lam,
                    jnp.where(rho < 0.25, 2 * lam, jnp.where(rho > 0.75, lam / 2, lam)))
    lam = jnp.clip(lam, jnp.asarray(min_damping, dtype), jnp.asarray(max_damping, dtype))
    step = jnp.where(accept, d, 0)
    return _output(step, updates, sub), ScaleByLevenbergMarquardtState(
        count=safe_increment(state.count), damping=lam.astype(state.damping.dtype),
        ratio=rho.astype(state.ratio.dtype), cg_steps=res.steps)

  return GradientTransformationExtraArgs(init_fn, update_fn)
