"""Kronecker-factored preconditioners as chains of primitives: shampoo and soap."""

from __future__ import annotations

from typing import Any

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.momentum import trace
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.transforms.shampoo import scale_by_shampoo
from gradtx.transforms.soap import scale_by_soap

__all__ = [
    "shampoo",
    "soap",
]


def shampoo(
    learning_rate: ScalarOrSchedule,
    block_size: int = 128,
    b1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 1.0,
    matrix_epsilon: float = 1e-6,
    graft: str | None = "adagrad",
    graft_b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    preconditioning_compute_steps: int = 1,
    start_preconditioning_step: int = 1,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    weight_dimension_numbers: Any = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
  r"""Shampoo with blocking and grafting, heavy-ball momentum and decoupled weight decay.

  Builds `chain(scale_by_shampoo(block_size, beta2, matrix_epsilon, graft, graft_b2, eps,
  preconditioning_compute_steps, start_preconditioning_step, weight_dimension_numbers),
  trace(b1, nesterov), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`: momentum acts on the grafted direction, as in Anil
  et al. See `scale_by_shampoo` for the preconditioner. Per matrix block, with
  :math:`\eta_t` = ``learning_rate``, :math:`\beta_1` = ``b1`` and :math:`\lambda` =
  ``weight_decay`` (Gupta et al., Algorithm 1, with Anil et al.'s grafting):

  .. math::

    L_t = L_{t-1} + G_t G_t^\top, \quad R_t = R_{t-1} + G_t^\top G_t, \quad
    D_t = \frac{\lVert \mathrm{graft}(G_t) \rVert}{\lVert L_t^{-1/4} G_t R_t^{-1/4} \rVert}
      L_t^{-1/4} G_t R_t^{-1/4} \\
    M_t = \beta_1 M_{t-1} + D_t, \quad
    W_{t+1} = W_t - \eta_t (M_t + \lambda W_t)

  Args:
    learning_rate: a float, array or schedule.
    block_size: as in `scale_by_shampoo`.
    beta2: as in `scale_by_shampoo`.
    matrix_epsilon: as in `scale_by_shampoo`.
    graft: as in `scale_by_shampoo`.
    graft_b2: as in `scale_by_shampoo`.
    eps: as in `scale_by_shampoo`.
    preconditioning_compute_steps: as in `scale_by_shampoo`.
    start_preconditioning_step: as in `scale_by_shampoo`.
    weight_dimension_numbers: as in `scale_by_shampoo`.
    b1: the momentum decay in [0, 1] (0: none; a schedule too).
    weight_decay: decoupled weight decay (a float, array or schedule).
    mask: which leaves to decay (a pytree of bools or a function of the params).
    nesterov: Nesterov momentum.

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.shampoo(0.1)
    >>> params = {'w': jnp.ones((3, 2)), 'b': jnp.ones(2)}
    >>> u, _ = tx.update(params, tx.init(params), params)
    >>> u['w'].shape
    (3, 2)

  References:
    Gupta, Koren & Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization", ICML
    2018. https://arxiv.org/abs/1802.09568
    Anil, Gupta, Koren, Regan & Singer, "Scalable Second Order Optimization for Deep Learning",
    2020. https://arxiv.org/abs/2002.09018
  """
  _checks.check_scalar("shampoo", "learning_rate", learning_rate, schedule=True)
  _checks.check_scalar("shampoo", "b1", b1, low=0.0, high=1.0, schedule=True)
  _checks.check_scalar("shampoo", "weight_decay", weight_decay, schedule=True)
  return chain(
      scale_by_shampoo(block_size, beta2, matrix_epsilon, graft, graft_b2, eps,
                       preconditioning_compute_steps, start_preconditioning_step,
                       weight_dimension_numbers),
      trace(decay=b1, nesterov=nesterov),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )


def soap(
    learning_rate: ScalarOrSchedule = 3e-3,
    b1: ScalarOrSchedule = 0.95,
    b2: ScalarOrSchedule = 0.95,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.01,
    shampoo_beta: ScalarOrSchedule | None = None,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    mask: MaskOrFn = None,
    weight_dimension_numbers: Any = None,
) -> GradientTransformation:
  r"""SOAP: Adam in Shampoo's eigenbasis, with decoupled weight decay.

  Builds `chain(scale_by_soap(b1, b2, eps, shampoo_beta, precondition_frequency,
  max_precond_dim, weight_dimension_numbers), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`; the defaults are the paper's code's. See
  `scale_by_soap` for the update. With :math:`Q_L, Q_R` the eigenbases of Shampoo's factors,
  :math:`\eta_t` = ``learning_rate`` and :math:`\lambda` = ``weight_decay`` (Vyas et al.,
  Algorithm 1):

  .. math::

    G'_t = Q_L^\top G_t Q_R, \quad
    W_{t+1} = W_t - \eta_t \Big(Q_L \operatorname{Adam}(G'_t) Q_R^\top + \lambda W_t\Big)

  Args:
    learning_rate: a float, array or schedule.
    b1: as in `scale_by_soap`.
    b2: as in `scale_by_soap`.
    eps: as in `scale_by_soap`.
    shampoo_beta: as in `scale_by_soap`.
    precondition_frequency: as in `scale_by_soap`.
    max_precond_dim: as in `scale_by_soap`.
    weight_dimension_numbers: as in `scale_by_soap`.
    weight_decay: decoupled weight decay (a float, array or schedule).
    mask: which leaves to decay (a pytree of bools or a function of the params).

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.soap(0.01)
    >>> params = {'w': jnp.ones((3, 2)), 'b': jnp.ones(2)}
    >>> u, _ = tx.update(params, tx.init(params), params)
    >>> round(float(abs(u['w']).max()), 6)  # the first call builds the bases (and decays)
    0.0001

  References:
    Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson & Kakade, "SOAP: Improving and
    Stabilizing Shampoo using Adam", 2024. https://arxiv.org/abs/2409.11321
  """
  _checks.check_scalar("soap", "learning_rate", learning_rate, schedule=True)
  _checks.check_scalar("soap", "weight_decay", weight_decay, schedule=True)
  return chain(
      scale_by_soap(b1, b2, eps, shampoo_beta, precondition_frequency, max_precond_dim,
                    weight_dimension_numbers),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )
