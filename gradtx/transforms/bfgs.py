r"""BFGS with a dense inverse-Hessian approximation (for small problems: it stores an n x n
matrix over all parameters, flattened into one vector)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs
from gradtx.numerics import safe_increment
from gradtx.tree.casting import zeros_like

__all__ = [
    "ScaleByBFGSState",
    "scale_by_bfgs",
]

_HI = jax.lax.Precision.HIGHEST


class ScaleByBFGSState(NamedTuple):
  """State of `scale_by_bfgs`.

  Attributes:
    count: int32 number of updates.
    params: the params at the last update.
    updates: the gradient (incoming updates) at the last update.
    inv_hessian: the (n, n) inverse-Hessian approximation :math:`H_k` over the flattened params.
  """

  count: Any
  params: Any
  updates: Any
  inv_hessian: Any


def scale_by_bfgs(scale_init_precond: bool = False) -> GradientTransformationExtraArgs:
  r"""Multiplies the gradient by the BFGS inverse-Hessian approximation (dense).

  With :math:`s = w_k - w_{k-1}`, :math:`y = g_k - g_{k-1}` and :math:`\rho = 1/\langle y,
  s\rangle`, the approximation is updated before it multiplies the gradient:

  .. math::
      H_k = (I - \rho s y^\top) H_{k-1} (I - \rho y s^\top) + \rho s s^\top, \qquad
      u_k = H_k g_k

  The update is skipped when :math:`\langle y, s\rangle \le 0` or not finite (a Wolfe line
  search guarantees it is positive). :math:`H_0 = \min(1, 1/\|g_0\|) I` (a first step of length
  at most 1, as `scale_by_lbfgs`); before the first update :math:`H` is reset to
  :math:`\langle y, s\rangle / \langle y, y\rangle\, I` if `scale_init_precond` (Nocedal & Wright
  eq. 6.20), else to :math:`I` (the default, as SciPy's BFGS: on ill-conditioned problems the
  scaled start can take several times more iterations). Chain with `scale(-1.0)` and a line
  search (`gradtx.bfgs`).

  Args:
    scale_init_precond: scale the initial approximation as above (default False).

  Returns:
    A `GradientTransformationExtraArgs` (needs `params`); its state holds an (n, n) matrix for
    n parameters in all.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_bfgs()
    >>> w = jnp.array([3., 4.])
    >>> u, state = tx.update(w, tx.init(w), w)  # first step: the gradient over its norm
    >>> u.tolist()
    [0.6000000238418579, 0.800000011920929]

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithm 6.1 and eq. 6.17.
  """
  fn = "scale_by_bfgs"
  _checks.check_bool(fn, "scale_init_precond", scale_init_precond)

  def init_fn(params):
    flat, _ = ravel_pytree(params)
    return ScaleByBFGSState(
        count=jnp.zeros([], jnp.int32), params=zeros_like(params), updates=zeros_like(params),
        inv_hessian=jnp.eye(flat.shape[0], dtype=flat.dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    g, unravel = ravel_pytree(updates)
    w, _ = ravel_pytree(params)
    w_prev, _ = ravel_pytree(state.params)
    g_prev, _ = ravel_pytree(state.updates)
    s, y = w - w_prev, g - g_prev
    sy, yy = jnp.dot(y, s, precision=_HI), jnp.dot(y, y, precision=_HI)
    eye = jnp.eye(g.shape[0], dtype=state.inv_hessian.dtype)
    h = state.inv_hessian
    if scale_init_precond:
      gamma = jnp.where((sy > 0.0) & (yy > 0.0), sy / jnp.where(yy > 0.0, yy, 1.0), 1.0)
      h = jnp.where(state.count == 1, gamma * eye, h)
    else:
      h = jnp.where(state.count == 1, eye, h)
    rho = 1.0 / jnp.where(sy > 0.0, sy, 1.0)
    hy = jnp.dot(h, y, precision=_HI)
    h_new = (h - rho * (jnp.outer(s, hy) + jnp.outer(hy, s))
             + (rho + rho * rho * jnp.dot(y, hy, precision=_HI)) * jnp.outer(s, s))
    ok = (state.count > 0) & (sy > 0.0) & jnp.all(jnp.isfinite(h_new))
    h = jnp.where(ok, h_new, h)
    # The first step: a gradient step of length at most 1.
    capped = jnp.minimum(1.0, 1.0 / jnp.linalg.norm(g))
    h = jnp.where(state.count == 0, capped * eye, h).astype(state.inv_hessian.dtype)
    direction = unravel(jnp.dot(h, g, precision=_HI).astype(g.dtype))
    return direction, ScaleByBFGSState(
        count=safe_increment(state.count), params=params, updates=updates, inv_hessian=h)

  return GradientTransformationExtraArgs(init_fn, update_fn)
