"""Entropy-SGD (Chaudhari et al.): descend the local entropy, whose gradient an SGLD inner loop
estimates (Algorithm 1), as a transformation."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs
from gradtx.numerics import safe_increment

__all__ = [
    "ScaleByEntropySGDState",
    "scale_by_entropy_sgd",
]


class ScaleByEntropySGDState(NamedTuple):
  """State of `scale_by_entropy_sgd`.

  Attributes:
    count: int32 scalar, the outer step t of the scoping gamma_t.
    key: PRNG key of the Langevin noise, split at every update.
  """

  count: jax.Array  # int32 scalar, the outer step t of the scoping gamma_t
  key: jax.Array  # PRNG key of the Langevin noise, split at every update


def _all_finite(tree: Any) -> jax.Array:
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def scale_by_entropy_sgd(
    gamma: Any = 0.03,
    scoping: Any = 1e-3,
    inner_steps: int = 20,
    inner_learning_rate: Any = 0.1,
    noise: Any = 1e-4,
    alpha: Any = 0.75,
    key: jax.Array | None = None,
) -> GradientTransformationExtraArgs:
  r"""Entropy-SGD's direction: the gradient of the negative local entropy, by SGLD.

  The local entropy :math:`F(x; \gamma) = \log \int \exp(-f(x') - \tfrac{\gamma}{2}
  \|x - x'\|^2) dx'` smooths the loss around :math:`x`; its gradient is
  :math:`-\gamma (x - \langle x' \rangle)`, with the mean under the Gibbs measure estimated by
  `inner_steps` Langevin (SGLD) steps started at :math:`x` (Algorithm 1, a `lax.fori_loop`):

  .. math::
     x'_0 = \mu_0 = x, \quad \gamma_t = \gamma (1 + \gamma_1)^t \\
     x'_{l+1} = x'_l - \eta' \big(\nabla f(x'_l) - \gamma_t (x - x'_l)\big)
               + \sqrt{\eta'}\, \varepsilon\, \mathcal{N}(0, I) \\
     \mu_{l+1} = (1 - \alpha) \mu_l + \alpha x'_{l+1}, \qquad u_t = \gamma_t (x - \mu_L)

  (:math:`\gamma_1` = `scoping`, :math:`\eta'` = `inner_learning_rate`, :math:`\varepsilon` =
  `noise`; chained with `scale_by_learning_rate(eta)`, :math:`x \leftarrow x - \eta u_t`).
  The incoming updates only give the output's structure: every inner gradient comes from
  `grad_fn=` (params -> gradient) or `value_fn=` (params -> loss), called `inner_steps` times on
  the batch they close over (Algorithm 1 draws a fresh minibatch per inner step; close over a
  larger batch, or pass a `grad_fn` that samples, to approach that). An inner step with a
  non-finite gradient leaves :math:`x'` where it was.

  Args:
    gamma: :math:`\gamma > 0`, the initial scope (coupling to :math:`x`).
    scoping: :math:`\gamma_1 \ge 0`, the scope's growth per outer step.
    inner_steps: :math:`L \ge 1`, the SGLD steps per update.
    inner_learning_rate: :math:`\eta' > 0`, the SGLD step size.
    noise: :math:`\varepsilon \ge 0`, the thermal noise (0: deterministic).
    alpha: :math:`\alpha \in (0, 1]`, the weight of the newest iterate in :math:`\mu`.
    key: the noise's PRNG key (default `jax.random.PRNGKey(0)`).

  Returns:
    A `GradientTransformationExtraArgs` with state `ScaleByEntropySGDState`; call
    `update(grads, state, params, grad_fn=jax.grad(lambda p: loss(p, batch)))`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.transforms.scale_by_entropy_sgd(inner_steps=5, noise=0.0)
    >>> p = jnp.ones(2)
    >>> u, s = tx.update(p, tx.init(p), p, value_fn=lambda q: jnp.sum(q ** 2))
    >>> bool(jnp.all(u > 0))  # towards the minimum at 0
    True

  References:
    Chaudhari, Choromanska, Soatto, LeCun, Baldassi, Borgs, Chayes, Sagun & Zecchina,
    `Entropy-SGD: Biasing Gradient Descent Into Wide Valleys
    <https://arxiv.org/abs/1611.01838>`_, ICLR 2017.
  """
  fn = "scale_by_entropy_sgd"
  _checks.check_scalar(fn, "gamma", gamma, low=0.0, low_open=True)
  _checks.check_scalar(fn, "scoping", scoping, low=0.0)
  if not isinstance(inner_steps, int) or isinstance(inner_steps, bool):
    raise TypeError(f"gradtx.{fn}: inner_steps must be an int, got "
                    f"{type(inner_steps).__name__} {inner_steps!r}.")
  _checks.check_int(fn, "inner_steps", inner_steps, 1)
  _checks.check_scalar(fn, "inner_learning_rate", inner_learning_rate, low=0.0, low_open=True)
  _checks.check_scalar(fn, "noise", noise, low=0.0)
  _checks.check_scalar(fn, "alpha", alpha, low=0.0, high=1.0, low_open=True)

  def init_fn(params):
    del params
    return ScaleByEntropySGDState(count=jnp.zeros([], jnp.int32),
                                  key=key if key is not None else jax.random.PRNGKey(0))

  def update_fn(updates, state, params=None, *, grad_fn=None, value_fn=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    if grad_fn is None and value_fn is None:
      raise _checks.missing_extra_arg_error(
          fn, "grad_fn or value_fn",
          "update(grads, state, params, grad_fn=jax.grad(lambda p: loss(p, batch)))")
    if grad_fn is None:
      grad_fn = jax.grad(value_fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    x = params
    gamma_t = gamma * (1 + scoping) ** state.count.astype(jnp.float32)  # gamma (1 + gamma1)^t
    new_key, loop_key = jax.random.split(state.key)
    leaves, treedef = jax.tree.flatten(x)

    def inner(l, carry):
      x_prime, mu = carry
      dx = jax.tree.map(lambda g, xi, xp: g - gamma_t * (xi - xp),  # grad f(x') - gamma (x - x')
                        grad_fn(x_prime), x, x_prime)
      keys = jax.random.split(jax.random.fold_in(loop_key, l), len(leaves))
      z = jax.tree.unflatten(treedef, [jax.random.normal(k, jnp.shape(xi), jnp.result_type(xi))
                                       for k, xi in zip(keys, leaves)])
      step = jax.tree.map(  # x' - eta' dx' + sqrt(eta') eps N(0, I)
          lambda xp, d, n: xp - inner_learning_rate * d
          + jnp.sqrt(inner_learning_rate) * noise * n, x_prime, dx, z)
      step = jax.tree.map(lambda s, xp: s.astype(xp.dtype), step, x_prime)
      ok = _all_finite(step)
      x_prime = jax.tree.map(lambda s, xp: jnp.where(ok, s, xp), step, x_prime)
      mu = jax.tree.map(lambda m, xp: ((1 - alpha) * m + alpha * xp).astype(m.dtype),
                        mu, x_prime)  # mu = (1 - alpha) mu + alpha x'
      return x_prime, mu

    _, mu = lax.fori_loop(0, inner_steps, inner, (x, x))
    out = jax.tree.map(lambda g, xi, m: None if g is None else (gamma_t * (xi - m)).astype(
        g.dtype), updates, x, mu, is_leaf=is_none)  # gamma_t (x - mu)
    return out, ScaleByEntropySGDState(count=safe_increment(state.count), key=new_key)

  return GradientTransformationExtraArgs(init_fn, update_fn)
