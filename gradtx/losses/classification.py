"""Classification losses: softmax and sigmoid cross entropies, their smoothed, focal and polynomial
variants, and the hinge and perceptron margins, with optax's signatures and numerics.

Every loss reduces over the class axis (or axes) and keeps the batch axes. Shapes and dtypes are
checked in Python at trace time and errors name the argument; label values are traced, so an
integer label outside `[-num_classes, num_classes)` gives a NaN loss and NaN gradients (a label
in `[-num_classes, 0)` counts from the end, as NumPy indexing and optax's cross entropy do).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from gradtx.losses import _validate

__all__ = [
    "hinge_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]

Axis = Any  # int | tuple[int, ...] | None


def softmax_cross_entropy(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Softmax cross entropy between logits and probability labels, as optax's.

  The negative log-likelihood of the label distribution under the softmax of the logits
  (categorical cross entropy). A zero label on a `-inf` logit contributes `0` (the convention
  `0 log 0 = 0`), so masking classes with `-inf` logits gives finite values and gradients.

  .. math:: \ell_i = -\sum_j y_{ij} \log \frac{e^{x_{ij}}}{\sum_k e^{x_{ik}}}

  Args:
    logits: unnormalised log-probabilities `x`, floating, shape `[..., num_classes]`.
    labels: probabilities `y` (e.g. one-hot rows), floating, broadcastable to `logits`.
    axis: the class axis or axes to reduce over.
    where: elements to include, of the batch shape or of `logits`' shape; a row with no
      element included gives `0`.

  Returns:
    The cross entropy per example, `logits`' shape without `axis`.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> print(np.asarray(gradtx.softmax_cross_entropy(logits, labels)).round(4))
    [0.2761 2.9518]

  References:
    Bishop, `Pattern Recognition and Machine Learning`, Springer 2006, eq. (4.108).
  """
  fn = "softmax_cross_entropy"
  logits = _validate.floating(fn, "logits", logits)
  labels = _validate.probabilities(fn, labels)
  _validate.broadcasts_to(fn, "labels", labels, logits.shape, "logits")
  where = _validate.expand_where(fn, where, axis, logits.shape)
  log_probs = jax.nn.log_softmax(logits, axis, where)
  # 0 * log(0) = 0: a zero label on a -inf logit would otherwise give 0 * -inf = NaN (optax).
  # (Promoted first, as optax's product promotes it, so XLA fuses the bf16 case alike.)
  log_probs = log_probs.astype(jnp.result_type(labels, log_probs))
  log_probs = jnp.where((labels == 0) & jnp.isneginf(log_probs), 0, log_probs)
  return -(labels * log_probs).sum(axis, where=where)


