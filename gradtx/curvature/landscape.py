"""Loss landscapes: filter-normalised random directions, 1-D and 2-D slices, and the linear
interpolation between two solutions, each evaluated on its grid by one jitted `lax.map`."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from gradtx import _checks

__all__ = ["filter_normalized_direction", "interpolate", "landscape_1d", "landscape_2d"]


def filter_normalized_direction(params: Any, key: jax.Array, *, zero_1d: bool = True) -> Any:
  r"""A random Gaussian direction with each filter rescaled to the norm of the params' filter.

  .. math:: d_{i,j} \leftarrow \frac{d_{i,j}}{\|d_{i,j}\|} \|\theta_{i,j}\|

  for filter :math:`j` of layer :math:`i`. A filter is an output channel: the *last* axis of a
  kernel (Flax's layout: `Dense` (in, out), `Conv` (..., in, out)), the norm taken over all
  other axes. Leaves with at most one dimension (biases, norm scales) are zeroed by default
  (the paper's `biasbn` option); with `zero_1d=False` they are normalised as one filter.

  Args:
    params: the parameters (a pytree of arrays).
    key: a PRNG key.
    zero_1d: zero the leaves with `ndim <= 1`.

  Returns:
    A params-shaped direction.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> p = {'w': jnp.ones((3, 2)), 'b': jnp.ones(2)}
    >>> d = gradtx.curvature.filter_normalized_direction(p, jax.random.key(0))
    >>> jnp.round(jnp.linalg.norm(d['w'], axis=0) ** 2, 4), d['b']
    (Array([3., 3.], dtype=float32), Array([0., 0.], dtype=float32))

  References:
    Li et al., `Visualizing the Loss Landscape of Neural Nets
    <https://arxiv.org/abs/1712.09913>`_, NeurIPS 2018.
  """
  _checks.check_bool("curvature.filter_normalized_direction", "zero_1d", zero_1d)
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, max(len(leaves), 1))

  def one(k, p):
    p = jnp.asarray(p)
    if p.ndim <= 1 and zero_1d:
      return jnp.zeros_like(p)
    d = jax.random.normal(k, p.shape, p.dtype)
    axes = tuple(range(p.ndim - 1)) if p.ndim > 1 else None
    norm = lambda x: jnp.sqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=p.ndim > 1))
    return d * norm(p) / jnp.maximum(norm(d), jnp.finfo(p.dtype).tiny)

  return jax.tree.unflatten(treedef, [one(k, p) for k, p in zip(keys, leaves)])


def _check_direction(fn: str, name: str, params: Any, direction: Any) -> None:
  _checks.check_same_structure(f"curvature.{fn}", "params", params, name, direction)
  for p, d in zip(jax.tree.leaves(params), jax.tree.leaves(direction)):
    if jnp.shape(p) != jnp.shape(d):
      raise ValueError(f"gradtx.curvature.{fn}: {name} must have the shapes of params, got a "
                       f"leaf of shape {jnp.shape(d)} for params' {jnp.shape(p)}.")


def _check_grid(fn: str, name: str, values: Any) -> jax.Array:
  values = jnp.asarray(values)
  if values.ndim != 1:
    raise ValueError(f"gradtx.curvature.{fn}: {name} must be a 1-D array of grid values, got "
                     f"shape {values.shape}.")
  return values


def _axpy(params, alpha, d):
  return jax.tree.map(lambda p, x: p + jnp.asarray(alpha, jnp.result_type(p)) * x, params, d)


@functools.partial(jax.jit, static_argnums=(0, 5))
def _slice_1d(loss_fn, params, direction, alphas, args, batch_size):
  return jax.lax.map(lambda a: loss_fn(_axpy(params, a, direction), *args), alphas,
                     batch_size=batch_size)


@functools.partial(jax.jit, static_argnums=(0, 7))
def _slice_2d(loss_fn, params, dx, dy, alphas, betas, args, batch_size):
  a, b = jnp.meshgrid(alphas, betas, indexing="ij")
  f = lambda ab: loss_fn(_axpy(_axpy(params, ab[0], dx), ab[1], dy), *args)
  out = jax.lax.map(f, (a.ravel(), b.ravel()), batch_size=batch_size)
  return out.reshape(a.shape)


def landscape_1d(loss_fn: Callable[..., Any], params: Any, direction: Any, alphas: Any,
                 *args: Any, batch_size: int | None = None) -> jax.Array:
  r"""The loss along a line through `params`: :math:`L(\theta + \alpha d)` for each alpha.

  Args:
    loss_fn: `loss_fn(params, *args)` -> scalar.
    params: the centre :math:`\theta`.
    direction: :math:`d`, params-shaped (e.g. `filter_normalized_direction`).
    alphas: 1-D array of step lengths.
    *args: the data.
    batch_size: evaluate this many grid points at once (`lax.map`'s `batch_size`).

  Returns:
    The losses, shape (len(alphas),).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> f = lambda p: jnp.sum(p ** 2)
    >>> gradtx.curvature.landscape_1d(f, jnp.zeros(2), jnp.ones(2), jnp.asarray([0., 1., 2.]))
    Array([0., 2., 8.], dtype=float32)

  References:
    Li et al., `Visualizing the Loss Landscape of Neural Nets
    <https://arxiv.org/abs/1712.09913>`_, NeurIPS 2018.
  """
  _check_direction("landscape_1d", "direction", params, direction)
  alphas = _check_grid("landscape_1d", "alphas", alphas)
  return _slice_1d(loss_fn, params, direction, alphas, args, batch_size)


def landscape_2d(loss_fn: Callable[..., Any], params: Any, dx: Any, dy: Any, alphas: Any,
                 betas: Any, *args: Any, batch_size: int | None = None) -> jax.Array:
  r"""The loss on a plane through `params`: :math:`L(\theta + \alpha d_x + \beta d_y)`.

  Args:
    loss_fn: `loss_fn(params, *args)` -> scalar.
    params: the centre :math:`\theta`.
    dx: the first direction, params-shaped.
    dy: the second direction, params-shaped.
    alphas: 1-D grid along `dx`.
    betas: 1-D grid along `dy`.
    *args: the data.
    batch_size: grid points evaluated at once.

  Returns:
    The losses, shape (len(alphas), len(betas)).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> f = lambda p: jnp.sum(p ** 2)
    >>> g = jnp.asarray([0., 1.])
    >>> gradtx.curvature.landscape_2d(f, jnp.zeros(2), jnp.asarray([1., 0.]),
    ...                               jnp.asarray([0., 1.]), g, g)
    Array([[0., 1.],
           [1., 2.]], dtype=float32)

  References:
    Li et al., `Visualizing the Loss Landscape of Neural Nets
    <https://arxiv.org/abs/1712.09913>`_, NeurIPS 2018.
  """
  _check_direction("landscape_2d", "dx", params, dx)
  _check_direction("landscape_2d", "dy", params, dy)
  alphas = _check_grid("landscape_2d", "alphas", alphas)
  betas = _check_grid("landscape_2d", "betas", betas)
  return _slice_2d(loss_fn, params, dx, dy, alphas, betas, args, batch_size)


def interpolate(loss_fn: Callable[..., Any], params_a: Any, params_b: Any, alphas: Any,
                *args: Any, batch_size: int | None = None) -> jax.Array:
  r"""The loss on the line between two solutions: :math:`L((1 - \alpha)\theta_a + \alpha \theta_b)`.

  Args:
    loss_fn: `loss_fn(params, *args)` -> scalar.
    params_a: :math:`\theta_a` (alpha = 0).
    params_b: :math:`\theta_b` (alpha = 1), same structure and shapes.
    alphas: 1-D grid (values outside [0, 1] extrapolate).
    *args: the data.
    batch_size: grid points evaluated at once.

  Returns:
    The losses, shape (len(alphas),).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> f = lambda p: jnp.sum(p ** 2)
    >>> gradtx.curvature.interpolate(f, jnp.zeros(2), jnp.ones(2), jnp.asarray([0., .5, 1.]))
    Array([0. , 0.5, 2. ], dtype=float32)

  References:
    Goodfellow, Vinyals and Saxe, `Qualitatively characterizing neural network optimization
    problems <https://arxiv.org/abs/1412.6544>`_, ICLR 2015.
  """
  _check_direction("interpolate", "params_b", params_a, params_b)
  alphas = _check_grid("interpolate", "alphas", alphas)
  direction = jax.tree.map(lambda a, b: b - a, params_a, params_b)
  return _slice_1d(loss_fn, params_a, direction, alphas, args, batch_size)
