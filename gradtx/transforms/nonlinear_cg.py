r"""Nonlinear conjugate gradient directions (Fletcher-Reeves, Polak-Ribiere+, Hestenes-Stiefel,
Dai-Yuan), with restarts."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs
from gradtx.numerics import safe_increment
from gradtx.tree.arithmetic import add_scale, real, sub, vdot
from gradtx.tree.casting import cast_like, zeros_like

__all__ = [
    "ScaleByNonlinearCGState",
    "scale_by_nonlinear_cg",
]

_METHODS = ("fletcher_reeves", "polak_ribiere", "hestenes_stiefel", "dai_yuan")


class ScaleByNonlinearCGState(NamedTuple):
  """State of `scale_by_nonlinear_cg`.

  Attributes:
    count: int32 number of updates.
    updates: the gradient (incoming updates) at the last update.
    direction: the last direction returned, :math:`p_{k-1}`.
  """

  count: Any
  updates: Any
  direction: Any


def _ratio(num, den):
  return jnp.where(den != 0.0, num / jnp.where(den != 0.0, den, 1.0), 0.0)


def scale_by_nonlinear_cg(
    method: str = "polak_ribiere",
    *,
    restart_period: Optional[int] = None,
    restart_threshold: Optional[Any] = None,
) -> GradientTransformationExtraArgs:
  r"""Returns the nonlinear conjugate gradient direction :math:`p_k = g_k + \beta_k p_{k-1}`.

  (:math:`-p_k` is the descent direction; chain with `scale(-1.0)` and a line search, as
  `gradtx.nonlinear_cg` does.) With :math:`y = g_k - g_{k-1}`:

  .. math::
      \beta^{FR} = \frac{g_k^\top g_k}{g_{k-1}^\top g_{k-1}},\quad
      \beta^{PR+} = \max\Big(0, \frac{g_k^\top y}{g_{k-1}^\top g_{k-1}}\Big),\quad
      \beta^{HS} = \frac{g_k^\top y}{-p_{k-1}^\top y},\quad
      \beta^{DY} = \frac{g_k^\top g_k}{-p_{k-1}^\top y}

  The direction restarts (:math:`\beta = 0`) at the first step, every `restart_period` steps,
  when :math:`|g_k^\top g_{k-1}| \ge \nu\, g_k^\top g_k` (Powell's test, :math:`\nu` =
  `restart_threshold`), and whenever :math:`p_k` would not be a descent direction
  (:math:`p_k^\top g_k \le 0`) or :math:`\beta` is not finite.

  Args:
    method: `'fletcher_reeves'`, `'polak_ribiere'` (PR+, the default), `'hestenes_stiefel'` or
      `'dai_yuan'`.
    restart_period: restart every this many steps (int >= 1; the number of parameters is
      classical), or None.
    restart_threshold: Powell's :math:`\nu` > 0 (0.1 to 0.2 is usual), or None.

  Returns:
    A `GradientTransformationExtraArgs` (it uses only the gradients).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_nonlinear_cg("fletcher_reeves")
    >>> state = tx.init(jnp.zeros(2))
    >>> p, state = tx.update(jnp.array([2., 0.]), state)
    >>> p, state = tx.update(jnp.array([0., 1.]), state)  # beta = 1/4
    >>> p.tolist()
    [0.5, 1.0]

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Section 5.2.
    Hager & Zhang, "A survey of nonlinear conjugate gradient methods", Pacific Journal of
    Optimization 2006.
    Dai & Yuan, "A nonlinear conjugate gradient method with a strong global convergence
    property", SIAM Journal on Optimization 1999. https://doi.org/10.1137/S1052623497318992
  """
  fn = "scale_by_nonlinear_cg"
  _checks.check_choice(fn, "method", method, _METHODS)
  if restart_period is not None:
    _checks.check_int(fn, "restart_period", restart_period, 1)
  _checks.check_scalar(fn, "restart_threshold", restart_threshold, low=0.0, low_open=True,
                       optional=True)

  def init_fn(params):
    return ScaleByNonlinearCGState(count=jnp.zeros([], jnp.int32), updates=zeros_like(params),
                                   direction=zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.direction", state.direction)
    g, g_prev, p_prev = updates, state.updates, state.direction
    f32 = lambda x: real(x).astype(jnp.float32)
    gg, gg_prev = f32(vdot(g, g)), f32(vdot(g_prev, g_prev))
    y = sub(g, g_prev)
    if method == "fletcher_reeves":
      beta = _ratio(gg, gg_prev)
    elif method == "polak_ribiere":
      beta = jnp.maximum(_ratio(f32(vdot(g, y)), gg_prev), 0.0)
    elif method == "hestenes_stiefel":
      beta = _ratio(f32(vdot(g, y)), -f32(vdot(p_prev, y)))
    else:
      beta = _ratio(gg, -f32(vdot(p_prev, y)))
    restart = state.count == 0
    if restart_period is not None:
      restart |= state.count % restart_period == 0
    if restart_threshold is not None:
      restart |= jnp.abs(f32(vdot(g, g_prev))) >= restart_threshold * gg
    beta = jnp.where(restart | ~jnp.isfinite(beta), 0.0, beta)
    p = cast_like(add_scale(g, beta, p_prev), g)
    descent = f32(vdot(p, g)) > 0.0
    p = jax.tree.map(lambda a, b: jnp.where(descent, a, b), p, g)
    return p, ScaleByNonlinearCGState(count=safe_increment(state.count), updates=g, direction=p)

  return GradientTransformationExtraArgs(init_fn, update_fn)