def safe_softmax_cross_entropy(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Softmax cross entropy over the last axis with `0 log 0 = 0`, as optax's.

  The same loss as `softmax_cross_entropy`, computed by a weighted log-softmax whose custom
  derivative stays finite where a zero label meets a `-inf` logit.

  .. math:: \ell_i = -\sum_j [y_{ij} \ne 0]\, y_{ij} \log \operatorname{softmax}(x_i)_j

  Args:
    logits: unnormalised log-probabilities `x`, floating, shape `[..., num_classes]`.
    labels: probabilities `y`, floating, broadcastable to `logits`.

  Returns:
    The cross entropy per example, shape `logits.shape[:-1]`.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> logits = jnp.array([[0.0, -jnp.inf, 1.0]])
    >>> loss = gradtx.safe_softmax_cross_entropy(logits, jnp.array([[1.0, 0.0, 0.0]]))
    >>> print(np.asarray(loss).round(4))
    [1.3133]

  References:
    Bishop, `Pattern Recognition and Machine Learning`, Springer 2006, eq. (4.108).
  """
  fn = "safe_softmax_cross_entropy"
  logits = _validate.floating(fn, "logits", logits)
  labels = _validate.probabilities(fn, labels)
  _validate.broadcasts_to(fn, "labels", labels, logits.shape, "logits")
  return -jnp.sum(_weighted_log_softmax(logits, labels), axis=-1)


@jax.custom_jvp
def _weighted_log_softmax(x: jax.Array, weights: jax.Array) -> jax.Array:
  """`weights * log_softmax(x)` over the last axis, `0` where a weight is `0`."""
  log_softmax = jax.nn.log_softmax(x, axis=-1)
  return jnp.where(weights != 0.0, weights * log_softmax, jnp.zeros_like(log_softmax))


@_weighted_log_softmax.defjvp
def _weighted_log_softmax_jvp(primals, tangents):
  (x, weights), (x_dot, weights_dot) = primals, tangents
  log_softmax = jax.nn.log_softmax(x, axis=-1)
  out = jnp.where(weights != 0.0, weights * log_softmax, jnp.zeros_like(log_softmax))
  out_dot = (weights * x_dot
             - weights * jnp.sum(x_dot * jax.nn.softmax(x, axis=-1), axis=-1, keepdims=True)
             + weights_dot * log_softmax)
  return out, out_dot


def softmax_cross_entropy_with_integer_labels(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    axis: int | tuple[int, ...] = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Softmax cross entropy between logits and integer class labels, as optax's.

  The log-normaliser minus the label's logit, without forming the whole log-softmax. Its
  derivative is `softmax(x) - onehot(y)`, formed by a select rather than a scatter.

  .. math:: \ell_i = \log \sum_j e^{x_{ij}} - x_{i y_i}

  Args:
    logits: unnormalised log-probabilities `x`, floating, shape `[..., num_classes]`.
    labels: integer class indices `y`, the batch shape (`logits`' shape without `axis`). A
      label in `[-num_classes, 0)` counts from the end (NumPy indexing); one outside
      `[-num_classes, num_classes)` gives NaN (loss and gradients).
    axis: the class axis, or a tuple of axes whose flattened (row-major) index is the label.
    where: elements to include, of the batch shape or of `logits`' shape; a row with no
      element included gives `0`.

  Returns:
    The cross entropy per example, of the batch shape.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    >>> loss = gradtx.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1]))
    >>> print(np.asarray(loss).round(4))
    [0.2761 2.9518]

  References:
    Bishop, `Pattern Recognition and Machine Learning`, Springer 2006, eq. (4.108).
  """
  fn = "softmax_cross_entropy_with_integer_labels"
  logits = _validate.floating(fn, "logits", logits)
  labels = _validate.integer_labels(fn, labels)
  if not isinstance(axis, (int, tuple)) or isinstance(axis, bool):
    raise TypeError(f"gradtx.{fn}: axis must be an int or a tuple of ints, got {axis!r}.")
  axes = _validate.axes(fn, axis, logits.ndim, allow_none=False)
  where = _validate.expand_where(fn, where, axis, logits.shape)
  if isinstance(axis, int):
    axis = axes[0]
  else:  # the class axes go last, flattened into one (row-major in the order given)
    batch_axes = tuple(a for a in range(logits.ndim) if a not in axes)
    if where is not None:  # optax reshapes where alike; broadcast first so any mask shape works
      where = jnp.broadcast_to(where, logits.shape).transpose(batch_axes + axes)
      where = where.reshape(where.shape[:len(batch_axes)] + (-1,))
    logits = logits.transpose(batch_axes + axes)
    logits = logits.reshape(logits.shape[:len(batch_axes)] + (-1,))
    axis = len(batch_axes)
  batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
  _validate.broadcasts_to(fn, "labels", labels, batch_shape,
                          "the batch (logits without the class axis)")
  labels, factor = _validate.label_validity(labels, logits.shape[axis], logits.dtype)
  if where is None:
    return _integer_label_cross_entropy(logits, labels, axis) * factor
  label_logits = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis).take(
      0, axis=axis)
  out = (jax.nn.logsumexp(logits, axis=axis, where=where) - label_logits) * factor
  return jnp.where(jnp.any(where, axis), out, 0.0)


