"""Fenchel-Young losses built from a max (regularised argmax) function."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

__all__ = ["make_fenchel_young_loss"]


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., jax.Array]:
  r"""Builds the Fenchel-Young loss of a max function, as optax's.

  A convex, smooth "max" `f` (`logsumexp` for softmax, the sparsemax conjugate, ...) gives the
  loss `f(s) - <y, s>`, whose gradient `grad f(s) - y` is the prediction minus the target. The
  returned loss works over the last axis, with any number of leading axes.

  .. math:: \ell(s, y) = f(s) - \langle y, s \rangle

  Args:
    max_fun: the max function `f`, mapping a vector of scores (and any extra arguments) to a
      scalar.

  Returns:
    `fenchel_young_loss(scores, targets, *args, **kwargs)`, with `scores` and `targets` of shape
    `[..., n]`; the extra arguments go to `max_fun`. Returns shape `[...]`.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> from jax.scipy.special import logsumexp
    >>> loss = gradtx.losses.make_fenchel_young_loss(max_fun=logsumexp)
    >>> print(np.asarray(loss(jnp.array([[1.0, 2.0, 3.0]]), jnp.array([[0.0, 0.0, 1.0]]))).round(4))
    [0.4076]

  References:
    Blondel, Martins and Niculae, `Learning with Fenchel-Young Losses
    <https://arxiv.org/abs/1901.02324>`_, JMLR 2020.
  """
  if not callable(max_fun):
    raise TypeError(f"gradtx.losses.make_fenchel_young_loss: max_fun must be callable, got "
                    f"{type(max_fun).__name__} {max_fun!r}.")
  vdot_last_dim = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")
  max_fun_last_dim = jnp.vectorize(max_fun, signature="(n)->()")

  def fenchel_young_loss(scores, targets, *args, **kwargs):
    """The Fenchel-Young loss `max_fun(scores) - <targets, scores>` over the last axis."""
    if jnp.ndim(scores) < 1 or jnp.shape(targets)[-1:] != jnp.shape(scores)[-1:]:
      raise ValueError(
          "gradtx.losses.make_fenchel_young_loss: targets of shape "
          f"{jnp.shape(targets)} must have the last axis of scores {jnp.shape(scores)}.")
    max_value = max_fun_last_dim(scores, *args, **kwargs)
    return max_value - vdot_last_dim(targets, scores)

  return fenchel_young_loss
