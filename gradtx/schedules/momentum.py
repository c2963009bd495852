"""Sutskever et al.'s slowly increasing momentum schedule (ICML 2013), for `sgd(momentum=...)` / `trace(decay=...)`."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule

__all__ = [
    "momentum_schedule",
]


def momentum_schedule(max_momentum: Numeric = 0.99, steps_per_stage: Numeric = 250) -> Schedule:
  r"""Sutskever et al.'s slowly increasing momentum: 0.5, 0.75, 0.83, ... up to a maximum.

  Momentum starts at 0.5 and rises every `steps_per_stage` steps as :math:`1 - 1/(2(k + 1))`
  for stage :math:`k`, so early, badly conditioned steps are damped and later ones move fast.
  Use it as `trace(decay=momentum_schedule())` or `sgd(lr, momentum=momentum_schedule())`.

  .. math::
      \mu_t = \min\left(1 - 2^{-1 - \log_2(\lfloor t / S \rfloor + 1)},\; \mu_{max}\right)
      = \min\left(1 - \frac{1}{2(\lfloor t / S \rfloor + 1)},\; \mu_{max}\right)

  with :math:`S` = `steps_per_stage` (250 in the paper) and :math:`\mu_{max}` = `max_momentum`
  (the paper tries 0.9, 0.99, 0.995 and 0.999).

  Args:
    max_momentum: :math:`\mu_{max}` in [0, 1), the cap.
    steps_per_stage: :math:`S > 0`, the steps between increases.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.momentum_schedule(max_momentum=0.9)
    >>> [round(float(schedule(t)), 4) for t in (0, 250, 500, 10_000)]
    [0.5, 0.75, 0.8333, 0.9]

  References:
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013, Sec. 4.1. https://proceedings.mlr.press/v28/sutskever13.html
  """
  fn = "momentum_schedule"
  _checks.check_scalar(fn, "max_momentum", max_momentum, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "steps_per_stage", steps_per_stage, low=0.0, low_open=True)

  def schedule(count):
    stage = _cycles.divmod_count(count, steps_per_stage)[0]
    return jnp.minimum(1 - 0.5 / (stage + 1), max_momentum)

  return schedule
