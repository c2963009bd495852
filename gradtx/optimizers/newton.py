"""Curvature-based optimizers as chains: newton_cg, saddle_free_newton, hessian_free,
gauss_newton and levenberg_marquardt.

Each is complete with no arguments (its updates are added to the params with `apply_updates`)
and needs, in `update`, `value_fn=` (the loss as a function of the params) or, for least
squares, `residual_fn=`. The default line search (`linesearch=`) of `newton_cg`,
`saddle_free_newton` and `gauss_newton` is the shared `scale_by_backtracking_linesearch`
(Armijo, halving from the full step every time, at most 30 halvings); any line search
transformation of gradtx/transforms/linesearch.py can replace it (for `gauss_newton` it is
handed `value_fn` = half the sum of squared residuals when only `residual_fn=` is given).
`hessian_free` and `levenberg_marquardt` control their step with the damping.
"""

from __future__ import annotations

from typing import Any

import math

from gradtx import _krylov
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.linesearch import scale_by_backtracking_linesearch
from gradtx.transforms.least_squares import scale_by_gauss_newton, scale_by_levenberg_marquardt
from gradtx.transforms.newton import (
    scale_by_hessian_free,
    scale_by_newton_cg,
    scale_by_saddle_free_newton,
)
from gradtx.transforms.scaling import scale, scale_by_learning_rate

__all__ = [
    "gauss_newton",
    "hessian_free",
    "levenberg_marquardt",
    "newton_cg",
    "saddle_free_newton",
]

_DEFAULT = "default"


def _default_linesearch(fixed_steps: bool) -> GradientTransformationExtraArgs:
  """Armijo backtracking that starts at the full (Newton) step every time and halves it."""
  return scale_by_backtracking_linesearch(
      max_backtracking_steps=30, slope_rtol=1e-4, decrease_factor=0.5, increase_factor=math.inf,
      max_learning_rate=1.0, fixed_steps=fixed_steps)


def _loss_from_residuals(linesearch: Any) -> GradientTransformationExtraArgs:
  """`linesearch` that, given `residual_fn=` and no `value_fn=`, searches on half the sum of the
  squared residuals (the loss whose gradient Gauss-Newton's `grads` are)."""

  def update_fn(updates, state, params=None, *, value_fn=None, residual_fn=None, **extra_args):
    if value_fn is None and residual_fn is not None:
      value_fn = _krylov.sum_of_squares_loss(residual_fn)
    return linesearch.update(updates, state, params, value_fn=value_fn, **extra_args)

  return GradientTransformationExtraArgs(linesearch.init, update_fn)


def _descend(learning_rate: Any, linesearch: Any, fn: str, fixed_steps: bool = False) -> list:
  """The sign flip (with the learning rate, optax's lbfgs convention) and the line search."""
  if isinstance(linesearch, str):
    if linesearch != _DEFAULT:
      raise ValueError(f"gradtx.{fn}: linesearch must be 'default', None or a line search "
                       f"transformation, got {linesearch!r}.")
    linesearch = _default_linesearch(fixed_steps)
  base = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
  return [base] + ([linesearch] if linesearch is not None else [])


def newton_cg(
    learning_rate: ScalarOrSchedule | None = None,
    damping: Any = 0.0,
    cg_tol: Any = None,
    max_cg_steps: int | None = None,
    *,
    detect_negative_curvature: bool = True,
    fixed_steps: bool = False,
    linesearch: GradientTransformationExtraArgs | str | None = _DEFAULT,
) -> GradientTransformation:
  r"""Truncated Newton (Newton-CG) with a backtracking line search.

  `chain(scale_by_newton_cg(damping, cg_tol, max_cg_steps, ...), scale(-1) or
  scale_by_learning_rate(learning_rate), linesearch)`: the step :math:`-t\,(H + \lambda I)^{-1}
  g` with CG truncated as in `scale_by_newton_cg` (see it for the equation) and :math:`t` the
  first of 1, 1/2, 1/4, ... that decreases the loss enough (Armijo,
  `scale_by_backtracking_linesearch`), at most 30 halvings.

  Args:
    learning_rate: `None` (the Newton step, scaled by the line search) or a scale.
    damping, cg_tol, max_cg_steps, detect_negative_curvature, fixed_steps: see
      `scale_by_newton_cg`; `fixed_steps` (the line searches' spelling) applies to the default
      line search too.
    linesearch: `"default"` (the Armijo backtracking), `None` (no line search), or a line
      search transformation taking `value=`, `grad=`, `value_fn=` (e.g.
      `scale_by_zoom_linesearch(20)`).

  Returns:
    A `GradientTransformation`; `update(grads, state, params, value_fn=...)` (pass `value=`
    and `grad=` too to save the line search one gradient evaluation).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda x: jnp.sum((x - 1.0) ** 2) + jnp.sum(x ** 4)
    >>> x = jnp.zeros(3); tx = gradtx.newton_cg(); s = tx.init(x)
    >>> step = jax.jit(lambda x, s: tx.update(jax.grad(f)(x), s, x, value_fn=f))
    >>> for _ in range(8):
    ...   u, s = step(x, s); x = x + u
    >>> round(float(x[0]), 4)  # 4 x^3 + 2 (x - 1) = 0
    0.5898

  References:
    Nocedal and Wright, Numerical Optimization, 2nd ed., Springer 2006, Algorithm 7.1.
  """
  return chain(
      scale_by_newton_cg(damping, cg_tol, max_cg_steps,
                         detect_negative_curvature=detect_negative_curvature,
                         fixed_steps=fixed_steps),
      *_descend(learning_rate, linesearch, "newton_cg", fixed_steps),
  )


