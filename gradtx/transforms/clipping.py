"""Gradient clipping: element-wise, by global norm, by per-block RMS; scaling the backward pass."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, init_empty_state
from gradtx.numerics import abs_sq, global_norm

__all__ = ["clip", "clip_by_block_rms", "clip_by_global_norm", "scale_gradient"]


def _map(f: Any, updates: Any) -> Any:
  return jax.tree.map(lambda g: None if g is None else f(g), updates, is_leaf=is_none)


def clip(max_delta: Any) -> GradientTransformation:
  r"""Clips every update element-wise to :math:`[-\delta, \delta]`, as optax's `clip`.

  Bounds the step of each coordinate independently, so a single huge gradient entry cannot
  throw its parameter far; unlike norm clipping it changes the update's direction.

  .. math:: u_t = \min(\max(g_t, -\delta), \delta) \quad (\delta = \texttt{max\_delta})

  Args:
    max_delta: the largest absolute value of an update entry, :math:`\delta \geq 0`; a float
      or scalar array.

  Returns:
    A stateless `GradientTransformation` (state `ClipState()`, which is `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.clip(1.0)
    >>> tx.update(jnp.asarray([-3.0, 0.5, 2.0]), tx.init(jnp.zeros(3)))[0].tolist()
    [-1.0, 0.5, 1.0]

  References:
    `optax.clip` (optax 0.2.8).
  """
  _checks.check_scalar("clip", "max_delta", max_delta, low=0)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args

    def clip_fn(g):
      delta = _checks.as_dtype(max_delta, g)
      return jnp.clip(g, -delta, delta)

    return _map(clip_fn, updates), state

  return GradientTransformation(init_empty_state, update_fn)


def clip_by_global_norm(max_norm: Any) -> GradientTransformation:
  r"""Rescales all updates together when their global L2 norm reaches `max_norm`.

  Keeps the update's direction but caps its length, the standard remedy for exploding
  gradients in recurrent networks. This is the `clip_norms(gs, c)` of "Deep Learning with
  Theano", which clips when :math:`\|g\| \geq c`; optax's test :math:`\|g\| < c` keeps the
  gradient in exactly the same cases.

  .. math::
      \|g_t\| = \sqrt{\textstyle\sum_i \|g_{t,i}\|_2^2}, \qquad
      u_t = \begin{cases} g_t & \|g_t\| < c \\ (g_t / \|g_t\|)\, c & \text{otherwise}\end{cases}

  with :math:`c` = `max_norm` and :math:`i` running over all leaves. The clipped update is
  computed as :math:`g_t \cdot (c / \|g_t\|)`, one scalar factor, where optax computes
  :math:`(g_t / \|g_t\|) \cdot c` per element: equal up to float rounding, and it lets XLA fuse
  the clip into the next transformation instead of materialising the clipped gradient.

  Args:
    max_norm: the largest global norm, :math:`c \geq 0`; a float or scalar array. 0 (where a
      schedule under `inject_hyperparams` may end) gives zero updates.

  Returns:
    A stateless `GradientTransformation` (state `ClipByGlobalNormState()`, which is
    `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.clip_by_global_norm(1.0)
    >>> tx.update({'a': jnp.asarray([3.0]), 'b': jnp.asarray([4.0])}, tx.init(None))[0]['b']
    Array([0.8], dtype=float32)

  References:
    Pascanu, Mikolov & Bengio, "On the difficulty of training Recurrent Neural Networks", ICML
    2013. https://arxiv.org/abs/1211.5063
  """
  _checks.check_scalar("clip_by_global_norm", "max_norm", max_norm, low=0)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    g_norm = global_norm(updates)
    trigger = g_norm < max_norm

    # One scalar factor instead of optax's per-element `(g / norm) * max_norm`: a division per
    # element is an "expensive" op that XLA will not duplicate into each consumer, so the clipped
    # gradient would be materialised (a parameter-sized temporary, page-faulted afresh every step
    # on CPU) and re-read by every moment. A multiply by a scalar fuses into each consumer.
    # A zero norm reaches this branch only with max_norm <= 0: 0 / 1, not optax's NaN (0 / 0).
    factor = jnp.where(trigger, jnp.ones_like(g_norm),
                       max_norm / jnp.where(g_norm == 0, jnp.ones_like(g_norm), g_norm))

    def clip_fn(g):
      return g * factor.astype(g.dtype)

    return _map(clip_fn, updates), state

  return GradientTransformation(init_empty_state, update_fn)


def clip_by_block_rms(threshold: Any) -> GradientTransformation:
  r"""Rescales each leaf (a weight vector or matrix) whose RMS exceeds `threshold`.

  A per-block version of norm clipping: every parameter array is clipped on its own, so one
  layer's large gradient does not shrink the others' (as optax's `clip_by_block_rms`).

  .. math::
      u_{t,i} = g_{t,i} / \max\left(1, \operatorname{rms}(g_{t,i}) / \tau\right), \qquad
      \operatorname{rms}(x) = \sqrt{\operatorname{mean}(|x|^2)}

  with :math:`\tau` = `threshold` and :math:`i` indexing the leaves.

  Args:
    threshold: the largest RMS of a block, :math:`\tau \geq 0`; a float or scalar array. 0 gives
      zero updates (optax: NaN for an all-zero block).

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.clip_by_block_rms(1.0)
    >>> tx.update(jnp.asarray([3.0, -3.0]), tx.init(None))[0].tolist()
    [1.0, -1.0]

  References:
    `optax.clip_by_block_rms` (optax 0.2.8).
  """
  _checks.check_scalar("clip_by_block_rms", "threshold", threshold, low=0)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args

    def clip_fn(g):
      rms = jnp.sqrt(jnp.mean(abs_sq(g)))
      ratio = rms / _checks.as_dtype(threshold, rms)
      return g / jnp.maximum(1.0, jnp.where(rms == 0, 0.0, ratio))  # 0 / 0 only at threshold 0

    return _map(clip_fn, updates), state

  return GradientTransformation(init_empty_state, update_fn)


@jax.custom_vjp
def _scale_gradient(inputs: Any, scale: Any) -> Any:
  del scale  # used by the backward pass only
  return inputs


def _scale_gradient_fwd(inputs: Any, scale: Any) -> tuple[Any, Any]:
  return inputs, scale


def _scale_gradient_bwd(scale: Any, g: Any) -> tuple[Any, None]:
  return jax.tree.map(lambda g_: g_ * scale, g), None


_scale_gradient.defvjp(_scale_gradient_fwd, _scale_gradient_bwd)


def scale_gradient(inputs: Any, scale: Any) -> Any:
  r"""The identity on the forward pass; multiplies the gradient by `scale` on the backward pass.

  Damps (or cuts, with `scale=0`) the gradient flowing into a sub-network without changing
  its output, e.g. the encoder's share of an auxiliary loss (as optax's `scale_gradient`, a
  function of the inputs, not a `GradientTransformation`). A Python `scale` of 1 returns
  `inputs` and of 0 applies `jax.lax.stop_gradient`; any other value, or an array, uses a
  `jax.custom_vjp`.

  .. math:: f(x) = x, \qquad \frac{\partial L}{\partial x} = s \cdot
      \frac{\partial L}{\partial f(x)}

  with :math:`s` = `scale`.

  Args:
    inputs: a pytree of arrays.
    scale: :math:`s`, the factor of the backward gradient (a number or scalar array).

  Returns:
    `inputs`, unchanged, whose gradient is scaled by `scale`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> jax.grad(lambda x: 3.0 * gradtx.scale_gradient(x, 0.5))(1.0)
    Array(1.5, dtype=float32, weak_type=True)

  References:
    `optax.scale_gradient` (optax 0.2.8).
  """
  # Python numbers only: `scale == 1.0` on an array (or a tracer under jit/vmap) would need its
  # value, so arrays always take the custom_vjp path (optax would fail on a tracer here).
  if isinstance(scale, numbers.Number) and not isinstance(scale, bool):
    if scale == 1.0:
      return inputs
    if scale == 0.0:
      return jax.lax.stop_gradient(inputs)
  return _scale_gradient(inputs, scale)
