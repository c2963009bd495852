"""Prodigy, a learning-rate-free AdamW (optax.contrib's `prodigy`).

The step-size estimate is updated on every step (a running max of two scalar reductions): there
is no periodic branch, so a `vmap`ped sweep runs the same arithmetic as a single run.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.contrib import _weight_decay
from gradtx.numerics import safe_increment
from gradtx.tree.arithmetic import sum as tree_sum
from gradtx.tree.arithmetic import vdot as tree_vdot
from gradtx.tree.casting import dtype as tree_dtype

__all__ = [
    "ProdigyState",
    "prodigy",
]


class ProdigyState(NamedTuple):
  """State of `prodigy`, with optax's fields.

  Attributes:
    exp_avg: the first moment of the d-scaled gradients, shaped like the params.
    exp_avg_sq: the second moment, shaped like the params.
    grad_sum: the weighted sum of the gradients, shaped like the params.
    params0: :math:`x_0`, the initial params.
    estim_lr: :math:`d`, the step-size estimate (a float scalar of the params' lowest dtype).
    numerator_weighted: the weighted numerator of the estimate (a float scalar).
    count: int32 scalar, the step count.
  """

  exp_avg: Any
  exp_avg_sq: Any
  grad_sum: Any
  params0: Any
  estim_lr: jax.Array  # float scalar (params' lowest dtype)
  numerator_weighted: jax.Array  # float scalar
  count: jax.Array  # int32 scalar


def _check_betas(fn: str, betas: Any) -> tuple[Any, Any]:
  if not isinstance(betas, (tuple, list)) or len(betas) != 2:
    raise TypeError(f"gradtx.{fn}: betas must be a pair (beta1, beta2), got {betas!r}.")
  _checks.check_scalar(fn, "betas[0]", betas[0], low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "betas[1]", betas[1], low=0.0, high=1.0, high_open=True)
  return betas[0], betas[1]


def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[Any, Any] = (0.9, 0.999),
    beta3: Any = None,
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    estim_lr_coef: Any = 1.0,
    weight_decay: ScalarOrSchedule = 0.0,
    safeguard_warmup: bool = False,
    *,
    mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
  r"""AdamW whose step size :math:`d` is estimated online (Prodigy; no learning rate to tune).

  A D-Adaptation variant that weights recent gradients more: :math:`d` grows towards the
  distance to the solution, estimated from the correlation of the gradients with the distance
  travelled from :math:`x_0`. `learning_rate` is a multiplier of :math:`d` (1.0, or a schedule
  that treats 1.0 as its peak).

  .. math::
      \eta_k = \gamma_k \sqrt{1-\beta_2^{k+1}} / (1-\beta_1^{k+1}), \quad
      m_{k+1} = \beta_1 m_k + (1-\beta_1) d_k g_k, \quad
      v_{k+1} = \beta_2 v_k + (1-\beta_2) d_k^2 g_k^2, \\
      r_{k+1} = \beta_3 r_k + \eta_k d_k^2 \langle g_k, x_0 - x_k \rangle / d_0, \quad
      s_{k+1} = \beta_3 s_k + \eta_k d_k^2 g_k / d_0, \quad
      d_{k+1} = \max\!\big(d_k, c\, r_{k+1} / \|s_{k+1}\|_1\big), \\
      u_k = -\eta_k d_k \big(\lambda x_k + m_{k+1} / (\sqrt{v_{k+1}} + d_{k+1} \epsilon)\big)

  with :math:`\gamma` = `learning_rate`, :math:`d_0` = `estim_lr0`, :math:`c` =
  `estim_lr_coef`, :math:`\lambda` = `weight_decay`, :math:`\beta_3` = `beta3` (default
  :math:`\sqrt{\beta_2}`). With `safeguard_warmup`, :math:`s` accumulates :math:`d_k^2 g_k / d_0`
  (no :math:`\eta_k`). (The paper's :math:`1-\beta_3` factors cancel in :math:`r/\|s\|_1`.)

  Args:
    learning_rate: :math:`\gamma`, a multiplier of :math:`d` (float, array or schedule).
    betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
    beta3: :math:`\beta_3` in [0, 1] for the estimate of :math:`d` (None: :math:`\sqrt{\beta_2}`).
    eps: :math:`\epsilon \ge 0`.
    estim_lr0: :math:`d_0 > 0`, the initial under-estimate of the step size.
    estim_lr_coef: :math:`c > 0`, multiplies the estimates.
    weight_decay: :math:`\lambda \ge 0`, AdamW-style (float, array or schedule).
    safeguard_warmup: drop :math:`\eta_k` from :math:`s` (helps during a warmup).
    mask: which params are decayed (pytree of bools or function of the params). Not in optax.
    mu_dtype: dtype of `exp_avg` (None: the params'). Not in optax.
    nu_dtype: dtype of `exp_avg_sq` (None: the params'). Not in optax.

  Returns:
    A `GradientTransformationExtraArgs` with state `ProdigyState`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.prodigy()
    >>> p = jnp.ones(2)
    >>> u, s = tx.update(jnp.ones(2), tx.init(p), p)
    >>> [round(x, 9) for x in u.tolist()]
    [-1e-06, -1e-06]

  References:
    Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner", ICML
    2024. https://arxiv.org/abs/2306.06101
  """
  fn = "contrib.prodigy"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  beta1, beta2 = _check_betas(fn, betas)
  _checks.check_scalar(fn, "beta3", beta3, low=0.0, high=1.0, optional=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "estim_lr0", estim_lr0, low=0.0, low_open=True)
  _checks.check_scalar(fn, "estim_lr_coef", estim_lr_coef, low=0.0, low_open=True)
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0.0, schedule=True)
  _checks.check_bool(fn, "safeguard_warmup", safeguard_warmup)
  _weight_decay.check_mask(fn, mask)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)
  if beta3 is None:
    beta3 = beta2**0.5

  def init_fn(params):
    params_dtype = tree_dtype(params, "lowest")
    return ProdigyState(
        exp_avg=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params),
        exp_avg_sq=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=nu_dtype), params),
        grad_sum=jax.tree.map(jnp.zeros_like, params),
        params0=jax.tree.map(lambda p: jnp.array(p, copy=True), params),
        estim_lr=jnp.asarray(estim_lr0, dtype=params_dtype),
        numerator_weighted=jnp.zeros((), dtype=params_dtype),
        count=jnp.zeros((), jnp.int32),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "params", params, "state.params0", state.params0)
    count_inc = safe_increment(state.count)
    sched = _checks.resolve(learning_rate, state.count, fn=fn, name="learning_rate")
    wd = _checks.resolve(weight_decay, state.count, fn=fn, name="weight_decay")
    decay = _weight_decay.leaf_mask(fn, mask, params)
    d = state.estim_lr
    bc = ((1 - beta2**count_inc) ** 0.5) / (1 - beta1**count_inc)
    dlr = jnp.asarray(d * sched * bc, dtype=d.dtype)  # eta_k d_k
    dg = jax.tree.map(lambda g: d * g, updates)  # d_k g_k
    param_diff = jax.tree.map(lambda p0, p: p0 - p, state.params0, params)  # x_0 - x_k
    numerator_acum = tree_vdot(updates, param_diff)  # <g_k, x_0 - x_k>
    exp_avg = jax.tree.map(  # m_{k+1}
        lambda ea, dgk: (beta1 * ea + (1 - beta1) * dgk).astype(ea.dtype), state.exp_avg, dg)
    exp_avg_sq = jax.tree.map(  # v_{k+1}
        lambda eas, dgk: (beta2 * eas + (1 - beta2) * dgk * dgk).astype(eas.dtype),
        state.exp_avg_sq, dg)
    if safeguard_warmup:  # s_{k+1} = beta3 s_k + d_k^2 g_k / d_0
      grad_sum = jax.tree.map(lambda sk, dgk: (beta3 * sk + d * dgk / estim_lr0).astype(sk.dtype),
                              state.grad_sum, dg)
    else:  # s_{k+1} = beta3 s_k + eta_k d_k^2 g_k / d_0
      grad_sum = jax.tree.map(lambda sk, dgk: (beta3 * sk + dlr * dgk / estim_lr0).astype(sk.dtype),
                              state.grad_sum, dg)
    numerator_weighted = beta3 * state.numerator_weighted  # r_{k+1}
    numerator_weighted += (d / estim_lr0) * dlr * numerator_acum
    numerator_weighted = numerator_weighted.astype(state.numerator_weighted.dtype)
    denominator = tree_sum(jax.tree.map(jnp.abs, grad_sum))  # ||s_{k+1}||_1
    lr_estimate = estim_lr_coef * numerator_weighted / denominator
    estim_lr = jnp.maximum(d, lr_estimate).astype(d.dtype)  # d_{k+1}

    def step(ea, eas, p, g, decayed):
      adam = dlr * ea / (jnp.sqrt(eas) + estim_lr * eps)
      u = -wd * dlr * p - adam if decayed else -adam  # -eta d (lambda x + m / (sqrt v + d eps))
      return u.astype(jnp.asarray(g).dtype)

    treedef = jax.tree.structure(updates)
    leaves = [step(*args) for args in zip(
        jax.tree.leaves(exp_avg), jax.tree.leaves(exp_avg_sq), jax.tree.leaves(params),
        jax.tree.leaves(updates), decay)]
    new_state = ProdigyState(exp_avg, exp_avg_sq, grad_sum, state.params0, estim_lr,
                             numerator_weighted, count_inc)
    return jax.tree.unflatten(treedef, leaves), new_state

  return GradientTransformationExtraArgs(init_fn, update_fn)
