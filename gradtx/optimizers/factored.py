"""Memory-efficient adaptive optimizers as chains of primitives: adafactor (factored second
moments) and sm3 (cover-wise accumulators)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.transforms.clipping import clip_by_block_rms
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.factored import scale_by_factored_rms
from gradtx.transforms.momentum import ema
from gradtx.transforms.normalization import scale_by_param_block_rms
from gradtx.transforms.scaling import scale, scale_by_learning_rate
from gradtx.transforms.sm3 import scale_by_sm3

__all__ = [
    "adafactor",
    "sm3",
]


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float = 0.8,
    decay_offset: int = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | None = 1.0,
    momentum: float | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: float = 1e-30,
    factored: bool = True,
    weight_decay_mask: MaskOrFn = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adafactor (Shazeer & Stern): factored second moments, update clipping, relative steps.

  Builds, as optax, `chain(scale_by_factored_rms(factored, decay_rate, decay_offset,
  min_dim_size_to_factor, eps), clip_by_block_rms(clipping_threshold),
  scale_by_learning_rate(learning_rate, flip_sign=False), scale_by_param_block_rms(),
  ema(momentum, debias=False, accumulator_dtype=dtype_momentum),
  add_decayed_weights(weight_decay_rate, weight_decay_mask), scale(-1))`, each optional step
  present only when its argument is not None (or `multiply_by_parameter_scale`). The equations
  are in `scale_by_factored_rms`.

  Args:
    learning_rate: a float, array or schedule; None for Adafactor's relative step alone.
    min_dim_size_to_factor, decay_rate, decay_offset, eps, factored: as `scale_by_factored_rms`
      (`decay_offset` is its `step_offset`, `eps` its `epsilon`).
    multiply_by_parameter_scale: scale each block's step by its params' RMS (relative step).
    clipping_threshold: :math:`d \geq 0`, the update clipping threshold (Algorithm 4), or None.
    momentum: :math:`\beta_1` in [0, 1] of a first-moment EMA, or None for none.
    dtype_momentum: dtype of that EMA.
    weight_decay_rate: decoupled decay (float, array or schedule), or None.
    weight_decay_mask: which params are decayed (pytree of bools or callable).
    nu_dtype: dtype of the second-moment estimates (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adafactor(0.1, multiply_by_parameter_scale=False)
    >>> p = jnp.zeros(2)
    >>> tx.update(jnp.asarray([2.0, -2.0]), tx.init(p), p)[0].tolist()
    [-0.10000000149011612, 0.10000000149011612]

  References:
    Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML 2018.
    https://arxiv.org/abs/1804.04235
  """
  _checks.check_bool("adafactor", "multiply_by_parameter_scale", multiply_by_parameter_scale)
  _checks.check_dtype("adafactor", "dtype_momentum", dtype_momentum)
  # The primitives check these too, under their own names (threshold, decay, epsilon): checked
  # here first so the error names the argument the user passed.
  _checks.check_scalar("adafactor", "clipping_threshold", clipping_threshold, low=0.0,
                       optional=True)
  _checks.check_scalar("adafactor", "momentum", momentum, low=0.0, high=1.0, optional=True)
  _checks.check_scalar("adafactor", "weight_decay_rate", weight_decay_rate, low=0.0,
                       schedule=True, optional=True)
  _checks.check_scalar("adafactor", "eps", eps, low=0.0)
  return chain(
      scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps,
                            nu_dtype=nu_dtype),
      *([clip_by_block_rms(clipping_threshold)] if clipping_threshold is not None else []),
      *([scale_by_learning_rate(learning_rate, flip_sign=False)]
        if learning_rate is not None else []),
      *([scale_by_param_block_rms()] if multiply_by_parameter_scale else []),
      *([ema(momentum, debias=False, accumulator_dtype=dtype_momentum)]
        if momentum is not None else []),
      *([add_decayed_weights(weight_decay_rate, mask=weight_decay_mask)]
        if weight_decay_rate is not None else []),
      scale(-1),  # descent: follow the negative of the scaled gradient
  )


def sm3(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""SM3 (Anil et al.): memory-efficient adaptive steps with momentum.

  Builds `chain(scale_by_sm3(b1=momentum, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
  scale_by_learning_rate(learning_rate))`; the equations are in `scale_by_sm3`. (optax's is
  `scale(-learning_rate)`: the same numbers and state for a constant rate.)

  Args:
    learning_rate: a float, array or schedule.
    momentum: :math:`\beta_1` in [0, 1].
    mu_dtype: dtype of the accumulators (not in optax).
    nu_dtype: dtype of the momentum (not in optax).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.sm3(0.1, momentum=0.0)
    >>> tx.update(jnp.asarray([2.0, -3.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [-0.10000000149011612, 0.10000000149011612]

  References:
    Anil et al., "Memory-Efficient Adaptive Optimization", NeurIPS 2019.
    https://arxiv.org/abs/1901.11150
  """
  _checks.check_scalar("sm3", "momentum", momentum, low=0.0, high=1.0)  # scale_by_sm3's b1
  return chain(
      scale_by_sm3(b1=momentum, mu_dtype=mu_dtype, nu_dtype=nu_dtype),
      scale_by_learning_rate(learning_rate),
  )
