"""Similarity losses on embeddings: cosine similarity and distance, NT-Xent (contrastive) and the
triplet margin loss.

optax keeps the first two with its regression losses and the last two in its self-supervised
ones; they are one family here (all compare vectors by angle or distance).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradtx._checks import check_scalar
from gradtx.losses import _validate

__all__ = ["cosine_distance", "cosine_similarity", "ntxent", "triplet_margin_loss"]


def _cosine_similarity(fn, predictions, targets, epsilon, axis, where):
  check_scalar(fn, "epsilon", epsilon, low=0.0)
  a = _validate.floating(fn, "predictions", predictions)
  b = _validate.floating(fn, "targets", targets)
  shape = _validate.pair_over_axes(fn, "predictions", a, "targets", b, axis)
  where = _validate.where_mask(fn, where, shape, "predictions and targets")
  # optax's arithmetic: each vector is normalised first (norms clipped below at epsilon), then
  # the unit vectors are multiplied and summed.
  a_norm2 = jnp.square(a).sum(axis=axis, where=where, keepdims=True)
  b_norm2 = jnp.square(b).sum(axis=axis, where=where, keepdims=True)
  a_unit = a / jnp.sqrt(a_norm2.clip(epsilon))
  b_unit = b / jnp.sqrt(b_norm2.clip(epsilon))
  return (a_unit * b_unit).sum(axis=axis, where=where)


def cosine_similarity(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    epsilon: jax.typing.ArrayLike = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Cosine of the angle between predictions and targets, along `axis`.

  Each squared norm is clipped below at `epsilon` before the square root. With the default
  `epsilon=0` a zero vector gives NaN (0/0), as in optax; any `epsilon > 0` makes it 0, with
  finite gradients.

  .. math::
    \cos(p, t) = \sum_i \frac{p_i}{\sqrt{\max(\|p\|^2, \epsilon)}}
                        \frac{t_i}{\sqrt{\max(\|t\|^2, \epsilon)}}

  Args:
    predictions: floating-point vectors, shape `[..., dim]` (:math:`p`).
    targets: floating-point vectors (:math:`t`); their shape broadcasts against `predictions`'s
      but not along `axis`, where both must have the full size.
    epsilon: the lower bound :math:`\epsilon \ge 0` on each squared norm.
    axis: the axis or axes of the vectors (None: all axes).
    where: optional boolean mask broadcasting to the inputs' shape: the elements included in
      the norms and the sum.

  Returns:
    The cosine similarities, with the reduced axes removed.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    >>> print(gradtx.losses.cosine_similarity(p, jnp.array([[2.0, 0.0], [0.0, 3.0]])).round(4))
    [1.     0.7071]

  References:
    `Cosine similarity <https://en.wikipedia.org/wiki/Cosine_similarity>`_, Wikipedia.
  """
  return _cosine_similarity("losses.cosine_similarity", predictions, targets, epsilon, axis,
                            where)


def cosine_distance(
    predictions: jax.typing.ArrayLike,
    targets: jax.typing.ArrayLike,
    *,
    epsilon: jax.typing.ArrayLike = 0.0,
    axis: int | tuple[int, ...] | None = -1,
    where: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  r"""Cosine distance: one minus the cosine similarity, in `[0, 2]`.

  .. math::
    d(p, t) = 1 - \cos(p, t)

  See `cosine_similarity` for :math:`\cos` and the role of `epsilon`.

  Args:
    predictions: floating-point vectors, shape `[..., dim]`.
    targets: floating-point vectors broadcasting against `predictions` (not along `axis`).
    epsilon: the lower bound (>= 0) on each squared norm.
    axis: the axis or axes of the vectors (None: all axes).
    where: optional boolean mask of the elements included.

  Returns:
    The cosine distances, with the reduced axes removed.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.losses.cosine_distance(jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0])).tolist()
    2.0

  References:
    `Cosine distance <https://en.wikipedia.org/wiki/Cosine_similarity#Cosine_distance>`_,
    Wikipedia.
  """
  return 1.0 - _cosine_similarity("losses.cosine_distance", predictions, targets, epsilon,
                                  axis, where)


def ntxent(
    embeddings: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    temperature: jax.typing.ArrayLike = 0.07,
) -> jax.Array:
  r"""Normalized temperature-scaled cross-entropy (NT-Xent), the SimCLR contrastive loss.

  Embeddings with equal labels are positive pairs; every other pair is a negative. For each
  positive pair :math:`(i, j)`, the cross-entropy of picking :math:`j` against the negatives of
  :math:`i`, with cosine similarities over `temperature` as logits; averaged over all ordered
  positive pairs :math:`P`. A batch with no positive pair gives NaN (0/0), as in optax.

  .. math::
    s_{ij} = \cos(z_i, z_j) / \tau, \quad
    \ell = -\frac{1}{|P|} \sum_{(i, j) \in P}
      \log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k: y_k \ne y_i} e^{s_{ik}}}

  Args:
    embeddings: floating-point array `[batch, features]` (:math:`z`).
    labels: array `[batch]` of group ids (:math:`y`): equal ids are positive pairs.
    temperature: :math:`\tau > 0`.

  Returns:
    The scalar loss.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> z = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> good = gradtx.losses.ntxent(z, jnp.array([0, 0, 1, 1]))  # close pairs are positives
    >>> bad = gradtx.losses.ntxent(z, jnp.array([0, 1, 0, 1]))
    >>> bool(good < bad)
    True

  References:
    Chen et al., `A Simple Framework for Contrastive Learning of Visual Representations
    <https://arxiv.org/abs/2002.05709>`_, ICML 2020.
  """
  fn = "losses.ntxent"
  check_scalar(fn, "temperature", temperature, low=0.0, low_open=True)
  embeddings = _validate.floating(fn, "embeddings", embeddings)
  labels = _validate.real(fn, "labels", labels)
  _validate.rank_exactly(fn, "embeddings", embeddings, 2)
  _validate.rank_exactly(fn, "labels", labels, 1)
  if labels.shape[0] != embeddings.shape[0]:
    raise ValueError(
        f"gradtx.{fn}: labels and embeddings must have the same leading dimension, got "
        f"{labels.shape[0]} labels for {embeddings.shape[0]} embeddings.")
  # Cosine similarity matrix, over the temperature.
  xcs = _cosine_similarity(fn, embeddings[None, :, :], embeddings[:, None, :],
                           jnp.finfo(embeddings.dtype).eps, -1, None) / temperature
  same = labels[:, None] == labels[None, :]
  diffs = ~same  # negatives
  matches = same & ~jnp.eye(same.shape[0], dtype=bool)  # positives, without self-pairs
  xcs_diffs = jnp.where(diffs, xcs, -jnp.inf)
  xcs_matches = jnp.where(matches, xcs, -jnp.inf)
  # Shift each row by its maximum for stability (no gradient through the shift).
  xcs_max = jnp.max(jnp.concatenate((xcs_diffs, xcs_matches), axis=-1), axis=1, keepdims=True)
  shift_diffs = xcs_diffs - lax.stop_gradient(xcs_max)
  shift_matches = xcs_matches - lax.stop_gradient(xcs_max)
  denom = jnp.sum(jnp.exp(shift_diffs), axis=1, keepdims=True)
  denom += jnp.exp(shift_matches)
  log_softmax = shift_matches - jnp.log(denom)
  return -jnp.where(matches, log_softmax, 0.0).sum() / matches.sum()


def triplet_margin_loss(
    anchors: jax.typing.ArrayLike,
    positives: jax.typing.ArrayLike,
    negatives: jax.typing.ArrayLike,
    axis: int = -1,
    norm_degree: jax.typing.ArrayLike = 2,
    margin: jax.typing.ArrayLike = 1.0,
    eps: jax.typing.ArrayLike = 1e-6,
) -> jax.Array:
  r"""Triplet margin loss: the positive closer to the anchor than the negative, by a margin.

  The loss is zero once the anchor-positive distance is `margin` below the anchor-negative one.

  Distances are :math:`L_p` norms, smoothed by `eps` inside the root. Differences enter through
  their absolute value, so any degree :math:`p > 0` gives a distance (optax raises the signed
  differences to the power, which agrees for even degrees only).

  .. math::
    d(x, y) = \Big(\sum_i |x_i - y_i|^p + \epsilon\Big)^{1/p}, \quad
    \ell = \max\big(d(a, p^+) - d(a, p^-) + m, 0\big)

  Args:
    anchors: floating-point array `[batch, features]` (:math:`a`).
    positives: the positives (:math:`p^+`), with the shape of `anchors`.
    negatives: the negatives (:math:`p^-`), with the shape of `anchors`.
    axis: the axis of the features (an int).
    norm_degree: the degree :math:`p > 0` of the norm (2: Euclidean).
    margin: the margin :math:`m`.
    eps: :math:`\epsilon \ge 0`, added inside the root for finite gradients at zero distance.

  Returns:
    The losses, with `axis` removed (`[batch]`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> a, p = jnp.array([[0.0, 0.0]]), jnp.array([[0.1, 0.1]])
    >>> print(gradtx.losses.triplet_margin_loss(a, p, jnp.array([[1.0, 0.0]])).round(4))
    [0.1414]

  References:
    Balntas et al., `Learning local feature descriptors with triplets and shallow convolutional
    neural networks <https://bmva-archive.org.uk/bmvc/2016/papers/paper119/index.html>`_,
    BMVC 2016.
  """
  fn = "losses.triplet_margin_loss"
  check_scalar(fn, "norm_degree", norm_degree, low=0.0, low_open=True)
  check_scalar(fn, "margin", margin)
  check_scalar(fn, "eps", eps, low=0.0)
  anchors = _validate.floating(fn, "anchors", anchors)
  positives = _validate.floating(fn, "positives", positives)
  negatives = _validate.floating(fn, "negatives", negatives)
  _validate.same_shape(fn, "anchors", anchors, "positives", positives)
  _validate.same_shape(fn, "anchors", anchors, "negatives", negatives)
  _validate.rank_at_least(fn, "anchors", anchors, 1)
  if isinstance(axis, (tuple, list)):
    raise TypeError(f"gradtx.{fn}: axis must be an int, got {axis!r}.")
  _validate.axes(fn, axis, np.ndim(anchors), allow_none=False)

  def distance(x, y):
    # |x - y|**p is (x - y)**p bit for bit when p is even (optax's arithmetic).
    return jnp.power(jnp.power(jnp.abs(x - y), norm_degree).sum(axis) + eps, 1 / norm_degree)

  return jnp.maximum(distance(anchors, positives) - distance(anchors, negatives) + margin, 0)
