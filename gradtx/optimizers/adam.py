"""The Adam family as chains of primitives: adam, adamw, nadam, nadamw, adamax, adamaxw, amsgrad."""

from __future__ import annotations

from typing import Any, Callable

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.adaptive import (
  scale_by_adam,
  scale_by_adamax,
  scale_by_amsgrad,
  scale_by_nadam,
)
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "amsgrad",
    "nadam",
    "nadamw",
]


def adam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adam (Kingma & Ba).

  Builds `chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
  nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate))`; the equations, the epsilon
  placement (optax's, outside the root) and the `b1`-schedule form are in `scale_by_adam`.

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
      \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
      \theta_t = \theta_{t-1} - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps` and :math:`\epsilon_{root}` = `eps_root`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1: first-moment decay in [0, 1); a float, array or schedule (the Theano chapter's b1 decay).
    b2: second-moment decay in [0, 1).
    eps: >= 0, added outside the square root.
    eps_root: >= 0, added inside the square root.
    mu_dtype: dtype of the first moment (e.g. float32 for bfloat16 params).
    nesterov: Nesterov momentum (Nadam in optax's form).
    nu_dtype: dtype of the second moment (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adam(1e-3)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 6)
    -0.001

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    https://arxiv.org/abs/1412.6980
  """
  return chain(
      scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                    nesterov=nesterov, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn | Callable | None = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    schedule_multiplier: ScalarOrSchedule | None = None,
) -> GradientTransformation:
  r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter).

  By default (optax's form) builds `chain(scale_by_adam(...), add_decayed_weights(weight_decay,
  mask), scale_by_learning_rate(learning_rate))`, i.e.
  :math:`\theta_t = \theta_{t-1} - \eta_t (\hat m_t / (\sqrt{\hat v_t} + \epsilon) + \lambda
  \theta_{t-1})`: the decay is not divided by the adaptive denominator, unlike Adam with L2, and
  is multiplied by the full learning rate.

  With `schedule_multiplier` :math:`\eta_t` it is the paper's Algorithm 2, with base rate
  :math:`\alpha` = `learning_rate`: :math:`\theta_t = \theta_{t-1} - \eta_t (\alpha \hat m_t /
  (\sqrt{\hat v_t} + \epsilon) + \lambda \theta_{t-1})`, built as `chain(scale_by_adam(...),
  scale_by_learning_rate(learning_rate, flip_sign=False), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(schedule_multiplier))`. AdamWR is `schedule_multiplier=
  warm_restarts_schedule(1.0, T0, T_mult)` with `weight_decay=normalized_weight_decay_schedule(
  ..., T0, T_mult)`; the recipe is in `gradtx.decay`'s module docstring.

  Args:
    learning_rate: :math:`\alpha` (:math:`\eta` in optax's form), a float, array or schedule.
    b1, b2, eps, eps_root, mu_dtype, nu_dtype, nesterov: as `adam`.
    weight_decay: :math:`\lambda` >= 0, float, array or schedule.
    mask: which params are decayed (pytree of bools or callable), e.g. not biases.
    schedule_multiplier: :math:`\eta_t` >= 0, float, array or schedule; None for optax's form.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adamw(0.1, weight_decay=0.5, schedule_multiplier=0.5)
    >>> tx.update(jnp.zeros(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()
    [-0.25]

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2.
    https://arxiv.org/abs/1711.05101
  """
  _checks.check_scalar("adamw", "schedule_multiplier", schedule_multiplier, low=0.0,
                       schedule=True, optional=True)
  adam_scaling = scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                               nesterov=nesterov, nu_dtype=nu_dtype)
  if schedule_multiplier is None:
    return chain(
        adam_scaling,
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
  return chain(
      adam_scaling,
      scale_by_learning_rate(learning_rate, flip_sign=False),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(schedule_multiplier),
  )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    momentum_decay: float | None = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Nadam: Adam with Nesterov momentum (Dozat).

  With `momentum_decay=None` (default) this is optax's `nadam`: `adam(..., nesterov=True)` with a
  constant `b1`. With a float `momentum_decay` (torch and Keras use 0.004) it builds
  `chain(scale_by_nadam(b1, b2, eps, eps_root, mu_dtype, momentum_decay=...),
  scale_by_learning_rate(learning_rate))`: Dozat's momentum warm-up schedule
  :math:`\mu_t = \beta_1 (1 - 0.5 \cdot 0.96^{t \psi})`, as `torch.optim.NAdam`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, eps, eps_root, mu_dtype, nu_dtype: as `adam`.
    nesterov: optax's keyword: True (default) for Nesterov momentum; False gives plain `adam`.
    momentum_decay: :math:`\psi` >= 0 for Dozat's warm-up, or None for optax's form.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.nadam(1e-3, momentum_decay=0.004)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0] < 0
    True

  References:
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
  """
  _checks.check_bool("nadam", "nesterov", nesterov)
  if momentum_decay is None:
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                nu_dtype=nu_dtype)
  if not nesterov:
    raise ValueError("gradtx.nadam: momentum_decay (Dozat's warm-up) needs nesterov=True, got "
                     "nesterov=False.")
  return chain(
      scale_by_nadam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                     momentum_decay=momentum_decay, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn | Callable | None = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""NadamW: `adamw(..., nesterov=True)` — Nadam with decoupled weight decay, as optax.

  .. math::
      \bar m_t = \frac{\beta_1 m_t}{1 - \beta_1^{t+1}} + \frac{(1 - \beta_1) g_t}{1 - \beta_1^t},
      \qquad
      \theta_t = \theta_{t-1} - \eta_t \Big(\frac{\bar m_t}{\sqrt{\hat v_t + \epsilon_{root}}
      + \epsilon} + \lambda \theta_{t-1}\Big)

  with :math:`m_t`, :math:`\hat v_t` Adam's moments (see `adam`), :math:`\eta_t` =
  `learning_rate`, :math:`\beta_1` = `b1`, :math:`\epsilon` = `eps`, :math:`\epsilon_{root}` =
  `eps_root` and :math:`\lambda` = `weight_decay` (on the masked leaves).

  Args:
    learning_rate, b1, b2, eps, eps_root, mu_dtype, nu_dtype: as `adam`.
    weight_decay, mask: as `adamw`.
    nesterov: optax's keyword: True (default); False gives plain `adamw`.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.nadamw(1e-3)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop; Loshchilov & Hutter,
    "Decoupled Weight Decay Regularization", ICLR 2019. https://arxiv.org/abs/1711.05101
  """
  return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
               nesterov=nesterov, nu_dtype=nu_dtype)


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""AdaMax: Adam with the infinity norm (Kingma & Ba, Sec. 7.1).

  Builds `chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))`:

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \qquad
      \theta_t = \theta_{t-1} - \eta_t \frac{m_t}{(1 - \beta_1^t)\, u_t}

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2` and
  :math:`\epsilon` = `eps`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1: first-moment decay in [0, 1).
    b2: decay of the infinity norm in [0, 1).
    eps: >= 0.
    mu_dtype: dtype of the first moment (default: the params'). Not in optax.
    nu_dtype: dtype of the infinity norm (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adamax(1e-3)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 6)
    -0.001

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 2.
    https://arxiv.org/abs/1412.6980
  """
  return chain(scale_by_adamax(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
               scale_by_learning_rate(learning_rate))


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: MaskOrFn | Callable | None = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""AdaMax with decoupled weight decay, as optax's `adamaxw`.

  Builds `chain(scale_by_adamax(b1, b2, eps), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`:

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \qquad
      \theta_t = \theta_{t-1} - \eta_t \Big(\frac{m_t}{(1 - \beta_1^t)\, u_t}
      + \lambda \theta_{t-1}\Big)

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps` and :math:`\lambda` = `weight_decay` (on the masked leaves).

  Args:
    learning_rate, b1, b2, eps, mu_dtype, nu_dtype: as `adamax`.
    weight_decay, mask: as `adamw`.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adamaxw(1e-3)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    https://arxiv.org/abs/1711.05101
  """
  return chain(
      scale_by_adamax(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""AMSGrad (Reddi et al.): Adam with a non-decreasing second moment.

  Builds `chain(scale_by_amsgrad(...), scale_by_learning_rate(learning_rate))`. The defaults are
  optax's (bias-corrected moments); `bias_correction_mu=False, bias_correction_nu=False` is the
  paper's Algorithm 2:

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
      \hat v^{max}_t = \max(\hat v^{max}_{t-1}, \hat v_t), \qquad
      \theta_t = \theta_{t-1} - \eta_t \frac{\hat m_t}{\sqrt{\hat v^{max}_t + \epsilon_{root}}
      + \epsilon}

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps`, :math:`\epsilon_{root}` = `eps_root`,
  :math:`\hat m_t = m_t / (1 - \beta_1^t)` if `bias_correction_mu` (else :math:`m_t`) and
  :math:`\hat v_t = v_t / (1 - \beta_2^t)` if `bias_correction_nu` (else :math:`v_t`).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, eps, eps_root, mu_dtype: as `adam`.
    bias_correction_mu: debias the first moment.
    bias_correction_nu: debias the second moment before the running maximum.
    nu_dtype: dtype of the second moment and its running maximum. Not in optax.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.amsgrad(1e-3)
    >>> round(tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 6)
    -0.001

  References:
    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
    https://openreview.net/forum?id=ryQu7f-RZ
  """
  return chain(
      scale_by_amsgrad(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                       bias_correction_mu=bias_correction_mu,
                       bias_correction_nu=bias_correction_nu, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )
