"""Per-coordinate adaptive step sizes as chains of primitives: adagrad, adadelta, rmsprop."""

from __future__ import annotations

from typing import Any, Callable

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule, identity
from gradtx.combine import chain
from gradtx.transforms.adaptive import (
  scale_by_adadelta,
  scale_by_rms,
  scale_by_rss,
  scale_by_stddev,
)
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.momentum import trace
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "adadelta",
    "adagrad",
    "rmsprop",
]


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adagrad: per-coordinate steps scaled by the root of the summed squared gradients.

  Builds `chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(lr))`
  Follows optax: `eps` is added inside the square root (the Theano chapter adds 1e-6 inside too;
  Ruder writes it outside).

  .. math::
      G_t = G_{t-1} + g_t^2, \qquad
      \theta_t = \theta_{t-1} - \eta_t \frac{g_t}{\sqrt{G_t + \epsilon}}

  with :math:`\eta_t` = `learning_rate`, :math:`G_0` = `initial_accumulator_value` and
  :math:`\epsilon` = `eps` (a zero :math:`G_t` gives a zero step, see `scale_by_rss`).

  Args:
    learning_rate: a float, scalar array or schedule.
    initial_accumulator_value: starting value of the sum, >= 0.
    eps: >= 0.
    nu_dtype: dtype of the sum of squares (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adagrad(0.1)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 4)
    -0.0953

  References:
    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 2011.
  """
  return chain(
      scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps,
                   nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def adadelta(
    learning_rate: ScalarOrSchedule | None = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn | Callable | None = None,
    *,
    mask: MaskOrFn | Callable | None = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adadelta (Zeiler): steps in the units of the parameters, no learning rate needed.

  Builds `chain(add_decayed_weights(weight_decay, weight_decay_mask), scale_by_adadelta(rho,
  eps), scale_by_learning_rate(learning_rate))`:

  .. math::
      \tilde g_t = g_t + \lambda \theta_{t-1}, \quad
      E[g^2]_t = \rho E[g^2]_{t-1} + (1 - \rho) \tilde g_t^2, \quad
      \Delta_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}} \tilde g_t,

      E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1 - \rho) \Delta_t^2, \qquad
      \theta_t = \theta_{t-1} - \eta_t \Delta_t

  with :math:`\eta_t` = `learning_rate`, :math:`\rho` = `rho`, :math:`\epsilon` = `eps` and
  :math:`\lambda` = `weight_decay` (on the masked leaves); optax's arithmetic order is in
  `scale_by_adadelta`.

  Differences from optax: optax 0.2.8's `adadelta()` defaults to `learning_rate=None`, which skips
  the sign flip, so its default *ascends* the loss. gradtx's default `learning_rate=1.0` descends,
  as Zeiler's Adadelta does, and equals optax's `adadelta(1.0)`; `adadelta(None)` (optax code that
  passes its default explicitly) is the same unit step, also descending (see
  `scale_by_learning_rate`).

  Args:
    learning_rate: a float, scalar array or schedule (1.0 is Zeiler's method); None means 1.0.
    rho: decay of both running averages, in [0, 1].
    eps: >= 0, inside both square roots.
    weight_decay: coupled L2 weight decay (added to the gradient), float or schedule.
    weight_decay_mask: which params are decayed (pytree of bools or a callable).
    mask: the same as `weight_decay_mask`, under the name every other gradtx optimizer uses
      (give one of the two). Not in optax.
    nu_dtype: dtype of both accumulators (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adadelta()
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012. https://arxiv.org/abs/1212.5701
  """
  if mask is not None and weight_decay_mask is not None:
    raise ValueError("gradtx.adadelta: give the decay mask as mask or as weight_decay_mask "
                     "(optax's name), not both.")
  return chain(
      add_decayed_weights(weight_decay, mask=weight_decay_mask if mask is None else mask),
      scale_by_adadelta(rho=rho, eps=eps, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""RMSprop (Tieleman & Hinton), optionally centered and with momentum.

  Builds `chain(scale_by_rms(...)` or `scale_by_stddev(...)` when `centered`, then
  `scale_by_learning_rate(learning_rate)`, then `trace(momentum, nesterov)` if `momentum` is
  given — the same order as optax (momentum over the lr-scaled steps). Follows optax's default
  `eps_in_sqrt=True`, as the Theano chapter does (`sqrt(acc + 1e-6)`):

  .. math::
      \nu_t = \rho \nu_{t-1} + (1 - \rho) g_t^2, \quad
      \mu_t = \rho \mu_{t-1} + (1 - \rho) g_t, \quad
      s_t = \eta_t \frac{g_t}{\sqrt{\nu_t - c\,\mu_t^2 + \epsilon}}, \quad
      b_t = \gamma b_{t-1} + s_t, \qquad \theta_t = \theta_{t-1} - b_t

  with :math:`\eta_t` = `learning_rate`, :math:`\rho` = `decay`, :math:`\epsilon` = `eps`
  (outside the root when `eps_in_sqrt=False`), :math:`\nu_0` = `initial_scale`, :math:`c = 1`
  if `centered` (else 0), :math:`\gamma` = `momentum` (:math:`b_t = s_t` when None); `nesterov`
  uses :math:`\gamma b_t + s_t`, and `bias_correction` divides :math:`\nu_t, \mu_t` by
  :math:`1 - \rho^t`.

  Args:
    learning_rate: a float, scalar array or schedule.
    decay: decay of the squared-gradient average, in [0, 1].
    eps: >= 0.
    initial_scale: initial second moment, >= 0.
    eps_in_sqrt: add `eps` inside (True) or outside the square root.
    centered: divide by the standard deviation instead of the root mean square.
    momentum: momentum in [0, 1] (float, array or schedule) or None.
    nesterov: Nesterov momentum (needs `momentum`).
    bias_correction: debias the moving averages.
    mu_dtype: dtype of the first-moment buffers: the centered mean and the momentum trace
      (default: the params'). Not in optax.
    nu_dtype: dtype of the squared-gradient average (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.rmsprop(0.01)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 4)
    -0.0316

  References:
    Tieleman & Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning,
    2012. Graves, "Generating Sequences With Recurrent Neural Networks", 2013 (centered).
    https://arxiv.org/abs/1308.0850
  """
  _checks.check_bool("rmsprop", "centered", centered)
  _checks.check_scalar("rmsprop", "momentum", momentum, low=0.0, high=1.0, schedule=True,
                       optional=True)
  if momentum is None and nesterov:
    raise ValueError("gradtx.rmsprop: nesterov=True needs a momentum, got momentum=None.")
  if centered:
    scaler = scale_by_stddev(decay=decay, eps=eps, initial_scale=initial_scale,
                             eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction,
                             mu_dtype=mu_dtype, nu_dtype=nu_dtype)
  else:
    _checks.check_dtype("rmsprop", "mu_dtype", mu_dtype)
    scaler = scale_by_rms(decay=decay, eps=eps, initial_scale=initial_scale,
                          eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction,
                          nu_dtype=nu_dtype)
  return chain(
      scaler,
      scale_by_learning_rate(learning_rate),
      identity() if momentum is None else trace(decay=momentum, nesterov=nesterov,
                                                accumulator_dtype=mu_dtype),
  )
