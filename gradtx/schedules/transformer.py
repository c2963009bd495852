"""The Transformer's warm-up then inverse-square-root decay (Vaswani et al., NeurIPS 2017): a schedule from the sources that optax lacks."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Numeric, Schedule

__all__ = [
    "transformer_schedule",
]


def transformer_schedule(d_model: Numeric, warmup_steps: Numeric = 4000,
                         scale: Numeric = 1.0) -> Schedule:
  r"""The Transformer's learning rate: linear warmup, then inverse square-root decay.

  The rate grows linearly for `warmup_steps` steps, peaks at :math:`t = w`, then decays as
  :math:`1/\sqrt{t}`; wider models (larger `d_model`) get smaller rates. Vaswani et al. used it
  with Adam(b1=0.9, b2=0.98, eps=1e-9) and :math:`w = 4000`.

  .. math::
      \eta_t = \text{scale} \cdot d^{-0.5} \min\left(t^{-0.5},\; t\, w^{-1.5}\right), \quad
      t = \text{count} + 1

  with :math:`d` = `d_model` and :math:`w` = `warmup_steps`; the peak value is
  :math:`\text{scale} \cdot (d w)^{-0.5}`.

  Args:
    d_model: :math:`d > 0`, the model width.
    warmup_steps: :math:`w > 0`, the step (counted from 1) of the peak.
    scale: a constant factor >= 0.

  Returns:
    A schedule.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> schedule = gradtx.transformer_schedule(d_model=512, warmup_steps=4000)
    >>> [f'{float(schedule(t)):.3e}' for t in (0, 3999, 15999)]
    ['1.747e-07', '6.988e-04', '3.494e-04']

  References:
    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Sec. 5.3, eq. (3).
    https://arxiv.org/abs/1706.03762
  """
  fn = "transformer_schedule"
  _checks.check_scalar(fn, "d_model", d_model, low=0.0, low_open=True)
  _checks.check_scalar(fn, "warmup_steps", warmup_steps, low=0.0, low_open=True)
  _checks.check_scalar(fn, "scale", scale, low=0.0)

  def schedule(count):
    t = _cycles.as_float(count) + 1
    warmup = t * jnp.power(jnp.asarray(warmup_steps, jnp.float32), -1.5)
    return scale * jax.lax.rsqrt(jnp.asarray(d_model, jnp.float32)) * jnp.minimum(
        jax.lax.rsqrt(t), warmup)

  return schedule