def saddle_free_newton(
    learning_rate: ScalarOrSchedule | None = None,
    damping: Any = 1e-3,
    krylov_dim: int = 20,
    *,
    linesearch: GradientTransformationExtraArgs | str | None = _DEFAULT,
) -> GradientTransformation:
  r"""Saddle-free Newton (Dauphin et al. 2014) with a backtracking line search.

  `chain(scale_by_saddle_free_newton(damping, krylov_dim), scale(-1) or
  scale_by_learning_rate(learning_rate), linesearch)`: the step :math:`-t\,(|H| +
  \lambda I)^{-1} g` with :math:`|H|` taken in a Lanczos Krylov subspace (see
  `scale_by_saddle_free_newton`), which moves away from saddle points that attract Newton.

  Args:
    learning_rate: `None` (the line search scales the step) or a scale.
    damping, krylov_dim: see `scale_by_saddle_free_newton`.
    linesearch: `"default"` (Armijo backtracking), `None`, or a line search transformation.

  Returns:
    A `GradientTransformation`; `update(grads, state, params, value_fn=...)`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda p: p[0] ** 2 - p[1] ** 2 + p[1] ** 4 / 2  # a saddle at 0, minima (0, +-1)
    >>> x = jnp.asarray([0.5, 1e-3]); tx = gradtx.saddle_free_newton(); s = tx.init(x)
    >>> step = jax.jit(lambda x, s: tx.update(jax.grad(f)(x), s, x, value_fn=f))
    >>> for _ in range(25):
    ...   u, s = step(x, s); x = x + u
    >>> [round(v, 3) for v in x.tolist()]
    [0.0, 1.0]

  References:
    Dauphin, Pascanu, Gulcehre, Cho, Ganguli and Bengio, `Identifying and attacking the saddle
    point problem in high-dimensional non-convex optimization
    <https://arxiv.org/abs/1406.2572>`_, NeurIPS 2014.
  """
  return chain(scale_by_saddle_free_newton(damping, krylov_dim),
               *_descend(learning_rate, linesearch, "saddle_free_newton"))


def hessian_free(
    learning_rate: ScalarOrSchedule | None = None,
    init_damping: Any = 1.0,
    warm_start_decay: Any = 0.95,
    cg_tol: Any = 1e-4,
    max_cg_steps: int | None = None,
    *,
    fixed_steps: bool = False,
) -> GradientTransformation:
  r"""Hessian-free optimisation (Martens 2010): damped Gauss-Newton CG steps.

  `chain(scale_by_hessian_free(...), scale(-1) or scale_by_learning_rate(learning_rate))`; see
  `scale_by_hessian_free` for the CG system, the warm start and the damping's adaptation (which
  rejects steps that increase the loss, so no line search is needed):

  .. math::
      (G_t + \lambda_t I)\, d_t = g_t \;\text{(CG from } d = \zeta d_{t-1}), \qquad
      \theta_t = \theta_{t-1} - \eta\, d_t

  with :math:`G_t` the Gauss-Newton matrix :math:`J^\top J` of `residual_fn` (or the Hessian of
  `value_fn`), :math:`\lambda_0` = `init_damping`, :math:`\zeta` = `warm_start_decay`, CG run to
  the relative residual `cg_tol` in at most `max_cg_steps`, and :math:`\eta` = `learning_rate`
  (1 when None).

  Args:
    learning_rate: `None` (the damped step itself, Martens's choice) or a scale.
    init_damping, warm_start_decay, cg_tol, max_cg_steps, fixed_steps: see
      `scale_by_hessian_free`.

  Returns:
    A `GradientTransformation`; `update(grads, state, params, residual_fn=...)` for
    Gauss-Newton curvature, or `update(..., value_fn=...)` for the Hessian's.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> r = lambda x: jnp.tanh(x) - jnp.asarray([0.5, -0.25])
    >>> loss = lambda x: 0.5 * jnp.sum(r(x) ** 2)
    >>> x = jnp.zeros(2); tx = gradtx.hessian_free(); s = tx.init(x)
    >>> step = jax.jit(lambda x, s: tx.update(jax.grad(loss)(x), s, x, residual_fn=r))
    >>> for _ in range(30):
    ...   u, s = step(x, s); x = x + u
    >>> [round(v, 4) for v in jnp.tanh(x).tolist()]
    [0.5, -0.25]

  References:
    Martens, `Deep learning via Hessian-free optimization
    <https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf>`_, ICML 2010.
  """
  return chain(
      scale_by_hessian_free(init_damping, warm_start_decay, cg_tol, max_cg_steps,
                            fixed_steps=fixed_steps),
      *_descend(learning_rate, None, "hessian_free"),
  )


