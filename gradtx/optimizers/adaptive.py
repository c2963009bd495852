"""Adaptive optimizers beyond the Adam family proper, as chains of primitives: adabelief, yogi,
radam, adan, novograd."""

from __future__ import annotations

from typing import Any, Callable

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.adan import scale_by_adan
from gradtx.transforms.belief import scale_by_belief
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.novograd import scale_by_novograd
from gradtx.transforms.radam import scale_by_radam
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.transforms.yogi import scale_by_yogi

__all__ = [
    "adabelief",
    "adan",
    "novograd",
    "radam",
    "yogi",
]


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    nesterov: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""AdaBelief (Zhuang et al.).

  Builds `chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov, mu_dtype=mu_dtype,
  nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate))`:

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      s_t = \beta_2 s_{t-1} + (1 - \beta_2) (g_t - m_t)^2 + \epsilon_{root}, \qquad
      \theta_t = \theta_{t-1} - \eta_t \frac{m_t / (1 - \beta_1^t)}{\sqrt{s_t / (1 - \beta_2^t)}
      + \epsilon}

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps` and :math:`\epsilon_{root}` = `eps_root` (details in
  `scale_by_belief`).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2: decays of the gradient EMA and of the squared prediction error's EMA, in [0, 1).
    eps: >= 0, outside the square root; eps_root: >= 0, added to the second moment.
    nesterov: Nesterov look-ahead on the first moment.
    mu_dtype, nu_dtype: dtypes of the moments (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adabelief(1e-3)
    >>> u, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
    >>> bool(u[0] < 0)
    True

  References:
    Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", NeurIPS 2020. https://arxiv.org/abs/2010.07468
  """
  return chain(
      scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root, nesterov=nesterov,
                      mu_dtype=mu_dtype, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Yogi (Zaheer et al.).

  Builds `chain(scale_by_yogi(b1, b2, eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
  scale_by_learning_rate(learning_rate))`:

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = v_{t-1} - (1 - \beta_2) \operatorname{sign}(v_{t-1} - g_t^2) g_t^2, \qquad
      \theta_t = \theta_{t-1} - \eta_t \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)}
      + \epsilon}

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\epsilon` = `eps`, and :math:`m_0 = v_0 = 10^{-6}` (optax's; see `scale_by_yogi`).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2: decays of the first and second moments, in [0, 1).
    eps: >= 0, outside the square root.
    mu_dtype, nu_dtype: dtypes of the moments (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.yogi(0.01)
    >>> u, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
    >>> bool(u[0] < 0)
    True

  References:
    Zaheer et al., "Adaptive Methods for Nonconvex Optimization", NeurIPS 2018.
    https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
  """
  return chain(
      scale_by_yogi(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )


def radam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn | Callable | None = None,
    decoupled_weight_decay: bool = False,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Rectified Adam (Liu et al.), with torch.optim.RAdam's weight decay options.

  Without `weight_decay` (the default) builds optax's `chain(scale_by_radam(b1, b2, eps,
  eps_root, threshold, nesterov=...), scale_by_learning_rate(learning_rate))` and its state. With
  `weight_decay` :math:`\lambda`:

  - `decoupled_weight_decay=False`: L2 as torch's default, the decay added to the gradient before
    the moments: `chain(add_decayed_weights(weight_decay, mask), scale_by_radam(...), ...)`.
  - `decoupled_weight_decay=True`: torch.optim.RAdam(decoupled_weight_decay=True), i.e.
    :math:`\theta \leftarrow \theta (1 - \eta\lambda) - \eta u_t`: `chain(scale_by_radam(...,
    torch_form=True), add_decayed_weights(weight_decay, mask), scale_by_learning_rate(...))`.
    The flag also selects torch's arithmetic (`torch_form`: its epsilon placement and strict
    threshold), with or without `weight_decay`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2: moment decays in [0, 1); eps, eps_root: >= 0; threshold: >= 4 (`scale_by_radam`).
    nesterov: Nesterov look-ahead on the first moment.
    weight_decay: :math:`\lambda \ge 0`, a float, array or schedule; None adds no decay link.
    mask: which params are decayed (pytree of bools or callable); needs `weight_decay`.
    decoupled_weight_decay: decoupled decay and torch's arithmetic (see above).
    mu_dtype, nu_dtype: dtypes of the moments (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.radam(0.1, weight_decay=0.5, decoupled_weight_decay=True)
    >>> tx.update(jnp.zeros(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()
    [-0.05000000074505806]

  References:
    Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
    https://arxiv.org/abs/1908.03265
  """
  _checks.check_bool("radam", "decoupled_weight_decay", decoupled_weight_decay)
  if weight_decay is None and mask is not None:
    raise ValueError("gradtx.radam: mask selects the params to decay, but weight_decay is None; "
                     "pass weight_decay=... or drop mask.")
  radam_scaling = scale_by_radam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, threshold=threshold,
                                 nesterov=nesterov, torch_form=decoupled_weight_decay,
                                 mu_dtype=mu_dtype, nu_dtype=nu_dtype)
  if weight_decay is None:
    return chain(radam_scaling, scale_by_learning_rate(learning_rate))
  if decoupled_weight_decay:
    return chain(radam_scaling, add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))
  return chain(add_decayed_weights(weight_decay, mask), radam_scaling,
               scale_by_learning_rate(learning_rate))


def adan(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn | Callable | None = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adan (Xie et al.), with decoupled weight decay as optax.

  Builds `chain(scale_by_adan(b1, b2, b3, eps, eps_root, mu_dtype=..., nu_dtype=...),
  add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))`:

  .. math::
      \Delta_t = g_t - g_{t-1} \;(\Delta_1 = 0), \quad
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) \Delta_t,

      n_t = \beta_3 n_{t-1} + (1 - \beta_3) [g_t + (1 - \beta_2) \Delta_t]^2, \quad
      \theta_t = \theta_{t-1} - \eta_t \Big(\frac{\hat m_t + (1 - \beta_2) \hat v_t}
      {\sqrt{\hat n_t + \epsilon_{root}} + \epsilon} + \lambda \theta_{t-1}\Big)

  with bias-corrected :math:`\hat x_t = x_t / (1 - \beta^t)`, :math:`\eta_t` = `learning_rate`,
  :math:`\beta_1, \beta_2, \beta_3` = `b1, b2, b3` (optax's convention, the paper's
  :math:`1 - \beta`), :math:`\epsilon` = `eps`, :math:`\epsilon_{root}` = `eps_root` and
  :math:`\lambda` = `weight_decay` (on the masked leaves).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, b3: decays of the gradient, gradient-difference and squared-term EMAs, in [0, 1).
    eps: >= 0, outside the square root; eps_root: >= 0, inside it.
    weight_decay: >= 0, a float, array or schedule (decoupled, as AdamW).
    mask: which params are decayed (pytree of bools or callable).
    mu_dtype, nu_dtype: dtypes of the moments (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adan(0.1)
    >>> u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))
    >>> round(float(u[0]), 4)
    -0.1

  References:
    Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models",
    IEEE TPAMI 2024. https://arxiv.org/abs/2208.06677
  """
  return chain(
      scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                    nu_dtype=nu_dtype),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.25,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    mask: MaskOrFn | Callable | None = None,
    mu_dtype: Any = None,
) -> GradientTransformation:
  r"""NovoGrad (Ginsburg et al.).

  Builds `chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay, mu_dtype, mask=mask),
  scale_by_learning_rate(learning_rate))`; the weight decay enters the momentum, as in the paper
  and optax. Per leaf :math:`l`:

  .. math::
      v^l_t = \beta_2 v^l_{t-1} + (1 - \beta_2) \|g^l_t\|^2, \quad
      d^l_t = \frac{g^l_t}{\sqrt{v^l_t + \epsilon_{root}} + \epsilon} + \lambda_t \theta^l_{t-1},
      \quad m^l_t = \beta_1 m^l_{t-1} + d^l_t, \qquad
      \theta^l_t = \theta^l_{t-1} - \eta_t m^l_t

  with :math:`v^l_1 = \|g^l_1\|^2`, :math:`m^l_1 = d^l_1`, :math:`\eta_t` = `learning_rate`,
  :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`,
  :math:`\epsilon_{root}` = `eps_root` and :math:`\lambda_t` = `weight_decay`.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1: momentum in [0, 1); b2: decay of the per-leaf squared-norm EMA, in [0, 1).
    eps: >= 0, outside the square root; eps_root: >= 0, inside it.
    weight_decay: >= 0, a float, array or schedule.
    mask: which params are decayed (pytree of bools or callable; not in optax).
    mu_dtype: dtype of the momentum (not in optax's alias).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.novograd(0.1)
    >>> u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))
    >>> round(float(u[0]), 4)
    -0.1

  References:
    Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training
    of Deep Networks", arXiv 2019. https://arxiv.org/abs/1905.11286
  """
  return chain(
      scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay,
                        mu_dtype=mu_dtype, mask=mask),
      scale_by_learning_rate(learning_rate),
  )
