"""ADOPT: Adam that normalizes by the previous second moment (optax.contrib's `adopt`)."""

from __future__ import annotations

from typing import Any, Callable, Union

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.numerics import safe_increment
from gradtx.transforms.adaptive import ScaleByAdamState
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import moment_like, update_moment, update_moment_per_elem_norm

__all__ = [
    "adopt",
    "scale_by_adopt",
]


def _quarter_power(x: jax.Array) -> jax.Array:
  """optax's default clip value: :math:`t^{1/4}` of the 0-based step."""
  return x**0.25


def scale_by_adopt(
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Union[Callable[[jax.Array], jax.Array], float] = _quarter_power,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Normalizes the gradient by the *previous* second moment, then takes its momentum (ADOPT).

  Adam's update correlates with its own denominator, which makes it diverge for some
  :math:`\beta_2`; ADOPT divides by :math:`v_{t-1}` (independent of :math:`g_t`) and applies
  momentum after the normalization, converging for any :math:`\beta_2` (Taniguchi et al. 2024,
  Algorithm 2, with the clipping of their Sec. 4). Step 0 only initializes :math:`v`.

  .. math::
      v_0 = g_0^2, \quad m_0 = 0; \qquad \text{for } t \ge 1:\;
      \hat g_t = \mathrm{clip}\Big(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)}, c_t\Big), \quad
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) \hat g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad u_t = m_t

  with :math:`c_t` = `clip_value_fn(t)` (:math:`t^{1/4}`; no clip without `use_clipping`),
  :math:`\epsilon` = `eps`; `nesterov` returns :math:`\beta_1 m_t + (1 - \beta_1) \hat g_t`.

  Args:
    b1: :math:`\beta_1` in [0, 1).
    b2: :math:`\beta_2` in [0, 1).
    eps: :math:`\epsilon \ge 0` (> 0 without clipping), the floor of the root.
    mu_dtype: dtype of `mu` (default: the params').
    nesterov: the Nesterov form of the momentum.
    use_clipping: clip the normalized gradient to :math:`[-c_t, c_t]`.
    clip_value_fn: :math:`c_t \ge 0` as a function of the int32 step, or a number (a constant
      clip value; not in optax, and what lets `inject_hyperparams(adopt)` run, where optax's
      fails calling the injected value).
    nu_dtype: dtype of `nu` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByAdamState(count, mu, nu)`, as optax's.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_adopt(b1=0.0)
    >>> u, s = tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))
    >>> tx.update(jnp.array([0.5, -2.0]), s)[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Taniguchi, Harada, Minegishi, Oshima, Jeong, Nagahara, Iiyama, Suzuki, Iwasawa & Matsuo,
    "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate", NeurIPS 2024.
    https://arxiv.org/abs/2411.02853
  """
  fn = "scale_by_adopt"
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0, high_open=True)
  _checks.check_bool(fn, "nesterov", nesterov)
  _checks.check_bool(fn, "use_clipping", use_clipping)
  _checks.check_scalar(fn, "eps", eps, low=0.0, low_open=not use_clipping)
  # A number is a constant clip value; inject_hyperparams passes the function's value there.
  _checks.check_scalar(fn, "clip_value_fn", clip_value_fn, low=0.0, schedule=True)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params, mu_dtype),
                            nu=zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    b2_ = jnp.where(state.count > 0, b2, 0)  # step 0: v_0 = g_0^2
    b1_ = jnp.where(state.count > 0, b1, 1)  # step 0: m stays 0
    nu = update_moment_per_elem_norm(updates, state.nu, b2_, 2)
    if use_clipping:
      clip_value = _checks.resolve(clip_value_fn, state.count, fn=fn, name="clip_value_fn")
      normalize = lambda g, v: jnp.clip(g / jnp.maximum(jnp.sqrt(v), eps), -clip_value,
                                        clip_value)
    else:
      normalize = lambda g, v: g / jnp.maximum(jnp.sqrt(v), eps)
    g_hat = map_skip_none(normalize, updates, state.nu)  # g_t / max(sqrt(v_{t-1}), eps)
    mu = update_moment(g_hat, state.mu, b1_, 1)  # m_t = b1 m_{t-1} + (1 - b1) g_hat
    out = update_moment(g_hat, mu, b1_, 1) if nesterov else mu
    return cast_like(out, updates), ScaleByAdamState(
        count=safe_increment(state.count), mu=moment_like(mu, state.mu),
        nu=moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)


def adopt(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Union[Callable[[jax.Array], jax.Array], float] = _quarter_power,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""ADOPT (Taniguchi et al.), as optax's.

  Builds `chain(scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=..., use_clipping=...,
  clip_value_fn=...), scale_by_learning_rate(learning_rate))`. The first step is zero: it only
  measures the second moment (:math:`v_0 = g_0^2`, :math:`m_0 = 0`); then, for :math:`t \ge 1`,

  .. math::
      \hat g_t = \mathrm{clip}\Big(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)}, c_t\Big), \quad
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) \hat g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad
      \theta_t = \theta_{t-1} - \eta_t m_t

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps`, :math:`c_t` = `clip_value_fn(t)` (no clip without `use_clipping`);
  `nesterov` steps along :math:`\beta_1 m_t + (1 - \beta_1) \hat g_t`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, eps, mu_dtype, nesterov, use_clipping, clip_value_fn, nu_dtype: as
      `scale_by_adopt`.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.adopt(0.1)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()
    [-0.0]

  References:
    Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal Rate",
    NeurIPS 2024. https://arxiv.org/abs/2411.02853
  """
  return chain(
      scale_by_adopt(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nesterov=nesterov,
                     use_clipping=use_clipping, clip_value_fn=clip_value_fn,
                     nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )
