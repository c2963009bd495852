"""Rprop as a chain of primitives."""

from __future__ import annotations

from typing import Any

from gradtx.base import GradientTransformation
from gradtx.combine import chain
from gradtx.transforms.rprop import scale_by_rprop
from gradtx.transforms.scaling import scale

__all__ = [
    "rprop",
]


def rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> GradientTransformation:
  r"""Rprop (resilient backpropagation, iRprop-): sign-driven per-coordinate step sizes.

  Builds `chain(scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size,
  max_step_size), scale(-1.0))`: :math:`\theta \leftarrow \theta - \Delta_t \operatorname{sign}(g_t)`
  (see `scale_by_rprop` for the step sizes, and its difference from optax's stale update).
  Meant for full-batch gradients.

  Args:
    learning_rate: the initial step size > 0 (a float or scalar array).
    eta_minus: the shrink factor in (0, 1].
    eta_plus: the growth factor >= 1.
    min_step_size: the smallest step, >= 0.
    max_step_size: the largest step.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.rprop(0.1)
    >>> tx.update(jnp.asarray([2.0, -1.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [-0.10000000149011612, 0.10000000149011612]

  References:
    Riedmiller & Braun, "A direct adaptive method for faster backpropagation learning: the
    RPROP algorithm", IEEE ICNN 1993.
    Igel & Huesken, "Empirical evaluation of the improved Rprop learning algorithms",
    Neurocomputing 50, 2003.
  """
  return chain(
      scale_by_rprop(learning_rate=learning_rate, eta_minus=eta_minus, eta_plus=eta_plus,
                     min_step_size=min_step_size, max_step_size=max_step_size),
      scale(-1.0),
  )
