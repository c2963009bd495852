"""AdaHessian (Yao et al.): Adam with the squared gradient replaced by a spatially averaged
Hutchinson estimate of the Hessian diagonal, re-estimated every `update_interval` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._periodic import cond
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs
from gradtx.contrib.hutchinson import hutchinson_estimator_diag_hessian
from gradtx.numerics import safe_increment
from gradtx.tree.casting import zeros_like
from gradtx.tree.moments import bias_correction, moment_like, update_moment

__all__ = [
    "ScaleByAdaHessianState",
    "scale_by_adahessian",
]


class ScaleByAdaHessianState(NamedTuple):
  """State of `scale_by_adahessian`.

  Attributes:
    count: int32 scalar.
    mu: EMA of the gradients.
    nu: EMA of the squared (spatially averaged) Hessian-diagonal estimates.
    hessian_fn_state: the Hutchinson estimator's state (its PRNG key).
  """

  count: jax.Array  # int32 scalar
  mu: Any  # EMA of the gradients
  nu: Any  # EMA of the squared (spatially averaged) Hessian-diagonal estimates
  hessian_fn_state: Any  # the Hutchinson estimator's state (its PRNG key)


def _block_mean(d: jax.Array, block_size: int) -> jax.Array:
  """Means over consecutive blocks of `block_size` entries of the flattened leaf (eq. 10); a
  last, shorter block is averaged on its own."""
  if block_size == 1 or d.size == 0:
    return d
  flat = d.reshape(-1)
  ids = jnp.arange(flat.size) // block_size
  n = -(-flat.size // block_size)
  sums = jax.ops.segment_sum(flat, ids, num_segments=n)
  counts = jax.ops.segment_sum(jnp.ones_like(flat), ids, num_segments=n)
  return (sums / counts)[ids].reshape(d.shape)


def _spatial_average(d: jax.Array, block_size: int) -> jax.Array:
  """|D| averaged over a conv kernel's window (Flax layout (*window, in, out): every axis but
  the last two), else over blocks of `block_size`."""
  d = jnp.abs(d)
  if d.ndim >= 3:
    return jnp.broadcast_to(jnp.mean(d, axis=tuple(range(d.ndim - 2)), keepdims=True), d.shape)
  return _block_mean(d, block_size)


def scale_by_adahessian(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-4,
    hessian_power: Any = 1.0,
    update_interval: int = 1,
    block_size: int = 1,
    random_seed: jax.Array | None = None,
) -> GradientTransformationExtraArgs:
  r"""AdaHessian's scaling: Adam's update with a Hessian-diagonal second moment.

  Each `update_interval` steps, one Rademacher probe :math:`z` gives Hutchinson's diagonal
  :math:`D = z \odot Hz` (`contrib.hutchinson_estimator_diag_hessian`, products from
  `gradtx.curvature.hessian`); its magnitude is averaged over each conv kernel's spatial window
  (leaves with 3+ axes, Flax's `(*window, in, out)` layout) or over blocks of `block_size`
  entries (other leaves, eq. 10), and its square enters an EMA that is bias-corrected by the
  number of estimates :math:`n` so far:

  .. math::
     D^{(s)} = \operatorname{blockmean}(|z \odot H z|), \quad
     v_t = \beta_2 v + (1 - \beta_2) D^{(s)} \odot D^{(s)} \text{ (estimate steps)} \\
     m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
     u_t = \frac{m_t / (1 - \beta_1^t)}{\big(\sqrt{v_t / (1 - \beta_2^n)}\big)^k + \epsilon}

  Args:
    b1: :math:`\beta_1 \in [0, 1)`.
    b2: :math:`\beta_2 \in [0, 1)`.
    eps: :math:`\epsilon \ge 0`.
    hessian_power: :math:`k \in [0, 1]` (1: Newton-like, 0: momentum SGD).
    update_interval: steps between Hessian estimates, >= 1 (the estimate stays periodic
      under `vmap`: `gradtx._periodic.cond`).
    block_size: entries per averaging block of the non-conv leaves, >= 1 (1: none).
    random_seed: the probes' PRNG key (default `jax.random.PRNGKey(0)`).

  Returns:
    A `GradientTransformationExtraArgs` with state `ScaleByAdaHessianState`; call
    `update(grads, state, params, value_fn=lambda p: loss(p, batch))`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.transforms.scale_by_adahessian()
    >>> p = jnp.ones(2); f = lambda q: jnp.sum(q ** 2)  # H = 2 I
    >>> u, s = tx.update(2 * p, tx.init(p), p, value_fn=f)
    >>> u.round(3)  # (2 / 2)
    Array([1., 1.], dtype=float32)

  References:
    Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney, `ADAHESSIAN: An Adaptive Second Order
    Optimizer for Machine Learning <https://arxiv.org/abs/2006.00719>`_, AAAI 2021.
  """
  fn = "scale_by_adahessian"
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "hessian_power", hessian_power, low=0.0, high=1.0)
  _checks.check_int(fn, "update_interval", update_interval, 1,
                    " The Hessian diagonal is re-estimated every update_interval steps.")
  if not isinstance(block_size, int) or isinstance(block_size, bool):
    raise TypeError(f"gradtx.{fn}: block_size must be an int, got "
                    f"{type(block_size).__name__} {block_size!r}.")
  _checks.check_int(fn, "block_size", block_size, 1)
  hutchinson = hutchinson_estimator_diag_hessian(random_seed)

  def init_fn(params):
    return ScaleByAdaHessianState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params),
                                  nu=zeros_like(params),
                                  hessian_fn_state=hutchinson.init(params))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    if value_fn is None:
      raise _checks.missing_extra_arg_error(
          fn, "value_fn", "update(grads, state, params, value_fn=lambda p: loss(p, batch))")
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    count_inc = safe_increment(state.count)

    def estimate(hess_state, nu):
      diag, hess_state = hutchinson.update(params, hess_state, params, obj_fn=value_fn)
      d_s = jax.tree.map(lambda d: _spatial_average(d, block_size), diag)  # D^(s)
      d_s = jax.tree.map(lambda g, d: None if g is None else d, updates, d_s, is_leaf=is_none)
      sq = jax.tree.map(lambda d: None if d is None else d * d, d_s, is_leaf=is_none)
      return hess_state, moment_like(update_moment(sq, nu, b2, 1), nu)  # b2 v + (1-b2) D^2

    hess_state, nu = cond(state.count % update_interval == 0, estimate, lambda h, n: (h, n),
                          state.hessian_fn_state, state.nu)
    n_estimates = state.count // update_interval + 1
    mu = update_moment(updates, state.mu, b1, 1)  # m_t = b1 m + (1 - b1) g
    mu_hat = bias_correction(mu, b1, count_inc)
    nu_hat = bias_correction(nu, b2, n_estimates)  # v / (1 - b2^n)
    out = jax.tree.map(  # m_hat / (sqrt(v_hat)^k + eps)
        lambda m, v: None if m is None else m / (jnp.sqrt(v) ** hessian_power + eps),
        mu_hat, nu_hat, is_leaf=is_none)
    return out, ScaleByAdaHessianState(count=count_inc, mu=moment_like(mu, state.mu), nu=nu,
                                       hessian_fn_state=hess_state)

  return GradientTransformationExtraArgs(init_fn, update_fn)