def _log_normaliser(logits: jax.Array, axis: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`jax.nn.logsumexp`'s arithmetic, also returning `exp(x - max)` and its sum for the JVP."""
  amax = jnp.max(logits, axis, initial=-jnp.inf)
  amax = lax.stop_gradient(lax.select(jnp.isfinite(amax), amax, jnp.zeros_like(amax)))
  exp_a = jnp.exp(logits - jnp.expand_dims(amax, axis))
  sumexp = abs(exp_a.sum(axis))
  return jnp.log(sumexp) + amax, exp_a, sumexp


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _integer_label_cross_entropy(logits: jax.Array, labels: jax.Array, axis: int) -> jax.Array:
  label_logits = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis).take(
      0, axis=axis)
  return _log_normaliser(logits, axis)[0] - label_logits


@_integer_label_cross_entropy.defjvp
def _integer_label_cross_entropy_jvp(axis, primals, tangents):
  # The tangent is sum(exp_a * dx) / sumexp - dx[label]. Reverse mode transposes it into
  # optax's gradient exp_a * (g / sumexp) - onehot * g, in the same arithmetic (bit-identical),
  # but the label term is a select against an iota instead of the scatter-add that transposing
  # take_along_axis gives; forward mode (jvp, jacfwd, hessian) keeps working.
  (logits, labels), (logits_dot, _) = primals, tangents
  lse, exp_a, sumexp = _log_normaliser(logits, axis)
  label_logits = jnp.take_along_axis(logits, jnp.expand_dims(labels, axis), axis=axis).take(
      0, axis=axis)
  onehot = lax.broadcasted_iota(labels.dtype, logits.shape, axis) == jnp.expand_dims(labels, axis)
  lse_dot = jnp.sum(exp_a * logits_dot, axis) / sumexp
  label_dot = jnp.sum(jnp.where(onehot, logits_dot, jnp.zeros_like(logits_dot)), axis)
  return lse - label_logits, lse_dot - label_dot


