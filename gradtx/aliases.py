"""Optimizers as chains of primitives. Aliases contain no math: each is one `chain(...)`.

The update equations live in the primitives' docstrings; each alias names the chain it builds.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from gradtx import _checks
from gradtx.adaptive import (
    scale_by_adadelta,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_nadam,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gradtx.base import GradientTransformation, ScalarOrSchedule, identity
from gradtx.combine import chain
from gradtx.decay import add_decayed_weights
from gradtx.momentum import trace
from gradtx.noise import add_noise
from gradtx.scaling import scale, scale_by_learning_rate
from gradtx.sign import scale_by_addsign, scale_by_powersign

__all__ = [
    "adadelta", "adagrad", "adam", "adamax", "adamaxw", "adamw", "addsign", "amsgrad", "nadam",
    "nadamw", "noisy_sgd", "powersign", "rmsprop", "sgd", "sgdw",
]

MaskOrFn = Any  # a pytree of bools like the params, or a callable params -> such a pytree


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
  r"""Stochastic gradient descent, with optional heavy-ball or Nesterov momentum.

  Builds `chain(trace(momentum, nesterov), scale_by_learning_rate(learning_rate))`, or just the
  learning-rate scaling when `momentum` is None: :math:`\theta_{t+1} = \theta_t - \eta_t v_t`
  with :math:`v_t = g_t + \mu v_{t-1}` (see `trace` for the equations).

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.
    momentum: :math:`\mu` in [0, 1], a float, array or schedule (e.g. a slowly increasing
      momentum schedule); None for plain SGD.
    nesterov: Nesterov's accelerated gradient (needs `momentum`).
    accumulator_dtype: dtype of the momentum buffer.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.sgd(0.1, momentum=0.9)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()
    [-0.10000000149011612]

  References:
    Robbins & Monro, "A Stochastic Approximation Method", Ann. Math. Statist., 1951.
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013.
  """
  _checks.check_scalar("sgd", "momentum", momentum, low=0.0, high=1.0, schedule=True,
                       optional=True)
  if momentum is None:
    if nesterov:
      raise ValueError("gradtx.sgd: nesterov=True needs a momentum, got momentum=None.")
    return chain(identity(), scale_by_learning_rate(learning_rate))
  return chain(
      trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
      scale_by_learning_rate(learning_rate),
  )


def sgdw(
    learning_rate: ScalarOrSchedule,
    momentum: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule = 1e-4,
    nesterov: bool = False,
    mask: MaskOrFn | Callable | None = None,
    *,
    schedule_multiplier: ScalarOrSchedule | None = None,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
  r"""SGD with momentum and decoupled weight decay (SGDW, Loshchilov & Hutter).

  By default (optax's form) builds `chain(trace(momentum, nesterov), add_decayed_weights(
  weight_decay, mask), scale_by_learning_rate(learning_rate))`: the decay bypasses the momentum
  buffer and is multiplied by the full learning rate; the buffer holds raw gradients, scaled by
  the current rate. `sgdw(lr, m, weight_decay=0)` equals `sgd(lr, m)`.

  With `schedule_multiplier` :math:`\eta_t` it is the paper's Algorithm 1, with base rate
  :math:`\alpha` = `learning_rate`: :math:`m_t = \gamma m_{t-1} + \eta_t \alpha g_t`,
  :math:`\theta_t = \theta_{t-1} - m_t - \eta_t \lambda \theta_{t-1}`, built as
  `chain(scale_by_learning_rate(learning_rate, flip_sign=False),
  scale_by_learning_rate(schedule_multiplier, flip_sign=False), trace(momentum, nesterov),
  add_decayed_weights(weight_decay, mask, schedule_multiplier=schedule_multiplier), scale(-1))`.
  SGDWR is `schedule_multiplier=warm_restarts_schedule(1.0, T0, T_mult)` (see `gradtx.decay`).

  Args:
    learning_rate: :math:`\alpha` (:math:`\eta` in optax's form), a float, array or schedule.
    momentum: :math:`\gamma` in [0, 1], float, array or schedule.
    weight_decay: :math:`\lambda` >= 0, float, array or schedule (e.g.
      `normalized_weight_decay_schedule`).
    nesterov: Nesterov momentum.
    mask: which params are decayed (pytree of bools or a callable of the params).
    schedule_multiplier: :math:`\eta_t` >= 0, float, array or schedule; None for optax's form.
    accumulator_dtype: dtype of the momentum buffer, as `sgd`'s.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.sgdw(0.1, weight_decay=0.5, schedule_multiplier=0.5)
    >>> tx.update(jnp.ones(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()
    [-0.30000001192092896]

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 1.
    https://arxiv.org/abs/1711.05101
  """
  _checks.check_scalar("sgdw", "momentum", momentum, low=0.0, high=1.0, schedule=True)
  _checks.check_scalar("sgdw", "schedule_multiplier", schedule_multiplier, low=0.0,
                       schedule=True, optional=True)
  if schedule_multiplier is None:
    return chain(
        trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
  return chain(
      scale_by_learning_rate(learning_rate, flip_sign=False),
      scale_by_learning_rate(schedule_multiplier, flip_sign=False),
      trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
      add_decayed_weights(weight_decay, mask, schedule_multiplier=schedule_multiplier),
      scale(-1.0),
  )


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: float = 0.01,
    gamma: float = 0.55,
    key: Any = 0,
) -> GradientTransformation:
  r"""SGD with annealed Gaussian gradient noise (Neelakantan et al.).

  Builds `chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))`: the gradient
  gets noise of variance :math:`\eta / (1 + t)^\gamma` before the step (see `add_noise`).

  Args:
    learning_rate: a float, scalar array or schedule.
    eta: initial noise variance, >= 0.
    gamma: annealing exponent, >= 0 (the paper uses 0.55).
    key: an int seed or a `jax.random` key.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.noisy_sgd(0.1, eta=0.0)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()
    [-0.10000000149011612]

  References:
    Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach & Martens, "Adding Gradient Noise Improves
    Learning for Very Deep Networks", 2015. https://arxiv.org/abs/1511.06807
  """
  return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
) -> GradientTransformation:
  r"""Adagrad: per-coordinate steps scaled by the root of the summed squared gradients.

  Builds `chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(lr))`
  (equation in `scale_by_rss`). Follows optax: `eps` is added inside the square root (the Theano
  chapter adds 1e-6 inside too; Ruder writes it outside).

  Args:
    learning_rate: a float, scalar array or schedule.
    initial_accumulator_value: starting value of the sum, >= 0.
    eps: >= 0.

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
      scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
      scale_by_learning_rate(learning_rate),
  )


def adadelta(
    learning_rate: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn | Callable | None = None,
) -> GradientTransformation:
  r"""Adadelta (Zeiler): steps in the units of the parameters, no learning rate needed.

  Builds `chain(add_decayed_weights(weight_decay, weight_decay_mask), scale_by_adadelta(rho,
  eps), scale_by_learning_rate(learning_rate))` (equation in `scale_by_adadelta`).

  Differences from optax: optax 0.2.8's `adadelta()` defaults to `learning_rate=None`, which skips
  the sign flip, so its default *ascends* the loss. gradtx's default `learning_rate=1.0` descends,
  as Zeiler's Adadelta does, and equals optax's `adadelta(1.0)`.

  Args:
    learning_rate: a float, scalar array or schedule (1.0 is Zeiler's method).
    rho: decay of both running averages, in [0, 1].
    eps: >= 0, inside both square roots.
    weight_decay: coupled L2 weight decay (added to the gradient), float or schedule.
    weight_decay_mask: which params are decayed.

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
  return chain(
      add_decayed_weights(weight_decay, mask=weight_decay_mask),
      scale_by_adadelta(rho=rho, eps=eps),
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
) -> GradientTransformation:
  r"""RMSprop (Tieleman & Hinton), optionally centered and with momentum.

  Builds `chain(scale_by_rms(...)` or `scale_by_stddev(...)` when `centered`, then
  `scale_by_learning_rate(learning_rate)`, then `trace(momentum, nesterov)` if `momentum` is
  given — the same order as optax (momentum over the lr-scaled steps). Equations in
  `scale_by_rms` / `scale_by_stddev`. Follows optax's default `eps_in_sqrt=True`, as the Theano
  chapter does (`sqrt(acc + 1e-6)`).

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
  scaler = scale_by_stddev if centered else scale_by_rms
  return chain(
      scaler(decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
             bias_correction=bias_correction),
      scale_by_learning_rate(learning_rate),
      identity() if momentum is None else trace(decay=momentum, nesterov=nesterov),
  )


def adam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adam (Kingma & Ba).

  Builds `chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
  nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate))`; the equations, the epsilon
  placement (optax's, outside the root) and the `b1`-schedule form are in `scale_by_adam`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1: first-moment decay in [0, 1); a float, array or schedule (the Theano chapter's b1 decay).
    b2: second-moment decay in [0, 1).
    eps: >= 0, added outside the square root.
    eps_root: >= 0, added inside the square root.
    mu_dtype: dtype of the first moment (e.g. float32 for bfloat16 params).
    nesterov: Nesterov momentum (Nadam in optax's form).
    nu_dtype: dtype of the second moment (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adam(1e-3)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 6)
    -0.001

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    https://arxiv.org/abs/1412.6980
  """
  return chain(
      scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                    nesterov=nesterov, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn | Callable | None = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    schedule_multiplier: ScalarOrSchedule | None = None,
) -> GradientTransformation:
  r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter).

  By default (optax's form) builds `chain(scale_by_adam(...), add_decayed_weights(weight_decay,
  mask), scale_by_learning_rate(learning_rate))`, i.e.
  :math:`\theta_t = \theta_{t-1} - \eta_t (\hat m_t / (\sqrt{\hat v_t} + \epsilon) + \lambda
  \theta_{t-1})`: the decay is not divided by the adaptive denominator, unlike Adam with L2, and
  is multiplied by the full learning rate.

  With `schedule_multiplier` :math:`\eta_t` it is the paper's Algorithm 2, with base rate
  :math:`\alpha` = `learning_rate`: :math:`\theta_t = \theta_{t-1} - \eta_t (\alpha \hat m_t /
  (\sqrt{\hat v_t} + \epsilon) + \lambda \theta_{t-1})`, built as `chain(scale_by_adam(...),
  scale_by_learning_rate(learning_rate, flip_sign=False), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(schedule_multiplier))`. AdamWR is `schedule_multiplier=
  warm_restarts_schedule(1.0, T0, T_mult)` with `weight_decay=normalized_weight_decay_schedule(
  ..., T0, T_mult)`; the recipe is in `gradtx.decay`'s module docstring.

  Args:
    learning_rate: :math:`\alpha` (:math:`\eta` in optax's form), a float, array or schedule.
    b1, b2, eps, eps_root, mu_dtype, nu_dtype, nesterov: as `adam`.
    weight_decay: :math:`\lambda` >= 0, float, array or schedule.
    mask: which params are decayed (pytree of bools or callable), e.g. not biases.
    schedule_multiplier: :math:`\eta_t` >= 0, float, array or schedule; None for optax's form.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adamw(0.1, weight_decay=0.5, schedule_multiplier=0.5)
    >>> tx.update(jnp.zeros(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()
    [-0.25]

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2.
    https://arxiv.org/abs/1711.05101
  """
  _checks.check_scalar("adamw", "schedule_multiplier", schedule_multiplier, low=0.0,
                       schedule=True, optional=True)
  adam_scaling = scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov, nu_dtype=nu_dtype)
  if schedule_multiplier is None:
    return chain(
        adam_scaling,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
  return chain(
      adam_scaling,
      scale_by_learning_rate(learning_rate, flip_sign=False),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(schedule_multiplier),
  )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    momentum_decay: float | None = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Nadam: Adam with Nesterov momentum (Dozat).

  With `momentum_decay=None` (default) this is optax's `nadam`: `adam(..., nesterov=True)` with a
  constant `b1`. With a float `momentum_decay` (torch and Keras use 0.004) it builds
  `chain(scale_by_nadam(b1, b2, eps, eps_root, mu_dtype, momentum_decay=...),
  scale_by_learning_rate(learning_rate))`: Dozat's momentum warm-up schedule
  :math:`\mu_t = \beta_1 (1 - 0.5 \cdot 0.96^{t \psi})`, as `torch.optim.NAdam`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, eps, eps_root, mu_dtype, nu_dtype: as `adam`.
    momentum_decay: :math:`\psi` >= 0 for Dozat's warm-up, or None for optax's form.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.nadam(1e-3, momentum_decay=0.004)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0] < 0
    True

  References:
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
  """
  if momentum_decay is None:
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True, nu_dtype=nu_dtype)
  if nu_dtype is not None:
    raise ValueError("gradtx.nadam: nu_dtype is only supported with momentum_decay=None.")
  return chain(
      scale_by_nadam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                     momentum_decay=momentum_decay),
      scale_by_learning_rate(learning_rate),
  )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn | Callable | None = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""NadamW: `adamw(..., nesterov=True)` — Nadam with decoupled weight decay, as optax.

  Args:
    learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype: as `adam`.
    weight_decay, mask: as `adamw`.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.nadamw(1e-3)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop; Loshchilov & Hutter,
    "Decoupled Weight Decay Regularization", ICLR 2019. https://arxiv.org/abs/1711.05101
  """
  return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
               nesterov=True, nu_dtype=nu_dtype)


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> GradientTransformation:
  r"""AdaMax: Adam with the infinity norm (Kingma & Ba, Sec. 7.1).

  Builds `chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1: first-moment decay in [0, 1).
    b2: decay of the infinity norm in [0, 1).
    eps: >= 0.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adamax(1e-3)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 6)
    -0.001

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 2.
    https://arxiv.org/abs/1412.6980
  """
  return chain(scale_by_adamax(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn | Callable | None = None,
) -> GradientTransformation:
  r"""AdaMax with decoupled weight decay, as optax's `adamaxw`.

  Builds `chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`.

  Args:
    learning_rate, b1, b2, eps: as `adamax`.
    weight_decay, mask: as `adamw`.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adamaxw(1e-3)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    https://arxiv.org/abs/1711.05101
  """
  return chain(
      scale_by_adamax(b1=b1, b2=b2, eps=eps),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> GradientTransformation:
  r"""AMSGrad (Reddi et al.): Adam with a non-decreasing second moment.

  Builds `chain(scale_by_amsgrad(...), scale_by_learning_rate(learning_rate))`. The defaults are
  optax's (bias-corrected moments); `bias_correction_mu=False, bias_correction_nu=False` is the
  paper's Algorithm 2. Equations in `scale_by_amsgrad`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, eps, eps_root, mu_dtype: as `adam`.
    bias_correction_mu: debias the first moment.
    bias_correction_nu: debias the second moment before the running maximum.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.amsgrad(1e-3)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 6)
    -0.001

  References:
    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
    https://openreview.net/forum?id=ryQu7f-RZ
  """
  return chain(
      scale_by_amsgrad(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                       bias_correction_mu=bias_correction_mu,
                       bias_correction_nu=bias_correction_nu),
      scale_by_learning_rate(learning_rate),
  )


def powersign(
    learning_rate: ScalarOrSchedule,
    alpha: float = math.e,
    beta: float = 0.9,
    decay: Callable | None = None,
) -> GradientTransformation:
  r"""PowerSign (Bello et al.), found by neural optimizer search.

  Builds `chain(scale_by_powersign(alpha, beta, decay), scale_by_learning_rate(learning_rate))`:
  :math:`\theta \leftarrow \theta - \eta\, \alpha^{f(t)\,\mathrm{sign}(g)\,\mathrm{sign}(m)} g`
  (see `scale_by_powersign`).

  Args:
    learning_rate: a float, scalar array or schedule.
    alpha: base > 0 (e by default).
    beta: momentum decay in [0, 1).
    decay: a schedule f(t) in [0, 1] (linear, cosine or restart decay), or None for f = 1.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.powersign(0.1)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 4)
    -0.2718

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  return chain(
      scale_by_powersign(alpha=alpha, beta=beta, decay=decay),
      scale_by_learning_rate(learning_rate),
  )


def addsign(
    learning_rate: ScalarOrSchedule,
    alpha: float = 1.0,
    beta: float = 0.9,
    decay: Callable | None = None,
) -> GradientTransformation:
  r"""AddSign (Bello et al.), found by neural optimizer search.

  Builds `chain(scale_by_addsign(alpha, beta, decay), scale_by_learning_rate(learning_rate))`:
  :math:`\theta \leftarrow \theta - \eta\, (\alpha + f(t)\,\mathrm{sign}(g)\,\mathrm{sign}(m)) g`
  (see `scale_by_addsign`).

  Args:
    learning_rate: a float, scalar array or schedule.
    alpha: offset >= 0 (1 by default).
    beta: momentum decay in [0, 1).
    decay: a schedule f(t) in [0, 1], or None for f = 1.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.addsign(0.1)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 4)
    -0.2

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  return chain(
      scale_by_addsign(alpha=alpha, beta=beta, decay=decay),
      scale_by_learning_rate(learning_rate),
  )
