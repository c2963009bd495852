"""Hutchinson's stochastic estimators of a curvature operator's trace and diagonal.

Each returns the estimate and its standard error (the sample standard deviation of the
per-probe estimates over the square root of the number of probes; NaN with one probe).
Probes are Rademacher vectors, run one after another (`lax.map`: memory O(n)).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx.curvature.operators import LinearOperator

__all__ = ["hutchinson_diagonal", "hutchinson_trace"]


def check_operator(fn: str, op: Any) -> None:
  if not isinstance(op, LinearOperator):
    raise TypeError(f"gradtx.curvature.{fn}: op must be a curvature LinearOperator (from "
                    f"gradtx.curvature.hessian, gauss_newton or fisher), got "
                    f"{type(op).__name__}.")


def check_count(fn: str, name: str, value: Any, low: int = 1) -> int:
  if isinstance(value, bool) or not isinstance(value, int):
    raise TypeError(f"gradtx.curvature.{fn}: {name} must be a Python int, got "
                    f"{type(value).__name__} {value!r}.")
  if value < low:
    raise ValueError(f"gradtx.curvature.{fn}: {name} must be >= {low}, got {value}.")
  return value


def _rademacher_like(key: jax.Array, params: Any) -> Any:
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [
      jax.random.rademacher(k, jnp.shape(x), jnp.float32).astype(jnp.result_type(x))
      for k, x in zip(keys, leaves)])


def _mean_and_stderr(samples: Any, num: int) -> tuple[Any, Any]:
  mean = jax.tree.map(lambda s: jnp.mean(s, axis=0), samples)
  if num == 1:
    return mean, jax.tree.map(lambda m: jnp.full_like(m, jnp.nan), mean)
  stderr = jax.tree.map(lambda s: jnp.std(s, axis=0, ddof=1) / jnp.sqrt(num), samples)
  return mean, stderr


def hutchinson_trace(op: LinearOperator, key: jax.Array, num_probes: int = 100
                     ) -> tuple[jax.Array, jax.Array]:
  r"""Hutchinson's estimate of the trace of `op`, with its standard error.

  .. math:: \operatorname{tr}(H) \approx \frac{1}{m} \sum_{j=1}^m z_j^\top H z_j, \quad
            z_j \sim \text{Rademacher}

  Args:
    op: a curvature `LinearOperator`.
    key: a PRNG key.
    num_probes: :math:`m \ge 1`, the number of probes.

  Returns:
    `(trace, stderr)`, two scalars.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: jnp.sum(p ** 2), jnp.ones(3))
    >>> t, se = gradtx.curvature.hutchinson_trace(op, jax.random.key(0), 8)
    >>> float(t)
    6.0

  References:
    Hutchinson, `A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines <https://doi.org/10.1080/03610918908812806>`_, 1989.
  """
  check_operator("hutchinson_trace", op)
  num_probes = check_count("hutchinson_trace", "num_probes", num_probes)

  def probe(k):
    z = _rademacher_like(k, op.params)
    hz = op.matvec(z)
    return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(z), jax.tree.leaves(hz)))

  samples = jax.lax.map(probe, jax.random.split(key, num_probes))
  return _mean_and_stderr(samples, num_probes)


def hutchinson_diagonal(op: LinearOperator, key: jax.Array, num_probes: int = 100
                        ) -> tuple[Any, Any]:
  r"""Hutchinson's estimate of the diagonal of `op`, per leaf, with its standard error.

  .. math:: \operatorname{diag}(H) \approx \frac{1}{m} \sum_{j=1}^m z_j \odot H z_j

  Summing a leaf of the estimate gives that layer's trace.

  Args:
    op: a curvature `LinearOperator`.
    key: a PRNG key.
    num_probes: :math:`m \ge 1`, the number of probes.

  Returns:
    `(diagonal, stderr)`, both params-shaped pytrees.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: jnp.sum(p['w'] ** 2), {'w': jnp.ones(2)})
    >>> d, se = gradtx.curvature.hutchinson_diagonal(op, jax.random.key(0), 4)
    >>> d['w']
    Array([2., 2.], dtype=float32)

  References:
    Bekas, Kokiopoulou and Saad, `An estimator for the diagonal of a matrix
    <https://doi.org/10.1016/j.apnum.2007.01.003>`_, Applied Numerical Mathematics 2007.
  """
  check_operator("hutchinson_diagonal", op)
  num_probes = check_count("hutchinson_diagonal", "num_probes", num_probes)

  def probe(k):
    z = _rademacher_like(k, op.params)
    return jax.tree.map(jnp.multiply, z, op.matvec(z))

  samples = jax.lax.map(probe, jax.random.split(key, num_probes))
  return _mean_and_stderr(samples, num_probes)
