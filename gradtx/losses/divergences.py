"""Kullback-Leibler divergences between a target distribution and predicted log-probabilities.

Zero target probabilities contribute 0 (the convention :math:`0 \\log 0 = 0`), with finite
gradients, also where the prediction's log-probability is -inf too; elsewhere the values are
optax's, bit for bit.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from gradtx.losses import _validate

__all__ = ["convex_kl_divergence", "generalized_kl_divergence", "kl_divergence",
           "kl_divergence_with_log_targets"]

Axis = int | tuple[int, ...] | None


def _checked(fn, log_predictions, targets, axis, where, targets_name="targets"):
  log_predictions = _validate.floating(fn, "log_predictions", log_predictions)
  targets = _validate.floating(fn, targets_name, targets)
  shape = _validate.pair_over_axes(fn, "log_predictions", log_predictions, targets_name, targets,
                                   axis)
  where = _validate.where_mask(fn, where, shape, f"log_predictions and {targets_name}")
  return log_predictions, targets, where


def _kl(log_predictions, targets, axis, where):
  zero = targets == 0
  # log(t) only where t != 0 (a double `where`, so that no inf reaches the gradient); a zero
  # target's term is 0 even when log_predictions is -inf there (optax: 0 * inf = NaN).
  log_targets = jnp.where(zero, 0, jnp.log(jnp.where(zero, 1, targets)))
  loss = jnp.where(zero, 0, targets * (log_targets - log_predictions))
  return jnp.sum(loss, axis=axis, where=where)


def kl_divergence(
    log_predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Kullback-Leibler divergence of the predicted distribution from the target one.

  The information lost when the predictions approximate the targets. Terms with a zero target
  are 0, with a zero gradient.

  .. math::
    \mathrm{KL}(t \,\|\, q) = \sum_i t_i (\log t_i - \log q_i)

  Args:
    log_predictions: floating-point log-probabilities :math:`\log q`, shape `[..., dim]`.
    targets: floating-point probabilities :math:`t \ge 0`, broadcasting against
      `log_predictions` (not along `axis`).
    axis: the axis or axes of the distributions (None: all axes).
    where: optional boolean mask of the elements included in the sum.

  Returns:
    The divergences, with the reduced axes removed.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> q = jnp.log(jnp.array([0.5, 0.5]))
    >>> print(f"{gradtx.losses.kl_divergence(q, jnp.array([1.0, 0.0])):.4f}")
    0.6931

  References:
    Kullback and Leibler, `On Information and Sufficiency
    <https://doi.org/10.1214/aoms/1177729694>`_, Annals of Mathematical Statistics, 1951.
  """
  log_predictions, targets, where = _checked(
      "losses.kl_divergence", log_predictions, targets, axis, where)
  return _kl(log_predictions, targets, axis, where)


