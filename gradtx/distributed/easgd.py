"""Elastic averaging SGD: workers tied to a center variable by an elastic force."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, OptState, Params
from gradtx.distributed import _axis
from gradtx.numerics import safe_increment

__all__ = ["EASGDState", "easgd"]


class EASGDState(NamedTuple):
  """State of `easgd`.

  Attributes:
    count: The step count (int32).
    inner_state: This worker's inner optimizer state.
    center: The center variable (the same on every worker).
    stale_centers: The centers of the last `staleness` sync rounds (leading axis `staleness`, oldest first; empty in the synchronous form).
  """

  count: jax.Array
  inner_state: OptState
  center: Params
  stale_centers: Params


def easgd(inner: GradientTransformation, alpha: float, sync_period: int, axis_name: Any, *,
          staleness: int = 0) -> GradientTransformation:
  r"""Elastic averaging SGD (EASGD): an elastic force pulls workers and center together.

  Every `sync_period` steps (at t = 0, k, 2k, ..., before the local step, as the paper's
  Algorithm 1) each worker moves `alpha` of the way towards the center variable, and the center
  moves `alpha` times the sum of the workers' differences towards them; between syncs each worker
  takes `inner` steps on its own gradient, evaluated at its params before the elastic move. The
  workers may wander away from the center (exploration), which the paper credits for better
  optima. `alpha = 0` is independent workers. The asynchronous form is simulated by `staleness`:
  the center a worker is pulled towards is the one of `staleness` sync rounds earlier (the
  center itself moves with the current differences). A worker whose gradient is not finite skips
  its local step and sits the round out (not pulled, not moving the center), as does one whose
  params are not finite.

  .. math::
      x_i \leftarrow x_i - \alpha (x_i - \tilde x_{\text{read}}), \quad
      \tilde x \leftarrow \tilde x + \alpha \sum_i (x_i - \tilde x) \quad (t \bmod k = 0),
      \qquad x_i \leftarrow x_i + A(g_i)

  with :math:`\alpha` = `alpha` (the paper's :math:`\eta\rho`), :math:`k` = `sync_period`,
  :math:`A` = `inner` (the paper's SGD: `gradtx.sgd(eta)`) and :math:`\tilde x_{\text{read}}`
  the center of `staleness` rounds ago.

  Args:
    inner: :math:`A`, each worker's optimizer (gradtx or optax).
    alpha: the elastic coefficient, in [0, 1]; stable for :math:`n\alpha < 1` on the center side.
    sync_period: :math:`k \ge 1` (the paper's :math:`\tau`), steps between elastic moves.
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`.
    staleness: sync rounds by which a worker's read of the center lags (0: synchronous EASGD).

  Returns:
    A `GradientTransformation` with state `EASGDState(count, inner_state, center,
    stale_centers)`; `update(grads, state, params)` needs params. Evaluate the center
    (`state.center`), not a worker.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.easgd(gradtx.sgd(0.0), alpha=0.25, sync_period=1, axis_name='w')
    >>> params = jnp.array([0.0, 4.0]); state = jax.vmap(tx.init, axis_name='w')(jnp.zeros(2))
    >>> u, state = jax.vmap(tx.update, axis_name='w')(jnp.zeros(2), state, params)
    >>> (params + u).tolist(), state.center.tolist()
    ([0.0, 3.0], [1.0, 1.0])

  References:
    Zhang, Choromanska & LeCun, "Deep learning with Elastic Averaging SGD", NeurIPS 2015,
    equations (5)-(6) and Algorithm 1. https://arxiv.org/abs/1412.6651
  """
  fn = "distributed.easgd"
  _axis.check_transformation(fn, "inner", inner)
  _checks.check_scalar(fn, "alpha", alpha, low=0.0, high=1.0)
  _checks.check_int(fn, "sync_period", sync_period, 1, " sync_period=1 pulls every step.")
  _axis.check_axis_name(fn, axis_name)
  _checks.check_int(fn, "staleness", staleness, 0)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    _axis.check_axis_bound(fn, axis_name)
    stale = jax.tree.map(lambda p: jnp.broadcast_to(p, (staleness,) + jnp.shape(p)), params)
    return EASGDState(count=jnp.zeros([], jnp.int32), inner_state=inner.init(params),
                      center=params, stale_centers=stale)

  def update_fn(updates, state, params=None, **extra_args):
    u, inner_state, _, ok = _axis.local_step(fn, axis_name, inner, pass_extra_args, updates,
                                                 state.inner_state, params, extra_args)

    def elastic(params, center, stale):
      finite = ok & _axis.all_finite(params)
      read = center if staleness == 0 else jax.tree.map(lambda s: s[0], stale)
      a = lambda x: _checks.as_dtype(alpha, x)
      pull = jax.tree.map(lambda x, c: jnp.where(finite, -a(x) * (x - c), 0).astype(x.dtype),
                          params, read)  # x_i - alpha (x_i - x~), eq. (5)
      diff = _axis.masked_sum(_axis.tree_sub(params, center), axis_name, finite)
      new_center = jax.tree.map(lambda c, d: (c + a(c) * d).astype(c.dtype), center, diff)
      if staleness:
        stale = jax.tree.map(lambda s, c: jnp.concatenate([s[1:], c[None]]), stale, center)
      return pull, new_center, stale  # eq. (6): x~ + alpha sum_i (x_i - x~)

    def no_sync(params, center, stale):
      return jax.tree.map(jnp.zeros_like, params), center, stale

    pull, center, stale = _axis.sync_cond(state.count % sync_period == 0, axis_name, elastic,
                                          no_sync, params, state.center, state.stale_centers)
    new_updates = jax.tree.map(lambda e, v: (e + v).astype(v.dtype), pull, u)
    return new_updates, EASGDState(count=safe_increment(state.count), inner_state=inner_state,
                                   center=center, stale_centers=stale)

  return GradientTransformation(init_fn, update_fn)
