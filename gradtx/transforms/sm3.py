"""SM3 (Anil et al. 2019): a memory-efficient adaptive method that keeps one accumulator per
row, column, ... of each parameter instead of one per entry (optax's `scale_by_sm3`)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation

__all__ = [
    "ScaleBySM3State",
    "scale_by_sm3",
]


class ScaleBySM3State(NamedTuple):
  """State of `scale_by_sm3`, optax's layout.

  Attributes:
    mu: per leaf, a list of one accumulator per axis.
    nu: the momentum of the scaled updates.
  """

  mu: Any
  nu: Any


def _zeros_for_axis(p: jax.Array, axis: int, dtype: Any) -> jax.Array:
  return jnp.zeros((p.shape[axis],), dtype=dtype or p.dtype)


def _expanded_shape(shape: tuple[int, ...], axis: int) -> list[int]:
  """[M, N, K], axis 1 -> [1, N, 1]."""
  return [1] * axis + [shape[axis]] + [1] * (len(shape) - axis - 1)


class _Leaf:
  """One leaf's results (a plain object, so `jax.tree.map` does not descend into it)."""

  __slots__ = ("update", "mu", "nu")

  def __init__(self, update: Any, mu: list[Any], nu: Any):
    self.update, self.mu, self.nu = update, mu, nu


def _other_axes(axis: int, ndim: int) -> tuple[int, ...]:
  return tuple(range(axis)) + tuple(range(axis + 1, ndim))


def scale_by_sm3(
    b1: Any = 0.9,
    b2: Any = 1.0,
    eps: Any = 1e-8,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by SM3's cover-wise accumulated squared gradients, with momentum.

  For a leaf of rank :math:`k \geq 2`, SM3-II keeps one accumulator :math:`\mu^{(r)}` per axis
  :math:`r` (a vector along that axis); each entry's second moment is the minimum over its
  covers, so memory is :math:`\sum_r n_r` instead of :math:`\prod_r n_r`. Vectors keep one
  accumulator per entry (Adagrad).

  .. math::
      \nu_t(i) = c\, g_t(i)^2 + \beta_2 \min_r \mu^{(r)}_{t-1}(i_r), \qquad
      \mu^{(r)}_t(j) = \max_{i: i_r = j} \nu_t(i), \\
      m_t = (1 - \beta_1)\, g_t / \sqrt{\nu_t + \epsilon} + \beta_1 m_{t-1}, \qquad u_t = m_t

  with :math:`c = 1 - \beta_2` (:math:`c = 1` when :math:`\beta_2 = 1`, the paper's
  Adagrad-style sum) and :math:`g / \sqrt{\nu + \epsilon} = 0` where :math:`\nu = 0`.

  Args:
    b1: :math:`\beta_1` in [0, 1], the momentum decay; a float or scalar array.
    b2: :math:`\beta_2` in [0, 1], the accumulators' decay (1: plain sums); a float or array.
    eps: :math:`\epsilon \geq 0`, added inside the square root.
    mu_dtype: dtype of the accumulators `mu` (default: the params'); not in optax.
    nu_dtype: dtype of the momentum `nu` (default: the params'); not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleBySM3State(mu, nu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_sm3(b1=0.0)
    >>> tx.update(jnp.asarray([2.0, -3.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [1.0, -1.0]

  References:
    Anil et al., "Memory-Efficient Adaptive Optimization", NeurIPS 2019 (Algorithm SM3-II).
    https://arxiv.org/abs/1901.11150
  """
  fn = "scale_by_sm3"
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    # A scalar leaf keeps one accumulator of shape () (optax keeps none and fails in update).
    mu = jax.tree.map(
        lambda p: [_zeros_for_axis(p, i, mu_dtype) for i in range(p.ndim)] if p.ndim else
        [jnp.zeros((), mu_dtype or p.dtype)], params)
    nu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=nu_dtype), params)
    return ScaleBySM3State(mu=mu, nu=nu)

  if isinstance(b2, (int, float)):  # static, as optax: a plain sum of squares when b2 == 1
    c = (1.0 - b2) if b2 != 1.0 else 1.0
  else:
    c = None

  def new_accum(g, mu):
    coeff = c if c is not None else jnp.where(b2 != 1.0, 1.0 - b2, 1.0)
    if g.ndim < 2:
      return coeff * g**2 + b2 * mu[0].reshape(g.shape)  # nu = c g^2 + b2 mu
    # `mu[i]`, not iteration: flax nnx writes the per-leaf list back as a dict {0: ..., 1: ...}.
    expanded = [jnp.reshape(mu[i], _expanded_shape(g.shape, i)) for i in range(g.ndim)]
    return coeff * g**2 + b2 * functools.reduce(jnp.minimum, expanded)  # c g^2 + b2 min_r mu_r

  def new_mu(accum, mu):
    if accum.ndim < 2:
      return [accum.astype(mu[0].dtype)]
    return [jnp.max(accum, axis=_other_axes(i, accum.ndim)).astype(mu[i].dtype)  # max, others
            for i in range(accum.ndim)]

  def update_leaf(g, mu, nu):
    accum = new_accum(g, mu)
    up = g * jnp.where(accum > 0, jax.lax.rsqrt(accum + eps), 0.0)  # g / sqrt(nu + eps)
    m = ((1 - b1) * up + b1 * nu).astype(nu.dtype)  # m = (1 - b1) up + b1 m
    return _Leaf(m.astype(g.dtype), new_mu(accum, mu), m)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    out = jax.tree.map(lambda g, mu, nu: None if g is None else update_leaf(g, mu, nu),
                       updates, state.mu, state.nu, is_leaf=is_none)
    # `_Leaf` is not a pytree node, so it is a leaf of `out`; a None update keeps its state.
    pick = lambda field, old: jax.tree.map(
        lambda o, s: s if o is None else getattr(o, field), out, old, is_leaf=is_none)
    new_updates = jax.tree.map(lambda o: None if o is None else o.update, out, is_leaf=is_none)
    return new_updates, ScaleBySM3State(mu=pick("mu", state.mu), nu=pick("nu", state.nu))

  return GradientTransformation(init_fn, update_fn)
