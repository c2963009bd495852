"""Stochastic gradient descent as chains of primitives: sgd (momentum, Nesterov), sgdw, noisy_sgd."""

from __future__ import annotations

from typing import Any, Callable

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule, identity
from gradtx.combine import chain
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.momentum import trace
from gradtx.transforms.noise import add_noise
from gradtx.transforms.scaling import scale, scale_by_learning_rate

__all__ = [
    "noisy_sgd",
    "sgd",
    "sgdw",
]


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
    key: Any = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
  r"""SGD with annealed Gaussian gradient noise (Neelakantan et al.).

  Builds `chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))`: the gradient
  gets noise of variance :math:`\eta / (1 + t)^\gamma` before the step (see `add_noise`).

  Args:
    learning_rate: a float, scalar array or schedule.
    eta: initial noise variance, >= 0.
    gamma: annealing exponent, >= 0 (the paper uses 0.55).
    key: an int seed or a `jax.random` key (`None`, optax's default, means 0).
    seed: optax's older name for an int `key`; give `key` or `seed`, not both.

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
  return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
