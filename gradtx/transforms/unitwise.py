"""Unit-wise clipping: adaptive gradient clipping (AGC) and its unit-wise norm and clip helpers."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, init_empty_state
from gradtx.numerics import abs_sq

__all__ = [
    "adaptive_grad_clip",
    "unitwise_clip",
    "unitwise_norm",
]


def _check_axis(fn: str, axis: Any) -> None:
  ints = (int, np.integer)
  ok = axis is None or (isinstance(axis, ints) and not isinstance(axis, bool)) or (
      isinstance(axis, tuple) and all(isinstance(a, ints) and not isinstance(a, bool)
                                      for a in axis))
  if not ok:
    raise TypeError(
        f"gradtx.{fn}: axis must be None, an int or a tuple of ints, got "
        f"{type(axis).__name__} {axis!r}.")


def unitwise_norm(x: Any, axis: int | tuple[int, ...] | None = None) -> jax.Array:
  r"""The L2 norm of each unit of `x` (a neuron's fan-in), broadcast back to `x`'s shape.

  A unit is a slice of `x` along `axis`. With `axis=None` the axes follow the usual layouts
  of weights (as optax's `unitwise_norm`): a scalar or vector (also after squeezing size-one
  axes) is one unit; a rank-2 `(in, out)` or rank-3 multi-head weight reduces axis 0; a rank-4
  `HWIO` convolution kernel axes `(0, 1, 2)`; a rank-5 `DHWIO` kernel axes `(0, 1, 2, 3)`.

  .. math:: \|x_i\|_F = \sqrt{\textstyle\sum_{j \in \text{unit } i} |x_j|^2}

  Args:
    x: an array (real or complex).
    axis: the axis or axes to reduce; None infers them from `x`'s rank as above.

  Returns:
    An array of `x`'s shape holding, at each element, the norm of its unit.

  Raises:
    ValueError: if `axis` is None and `x` has rank 6 or more.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.transforms.unitwise_norm(jnp.asarray([[3.0, 1.0], [4.0, 0.0]])).tolist()
    [[5.0, 1.0], [5.0, 1.0]]

  References:
    Brock, De, Smith & Simonyan, "High-Performance Large-Scale Image Recognition Without
    Normalization", ICML 2021 (adaptive gradient clipping). https://arxiv.org/abs/2102.06171
  """
  _check_axis("unitwise_norm", axis)
  x = jnp.asarray(x)
  if axis is not None:
    squared_norm = jnp.sum(abs_sq(x), axis=axis, keepdims=True)
  elif jnp.squeeze(x).ndim <= 1:  # scalars and vectors
    squared_norm = jnp.sum(abs_sq(x), keepdims=True)
  elif x.ndim in (2, 3):  # linear (in, out) or multi-head linear weights
    squared_norm = jnp.sum(abs_sq(x), axis=0, keepdims=True)
  elif x.ndim == 4:  # HWIO convolution kernels
    squared_norm = jnp.sum(abs_sq(x), axis=(0, 1, 2), keepdims=True)
  elif x.ndim == 5:  # DHWIO 3-D convolution kernels
    squared_norm = jnp.sum(abs_sq(x), axis=(0, 1, 2, 3), keepdims=True)
  else:
    raise ValueError(
        f"gradtx.unitwise_norm: x must have rank 0 to 5 when axis is None, got shape "
        f"{x.shape}. Hint: pass axis=... to name the axes of a unit.")
  return jnp.broadcast_to(jnp.sqrt(squared_norm), x.shape)


def unitwise_clip(g_norm: Any, max_norm: Any, grad: Any, div_eps: Any = 1e-6) -> jax.Array:
  r"""Rescales each unit of `grad` whose norm reaches `max_norm` down to `max_norm`.

  The clipping step of `adaptive_grad_clip` (as optax's `unitwise_clip`), with the unit norms
  precomputed by `unitwise_norm`. `div_eps` only guards the division; it cannot engage when
  `max_norm > 0`, since a unit with a smaller norm than `max_norm` is kept as it is.

  .. math:: u = \begin{cases} g & \|g\| < c \\ g \, c / \max(\|g\|, \epsilon) & \text{else}
      \end{cases}

  with :math:`\|g\|` = `g_norm`, :math:`c` = `max_norm`, :math:`\epsilon` = `div_eps`.

  Args:
    g_norm: the unit norms of `grad`, broadcast to its shape (`unitwise_norm(grad)`).
    max_norm: the largest norm of each unit, of the same shape.
    grad: the gradient (or update) to clip.
    div_eps: a floor on the divisor.

  Returns:
    The clipped `grad`.

  Raises:
    ValueError: if `g_norm`, `max_norm` and `grad` do not all have the same shape.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> g = jnp.asarray([3.0, 4.0])
    >>> gradtx.transforms.unitwise_clip(jnp.full(2, 5.0), jnp.full(2, 1.0), g).tolist()
    [0.6000000238418579, 0.800000011920929]

  References:
    Brock, De, Smith & Simonyan, "High-Performance Large-Scale Image Recognition Without
    Normalization", ICML 2021 (adaptive gradient clipping). https://arxiv.org/abs/2102.06171
  """
  shapes = {name: np.shape(v) for name, v in
            (("g_norm", g_norm), ("max_norm", max_norm), ("grad", grad))}
  if len(set(shapes.values())) != 1:
    raise ValueError(
        f"gradtx.unitwise_clip: g_norm, max_norm and grad must have the same shape, got "
        f"{shapes}.")
  # This max(., div_eps) is not AGC's eps: it only keeps the division finite.
  clipped_grad = grad * (max_norm / jnp.maximum(g_norm, div_eps))
  return jnp.where(g_norm < max_norm, grad, clipped_grad)


def adaptive_grad_clip(
    clipping: Any, eps: Any = 1e-3, axis: int | tuple[int, ...] | None = None
) -> GradientTransformation:
  r"""Clips each unit's update to at most `clipping` times its weights' norm (AGC).

  Adaptive gradient clipping (Brock et al. 2021, section 4.1, eq. 3) bounds the ratio of a
  unit's gradient norm to its weight norm rather than the gradient norm itself, so each layer
  may take steps in proportion to its own scale; it let NFNets train without batch
  normalisation at large batch sizes. Units (the rows feeding one output) are those of
  `unitwise_norm`; `eps` keeps zero-initialised weights (biases) from freezing.

  .. math::
      \|W_i\|^\star_F = \max(\|W_i\|_F, \epsilon), \qquad
      u_i = \begin{cases} g_i & \|g_i\|_F < \lambda \|W_i\|^\star_F \\
      \lambda \dfrac{\|W_i\|^\star_F}{\|g_i\|_F}\, g_i & \text{else} \end{cases}

  with :math:`\lambda` = `clipping`, :math:`\epsilon` = `eps`, :math:`i` a unit of a leaf.

  Args:
    clipping: :math:`\lambda \ge 0`, the largest ratio of a unit's update norm to its weight
      norm (the paper uses 0.01 to 0.16); a float or scalar array (batched under `jax.vmap`).
    eps: :math:`\epsilon \ge 0`, the floor of the weight norm.
    axis: the axes of a unit, as `unitwise_norm`; None infers them from each leaf's rank.

  Returns:
    A `GradientTransformation` whose `update` needs `params`; state `EmptyState()` (optax's
    `AdaptiveGradClipState`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adaptive_grad_clip(0.1)
    >>> p = jnp.asarray([3.0, 4.0])
    >>> tx.update(jnp.asarray([6.0, 8.0]), tx.init(p), p)[0].tolist()
    [0.30000001192092896, 0.4000000059604645]

  References:
    Brock, De, Smith & Simonyan, "High-Performance Large-Scale Image Recognition Without
    Normalization", ICML 2021, eq. 3. https://arxiv.org/abs/2102.06171
  """
  fn = "adaptive_grad_clip"
  _checks.check_scalar(fn, "clipping", clipping, low=0)
  _checks.check_scalar(fn, "eps", eps, low=0)
  _check_axis(fn, axis)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)

    def clip_fn(g, p):
      if g is None:
        return None
      g_norm, p_norm = unitwise_norm(g, axis=axis), unitwise_norm(p, axis=axis)
      max_norm = _checks.as_dtype(clipping, p_norm) * jnp.maximum(p_norm, eps)
      return unitwise_clip(g_norm, max_norm, g).astype(g.dtype)

    return jax.tree.map(clip_fn, updates, params, is_leaf=is_none), state

  return GradientTransformation(init_empty_state, update_fn)
