"""D-Adaptation for AdamW (optax.contrib's `dadapt_adamw`).

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
from gradtx.contrib.prodigy import _check_betas
from gradtx.numerics import safe_increment
from gradtx.tree.arithmetic import sum as tree_sum
from gradtx.tree.arithmetic import vdot as tree_vdot
from gradtx.tree.casting import dtype as tree_dtype

__all__ = [
    "DAdaptAdamWState",
    "dadapt_adamw",
]


class DAdaptAdamWState(NamedTuple):
  """State of `dadapt_adamw`, with optax's fields.

  Attributes:
    exp_avg: the first moment of the step-size-scaled gradients, shaped like the params.
    exp_avg_sq: the second moment, shaped like the params.
    grad_sum: the weighted sum of the gradients, shaped like the params.
    estim_lr: :math:`d`, the step-size estimate (a float scalar of the params' lowest dtype).
    numerator_weighted: the weighted numerator of the estimate (a float scalar).
    count: int32 scalar, the step count.
  """

  exp_avg: Any
  exp_avg_sq: Any
  grad_sum: Any
  estim_lr: jax.Array  # float scalar (params' lowest dtype)
  numerator_weighted: jax.Array  # float scalar
  count: jax.Array  # int32 scalar


def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
  r"""AdamW whose step size :math:`d` is estimated online by D-Adaptation (no learning rate).

  :math:`d` lower-bounds the (infinity-norm) distance from the initial point to the solution,
  estimated from the weighted sum of past steps :math:`s` and its correlation with the new
  gradient; it never decreases. `learning_rate` is a multiplier of :math:`d` (1.0, or a
  schedule that treats 1.0 as its peak).

  .. math::
      \lambda_k = d_k \gamma_k \sqrt{1-\beta_2^{k+1}} / (1-\beta_1^{k+1}), \quad
      r_{k+1} = \sqrt{\beta_2} r_k + (1-\sqrt{\beta_2}) \lambda_k
        \langle g_k, s_k / (\sqrt{v_k} + \epsilon) \rangle, \\
      m_{k+1} = \beta_1 m_k + (1-\beta_1) \lambda_k g_k, \quad
      v_{k+1} = \beta_2 v_k + (1-\beta_2) g_k^2, \quad
      s_{k+1} = \sqrt{\beta_2} s_k + (1-\sqrt{\beta_2}) \lambda_k g_k, \\
      d_{k+1} = \max\!\Big(d_k, \frac{r_{k+1}}{(1-\sqrt{\beta_2}) \|s_{k+1}\|_1}\Big), \quad
      u_k = -\omega \lambda_k x_k - m_{k+1} / (\sqrt{v_{k+1}} + \epsilon)

  with :math:`\gamma` = `learning_rate`, :math:`d_0` = `estim_lr0`, :math:`\omega` =
  `weight_decay`.

  Args:
    learning_rate: :math:`\gamma`, a multiplier of :math:`d` (float, array or schedule).
    betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps: :math:`\epsilon \ge 0`.
    estim_lr0: :math:`d_0 > 0`, the initial under-estimate of the step size.
    weight_decay: :math:`\omega \ge 0`, AdamW-style (float, array or schedule).
    mask: which params are decayed (pytree of bools or function of the params). Not in optax.
    mu_dtype: dtype of `exp_avg` (None: the params'). Not in optax.
    nu_dtype: dtype of `exp_avg_sq` (None: the params'). Not in optax.

  Returns:
    A `GradientTransformationExtraArgs` with state `DAdaptAdamWState`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.dadapt_adamw()
    >>> p = jnp.ones(2)
    >>> u, s = tx.update(jnp.ones(2), tx.init(p), p)
    >>> [round(x, 9) for x in u.tolist()]
    [-1e-06, -1e-06]

  References:
    Defazio & Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
    https://arxiv.org/abs/2301.07733
  """
  fn = "contrib.dadapt_adamw"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  beta1, beta2 = _check_betas(fn, betas)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "estim_lr0", estim_lr0, low=0.0, low_open=True)
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0.0, schedule=True)
  _weight_decay.check_mask(fn, mask)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    params_dtype = tree_dtype(params, "lowest")
    return DAdaptAdamWState(
        exp_avg=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params),
        exp_avg_sq=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=nu_dtype), params),
        grad_sum=jax.tree.map(jnp.zeros_like, params),
        estim_lr=jnp.asarray(estim_lr0, dtype=params_dtype),
        numerator_weighted=jnp.zeros([], dtype=params_dtype),
        count=jnp.zeros([], jnp.int32),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "updates", updates, "state.grad_sum", state.grad_sum)
    sb2 = beta2 ** (0.5)
    sched = _checks.resolve(learning_rate, state.count, fn=fn, name="learning_rate")
    wd = _checks.resolve(weight_decay, state.count, fn=fn, name="weight_decay")
    decay = _weight_decay.leaf_mask(fn, mask, params)
    count_inc = safe_increment(state.count)
    bc = ((1 - beta2**count_inc) ** 0.5) / (1 - beta1**count_inc)
    dlr = state.estim_lr * sched * bc  # lambda_k
    dlr = dlr.astype(state.numerator_weighted.dtype)
    s_weighted = jax.tree.map(  # s_k / (sqrt(v_k) + eps)
        lambda sk, eas: sk / (jnp.sqrt(eas) + eps), state.grad_sum, state.exp_avg_sq)
    numerator_acum = tree_vdot(updates, s_weighted)
    exp_avg = jax.tree.map(  # m_{k+1}
        lambda ea, g: (beta1 * ea + (1 - beta1) * dlr * g).astype(ea.dtype), state.exp_avg,
        updates)
    exp_avg_sq = jax.tree.map(  # v_{k+1}
        lambda eas, g: (beta2 * eas + (1 - beta2) * g * g).astype(eas.dtype), state.exp_avg_sq,
        updates)
    grad_sum = jax.tree.map(  # s_{k+1}
        lambda sk, g: (sb2 * sk + (1 - sb2) * dlr * g).astype(sk.dtype), state.grad_sum, updates)
    grad_sum_l1 = tree_sum(jax.tree.map(jnp.abs, grad_sum))
    numerator_weighted = (  # r_{k+1}
        sb2 * state.numerator_weighted + (1 - sb2) * dlr * numerator_acum
    ).astype(state.numerator_weighted.dtype)
    d_estimate = numerator_weighted / ((1 - sb2) * grad_sum_l1)
    estim_lr = jnp.maximum(state.estim_lr, d_estimate).astype(state.estim_lr.dtype)  # d_{k+1}

    def step(ea, eas, p, g, decayed):
      adam = ea / (jnp.sqrt(eas) + eps)
      u = -wd * dlr * p - adam if decayed else -adam  # -omega lambda x - m / (sqrt v + eps)
      return u.astype(jnp.asarray(g).dtype)

    leaves = [step(*args) for args in zip(
        jax.tree.leaves(exp_avg), jax.tree.leaves(exp_avg_sq), jax.tree.leaves(params),
        jax.tree.leaves(updates), decay)]
    new_state = DAdaptAdamWState(exp_avg, exp_avg_sq, grad_sum, estim_lr, numerator_weighted,
                                 count_inc)
    return jax.tree.unflatten(jax.tree.structure(updates), leaves), new_state

  return GradientTransformationExtraArgs(init_fn, update_fn)
