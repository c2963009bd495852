"""Learning-rate scaling with the batch size: linear (Goyal et al. 2017) and square-root (Krizhevsky 2014; Hoffer et al. 2017) rules."""

from __future__ import annotations

import math
import numbers

import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import Numeric, ScalarOrSchedule

__all__ = [
    "scale_learning_rate",
]


_SCALING_RULES = ("linear", "sqrt")


def scale_learning_rate(
    learning_rate: ScalarOrSchedule,
    batch_size: Numeric,
    base_batch_size: Numeric,
    rule: str = "linear",
) -> ScalarOrSchedule:
  r"""Rescales a learning rate tuned at `base_batch_size` for training at `batch_size`.

  A batch :math:`k` times larger averages away :math:`k` times less gradient noise per step:
  SGD keeps the same trajectory per example by multiplying the learning rate by :math:`k`
  (linear rule); adaptive methods such as Adam by :math:`\sqrt{k}` (square-root rule).

  .. math::
      \eta' = \eta \cdot \frac{B}{B_0} \;\text{(linear)} \quad\text{or}\quad
      \eta \cdot \sqrt{B / B_0} \;\text{(sqrt)}

  with :math:`B` = `batch_size` and :math:`B_0` = `base_batch_size`.

  Args:
    learning_rate: :math:`\eta`, a float, a scalar array or a schedule.
    batch_size: :math:`B > 0`, the new batch size.
    base_batch_size: :math:`B_0 > 0`, the batch size `learning_rate` was tuned for.
    rule: 'linear' (SGD, Goyal et al.) or 'sqrt' (adaptive methods).

  Returns:
    The rescaled learning rate: a float for Python numbers, an array for arrays, a schedule for
    a schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.scale_learning_rate(0.1, batch_size=8192, base_batch_size=256)
    3.2
    >>> gradtx.scale_learning_rate(1e-3, 1024, 256, rule='sqrt')
    0.002

  References:
    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
    https://arxiv.org/abs/1706.02677
    Krizhevsky, "One weird trick for parallelizing convolutional neural networks", 2014.
    https://arxiv.org/abs/1404.5997
    Hoffer, Hubara & Soudry, "Train longer, generalize better", NeurIPS 2017.
    https://arxiv.org/abs/1705.08741
  """
  fn = "scale_learning_rate"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  _checks.check_scalar(fn, "batch_size", batch_size, low=0.0, low_open=True)
  _checks.check_scalar(fn, "base_batch_size", base_batch_size, low=0.0, low_open=True)
  _checks.check_choice(fn, "rule", rule, _SCALING_RULES)
  if isinstance(batch_size, numbers.Real) and isinstance(base_batch_size, numbers.Real):
    ratio = batch_size / base_batch_size
    factor = ratio if rule == "linear" else math.sqrt(ratio)
  else:
    ratio = jnp.asarray(batch_size, jnp.float32) / base_batch_size
    factor = ratio if rule == "linear" else jnp.sqrt(ratio)
  if callable(learning_rate):
    def schedule(count):
      return factor * learning_rate(count)

    return schedule
  return factor * learning_rate
