"""Ranking losses: the cost of the ranking that item scores induce, against relevance labels.

They work on the last axis (the list of items); leading axes are batch axes. A `where` mask marks
the valid items of each list; a list with no valid item is left out of the reduction (a loss of
0 when nothing is left, not NaN).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gradtx.losses import _validate

__all__ = ["ranking_softmax_loss"]


def _safe_reduce(a, where, reduce_fn):
  """`reduce_fn(a, where=where)`; a masked mean over nothing is 0 instead of NaN (unless `a`
  itself holds a NaN); without `reduce_fn`, the masked entries of `a` are set to 0, so that
  summing the unreduced loss equals `reduce_fn=jnp.sum`."""
  output = reduce_fn(a, where=where) if reduce_fn is not None else a
  if reduce_fn is jnp.mean:
    is_input_valid = jnp.logical_not(jnp.any(jnp.isnan(a)))
    output = jnp.where(jnp.isnan(output) & is_input_valid, 0.0, output)
  if reduce_fn is None and where is not None:
    output = jnp.where(where, output, 0.0)
  return output


def ranking_softmax_loss(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    where: jax.typing.ArrayLike | None = None,
    weights: jax.typing.ArrayLike | None = None,
    reduce_fn: Callable[..., jax.typing.ArrayLike] | None = jnp.mean,
) -> jax.Array:
  r"""Ranking softmax loss (ListNet's top-one approximation).

  The cross-entropy between the relevance labels and the softmax of the item scores of each list.

  Masked items get zero label weight and a -inf score (no probability mass); `weights`
  multiply the labels.

  .. math::
    \ell(s, y) = -\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

  Args:
    logits: floating-point scores :math:`s`, shape `[..., list_size]`.
    labels: relevance labels :math:`y` with the shape of `logits` (integers or floats).
    where: optional boolean mask broadcasting to `logits`' shape: the valid items.
    weights: optional per-item weights broadcasting to `logits`' shape.
    reduce_fn: the reduction over lists, called as `reduce_fn(loss, where=...)`
      (`jnp.mean` (default) or `jnp.sum`), or None for one loss per list.

  Returns:
    The reduced loss, or the per-list losses `[...]` when `reduce_fn` is None.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> s, y = jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])
    >>> round(float(gradtx.losses.ranking_softmax_loss(s, y)), 3)
    1.408

  References:
    Cao et al., `Learning to Rank: From Pairwise Approach to Listwise Approach
    <https://doi.org/10.1145/1273496.1273513>`_, ICML 2007.

    Bruch et al., `An Analysis of the Softmax Cross Entropy Loss for Learning-to-Rank with
    Binary Relevance <https://doi.org/10.1145/3341981.3344221>`_, ICTIR 2019.
  """
  fn = "losses.ranking_softmax_loss"
  if reduce_fn is not None and not callable(reduce_fn):
    raise TypeError(f"gradtx.{fn}: reduce_fn must be a callable (jnp.mean, jnp.sum) or None, "
                    f"got {type(reduce_fn).__name__} {reduce_fn!r}.")
  logits = _validate.floating(fn, "logits", logits)
  labels = _validate.real(fn, "labels", labels)
  _validate.rank_at_least(fn, "logits", logits, 1)
  _validate.same_shape(fn, "logits", logits, "labels", labels)
  where = _validate.where_mask(fn, where, logits.shape, "logits")
  if weights is not None:
    weights = _validate.real(fn, "weights", weights)
    _validate.broadcasts_to(fn, "weights", weights, logits.shape, "logits")

  labels = labels.astype(logits.dtype)
  if where is not None:  # masked items: no label weight, no probability mass
    labels = jnp.where(where, labels, jnp.zeros_like(labels))
    logits = jnp.where(where, logits, -jnp.ones_like(logits) * jnp.inf)
  if weights is not None:
    labels *= weights
  loss = -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1, where=where)
  if where is not None:  # lists with no valid item are left out of the reduction
    where = jnp.any(where, axis=-1)
  return _safe_reduce(loss, where, reduce_fn)