def poly_loss_cross_entropy(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    epsilon: jax.typing.ArrayLike = 2.0,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Poly-1 loss: softmax cross entropy plus `epsilon` times `1 - p_t`, as optax's.

  The first term of the Taylor expansion of cross entropy in `(1 - p_t)` gets the weight
  `1 + epsilon` instead of `1` (PolyLoss with one tuned coefficient).

  .. math:: \ell_i = -\sum_j y_{ij} \log p_{ij} + \epsilon \sum_j y_{ij} (1 - p_{ij}),
     \quad p_i = \operatorname{softmax}(x_i)

  Args:
    logits: unnormalised log-probabilities `x`, floating, shape `[..., num_classes]`.
    labels: probabilities `y`, floating, broadcastable to `logits`.
    epsilon: the coefficient of the first polynomial term (2.0 for ImageNet classification,
      -1.0 for detection in the paper); finite.
    axis: the class axis or axes to reduce over.
    where: elements to include, of the batch shape or of `logits`' shape.

  Returns:
    The loss per example, `logits`' shape without `axis`.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> logits = jnp.array([[1.2, -0.8, -0.5]])
    >>> labels = jnp.array([[1.0, 0.0, 0.0]])
    >>> print(np.asarray(gradtx.losses.poly_loss_cross_entropy(logits, labels)).round(4))
    [0.7587]

  References:
    Leng et al., `PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions <https://arxiv.org/abs/2204.12511>`_, ICLR 2022.
  """
  fn = "losses.poly_loss_cross_entropy"
  logits = _validate.floating(fn, "logits", logits)
  labels = _validate.probabilities(fn, labels)
  _validate.check_real(fn, "epsilon", epsilon)
  _validate.broadcasts_to(fn, "labels", labels, logits.shape, "logits")
  where = _validate.expand_where(fn, where, axis, logits.shape)
  p = jax.nn.softmax(logits, axis=axis, where=where)
  one_minus_pt = jnp.sum(labels * (1 - p), axis=axis, where=where)
  cross_entropy = softmax_cross_entropy(logits, labels, axis=axis, where=where)
  return cross_entropy + epsilon * one_minus_pt


def smooth_labels(
    labels: jax.typing.ArrayLike,
    alpha: jax.typing.ArrayLike,
    *,
    axis: Axis = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Label smoothing: mixes the labels with the uniform distribution, as optax's.

  Smoothed targets favour small logit gaps, which calibrates the model better than one-hot
  targets. With `where`, the uniform part spreads over the included classes of each row; a row
  with no class included is only scaled by `1 - alpha` (optax divides by zero there).

  .. math:: \tilde y_{ij} = (1 - \alpha)\, y_{ij} + \alpha / K_i

  Args:
    labels: one-hot (or probability) labels `y`, floating.
    alpha: the smoothing factor, in [0, 1].
    axis: the class axis or axes; `K_i` is their size.
    where: classes to include, broadcastable to `labels`; `K_i` is the count included.

  Returns:
    The smoothed labels, `labels`' shape.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> print(gradtx.smooth_labels(jnp.array([0.0, 1.0, 0.0, 0.0]), 0.2))
    [0.05 0.85 0.05 0.05]

  References:
    Müller, Kornblith and Hinton, `When does label smoothing help?
    <https://arxiv.org/abs/1906.02629>`_, NeurIPS 2019.
  """
  fn = "smooth_labels"
  labels = _validate.floating(fn, "labels", labels)
  _validate.check_unit_interval(fn, "alpha", alpha)
  if where is None:
    return (1.0 - alpha) * labels + alpha / jnp.size(labels, axis)
  where = jnp.asarray(where)
  _validate.broadcasts_to(fn, "where", where, labels.shape, "labels")
  num_categories = jnp.sum(where, axis, keepdims=True)
  some = num_categories > 0
  uniform = jnp.where(some, alpha / jnp.where(some, num_categories, 1), 0)
  return (1.0 - alpha) * labels + uniform


def sigmoid_binary_cross_entropy(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Element-wise sigmoid (binary) cross entropy, as optax's.

  Each element is an independent binary prediction (multi-label classification), computed
  with `log_sigmoid` for stability.

  .. math:: \ell = -y \log \sigma(x) - (1 - y) \log \sigma(-x)

  Args:
    logits: logits `x` of class 1, floating.
    labels: binary labels in {0, 1} (any dtype) or target probabilities, broadcastable to
      `logits` (a larger shape is an error, not a silent outer product).

  Returns:
    The cross entropy of each element, `logits`' shape.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> out = gradtx.sigmoid_binary_cross_entropy(jnp.array([0.0, 2.0]), jnp.array([1, 0]))
    >>> print(np.asarray(out).round(4))
    [0.6931 2.1269]

  References:
    Goodfellow, Bengio and Courville, `Deep Learning
    <http://www.deeplearningbook.org/contents/prob.html>`_, MIT Press 2016, sec. 6.2.2.2.
  """
  fn = "sigmoid_binary_cross_entropy"
  logits = _validate.floating(fn, "logits", logits)
  _validate.broadcasts_to(fn, "labels", labels, logits.shape, "logits")
  labels = jnp.astype(labels, logits.dtype)
  log_p = jax.nn.log_sigmoid(logits)
  log_not_p = jax.nn.log_sigmoid(-logits)  # log(1 - sigmoid(x)), stably
  return -labels * log_p - (1.0 - labels) * log_not_p


def sigmoid_focal_loss(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    alpha: jax.typing.ArrayLike | None = None,
    gamma: jax.typing.ArrayLike = 2.0,
) -> jax.Array:
  r"""Sigmoid focal loss: cross entropy down-weighted on well-classified elements, as optax's.

  The factor `(1 - p_t)^gamma`, computed in log space for stability, shrinks the loss of easy
  examples so training focuses on hard ones; `alpha` balances positives against negatives.

  .. math:: \ell = -\alpha_t (1 - p_t)^\gamma \log p_t, \quad
     p_t = y \sigma(x) + (1 - y)(1 - \sigma(x)), \quad \alpha_t = y \alpha + (1 - y)(1 - \alpha)

  Args:
    logits: logits `x`, floating.
    labels: binary or soft labels `y` in [0, 1], broadcastable to `logits`.
    alpha: optional weight of the positives, in [0, 1] (`None`: no weighting).
    gamma: focusing exponent, >= 0 (0 gives the sigmoid cross entropy).

  Returns:
    The loss of each element, `logits`' shape.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> out = gradtx.sigmoid_focal_loss(jnp.array([0.0, 2.0]), jnp.array([1, 0]), alpha=0.25)
    >>> print(np.asarray(out).round(4))
    [0.0433 1.2376]

  References:
    Lin et al., `Focal Loss for Dense Object Detection <https://arxiv.org/abs/1708.02002>`_,
    ICCV 2017.
  """
  fn = "sigmoid_focal_loss"
  logits = _validate.floating(fn, "logits", logits)
  _validate.broadcasts_to(fn, "labels", labels, logits.shape, "logits")
  _validate.check_unit_interval(fn, "alpha", alpha, optional=True)
  _validate.check_real(fn, "gamma", gamma, low=0.0)
  labels = jnp.astype(labels, logits.dtype)
  ce_loss = sigmoid_binary_cross_entropy(logits, labels)
  log_p = jax.nn.log_sigmoid(logits)
  log_q = jax.nn.log_sigmoid(-logits)
  # log(1 - p_t) = log((1 - y) p + y q), by a two-term logsumexp.
  log_one_minus_p_t = jax.nn.logsumexp(
      jnp.stack([log_p, log_q], axis=-1), axis=-1, b=jnp.stack([1 - labels, labels], axis=-1))
  loss = ce_loss * jnp.exp(gamma * log_one_minus_p_t)
  if alpha is None:
    return loss
  return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


def hinge_loss(
    predictor_outputs: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Binary hinge loss, as optax's.

  Zero once the signed margin `y f` reaches 1, linear below (the support vector machine loss).

  .. math:: \ell = \max(0, 1 - y f)

  Args:
    predictor_outputs: the decision function's outputs `f`.
    targets: targets `y` in {-1, 1}, broadcastable to `predictor_outputs`.

  Returns:
    The loss of each element, `predictor_outputs`' shape.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> print(gradtx.hinge_loss(jnp.array([0.5, 2.0, -1.0]), jnp.array([1.0, 1.0, 1.0])))
    [0.5 0.  2. ]

  References:
    Cortes and Vapnik, `Support-vector networks`, Machine Learning 20(3), 1995.
  """
  fn = "hinge_loss"
  predictor_outputs = jnp.asarray(predictor_outputs)
  _validate.broadcasts_to(fn, "targets", targets, predictor_outputs.shape, "predictor_outputs")
  return jnp.maximum(0, 1 - predictor_outputs * targets)


def perceptron_loss(
    predictor_outputs: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Binary perceptron loss, as optax's.

  Zero when the sign of the output is right, the size of the mistake otherwise.

  .. math:: \ell = \max(0, -y f)

  Args:
    predictor_outputs: the model's scores `f`.
    targets: targets `y` in {-1, 1}, the same shape as `predictor_outputs`.

  Returns:
    The loss of each element, `predictor_outputs`' shape.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> print(gradtx.losses.perceptron_loss(jnp.array([0.5, -2.0]), jnp.array([1.0, 1.0])))
    [0. 2.]

  References:
    Rosenblatt, `The perceptron: a probabilistic model for information storage and
    organization in the brain`, Psychological Review 65(6), 1958.
  """
  fn = "losses.perceptron_loss"
  predictor_outputs, targets = jnp.asarray(predictor_outputs), jnp.asarray(targets)
  if jnp.shape(predictor_outputs) != jnp.shape(targets):
    raise ValueError(f"gradtx.{fn}: targets of shape {jnp.shape(targets)} must have "
                     f"predictor_outputs' shape {jnp.shape(predictor_outputs)}.")
  return jnp.maximum(0, -predictor_outputs * targets)


_dot_last_dim = jnp.vectorize(jnp.dot, signature="(n),(n)->()")


def _one_hot_labels(fn: str, scores: Any, labels: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Checks `scores` `[..., n]` against integer `labels` `[...]`; returns the scores, the one-hot
  labels (float32, as optax's `jax.nn.one_hot`) and the NaN factor for out-of-range labels."""
  scores = jnp.asarray(scores)
  if scores.ndim < 1:
    raise ValueError(f"gradtx.{fn}: scores must have a class axis (rank >= 1), got a scalar.")
  labels = _validate.integer_labels(fn, labels)
  _validate.broadcasts_to(fn, "labels", labels, scores.shape[:-1],
                          "the batch (scores without the class axis)")
  n = scores.shape[-1]
  out_dtype = jnp.result_type(scores, jnp.float32)
  labels, factor = _validate.label_validity(labels, n, out_dtype)
  return scores, jax.nn.one_hot(labels, n), factor


def multiclass_hinge_loss(
    scores: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Multiclass hinge loss (Crammer-Singer), as optax's.

  The largest margin violation: the best score among the wrong classes plus 1, minus the score
  of the right class, floored at zero.

  .. math:: \ell_i = \max_j (s_{ij} + 1 - [j = y_i]) - s_{i y_i}

  Args:
    scores: scores `s`, shape `[..., num_classes]`.
    labels: integer class indices `y`, shape `[...]` (out of range: NaN).

  Returns:
    The loss per example, shape `scores.shape[:-1]`.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> scores = jnp.array([[2.0, 1.5, 0.0], [0.0, 1.0, 3.0]])
    >>> print(gradtx.losses.multiclass_hinge_loss(scores, jnp.array([0, 1])))
    [0.5 3. ]

  References:
    Crammer and Singer, `On the algorithmic implementation of multiclass kernel-based vector
    machines`, JMLR 2, 2001.
  """
  scores, one_hot, factor = _one_hot_labels("losses.multiclass_hinge_loss", scores, labels)
  out = jnp.max(scores + 1.0 - one_hot, axis=-1) - _dot_last_dim(scores, one_hot)
  return out * factor


def multiclass_perceptron_loss(
    scores: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Multiclass perceptron loss, as optax's.

  The best score minus the score of the right class: zero when the right class wins.

  .. math:: \ell_i = \max_j s_{ij} - s_{i y_i}

  Args:
    scores: scores `s`, shape `[..., num_classes]`.
    labels: integer class indices `y`, shape `[...]` (out of range: NaN).

  Returns:
    The loss per example, shape `scores.shape[:-1]`.

  Example:
    >>> import jax.numpy as jnp, numpy as np, gradtx
    >>> scores = jnp.array([[2.0, 1.5, 0.0], [0.0, 1.0, 3.0]])
    >>> print(gradtx.losses.multiclass_perceptron_loss(scores, jnp.array([0, 1])))
    [0. 2.]

  References:
    Collins, `Discriminative training methods for hidden Markov models: theory and experiments
    with perceptron algorithms`, EMNLP 2002.
  """
  scores, one_hot, factor = _one_hot_labels("losses.multiclass_perceptron_loss", scores, labels)
  return (jnp.max(scores, axis=-1) - _dot_last_dim(scores, one_hot)) * factor
