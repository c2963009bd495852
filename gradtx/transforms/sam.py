"""Adaptive SAM's ascent direction (Kwon et al., ASAM), the adversarial step `gradtx.asam`
hands to `gradtx.contrib.sam`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import EmptyState, GradientTransformationExtraArgs
from gradtx.tree.arithmetic import norm

__all__ = [
    "scale_by_asam",
]


def scale_by_asam(eta: Any = 0.01) -> GradientTransformationExtraArgs:
  r"""ASAM's normalized, scale-invariant ascent direction :math:`T_w^2 g / \|T_w g\|_2`.

  SAM's perturbation ball is the same in every coordinate, so rescaling a layer's weights (which
  leaves a ReLU network's function unchanged) changes its sharpness. ASAM measures the ball in
  the coordinates :math:`T_w^{-1} w`, with :math:`T_w = \operatorname{diag}(|w| + \eta)`
  (element-wise), whose worst-case point is

  .. math:: \hat\epsilon = \rho\, \frac{T_w^2\, g}{\|T_w\, g\|_2}, \qquad T_w = |w| + \eta

  This transformation returns the direction (without :math:`\rho`); chain it with
  `scale_by_learning_rate(rho)` to get SAM's `adv_optimizer` convention (see `gradtx.asam`).
  The norm is over all leaves; a zero gradient gives a zero direction (not NaN).

  Args:
    eta: :math:`\eta \ge 0`, the offset keeping :math:`T_w` invertible at zero weights.

  Returns:
    A stateless `GradientTransformationExtraArgs` (state `EmptyState()`); `update` needs
    `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.transforms.scale_by_asam(eta=0.0)
    >>> w = jnp.asarray([1.0, 2.0])
    >>> [round(x, 3) for x in tx.update(jnp.ones(2), tx.init(w), w)[0].tolist()]
    [0.447, 1.789]

  References:
    Kwon, Kim, Park & Choi, `ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
    Learning of Deep Neural Networks <https://arxiv.org/abs/2102.11600>`_, ICML 2021.
  """
  fn = "scale_by_asam"
  _checks.check_scalar(fn, "eta", eta, low=0.0)

  def init_fn(params):
    del params
    return EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    t_w = jax.tree.map(lambda g, w: None if g is None else jnp.abs(w) + eta, updates, params,
                       is_leaf=is_none)  # T_w = |w| + eta
    scaled = jax.tree.map(lambda g, t: None if g is None else t * g, updates, t_w,
                          is_leaf=is_none)  # T_w g
    size = norm(scaled)  # ||T_w g||_2
    size = jnp.where(size > 0, size, jnp.ones_like(size))
    out = jax.tree.map(lambda tg, t: None if tg is None else (t * tg / size).astype(tg.dtype),
                       scaled, t_w, is_leaf=is_none)  # T_w^2 g / ||T_w g||
    return out, state

  return GradientTransformationExtraArgs(init_fn, update_fn)
