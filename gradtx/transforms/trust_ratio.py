"""Layer-wise trust ratio scaling (LARS, LAMB, Fromage): each leaf's update is rescaled so its
norm is proportional to the norm of the leaf's parameters."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, init_empty_state
from gradtx.numerics import safe_norm

__all__ = [
    "scale_by_trust_ratio",
]

# optax binds `ScaleByTrustRatioState` to `EmptyState` (scale_by_trust_ratio keeps no state);
# gradtx binds that second name in `gradtx/__init__.py`.


def scale_by_trust_ratio(
    min_norm: Any = 0.0,
    trust_coefficient: Any = 1.0,
    eps: Any = 0.0,
) -> GradientTransformation:
  r"""Scales each leaf's update by its trust ratio, the ratio of the param and update norms.

  Used by LARS, LAMB and Fromage: the step of every layer is a fixed fraction of the layer's
  weight norm, whatever the gradient's scale, which stabilises large-batch training. Where the
  param or the update norm is zero the ratio is 1 (the update passes unchanged).

  .. math:: u_{t,i} = g_{t,i} \cdot \eta \frac{\max(\|\theta_{t,i}\|_2, m)}
      {\max(\|g_{t,i}\|_2, m) + \epsilon}

  with :math:`\eta` = `trust_coefficient`, :math:`m` = `min_norm`, :math:`i` indexing the
  leaves.

  Args:
    min_norm: :math:`m \geq 0`, the smallest param and update norm; a float or scalar array.
    trust_coefficient: :math:`\eta \geq 0`, a multiplier of the ratio; a float or scalar array.
    eps: :math:`\epsilon \geq 0`, added to the denominator; a float or scalar array.

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`, also named
    `ScaleByTrustRatioState`) whose `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_trust_ratio()
    >>> tx.update(jnp.asarray([0.0, 2.0]), tx.init(None), jnp.asarray([3.0, 4.0]))[0].tolist()
    [0.0, 5.0]

  References:
    You et al., "Large Batch Training of Convolutional Networks", 2017 (Eq. 6).
    https://arxiv.org/abs/1708.03888
  """
  fn = "scale_by_trust_ratio"
  _checks.check_scalar(fn, "min_norm", min_norm, low=0.0)
  _checks.check_scalar(fn, "trust_coefficient", trust_coefficient, low=0.0)
  _checks.check_scalar(fn, "eps", eps, low=0.0)

  def scale_update(update, param):
    param_norm = safe_norm(param, min_norm)
    update_norm = safe_norm(update, min_norm)
    trust_ratio = trust_coefficient * param_norm / (update_norm + eps)  # eta |p| / (|g| + eps)
    zero_norm = jnp.logical_or(param_norm == 0.0, update_norm == 0.0)
    safe_ratio = jnp.where(zero_norm, jnp.array(1.0, dtype=param.dtype), trust_ratio)
    return (update * safe_ratio).astype(update.dtype)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    out = jax.tree.map(lambda u, p: None if u is None else scale_update(u, p), updates, params,
                       is_leaf=is_none)
    return out, state

  return GradientTransformation(init_empty_state, update_fn)
