"""Optimistic gradient methods as chains of primitives: optimistic gradient descent, optimistic
Adam."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.adaptive import scale_by_adam
from gradtx.transforms.optimistic import scale_by_optimistic_gradient
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
]


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: Any = 1.0,
    beta: Any = 1.0,
) -> GradientTransformation:
  r"""Optimistic gradient descent (OGD): a step against the extrapolated gradient.

  Builds `chain(scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))`:
  :math:`\theta \leftarrow \theta - \eta_t((\alpha + \beta) g_t - \beta g_{t-1})` (see
  `scale_by_optimistic_gradient`).

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.
    alpha: the gradient's coefficient (a float or scalar array).
    beta: the optimism (a float or scalar array).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.optimistic_gradient_descent(0.1)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()
    [-0.10000000149011612]

  References:
    Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of Extra-gradient and Optimistic
    Gradient Methods for Saddle Point Problems: Proximal Point Approach", AISTATS 2020.
    https://arxiv.org/abs/1901.08511
  """
  return chain(
      scale_by_optimistic_gradient(alpha=alpha, beta=beta),
      scale_by_learning_rate(learning_rate),
  )


def optimistic_adam(
    learning_rate: Any,
    optimism: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> GradientTransformation:
  r"""Optimistic Adam (optax's older interface; `optimistic_adam_v2` takes a schedule).

  Builds `chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
  scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism), scale_by_learning_rate(1.0))`:
  with Adam's direction :math:`r_t`, :math:`u_t = -\alpha r_t - o (r_t - r_{t-1})`.

  Args:
    learning_rate: :math:`\alpha`, a float or scalar array (no schedule, as optax).
    optimism: :math:`o`; None for `learning_rate`, as in the paper.
    b1: first-moment decay in [0, 1).
    b2: second-moment decay in [0, 1).
    eps: added to the denominator.
    eps_root: added inside the square root.
    mu_dtype: dtype of the first moment.
    nesterov: use Nadam's Nesterov form of the first moment (optax's default True).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.optimistic_adam(0.1)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 4)
    -0.1474

  References:
    Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism", ICLR 2018.
    https://arxiv.org/abs/1711.00141
  """
  if callable(learning_rate):
    raise ValueError("gradtx.optimistic_adam: learning_rate must be a number or a scalar array, "
                     "not a schedule; optimistic_adam_v2 takes a schedule.")
  _checks.check_scalar("optimistic_adam", "learning_rate", learning_rate)
  _checks.check_scalar("optimistic_adam", "optimism", optimism, optional=True)
  return chain(
      scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                    nesterov=nesterov),
      scale_by_optimistic_gradient(alpha=learning_rate,
                                   beta=learning_rate if optimism is None else optimism),
      scale_by_learning_rate(1.0),  # flips the sign
  )


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> GradientTransformation:
  r"""Optimistic Adam: optimistic gradient descent on Adam's direction.

  Builds `chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
  scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate))`: with
  Adam's direction :math:`r_t`, :math:`u_t = -\eta_t((\alpha + \beta) r_t - \beta r_{t-1})`.

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.
    alpha: the direction's coefficient.
    beta: the optimism.
    b1: first-moment decay in [0, 1).
    b2: second-moment decay in [0, 1).
    eps: added to the denominator.
    eps_root: added inside the square root.
    mu_dtype: dtype of the first moment.
    nesterov: use Nadam's Nesterov form of the first moment (optax's default True).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.optimistic_adam_v2(0.1)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 4)
    -0.1474

  References:
    Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism", ICLR 2018.
    https://arxiv.org/abs/1711.00141
  """
  return chain(
      scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                    nesterov=nesterov),
      scale_by_optimistic_gradient(alpha=alpha, beta=beta),
      scale_by_learning_rate(learning_rate),
  )
