"""MoMo and MoMo-Adam: momentum with a Polyak-type adaptive step size (optax.contrib's).

Both need the current (mini-batch) loss: pass it to `update` as `value=`. They return the whole
step (weight decay included) and so are not chained with `scale_by_learning_rate`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks, tree
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.numerics import safe_increment

__all__ = [
    "MomoAdamState",
    "MomoState",
    "momo",
    "momo_adam",
]


def _check_update_args(fn: str, updates: Any, params: Any, exp_avg: Any, value: Any) -> None:
  if params is None:
    raise _checks.missing_params_error(fn)
  if value is None:
    raise ValueError(
        f"gradtx.{fn}: update needs the current loss as the keyword argument `value`: "
        "loss, grads = jax.value_and_grad(loss_fn)(params); "
        "updates, state = tx.update(grads, state, params, value=loss).")
  _checks.check_same_structure(fn, "updates", updates, "params", params)
  _checks.check_same_structure(fn, "updates", updates, "state.exp_avg", exp_avg)


def _present(updates: Any, other: Any) -> Any:
  """`other` with `None` wherever `updates` has a `None` leaf (those leaves take no part)."""
  return jax.tree.map(lambda g, o: None if g is None else o, updates, other, is_leaf=is_none)


def _check_common(fn: str, learning_rate: Any, lower_bound: Any, weight_decay: Any,
                  adapt_lower_bound: Any) -> None:
  _checks.check_scalar(fn, "learning_rate", learning_rate, low=0, low_open=True, schedule=True)
  _checks.check_scalar(fn, "lower_bound", lower_bound)
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0, schedule=True)
  _checks.check_bool(fn, "adapt_lower_bound", adapt_lower_bound)


class MomoState(NamedTuple):
  r"""State of `momo` (optax's `MomoState`).

  Attributes:
    exp_avg: :math:`d_t`, the momentum, shaped like the params.
    barf: :math:`\bar f_t`, the averaged loss (a scalar).
    gamma: :math:`\gamma_t`, the averaged :math:`\langle g, x \rangle` (a scalar).
    lb: :math:`f_*`, the (estimated) lower bound of the loss (a scalar).
    count: int32 scalar, the step count.
  """

  exp_avg: Any  # d_t, the momentum, shaped like the params
  barf: jax.Array  # \bar f_t, the averaged loss (scalar)
  gamma: jax.Array  # \gamma_t, the averaged <g, x> (scalar)
  lb: jax.Array  # f_*, the (estimated) lower bound of the loss (scalar)
  count: jax.Array  # int32 scalar


def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: Any = 0.9,
    lower_bound: Any = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    adapt_lower_bound: bool = False,
    *,
    mu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
  r"""MoMo: SGD with momentum and a Polyak-type step size from a model of the loss.

  MoMo keeps momentum averages of the gradients, the losses and :math:`\langle g, x\rangle`,
  builds from them a lower-bounded model of the loss, and takes the step that minimises it,
  capped at `learning_rate` (Schaipp et al. 2023, Algorithm 1, with weight decay as in its
  Section 5):

  .. math::
      \bar f_t = \beta \bar f_{t-1} + (1-\beta) f(x_t), \quad
      d_t = \beta d_{t-1} + (1-\beta) g_t, \quad
      \gamma_t = \beta \gamma_{t-1} + (1-\beta) \langle g_t, x_t \rangle, \\
      \tau_t = \min\Big(\alpha_t, \frac{\big((1+\alpha_t\lambda)(\bar f_t - f_* - \gamma_t)
      + \langle d_t, x_t\rangle\big)_+}{\|d_t\|^2}\Big), \quad
      u_t = -\frac{\alpha_t\lambda}{1+\alpha_t\lambda} x_t - \tau_t d_t

  with :math:`\alpha_t` = `learning_rate`, :math:`\beta` = `beta` (0 at the first step),
  :math:`f_*` = `lower_bound`, :math:`\lambda` = `weight_decay`. With `adapt_lower_bound`,
  :math:`f_*` is re-estimated every step (the paper's Section 4).

  Args:
    learning_rate: :math:`\alpha_t > 0`, the largest step size (chosen rather large); a float,
      array or schedule.
    beta: :math:`\beta \in [0, 1)`, the momentum of the averages.
    lower_bound: :math:`f_*`, a lower bound of the loss (0 suits most losses).
    weight_decay: :math:`\lambda \ge 0`; a float, array or schedule.
    adapt_lower_bound: estimate the lower bound on the fly.
    mu_dtype: dtype of `exp_avg` (None: the params' dtype).

  Returns:
    A `GradientTransformationExtraArgs` with state `MomoState(exp_avg, barf, gamma, lb, count)`
    whose `update(updates, state, params, *, value)` needs `params` and the loss `value`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda x: jnp.sum(x ** 2)
    >>> tx, x = gradtx.contrib.momo(), jnp.array([1.0, 2.0, 3.0])
    >>> loss, g = jax.value_and_grad(f)(x)
    >>> u, _ = tx.update(g, tx.init(x), x, value=loss)
    >>> float(f(x + u))
    3.5

  References:
    Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive Learning
    Rates", ICML 2024. https://arxiv.org/abs/2305.07583
  """
  fn = "contrib.momo"
  _check_common(fn, learning_rate, lower_bound, weight_decay, adapt_lower_bound)
  _checks.check_scalar(fn, "beta", beta, low=0, high=1, high_open=True)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)

  def init_fn(params):
    params_dtype = tree.dtype(params, "lowest")  # no promotion of the updates (as optax)
    return MomoState(
        exp_avg=tree.zeros_like(params, dtype=mu_dtype),
        barf=jnp.zeros([], dtype=params_dtype),
        gamma=jnp.zeros([], dtype=params_dtype),
        lb=jnp.array(lower_bound, dtype=params_dtype),
        count=jnp.zeros([], jnp.int32),
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del extra_args
    _check_update_args(fn, updates, params, state.exp_avg, value)
    params = _present(updates, params)
    count = state.count
    bt = jnp.where(count == 0, 0.0, beta)  # the averages start at the first values
    barf = bt * state.barf + (1 - bt) * jnp.asarray(value, dtype=state.barf.dtype)  # \bar f_t
    exp_avg = jax.tree.map(lambda ea, g: bt * ea + (1 - bt) * g,  # d_t
                           _present(updates, state.exp_avg), updates)
    gamma = bt * state.gamma + (1 - bt) * tree.vdot(updates, params)  # gamma_t
    exp_avg_norm = tree.norm(exp_avg, squared=True)  # ||d_t||^2
    iprod = tree.vdot(exp_avg, params)  # <d_t, x_t>
    alpha = _checks.resolve(learning_rate, count, fn=fn, name="learning_rate")
    wd = _checks.resolve(weight_decay, count, fn=fn, name="weight_decay")
    if adapt_lower_bound:  # reset the lower bound
      cap = (1 + alpha * wd) * (barf - gamma) + iprod
      this_lb = lax.cond(cap < (1 + alpha * wd) * state.lb,
                         lambda: jnp.maximum(cap / (2 * (1 + alpha * wd)), lower_bound),
                         lambda: state.lb)
    else:
      this_lb = state.lb
    t1 = jnp.maximum((1 + alpha * wd) * (barf - this_lb - gamma) + iprod, 0.0) / exp_avg_norm
    t1 = jnp.where(exp_avg_norm <= jnp.finfo(float).eps, 0.0, t1)  # no step if d_t = 0
    tau = jnp.minimum(alpha, t1)  # tau_t
    p_update = jax.tree.map(  # u_t = -a l / (1 + a l) x_t - tau_t d_t
        lambda ea, p: -(alpha * wd) / (1 + alpha * wd) * p - tau * ea, exp_avg, params)
    if adapt_lower_bound:
      new_lb = jnp.maximum((barf + iprod - gamma) - (1 / 2) * tau * exp_avg_norm, lower_bound)
    else:
      new_lb = state.lb
    return tree.cast_like(p_update, updates), MomoState(
        exp_avg=tree.moment_like(exp_avg, state.exp_avg),
        barf=barf.astype(state.barf.dtype),
        gamma=gamma.astype(state.gamma.dtype),
        lb=jnp.asarray(new_lb).astype(state.lb.dtype),
        count=safe_increment(count),
    )

  return GradientTransformationExtraArgs(init_fn, update_fn)


class MomoAdamState(NamedTuple):
  r"""State of `momo_adam` (optax's `MomoAdamState`).

  Attributes:
    exp_avg: :math:`d_t`, the first moment, shaped like the params.
    exp_avg_sq: :math:`v_t`, the second moment, shaped like the params.
    barf: :math:`\bar f_t`, the averaged loss (a scalar).
    gamma: :math:`\gamma_t`, the averaged :math:`\langle g, x \rangle` (a scalar).
    lb: :math:`f_*`, the (estimated) lower bound of the loss (a scalar).
    count: int32 scalar, the step count.
  """

  exp_avg: Any  # d_t, the first moment, shaped like the params
  exp_avg_sq: Any  # v_t, the second moment, shaped like the params
  barf: jax.Array  # \bar f_t, the averaged loss (scalar)
  gamma: jax.Array  # \gamma_t, the averaged <g, x> (scalar)
  lb: jax.Array  # f_*, the (estimated) lower bound of the loss (scalar)
  count: jax.Array  # int32 scalar


def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    lower_bound: Any = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    adapt_lower_bound: bool = False,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
  r"""MoMo-Adam: Adam(W) with a Polyak-type step size from a model of the loss.

  As `momo`, with Adam's preconditioner :math:`D_t = \epsilon + \sqrt{v_t / (1-\beta_2^t)}`
  (Schaipp et al. 2023, Algorithm 3):

  .. math::
      v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
      \rho_t = 1 - \beta_1^t, \\
      \tau_t = \min\Big(\frac{\alpha_t}{\rho_t}, \frac{\big((1+\alpha_t\lambda)
      (\bar f_t - \rho_t f_* - \gamma_t) + \langle d_t, x_t\rangle\big)_+}
      {\langle d_t, d_t / D_t \rangle}\Big), \quad
      u_t = -\frac{\alpha_t\lambda}{1+\alpha_t\lambda} x_t - \tau_t \frac{d_t}{D_t}

  with :math:`\bar f_t, d_t, \gamma_t` the :math:`\beta_1`-averages of `momo`.

  Args:
    learning_rate: :math:`\alpha_t > 0`; a float, array or schedule.
    b1: :math:`\beta_1 \in [0, 1)`, the decay of the first moment and of the averages.
    b2: :math:`\beta_2 \in [0, 1)`, the decay of the second moment.
    eps: :math:`\epsilon \ge 0`, added to the preconditioner.
    lower_bound: :math:`f_*`, a lower bound of the loss (0 suits most losses).
    weight_decay: :math:`\lambda \ge 0` (AdamW-like); a float, array or schedule.
    adapt_lower_bound: estimate the lower bound on the fly.
    mu_dtype: dtype of `exp_avg` (None: the params' dtype).
    nu_dtype: dtype of `exp_avg_sq` (None: the params' dtype).

  Returns:
    A `GradientTransformationExtraArgs` with state `MomoAdamState(exp_avg, exp_avg_sq, barf,
    gamma, lb, count)` whose `update(updates, state, params, *, value)` needs `params` and the
    loss `value`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda x: jnp.sum(x ** 2)
    >>> tx, x = gradtx.contrib.momo_adam(), jnp.array([1.0, 2.0, 3.0])
    >>> loss, g = jax.value_and_grad(f)(x)
    >>> u, _ = tx.update(g, tx.init(x), x, value=loss)
    >>> round(float(f(x + u)), 4)
    13.8803

  References:
    Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for Adaptive Learning
    Rates", ICML 2024. https://arxiv.org/abs/2305.07583
  """
  fn = "contrib.momo_adam"
  _check_common(fn, learning_rate, lower_bound, weight_decay, adapt_lower_bound)
  _checks.check_scalar(fn, "b1", b1, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    params_dtype = tree.dtype(params, "lowest")  # no promotion of the updates (as optax)
    return MomoAdamState(
        exp_avg=tree.zeros_like(params, dtype=mu_dtype),
        exp_avg_sq=tree.zeros_like(params, dtype=nu_dtype),
        barf=jnp.zeros([], dtype=params_dtype),
        gamma=jnp.zeros([], dtype=params_dtype),
        lb=jnp.array(lower_bound, dtype=params_dtype),
        count=jnp.zeros([], jnp.int32),
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del extra_args
    _check_update_args(fn, updates, params, state.exp_avg, value)
    params = _present(updates, params)
    count = state.count
    count_inc = safe_increment(count)
    barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype=state.barf.dtype)  # \bar f_t
    exp_avg = jax.tree.map(lambda ea, g: b1 * ea + (1 - b1) * g,  # d_t
                           _present(updates, state.exp_avg), updates)
    exp_avg_sq = jax.tree.map(lambda eas, g: b2 * eas + (1 - b2) * g * g,  # v_t
                              _present(updates, state.exp_avg_sq), updates)
    bc2 = jnp.asarray(1 - b2**count_inc, dtype=barf.dtype)
    precond = jax.tree.map(lambda eas: eps + jnp.sqrt(eas / bc2), exp_avg_sq)  # D_t
    exp_avg_weighted = jax.tree.map(lambda ea, prec: ea / prec, exp_avg, precond)
    exp_avg_norm = tree.vdot(exp_avg, exp_avg_weighted)  # <d_t, d_t / D_t>
    gamma = b1 * state.gamma + (1 - b1) * tree.vdot(updates, params)  # gamma_t
    iprod = tree.vdot(exp_avg, params)  # <d_t, x_t>
    alpha = _checks.resolve(learning_rate, count, fn=fn, name="learning_rate")
    wd = _checks.resolve(weight_decay, count, fn=fn, name="weight_decay")
    bc1 = jnp.asarray(1 - b1**count_inc, dtype=barf.dtype)  # rho_t
    if adapt_lower_bound:  # reset the lower bound
      cap = (1 + alpha * wd) * (barf - gamma) + iprod
      this_lb = jnp.where(cap < (1 + alpha * wd) * bc1 * state.lb,
                          jnp.maximum(cap / (2 * bc1 * (1 + alpha * wd)), lower_bound),
                          state.lb)
    else:
      this_lb = state.lb
    t1 = jnp.maximum(
        (1 + alpha * wd) * (barf - bc1 * this_lb - gamma) + iprod, 0.0) / exp_avg_norm
    t1 = jnp.where(exp_avg_norm <= jnp.finfo(float).eps, 0.0, t1)  # no step if d_t = 0
    tau = jnp.minimum(alpha / bc1, t1)  # tau_t
    p_update = jax.tree.map(  # u_t = -a l / (1 + a l) x_t - tau_t d_t / D_t
        lambda ea, prec, p: -(alpha * wd) / (1 + alpha * wd) * p - tau * ea / prec,
        exp_avg, precond, params)
    if adapt_lower_bound:
      new_lb = ((barf + iprod - gamma) - (1 / 2) * tau * exp_avg_norm) / bc1
      new_lb = jnp.maximum(new_lb, lower_bound)
    else:
      new_lb = state.lb
    return tree.cast_like(p_update, updates), MomoAdamState(
        exp_avg=tree.moment_like(exp_avg, state.exp_avg),
        exp_avg_sq=tree.moment_like(exp_avg_sq, state.exp_avg_sq),
        barf=barf.astype(state.barf.dtype),
        gamma=gamma.astype(state.gamma.dtype),
        lb=jnp.asarray(new_lb).astype(state.lb.dtype),
        count=count_inc,
    )

  return GradientTransformationExtraArgs(init_fn, update_fn)
