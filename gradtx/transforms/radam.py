"""Rectified Adam: Adam whose adaptive step is switched on once the variance of its second-moment
estimate is tractable, and scaled by a rectification term until then.

Returns deltas in the direction of the gradient; follow it with `scale_by_learning_rate` to
descend. The state is optax's: `ScaleByAdamState` (defined with Adam in `adaptive.py`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks, numerics, tree
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation
from gradtx.transforms.adaptive import ScaleByAdamState

__all__ = [
    "scale_by_radam",
]


def scale_by_radam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
    torch_form: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by Rectified Adam's moments (RAdam; Liu et al., Algorithm 2).

  In the first steps Adam's second moment averages few gradients, so its adaptive step has a
  large variance. RAdam estimates the length :math:`\rho_t` of the simple moving average that the
  EMA approximates; below `threshold` it takes the plain momentum step, above it Adam's step
  times a rectifier :math:`r_t` that corrects the variance.

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
      \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t},

      \rho_\infty = \frac{2}{1 - \beta_2} - 1, \quad
      \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}, \quad
      r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)
      \rho_t}}, \quad
      u_t = \begin{cases} r_t \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
      & \rho_t \ge \tau \\ \hat m_t & \text{else} \end{cases}

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`,
  :math:`\epsilon_{root}` = `eps_root`, :math:`\tau` = `threshold`. `nesterov` uses
  `scale_by_adam`'s look-ahead for :math:`\hat m_t`. `torch_form` is torch.optim.RAdam's
  arithmetic: `eps` is added to the root of the *uncorrected* :math:`v_t`, :math:`u_t = r_t
  \hat m_t \sqrt{1 - \beta_2^t} / (\sqrt{v_t + \epsilon_{root}} + \epsilon)`, and the rectified
  branch is taken when :math:`\rho_t > \tau` (strictly).

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`; a float or a scalar array.
    threshold: :math:`\tau \ge 4` (below 4 the rectifier is the root of a negative number); a
      float or a scalar array.
    nesterov: use the Nesterov look-ahead on the first moment.
    torch_form: torch.optim.RAdam's epsilon placement and strict threshold (not in optax).
    mu_dtype: dtype of `mu` (default: the params' dtype; not in optax).
    nu_dtype: dtype of `nu` (default: the params' dtype; not in optax).

  Returns:
    A `GradientTransformation` with state `ScaleByAdamState(count, mu, nu)`, as optax's.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_radam()  # rho_1 = 1 < 5: the first step is the momentum step
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [0.5, -2.0]

  References:
    Liu, Jiang, He, Chen, Liu, Gao & Han, "On the Variance of the Adaptive Learning Rate and
    Beyond", ICLR 2020. https://arxiv.org/abs/1908.03265
  """
  fn = "scale_by_radam"
  _checks.check_scalar(fn, "b1", b1, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0)
  _checks.check_scalar(fn, "threshold", threshold, low=4)
  _checks.check_bool(fn, "nesterov", nesterov)
  _checks.check_bool(fn, "torch_form", torch_form)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  ro_inf = 2.0 / (1.0 - b2) - 1.0  # rho_inf

  def rectifier(ro):  # r_t
    return jnp.sqrt((ro - 4.0) * (ro - 2.0) * ro_inf / ((ro_inf - 4.0) * (ro_inf - 2.0) * ro))

  def init_fn(params):
    return ScaleByAdamState(count=jnp.zeros([], jnp.int32),
                            mu=tree.zeros_like(params, mu_dtype),
                            nu=tree.zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    mu = tree.update_moment(updates, state.mu, b1, 1)  # m_t
    nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)  # v_t
    count_inc = numerics.safe_increment(state.count)
    b2t = b2**count_inc
    ro = ro_inf - 2 * count_inc * b2t / (1 - b2t)  # rho_t
    if nesterov:
      mu_hat = map_skip_none(
          lambda m, g: b1 * m + (1 - b1) * g,
          tree.bias_correction(mu, b1, numerics.safe_increment(count_inc)),
          tree.bias_correction(updates, b1, count_inc))
    else:
      mu_hat = tree.bias_correction(mu, b1, count_inc)
    r = rectifier(ro)
    if torch_form:  # r_t m_hat sqrt(1 - b2^t) / (sqrt(v_t + eps_root) + eps), if rho_t > tau
      bc2_root = jnp.sqrt(1 - b2t)
      rectified = map_skip_none(
          lambda m, v: (r.astype(m.dtype) * m) * (bc2_root.astype(v.dtype) / (
              jnp.sqrt(v + _checks.as_dtype(eps_root, v)) + _checks.as_dtype(eps, v))),
          mu_hat, nu)
      use_rectified = ro > threshold
    else:  # r_t m_hat / (sqrt(v_hat + eps_root) + eps), if rho_t >= tau
      nu_hat = tree.bias_correction(nu, b2, count_inc)
      rectified = map_skip_none(
          lambda m, v: r.astype(m.dtype) * m / (jnp.sqrt(v + _checks.as_dtype(eps_root, v))
                                                + _checks.as_dtype(eps, v)),
          mu_hat, nu_hat)
      use_rectified = ro >= threshold
    out = map_skip_none(lambda t, f: jnp.where(use_rectified, t, f), rectified, mu_hat)
    return tree.cast_like(out, updates), ScaleByAdamState(
        count=count_inc, mu=tree.moment_like(mu, state.mu), nu=tree.moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)
