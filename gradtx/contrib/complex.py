"""Complex parameters as pairs of real ones (optax.contrib's `split_real_and_imaginary`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs

__all__ = [
    "SplitRealAndImaginaryState",
    "split_real_and_imaginary",
]


class SplitRealAndImaginaryArrays(NamedTuple):
  """A complex array split into two real ones (optax's class name, kept in the inner state)."""

  real: Any
  imaginary: Any


def _split(x: Any) -> Any:
  return SplitRealAndImaginaryArrays(x.real, x.imag) if jnp.iscomplexobj(x) else x


def _merge(x: Any) -> Any:
  return x.real + x.imaginary * 1j if isinstance(x, SplitRealAndImaginaryArrays) else x


def _is_pair(x: Any) -> bool:
  return isinstance(x, SplitRealAndImaginaryArrays)


class SplitRealAndImaginaryState(NamedTuple):
  """State of `split_real_and_imaginary`: the inner transformation's state.

  Attributes:
    inner_state: the inner transformation's state (on the real pairs).
  """

  inner_state: Any


def split_real_and_imaginary(inner: GradientTransformation) -> GradientTransformationExtraArgs:
  r"""Runs `inner` on the real and imaginary parts of complex leaves as two real leaves.

  An optimizer that is not written for complex numbers (Adam's :math:`g^2`, say) then treats
  :math:`z = x + iy` as the real pair :math:`(x, y)`; real leaves pass unchanged. Note that
  `jax.grad` of a real loss returns :math:`\overline{\partial L / \partial \bar z}`: conjugate
  the gradients before `update` for descent.

  .. math:: (u_x, u_y) = \text{inner}(g_x, g_y), \qquad u = u_x + i\,u_y

  Args:
    inner: the transformation to run on the real pairs.

  Returns:
    A `GradientTransformationExtraArgs` with state `SplitRealAndImaginaryState(inner_state)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.split_real_and_imaginary(gradtx.scale_by_sign())
    >>> tx.update(jnp.asarray([3 - 2j]), tx.init(jnp.zeros(1, jnp.complex64)))[0]
    Array([1.-1.j], dtype=complex64)

  References:
    optax issue 196, "Complex-valued optimization", 2021.
    https://github.com/deepmind/optax/issues/196
  """
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError("gradtx.split_real_and_imaginary: inner must be a GradientTransformation, "
                    f"got {type(inner).__name__} {inner!r}.")

  def init_fn(params):
    return SplitRealAndImaginaryState(inner.init(jax.tree.map(_split, params)))

  def update_fn(updates, state, params=None, **extra_args):
    updates = jax.tree.map(_split, updates, is_leaf=is_none)
    params = jax.tree.map(_split, params, is_leaf=is_none)
    kwargs = extra_args if _checks.accepts_extra_args(inner.update) else {}
    updates, inner_state = inner.update(updates, state.inner_state, params, **kwargs)
    updates = jax.tree.map(_merge, updates, is_leaf=_is_pair)
    return updates, SplitRealAndImaginaryState(inner_state)

  return GradientTransformationExtraArgs(init_fn, update_fn)
