"""Segmentation losses: soft Dice (and Tversky), its binary form, and the generalized Dice loss
with inverse-squared-frequency class weights.

Inputs are `[batch, *spatial, classes]`; one channel (or none) means binary segmentation, with
a sigmoid instead of a softmax.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._checks import check_bool, check_choice, check_scalar, is_tracer
from gradtx.losses import _validate

__all__ = ["binary_dice_loss", "dice_loss", "multiclass_generalized_dice_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_probabilities(fn: str, probs: jax.Array) -> None:
  """With `apply_softmax=False`, concrete predictions must be probabilities: each class vector
  sums to 1 (optax's test), or, with one channel, each value lies in [0, 1]. Traced predictions
  (under `jit`) cannot be read and are not checked."""
  if is_tracer(probs):
    return
  if probs.shape[-1] == 1:
    p = np.asarray(probs, dtype=np.float64)
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
      raise ValueError(
          f"gradtx.{fn}: with the sigmoid/softmax off, predictions of one channel must be "
          f"probabilities in [0, 1], found the range [{p.min():.6f}, {p.max():.6f}].")
    return
  sums = jnp.sum(probs, axis=-1)
  if not jnp.allclose(sums, 1.0, rtol=1e-5):
    raise ValueError(
        f"gradtx.{fn}: with apply_softmax=False, predictions must be probability "
        "distributions that sum to 1 along the class axis (the last); found sums in "
        f"[{float(jnp.min(sums)):.6f}, {float(jnp.max(sums)):.6f}].")


def _dice(fn: str, predictions: Any, targets: Any, *, class_weights: Any, smooth: Any,
          alpha: Any, beta: Any, apply_softmax: bool, reduction: str, ignore_background: bool,
          axis: Any, softmax_name: str = "apply_softmax") -> jax.Array:
  check_scalar(fn, "smooth", smooth, low=0.0)
  check_scalar(fn, "alpha", alpha, low=0.0)
  check_scalar(fn, "beta", beta, low=0.0)
  check_bool(fn, softmax_name, apply_softmax)
  check_bool(fn, "ignore_background", ignore_background)
  check_choice(fn, "reduction", reduction, _REDUCTIONS)
  predictions = _validate.floating(fn, "predictions", predictions)
  targets = _validate.real(fn, "targets", targets)
  if predictions.ndim == targets.ndim - 1:  # binary: add the channel axis
    predictions = predictions[..., None]
  if targets.ndim == predictions.ndim - 1:
    targets = targets[..., None]
  _validate.same_shape(fn, "predictions", predictions, "targets", targets)
  _validate.rank_at_least(fn, "predictions", predictions, 1)
  num_classes = predictions.shape[-1]
  if class_weights is not None:
    class_weights = _validate.real(fn, "class_weights", class_weights)
    if class_weights.shape != (num_classes,):
      raise ValueError(
          f"gradtx.{fn}: class_weights must have shape ({num_classes},) (one weight per class), "
          f"got {class_weights.shape}.")
  if axis is None:  # every spatial axis: all but the first (batch) and the last (classes)
    axis = tuple(range(1, predictions.ndim - 1))
  elif predictions.ndim - 1 in _validate.axes(fn, axis, predictions.ndim, allow_none=False):
    raise ValueError(f"gradtx.{fn}: axis={axis!r} includes the class axis (the last); the "
                     "Dice score is computed per class.")

  if not apply_softmax:
    _check_probabilities(fn, predictions)
    probs = predictions
  elif num_classes == 1:
    probs = jax.nn.sigmoid(predictions)
  else:
    probs = jax.nn.softmax(predictions, axis=-1)

  intersection = jnp.sum(probs * targets, axis=axis)
  pred_sum = jnp.sum(probs, axis=axis)
  target_sum = jnp.sum(targets, axis=axis)
  numerator = intersection + smooth
  denominator = (intersection + alpha * (pred_sum - intersection)
                 + beta * (target_sum - intersection) + smooth)
  loss = 1.0 - numerator / denominator  # [..., classes]
  if class_weights is not None:
    loss = loss * class_weights
  if ignore_background and num_classes > 1:
    loss = loss[..., 1:]
  if reduction == "mean":
    return jnp.mean(loss, axis=-1)
  if reduction == "sum":
    return jnp.sum(loss, axis=-1)
  return loss


def dice_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    class_weights: jax.typing.ArrayLike | None = None,
    smooth: jax.typing.ArrayLike = 1.,
    alpha: jax.typing.ArrayLike = 0.5,
    beta: jax.typing.ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Soft Dice loss per class (Tversky loss when `alpha != beta`), reduced over classes.

  Sums run over the spatial axes; :math:`\alpha` weighs false positives and :math:`\beta`
  false negatives (0.5 each: the Dice coefficient).

  .. math::
    I_c = \sum_i p_{ic} t_{ic}, \quad P_c = \sum_i p_{ic}, \quad T_c = \sum_i t_{ic}, \\
    \ell_c = 1 - \frac{I_c + s}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s}

  Args:
    predictions: floating-point logits `[..., classes]` (softmax), or `[..., 1]` / `[...]`
      (binary: sigmoid); probabilities :math:`p` if `apply_softmax` is False.
    targets: one-hot targets :math:`t` of the same shape (`[...]` or `[..., 1]` for binary).
    class_weights: optional weights `[classes]` multiplying each class's loss.
    smooth: :math:`s \ge 0`, added to numerator and denominator.
    alpha: :math:`\alpha \ge 0`, the weight of false positives.
    beta: :math:`\beta \ge 0`, the weight of false negatives.
    apply_softmax: whether `predictions` are logits (softmax, or sigmoid for one channel).
      If False, eager predictions are checked to be probabilities.
    reduction: over classes: "mean", "sum", or "none" (per-class losses).
    ignore_background: leave out class 0.
    axis: the axes summed over (default: all but the first and the last); never the last.

  Returns:
    The losses `[batch]` ("mean", "sum") or `[batch, classes]` ("none").

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> logits = jnp.array([[[4.0, -4.0], [-4.0, 4.0]]])  # [batch, pixels, classes]
    >>> targets = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> print(gradtx.losses.dice_loss(logits, targets).round(4))
    [0.0002]

  References:
    Milletari et al., `V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image
    Segmentation <https://arxiv.org/abs/1606.04797>`_, 3DV 2016.

    Salehi et al., `Tversky loss function for image segmentation using 3D fully convolutional
    deep networks <https://arxiv.org/abs/1706.05721>`_, MLMI 2017.
  """
  return _dice("losses.dice_loss", predictions, targets, class_weights=class_weights,
               smooth=smooth, alpha=alpha, beta=beta, apply_softmax=apply_softmax,
               reduction=reduction, ignore_background=ignore_background, axis=axis)


def multiclass_generalized_dice_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    smooth: jax.typing.ArrayLike = 1.,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
  r"""Generalized Dice loss: per-class Dice losses weighted by inverse squared class frequency.

  Rare classes weigh more. The weights are normalised to average 1, and the weighted per-class
  losses are averaged over batch and classes.

  .. math::
    f_c = \sum_{b, i} t_{bic}, \quad
    w_c = C \frac{(f_c^2 + 10^{-7})^{-1}}{\sum_k (f_k^2 + 10^{-7})^{-1}}, \quad
    \ell = \operatorname{mean}_{b, c}\; w_c\, \ell^{\mathrm{Dice}}_{bc}

  Args:
    predictions: floating-point logits `[..., classes]` (probabilities if `apply_softmax` is
      False).
    targets: one-hot targets of the same shape.
    smooth: :math:`s \ge 0` of the Dice loss.
    apply_softmax: whether `predictions` are logits.
    ignore_background: leave out class 0.

  Returns:
    The scalar loss.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> targets = jax.nn.one_hot(jnp.array([[0, 0, 0, 1]]), 2)
    >>> loss = gradtx.losses.multiclass_generalized_dice_loss(4.0 * (2 * targets - 1), targets)
    >>> bool(loss < 0.05)
    True

  References:
    Sudre et al., `Generalised Dice overlap as a deep learning loss function for highly
    unbalanced segmentations <https://arxiv.org/abs/1707.03237>`_, DLMIA 2017.
  """
  fn = "losses.multiclass_generalized_dice_loss"
  predictions = _validate.floating(fn, "predictions", predictions)
  targets = _validate.real(fn, "targets", targets)
  _validate.same_shape(fn, "predictions", predictions, "targets", targets)
  _validate.rank_at_least(fn, "predictions", predictions, 1)
  class_frequencies = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
  class_weights = 1.0 / (class_frequencies**2 + 1e-7)
  class_weights = class_weights / jnp.sum(class_weights) * len(class_weights)
  return jnp.mean(_dice(fn, predictions, targets, class_weights=class_weights, smooth=smooth,
                        alpha=0.5, beta=0.5, apply_softmax=apply_softmax, reduction="none",
                        ignore_background=ignore_background, axis=None))


def binary_dice_loss(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    smooth: jax.typing.ArrayLike = 1.,
    apply_sigmoid: bool = True,
) -> jax.Array:
  r"""Dice loss for binary segmentation (one channel, a sigmoid).

  `dice_loss` on inputs given one channel axis if they have none; see it for the equation.

  .. math::
    \ell = 1 - \frac{2 \sum_i p_i t_i + 2 s}{\sum_i p_i + \sum_i t_i + 2 s}

  Args:
    predictions: floating-point logits `[...]` or `[..., 1]` (probabilities in [0, 1] if
      `apply_sigmoid` is False).
    targets: binary targets `[...]` or `[..., 1]`.
    smooth: :math:`s \ge 0`.
    apply_sigmoid: whether `predictions` are logits.

  Returns:
    The losses `[batch]`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p, t = jnp.array([[0.9, 0.1]]), jnp.array([[1.0, 0.0]])
    >>> print(gradtx.losses.binary_dice_loss(p, t, apply_sigmoid=False).round(4))
    [0.05]

  References:
    Milletari et al., `V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image
    Segmentation <https://arxiv.org/abs/1606.04797>`_, 3DV 2016.
  """
  fn = "losses.binary_dice_loss"
  predictions = _validate.floating(fn, "predictions", predictions)
  targets = _validate.real(fn, "targets", targets)
  if predictions.ndim == targets.ndim and predictions.ndim and predictions.shape[-1] != 1:
    predictions = predictions[..., None]
    targets = targets[..., None]
  return _dice(fn, predictions, targets, class_weights=None, smooth=smooth, alpha=0.5, beta=0.5,
               apply_softmax=apply_sigmoid, reduction="mean", ignore_background=False,
               axis=None, softmax_name="apply_sigmoid")
