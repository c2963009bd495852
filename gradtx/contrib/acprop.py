"""ACProp: AdaBelief's centred second moment, used asynchronously (optax.contrib's `acprop`)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.numerics import safe_increment
from gradtx.transforms.belief import ScaleByBeliefState  # optax's acprop state is AdaBelief's
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import (
  bias_correction,
  moment_like,
  update_moment,
  update_moment_per_elem_norm,
)

__all__ = [
    "acprop",
    "scale_by_acprop",
]


def scale_by_acprop(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Divides the gradient by the root of the previous step's centred second moment (ACProp).

  As AdaBelief, the second moment tracks the squared deviation of the gradient from its EMA (the
  "belief"); unlike it, the step divides the *raw* gradient by the moment of the previous step,
  so numerator and denominator are independent ("asynchronous", Zhuang et al. 2021, Alg. 2).

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      s_t = \beta_2 s_{t-1} + (1 - \beta_2) (g_t - m_{t-1})^2 + \bar\epsilon,

      u_t = \frac{g_t}{\sqrt{s_{t-1} / (1 - \beta_2^{t-1})} + \epsilon}
      \quad (t > 1), \qquad u_1 = \frac{g_1}{1 + \epsilon}

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`,
  :math:`\bar\epsilon` = `eps_root`. The deviation uses :math:`m_{t-1}`, as optax.

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`, outside the root.
    eps_root: :math:`\bar\epsilon \ge 0`, added to the moment each step.
    mu_dtype: dtype of `mu` (default: the params'). Not in optax.
    nu_dtype: dtype of `nu` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByBeliefState(count, mu, nu)`, as optax's.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_acprop()
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [0.5, -2.0]

  References:
    Zhuang, Ding, Tang, Dvornek, Tatikonda & Duncan, "Momentum Centering and Asynchronous Update
    for Adaptive Gradient Methods", NeurIPS 2021. https://arxiv.org/abs/2110.05454
  """
  fn = "scale_by_acprop"
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0.0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByBeliefState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params, mu_dtype),
                              nu=zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    mu = update_moment(updates, state.mu, b1, 1)  # m_t = b1 m_{t-1} + (1 - b1) g_t
    deviation = map_skip_none(lambda g, m: g - m, updates, state.mu)  # g_t - m_{t-1}
    nu = update_moment_per_elem_norm(deviation, state.nu, b2, 2)
    nu = map_skip_none(lambda d, v: v + eps_root, deviation, nu)  # s_t = ... + eps_root
    count_inc = safe_increment(state.count)
    initial = state.count == 0  # u_1: the previous moment is empty, divide by 1
    t = jnp.where(initial, count_inc, state.count)
    nu_hat = bias_correction(state.nu, b2, t)  # s_{t-1} / (1 - b2^{t-1})
    nu_hat = jax.tree.map(lambda v: jnp.where(initial, 1, v), nu_hat)
    out = map_skip_none(lambda g, v: g / (jnp.sqrt(v) + eps), updates, nu_hat)
    return cast_like(out, updates), ScaleByBeliefState(
        count=count_inc, mu=moment_like(mu, state.mu), nu=moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)


def acprop(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn | Callable | None = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""ACProp (Zhuang et al.) with decoupled weight decay, as optax.

  Builds `chain(scale_by_acprop(b1, b2, eps, eps_root), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`; the decay is multiplied by the learning rate, as
  PyTorch's AdamW:

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      s_t = \beta_2 s_{t-1} + (1 - \beta_2) (g_t - m_{t-1})^2 + \bar\epsilon,

      \theta_t = \theta_{t-1} - \eta_t \Big(\frac{g_t}{\sqrt{s_{t-1} / (1 - \beta_2^{t-1})}
      + \epsilon} + \lambda \theta_{t-1}\Big) \quad (t > 1)

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps`, :math:`\bar\epsilon` = `eps_root`, :math:`\lambda` = `weight_decay`
  (on the masked leaves); the first step divides by :math:`1 + \epsilon` (see `scale_by_acprop`).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, eps, eps_root: as `scale_by_acprop`.
    weight_decay: >= 0; a float, array or schedule.
    mask: which params are decayed (pytree of bools or a callable).
    mu_dtype, nu_dtype: as `scale_by_acprop`. Not in optax.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.acprop(0.1)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()
    [-0.10000000149011612]

  References:
    Zhuang, Ding, Tang, Dvornek, Tatikonda & Duncan, "Momentum Centering and Asynchronous Update
    for Adaptive Gradient Methods", NeurIPS 2021. https://arxiv.org/abs/2110.05454
  """
  return chain(
      scale_by_acprop(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                      nu_dtype=nu_dtype),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )
