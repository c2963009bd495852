"""gradtx.losses.ctc: ctc_loss and ctc_loss_with_forward_probs.

optax parity is bit-identical (losses, both forward-probability arrays and gradients): gradtx
runs optax's recursion in its arithmetic order, and its gather of the label log-probs reads the
same values as optax's one-hot einsum (x * 1 plus exact zeros) for finite logits.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import reference
from gradtx.losses import ctc

optax = pytest.importorskip("optax")

B, T, K, N = 7, 8, 5, 4


def _batch(seed=0, blank=0):
  """A batch covering the edge cases, one per row (labels avoid `blank`):
  0 random, repeats with room; 1 padded frames and labels, padded label ids out of [0, K);
  2 every frame padded (labels present: infeasible); 3 every label padded; 4 more labels than
  frames (infeasible); 5 a repeat needing a blank with exactly enough frames; 6 all padded."""
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(B, T, K)).astype(np.float32)
  others = [k for k in range(K) if k != blank]
  labels = rng.choice(others, size=(B, N)).astype(np.int32)
  frames = np.array([T, 6, 0, T, 3, 3, 0])
  lengths = np.array([N, 2, 2, 0, N, 2, 0])
  labels[0, 1] = labels[0, 0]
  labels[1, 2:] = [-1, K]  # padding: any id, as in optax
  labels[5, :2] = others[1]
  logit_paddings = (np.arange(T)[None] >= frames[:, None]).astype(np.float32)
  label_paddings = (np.arange(N)[None] >= lengths[:, None]).astype(np.float32)
  return logits, logit_paddings, labels, label_paddings, frames, lengths


def _all_outputs(lib, logits, logit_paddings, labels, label_paddings, blank_id, log_epsilon):
  losses = lib.losses
  fwd = losses.ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings,
                                           blank_id=blank_id, log_epsilon=log_epsilon)
  grad = jax.grad(lambda x: jnp.sum(losses.ctc_loss(
      x, logit_paddings, labels, label_paddings, blank_id=blank_id,
      log_epsilon=log_epsilon)))(logits)
  return fwd, grad


_jitted_outputs = jax.jit(_all_outputs, static_argnames=("lib", "blank_id"))


@pytest.mark.parametrize("blank_id,log_epsilon,dtype", [
    (0, -1e5, jnp.float32), (3, -50.0, jnp.float32), (0, -1e5, jnp.bfloat16)])
def test_bit_identical_to_optax(blank_id, log_epsilon, dtype):
  logits, logit_paddings, labels, label_paddings, _, _ = _batch(1, blank_id)
  args = (jnp.asarray(logits, dtype), logit_paddings, labels, label_paddings, blank_id,
          log_epsilon)
  # bf16: optax runs eagerly. Under jit, XLA fuses optax's bf16 log_softmax into its one-hot
  # einsum and drops the bf16 rounding there (jitted optax then differs from eager optax by
  # ~2e-4 relative); gradtx's gather reads the rounded bf16 log-probs with or without jit.
  optax_outputs = _all_outputs if dtype == jnp.bfloat16 else _jitted_outputs
  (ours, ours_grad), (theirs, theirs_grad) = (_jitted_outputs(gradtx, *args),
                                              optax_outputs(optax, *args))
  for a, b in zip(ours, theirs):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
  if dtype == jnp.bfloat16:
    # A few bf16 gradient entries differ by 1-4 bf16 ulps: optax sums a class's repeated labels'
    # cotangents in its one-hot einsum's transpose, gradtx in the gather's scatter-add, and one
    # flipped bf16 rounding moves its row through log_softmax's bf16 backward (sum over K).
    np.testing.assert_allclose(np.asarray(ours_grad, np.float32),
                               np.asarray(theirs_grad, np.float32), rtol=0, atol=4e-3)
  else:
    np.testing.assert_array_equal(ours_grad, theirs_grad)
  assert ours_grad.dtype == dtype
  loss = np.asarray(ours[0])
  assert ours[1].shape == (T, B, N + 1) and ours[2].shape == (T, B, N)
  # Infeasible rows (2: no frames, 4: more labels than frames) cost ~ -log_epsilon; the row with
  # neither frames nor labels costs 0.
  assert np.all(loss[[2, 4]] > -0.5 * log_epsilon) and loss[6] == 0
  assert np.all(np.isfinite(loss)) and np.all(np.isfinite(np.asarray(ours_grad, np.float32)))


def _reference_losses(logits, frames, labels, lengths, blank, fn):
  logprobs = np.asarray(jax.nn.log_softmax(jnp.asarray(logits, jnp.float64)))
  return np.array([fn(logprobs[b, :frames[b]], labels[b, :lengths[b]], blank)
                   for b in range(len(logits))])


def test_numpy_alpha_recursion_and_brute_force_float64():
  with jax.enable_x64(True):
    for blank in (0, 2):
      logits, logit_paddings, labels, label_paddings, frames, lengths = _batch(2, blank)
      logits = logits.astype(np.float64)
      loss, logalpha_blank, logalpha_label = gradtx.losses.ctc_loss_with_forward_probs(
          logits, logit_paddings, labels, label_paddings, blank_id=blank)
      assert loss.dtype == jnp.float64
      expected = _reference_losses(logits, frames, labels, lengths, blank,
                                   lambda *a: reference.ctc_alpha(*a)[1])
      feasible = np.isfinite(expected)
      np.testing.assert_allclose(loss[feasible], expected[feasible], rtol=1e-12)
      assert np.all(loss[~feasible] > 5e4)  # -log_epsilon scale, as optax
      # The forward probabilities: blank column n is l' state 2n, label column n state 2n + 1.
      logprobs = np.asarray(jax.nn.log_softmax(logits))
      for b in np.flatnonzero(feasible & (frames > 0)):
        alpha, _ = reference.ctc_alpha(logprobs[b, :frames[b]], labels[b, :lengths[b]], blank)
        last, plain = frames[b] - 1, min(frames[b], T - 1)  # row T - 1 gets eq. 8's sum
        got_blank = np.exp(logalpha_blank[:plain, b, :lengths[b] + 1])
        got_label = np.exp(logalpha_label[:frames[b], b, :lengths[b]])
        np.testing.assert_allclose(got_blank, alpha[:plain, 0::2], rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(got_label, alpha[:, 1::2], rtol=1e-12, atol=1e-300)
        # The last row of the blank array holds eq. 8's final sum (padded frames keep alphas).
        np.testing.assert_allclose(np.exp(logalpha_blank[T - 1, b, lengths[b]]),
                                   alpha[last, -1] + (alpha[last, -2] if lengths[b] else 0),
                                   rtol=1e-12)
        # A padded frame keeps the alphas.
        np.testing.assert_array_equal(logalpha_label[frames[b]:, b],
                                      np.broadcast_to(logalpha_label[last, b],
                                                      (T - frames[b], N)))
    # Every alignment summed by brute force (T <= 5): K^T paths.
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 5, 3))
    labels = np.array([[1, 2], [1, 1], [2, 1]])
    frames, lengths = np.array([5, 4, 2]), np.array([2, 2, 1])
    logit_paddings = (np.arange(5)[None] >= frames[:, None]).astype(np.float64)
    label_paddings = (np.arange(2)[None] >= lengths[:, None]).astype(np.float64)
    loss = gradtx.losses.ctc_loss(logits, logit_paddings, labels, label_paddings)
    expected = _reference_losses(logits, frames, labels, lengths, 0, reference.ctc_brute_force)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)


def test_gradient_matches_central_differences_float64():
  with jax.enable_x64(True):
    logits, logit_paddings, labels, label_paddings, _, _ = _batch(4)
    rows = [0, 1, 5]  # the feasible rows with frames
    logits, logit_paddings = logits[rows].astype(np.float64), logit_paddings[rows]
    labels, label_paddings = labels[rows], label_paddings[rows]

    @jax.jit
    def total(x):
      return jnp.sum(gradtx.losses.ctc_loss(x, logit_paddings, labels, label_paddings))

    grad = np.asarray(jax.grad(total)(logits))
    h, flat = 1e-6, logits.reshape(-1)
    numeric = np.empty_like(flat)
    for i in range(flat.size):
      step = np.zeros_like(flat)
      step[i] = h
      numeric[i] = (total((flat + step).reshape(logits.shape))
                    - total((flat - step).reshape(logits.shape))) / (2 * h)
    np.testing.assert_allclose(grad.reshape(-1), numeric, rtol=1e-6, atol=1e-8)
    assert np.all(grad[:, 6:][logit_paddings[:, 6:] == 1] == 0)  # padded frames get none


def test_jit_eager_and_vmap_agree():
  logits, logit_paddings, labels, label_paddings, _, _ = _batch(5)
  args = (logits, logit_paddings, labels, label_paddings)
  eager = gradtx.losses.ctc_loss(*args)
  np.testing.assert_array_equal(eager, jax.jit(gradtx.ctc_loss)(*args))
  # vmap over a leading axis of 2 batches equals one call per batch.
  stacked = [np.stack([x, np.roll(x, 1, axis=0)]) for x in args]
  batched = jax.vmap(gradtx.losses.ctc_loss)(*stacked)
  for i in range(2):
    np.testing.assert_allclose(batched[i], gradtx.losses.ctc_loss(*[x[i] for x in stacked]),
                               rtol=1e-6)
  assert gradtx.ctc_loss is gradtx.losses.ctc_loss
  assert gradtx.ctc_loss_with_forward_probs is gradtx.losses.ctc_loss_with_forward_probs


@pytest.mark.parametrize("fn", ["ctc_loss", "ctc_loss_with_forward_probs"])
def test_bad_input_names_the_argument(fn):
  call = getattr(gradtx.losses, fn)
  logits, logit_paddings, labels, label_paddings = (
      np.zeros((2, 3, 4), np.float32), np.zeros((2, 3)), np.ones((2, 2), np.int32), np.zeros((2, 2)))
  cases = [
      (ValueError, "logits", dict(logits=logits[0])),
      (ValueError, "logit_paddings", dict(logit_paddings=np.zeros((2, 4)))),
      (ValueError, "labels", dict(labels=np.ones((3, 2), np.int32))),
      (ValueError, "labels", dict(labels=np.ones((2,), np.int32))),
      (ValueError, "label_paddings", dict(label_paddings=np.zeros((2, 3)))),
      (ValueError, "labels", dict(labels=np.array([[1, 4], [1, 1]], np.int32))),
      (ValueError, "labels", dict(labels=np.array([[1, 1], [-1, 1]], np.int32))),
      (TypeError, "labels", dict(labels=np.ones((2, 2), np.float32))),
      (TypeError, "logits", dict(logits=np.zeros((2, 3, 4), np.int32))),
      (ValueError, "blank_id", dict(blank_id=4)),
      (ValueError, "blank_id", dict(blank_id=-1)),
      (TypeError, "blank_id", dict(blank_id=0.0)),
  ]
  for error, name, change in cases:
    kwargs = dict(logits=logits, logit_paddings=logit_paddings, labels=labels,
                  label_paddings=label_paddings) | change
    blank = kwargs.pop("blank_id", 0)
    with pytest.raises(error, match=rf"{fn}: {name}\b"):
      call(*kwargs.values(), blank_id=blank)
  # An out-of-range id where the label is padding is allowed (optax reads a zero row there).
  ctc._check_inputs(fn, logits, logit_paddings, np.array([[1, 9], [1, 1]], np.int32),
                    np.array([[0, 1], [0, 0]]), 0)
