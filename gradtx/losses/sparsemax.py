"""Sparsemax losses: the Fenchel-Young losses of the Gini negentropy, binary and multiclass."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx.losses import _validate
from gradtx.losses.classification import _one_hot_labels
# The sort-based simplex projection with its sparsemax Jacobian, defined once for both namespaces.
from gradtx.projections.simplex import _unit_simplex

__all__ = ["multiclass_sparsemax_loss", "sparsemax_loss"]


def sparsemax_loss(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Binary sparsemax loss, as optax's.

  Zero exactly when `jax.nn.sparse_sigmoid(logits)` equals the label: a hinge-like loss with a
  quadratic knee (the sparse plus function of the signed logit).

  .. math:: \ell = \operatorname{sparseplus}(-x) \text{ if } y = 1, \quad
     \operatorname{sparseplus}(x) \text{ if } y = 0

  Args:
    logits: scores `x`, floating.
    labels: labels `y` in {0, 1} (any dtype; nonzero counts as 1), broadcastable to `logits`.

  Returns:
    The loss of each element, `logits`' shape.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> print(gradtx.losses.sparsemax_loss(jnp.array([0.0, 2.0, -0.5]), jnp.array([1, 1, 0])))
    [0.25   0.     0.0625]

  References:
    Blondel, Martins and Niculae, `Learning with Fenchel-Young Losses
    <https://arxiv.org/abs/1901.02324>`_, JMLR 2020, sec. 4.4.
  """
  fn = "losses.sparsemax_loss"
  logits = _validate.floating(fn, "logits", logits)
  _validate.broadcasts_to(fn, "labels", labels, logits.shape, "logits")
  return jax.nn.sparse_plus(jnp.where(labels, -logits, logits))


def _multiclass_sparsemax_loss(scores: jax.Array, label: jax.Array) -> jax.Array:
  proba = _unit_simplex(scores)  # sparsemax(scores)
  # The conjugate of the Gini negentropy minus the label's score:
  # <p, s - s_y> + (1 - <p, p>) / 2, with the label's own entry exactly 0.
  scores = (scores - scores[label]).at[label].set(0.0)
  return jnp.dot(proba, jnp.where(proba, scores, 0.0)) + 0.5 * (1.0 - jnp.dot(proba, proba))


def multiclass_sparsemax_loss(
    scores: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
) -> jax.Array:
  r"""Multiclass sparsemax loss, as optax's.

  The Fenchel-Young loss of the Gini negentropy: like softmax cross entropy, but its gradient
  `sparsemax(s) - onehot(y)` is sparse, and it is zero once the right class leads by a margin
  of 1.

  .. math:: \ell_i = \langle p_i, s_i - s_{i y_i} \rangle + \tfrac12 (1 - \|p_i\|^2),
     \quad p_i = \operatorname{sparsemax}(s_i) = \operatorname{proj}_{\Delta}(s_i)

  Args:
    scores: scores `s`, floating, shape `[..., num_classes]` (optax takes `[batch, classes]`).
    labels: integer class indices `y`, shape `[...]` (out of range: NaN).

  Returns:
    The loss per example, shape `scores.shape[:-1]`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> scores = jnp.array([[2.0, 1.5, 0.0], [0.0, 1.0, 3.0]])
    >>> print(gradtx.losses.multiclass_sparsemax_loss(scores, jnp.array([0, 1])))
    [0.0625 2.     ]

  References:
    Martins and Astudillo, `From Softmax to Sparsemax: A Sparse Model of Attention and
    Multi-Label Classification <https://arxiv.org/abs/1602.02068>`_, ICML 2016.
  """
  fn = "losses.multiclass_sparsemax_loss"
  scores = _validate.floating(fn, "scores", scores)
  scores, _, factor = _one_hot_labels(fn, scores, labels)
  labels = jnp.broadcast_to(jnp.asarray(labels), scores.shape[:-1])
  labels = jnp.where(labels < 0, labels + scores.shape[-1], labels)
  batch = scores.shape[:-1]
  flat = jax.vmap(_multiclass_sparsemax_loss)(
      scores.reshape((-1, scores.shape[-1])), labels.reshape(-1))
  return flat.reshape(batch) * factor.astype(flat.dtype)
