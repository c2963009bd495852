"""Mechanic, a learning-rate tuner wrapped around any optimizer (optax.contrib's `mechanize`).

The scale is updated on every step from a few scalar reductions: there is no periodic branch
(the only `cond`, on the first step, selects between two existing trees and computes nothing).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    with_extra_args_support,
)
from gradtx.contrib import _weight_decay
from gradtx.numerics import safe_increment
from gradtx.tree.arithmetic import norm as tree_norm
from gradtx.tree.arithmetic import vdot as tree_vdot
from gradtx.tree.casting import dtype as tree_dtype

__all__ = [
    "MechanicState",
    "mechanize",
]


class MechanicState(NamedTuple):
  """State of `mechanize`, with optax's fields.

  Attributes:
    base_optimizer_state: the base optimizer's state.
    count: int32 scalar, the step count.
    r: the per-beta rewards, shape [num_betas].
    m: the per-beta maxima of :math:`|h|`, shape [num_betas].
    v: the per-beta sums of :math:`h^2`, shape [num_betas].
    s: the per-beta scales, shape [num_betas].
    x0: the reference point (the initial params).
  """

  base_optimizer_state: Any
  count: jax.Array  # int32 scalar
  r: jax.Array  # [num_betas]
  m: jax.Array  # [num_betas]
  v: jax.Array  # [num_betas]
  s: jax.Array  # [num_betas]
  x0: Any


def mechanize(
    base_optimizer: GradientTransformation,
    weight_decay: Any = 1e-2,
    eps: Any = 1e-8,
    s_init: Any = 1e-6,
    num_betas: int = 6,
    *,
    mask: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Learns the scale of `base_optimizer`'s updates online (Mechanic).

  The params are :math:`x_t = x_0 + s_t \Delta_t`, where :math:`\Delta_t` sums the base
  optimizer's updates and the scale :math:`s_t = \sum_j s_{t,j}` comes from a parameter-free
  online learner (a "wealth"-based coin betting) run for several betas at once. A learning-rate
  schedule with peak 1.0 still applies through the base optimizer.

  .. math::
      \tilde g_t = g_t + \lambda \textstyle\sum_j s_{t,j} \frac{\|g_t\|}{\|x_t\| + \epsilon} x_t,
      \quad h_t = \langle \tilde g_t, \Delta_t \rangle, \quad
      \Delta_t = (x_0 - x_t) / (\textstyle\sum_j s_{t,j} + \epsilon), \\
      m_{t,j} = \max(\beta_j m_{t-1,j}, |h_t| + \epsilon), \quad
      v_{t,j} = \beta_j^2 v_{t-1,j} + h_t^2, \quad
      r_{t,j} = \beta_j r_{t-1,j} + \mathrm{clip}(h_t, -m_{t-1,j}, m_{t-1,j})\, s_{t-1,j}, \\
      s_{t+1,j} = \frac{(s_{init}/n)\, m_{t,j} + \max(0, r_{t,j})}{\sqrt{v_{t,j}} + \epsilon},
      \quad x_{t+1} = x_0 - \textstyle\sum_j s_{t+1,j}\, (\Delta_t - u_t)

  with :math:`\beta_j = 1 - 10^{-j}` for :math:`j = 1..n` (`num_betas`), :math:`u_t` the base
  optimizer's update, :math:`\lambda` = `weight_decay`, :math:`s_{init}` = `s_init`.

  Args:
    base_optimizer: the optimizer whose updates are scaled (gradtx or optax).
    weight_decay: :math:`\lambda \ge 0`, Mechanic's own decay (not the base optimizer's); a
      float, array or schedule of the step count.
    eps: :math:`\epsilon > 0`.
    s_init: :math:`s_{init} > 0`, the initial scale.
    num_betas: :math:`n \ge 1`, the number of betas (a Python int: it sets the state's shape).
    mask: which params get the weight-decay term (pytree of bools or function of the params).
      Not in optax.

  Returns:
    A `GradientTransformationExtraArgs` with state `MechanicState`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.mechanize(gradtx.sgd(0.1))
    >>> p = jnp.ones(2)
    >>> u, s = tx.update(jnp.ones(2), tx.init(p), p)
    >>> s.s.shape
    (6,)

  References:
    Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner", NeurIPS 2023.
    https://arxiv.org/abs/2306.00144
  """
  fn = "contrib.mechanize"
  base_optimizer = with_extra_args_support(base_optimizer)
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0.0, schedule=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0, low_open=True)
  _checks.check_scalar(fn, "s_init", s_init, low=0.0, low_open=True)
  if isinstance(num_betas, bool) or not isinstance(num_betas, int):
    raise TypeError(f"gradtx.{fn}: num_betas must be a Python int (it sets the state's shape), "
                    f"got {type(num_betas).__name__} {num_betas!r}.")
  _checks.check_int(fn, "num_betas", num_betas, 1)
  _weight_decay.check_mask(fn, mask)

  def init_fn(params):
    params_dtype = tree_dtype(params, "lowest")
    return MechanicState(
        base_optimizer_state=base_optimizer.init(params),
        count=jnp.zeros([], jnp.int32),
        r=jnp.zeros([num_betas], dtype=params_dtype),
        m=jnp.zeros([num_betas], dtype=params_dtype),
        v=jnp.zeros([num_betas], dtype=params_dtype),
        s=jnp.ones([num_betas], dtype=params_dtype) * s_init,
        x0=jax.tree.map(lambda p: jnp.array(p, copy=True), params),
    )

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "params", params, "state.x0", state.x0)
    wd = _checks.resolve(weight_decay, state.count, fn=fn, name="weight_decay")
    decay = _weight_decay.leaf_mask(fn, mask, params)
    count_inc = safe_increment(state.count)
    new_neg_updates, base_state = base_optimizer.update(
        updates, state.base_optimizer_state, params, **extra_args)
    # x0 = params on the first step (optax's cond: a select of two existing trees).
    x0 = jax.lax.cond(state.count == 0, lambda: params, lambda: state.x0)
    s_sum = jnp.sum(state.s)
    grad_norm = tree_norm(updates)
    param_norm = tree_norm(params)

    def add_weight_decay(gi, pi, decayed):  # g~ = g + lambda sum(s) |g| / (|x| + eps) x
      return gi + wd * s_sum * grad_norm / (param_norm + eps) * pi if decayed else gi

    treedef = jax.tree.structure(updates)
    grads = jax.tree.unflatten(treedef, [
        add_weight_decay(g, p, dec) for g, p, dec in
        zip(jax.tree.leaves(updates), jax.tree.leaves(params), decay)])
    delta_prev = jax.tree.map(lambda xti, x0i: (x0i - xti) / (s_sum + eps), params, x0)
    delta = jax.tree.map(lambda si, ui: si - ui, delta_prev, new_neg_updates)
    h = tree_vdot(grads, delta_prev)  # h_t = <g~, Delta_t>
    clipped_h = jax.lax.clamp(-state.m, jnp.ones_like(state.m) * h, state.m)
    betas = jnp.array([1.0 - 0.1**j for j in range(1, num_betas + 1)], dtype=state.s.dtype)
    m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)  # m_t
    v = (betas**2) * state.v + h**2  # v_t
    r = betas * state.r + clipped_h * state.s  # r_t
    rc = jnp.maximum(0.0, r)
    wealth = (s_init / jnp.size(betas)) * m + rc
    s = wealth / (jnp.sqrt(v) + eps)  # s_{t+1}
    new_params = jax.tree.map(lambda x0i, di: x0i - jnp.sum(s) * di, x0, delta)
    out = jax.tree.map(lambda npi, pi, g: (npi - pi).astype(jnp.asarray(g).dtype),
                       new_params, params, updates)
    dt = state.s.dtype
    return out, MechanicState(
        base_optimizer_state=base_state, count=count_inc, r=r.astype(dt), m=m.astype(dt),
        v=v.astype(dt), s=s.astype(dt), x0=x0)

  return GradientTransformationExtraArgs(init_fn, update_fn)
