"""K-FAC as a chain: `scale_by_kfac` and the learning rate (or the paper's adaptive step)."""

from __future__ import annotations

from typing import Any

from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.kfac import scale_by_kfac
from gradtx.transforms.scaling import scale, scale_by_learning_rate

__all__ = ["kfac"]


def kfac(
    learning_rate: ScalarOrSchedule | None,
    damping: ScalarOrSchedule = 1e-3,
    curvature_decay: float = 0.95,
    inverse_update_period: int = 5,
    *,
    momentum: ScalarOrSchedule = 0.0,
    layer_specs: Any = None,
    adaptive_damping: bool = False,
    damping_adaptation_interval: int = 5,
    axis_name: str | None = None,
) -> GradientTransformationExtraArgs:
  r"""K-FAC (Martens & Grosse 2015): Kronecker-factored natural gradient, no layer registration.

  `chain(scale_by_kfac(damping, curvature_decay, inverse_update_period, momentum=...),
  scale_by_learning_rate(learning_rate))`; with `learning_rate=None`, the paper's adaptive
  learning rate and momentum (quadratic model, sec. 7): `chain(scale_by_kfac(...,
  adaptive=True), scale(-1))`. See `gradtx.transforms.scale_by_kfac` for the math. `update`
  needs `params` and `value_fn=` (params -> mean loss over the batch; the Fisher is the
  empirical one unless `sample_value_fn=` is given too).

  Args:
    learning_rate: float, array or schedule; None: adaptive (the quadratic-model rule).
    damping: Tikhonov damping :math:`\lambda > 0` (float, array or schedule).
    curvature_decay: the factors' EMA decay in [0, 1).
    inverse_update_period: steps >= 1 between inverse refreshes.
    momentum: momentum >= 0 (ignored when `learning_rate` is None).
    layer_specs: optional pytree like the params of 'dense' | 'conv' | 'diagonal' | None.
    adaptive_damping: the Levenberg-Marquardt damping rule (needs `learning_rate=None`).
    damping_adaptation_interval: steps between damping adaptations.
    axis_name: a mapped axis over which the factors are averaged.

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> p = {'w': jnp.ones((3, 2))}
    >>> loss = lambda p: jnp.mean((jnp.ones((4, 3)) @ p['w'] - 1.0) ** 2)
    >>> tx = gradtx.kfac(learning_rate=0.5, damping=0.1)
    >>> u, _ = tx.update(jax.grad(loss)(p), tx.init(p), p, value_fn=loss)
    >>> bool(loss(gradtx.apply_updates(p, u)) < loss(p))
    True

  References:
    Martens and Grosse, `Optimizing Neural Networks with Kronecker-factored Approximate
    Curvature <https://arxiv.org/abs/1503.05671>`_, ICML 2015.
  """
  adaptive = learning_rate is None
  return chain(
      scale_by_kfac(damping, curvature_decay, inverse_update_period, momentum=momentum,
                    layer_specs=layer_specs, adaptive=adaptive,
                    adaptive_damping=adaptive_damping,
                    damping_adaptation_interval=damping_adaptation_interval,
                    axis_name=axis_name),
      scale(-1.0) if adaptive else scale_by_learning_rate(learning_rate))
