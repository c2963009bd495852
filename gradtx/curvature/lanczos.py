"""Lanczos tridiagonalisation of a curvature operator, its extreme eigenpairs and the spectral
density by stochastic Lanczos quadrature.

The Lanczos loop is a `fori_loop` of exactly `order` steps with fixed memory: the basis is one
(order, n) array (n = number of parameters). Full reorthogonalisation (the default) keeps the
basis orthogonal in finite precision; on a breakdown (an invariant subspace found before `order`
steps, e.g. a repeated eigenvalue) the loop continues with a random vector orthogonal to the
basis and a zero off-diagonal, so the tridiagonal stays exact. The small (order, order)
tridiagonal eigenproblem is solved with `jnp.linalg.eigh` in float64 when `jax_enable_x64` is on,
else in float32 (no host NumPy inside `jit`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx.curvature.estimators import check_count, check_operator
from gradtx.curvature.operators import LinearOperator

__all__ = ["bottom_eigenvalues", "lanczos", "spectral_density", "top_eigenvalues"]


def _check_order(fn: str, op: LinearOperator, order: Any, name: str = "order") -> int:
  order = check_count(fn, name, order)
  if order > op.size:
    raise ValueError(f"gradtx.curvature.{fn}: {name} must be at most the dimension of the "
                     f"operator ({op.size} parameters), got {order}.")
  return order


def _tridiagonal_dtype() -> Any:
  return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _orthogonalize(basis: jax.Array, w: jax.Array) -> jax.Array:
  """w minus its projection on the rows of `basis` (twice: 'twice is enough')."""
  for _ in range(2):
    w = w - basis.T @ (basis @ w)
  return w


def _lanczos_flat(op: LinearOperator, key: jax.Array, order: int, v0: jax.Array | None,
                  reorthogonalize: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(alphas (order,), betas (order,) with betas[j] coupling j and j+1, basis (order, n))."""
  n, dtype = op.size, op.dtype
  start_key, restart_key = jax.random.split(key)
  if v0 is None:
    v0 = jax.random.normal(start_key, (n,), dtype)
  v0 = v0.astype(dtype) / jnp.linalg.norm(v0)
  tiny = jnp.finfo(dtype).tiny

  def body(j, carry):
    basis, alphas, betas, v, v_prev, beta_prev, scale = carry
    basis = basis.at[j].set(v)
    w = op.flat_matvec(v)
    alpha = jnp.vdot(w, v)
    w = w - alpha * v - beta_prev * v_prev
    if reorthogonalize:
      w = _orthogonalize(basis, w)
    beta = jnp.linalg.norm(w)
    scale = jnp.maximum(scale, jnp.maximum(jnp.abs(alpha), beta))
    broke = beta <= 100 * jnp.finfo(dtype).eps * scale

    def restart(_):
      r = jax.random.normal(jax.random.fold_in(restart_key, j), (n,), dtype)
      r = _orthogonalize(basis, r)
      return r / jnp.maximum(jnp.linalg.norm(r), tiny), jnp.zeros((), dtype)

    def proceed(_):
      return w / jnp.maximum(beta, tiny), beta

    v_next, beta = jax.lax.cond(broke, restart, proceed, None)
    return basis, alphas.at[j].set(alpha), betas.at[j].set(beta), v_next, v, beta, scale

  zeros = jnp.zeros((order,), dtype)
  init = (jnp.zeros((order, n), dtype), zeros, zeros, v0, jnp.zeros((n,), dtype),
          jnp.zeros((), dtype), jnp.zeros((), dtype))
  basis, alphas, betas, *_ = jax.lax.fori_loop(0, order, body, init)
  return alphas, betas, basis


def _tridiagonal_eigh(alphas: jax.Array, off: jax.Array) -> tuple[jax.Array, jax.Array]:
  dtype = _tridiagonal_dtype()
  a, b = alphas.astype(dtype), off.astype(dtype)
  t = jnp.diag(a) + jnp.diag(b, 1) + jnp.diag(b, -1)
  return jnp.linalg.eigh(t)