def kl_divergence_with_log_targets(
    log_predictions: jax.typing.ArrayLike,
    log_targets: jax.typing.ArrayLike,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Kullback-Leibler divergence with the targets given as log-probabilities.

  Terms with :math:`\log t_i = -\infty` (a zero target) are 0, with a zero gradient (optax
  gives NaN there: :math:`0 \cdot (-\infty)`).

  .. math::
    \mathrm{KL}(t \,\|\, q) = \sum_i e^{\log t_i} (\log t_i - \log q_i)

  Args:
    log_predictions: floating-point log-probabilities :math:`\log q`, shape `[..., dim]`.
    log_targets: floating-point log-probabilities :math:`\log t`, broadcasting against
      `log_predictions` (not along `axis`).
    axis: the axis or axes of the distributions (None: all axes).
    where: optional boolean mask of the elements included in the sum.

  Returns:
    The divergences, with the reduced axes removed.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> q = jnp.log(jnp.array([0.5, 0.5]))
    >>> t = jnp.array([0.0, -jnp.inf])
    >>> print(f"{gradtx.losses.kl_divergence_with_log_targets(q, t):.4f}")
    0.6931

  References:
    Kullback and Leibler, `On Information and Sufficiency
    <https://doi.org/10.1214/aoms/1177729694>`_, Annals of Mathematical Statistics, 1951.
  """
  log_predictions, log_targets, where = _checked(
      "losses.kl_divergence_with_log_targets", log_predictions, log_targets, axis, where,
      targets_name="log_targets")
  zero = jnp.isneginf(log_targets)
  safe = jnp.where(zero, 0, log_targets)
  loss = jnp.where(zero, 0, jnp.exp(safe) * (safe - log_predictions))
  return jnp.sum(loss, axis=axis, where=where)


def _generalized_kl(fn, log_predictions, targets, axis, where):
  log_predictions, targets, where = _checked(fn, log_predictions, targets, axis, where)
  x = _kl(log_predictions, targets, axis, where)
  y = jnp.sum(jnp.exp(log_predictions) - targets, axis=axis, where=where)
  return x + y


def generalized_kl_divergence(
    log_predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Generalized Kullback-Leibler divergence, for unnormalized distributions.

  The Bregman divergence of :math:`f(x) = x \log x - x`; it equals `kl_divergence` when both
  sides sum to one.

  .. math::
    D(t \,\|\, q) = \sum_i t_i (\log t_i - \log q_i) + \sum_i (q_i - t_i)

  Args:
    log_predictions: floating-point log-values :math:`\log q`, shape `[..., dim]`.
    targets: floating-point non-negative values :math:`t`, broadcasting against
      `log_predictions` (not along `axis`).
    axis: the axis or axes of the distributions (None: all axes).
    where: optional boolean mask of the elements included in the sums.

  Returns:
    The divergences, with the reduced axes removed.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> q = jnp.log(jnp.array([1.0, 2.0]))
    >>> print(f"{gradtx.losses.generalized_kl_divergence(q, jnp.ones(2)):.4f}")
    0.3069

  References:
    Boyd and Vandenberghe, `Convex Optimization
    <https://stanford.edu/~boyd/cvxbook/bv_cvxbook.pdf>`_, Cambridge University Press, 2004,
    p. 90.

    Bregman, `The relaxation method of finding the common point of convex sets and its
    application to the solution of problems in convex programming
    <https://doi.org/10.1016/0041-5553(67)90040-7>`_, USSR Computational Mathematics and
    Mathematical Physics, 1967.
  """
  return _generalized_kl("losses.generalized_kl_divergence", log_predictions, targets, axis,
                         where)


def convex_kl_divergence(
    log_predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Deprecated name of `generalized_kl_divergence` (emits a DeprecationWarning, as optax's).

  .. math::
    D(t \,\|\, q) = \sum_i t_i (\log t_i - \log q_i) + \sum_i (q_i - t_i)

  Args:
    log_predictions: floating-point log-values :math:`\log q`, shape `[..., dim]`.
    targets: floating-point non-negative values :math:`t`.
    axis: the axis or axes of the distributions (None: all axes).
    where: optional boolean mask of the elements included in the sums.

  Returns:
    The divergences, with the reduced axes removed.

  Example:
    >>> import warnings, jax.numpy as jnp, gradtx
    >>> with warnings.catch_warnings():
    ...   warnings.simplefilter("ignore", DeprecationWarning)
    ...   d = gradtx.losses.convex_kl_divergence(jnp.zeros(2), jnp.ones(2))
    >>> d.tolist()
    0.0

  References:
    Boyd and Vandenberghe, `Convex Optimization
    <https://stanford.edu/~boyd/cvxbook/bv_cvxbook.pdf>`_, Cambridge University Press, 2004,
    p. 90.
  """
  warnings.warn(
      "The function convex_kl_divergence is deprecated. Please use generalized_kl_divergence "
      "instead.", category=DeprecationWarning, stacklevel=2)
  return _generalized_kl("losses.convex_kl_divergence", log_predictions, targets, axis, where)
