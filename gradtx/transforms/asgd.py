"""Averaged SGD (Polyak-Juditsky) with torch.optim.ASGD's step-size decay and averaging start."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.numerics import safe_increment

__all__ = [
    "AsgdAveragingState",
    "ScaleByAsgdState",
    "asgd_averaged_params",
    "asgd_averaging",
    "scale_by_asgd",
]


class ScaleByAsgdState(NamedTuple):
  """State of `scale_by_asgd`: the step count that drives the step-size decay.

  Attributes:
    count: int32 scalar, the step count.
  """

  count: jax.Array  # int32 scalar


def scale_by_asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
) -> GradientTransformation:
  r"""ASGD's step: the decaying step size times the gradient plus the :math:`\lambda` decay term.

  .. math::
      \eta_t = \frac{\eta}{(1 + \lambda \eta (t - 1))^{\alpha}}, \qquad
      u_t = \eta_t\,(g_t + \lambda \theta_{t-1})

  for the 1-based step :math:`t`, with :math:`\eta` = `learning_rate`, :math:`\lambda` = `lambd`,
  :math:`\alpha` = `alpha` (torch.optim.ASGD's `eta` and decay term). The output is a step to
  subtract: follow it with `scale(-1.0)`, as `asgd` does.

  Args:
    learning_rate: :math:`\eta` > 0, a float, scalar array or schedule.
    lambd: the decay term :math:`\lambda` >= 0.
    alpha: the power :math:`\alpha` >= 0 of the step-size decay.

  Returns:
    A `GradientTransformation` with state `ScaleByAsgdState(count)`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_asgd(0.1, lambd=0.5)
    >>> tx.update(jnp.ones(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()
    [0.15000000596046448]

  References:
    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
    and Optimization 30(4), 1992.
    Bottou, "Large-Scale Machine Learning with Stochastic Gradient Descent", COMPSTAT 2010.
  """
  fn = "scale_by_asgd"
  _checks.check_scalar(fn, "learning_rate", learning_rate, low=0.0, schedule=True)
  _checks.check_scalar(fn, "lambd", lambd, low=0.0)
  _checks.check_scalar(fn, "alpha", alpha, low=0.0)

  def init_fn(params):
    del params
    return ScaleByAsgdState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    lr = _checks.resolve(learning_rate, state.count, fn=fn, name="learning_rate")
    eta = lr / ((1 + lambd * lr * state.count) ** alpha)  # eta_t = eta / (1 + lambd eta (t-1))^alpha
    out = jax.tree.map(  # u_t = eta_t (g_t + lambd theta)
        lambda g, p: None if g is None else (
            _checks.as_dtype(eta, g) * (g + _checks.as_dtype(lambd, g) * p)).astype(g.dtype),
        updates, params, is_leaf=is_none)
    return out, ScaleByAsgdState(count=safe_increment(state.count))

  return GradientTransformation(init_fn, update_fn)


class AsgdAveragingState(NamedTuple):
  r"""State of `asgd_averaging`: the step count and the averaged params `ax` (torch's name).

  Attributes:
    count: int32 scalar, the step count.
    ax: :math:`\bar\theta_t`, the averaged params.
  """

  count: jax.Array  # int32 scalar
  ax: Any


def asgd_averaging(t0: Any = 1e6, accumulator_dtype: Any = None) -> GradientTransformation:
  r"""ASGD's average of the iterates, started after step `t0` (torch.optim.ASGD's `ax`).

  The updates pass through unchanged; the state keeps the average of the params the step
  produces, :math:`\theta_t = \theta_{t-1} + u_t`. Put it last in the chain and read the average
  with `asgd_averaged_params(opt_state)`.

  .. math::
      \mu_t = \frac{1}{\max(1, t - 1 - t_0)}, \qquad
      \bar\theta_t = \begin{cases} \theta_t & \mu_t = 1 \\
      \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1}) & \text{otherwise} \end{cases}

  for the 1-based step :math:`t`: the last iterate until :math:`t_0 + 2`, then the running mean
  of the iterates from step :math:`t_0 + 2` on. :math:`\bar\theta_0 = 0` (as torch).

  Args:
    t0: the step after which averaging starts, >= 0 (a float, as torch's).
    accumulator_dtype: dtype of the average (default: the params' dtype).

  Returns:
    A `GradientTransformation` with state `AsgdAveragingState(count, ax)`; `update` needs
    `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(-1.0), gradtx.asgd_averaging(t0=0))
    >>> params, state = jnp.zeros(1), tx.init(jnp.zeros(1))
    >>> for _ in range(4):  # params -1, -2, -3, -4; the mean from step t0 + 2 = 2 on
    ...   u, state = tx.update(jnp.ones(1), state, params); params = params + u
    >>> gradtx.asgd_averaged_params(state).tolist()
    [-3.0]

  References:
    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
    and Optimization 30(4), 1992.
  """
  fn = "asgd_averaging"
  _checks.check_scalar(fn, "t0", t0, low=0.0)
  accumulator_dtype = _checks.check_dtype(fn, "accumulator_dtype", accumulator_dtype)

  def init_fn(params):
    return AsgdAveragingState(count=jnp.zeros([], jnp.int32),
                              ax=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=accumulator_dtype),
                                              params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "state.ax", state.ax)
    _checks.check_same_structure(fn, "params", params, "state.ax", state.ax)
    t = state.count.astype(jnp.float32)  # t - 1 for the 1-based step t
    mu = 1.0 / jnp.maximum(1.0, t - t0)  # mu_t = 1 / max(1, t - 1 - t0)

    def average(u, p, ax):
      theta = p if u is None else (p + u).astype(p.dtype)  # theta_t, as apply_updates
      theta = theta.astype(ax.dtype)
      return jnp.where(mu == 1, theta, ax + (theta - ax) * mu.astype(ax.dtype))

    ax = jax.tree.map(average, updates, params, state.ax, is_leaf=is_none)
    return updates, AsgdAveragingState(count=safe_increment(state.count), ax=ax)

  return GradientTransformation(init_fn, update_fn)


def asgd_averaged_params(opt_state: Any) -> Any:
  r"""Returns ASGD's averaged params (torch's `ax`) from an optimizer state.

  The state (a chain's tuple, `inject_hyperparams`', ...) must hold one `asgd_averaging` state;
  its average is, for the 1-based step :math:`t` and :math:`t_0` = `asgd_averaging`'s `t0`,

  .. math::
      \mu_t = \frac{1}{\max(1, t - 1 - t_0)}, \qquad
      \bar\theta_t = \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1}).

  Args:
    opt_state: the optimizer state, or a part of it holding exactly one `AsgdAveragingState`.

  Returns:
    The averaged params, with the params' structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.asgd_averaged_params(gradtx.asgd().init({'w': jnp.ones(2)}))['w'].tolist()
    [0.0, 0.0]

  References:
    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
    Optim. 30(4), 1992; `torch.optim.ASGD`'s `ax`.
  """
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, AsgdAveragingState))
           if isinstance(s, AsgdAveragingState)]
  if len(found) != 1:
    raise ValueError(f"gradtx.asgd_averaged_params: opt_state must hold exactly one "
                     f"AsgdAveragingState (made by gradtx.asgd or asgd_averaging), found "
                     f"{len(found)}.")
  return found[0].ax
