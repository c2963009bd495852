"""AdaHessian as a chain of primitives."""

from __future__ import annotations

from typing import Any, Callable

import jax

from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.adahessian import scale_by_adahessian
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "adahessian",
]


def adahessian(
    learning_rate: ScalarOrSchedule = 0.15,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-4,
    weight_decay: ScalarOrSchedule = 0.0,
    hessian_power: Any = 1.0,
    update_interval: int = 1,
    block_size: int = 1,
    random_seed: jax.Array | None = None,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformationExtraArgs:
  r"""AdaHessian: Adam with a spatially averaged Hutchinson Hessian diagonal.

  Builds `chain(scale_by_adahessian(b1, b2, eps, hessian_power, update_interval, block_size,
  random_seed), add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))`
  (decoupled weight decay, as the authors' code). See `transforms.scale_by_adahessian` for the
  update. `update` needs `params` and `value_fn=lambda p: loss(p, batch)`. With
  :math:`u_t` that update, :math:`\eta_t` = ``learning_rate`` and :math:`\lambda` =
  ``weight_decay`` (Yao et al., Algorithm 1):

  .. math::

    \theta_{t+1} = \theta_t - \eta_t (u_t + \lambda \theta_t)

  Args:
    learning_rate: a float, scalar array or schedule (the paper's default 0.15).
    b1, b2, eps, hessian_power, update_interval, block_size, random_seed: see
      `scale_by_adahessian`.
    weight_decay: the decoupled weight decay rate.
    mask: a tree of bools (or a function of params returning one) selecting decayed leaves.

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda p: jnp.sum((p - 1.0) ** 2)
    >>> tx = gradtx.adahessian(0.5); p = jnp.zeros(2); s = tx.init(p)
    >>> u, s = tx.update(jax.grad(f)(p), s, p, value_fn=f); (p + u).round(3)
    Array([0.5, 0.5], dtype=float32)

  References:
    Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney, `ADAHESSIAN: An Adaptive Second Order
    Optimizer for Machine Learning <https://arxiv.org/abs/2006.00719>`_, AAAI 2021.
  """
  return chain(
      scale_by_adahessian(b1=b1, b2=b2, eps=eps, hessian_power=hessian_power,
                          update_interval=update_interval, block_size=block_size,
                          random_seed=random_seed),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )
