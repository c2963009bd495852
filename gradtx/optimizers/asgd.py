"""Averaged SGD (torch.optim.ASGD's numerics) as a chain of primitives."""

from __future__ import annotations

from typing import Any, Callable

from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.asgd import asgd_averaging, scale_by_asgd
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale

__all__ = [
    "asgd",
]


def asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
    t0: Any = 1e6,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    mask: MaskOrFn | Callable | None = None,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
  r"""Averaged SGD (Polyak-Juditsky), as `torch.optim.ASGD` (same arguments and defaults).

  Builds `chain(add_decayed_weights(weight_decay, mask), scale_by_asgd(learning_rate, lambd,
  alpha), scale(-1.0), asgd_averaging(t0, accumulator_dtype))`:
  :math:`\theta_t = \theta_{t-1} - \eta_t (g_t + (w + \lambda) \theta_{t-1})` with torch's
  decaying :math:`\eta_t` (see `scale_by_asgd`), and the average of the iterates from step
  :math:`t_0 + 2` on in the state, read with `asgd_averaged_params(opt_state)` (torch's `ax`).
  torch's `weight_decay` is an L2 term added to the gradient (coupled), as here.

  Args:
    learning_rate: :math:`\eta` > 0, a float, scalar array or schedule.
    lambd: the decay term :math:`\lambda` >= 0.
    alpha: the power of the step-size decay, >= 0.
    t0: the step after which averaging starts.
    weight_decay: :math:`w` >= 0, a float, array or schedule (L2, added to the gradient).
    mask: which params get `weight_decay` (a pytree of bools or a callable of the params).
    accumulator_dtype: dtype of the average (default: the params' dtype).

  Returns:
    A `GradientTransformation`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.asgd(0.1, lambd=0.0)
    >>> tx.update(jnp.ones(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()
    [-0.10000000149011612]

  References:
    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
    and Optimization 30(4), 1992.
    Bottou, "Large-Scale Machine Learning with Stochastic Gradient Descent", COMPSTAT 2010.
  """
  return chain(
      add_decayed_weights(weight_decay, mask),
      scale_by_asgd(learning_rate=learning_rate, lambd=lambd, alpha=alpha),
      scale(-1.0),
      asgd_averaging(t0=t0, accumulator_dtype=accumulator_dtype),
  )
