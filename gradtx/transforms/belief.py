"""AdaBelief: Adam whose second moment tracks the gradient's deviation from its running mean.

The step is large where the observed gradient agrees with the prediction (the first moment), small
where it does not. Returns deltas in the direction of the gradient; follow it with
`scale_by_learning_rate` to descend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, numerics, tree
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation

__all__ = [
    "ScaleByBeliefState",
    "scale_by_belief",
]


class ScaleByBeliefState(NamedTuple):
  """State of `scale_by_belief`, with optax's fields.

  Attributes:
    count: int32 scalar, the step count.
    mu: :math:`m_t`, the EMA of the gradients.
    nu: :math:`s_t`, the EMA of the squared prediction error.
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any


def scale_by_belief(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by the belief in the observed gradient (AdaBelief; Zhuang et al., Alg. 2).

  Adam divides by the root of the EMA of :math:`g^2`; AdaBelief by the root of the EMA of
  :math:`(g - m)^2`, the squared difference between the gradient and its prediction :math:`m`.
  A gradient close to its prediction (a smooth valley) gets a large step, a surprising one a small
  step.

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      s_t = \beta_2 s_{t-1} + (1 - \beta_2) (g_t - m_t)^2 + \epsilon_{root}, \quad
      u_t = \frac{m_t / (1 - \beta_1^t)}{\sqrt{s_t / (1 - \beta_2^t)} + \epsilon}

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`,
  :math:`\epsilon_{root}` = `eps_root` (added to the stored :math:`s_t`, as the paper and optax).
  `nesterov` replaces :math:`\hat m_t` by :math:`\beta_1 m_t / (1 - \beta_1^{t+1}) + (1 -
  \beta_1) g_t / (1 - \beta_1^t)`, as `scale_by_adam`.

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`, outside the square root; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`, added to :math:`s_t`; a float or a scalar array.
    nesterov: use the Nesterov look-ahead on the first moment.
    mu_dtype: dtype of `mu` (default: the params' dtype; not in optax).
    nu_dtype: dtype of `nu` (default: the params' dtype; not in optax).

  Returns:
    A `GradientTransformation` with state `ScaleByBeliefState(count, mu, nu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_belief(eps=0.0, eps_root=0.0)
    >>> u, _ = tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]  # g / (0.9 |g|): the error g - m_1 is 0.9 g
    [1.1111, -1.1111]

  References:
    Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, "AdaBelief Optimizer: Adapting
    Stepsizes by the Belief in Observed Gradients", NeurIPS 2020. https://arxiv.org/abs/2010.07468
  """
  fn = "scale_by_belief"
  _checks.check_scalar(fn, "b1", b1, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0)
  _checks.check_bool(fn, "nesterov", nesterov)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByBeliefState(count=jnp.zeros([], jnp.int32),
                              mu=tree.zeros_like(params, mu_dtype),
                              nu=tree.zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    mu = tree.update_moment(updates, state.mu, b1, 1)  # m_t
    prediction_error = map_skip_none(lambda g, m: g - m, updates, mu)  # g_t - m_t
    nu = tree.update_moment_per_elem_norm(prediction_error, state.nu, b2, 2)
    nu = map_skip_none(lambda v: v + _checks.as_dtype(eps_root, v), nu)  # s_t (+ eps_root)
    count_inc = numerics.safe_increment(state.count)
    if nesterov:
      mu_hat = map_skip_none(
          lambda m, g: b1 * m + (1 - b1) * g,
          tree.bias_correction(mu, b1, numerics.safe_increment(count_inc)),
          tree.bias_correction(updates, b1, count_inc))
    else:
      mu_hat = tree.bias_correction(mu, b1, count_inc)
    nu_hat = tree.bias_correction(nu, b2, count_inc)
    out = map_skip_none(lambda m, v: m / (jnp.sqrt(v) + _checks.as_dtype(eps, v)), mu_hat, nu_hat)
    return tree.cast_like(out, updates), ScaleByBeliefState(
        count=count_inc, mu=tree.moment_like(mu, state.mu), nu=tree.moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)