def gauss_newton(
    learning_rate: ScalarOrSchedule | None = None,
    damping: Any = 0.0,
    cg_tol: Any = 1e-6,
    max_cg_steps: int | None = None,
    *,
    fixed_steps: bool = False,
    linesearch: GradientTransformationExtraArgs | str | None = _DEFAULT,
) -> GradientTransformation:
  r"""Gauss-Newton for nonlinear least squares, with a backtracking line search.

  `chain(scale_by_gauss_newton(damping, cg_tol, max_cg_steps), scale(-1) or
  scale_by_learning_rate(learning_rate), linesearch)`: the step :math:`-t\,(J^\top J +
  \lambda I)^{-1} J^\top r` (see `scale_by_gauss_newton`), :math:`t` from Armijo backtracking on
  :math:`\tfrac12\|r\|^2` (`linesearch=None`: the classical full step, optimistix's
  `GaussNewton`). Not the curvature operator `gradtx.curvature.gauss_newton`.

  Args:
    learning_rate: `None` (the line search scales the step) or a scale.
    damping, cg_tol, max_cg_steps, fixed_steps: see `scale_by_gauss_newton`.
    linesearch: `"default"` (Armijo backtracking), `None`, or a line search transformation.

  Returns:
    A `GradientTransformation`; `update(grads, state, params, residual_fn=...)` with
    `grads` = :math:`J^\top r`, the gradient of :math:`\tfrac12\|r\|^2`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> t = jnp.linspace(0.0, 2.0, 8); y = 3.0 * jnp.exp(-1.5 * t)
    >>> r = lambda p: p[0] * jnp.exp(-p[1] * t) - y
    >>> x = jnp.asarray([1.0, 1.0]); tx = gradtx.gauss_newton(); s = tx.init(x)
    >>> g = jax.grad(lambda p: 0.5 * jnp.sum(r(p) ** 2))
    >>> step = jax.jit(lambda x, s: tx.update(g(x), s, x, residual_fn=r))
    >>> for _ in range(10):
    ...   u, s = step(x, s); x = x + u
    >>> [round(v, 3) for v in x.tolist()]
    [3.0, 1.5]

  References:
    Nocedal and Wright, Numerical Optimization, 2nd ed., Springer 2006, Section 10.3.
  """
  steps = _descend(learning_rate, linesearch, "gauss_newton", fixed_steps)
  if len(steps) > 1:
    steps[-1] = _loss_from_residuals(steps[-1])
  return chain(scale_by_gauss_newton(damping, cg_tol, max_cg_steps, fixed_steps=fixed_steps),
               *steps)


def levenberg_marquardt(
    learning_rate: ScalarOrSchedule | None = None,
    init_damping: Any = 1e-3,
    cg_tol: Any = 1e-6,
    max_cg_steps: int | None = None,
    *,
    min_damping: Any = 1e-10,
    max_damping: Any = 1e10,
    fixed_steps: bool = False,
) -> GradientTransformation:
  r"""Levenberg-Marquardt for nonlinear least squares, damping adapted as in Moré (1978).

  `chain(scale_by_levenberg_marquardt(...), scale(-1) or scale_by_learning_rate(learning_rate))`:
  the step
  :math:`-(J^\top J + \lambda I)^{-1} J^\top r` when it decreases :math:`\tfrac12\|r\|^2` enough,
  else zero, with :math:`\lambda` adapted from the reduction ratio (see
  `scale_by_levenberg_marquardt`).

  Args:
    learning_rate: `None` (the accepted step itself, as Moré) or a scale of it.
    init_damping, cg_tol, max_cg_steps, min_damping, max_damping, fixed_steps: see
      `scale_by_levenberg_marquardt`.

  Returns:
    A `GradientTransformation`; `update(grads, state, params, residual_fn=...)`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> t = jnp.linspace(0.0, 2.0, 8); y = 3.0 * jnp.exp(-1.5 * t)
    >>> r = lambda p: p[0] * jnp.exp(-p[1] * t) - y
    >>> x = jnp.asarray([1.0, 1.0]); tx = gradtx.levenberg_marquardt(); s = tx.init(x)
    >>> g = jax.grad(lambda p: 0.5 * jnp.sum(r(p) ** 2))
    >>> step = jax.jit(lambda x, s: tx.update(g(x), s, x, residual_fn=r))
    >>> for _ in range(10):
    ...   u, s = step(x, s); x = x + u
    >>> [round(v, 3) for v in x.tolist()]
    [3.0, 1.5]

  References:
    Moré, `The Levenberg-Marquardt algorithm: implementation and theory
    <https://doi.org/10.1007/BFb0067700>`_, Lecture Notes in Mathematics 630, Springer 1978.
  """
  return chain(
      scale_by_levenberg_marquardt(init_damping, cg_tol, max_cg_steps, min_damping=min_damping,
                                   max_damping=max_damping, fixed_steps=fixed_steps),
      *_descend(learning_rate, None, "levenberg_marquardt"),
  )
