"""Keskar et al.'s epsilon-sharpness of a minimum, maximised inside `jit` (no host SciPy loop)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import flatten_util

from gradtx import _checks
from gradtx.curvature.estimators import check_count

__all__ = ["keskar_sharpness"]

_FN = "curvature.keskar_sharpness"


def subspace_matrix(key: jax.Array, n: int, p: int, dtype: Any) -> jax.Array:
  """The random (n, p) matrix A of the subspace variant: Gaussian columns of unit norm."""
  a = jax.random.normal(key, (n, p), dtype)
  return a / jnp.linalg.norm(a, axis=0, keepdims=True)


def keskar_sharpness(loss_fn: Callable[..., Any], params: Any, *args: Any,
                     epsilon: float = 1e-3, subspace_dim: int | None = None,
                     key: jax.Array | None = None, num_steps: int = 100,
                     num_restarts: int = 8) -> jax.Array:
  r"""Keskar et al.'s sharpness: the largest relative loss increase in a box around `params`.

  .. math:: \phi_{x,f}(\epsilon, A) = 100 \cdot
            \frac{\max_{y \in C_\epsilon} f(x + A y) - f(x)}{1 + f(x)}, \quad
            C_\epsilon = \{ y : |y_i| \le \epsilon (|(A^+ x)_i| + 1) \}

  with :math:`A = I` (the full space, default) or a random :math:`n \times p` matrix with unit
  columns (`subspace_dim=p`). The inner maximisation is projected sign-gradient ascent (the
  steepest ascent for a box) from `num_restarts` random points of the box (`vmap`ped),
  `num_steps` steps of decreasing length in a `fori_loop`, keeping the best value seen (and
  :math:`y = 0`, so :math:`\phi \ge 0`).

  Args:
    loss_fn: `loss_fn(params, *args)` -> scalar loss.
    params: the point :math:`x`.
    *args: the data.
    epsilon: the box size (> 0).
    subspace_dim: `None` for the full space, else :math:`p \ge 1`.
    key: the PRNG key of the start point and of :math:`A` (default `jax.random.PRNGKey(0)`).
    num_steps: ascent steps (>= 1).
    num_restarts: random starting points (>= 1).

  Returns:
    The scalar :math:`\phi`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> loss = lambda p: 0.5 * jnp.sum(p ** 2)
    >>> round(float(gradtx.curvature.keskar_sharpness(loss, jnp.zeros(2), epsilon=0.1)), 4)
    1.0

  References:
    Keskar et al., `On Large-Batch Training for Deep Learning: Generalization Gap and Sharp
    Minima <https://arxiv.org/abs/1609.04836>`_, ICLR 2017 (metric 2.1).
  """
  _checks.check_scalar(_FN, "epsilon", epsilon, low=0.0, low_open=True)
  if subspace_dim is not None:
    subspace_dim = check_count(_FN.split(".")[-1], "subspace_dim", subspace_dim)
  num_steps = check_count(_FN.split(".")[-1], "num_steps", num_steps)
  num_restarts = check_count(_FN.split(".")[-1], "num_restarts", num_restarts)
  if key is None:
    key = jax.random.PRNGKey(0)
  out = jax.eval_shape(loss_fn, params, *args)
  if getattr(out, "shape", None) != ():
    raise ValueError(f"gradtx.{_FN}: loss_fn must return a scalar loss, got "
                     f"{getattr(out, 'shape', type(out).__name__)}.")
  x, unravel = flatten_util.ravel_pytree(params)
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  start_key, subspace_key = jax.random.split(key)
  if subspace_dim is None:
    lift = lambda y: y
    coords = x
  else:
    a = subspace_matrix(subspace_key, x.size, subspace_dim, x.dtype)
    lift = lambda y: a @ y
    coords = jnp.linalg.pinv(a) @ x
  bound = epsilon * (jnp.abs(coords) + 1)
  f = lambda y: loss_fn(unravel(x + lift(y)), *args).astype(x.dtype)
  f0 = f(jnp.zeros_like(bound))
  y0 = jax.random.uniform(start_key, (num_restarts,) + bound.shape, x.dtype, -1.0, 1.0) * bound
  value_and_grad = jax.value_and_grad(f)

  def body(t, carry):
    y, best = carry
    value, g = value_and_grad(y)
    step = 0.5 * bound * (1.0 - t / num_steps)
    y = jnp.clip(y + step * jnp.sign(g), -bound, bound)
    return y, jnp.maximum(best, value)

  def ascend(start):
    y, best = jax.lax.fori_loop(0, num_steps, body, (start, f0))
    return jnp.maximum(best, f(y))

  best = jnp.max(jax.vmap(ascend)(y0))
  return 100.0 * (best - f0) / (1.0 + f0)
