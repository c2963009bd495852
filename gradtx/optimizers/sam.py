"""Adaptive SAM: `contrib.sam` with ASAM's scale-invariant ascent step."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.contrib.sam import sam
from gradtx.transforms.sam import scale_by_asam
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "asam",
]


def asam(
    optimizer: GradientTransformation,
    rho: ScalarOrSchedule = 0.5,
    eta: Any = 0.01,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> GradientTransformationExtraArgs:
  r"""ASAM (adaptive SAM): SAM whose perturbation is scaled by the weights' magnitudes.

  Builds `contrib.sam(optimizer, chain(scale_by_asam(eta), scale_by_learning_rate(rho)),
  sync_period, reset_state, opaque_mode, batch_axis_name)`: every `sync_period` calls, the
  ascent :math:`w + \rho T_w^2 g / \|T_w g\|` then the outer step with the gradient there
  (see `transforms.scale_by_asam` and `contrib.sam`; `update` needs `params`).

  Args:
    optimizer: the outer optimizer (for example `gradtx.sgd(0.1, momentum=0.9)`).
    rho: :math:`\rho > 0`, the radius of the adaptive perturbation (a float or schedule).
    eta: :math:`\eta \ge 0`, see `scale_by_asam`.
    sync_period, reset_state, opaque_mode, batch_axis_name: see `contrib.sam`.

  Returns:
    A `GradientTransformationExtraArgs` with state `contrib.SAMState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.asam(gradtx.sgd(0.1), rho=0.5, eta=0.0)
    >>> w = jnp.asarray([1.0, 2.0]); s = tx.init(w)
    >>> u, s = tx.update(jnp.ones(2), s, w); [round(x, 3) for x in (w + u).tolist()]  # ascent
    [1.224, 2.894]

  References:
    Kwon, Kim, Park & Choi, `ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
    Learning of Deep Neural Networks <https://arxiv.org/abs/2102.11600>`_, ICML 2021.
  """
  _checks.check_scalar("asam", "rho", rho, low=0.0, low_open=True, schedule=True)
  return sam(optimizer, chain(scale_by_asam(eta), scale_by_learning_rate(rho)),
             sync_period=sync_period, reset_state=reset_state, opaque_mode=opaque_mode,
             batch_axis_name=batch_axis_name)
