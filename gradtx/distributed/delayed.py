"""Stale gradients: any optimizer fed the gradient of `staleness` steps ago."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, OptState, Updates
from gradtx.distributed import _axis
from gradtx.numerics import safe_increment

__all__ = ["DelayedState", "delayed"]


class DelayedState(NamedTuple):
  """State of `delayed`.

  Attributes:
    count: The step count (int32).
    inner_state: The wrapped optimizer's state.
    buffer: The last `staleness` gradients (a ring along a leading axis of that size).
  """

  count: jax.Array
  inner_state: OptState
  buffer: Updates


def delayed(tx: GradientTransformation, staleness: int) -> GradientTransformation:
  r"""Feeds `tx` the gradient of `staleness` steps ago (asynchronous SGD's stale gradients).

  In asynchronous training a worker's gradient reaches the optimizer after other updates were
  applied: the update at step t uses the gradient computed at the params of step t - tau. This
  wrapper keeps the last tau gradients and, at step t >= tau, gives `tx` the gradient of step
  t - tau (with the current params); during the first tau steps the updates are zero and `tx`'s
  state does not move. `delayed(tx, 0)` is `tx`. Compose it with the distributed algorithms,
  e.g. `hogwild(delayed(sgd(lr), 2), 'w')` for writes that land two rounds late.

  .. math:: u_t = A(g_{t-\tau}) \ (t \ge \tau), \qquad u_t = 0 \ (t < \tau)

  Args:
    tx: :math:`A`, the optimizer (gradtx or optax).
    staleness: :math:`\tau \ge 0`, the delay in steps (an int).

  Returns:
    A `GradientTransformation` with state `DelayedState(count, inner_state, buffer)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.delayed(gradtx.sgd(1.0), staleness=1)
    >>> state = tx.init(jnp.zeros(1))
    >>> u0, state = tx.update(jnp.ones(1), state); u1, state = tx.update(2 * jnp.ones(1), state)
    >>> u0.tolist(), u1.tolist()  # nothing yet, then the first gradient
    ([0.0], [-1.0])

  References:
    Agarwal & Duchi, "Distributed Delayed Stochastic Optimization", NeurIPS 2011.
    https://arxiv.org/abs/1104.5525
  """
  fn = "distributed.delayed"
  _axis.check_transformation(fn, "tx", tx)
  _checks.check_int(fn, "staleness", staleness, 0, " staleness=0 is the optimizer itself.")
  pass_extra_args = _checks.accepts_extra_args(tx.update)

  def init_fn(params):
    buffer = jax.tree.map(lambda p: jnp.zeros((staleness,) + jnp.shape(p), jnp.asarray(p).dtype),
                          params)
    return DelayedState(count=jnp.zeros([], jnp.int32), inner_state=tx.init(params),
                        buffer=buffer)

  def update_fn(updates, state, params=None, **extra_args):
    extra_args = extra_args if pass_extra_args else {}
    if staleness == 0:
      u, inner_state = tx.update(updates, state.inner_state, params, **extra_args)
      return u, state._replace(count=safe_increment(state.count), inner_state=inner_state)
    slot = state.count % staleness
    old = jax.tree.map(lambda b: None if b is None else b[slot], state.buffer, is_leaf=is_none)
    buffer = jax.tree.map(lambda b, g: None if g is None else b.at[slot].set(g.astype(b.dtype)),
                          state.buffer, updates, is_leaf=is_none)
    old = jax.tree.map(lambda o, g: None if g is None else o.astype(g.dtype), old, updates,
                       is_leaf=is_none)
    u, inner_state = tx.update(old, state.inner_state, params, **extra_args)
    ready = state.count >= staleness
    u = jax.tree.map(lambda x: None if x is None else jnp.where(ready, x, jnp.zeros_like(x)), u,
                     is_leaf=is_none)
    inner_state = _axis.select(ready, inner_state, state.inner_state)
    return u, DelayedState(count=safe_increment(state.count), inner_state=inner_state,
                           buffer=buffer)

  return GradientTransformation(init_fn, update_fn)
