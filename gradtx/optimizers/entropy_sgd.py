"""Entropy-SGD as a chain of primitives."""

from __future__ import annotations

from typing import Any

import jax

from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.entropy_sgd import scale_by_entropy_sgd
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "entropy_sgd",
]


def entropy_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    gamma: Any = 0.03,
    scoping: Any = 1e-3,
    inner_steps: int = 20,
    inner_learning_rate: Any = 0.1,
    noise: Any = 1e-4,
    alpha: Any = 0.75,
    key: jax.Array | None = None,
) -> GradientTransformationExtraArgs:
  r"""Entropy-SGD: gradient descent on the local entropy, estimated by an SGLD inner loop.

  Builds `chain(scale_by_entropy_sgd(gamma, scoping, inner_steps, inner_learning_rate, noise,
  alpha, key), scale_by_learning_rate(learning_rate))`: :math:`x \leftarrow x - \eta \gamma_t
  (x - \mu)` (Algorithm 1; see `transforms.scale_by_entropy_sgd`). `update` needs `params` and
  `grad_fn=` (params -> gradient) or `value_fn=` (params -> loss).

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.
    gamma, scoping, inner_steps, inner_learning_rate, noise, alpha, key: see
      `scale_by_entropy_sgd`.

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda p: jnp.sum(p ** 2)
    >>> tx = gradtx.entropy_sgd(1.0, inner_steps=5); p = jnp.ones(2); s = tx.init(p)
    >>> u, s = tx.update(jax.grad(f)(p), s, p, value_fn=f)
    >>> bool(jnp.all(p + u < p))
    True

  References:
    Chaudhari, Choromanska, Soatto, LeCun, Baldassi, Borgs, Chayes, Sagun & Zecchina,
    `Entropy-SGD: Biasing Gradient Descent Into Wide Valleys
    <https://arxiv.org/abs/1611.01838>`_, ICLR 2017.
  """
  return chain(
      scale_by_entropy_sgd(gamma=gamma, scoping=scoping, inner_steps=inner_steps,
                           inner_learning_rate=inner_learning_rate, noise=noise, alpha=alpha,
                           key=key),
      scale_by_learning_rate(learning_rate),
  )
