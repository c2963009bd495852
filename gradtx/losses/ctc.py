"""Connectionist temporal classification (CTC): the loss of a frame-wise classifier summed over
every alignment of a shorter label sequence, by the forward (alpha) recursion of Graves et al.
(2006) run as one `lax.scan` over time."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def _check_inputs(fn: str, logits: Any, logit_paddings: Any, labels: Any, label_paddings: Any,
                  blank_id: Any) -> None:
  """Shapes, kinds and ranges, checked in Python at trace time (shapes are static); the label
  values only when `labels` and `label_paddings` are concrete (not traced)."""
  where = f"gradtx.{fn}"
  shapes = {n: np.shape(v) for n, v in (("logits", logits), ("logit_paddings", logit_paddings),
                                        ("labels", labels), ("label_paddings", label_paddings))}
  if len(shapes["logits"]) != 3:
    raise ValueError(f"{where}: logits must have shape (B, T, K) (batch, time, classes), got "
                     f"shape {shapes['logits']}.")
  if len(shapes["labels"]) != 2:
    raise ValueError(f"{where}: labels must have shape (B, N) (batch, label positions), got "
                     f"shape {shapes['labels']}.")
  batch, time, num_classes = shapes["logits"]
  if shapes["logit_paddings"] != (batch, time):
    raise ValueError(f"{where}: logit_paddings must have the shape (B, T) = {(batch, time)} of "
                     f"logits' first two axes, got shape {shapes['logit_paddings']}.")
  if shapes["labels"][0] != batch:
    raise ValueError(f"{where}: labels must have logits' batch size {batch} on axis 0, got "
                     f"shape {shapes['labels']}.")
  if shapes["label_paddings"] != shapes["labels"]:
    raise ValueError(f"{where}: label_paddings must have labels' shape {shapes['labels']}, got "
                     f"shape {shapes['label_paddings']}.")
  if not jnp.issubdtype(jnp.result_type(logits), jnp.floating):
    raise TypeError(f"{where}: logits must be floating point, got dtype "
                    f"{jnp.result_type(logits)}.")
  if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
    raise TypeError(f"{where}: labels must be integer class ids in [0, K), got dtype "
                    f"{jnp.result_type(labels)}.")
  _checks.check_int(fn, "blank_id", blank_id, 0)
  if not _checks.is_tracer(blank_id) and not int(blank_id) < num_classes:
    raise ValueError(f"{where}: blank_id must be in [0, K) = [0, {num_classes}) (K = logits' "
                     f"last axis), got {int(blank_id)}.")
  if not (_checks.is_tracer(labels) or _checks.is_tracer(label_paddings)) and np.size(labels):
    real = np.asarray(label_paddings) == 0  # padded positions may hold any value, as in optax
    values = np.asarray(labels)[real]
    if values.size and (values.min() < 0 or values.max() >= num_classes):
      bad = values[(values < 0) | (values >= num_classes)]
      raise ValueError(f"{where}: labels must be class ids in [0, K) = [0, {num_classes}) where "
                       f"label_paddings is 0, got {bad[:5].tolist()}.")


def ctc_loss_with_forward_probs(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: Any = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""CTC loss and the log forward probabilities of the blank and label states.

  A label sequence :math:`l` of length :math:`L` is extended with blanks,
  :math:`l' = (\phi, l_1, \phi, l_2, \dots, l_L, \phi)`, and the forward variable
  :math:`\alpha_t(s)` sums the probability of every path through frames :math:`1..t` that ends in
  state :math:`s` of :math:`l'` (Graves et al. 2006, eqs. 6-7; :math:`y^t_k` is the softmax of
  `logits[b, t]`):

  .. math::
    \alpha_t(s) = \bigl(\alpha_{t-1}(s) + \alpha_{t-1}(s-1)
      + [l'_s \neq \phi \wedge l'_s \neq l'_{s-2}]\,\alpha_{t-1}(s-2)\bigr)\, y^t_{l'_s},
    \qquad \mathcal{L} = -\log\bigl(\alpha_T(|l'|) + \alpha_T(|l'| - 1)\bigr).

  The recursion runs in log space over unpadded frames (a padded frame keeps the alphas), with
  :math:`\log 0` replaced by `log_epsilon`: a label sequence that no alignment fits (too long
  for the frames, or repeats without room for blanks) gets a loss of order `-log_epsilon`.

  Args:
    logits: (B, T, K) array of unnormalised class scores per frame; K counts the blank.
    logit_paddings: (B, T) array, 1.0 where a frame is padding and 0.0 where it is real.
    labels: (B, N) integer array of class ids in [0, K), right-padded.
    label_paddings: (B, N) array, 1.0 where a label is padding and 0.0 where it is real; each
      row is zeros followed by ones.
    blank_id: the class id of the blank, in [0, K).
    log_epsilon: the stand-in for :math:`\log 0`.

  Returns:
    `(loss, logalpha_blank, logalpha_nonblank)`: the (B,) losses; the (T, B, N + 1) array of
    :math:`\log\alpha_t` of the blank state after n labels (column n), whose last row already
    includes the final label -> end transition; and the (T, B, N) array of :math:`\log\alpha_t`
    of the state of label n + 1 (column n). (optax's docstring gives (T, B, N + 1) for both; both
    libraries return these shapes.)

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> logits, labels = jnp.zeros((1, 3, 2)), jnp.asarray([[1]])
    >>> loss, blank, label = gradtx.losses.ctc_loss_with_forward_probs(
    ...     logits, jnp.zeros((1, 3)), labels, jnp.zeros((1, 1)))
    >>> round(float(loss[0]), 4), blank.shape, label.shape  # 6 of 8 paths fit: -log(6/8)
    (0.2877, (3, 1, 2), (3, 1, 1))

  References:
    Graves, Fernandez, Gomez & Schmidhuber, "Connectionist Temporal Classification: Labelling
    Unsegmented Sequence Data with Recurrent Neural Networks", ICML 2006, eqs. 6-8.
    https://dl.acm.org/doi/10.1145/1143844.1143891
  """
  _check_inputs("ctc_loss_with_forward_probs", logits, logit_paddings, labels, label_paddings,
                blank_id)
  logits, labels = jnp.asarray(logits), jnp.asarray(labels)
  batch, _, num_classes = logits.shape
  max_label_len = labels.shape[1]

  logprobs = jax.nn.log_softmax(logits)
  label_lens = max_label_len - jnp.sum(label_paddings, axis=1).astype(jnp.int32)

  # repeat[b, n] = 1.0 where label n + 1 equals label n (0-based): no epsilon transition between
  # them (Graves eq. 7's condition l'_s = l'_{s-2}); the last column is 0.
  repeat = (labels[:, :-1] == labels[:, 1:]).astype(jnp.float32)
  repeat = jnp.pad(repeat, ((0, 0), (0, 1)))

  logprobs_blank = jnp.transpose(logprobs[:, :, blank_id:blank_id + 1], (1, 0, 2))  # [T, B, 1]
  # log y^t_{l_n} by a gather (optax multiplies by a one-hot matrix: the same values for finite
  # logits, without its B*T*N*K products); an id outside [0, K) reads 0, as optax's zero row.
  # The gather reads the log-probs promoted as optax's einsum with a float one-hot promotes them
  # (bf16 -> f32), so the gradient also sums a class's repeated labels in that dtype.
  in_range = (labels >= 0) & (labels < num_classes)
  float_dtype = jnp.result_type(logprobs.dtype, float)
  emit = jnp.take_along_axis(logprobs.astype(float_dtype), jnp.where(in_range, labels, 0)[:, None],
                             axis=2, mode="promise_in_bounds")  # [B, T, N]
  emit = jnp.where(in_range[:, None, :], emit, 0)
  logprobs_emit = jnp.transpose(emit, (1, 0, 2))  # [T, B, N]

  # log alpha_0: the empty prefix has probability 1, every other state log_epsilon.
  logalpha_blank_init = (jnp.ones((batch, max_label_len + 1)) * log_epsilon).at[:, 0].set(0.0)
  logalpha_label_init = jnp.ones((batch, max_label_len)) * log_epsilon
  no_epsilon = log_epsilon * repeat  # the label -> next-label skip is closed on a repeat
  no_blank_skip = log_epsilon * (1.0 - repeat)  # the direct label -> blank step, on repeats only

  def add_to_blanks_after_labels(blank, score):
    # blank[:, n + 1] (+)= score[:, n] in log space: the blank state after label n + 1.
    return jnp.concatenate([blank[:, :1], jnp.logaddexp(blank[:, 1:], score)], axis=-1)

  def step(carry, frame):
    prev_blank, prev_label = carry
    logprob_label, logprob_blank, pad = frame
    # "done" state: blank state s-1 or, past a distinct label, label state s-2 (eq. 7's skip).
    done = add_to_blanks_after_labels(prev_blank, prev_label + no_epsilon)
    # eq. 6-7, label states: alpha_t(s) = (alpha(s-1) [+ alpha(s-2)] + alpha(s)) y^t_{l'_s}.
    next_label = jnp.logaddexp(done[:, :-1] + logprob_label, prev_label + logprob_label)
    # eq. 6, blank states: alpha_t(s) = (alpha(s) + alpha(s-1)) y^t_phi; label -> blank enters
    # through `done`, or directly when the skip was closed (a repeat).
    next_blank = done + logprob_blank
    next_blank = add_to_blanks_after_labels(
        next_blank, prev_label + logprob_blank + no_blank_skip)
    pad = pad.reshape((batch, 1))  # a padded frame keeps alpha_{t-1}
    next_label = pad * prev_label + (1.0 - pad) * next_label
    next_blank = pad * prev_blank + (1.0 - pad) * next_blank
    return (next_blank, next_label), (next_blank, next_label)

  frames = (logprobs_emit, logprobs_blank, jnp.transpose(logit_paddings, (1, 0)))
  _, (logalpha_blank, logalpha_label) = jax.lax.scan(
      step, (logalpha_blank_init, logalpha_label_init), frames)

  # eq. 8: p(l|x) = alpha_T(|l'|) + alpha_T(|l'| - 1), the last blank or the last label.
  last = add_to_blanks_after_labels(logalpha_blank[-1], logalpha_label[-1])
  logalpha_blank = logalpha_blank.at[-1].set(last)
  pick = jax.nn.one_hot(label_lens, num_classes=max_label_len + 1, dtype=last.dtype)
  loss = -jnp.sum(last * pick, axis=1)
  return loss, logalpha_blank, logalpha_label


def ctc_loss(
    logits: Any,
    logit_paddings: Any,
    labels: Any,
    label_paddings: Any,
    *,
    blank_id: int = 0,
    log_epsilon: Any = -1e5,
) -> jax.Array:
  r"""CTC loss: minus the log probability of `labels` summed over all alignments to the frames.

  .. math:: \mathcal{L} = -\log \sum_{\pi \in \mathcal{B}^{-1}(l)} \prod_t y^t_{\pi_t}

  where :math:`\mathcal{B}` removes repeats, then blanks; computed by the forward recursion of
  `ctc_loss_with_forward_probs` (which see for the arguments and the edge cases).

  Args:
    logits: (B, T, K) array of unnormalised class scores per frame; K counts the blank.
    logit_paddings: (B, T) array, 1.0 where a frame is padding and 0.0 where it is real.
    labels: (B, N) integer array of class ids in [0, K), right-padded.
    label_paddings: (B, N) array, 1.0 where a label is padding and 0.0 where it is real.
    blank_id: the class id of the blank, in [0, K).
    log_epsilon: the stand-in for :math:`\log 0`.

  Returns:
    The (B,) array of losses.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> loss = gradtx.losses.ctc_loss(jnp.zeros((1, 2, 3)), jnp.zeros((1, 2)),
    ...                               jnp.asarray([[1]]), jnp.zeros((1, 1)))
    >>> round(float(loss[0]), 4)  # paths 1-, -1, 11 of 9: -log(3/9)
    1.0986

  References:
    Graves, Fernandez, Gomez & Schmidhuber, "Connectionist Temporal Classification: Labelling
    Unsegmented Sequence Data with Recurrent Neural Networks", ICML 2006, eq. 14.
    https://dl.acm.org/doi/10.1145/1143844.1143891
  """
  _check_inputs("ctc_loss", logits, logit_paddings, labels, label_paddings, blank_id)
  loss, _, _ = ctc_loss_with_forward_probs(
      logits, logit_paddings, labels, label_paddings, blank_id=blank_id,
      log_epsilon=log_epsilon)
  return loss
