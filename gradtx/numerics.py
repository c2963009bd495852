"""Numerically safe scalars and norms: saturating step counters, norms with safe gradients at 0,
the global norm of a pytree; non-negative least squares (optax's `linear_algebra` functions)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from gradtx._checks import check_int, check_scalar, is_tracer

__all__ = [
    "abs_sq",
    "global_norm",
    "nnls",
    "safe_increment",
    "safe_norm",
    "safe_root_mean_squares",
]


def safe_increment(count: Any) -> jax.Array:
  r"""Adds one to a counter, saturating at the dtype's maximum instead of wrapping (as optax).

  A step counter that overflows would wrap to the dtype's minimum and break every schedule and
  bias correction that reads it; this one stays at the maximum. Integer counters (int8 to
  int64, uint8 to uint64 where JAX has them, i.e. 64-bit ones with `jax_enable_x64`) saturate
  at `iinfo(dtype).max`, floating ones (float16, bfloat16, float32, float64) at
  `finfo(dtype).max`. `gradtx.safe_int32_increment` is another name for this function.

  .. math:: c_{t+1} = \begin{cases} c_t + 1 & c_t < c_{\max} \\ c_{\max} & \text{else}
      \end{cases}

  Args:
    count: the counter, a scalar (or array) of an integer or floating dtype.

  Returns:
    `count + 1`, or the dtype's maximum where `count` already holds it, with `count`'s dtype.

  Raises:
    ValueError: if `count`'s dtype is neither integer nor floating (e.g. bool or complex).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> int(gradtx.safe_increment(jnp.asarray(2**31 - 1, jnp.int32)))
    2147483647
    >>> gradtx.safe_increment(jnp.asarray(255, jnp.uint8))
    Array(255, dtype=uint8)

  References:
    `optax.safe_increment` (optax 0.2.8).
  """
  dtype = jnp.asarray(count).dtype
  if jnp.issubdtype(dtype, jnp.integer):
    max_value = jnp.iinfo(dtype).max
  elif jnp.issubdtype(dtype, jnp.floating):
    max_value = jnp.finfo(dtype).max
  else:
    raise ValueError(
        f"gradtx.safe_increment: count must have an integer or floating dtype, got {dtype}.")
  max_value = jnp.array(max_value, dtype)
  one = jnp.array(1, dtype)
  return jnp.where(count < max_value, count + one, max_value)


def abs_sq(x: jax.Array) -> jax.Array:
  r"""Squared magnitude `|x|^2`, real for complex `x`.

  .. math:: |x|^2 = \operatorname{Re}(x)^2 + \operatorname{Im}(x)^2

  Args:
    x: an array, real or complex.

  Returns:
    An array shaped like `x`, of `x`'s real dtype.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> float(gradtx.abs_sq(jnp.asarray(3.0 + 4.0j)))
    25.0

  References:
    `optax._src.numerics.abs_sq` (optax 0.2.8).
  """
  x = jnp.asarray(x)
  if jnp.iscomplexobj(x):
    return (x.conj() * x).real
  return x * x


def global_norm(updates: Any) -> jax.Array:
  r"""The L2 norm of all leaves together, :math:`\sqrt{\sum_i \|g_i\|_2^2}`.

  Args:
    updates: a pytree of arrays (None leaves are skipped).

  Returns:
    A scalar array (float32 zero for a tree without leaves).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> float(gradtx.global_norm({'a': jnp.asarray([3.0]), 'b': jnp.asarray([4.0])}))
    5.0

  References:
    `optax.global_norm` (optax 0.2.8).
  """
  leaves = [x for x in jax.tree.leaves(updates) if x is not None]
  if not leaves:
    return jnp.zeros([], jnp.float32)
  return jnp.sqrt(sum(jnp.sum(abs_sq(x)) for x in leaves))


def safe_norm(
    x: Any,
    min_norm: Any,
    ord: float | str | None = None,  # numpy's and optax's name for the order
    axis: int | tuple[int, ...] | None = None,
    keepdims: bool = False,
) -> jax.Array:
  r"""`max(norm(x), min_norm)` whose gradient is 0, not NaN, where the norm is below `min_norm`.

  The plain `jnp.maximum(jnp.linalg.norm(x), min_norm)` has a NaN gradient at `x = 0`: JAX
  differentiates both branches, and the norm's derivative :math:`x / \|x\|` is `0/0` there.
  Here `x` is replaced by ones wherever the norm is at most `min_norm` before the norm is taken
  again, so the discarded branch is finite (as optax's `safe_norm`).

  .. math:: \operatorname{safe\_norm}(x) = \max(\|x\|_{\mathrm{ord}}, m), \qquad
      \nabla \operatorname{safe\_norm}(x) = 0 \text{ where } \|x\| \le m

  Args:
    x: an array.
    min_norm: :math:`m`, the lower bound of the result (a number or an array broadcastable to
      the norm).
    ord: the order of the norm, as `jnp.linalg.norm` (None, a non-zero int, `inf`, `-inf`,
      'fro', 'nuc').
    axis: the axis (vector norms) or two axes (matrix norms) to reduce, as `jnp.linalg.norm`;
      None reduces a vector or matrix `x` entirely.
    keepdims: keep the reduced axes as size-one dimensions.

  Returns:
    The norm, at least `min_norm`, with a finite gradient everywhere.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> float(gradtx.safe_norm(jnp.asarray([3.0, 4.0]), 1.0))
    5.0
    >>> jax.grad(lambda x: gradtx.safe_norm(x, 1e-6))(jnp.zeros(2)).tolist()
    [0.0, 0.0]

  References:
    `optax.safe_norm` (optax 0.2.8).
  """
  norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
  x = jnp.where(norm <= min_norm, jnp.ones_like(x), x)
  norm = norm if keepdims else jnp.squeeze(norm, axis=axis)
  masked_norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
  return jnp.where(norm <= min_norm, min_norm, masked_norm)


def safe_root_mean_squares(x: Any, min_rms: Any) -> jax.Array:
  r"""`max(rms(x), min_rms)` whose gradient is 0, not NaN, where the RMS is below `min_rms`.

  The same trick as `safe_norm` for the root mean square (as optax's
  `safe_root_mean_squares`): where :math:`\operatorname{rms}(x) \le m`, `x` is replaced by
  ones inside the discarded branch, so `jax.grad` at `x = 0` is 0 instead of NaN.

  .. math:: \operatorname{rms}(x) = \sqrt{\operatorname{mean}(|x|^2)}, \qquad
      \operatorname{safe\_rms}(x) = \max(\operatorname{rms}(x), m)

  Args:
    x: an array (real or complex).
    min_rms: :math:`m`, the lower bound of the result.

  Returns:
    A scalar: the RMS of all of `x`, at least `min_rms`, with a finite gradient everywhere.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> float(gradtx.safe_root_mean_squares(jnp.asarray([3.0, -3.0]), 1.0))
    3.0
    >>> jax.grad(lambda x: gradtx.safe_root_mean_squares(x, 1e-6))(jnp.zeros(2)).tolist()
    [0.0, 0.0]

  References:
    `optax.safe_root_mean_squares` (optax 0.2.8).
  """
  rms = jnp.sqrt(jnp.mean(abs_sq(x)))
  x = jnp.where(rms <= min_rms, jnp.ones_like(x), x)
  return jnp.where(rms <= min_rms, min_rms, jnp.sqrt(jnp.mean(abs_sq(x))))


def _spectral_radius_upper_bound(matrix: jax.Array) -> jax.Array:
  """min(Frobenius norm, largest absolute column sum): both bound the spectral radius (optax's
  `get_spectral_radius_upper_bound`, same operations)."""
  frobenius = jnp.linalg.matrix_norm(matrix, ord="fro")
  max_column_sum = jnp.linalg.matrix_norm(matrix, ord=1) if matrix.size != 0 else 0
  return jnp.minimum(frobenius, max_column_sum)


def nnls(A: Any, b: Any, iters: int, unroll: int | bool = 1,
         L: Any = None) -> jax.Array:
  r"""Non-negative least squares by fast projected gradient (Polyak 2015), as optax.

  Solves :math:`\min_{x \ge 0} \|A x - b\|_2`.

  A Nesterov-accelerated gradient step on :math:`\tfrac12\|Ax - b\|^2` with step :math:`1/L`,
  projected onto :math:`x \ge 0`, for exactly `iters` steps (a `lax.scan`: bounded, vmappable),
  from :math:`x_0 = p_0 = 0,\ c_0 = 0`:

  .. math::
    Q = A^\top A,\ q = A^\top b,\quad
    c_{k+1} = \tfrac{1 + \sqrt{1 + 4 c_k^2}}{2},\quad s_k = \tfrac{c_k - 1}{c_{k+1}},\quad
    x_{k+1} = \max\big(p_k - (Q p_k - q) / L,\ 0\big),\quad
    p_{k+1} = x_{k+1} + s_k (x_{k+1} - x_k)

  Args:
    A: the matrix, shape `(M, N)`.
    b: the right-hand side, shape `(M,)` or `(M, K)` (K problems at once), floating.
    iters: the number of iterations, a Python int >= 0 (static).
    unroll: `lax.scan`'s unroll: an int >= 1 or a bool.
    L: an upper bound on the largest eigenvalue of :math:`A^\top A`, a scalar >= 0; None
      computes :math:`\min(\|Q\|_F, \|Q\|_1)`. 0 is replaced by 1.

  Returns:
    :math:`x`, shape `(N,)` or `(N, K)`, with `b`'s dtype.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> x = gradtx.nnls(jnp.array([[1., 2.], [3., 4.]]), jnp.array([5., 6.]), 10**3)
    >>> print(f"{x[0]:.2f} {x[1]:.2f}")
    0.00 1.70

  References:
    R. A. Polyak, `Projected gradient method for non-negative least square
    <http://www.ams.org/books/conm/636/>`_, Contemporary Mathematics 636, 2015.
  """
  fn = "nnls"
  if not hasattr(A, "ndim") or A.ndim != 2:
    raise ValueError(f"gradtx.{fn}: A must be a matrix (2 dimensions), got shape "
                     f"{jnp.shape(A)}.")
  if not hasattr(b, "ndim") or b.ndim not in (1, 2):
    raise ValueError(f"gradtx.{fn}: b must have shape (M,) or (M, K), got {jnp.shape(b)}.")
  if b.shape[0] != A.shape[0]:
    raise ValueError(f"gradtx.{fn}: b must have A's number of rows, {A.shape[0]}, as its "
                     f"first dimension; got A of shape {A.shape} and b of shape {b.shape}.")
  if not jnp.issubdtype(b.dtype, jnp.inexact):
    raise TypeError(f"gradtx.{fn}: b must have a floating dtype, got {b.dtype}.")
  if is_tracer(iters):
    raise TypeError(f"gradtx.{fn}: iters must be a static Python int (the scan length), got a "
                    "traced value.")
  check_int(fn, "iters", iters, 0)
  if not isinstance(unroll, bool):
    check_int(fn, "unroll", unroll, 1)
  check_scalar(fn, "L", L, low=0, optional=True)

  Q = A.mT @ A
  q = A.mT @ b
  if L is None:
    L = _spectral_radius_upper_bound(Q)
  L = jnp.where(L == 0, 1, L)  # x = 0 is optimal when Q = 0; avoids dividing by 0

  def step(carry, _):
    x, p, c = carry
    c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
    s = (c - 1) / c_next
    x_next = (p - (Q @ p - q) / L).clip(0)
    p_next = x_next + s * (x_next - x)
    return (x_next, p_next, c_next), None

  x = jnp.zeros_like(b, shape=A.shape[-1:] + b.shape[1:])
  (x, _, _), _ = lax.scan(step, (x, x, 0.), length=int(iters), unroll=unroll)
  return x
