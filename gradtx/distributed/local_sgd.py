"""Local SGD and post-local SGD: workers step on their own and average their params every
`sync_period` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, OptState
from gradtx.distributed import _axis
from gradtx.numerics import safe_increment

__all__ = ["LocalSGDState", "local_sgd"]


class LocalSGDState(NamedTuple):
  """State of `local_sgd`.

  Attributes:
    count: The step count (int32).
    inner_state: This worker's inner optimizer state.
  """

  count: jax.Array
  inner_state: OptState


def local_sgd(inner: GradientTransformation, sync_period: int, axis_name: Any, *,
              start_step: int = 0) -> GradientTransformation:
  r"""Local SGD: each worker takes `inner` steps alone; params are averaged every k steps.

  Each worker applies its inner optimizer to its own gradient; after steps k, 2k, ... the
  workers' params are replaced by their average (one all-reduce of the params per k steps
  instead of one of the gradients per step). Post-local SGD (Lin et al.) averages after every
  step during the first `start_step` steps (data-parallel warm-up, when the params' average
  and the gradients' average coincide for plain SGD) and then every `sync_period` steps after
  `start_step`. The inner optimizer's state stays local (it is not averaged). A worker whose
  gradient is not finite skips its step (params and inner state unchanged) and is left out of
  that round's average (as is one whose params are not finite); on a sync step it takes the
  others' average, so it loses nothing.

  .. math::
      x_i \leftarrow x_i + A(g_i), \qquad
      x_i \leftarrow \frac{1}{n} \sum_j x_j \ \text{after step } t \text{ if }
      t \le t_0 \text{ or } (t - t_0) \bmod k = 0

  with :math:`A` = `inner`, :math:`k` = `sync_period`, :math:`t_0` = `start_step`.

  Args:
    inner: :math:`A`, each worker's optimizer (gradtx or optax).
    sync_period: :math:`k \ge 1`, local steps between averages (1 is data parallel on params).
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`.
    start_step: :math:`t_0 \ge 0`, the steps of post-local SGD's synchronous phase (0: plain
      local SGD).

  Returns:
    A `GradientTransformation` with state `LocalSGDState(count, inner_state)`, whose updates
    include the sync step's averaging (`update(grads, state, params)` needs `params`).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.local_sgd(gradtx.sgd(1.0), sync_period=2, axis_name='w')
    >>> params, grads = jnp.zeros(2), jnp.array([1.0, 3.0])
    >>> state = jax.vmap(tx.init, axis_name='w')(params)
    >>> for _ in range(2):
    ...   u, state = jax.vmap(tx.update, axis_name='w')(grads, state, params); params += u
    >>> params.tolist()  # -2 and -6, averaged after step 2
    [-4.0, -4.0]

  References:
    Stich, "Local SGD Converges Fast and Communicates Little", ICLR 2019.
    https://arxiv.org/abs/1805.09767
    Lin, Stich, Patel & Jaggi, "Don't Use Large Mini-Batches, Use Local SGD", ICLR 2020
    (post-local SGD). https://arxiv.org/abs/1808.07217
  """
  fn = "distributed.local_sgd"
  _axis.check_transformation(fn, "inner", inner)
  _checks.check_int(fn, "sync_period", sync_period, 1, " sync_period=1 averages every step.")
  _axis.check_axis_name(fn, axis_name)
  _checks.check_int(fn, "start_step", start_step, 0)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    _axis.check_axis_bound(fn, axis_name)
    return LocalSGDState(count=jnp.zeros([], jnp.int32), inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    _, inner_state, local, ok = _axis.local_step(fn, axis_name, inner, pass_extra_args, updates,
                                                 state.inner_state, params, extra_args)
    count = safe_increment(state.count)

    def average(local):  # a worker whose gradient or params are not finite sits this one out
      mean, _ = _axis.masked_mean(local, axis_name, ok & _axis.all_finite(local))
      return mean

    sync = (count <= start_step) | ((count - start_step) % sync_period == 0)
    new = _axis.sync_cond(sync, axis_name, average, lambda x: x, local)
    return _axis.tree_sub(new, params), LocalSGDState(count=count, inner_state=inner_state)

  return GradientTransformation(init_fn, update_fn)
