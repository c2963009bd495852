"""Power iteration and the inverse p-th root (optax's `power_iteration` and
`matrix_inverse_pth_root`, at gradtx's top level): the dominant eigenvalue (largest in absolute
value) of a matrix or a matrix-vector product, e.g. a curvature operator's `matvec`, and
`A^{-1/p}` of a symmetric PSD matrix by coupled Newton iterations (Shampoo's and SOAP's
preconditioner roots). For the algebraically largest eigenvalue of an indefinite Hessian use
`gradtx.curvature.top_eigenvalues` (Lanczos)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradtx.tree import arithmetic as tree

__all__ = ["matrix_inverse_pth_root", "power_iteration"]


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


def _check_p(p: Any) -> None:
  if isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p not in (1, 2, 4, 8):
    raise ValueError(f"gradtx.matrix_inverse_pth_root: p must be 1, 2, 4 or 8, got {p!r}.")


def matrix_inverse_pth_root(
    matrix: Any,
    p: Any,
    num_iters: Any = 100,
    ridge_epsilon: Any = 1e-6,
    error_tolerance: Any = 1e-6,
    precision: lax.Precision = lax.Precision.HIGHEST,
) -> tuple[jax.Array, jax.Array]:
  r"""The inverse p-th root of a symmetric PSD matrix and its error (optax's numerics).

  Coupled Newton iterations (optax's numerics, float32): with :math:`\alpha = -1/p`, the ridge
  :math:`\epsilon = ` `ridge_epsilon` :math:`\cdot \max(\lambda_{\max}(A), 10^{-16})`
  (:math:`\lambda_{\max}` by `power_iteration`) and :math:`z = (1 + p) / (2 \|A + \epsilon
  I\|_F)`,

  .. math::
      M_0 = z (A + \epsilon I), \quad H_0 = z^{1/p} I, \quad
      T_k = (1 - \alpha) I + \alpha M_k, \quad M_{k+1} = T_k^p M_k, \quad H_{k+1} = H_k T_k

  so that :math:`M_k = H_k^p (A + \epsilon I) \to I` and :math:`H_k \to (A + \epsilon
  I)^{-1/p}`. The loop (a bounded `lax.while_loop`) stops after `num_iters` iterations, when
  :math:`\max |M_k - I|` < `error_tolerance`, or when that error grows by more than 1.2x (then
  the previous :math:`H` is returned).

  The returned error :math:`\max_{ij} |M_k - I|_{ij}` is the diagnostic of the root's quality:
  since :math:`M_k = H_k^p (A + \epsilon I)`, it is the entrywise residual of
  :math:`H^p (A + \epsilon I) = I` at the last iterate (0 for a 1 x 1 matrix, whose root is
  exact). Shampoo keeps its old preconditioner when a root is not finite.

  Args:
    matrix: a symmetric positive semi-definite (n, n) array.
    p: the root, 1, 2, 4 or 8 (a Python int or an int array).
    num_iters: the maximum number of Newton iterations.
    ridge_epsilon: the ridge, relative to the largest eigenvalue, that makes `matrix` definite.
    error_tolerance: stop when :math:`\max |M_k - I|` falls below it.
    precision: the precision of the matrix products.

  Returns:
    `(root, error)`: :math:`(A + \epsilon I)^{-1/p}` in `matrix`'s dtype and the float32 error
    :math:`\max |M_k - I|`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> root, error = gradtx.matrix_inverse_pth_root(jnp.diag(jnp.asarray([16.0, 1.0])), 4)
    >>> [round(float(x), 3) for x in jnp.diag(root)], bool(error < 1e-5)
    ([0.5, 1.0], True)

  References:
    Higham, "Functions of Matrices: Theory and Computation", SIAM 2008, p. 184, eq. 7.18.
    Anil, Gupta, Koren, Regan & Singer, "Scalable Second Order Optimization for Deep
    Learning", 2020. https://arxiv.org/abs/2002.09018
  """
  _check_p(p)
  matrix = jnp.asarray(matrix)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
    raise ValueError(f"gradtx.matrix_inverse_pth_root: matrix must be a square (n, n) array, got "
                     f"shape {matrix.shape}.")
  n = matrix.shape[0]
  alpha = jnp.asarray(-1.0 / p, jnp.float32)
  identity = jnp.eye(n, dtype=jnp.float32)
  max_ev, _ = power_iteration(matrix, num_iters=100, error_tolerance=1e-6, precision=precision)
  ridge_epsilon = ridge_epsilon * jnp.maximum(max_ev, 1e-16)

  def matmul(a, b):
    return jnp.matmul(a, b, precision=precision)

  def pow2(m):
    return matmul(m, m)

  def pow4(m):
    m2 = pow2(m)
    return matmul(m2, m2)

  def pow8(m):
    m4 = pow4(m)
    return matmul(m4, m4)

  powers = {1: lambda m: m, 2: pow2, 4: pow4, 8: pow8}

  def mat_power(m):  # T^p for p = 1, 2, 4, 8 (unrolled, as optax)
    if isinstance(p, int) and p in powers:  # a static p: only its branch is compiled
      return powers[p](m)
    exponent = jnp.round(jnp.log2(p))
    return lax.switch(jnp.asarray(exponent, jnp.int32), list(powers.values()), m)

  def cond_fun(state):
    i, _, _, _, error, run_step = state
    return jnp.logical_and(i < num_iters, jnp.logical_and(error > error_tolerance, run_step))

  def body_fun(state):
    i, mat_m, mat_h, _, error, _ = state
    mat_t = (1 - alpha) * identity + alpha * mat_m  # T_k = (1 - alpha) I + alpha M_k
    new_m = matmul(mat_power(mat_t), mat_m)  # M_{k+1} = T_k^p M_k
    new_h = matmul(mat_h, mat_t)  # H_{k+1} = H_k T_k
    new_error = jnp.max(jnp.abs(new_m - identity))
    # The error may rise for an iteration before it converges; a rise past 1.2x stops the loop.
    return i + 1, new_m, new_h, mat_h, new_error, new_error < error * 1.2

  if n == 1:
    return (matrix + ridge_epsilon) ** alpha, jnp.zeros([], jnp.float32)
  damped = matrix + ridge_epsilon * identity
  z = (1 + p) / (2 * jnp.linalg.norm(damped))
  mat_m0 = damped * z  # M_0 = z (A + eps I)
  error0 = jnp.max(jnp.abs(mat_m0 - identity))
  mat_h0 = identity * jnp.power(z, 1.0 / p)  # H_0 = z^{1/p} I
  _, mat_m, mat_h, old_h, _, converged = lax.while_loop(
      cond_fun, body_fun, (0, mat_m0, mat_h0, mat_h0, error0, True))
  error = jnp.max(jnp.abs(mat_m - identity))
  converged = jnp.asarray(converged, old_h.dtype)
  root = converged * mat_h + (1 - converged) * old_h
  return jnp.asarray(root, matrix.dtype), error
