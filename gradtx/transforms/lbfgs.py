r"""L-BFGS (optax's) and the stochastic damped L-BFGS of Wang et al. (2017).

Both multiply the incoming gradient by a limited-memory inverse-Hessian approximation built from
the last `memory_size` pairs of parameter and gradient differences (the two-loop recursion,
Nocedal & Wright Algorithm 7.4). They return the preconditioned gradient :math:`P_k g_k` (a
positive multiple of a descent direction's negative): chain them with `scale(-1.0)` and a line
search, or with `scale_by_learning_rate`, as the aliases in `gradtx.optimizers.quasi_newton` do.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs
from gradtx.numerics import safe_increment
from gradtx.transforms.linesearch import fn_kwargs_for
from gradtx.tree.arithmetic import add_scale, norm, real, scale, sub, vdot
from gradtx.tree.casting import cast_like, zeros_like

__all__ = [
    "ScaleByLBFGSState",
    "ScaleByStochasticLBFGSState",
    "scale_by_lbfgs",
    "scale_by_stochastic_lbfgs",
]


def _two_loop(updates, diff_params_memory, diff_updates_memory, weights_memory, identity_scale,
              memory_idx):
  """`P u` for the L-BFGS inverse-Hessian approximation `P` (Nocedal & Wright, Algorithm 7.4).

  The memory is a ring buffer of stacked leaves; `memory_idx` is the slot the next pair will
  fill, so slots `memory_idx, memory_idx + 1, ...` (mod m) run from the oldest pair to the
  newest. Empty slots have weight 0 and leave the vector unchanged.
  """
  memory_size = weights_memory.shape[0]
  order = (memory_idx + jnp.arange(memory_size)) % memory_size

  def pair(i):
    return jax.tree.map(lambda x: x[i], (diff_params_memory, diff_updates_memory))

  def newest_to_oldest(vec, i):
    s, y = pair(i)
    alpha = weights_memory[i] * real(vdot(s, vec))
    return cast_like(add_scale(vec, -alpha, y), vec), alpha

  vec, alphas = jax.lax.scan(newest_to_oldest, updates, order, reverse=True)
  vec = scale(identity_scale, vec)

  def oldest_to_newest(vec, i_alpha):
    i, alpha = i_alpha
    s, y = pair(i)
    beta = weights_memory[i] * real(vdot(y, vec))
    return cast_like(add_scale(vec, alpha - beta, s), vec), beta

  vec, _ = jax.lax.scan(oldest_to_newest, vec, (order, alphas))
  return vec


def _stacked_zeros(params, memory_size):
  return jax.tree.map(lambda p: jnp.zeros((memory_size,) + p.shape, dtype=p.dtype), params)


class ScaleByLBFGSState(NamedTuple):
  r"""State of `scale_by_lbfgs` (optax's layout).

  Attributes:
    count: int32 number of updates.
    params: the params at the last update.
    updates: the gradient (incoming updates) at the last update.
    diff_params_memory: the last `memory_size` differences of params, stacked on a leading axis.
    diff_updates_memory: the matching differences of gradients.
    weights_memory: the weights :math:`\rho_j = 1 / \langle \delta u_j, \delta w_j\rangle`.
  """

  count: Any
  params: Any
  updates: Any
  diff_params_memory: Any
  diff_updates_memory: Any
  weights_memory: Any


def scale_by_lbfgs(
    memory_size: int = 10,
    scale_init_precond: bool = True,
) -> GradientTransformationExtraArgs:
  r"""Multiplies the gradient by the L-BFGS inverse-Hessian approximation.

  From the last :math:`m` pairs :math:`\delta w_j = w_{j+1} - w_j`,
  :math:`\delta u_j = u_{j+1} - u_j` (params and gradients), the approximation is

  .. math::
      P_{k,j+1} = V_j^\top P_{k,j} V_j + \rho_j \delta w_j \delta w_j^\top,\quad
      V_j = I - \rho_j \delta u_j \delta w_j^\top,\quad
      \rho_j = 1 / \langle \delta u_j, \delta w_j\rangle,\quad P_{k,k-m} = \gamma_k I

  with :math:`\gamma_k = \langle \delta w_{k-1}, \delta u_{k-1}\rangle /
  \|\delta u_{k-1}\|^2` if `scale_init_precond` (else 1), and
  :math:`\gamma_0 = \min(1, 1/\|u_0\|)` at the first step. Returns :math:`P_k u_k`, computed by
  the two-loop recursion; the memory is updated before the product, so a line search after it
  sees the preconditioner of the accepted step. A pair with :math:`\langle\delta u,\delta w\rangle
  = 0` gets weight 0.

  Args:
    memory_size: :math:`m` >= 1, the number of pairs kept.
    scale_init_precond: use :math:`\gamma_k` above (else the identity).

  Returns:
    A `GradientTransformationExtraArgs` (needs `params`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_lbfgs(memory_size=3)
    >>> w = jnp.array([3., 4.])
    >>> u, state = tx.update(w, tx.init(w), w)  # first step: the gradient over its norm
    >>> u.tolist()
    [0.6000000238418579, 0.800000011920929]

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithms 7.4 and 7.5.
    Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
    Mathematical Programming 1989. https://doi.org/10.1007/BF01589116
  """
  fn = "scale_by_lbfgs"
  _checks.check_int(fn, "memory_size", memory_size, 1)
  _checks.check_bool(fn, "scale_init_precond", scale_init_precond)

  def init_fn(params):
    stacked = _stacked_zeros(params, memory_size)
    return ScaleByLBFGSState(
        count=jnp.asarray(0, dtype=jnp.int32), params=zeros_like(params),
        updates=zeros_like(params), diff_params_memory=stacked, diff_updates_memory=stacked,
        weights_memory=jnp.zeros(memory_size))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    memory_idx = state.count % memory_size
    prev_memory_idx = (state.count - 1) % memory_size
    # 1. The newest pair (undefined at the first step: kept at 0 there).
    diff_params = sub(params, state.params)
    diff_updates = sub(updates, state.updates)
    curvature = real(vdot(diff_updates, diff_params))
    weight = jnp.where(curvature == 0.0, 0.0, 1.0 / curvature)
    diff_params, diff_updates, weight = jax.tree.map(
        lambda x: jnp.where(state.count > 0, x, jnp.zeros_like(x)),
        (diff_params, diff_updates, weight))
    diff_params_memory, diff_updates_memory, weights_memory = jax.tree.map(
        lambda x, y: x.at[prev_memory_idx].set(y),
        (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
        (diff_params, diff_updates, weight))
    # 2. gamma_k, the scale of the initial approximation.
    if scale_init_precond:
      numerator = real(vdot(diff_updates, diff_params))
      denominator = norm(diff_updates, squared=True)
      gamma = jnp.where(denominator > 0.0, numerator / denominator, 1.0)
      capped_inv_norm = jnp.minimum(1.0, 1.0 / norm(jax.lax.stop_gradient(updates)))
      gamma = jnp.where(state.count > 0, gamma, capped_inv_norm)
    else:
      gamma = 1.0
    # 3. P_k u_k.
    precond = _two_loop(updates, diff_params_memory, diff_updates_memory, weights_memory, gamma,
                        memory_idx)
    return precond, ScaleByLBFGSState(
        count=safe_increment(state.count), params=params, updates=updates,
        diff_params_memory=diff_params_memory, diff_updates_memory=diff_updates_memory,
        weights_memory=weights_memory)

  return GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleByStochasticLBFGSState(NamedTuple):
  r"""State of `scale_by_stochastic_lbfgs`.

  Attributes:
    count: int32 number of updates.
    params: the params at the last update.
    diff_params_memory: the last `memory_size` differences of params, stacked.
    diff_updates_memory: the matching damped gradient differences :math:`\bar y_j`.
    weights_memory: :math:`\rho_j = 1/\langle s_j, \bar y_j\rangle`.
    gamma: :math:`\gamma` of the newest pair (the initial approximation is
      :math:`\gamma^{-1} I`).
  """

  count: Any
  params: Any
  diff_params_memory: Any
  diff_updates_memory: Any
  weights_memory: Any
  gamma: Any


def scale_by_stochastic_lbfgs(
    memory_size: int = 10,
    delta: Any = 1.0,
    *,
    damping_threshold: Any = 0.25,
) -> GradientTransformationExtraArgs:
  r"""Stochastic damped L-BFGS (SdLBFGS): L-BFGS made safe for minibatch gradients.

  Each step compares the gradients of the *same* minibatch loss at the current and the last
  params, :math:`y = \nabla f_\xi(w_k) - \nabla f_\xi(w_{k-1})`, :math:`s = w_k - w_{k-1}`
  (one extra gradient of `value_fn`), and damps :math:`y` so that the pair keeps the
  approximation positive definite (Powell's damping, Wang et al. Algorithm 2):

  .. math::
      \gamma = \max(\langle y, y\rangle / \langle s, y\rangle, \delta),\quad
      \theta = \begin{cases} \frac{(1-\tau)\gamma s^\top s}{\gamma s^\top s - s^\top y}
        & s^\top y < \tau \gamma s^\top s \\ 1 & \text{else}\end{cases},\quad
      \bar y = \theta y + (1 - \theta)\gamma s

  (:math:`\delta` = `delta`, :math:`\tau` = `damping_threshold`; :math:`\gamma = \delta` when
  :math:`s^\top y \le 0`). Then :math:`\langle s, \bar y\rangle \ge \tau\gamma\|s\|^2 > 0`, and
  the two-loop recursion from :math:`H_0 = \gamma^{-1} I` over the damped pairs gives the
  returned :math:`H_k g_k`. Before the first pair :math:`H_0 = \delta^{-1} I`.

  Args:
    memory_size: number of pairs kept (>= 1).
    delta: :math:`\delta` > 0, the lower bound on :math:`\gamma` (an upper bound
      :math:`1/\delta` on the initial inverse-Hessian scale).
    damping_threshold: :math:`\tau` in (0, 1) (Wang et al. use 0.25).

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `params` and `value_fn=` (the loss on
    the current minibatch).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = gradtx.scale_by_stochastic_lbfgs(delta=2.0)
    >>> w = jnp.array([1., 2.])
    >>> u, _ = tx.update(jax.grad(f)(w), tx.init(w), w, value_fn=f)
    >>> u.tolist()
    [1.0, 2.0]

  References:
    Wang, Ma, Goldfarb & Liu, "Stochastic Quasi-Newton Methods for Nonconvex Stochastic
    Optimization", SIAM Journal on Optimization 2017. https://arxiv.org/abs/1607.01231
  """
  fn = "scale_by_stochastic_lbfgs"
  _checks.check_int(fn, "memory_size", memory_size, 1)
  _checks.check_scalar(fn, "delta", delta, low=0.0, low_open=True)
  _checks.check_scalar(fn, "damping_threshold", damping_threshold, low=0.0, high=1.0,
                       low_open=True, high_open=True)
  call = "update(grads, state, params, value_fn=lambda p: loss(p, batch))"

  def init_fn(params):
    stacked = _stacked_zeros(params, memory_size)
    return ScaleByStochasticLBFGSState(
        count=jnp.zeros([], jnp.int32), params=zeros_like(params), diff_params_memory=stacked,
        diff_updates_memory=stacked, weights_memory=jnp.zeros(memory_size),
        gamma=jnp.asarray(delta, jnp.float32))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    if value_fn is None:
      raise _checks.missing_extra_arg_error(fn, "value_fn", call)
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    f = functools.partial(value_fn, **fn_kwargs_for(value_fn, extra_args))
    first = state.count == 0
    # The same minibatch's gradient at the last params (skipped at the first step).
    prev_grad = jax.lax.cond(first, lambda p: zeros_like(p),
                             lambda p: cast_like(jax.grad(f)(p), p), state.params)
    s = sub(params, state.params)
    y = sub(updates, prev_grad)
    sy = real(vdot(s, y)).astype(jnp.float32)
    ss = real(vdot(s, s)).astype(jnp.float32)
    yy = real(vdot(y, y)).astype(jnp.float32)
    gamma = jnp.where(sy > 0.0, jnp.maximum(yy / jnp.where(sy > 0.0, sy, 1.0), delta), delta)
    gss = gamma * ss
    damp = sy < damping_threshold * gss
    theta = jnp.where(damp, (1.0 - damping_threshold) * gss / jnp.where(damp, gss - sy, 1.0),
                      1.0)
    y_bar = jax.tree.map(lambda yi, si: (theta * yi + (1.0 - theta) * gamma * si).astype(yi.dtype),
                         y, s)
    sy_bar = real(vdot(s, y_bar)).astype(jnp.float32)
    # A pair is used only if finite with s != 0 (then <s, y_bar> >= tau gamma |s|^2 > 0); a
    # skipped one fills its slot with zeros and weight 0, which the two-loop recursion ignores.
    keep = (~first) & (sy_bar > 0.0) & jnp.isfinite(sy_bar) & jnp.isfinite(gamma)
    weight = jnp.where(keep, 1.0 / jnp.where(keep, sy_bar, 1.0), 0.0)
    s, y_bar = (jax.tree.map(lambda x: jnp.where(keep, x, jnp.zeros_like(x)), t)
                for t in (s, y_bar))
    prev_slot = (state.count - 1) % memory_size
    s_mem, y_mem, w_mem = jax.tree.map(
        lambda mem, new: mem.at[prev_slot].set(new),
        (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
        (s, y_bar, weight))
    gamma = jnp.where(keep, gamma, state.gamma)
    precond = _two_loop(updates, s_mem, y_mem, w_mem, 1.0 / gamma, state.count % memory_size)
    precond = cast_like(precond, updates)
    count = safe_increment(state.count)
    return precond, ScaleByStochasticLBFGSState(
        count=count, params=params, diff_params_memory=s_mem, diff_updates_memory=y_mem,
        weights_memory=w_mem, gamma=gamma)

  return GradientTransformationExtraArgs(init_fn, update_fn)
