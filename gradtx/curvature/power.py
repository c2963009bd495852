"""Power iteration (optax's `power_iteration`, at gradtx's top level): the dominant eigenvalue
(largest in absolute value) of a matrix or a matrix-vector product, e.g. a curvature operator's
`matvec`. For the algebraically largest eigenvalue of an indefinite Hessian use
`gradtx.curvature.top_eigenvalues` (Lanczos)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from gradtx.tree import arithmetic as tree

__all__ = ["power_iteration"]


def _normalize_tree(x: Any) -> Any:
  return tree.scale(1.0 / tree.norm(x), x)


def power_iteration(
    matrix: Any | Callable[[Any], Any],
    *,
    v0: Any = None,
    num_iters: Any = 100,
    error_tolerance: Any = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
    key: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
  r"""Power iteration: the dominant eigenvalue and its eigenvector (optax's numerics).

  .. math:: v_{t+1} = \frac{A v_t}{\|A v_t\|}, \quad \lambda_t = v_t^\top A v_t

  stopping after `num_iters` products or when :math:`\|A v_t - \lambda_t v_t\| / |\lambda_t|`
  drops below `error_tolerance` (a bounded `lax.while_loop`).

  Args:
    matrix: an (n, n) array, or a callable matrix-vector product on pytrees (e.g. the `matvec`
      of a `gradtx.curvature.hessian` operator).
    v0: the start vector; required for a callable (a pytree like its input). For an array, by
      default uniform in [-1, 1] drawn with `key`.
    num_iters: the maximum number of iterations.
    error_tolerance: the relative residual at which to stop.
    precision: the precision of the matrix product when `matrix` is an array.
    key: the key for the default `v0` (default `jax.random.PRNGKey(0)`).

  Returns:
    `(eigenvalue, eigenvector)`, the eigenvector normalised.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> val, vec = gradtx.power_iteration(jnp.diag(jnp.asarray([1.0, -3.0, 2.0])))
    >>> round(float(val), 4)
    -3.0

  References:
    Golub and Van Loan, Matrix Computations, 4th ed., section 7.3.1 (the power method).
  """
  if callable(matrix):
    mvp = matrix
    if v0 is None:
      raise ValueError("gradtx.power_iteration: v0 must be provided when matrix is a callable "
                       "(the pytree structure of its input is unknown).")
  else:
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
      raise ValueError(f"gradtx.power_iteration: matrix must be a square (n, n) array or a "
                       f"callable, got shape {matrix.shape}.")
    mvp = lambda v: jnp.matmul(matrix, v, precision=precision)
    if v0 is None:
      if key is None:
        key = jax.random.PRNGKey(0)
      v0 = jax.random.uniform(key, shape=matrix.shape[-1:], dtype=matrix.dtype, minval=-1.0,
                              maxval=1.0)
  v0 = _normalize_tree(v0)

  def cond_fun(loop_vars):
    normalized, unnormalized, eig, iter_num = loop_vars
    residual_norm = tree.norm(tree.sub(unnormalized, tree.scale(eig, normalized)))
    converged = jnp.abs(residual_norm / eig) < error_tolerance
    return ~converged & (iter_num < num_iters)

  def body_fun(loop_vars):
    _, z, _, iter_num = loop_vars
    eigvec = _normalize_tree(z)
    z = mvp(eigvec)
    return eigvec, z, tree.vdot(eigvec, z), iter_num + 1

  init = (v0, mvp(v0), jnp.asarray(0.0), jnp.asarray(0))
  _, z, eig, _ = lax.while_loop(cond_fun, body_fun, init)
  return eig, _normalize_tree(z)
