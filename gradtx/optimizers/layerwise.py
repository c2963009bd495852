"""Layer-wise adaptive optimizers as chains of primitives: lamb, lars and fromage, which scale
each layer's step by a trust ratio of its param and update norms (`scale_by_trust_ratio`)."""

from __future__ import annotations

from typing import Any

from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.adaptive import scale_by_adam
from gradtx.transforms.decay import _add_decayed_weights, add_decayed_weights
from gradtx.transforms.masking import masked
from gradtx.transforms.momentum import trace
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.transforms.trust_ratio import scale_by_trust_ratio
from gradtx import _checks

__all__ = [
    "fromage",
    "lamb",
    "lars",
]


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""LAMB (You et al.): Adam's step with decoupled weight decay, rescaled per layer.

  Builds `chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nu_dtype=nu_dtype),
  add_decayed_weights(weight_decay, mask), scale_by_trust_ratio(),
  scale_by_learning_rate(learning_rate))`, i.e. :math:`\theta_{t} = \theta_{t-1} - \eta
  \frac{\|\theta_{t-1}\|}{\|r_t\|} r_t` with :math:`r_t = \hat m_t / (\sqrt{\hat v_t} +
  \epsilon) + \lambda \theta_{t-1}` (see `scale_by_adam` and `scale_by_trust_ratio`).

  Args:
    learning_rate: a float, array or schedule.
    b1, b2, eps, eps_root: as `scale_by_adam` (`b1` also a schedule, as `adam`'s).
    weight_decay: :math:`\lambda \geq 0`, a float, array or schedule.
    mask: which params are decayed (pytree of bools or callable).
    mu_dtype, nu_dtype: dtypes of Adam's moments (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.lamb(0.1)
    >>> p = jnp.asarray([3.0, 4.0])
    >>> [round(x, 4) for x in tx.update(jnp.ones(2), tx.init(p), p)[0].tolist()]
    [-0.3536, -0.3536]

  References:
    You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
    ICLR 2020. https://arxiv.org/abs/1904.00962
  """
  return chain(
      scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                    nu_dtype=nu_dtype),
      add_decayed_weights(weight_decay=weight_decay, mask=mask),
      scale_by_trust_ratio(),
      scale_by_learning_rate(learning_rate),
  )


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn = True,
    trust_coefficient: float = 0.001,
    eps: float = 0.0,
    trust_ratio_mask: MaskOrFn = True,
    momentum: float = 0.9,
    nesterov: bool = False,
    *,
    mu_dtype: Any = None,
) -> GradientTransformation:
  r"""LARS (You et al.): SGD with momentum whose step is rescaled per layer by a trust ratio.

  Builds `chain(add_decayed_weights(weight_decay, weight_decay_mask),
  masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask),
  scale_by_learning_rate(learning_rate), trace(momentum, nesterov, mu_dtype))`: the local
  rate :math:`\eta \|\theta\| / (\|g + \lambda\theta\| + \epsilon)` (Eq. 6) multiplies the
  decayed gradient before the momentum (see `scale_by_trust_ratio`).

  Args:
    learning_rate: a float, array or schedule.
    weight_decay: :math:`\lambda \geq 0`, a float, array or schedule (L2, before the ratio).
    weight_decay_mask: which params are decayed (pytree of bools, callable, or True for all).
    trust_coefficient: :math:`\eta \geq 0`.
    eps: :math:`\epsilon \geq 0`, added to the update norm.
    trust_ratio_mask: which params get the trust ratio (e.g. not biases and norms).
    momentum: the momentum decay in [0, 1]; a float or scalar array (no schedule, as optax).
    nesterov: Nesterov momentum.
    mu_dtype: dtype of the momentum (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.lars(0.1, trust_coefficient=1.0)
    >>> p = jnp.asarray([3.0, 4.0])
    >>> [round(x, 4) for x in tx.update(jnp.ones(2), tx.init(p), p)[0].tolist()]
    [-0.3536, -0.3536]

  References:
    You et al., "Large Batch Training of Convolutional Networks", 2017.
    https://arxiv.org/abs/1708.03888
  """
  _checks.check_scalar("lars", "momentum", momentum, low=0.0, high=1.0)  # trace's decay
  return chain(
      add_decayed_weights(weight_decay, mask=weight_decay_mask),
      masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
             mask=trust_ratio_mask),
      scale_by_learning_rate(learning_rate),
      trace(decay=momentum, nesterov=nesterov, accumulator_dtype=mu_dtype),
  )


def _fromage_shrink(learning_rate: Any) -> Any:
  """:math:`1 / \\sqrt{1 + \\eta^2}` (a schedule of the count when the rate is one)."""
  if callable(learning_rate):
    return lambda count: 1 / (1 + learning_rate(count)**2)**0.5
  return 1 / (1 + learning_rate**2)**0.5


def fromage(learning_rate: ScalarOrSchedule, min_norm: float = 1e-6) -> GradientTransformation:
  r"""Fromage (Bernstein et al.): a step of relative size :math:`\eta` per layer, then a shrink.

  .. math:: \theta_{t} = \frac{1}{\sqrt{1 + \eta^2}} \Big(\theta_{t-1} - \eta
      \frac{\|\theta_{t-1}\|}{\|g_t\|} g_t\Big)

  Built as optax: `chain(scale_by_trust_ratio(min_norm), scale_by_learning_rate(eta * s),
  add_decayed_weights(s - 1))` with :math:`s = 1 / \sqrt{1 + \eta^2}` (a negative decay: the
  shrink), each a schedule when the learning rate is one.

  Args:
    learning_rate: :math:`\eta`, a float, array or schedule.
    min_norm: the smallest param and gradient norm, >= 0.

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.fromage(0.5)
    >>> p = jnp.asarray([3.0, 4.0])
    >>> [round(x, 4) for x in tx.update(jnp.asarray([1.0, 0.0]), tx.init(p), p)[0].tolist()]
    [-2.5528, -0.4223]

  References:
    Bernstein et al., "On the distance between two neural networks and the stability of
    learning", NeurIPS 2020. https://arxiv.org/abs/2002.03432
  """
  _checks.check_scalar("fromage", "learning_rate", learning_rate, schedule=True)
  shrink = _fromage_shrink(learning_rate)
  if callable(learning_rate):
    lr = lambda count: shrink(count) * learning_rate(count)
    decay = lambda count: shrink(count) - 1
  else:
    lr, decay = learning_rate * shrink, shrink - 1
  return chain(
      scale_by_trust_ratio(min_norm),
      scale_by_learning_rate(lr),  # eta s g_hat
      _add_decayed_weights(decay, None),  # + (s - 1) theta: the shrink
  )
