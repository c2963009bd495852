"""Sign-based updates: the plain sign, and the PowerSign and AddSign rules of Bello et al."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, ScalarOrSchedule, init_empty_state
from gradtx.numerics import safe_increment
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import moment_like, update_moment

__all__ = [
    "ScaleByAddsignState",
    "ScaleByPowersignState",
    "scale_by_addsign",
    "scale_by_powersign",
    "scale_by_sign",
]


def scale_by_sign() -> GradientTransformation:
  r"""Replaces every update by its element-wise sign, as optax's `scale_by_sign`.

  Only the direction of each coordinate is kept, so every parameter moves by the same step
  whatever the gradient's magnitude (signSGD; followed by `trace` before the sign, signum).

  .. math:: u_t = \operatorname{sign}(g_t)

  Returns:
    A stateless `GradientTransformation` (state `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_sign()
    >>> tx.update(jnp.asarray([-3.0, 0.0, 0.5]), tx.init(jnp.zeros(3)))[0].tolist()
    [-1.0, 0.0, 1.0]

  References:
    Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD: Compressed Optimisation for
    Non-Convex Problems", ICML 2018. https://arxiv.org/abs/1802.04434
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return jax.tree.map(lambda g: None if g is None else jnp.sign(g), updates,
                        is_leaf=is_none), state

  return GradientTransformation(init_empty_state, update_fn)


def _check_sign_args(fn: str, alpha: Any, beta: Any, decay: Any, alpha_low_open: bool) -> None:
  _checks.check_scalar(fn, "alpha", alpha, low=0, low_open=alpha_low_open)
  _checks.check_scalar(fn, "beta", beta, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "decay", decay, low=0, high=1, schedule=True, optional=True)


def _sign_transformation(fn: str, state_cls: Any, beta: Any, decay: Any, scale_fn: Any
                         ) -> GradientTransformation:
  """Shared body of PowerSign and AddSign: the moving average `mu`, then `scale_fn(g, agree, f)`
  with `agree = sign(g) sign(mu)` and `f = decay(count)`."""

  def init_fn(params):
    return state_cls(count=jnp.zeros([], jnp.int32),
                     mu=zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    f = 1.0 if decay is None else _checks.resolve(decay, state.count)
    mu = update_moment(updates, state.mu, beta, order=1)
    out = jax.tree.map(
        lambda g, m: None if g is None else scale_fn(g, jnp.sign(g) * jnp.sign(m).astype(g.dtype),
                                                     _checks.as_dtype(f, g)),
        updates, mu, is_leaf=is_none)
    out, mu = cast_like(out, updates), moment_like(mu, state.mu)
    return out, state_cls(count=safe_increment(state.count), mu=mu)

  return GradientTransformation(init_fn, update_fn)


class ScaleByPowersignState(NamedTuple):
  """State of `scale_by_powersign`: the step count (for `decay`) and the moving average `mu`.

  Attributes:
    count: int32 scalar, the step count (for a `decay` schedule).
    mu: the moving average of the gradients.
  """

  count: jax.Array  # int32 scalar
  mu: Any


def scale_by_powersign(
    alpha: Any = math.e,
    beta: Any = 0.9,
    decay: ScalarOrSchedule | None = None,
) -> GradientTransformation:
  r"""PowerSign: scales the gradient up where it agrees in sign with its moving average.

  Found by neural optimizer search: the gradient is multiplied by :math:`\alpha^{f(t)}` where
  its sign matches that of the momentum (the direction is trusted) and by
  :math:`\alpha^{-f(t)}` where they disagree (the step shrinks).

  .. math::
      m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad
      u_t = \alpha^{f(t) \operatorname{sign}(g_t) \operatorname{sign}(m_t)} \, g_t

  with :math:`\alpha` = `alpha`, :math:`\beta` = `beta` and :math:`f` = `decay`. The update is
  the scaled gradient direction; `scale_by_learning_rate` supplies :math:`-\eta`. The paper's
  decays of the 0-based step :math:`t` over :math:`T` steps (use `jnp` so they trace):
  linear `lambda t: 1 - t / T`, cyclical cosine with `n` periods
  `lambda t: 0.5 * (1 + jnp.cos(2 * jnp.pi * n * t / T))`, and restarts every `P` steps
  `lambda t: 0.5 * (1 + jnp.cos(jnp.pi * (t % P) / P))`.

  Args:
    alpha: the base :math:`\alpha > 0` (the paper uses `e` or 2); a float or scalar array.
    beta: the momentum decay :math:`\beta` in [0, 1); a float or scalar array.
    decay: :math:`f(t)` in [0, 1]: a schedule of the step count, a constant, or `None` (f = 1).

  Returns:
    A `GradientTransformation` with state `ScaleByPowersignState(count, mu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_powersign(alpha=2.0)
    >>> tx.update(jnp.asarray([1.0, -1.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [2.0, -2.0]

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  _check_sign_args("scale_by_powersign", alpha, beta, decay, alpha_low_open=True)
  return _sign_transformation(
      "scale_by_powersign", ScaleByPowersignState, beta, decay,
      lambda g, agree, f: _checks.as_dtype(alpha, g) ** (f * agree) * g)


class ScaleByAddsignState(NamedTuple):
  """State of `scale_by_addsign`: the step count (for `decay`) and the moving average `mu`.

  Attributes:
    count: int32 scalar, the step count (for a `decay` schedule).
    mu: the moving average of the gradients.
  """

  count: jax.Array  # int32 scalar
  mu: Any


def scale_by_addsign(
    alpha: Any = 1.0,
    beta: Any = 0.9,
    decay: ScalarOrSchedule | None = None,
) -> GradientTransformation:
  r"""AddSign: scales the gradient by :math:`\alpha \pm f(t)` as it agrees with its momentum.

  The additive sibling of PowerSign: where the gradient's sign matches that of its moving
  average the step is :math:`(\alpha + f(t)) g`, where it disagrees :math:`(\alpha - f(t)) g`.

  .. math::
      m_t = \beta m_{t-1} + (1 - \beta) g_t, \qquad
      u_t = \left(\alpha + f(t) \operatorname{sign}(g_t) \operatorname{sign}(m_t)\right) g_t

  with :math:`\alpha` = `alpha`, :math:`\beta` = `beta` and :math:`f` = `decay`, whose paper
  choices (linear, cyclical cosine, restarts) are listed in `scale_by_powersign`. With
  :math:`\alpha \geq 1` (the paper uses 1 or 2) the factor never flips the gradient's sign.

  Args:
    alpha: the offset :math:`\alpha \geq 0` (the paper uses 1 or 2); a float or scalar array.
    beta: the momentum decay :math:`\beta` in [0, 1); a float or scalar array.
    decay: :math:`f(t)` in [0, 1]: a schedule of the step count, a constant, or `None` (f = 1).

  Returns:
    A `GradientTransformation` with state `ScaleByAddsignState(count, mu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_addsign(alpha=1.0)
    >>> tx.update(jnp.asarray([1.0, -1.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [2.0, -2.0]

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  _check_sign_args("scale_by_addsign", alpha, beta, decay, alpha_low_open=False)
  return _sign_transformation(
      "scale_by_addsign", ScaleByAddsignState, beta, decay,
      lambda g, agree, f: (_checks.as_dtype(alpha, g) + f * agree) * g)
