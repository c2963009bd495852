"""Moment updates over pytrees (optax's `tree.update_moment`, ...): exponential moving averages of the updates and their powers, and Adam's bias correction."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._trees import is_none
from gradtx.numerics import abs_sq

__all__ = [
    "bias_correction",
    "moment_like",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
]


def update_moment(updates: Any, moments: Any, decay: Any, order: int) -> Any:
  r"""Exponential moving average of the `order`-th power of the updates.

  .. math:: m_t = (1 - \beta) g_t^{order} + \beta m_{t-1}

  Args:
    updates: the new updates :math:`g_t` (a pytree; `None` leaves stay `None`).
    moments: the previous moment :math:`m_{t-1}`, same structure.
    decay: :math:`\beta`, a scalar.
    order: the power of the updates.

  Returns:
    The new moment :math:`m_t`, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> round(gradtx.update_moment(jnp.ones(1), jnp.zeros(1), 0.9, 1).tolist()[0], 6)
    0.1

  References:
    `optax.tree_utils.tree_update_moment` (optax 0.2.8).
  """
  return jax.tree.map(
      lambda g, t: None if g is None else (1 - decay) * (g**order) + decay * t,
      updates, moments, is_leaf=is_none)


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: int) -> Any:
  r"""Exponential moving average of `|g|^order` (the squared magnitude for order 2).

  .. math:: v_t = (1 - \beta) |g_t|^{order} + \beta v_{t-1}

  Equal to optax's bit for bit for even orders and complex updates; for a real update and an
  odd order optax computes `g ** order` (negative for negative g), gradtx `|g| ** order`.

  Args:
    updates: the new updates :math:`g_t` (a pytree; `None` leaves stay `None`).
    moments: the previous moment :math:`v_{t-1}`, same structure.
    decay: :math:`\beta`, a scalar.
    order: the power of the magnitude.

  Returns:
    The new moment :math:`v_t`, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.update_moment_per_elem_norm(-2 * jnp.ones(1), jnp.zeros(1), 0.5, 2).tolist()
    [2.0]

  References:
    `optax.tree_utils.tree_update_moment_per_elem_norm` (optax 0.2.8).
  """

  def power(g):
    if jnp.iscomplexobj(g):
      half = order / 2  # optax's form: an int power where it can (different HLO than a float)
      return abs_sq(g) ** (int(half) if float(half).is_integer() else half)
    if order == 2:
      return abs_sq(g)  # g * g, the same HLO as optax's g ** 2
    # optax takes g ** order here, which is negative for odd orders; this is the norm's power.
    return jnp.abs(g) ** order

  return jax.tree.map(
      lambda g, t: None if g is None else (1 - decay) * power(g) + decay * t,
      updates, moments, is_leaf=is_none)


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
  r"""Exponentially weighted infinity norm (AdaMax): :math:`u_t = \max(\beta u_{t-1}, |g_t| + \epsilon)`.

  Args:
    updates: the new updates :math:`g_t` (a pytree; `None` leaves stay `None`).
    moments: the previous norm :math:`u_{t-1}`, same structure.
    decay: :math:`\beta`, a scalar.
    eps: :math:`\epsilon`, added to :math:`|g_t|`.

  Returns:
    The new norm :math:`u_t`, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.update_infinity_moment(-jnp.ones(1), jnp.zeros(1), 0.9, 0.0).tolist()
    [1.0]

  References:
    `optax.tree_utils.tree_update_infinity_moment` (optax 0.2.8); Kingma & Ba, "Adam: A Method
    for Stochastic Optimization", ICLR 2015, Section 7.1. https://arxiv.org/abs/1412.6980
  """
  return jax.tree.map(
      lambda g, t: None if g is None else jnp.maximum(jnp.abs(g) + eps, decay * t),
      updates, moments, is_leaf=is_none)


def bias_correction(moment: Any, decay: Any, count: jax.Array) -> Any:
  r"""Divides an EMA started at zero by :math:`1 - \beta^t` (Kingma & Ba, Section 3).

  Args:
    moment: the EMA (a pytree; `None` leaves stay `None`).
    decay: :math:`\beta`, the EMA's decay.
    count: :math:`t`, the 1-based step count (an integer array).

  Returns:
    :math:`m / (1 - \beta^t)`, same structure and dtypes as `moment`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.bias_correction(jnp.asarray([0.1]), 0.9, jnp.asarray(1)).round(4).tolist()
    [1.0]

  References:
    `optax.tree_utils.tree_bias_correction` (optax 0.2.8); Kingma & Ba, "Adam: A Method for
    Stochastic Optimization", ICLR 2015. https://arxiv.org/abs/1412.6980
  """
  return _bias_correction(moment, decay, count)


@functools.partial(jax.jit, inline=True)
def _bias_correction(moment: Any, decay: Any, count: jax.Array) -> Any:
  # Compiled (inline under an outer jit), as optax's: eagerly, XLA's fused division differs
  # from the op-by-op one in the last bit, so this gives jit's (and optax's) value in both modes.
  # `lax.pow` (not `**`): for a concrete scalar count, `**` takes the exact integer-power path
  # eagerly but not under jit, which changes 1 - decay^t by ~1e-5 relative. At least float32, so a bf16 or int decay does not round to 1.
  decay = jnp.asarray(decay)
  decay = decay.astype(jnp.promote_types(decay.dtype, jnp.float32))
  correction = 1 - jax.lax.pow(decay, jnp.asarray(count))
  return jax.tree.map(
      lambda t: None if t is None else t / correction.astype(t.dtype), moment, is_leaf=is_none)


def moment_like(new: Any, old: Any) -> Any:
  """Casts each new moment leaf to the dtype of the old one; a `None` (absent) leaf keeps the old.

  Args:
    new: the new moment (a pytree; `None` leaves take the old value).
    old: the previous moment, same structure, whose dtypes are kept.

  Returns:
    A pytree with the structure of `old` and its dtypes.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.moment_like(jnp.ones(1), jnp.zeros(1, jnp.bfloat16)).dtype
    dtype(bfloat16)

  References:
    `jax.numpy.ndarray.astype`, leaf by leaf (gradtx's helper for `mu_dtype` / `nu_dtype`).
  """
  return jax.tree.map(
      lambda n, o: o if n is None else n.astype(jnp.asarray(o).dtype), new, old, is_leaf=is_none)
