"""Per-block and global rescalings that keep no state: by the params' block norm or RMS, by the
update's global norm, and gradient centralization (optax's `scale_by_param_block_norm`,
`scale_by_param_block_rms`, `normalize_by_update_norm`, `centralize`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, init_empty_state
from gradtx.numerics import safe_norm, safe_root_mean_squares
from gradtx.tree.arithmetic import norm as tree_norm

__all__ = [
    "centralize",
    "normalize_by_update_norm",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
]


def _map_with_params(fn: str, f: Any, updates: Any, params: Any) -> Any:
  if params is None:
    raise _checks.missing_params_error(fn)
  _checks.check_same_structure(fn, "updates", updates, "params", params)
  return jax.tree.map(lambda u, p: None if u is None else f(u, p), updates, params,
                      is_leaf=is_none)


def scale_by_param_block_norm(min_scale: Any = 1e-3) -> GradientTransformation:
  r"""Scales each leaf's update by the L2 norm of that leaf's parameters (a "block").

  A block is one leaf of the params tree (a weight vector or matrix), so each layer's step is
  proportional to its weights' size, as in layer-wise adaptive methods (LARS, Fromage).

  .. math:: u_{t,i} = g_{t,i} \max(\|\theta_{t,i}\|_2, s)

  with :math:`s` = `min_scale` and :math:`i` indexing the leaves.

  Args:
    min_scale: :math:`s \geq 0`, the smallest scale; a float or scalar array.

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`) whose `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_param_block_norm()
    >>> tx.update(jnp.ones(2), tx.init(None), jnp.asarray([3.0, 4.0]))[0].tolist()
    [5.0, 5.0]

  References:
    You et al., "Large Batch Training of Convolutional Networks" (LARS), 2017.
    https://arxiv.org/abs/1708.03888
  """
  _checks.check_scalar("scale_by_param_block_norm", "min_scale", min_scale, low=0.0)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    scale_fn = lambda u, p: (u * safe_norm(p, min_scale)).astype(u.dtype)  # g max(|p|, s)
    scaled = _map_with_params("scale_by_param_block_norm", scale_fn, updates, params)
    return scaled, state

  return GradientTransformation(init_empty_state, update_fn)


def scale_by_param_block_rms(min_scale: Any = 1e-3) -> GradientTransformation:
  r"""Scales each leaf's update by the root mean square of that leaf's parameters.

  Adafactor's "relative step size": the step of each block is measured relative to the scale of
  its parameters, so the learning rate is unitless (Shazeer & Stern 2018, Section 8).

  .. math:: u_{t,i} = g_{t,i} \max(\operatorname{rms}(\theta_{t,i}), s), \qquad
      \operatorname{rms}(x) = \sqrt{\operatorname{mean}(|x|^2)}

  Args:
    min_scale: :math:`s \geq 0` (Adafactor's :math:`\epsilon_2`); a float or scalar array.

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`) whose `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_param_block_rms()
    >>> tx.update(jnp.ones(2), tx.init(None), jnp.asarray([3.0, -3.0]))[0].tolist()
    [3.0, 3.0]

  References:
    Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML 2018.
    https://arxiv.org/abs/1804.04235
  """
  _checks.check_scalar("scale_by_param_block_rms", "min_scale", min_scale, low=0.0)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    scale_fn = lambda u, p: (u * safe_root_mean_squares(p, min_scale)).astype(u.dtype)
    scaled = _map_with_params("scale_by_param_block_rms", scale_fn, updates, params)
    return scaled, state

  return GradientTransformation(init_empty_state, update_fn)


def normalize_by_update_norm(scale_factor: Any = 1.0, eps: Any = 1e-6) -> GradientTransformation:
  r"""Divides the updates by their global L2 norm (normalized gradient descent).

  Every step then has length `scale_factor` (up to `eps`), whatever the gradient's magnitude;
  a negative `scale_factor` makes it a descent step without `scale_by_learning_rate`.

  .. math:: u_t = g_t \,/\, \frac{\|g_t\|_2 + \epsilon}{c}

  with :math:`c` = `scale_factor` and the norm taken over all leaves together.

  Args:
    scale_factor: :math:`c \neq 0`, the length of the normalized update; a float or scalar array.
    eps: :math:`\epsilon \geq 0`, added to the norm; a float or scalar array.

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.normalize_by_update_norm(eps=0.0)
    >>> tx.update(jnp.asarray([3.0, 4.0]), tx.init(None))[0].tolist()
    [0.6000000238418579, 0.800000011920929]

  References:
    Nesterov, "Introductory Lectures on Convex Optimization", 2004, Section 3.2.3
    (normalized gradient methods). https://doi.org/10.1007/978-1-4419-8853-9
  """
  fn = "normalize_by_update_norm"
  _checks.check_scalar(fn, "scale_factor", scale_factor)
  if not _checks.is_tracer(scale_factor) and float(jnp.asarray(scale_factor)) == 0.0:
    raise ValueError(f"gradtx.{fn}: scale_factor must be non-zero, got {scale_factor!r}.")
  _checks.check_scalar(fn, "eps", eps, low=0.0)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    g_norm = (tree_norm(updates) + eps) / scale_factor  # (|g| + eps) / c
    out = jax.tree.map(lambda g: None if g is None else (g / g_norm).astype(g.dtype), updates,
                       is_leaf=is_none)
    return out, state

  return GradientTransformation(init_empty_state, update_fn)


def _subtract_mean(g: jax.Array) -> jax.Array:
  if g.ndim > 1:
    return g - g.mean(tuple(range(1, g.ndim)), keepdims=True)  # g - mean over axes 1..n
  return g


def centralize() -> GradientTransformation:
  r"""Gradient centralization: subtracts from each leaf its mean over all axes but the first.

  For a weight matrix or convolution kernel, each slice along the leading axis (one output unit
  in the layout optax assumes) then has zero mean; vectors and scalars pass unchanged.

  .. math:: u_{t}[j, \dots] = g_{t}[j, \dots] - \operatorname{mean}_{\dots}(g_{t}[j, \dots])

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.centralize()
    >>> tx.update(jnp.asarray([[1.0, 2.0, 3.0]]), tx.init(None))[0].tolist()
    [[-1.0, 0.0, 1.0]]

  References:
    Yong et al., "Gradient Centralization: A New Optimization Technique for Deep Neural
    Networks", ECCV 2020. https://arxiv.org/abs/2004.01461
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return jax.tree.map(lambda g: None if g is None else _subtract_mean(g), updates,
                        is_leaf=is_none), state

  return GradientTransformation(init_empty_state, update_fn)