def lanczos(op: LinearOperator, key: jax.Array, order: int, *, reorthogonalize: bool = True,
            v0: Any = None) -> tuple[jax.Array, jax.Array, Any]:
  r"""`order` steps of the Lanczos iteration on `op`: the tridiagonal and the Krylov basis.

  .. math:: H V^\top = V^\top T + \beta_m v_{m+1} e_m^\top, \quad
            T = \operatorname{tridiag}(\beta, \alpha, \beta)

  Args:
    op: a curvature `LinearOperator` (symmetric).
    key: a PRNG key (the start vector when `v0` is None, and restarts after a breakdown).
    order: the number of steps :math:`m`, 1 <= order <= op.size (equal to the size is allowed).
    reorthogonalize: full reorthogonalisation against the whole basis at every step.
    v0: optional params-shaped start vector (normalised here).

  Returns:
    `(alphas, betas, basis)`: the diagonal (order,), the off-diagonal (order - 1,) and the
    orthonormal basis, a params-shaped pytree with a leading `order` axis (memory order x n).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: 0.5 * jnp.sum(jnp.arange(1.0, 4.0) * p ** 2),
    ...                               jnp.zeros(3))
    >>> a, b, _ = gradtx.curvature.lanczos(op, jax.random.key(0), 3)
    >>> round(float(jnp.sum(a)), 4)  # the trace of T equals the trace of H
    6.0

  References:
    Lanczos, `An iteration method for the solution of the eigenvalue problem of linear
    differential and integral operators <https://doi.org/10.6028/jres.045.026>`_, 1950;
    Golub and Van Loan, Matrix Computations, 4th ed., section 10.1.
  """
  fn = "lanczos"
  check_operator(fn, op)
  order = _check_order(fn, op, order)
  flat_v0 = None
  if v0 is not None:
    from gradtx._checks import check_same_structure  # noqa: PLC0415
    check_same_structure(f"curvature.{fn}", "params", op.params, "v0", v0)
    flat_v0 = op.ravel(v0)
  alphas, betas, basis = _lanczos_flat(op, key, order, flat_v0, reorthogonalize)
  return alphas, betas[:-1], jax.vmap(op.unravel)(basis)


def _extreme(fn: str, op: LinearOperator, k: int, key: jax.Array, order: int | None,
             reorthogonalize: bool, largest: bool) -> tuple[jax.Array, Any]:
  check_operator(fn, op)
  k = _check_order(fn, op, k, "k")
  if order is None:
    order = min(op.size, max(3 * k, 40))
  order = _check_order(fn, op, order)
  if order < k:
    raise ValueError(f"gradtx.curvature.{fn}: order must be >= k ({k}), got {order}.")
  alphas, betas, basis = _lanczos_flat(op, key, order, None, reorthogonalize)
  theta, y = _tridiagonal_eigh(alphas, betas[:-1])
  idx = jnp.arange(order - 1, order - 1 - k, -1) if largest else jnp.arange(k)
  values = theta[idx]
  vectors = y[:, idx].T.astype(basis.dtype) @ basis
  vectors = vectors / jnp.linalg.norm(vectors, axis=1, keepdims=True)
  return values, jax.vmap(op.unravel)(vectors)


def top_eigenvalues(op: LinearOperator, k: int, key: jax.Array, *, order: int | None = None,
                    reorthogonalize: bool = True) -> tuple[jax.Array, Any]:
  r"""The `k` algebraically largest eigenvalues of `op` and their eigenvectors (Lanczos).

  Unlike power iteration (largest :math:`|\lambda|`), this finds the largest *signed*
  eigenvalues of an indefinite Hessian: the Ritz values of an `order`-step Lanczos run.

  Args:
    op: a curvature `LinearOperator`.
    k: how many, 1 <= k <= op.size.
    key: a PRNG key (the start vector).
    order: Lanczos steps (default min(op.size, max(3k, 40))); at least k, at most op.size.
    reorthogonalize: full reorthogonalisation (recommended).

  Returns:
    `(values, vectors)`: values (k,) in decreasing order (float64 under x64, else float32);
    vectors a params-shaped pytree with a leading k axis, unit norm.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: 0.5 * jnp.sum(jnp.asarray([3., -1., 2.]) * p ** 2),
    ...                               jnp.zeros(3))
    >>> vals, vecs = gradtx.curvature.top_eigenvalues(op, 2, jax.random.key(0))
    >>> [round(float(v), 4) for v in vals]
    [3.0, 2.0]

  References:
    Ghorbani, Krishnan and Xiao, `An Investigation into Neural Net Optimization via Hessian
    Eigenvalue Density <https://arxiv.org/abs/1901.10159>`_, ICML 2019.
  """
  return _extreme("top_eigenvalues", op, k, key, order, reorthogonalize, True)


