"""SGD with the Polyak step size as a chain of primitives."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.optimizers.sgd import sgd
from gradtx.transforms.polyak import scale_by_polyak

__all__ = [
    "polyak_sgd",
]


def polyak_sgd(
    max_learning_rate: Any = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> GradientTransformation:
  r"""SGD with the stochastic Polyak step size (SPS, or SPS+ with `variant='sps+'`).

  Builds `chain(sgd(scaling), scale_by_polyak(max_learning_rate, f_min, eps, variant))` (optax's
  chain and state): :math:`\theta \leftarrow \theta - s\,\min\{\frac{f(\theta) - f^\star}
  {\|g\|^2 + \epsilon}, \gamma_{\max}\}\, g`, with the norm taken of the `sgd`-scaled gradient
  :math:`s g` as optax does (see `scale_by_polyak`). `update` needs `value=loss`.

  Args:
    max_learning_rate: the cap :math:`\gamma_{\max}` > 0.
    scaling: :math:`s`, a float, scalar array or schedule.
    f_min: a lower bound :math:`f^\star` on the loss.
    eps: :math:`\epsilon` >= 0.
    variant: `'sps'` or `'sps+'`.

  Returns:
    A `GradientTransformation` whose `update` takes `value=` (the loss at `params`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.polyak_sgd()
    >>> g = jnp.asarray([2.0])  # f(x) = x^2 at x = 1: value 1, gradient 2
    >>> tx.update(g, tx.init(g), value=jnp.asarray(1.0))[0].tolist()
    [-0.5]

  References:
    Loizou, Vaswani, Laradji & Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An
    Adaptive Learning Rate for Fast Convergence", AISTATS 2021. https://arxiv.org/abs/2002.10542
  """
  _checks.check_scalar("polyak_sgd", "scaling", scaling, schedule=True)  # sgd's learning_rate
  return chain(
      sgd(learning_rate=scaling),
      scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps,
                      variant=variant),
  )
