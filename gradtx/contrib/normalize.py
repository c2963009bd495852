"""Normalize the whole update to unit norm (optax.contrib's `normalize`, SAM's helper)."""

from __future__ import annotations

import jax

from gradtx._trees import is_none
from gradtx.base import EmptyState, GradientTransformationExtraArgs
from gradtx.tree.arithmetic import norm

__all__ = ["normalize"]


def normalize() -> GradientTransformationExtraArgs:
  r"""Divides the updates by their global L2 norm (the ascent direction of SAM).

  .. math:: u_t = g_t / \|g_t\|_2 \quad (\text{the norm over all leaves})

  A zero gradient gives NaNs, as optax's. The state is `EmptyState()` (optax's
  `NormalizeState` is the same class).

  Returns:
    A stateless `GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.normalize()
    >>> tx.update({'a': jnp.asarray([3.0]), 'b': jnp.asarray([4.0])}, tx.init(None))[0]['b']
    Array([0.8], dtype=float32)

  References:
    Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for Efficiently Improving
    Generalization", ICLR 2021. https://arxiv.org/abs/2010.01412
  """

  def init_fn(params):
    del params
    return EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    g_norm = norm(updates)  # ||g||_2
    return jax.tree.map(lambda g: None if g is None else g / g_norm, updates,
                        is_leaf=is_none), state

  return GradientTransformationExtraArgs(init_fn, update_fn)
