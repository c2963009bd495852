"""Differentiable approximations of functions by random perturbations (optax's
`perturbations.make_perturbed_fun`)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from gradtx._checks import check_bool, check_int, check_scalar
from gradtx.perturbations.noise import Gumbel
from gradtx.tree.arithmetic import add_scale, scale
from gradtx.tree.arithmetic import sum as tree_sum
from gradtx.tree.random import random_like

__all__ = [
    "make_perturbed_fun",
]

_FN = "perturbations.make_perturbed_fun"


def _magicbox(x: jax.Array) -> jax.Array:
  """DiCE's operator: 1 in value, `d(magicbox(x)) = magicbox(x) dx` in derivatives."""
  return jnp.exp(x - jax.lax.stop_gradient(x))


def make_perturbed_fun(
    fun: Callable[[Any], Any],
    num_samples: int = 1000,
    sigma: Any = 0.1,
    noise: Any = Gumbel(),
    use_baseline: bool = True,
) -> Callable[[Any, Any], Any]:
  r"""A stochastic, differentiable approximation of `fun`, by averaging it over perturbed inputs.

  The smoothed function is the expectation of `fun` at inputs shifted by scaled noise; the
  returned function estimates it, and through JAX's autodiff its derivatives of every order, by
  Monte Carlo with the score function (REINFORCE) estimator written with DiCE's magic box, so
  `fun` itself need not be differentiable (only its values are used):

  .. math::
    f_\sigma(x) = \mathbb{E}_{z \sim \mu}\, f(x + \sigma z), \qquad
    \nabla f_\sigma(x) = \mathbb{E}_{z \sim \mu}\,
      \big(f(x + \sigma z) - f(x)\big)\, \frac{-\nabla_z \log \mu(z)}{\sigma}

  estimated with `num_samples` draws :math:`z_s` (the baseline :math:`f(x)` is subtracted when
  `use_baseline`; it leaves the estimate unbiased and lowers its variance).

  Args:
    fun: the function to smooth, from a pytree of arrays to a pytree of arrays.
    num_samples: the number of perturbed evaluations averaged (an int >= 1).
    sigma: the scale of the perturbation (a scalar > 0; it may be a traced value).
    noise: the noise distribution, an object with `sample(key, shape, dtype)` and
      `log_prob(z)`, like `Gumbel()` (the default) or `Normal()`.
    use_baseline: subtract `fun` at the unperturbed input from each sample in the derivative
      estimates (variance reduction).

  Returns:
    A function `(key, x) -> fun`-shaped pytree: the mean of `fun(x + sigma * z)` over
    `num_samples` draws from `jax.random.split(key, num_samples)`, differentiable in `x`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda x: jnp.sum(jnp.maximum(x, 0.0))
    >>> fn = gradtx.perturbations.make_perturbed_fun(f, 1_000, 0.1)
    >>> with jnp.printoptions(precision=2):
    ...   print(jax.grad(fn, argnums=1)(jax.random.key(0), jnp.zeros(3)))
    [0.69 0.72 0.58]

  References:
    Berthet et al., `Learning with Differentiable Perturbed Optimizers
    <https://arxiv.org/abs/2002.08676>`_, NeurIPS 2020.

    Foerster et al., `DiCE: The Infinitely Differentiable Monte Carlo Estimator
    <https://arxiv.org/abs/1802.05098>`_, ICML 2018.

    Salimans et al., `Evolution Strategies as a Scalable Alternative to Reinforcement Learning
    <https://arxiv.org/abs/1703.03864>`_, 2017.
  """
  if not callable(fun):
    raise TypeError(f"gradtx.{_FN}: fun must be callable, got {type(fun).__name__} {fun!r}.")
  check_int(_FN, "num_samples", num_samples, 1)
  check_scalar(_FN, "sigma", sigma, low=0.0, low_open=True)
  for method in ("sample", "log_prob"):
    if not callable(getattr(noise, method, None)):
      raise TypeError(
          f"gradtx.{_FN}: noise must have `sample(key, shape, dtype)` and `log_prob(z)` methods "
          f"(like gradtx.perturbations.Gumbel()), got {type(noise).__name__} without {method}.")
  check_bool(_FN, "use_baseline", use_baseline)

  def mc_estimator(key: Any, x: Any) -> Any:

    def stoch_estimator(key: Any, x: Any, baseline: Any) -> Any:
      z = random_like(key, x, sampler=noise.sample)
      shifted = jax.lax.stop_gradient(jax.tree.map(lambda x, z: x + sigma * z, x, z))
      # z again, as a function of x: the score's dependence on x (the value is the draw, up to
      # rounding as in optax).
      z = jax.tree.map(lambda x, y: (y - x) / sigma, x, shifted)
      box = _magicbox(tree_sum(jax.tree.map(noise.log_prob, z)))
      out = scale(box, fun(shifted))
      if use_baseline:
        out = add_scale(out, 1 - box, baseline)
      return out

    baseline = fun(jax.lax.stop_gradient(x)) if use_baseline else None
    out = jax.vmap(stoch_estimator, in_axes=(0, None, None), out_axes=0)(
        jax.random.split(key, num_samples), x, baseline)
    return jax.tree.map(lambda x: jnp.mean(x, axis=0), out)

  return mc_estimator
