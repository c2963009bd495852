"""DiLoCo: local inner-optimizer steps, and an outer optimizer on the averaged parameter deltas."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, OptState, Params
from gradtx.distributed import _axis
from gradtx.numerics import safe_increment

__all__ = ["DiLoCoState", "diloco"]


class DiLoCoState(NamedTuple):
  """State of `diloco`.

  Attributes:
    count: The step count (int32).
    inner_state: This worker's inner optimizer state.
    outer_state: The outer optimizer's state (the same on every worker).
    anchor: The global params at the last outer step (the same on every worker).
  """

  count: jax.Array
  inner_state: OptState
  outer_state: OptState
  anchor: Params


def diloco(inner: GradientTransformation, outer: GradientTransformation, sync_period: int,
           axis_name: Any) -> GradientTransformation:
  r"""DiLoCo: H inner steps per worker, then an outer step on the average of the workers' deltas.

  Each worker runs `inner` (AdamW in the paper) from the global params for H = `sync_period`
  steps; then the outer gradient, the average over workers of (global params - worker params),
  is given to `outer` (Nesterov SGD in the paper: `gradtx.sgd(0.7, momentum=0.9,
  nesterov=True)`), whose step moves the global params, and every worker restarts from them
  (the inner states stay local). One all-reduce of the params every H steps. A worker whose
  gradient is not finite skips its inner step and is left out of that round's outer average
  (as is one whose delta is not finite). With H = 1 and an outer `sgd(1.0)` it is data-parallel training with the
  inner optimizer's update averaged (with an inner SGD, data parallel SGD).

  .. math::
      \theta_i \leftarrow \theta_i + A(g_i) \ (H \text{ times}), \qquad
      \Delta = \frac{1}{n} \sum_i (\theta - \theta_i), \qquad
      \theta \leftarrow \theta + B(\Delta), \quad \theta_i \leftarrow \theta

  with :math:`A` = `inner`, :math:`B` = `outer` and :math:`\theta` the anchor (global params).

  Args:
    inner: :math:`A`, each worker's optimizer (gradtx or optax).
    outer: :math:`B`, the outer optimizer, given the outer gradient :math:`\Delta`.
    sync_period: :math:`H \ge 1`, inner steps per outer step.
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`.

  Returns:
    A `GradientTransformation` with state `DiLoCoState(count, inner_state, outer_state,
    anchor)`; its updates include the outer step (`update(grads, state, params)` needs params).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.diloco(gradtx.sgd(1.0), gradtx.sgd(1.0), sync_period=2,
    ...                                axis_name='w')
    >>> params, grads = jnp.zeros(2), jnp.array([1.0, 3.0])
    >>> state = jax.vmap(tx.init, axis_name='w')(params)
    >>> for _ in range(2):
    ...   u, state = jax.vmap(tx.update, axis_name='w')(grads, state, params); params += u
    >>> params.tolist()
    [-4.0, -4.0]

  References:
    Douillard, Feng, Rusu, Chhaparia, Donchev, Kuncoro, Ranzato, Szlam & Shen, "DiLoCo:
    Distributed Low-Communication Training of Language Models", 2023, Algorithm 1.
    https://arxiv.org/abs/2311.08105
  """
  fn = "distributed.diloco"
  _axis.check_transformation(fn, "inner", inner)
  _axis.check_transformation(fn, "outer", outer)
  _checks.check_int(fn, "sync_period", sync_period, 1, " sync_period=1 is an outer step "
                    "after every inner step.")
  _axis.check_axis_name(fn, axis_name)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    _axis.check_axis_bound(fn, axis_name)
    return DiLoCoState(count=jnp.zeros([], jnp.int32), inner_state=inner.init(params),
                       outer_state=outer.init(params), anchor=params)

  def update_fn(updates, state, params=None, **extra_args):
    _, inner_state, local, ok = _axis.local_step(fn, axis_name, inner, pass_extra_args, updates,
                                                 state.inner_state, params, extra_args)
    count = safe_increment(state.count)

    def outer_step(local, anchor, outer_state):
      delta = _axis.tree_sub(anchor, local)  # the outer gradient: theta - theta_i
      outer_grad, _ = _axis.masked_mean(delta, axis_name, ok & _axis.all_finite(delta))
      step, outer_state = outer.update(outer_grad, outer_state, anchor)
      new = _axis.tree_add(anchor, step)
      return new, new, outer_state

    def inner_only(local, anchor, outer_state):
      return local, anchor, outer_state

    new, anchor, outer_state = _axis.sync_cond(count % sync_period == 0, axis_name, outer_step,
                                               inner_only, local, state.anchor,
                                               state.outer_state)
    return _axis.tree_sub(new, params), DiLoCoState(
        count=count, inner_state=inner_state, outer_state=outer_state, anchor=anchor)

  return GradientTransformation(init_fn, update_fn)
