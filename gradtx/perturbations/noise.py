"""Noise distributions for perturbed functions (optax's `perturbations.Gumbel`, `Normal`) and
optax's top-level diagonal Gaussian `multi_normal`.

Each distribution draws with the same `jax.random` call as optax, so the same key gives the same
numbers.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm as _norm

__all__ = [
    "Gumbel",
    "Normal",
    "multi_normal",
]


class Normal:
  r"""The standard normal distribution, with its log-density up to a constant.

  .. math::
    z \sim \mathcal{N}(0, 1), \qquad \log p(z) = -\tfrac{1}{2} z^2 + \text{const}

  `sample(key, sample_shape=(), dtype=float)` draws `jax.random.normal(key, sample_shape, dtype)`;
  `log_prob(inputs)` is `-0.5 * inputs**2` (the constant is dropped: it cancels in the score
  function estimator of `make_perturbed_fun`).

  Example:
    >>> import jax, gradtx
    >>> gradtx.perturbations.Normal().sample(jax.random.key(0), (3,)).shape
    (3,)
    >>> print(gradtx.perturbations.Normal().log_prob(2.0))
    -2.0
  """

  def sample(self, key: Any, sample_shape: Sequence[int] = (), dtype: Any = float) -> jax.Array:
    """Draws standard normal numbers of shape `sample_shape` (`jax.random.normal`)."""
    return jax.random.normal(key, sample_shape, dtype)

  def log_prob(self, inputs: jax.Array) -> jax.Array:
    """The log-density up to an additive constant: `-0.5 * inputs**2`."""
    return -0.5 * inputs**2


class Gumbel:
  r"""The standard Gumbel distribution, with its log-density.

  .. math::
    z \sim \mathrm{Gumbel}(0, 1), \qquad \log p(z) = -z - e^{-z}

  `sample(key, sample_shape=(), dtype=float)` draws `jax.random.gumbel(key, sample_shape, dtype)`;
  `log_prob(inputs)` is `-inputs - exp(-inputs)`. With this noise, the perturbed argmax (one-hot)
  has expectation `softmax(x / sigma)` (Gumbel-max trick).

  Example:
    >>> import jax, gradtx
    >>> gradtx.perturbations.Gumbel().sample(jax.random.key(0), (3,)).shape
    (3,)
    >>> print(gradtx.perturbations.Gumbel().log_prob(0.0))
    -1.0
  """

  def sample(self, key: Any, sample_shape: Sequence[int] = (), dtype: Any = float) -> jax.Array:
    """Draws standard Gumbel numbers of shape `sample_shape` (`jax.random.gumbel`)."""
    return jax.random.gumbel(key, sample_shape, dtype)

  def log_prob(self, inputs: jax.Array) -> jax.Array:
    """The log-density: `-inputs - exp(-inputs)`."""
    return -inputs - jnp.exp(-inputs)


class MultiNormalDiagFromLogScale:
  r"""A diagonal Gaussian parameterised by its mean and the log of its standard deviations.

  Returned by `multi_normal` (optax's class of the same name, which optax does not export
  either). `sample(shape, key)` (note optax's argument order) draws
  `jax.random.normal(key, shape + param_shape) * exp(log_scale) + loc`; `log_prob(x)` sums the
  normal log-densities over the parameter axes.
  """

  def __init__(self, loc: Any, log_scale: Any):
    self._log_scale = jnp.asarray(log_scale)
    self._scale = jnp.exp(log_scale)
    self._mean = jnp.asarray(loc)
    try:
      self._param_shape = jax.lax.broadcast_shapes(self._mean.shape, self._scale.shape)
    except ValueError as e:
      raise ValueError(
          f"gradtx.multi_normal: loc (shape {self._mean.shape}) and log_scale (shape "
          f"{self._scale.shape}) must broadcast to one parameter shape.") from e

  def sample(self, shape: Sequence[int], key: Any) -> jax.Array:
    """Draws samples of shape `tuple(shape) + param_shape`."""
    sample_shape = tuple(shape) + self._param_shape
    return jax.random.normal(key, shape=sample_shape) * self._scale + self._mean

  def log_prob(self, x: Any) -> jax.Array:
    """The log-density of `x`, summed over the trailing parameter axes."""
    log_prob = _norm.logpdf(x, loc=self._mean, scale=self._scale)
    sum_axis = [-(i + 1) for i in range(len(self._param_shape))]
    return jnp.sum(log_prob, axis=sum_axis)

  @property
  def log_scale(self) -> jax.Array:
    """The log standard deviations, as given."""
    return self._log_scale

  @property
  def params(self) -> list[jax.Array]:
    """`[loc, log_scale]`, the parameters to differentiate."""
    return [self._mean, self._log_scale]


def multi_normal(loc: Any, log_scale: Any) -> MultiNormalDiagFromLogScale:
  r"""A multivariate normal with diagonal covariance, from its mean and log standard deviations.

  .. math::
    x \sim \mathcal{N}\big(\mathrm{loc}, \operatorname{diag}(e^{2\,\mathrm{log\_scale}})\big),
    \qquad \log p(x) = \sum_k \log \mathcal{N}(x_k;\ \mathrm{loc}_k, e^{\mathrm{log\_scale}_k})

  Args:
    loc: the mean (array-like); broadcast with `log_scale` to the parameter shape.
    log_scale: the log of the standard deviations (array-like).

  Returns:
    An object with `sample(shape, key)` (shape `tuple(shape) + param_shape`, drawn as
    `normal(key) * exp(log_scale) + loc`), `log_prob(x)` (summed over the parameter axes),
    `log_scale` and `params` (`[loc, log_scale]`).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> dist = gradtx.multi_normal(jnp.zeros(2), jnp.zeros(2))
    >>> dist.sample((3,), jax.random.key(0)).shape
    (3, 2)
    >>> print(round(float(dist.log_prob(jnp.zeros(2))), 4))
    -1.8379

  References:
    `optax._src.utils.multi_normal` (optax 0.2.8).
  """
  return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)
