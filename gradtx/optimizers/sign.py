"""Sign-based optimizers as chains of primitives: powersign, addsign (Bello et al.), lion,
sign_sgd, signum."""

from __future__ import annotations

import math
from typing import Any, Callable

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.lion import scale_by_lion
from gradtx.transforms.momentum import ema
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.transforms.sign import scale_by_addsign, scale_by_powersign, scale_by_sign

__all__ = [
    "addsign",
    "lion",
    "powersign",
    "sign_sgd",
    "signum",
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


def lion(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: MaskOrFn | Callable | None = None,
) -> GradientTransformation:
  r"""The Lion optimizer (EvoLved Sign Momentum), with decoupled weight decay.

  Builds `chain(scale_by_lion(b1, b2, mu_dtype), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`:
  :math:`\theta \leftarrow \theta - \eta_t(\operatorname{sign}(\beta_1 m + (1 - \beta_1) g)
  + \lambda \theta)` (see `scale_by_lion`). Its updates have unit magnitude per coordinate: use
  a learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger.

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.
    b1: the momentum's weight in the sign, in [0, 1].
    b2: the momentum decay, in [0, 1].
    mu_dtype: dtype of the momentum (default: the params' dtype).
    weight_decay: :math:`\lambda` >= 0, a float, array or schedule (multiplied by the learning
      rate, as optax and PyTorch).
    mask: which params are decayed (a pytree of bools or a callable of the params).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.lion(0.1, weight_decay=0.0)
    >>> tx.update(jnp.asarray([2.0, -1.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))[0].tolist()
    [-0.10000000149011612, 0.10000000149011612]

  References:
    Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
    https://arxiv.org/abs/2302.06675
  """
  return chain(
      scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
  r"""signSGD: a step of the learning rate against the sign of each gradient coordinate.

  Builds `chain(scale_by_sign(), scale_by_learning_rate(learning_rate))`:
  :math:`\theta \leftarrow \theta - \eta_t \operatorname{sign}(g_t)`.

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.sign_sgd(0.5)
    >>> tx.update(jnp.asarray([3.0, -0.1]), tx.init(jnp.zeros(2)))[0].tolist()
    [-0.5, 0.5]

  References:
    Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed Optimisation for
    Non-Convex Problems", ICML 2018. https://arxiv.org/abs/1802.04434
  """
  return chain(
      scale_by_sign(),
      scale_by_learning_rate(learning_rate),
  )


def signum(
    learning_rate: ScalarOrSchedule,
    beta: float = 0.9,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
  r"""Signum: signSGD on an exponential moving average of the gradient (sign momentum).

  Builds `chain(ema(beta, debias=False, accumulator_dtype), scale_by_sign(),
  scale_by_learning_rate(learning_rate))`: :math:`m_t = \beta m_{t-1} + (1 - \beta) g_t`,
  :math:`\theta \leftarrow \theta - \eta_t \operatorname{sign}(m_t)` (no debiasing: the sign
  does not see it).

  Args:
    learning_rate: :math:`\eta`, a float, scalar array or schedule.
    beta: the moving average's decay :math:`\beta` in [0, 1]; a float or scalar array (no
      schedule, as optax).
    accumulator_dtype: dtype of the moving average (default: the params' dtype).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.signum(0.5)
    >>> tx.update(jnp.asarray([3.0, -0.1]), tx.init(jnp.zeros(2)))[0].tolist()
    [-0.5, 0.5]

  References:
    Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed Optimisation for
    Non-Convex Problems", ICML 2018. https://arxiv.org/abs/1802.04434
    Zhao et al., "Deconstructing What Makes a Good Optimizer for Language Models", 2024.
    https://arxiv.org/abs/2407.07972
  """
  _checks.check_scalar("signum", "beta", beta, low=0.0, high=1.0)  # ema's decay
  return chain(
      ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
      scale_by_sign(),
      scale_by_learning_rate(learning_rate),
  )
