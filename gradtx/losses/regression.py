"""Regression losses: squared error, L2, Huber and log-cosh, elementwise.

Each returns one loss per element of `predictions` (reduce it yourself, e.g. `.mean()`), with
optax's arithmetic, so the values are bit-identical to optax's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._checks import check_scalar
from gradtx.losses import _validate

__all__ = ["huber_loss", "l2_loss", "log_cosh", "squared_error"]


def _errors(fn: str, predictions, targets, *, same_shape: bool):
  """`predictions - targets` (or `predictions` when `targets` is None), after the checks."""
  predictions = _validate.floating(fn, "predictions", predictions)
  if targets is None:
    return predictions
  targets = _validate.real(fn, "targets", targets)
  if same_shape:
    _validate.same_shape(fn, "predictions", predictions, "targets", targets)
  else:
    _validate.broadcasts_to(fn, "targets", targets, np.shape(predictions), "predictions")
  return predictions - targets


def squared_error(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Elementwise squared error.

  The mean squared error is `squared_error(predictions, targets).mean()`.

  .. math::
    \ell_i = (p_i - t_i)^2

  Args:
    predictions: floating-point array of any shape `[...]` (:math:`p`).
    targets: array of the same shape (:math:`t`); None means zeros.

  Returns:
    The squared errors, with the shape of `predictions`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.losses.squared_error(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])).tolist()
    [1.0, 4.0]

  References:
    `optax.losses.squared_error` (optax 0.2.8).
  """
  errors = _errors("losses.squared_error", predictions, targets, same_shape=True)
  return errors**2


def l2_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Elementwise L2 loss: half the squared error.

  The factor 1/2 (as in Bishop's "Pattern Recognition and Machine Learning") makes the gradient
  the plain residual.

  .. math::
    \ell_i = \tfrac{1}{2} (p_i - t_i)^2

  Args:
    predictions: floating-point array of any shape `[...]` (:math:`p`).
    targets: array of the same shape (:math:`t`); None means zeros.

  Returns:
    The losses, with the shape of `predictions`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.losses.l2_loss(jnp.array([1.0, 2.0])).tolist()
    [0.5, 2.0]

  References:
    `optax.losses.l2_loss` (optax 0.2.8).
  """
  errors = _errors("losses.l2_loss", predictions, targets, same_shape=True)
  return 0.5 * errors**2


def huber_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike | None = None,
    *,
    delta: jax.typing.ArrayLike = 1.0,
) -> jax.Array:
  r"""Elementwise Huber loss: quadratic near zero, linear beyond `delta`.

  Gradient descent on it equals descent on `l2_loss` with the residual clipped to
  `[-delta, delta]`.

  .. math::
    e = |p - t|, \quad q = \min(e, \delta), \quad
    \ell = \tfrac{1}{2} q^2 + \delta (e - q)

  Args:
    predictions: floating-point array of any shape `[...]` (:math:`p`).
    targets: array broadcasting to the shape of `predictions` (:math:`t`); None means zeros.
    delta: the threshold :math:`\delta \ge 0` between the quadratic and the linear part.

  Returns:
    The losses, with the shape of `predictions`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.losses.huber_loss(jnp.array([0.5, 3.0]), delta=1.0).tolist()
    [0.125, 2.5]

  References:
    Huber, `Robust Estimation of a Location Parameter
    <https://doi.org/10.1214/aoms/1177703732>`_, Annals of Mathematical Statistics, 1964.
  """
  fn = "losses.huber_loss"
  check_scalar(fn, "delta", delta, low=0.0)
  errors = _errors(fn, predictions, targets, same_shape=False)
  abs_errors = jnp.abs(errors)
  quadratic = jnp.minimum(abs_errors, delta)
  linear = abs_errors - quadratic  # max(|e| - delta, 0), with one gradient path, as optax
  return 0.5 * quadratic**2 + delta * linear


def log_cosh(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Elementwise log-cosh loss: a twice-differentiable Huber-like loss.

  It is about :math:`e^2/2` for a small error and :math:`|e| - \log 2` for a large one, and is
  computed stably as a log-sum-exp.

  .. math::
    \ell = \log\cosh(p - t) = \log\left(e^{p-t} + e^{t-p}\right) - \log 2

  Args:
    predictions: floating-point array of any shape `[...]` (:math:`p`).
    targets: array broadcasting to the shape of `predictions` (:math:`t`); None means zeros.

  Returns:
    The losses, with the shape of `predictions`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.losses.log_cosh(jnp.array([0.0, 100.0])).tolist()
    [0.0, 99.30685424804688]

  References:
    Chen et al., `Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder
    <https://openreview.net/pdf?id=rkglvsC9Ym>`_, 2019.
  """
  errors = _errors("losses.log_cosh", predictions, targets, same_shape=False)
  return jnp.logaddexp(errors, -errors) - jnp.log(2.0).astype(errors.dtype)
