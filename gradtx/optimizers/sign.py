"""Bello et al.'s sign-based update rules as chains of primitives: powersign, addsign."""

from __future__ import annotations

import math
from typing import Callable

from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.transforms.sign import scale_by_addsign, scale_by_powersign

__all__ = [
    "addsign",
    "powersign",
]


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