def bottom_eigenvalues(op: LinearOperator, k: int, key: jax.Array, *, order: int | None = None,
                       reorthogonalize: bool = True) -> tuple[jax.Array, Any]:
  r"""The `k` algebraically smallest eigenvalues of `op` and their eigenvectors (Lanczos).

  The most negative curvature directions of a Hessian (saddle points); see `top_eigenvalues`.
  The Ritz pairs of an `order`-step Lanczos run :math:`H V^\top \approx V^\top T`:

  .. math:: T s_i = \theta_i s_i, \quad \theta_1 \le \dots \le \theta_k, \qquad
            \lambda_i \approx \theta_i, \quad u_i \approx V^\top s_i

  with :math:`H` = `op`, :math:`k` = `k` and :math:`m` = `order` rows in :math:`V`.

  Args:
    op: a curvature `LinearOperator`.
    k: how many, 1 <= k <= op.size.
    key: a PRNG key.
    order: Lanczos steps (default min(op.size, max(3k, 40))).
    reorthogonalize: full reorthogonalisation.

  Returns:
    `(values, vectors)`: values (k,) in increasing order; vectors params-shaped, leading k axis.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: 0.5 * jnp.sum(jnp.asarray([3., -1., 2.]) * p ** 2),
    ...                               jnp.zeros(3))
    >>> vals, _ = gradtx.curvature.bottom_eigenvalues(op, 1, jax.random.key(0))
    >>> round(float(vals[0]), 4)
    -1.0

  References:
    Ghorbani, Krishnan and Xiao, `An Investigation into Neural Net Optimization via Hessian
    Eigenvalue Density <https://arxiv.org/abs/1901.10159>`_, ICML 2019.
  """
  return _extreme("bottom_eigenvalues", op, k, key, order, reorthogonalize, False)


def spectral_density(op: LinearOperator, key: jax.Array, order: int = 90, num_probes: int = 1,
                     *, grid_size: int = 1000, sigma: Any = None, reorthogonalize: bool = True
                     ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  r"""The eigenvalue density of `op` by stochastic Lanczos quadrature (SLQ).

  For each Rademacher probe :math:`z_j / \|z_j\|`, Lanczos gives Ritz values
  :math:`\theta_{ji}` and weights :math:`\tau_{ji}` (squared first components of the
  tridiagonal's eigenvectors, summing to 1); the density is Gaussian-smoothed:

  .. math:: \phi(t) = \frac{1}{m} \sum_j \sum_i \tau_{ji}\, \mathcal{N}(t; \theta_{ji}, \sigma^2)

  Args:
    op: a curvature `LinearOperator`.
    key: a PRNG key.
    order: Lanczos steps per probe, 1 <= order <= op.size.
    num_probes: :math:`m \ge 1`.
    grid_size: the number of grid points (>= 2).
    sigma: the Gaussian kernel width; default one hundredth of the spread of the Ritz values.
    reorthogonalize: full reorthogonalisation.

  Returns:
    `(grid, density, ritz_values, weights)`: the grid (grid_size,), the density on it
    (renormalised to integrate to 1 by the trapezoid rule), and the Ritz values and weights,
    each (num_probes, order).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: 0.5 * jnp.sum(jnp.arange(4.0) * p ** 2),
    ...                               jnp.zeros(4))
    >>> grid, dens, ritz, w = gradtx.curvature.spectral_density(op, jax.random.key(0), 4)
    >>> round(float(jnp.trapezoid(dens, grid)), 4)
    1.0

  References:
    Ghorbani, Krishnan and Xiao, `An Investigation into Neural Net Optimization via Hessian
    Eigenvalue Density <https://arxiv.org/abs/1901.10159>`_, ICML 2019; Lin, Saad and Yang,
    `Approximating spectral densities of large matrices <https://arxiv.org/abs/1308.5467>`_,
    SIAM Review 2016.
  """
  fn = "spectral_density"
  check_operator(fn, op)
  order = _check_order(fn, op, order)
  num_probes = check_count(fn, "num_probes", num_probes)
  grid_size = check_count(fn, "grid_size", grid_size, 2)
  if sigma is not None:
    from gradtx._checks import check_scalar  # noqa: PLC0415
    check_scalar(f"curvature.{fn}", "sigma", sigma, low=0.0, low_open=True)

  def probe(k):
    probe_key, lanczos_key = jax.random.split(k)
    z = jax.random.rademacher(probe_key, (op.size,), jnp.float32).astype(op.dtype)
    alphas, betas, _ = _lanczos_flat(op, lanczos_key, order, z, reorthogonalize)
    theta, y = _tridiagonal_eigh(alphas, betas[:-1])
    return theta, y[0] ** 2

  ritz, weights = jax.lax.map(probe, jax.random.split(key, num_probes))
  lo, hi = jnp.min(ritz), jnp.max(ritz)
  spread = hi - lo
  if sigma is None:
    width = jnp.where(spread > 0, spread / 100,
                      jnp.maximum(jnp.abs(hi), 1.0) * 1e-3).astype(ritz.dtype)
  else:
    width = jnp.asarray(sigma, ritz.dtype)
  pad = 0.05 * spread + 6 * width
  grid = jnp.linspace(lo - pad, hi + pad, grid_size, dtype=ritz.dtype)
  kernel = jnp.exp(-0.5 * ((grid[:, None, None] - ritz[None]) / width) ** 2) / (
      width * jnp.sqrt(2 * jnp.pi))
  density = jnp.sum(kernel * weights[None], axis=(1, 2)) / num_probes
  density = density / jnp.trapezoid(density, grid)
  return grid, density, ritz, weights
