"""Adan: adaptive Nesterov momentum, estimated from the gradient and the gradient's difference
between steps, so no extrapolated point needs a second gradient.

Returns deltas in the direction of the gradient; follow it with `scale_by_learning_rate` to
descend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, numerics, tree
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation

__all__ = [
    "ScaleByAdanState",
    "scale_by_adan",
]


class ScaleByAdanState(NamedTuple):
  """State of `scale_by_adan`, with optax's fields.

  Attributes:
    m: :math:`m_t`, the EMA of the gradients.
    v: :math:`v_t`, the EMA of their differences.
    n: :math:`n_t`, the EMA of the squared extrapolated gradient.
    g: :math:`g_{t-1}`, the previous gradient.
    t: int32 scalar, the step count.
  """

  m: Any
  v: Any
  n: Any
  g: Any
  t: jax.Array  # int32 scalar


def scale_by_adan(
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by Adan's moments (Xie et al., Algorithm 1, in optax's form).

  Nesterov momentum evaluates the gradient at an extrapolated point; Adan replaces that by the
  first-order expansion :math:`g_t + (1 - \beta_2)(g_t - g_{t-1})`, and tracks the gradient, its
  difference and the square of the extrapolated gradient with three EMAs.

  .. math::
      \Delta_t = g_t - g_{t-1} \;(\Delta_1 = 0), \quad
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) \Delta_t,

      n_t = \beta_3 n_{t-1} + (1 - \beta_3) [g_t + (1 - \beta_2) \Delta_t]^2, \quad
      u_t = \frac{\hat m_t + (1 - \beta_2) \hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}

  with bias-corrected :math:`\hat x_t = x_t / (1 - \beta^t)` of each EMA, :math:`\beta_1,
  \beta_2, \beta_3` = `b1, b2, b3` (optax's convention: the weight of the *old* average, the
  paper's :math:`1 - \beta`), :math:`\epsilon` = `eps`, :math:`\epsilon_{root}` = `eps_root`.

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    b3: :math:`\beta_3` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`; a float or a scalar array.
    mu_dtype: dtype of `m` and `v` (default: the params' dtype; not in optax).
    nu_dtype: dtype of `n` (default: the params' dtype; not in optax).

  Returns:
    A `GradientTransformation` with state `ScaleByAdanState(m, v, n, g, t)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_adan(eps=0.0)
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
    Deep Models", IEEE TPAMI 2024. https://arxiv.org/abs/2208.06677
  """
  fn = "scale_by_adan"
  for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
    _checks.check_scalar(fn, name, value, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdanState(m=tree.zeros_like(params, mu_dtype),
                            v=tree.zeros_like(params, mu_dtype),
                            n=tree.zeros_like(params, nu_dtype),
                            g=tree.zeros_like(params),
                            t=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    for name in ("m", "v", "n", "g"):
      _checks.check_same_structure(fn, "updates", updates, f"state.{name}", getattr(state, name))
    g = updates
    diff = map_skip_none(lambda x, y: jnp.where(state.t == 0, jnp.zeros_like(x), x - y),
                g, state.g)  # Delta_t (0 at the first step)
    m = tree.update_moment(g, state.m, b1, 1)  # m_t
    v = tree.update_moment(diff, state.v, b2, 1)  # v_t
    sq = map_skip_none(lambda x, d: x + (1 - b2) * d, g, diff)  # g_t + (1 - b2) Delta_t
    n = tree.update_moment_per_elem_norm(sq, state.n, b3, 2)  # n_t
    t = numerics.safe_increment(state.t)
    m_hat = tree.bias_correction(m, b1, t)
    v_hat = tree.bias_correction(v, b2, t)
    n_hat = tree.bias_correction(n, b3, t)
    u = map_skip_none(lambda mh, vh: mh + (1 - b2) * vh, m_hat, v_hat)
    out = map_skip_none(lambda x, nh: x / (jnp.sqrt(nh + _checks.as_dtype(eps_root, nh))
                                  + _checks.as_dtype(eps, nh)), u, n_hat)
    return tree.cast_like(out, updates), ScaleByAdanState(
        m=tree.moment_like(m, state.m), v=tree.moment_like(v, state.v),
        n=tree.moment_like(n, state.n), g=tree.moment_like(g, state.g), t=t)

  return GradientTransformation(init_fn, update_fn)
