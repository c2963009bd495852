"""Delay-tolerant AdaGrad (AdaptiveRevision): AdaGrad that accounts for the gradients' delays."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks
from gradtx.base import GradientTransformation, ScalarOrSchedule, Updates
from gradtx.distributed import _axis
from gradtx.numerics import safe_increment

__all__ = ["DelayTolerantAdagradState", "delay_tolerant_adagrad"]


class DelayTolerantAdagradState(NamedTuple):
  """State of `delay_tolerant_adagrad` (the same on every worker).

  Attributes:
    count: The round count (int32).
    sum_of_squares: The per-coordinate sum of squares z, with the delay terms.
    max_sum_of_squares: Its running maximum z'.
  """

  count: jax.Array
  sum_of_squares: Updates
  max_sum_of_squares: Updates


def delay_tolerant_adagrad(learning_rate: ScalarOrSchedule, axis_name: Any = None, *,
                           initial_accumulator_value: float = 0.1) -> GradientTransformation:
  r"""Delay-tolerant AdaGrad: AdaGrad whose step sizes account for the gradients' delays.

  McMahan & Streeter's AdaptiveRevision. In asynchronous training a gradient g arrives after
  other gradients (their sum is :math:`g^{bck}`) were applied since the params it was computed
  at were read. The accumulator then grows by :math:`g^2 + 2 g g^{bck}` (the square of what
  the sum of gradients would have added), its running maximum sets the step size, and the
  steps already taken with :math:`g^{bck}` are revised to the new, smaller step size. Without
  delays it is AdaGrad. Simulation: each round, every worker reads the same params and the
  server applies the workers' gradients one after the other in worker order, so worker i's
  gradient has :math:`g^{bck}` = the sum of workers 0..i-1's (delay i). A worker whose gradient
  is not finite is skipped. Without `axis_name` it is one worker (AdaGrad).

  .. math::
      z \leftarrow z + g^2 + 2 g \, g^{bck}, \quad z' \leftarrow \max(z', z), \quad
      \eta = \alpha / \sqrt{z'}, \quad
      x \leftarrow x - \eta g + (\eta_{old} - \eta) g^{bck}

  with :math:`\alpha` = `learning_rate`, :math:`z_0` = `initial_accumulator_value` and
  :math:`\eta_{old}` the step size when the params were read (the round's start).

  Args:
    learning_rate: :math:`\alpha > 0`, a float, scalar array or schedule (of the round count).
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`; None
      for one worker.
    initial_accumulator_value: :math:`z_0 > 0`, the accumulators' start.

  Returns:
    A `GradientTransformation` with state `DelayTolerantAdagradState(count, sum_of_squares,
    max_sum_of_squares)`; every worker gets the same updates.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.delay_tolerant_adagrad(1.0, initial_accumulator_value=1.0)
    >>> state = tx.init(jnp.zeros(1))
    >>> u, state = tx.update(jnp.full(1, jnp.sqrt(3.0)), state)  # AdaGrad: -sqrt(3)/sqrt(1+3)
    >>> round(float(u[0]), 4)
    -0.866

  References:
    McMahan & Streeter, "Delay-Tolerant Algorithms for Asynchronous Distributed Online
    Learning", NeurIPS 2014 (AdaptiveRevision).
    https://papers.nips.cc/paper/2014/hash/5cce8dede893813f879b873962fb669f-Abstract.html
  """
  fn = "distributed.delay_tolerant_adagrad"
  _checks.check_scalar(fn, "learning_rate", learning_rate, low=0.0, low_open=True, schedule=True)
  _axis.check_axis_name(fn, axis_name, optional=True)
  _checks.check_scalar(fn, "initial_accumulator_value", initial_accumulator_value, low=0.0,
                       low_open=True)

  def init_fn(params):
    if axis_name is not None:
      _axis.check_axis_bound(fn, axis_name)
    z = jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
    return DelayTolerantAdagradState(count=jnp.zeros([], jnp.int32), sum_of_squares=z,
                                     max_sum_of_squares=z)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    alpha = _checks.resolve(learning_rate, state.count, fn=fn, name="learning_rate")
    if axis_name is None:
      grads = jax.tree.map(lambda g: g[None], updates)
      oks = _axis.all_finite(updates)[None]
    else:
      _axis.check_axis_bound(fn, axis_name)
      grads = jax.tree.map(lambda g: lax.all_gather(g, axis_name), updates)
      oks = lax.all_gather(_axis.all_finite(updates), axis_name)
    eta_old = jax.tree.map(lambda zm: _checks.as_dtype(alpha, zm) / jnp.sqrt(zm),
                           state.max_sum_of_squares)

    def apply_one(carry, g_and_ok):  # the server applies one delayed gradient
      step, z, zmax, g_bck = carry
      g, ok = g_and_ok
      new_z = jax.tree.map(lambda z, g, b: z + g * g + 2 * g * b, z, g, g_bck)
      new_zmax = jax.tree.map(jnp.maximum, zmax, new_z)
      eta = jax.tree.map(lambda zm: _checks.as_dtype(alpha, zm) / jnp.sqrt(zm), new_zmax)
      new_step = jax.tree.map(lambda s, e, g, eo, b: s - e * g + (eo - e) * b, step, eta, g,
                              eta_old, g_bck)
      new = (new_step, new_z, new_zmax, _axis.tree_add(g_bck, g))
      return _axis.select(ok, new, carry), None

    zeros = jax.tree.map(jnp.zeros_like, updates)
    (step, z, zmax, _), _ = lax.scan(
        apply_one, (zeros, state.sum_of_squares, state.max_sum_of_squares, zeros), (grads, oks))
    step = jax.tree.map(lambda s, g: s.astype(g.dtype), step, updates)
    new_state = DelayTolerantAdagradState(count=safe_increment(state.count), sum_of_squares=z,
                                          max_sum_of_squares=zmax)
    if axis_name is not None:  # under shard_map: each worker's copy, typed as varying
      new_state = _axis.varying(new_state, _axis.names(axis_name))
    return step, new_state

  return GradientTransformation(init_fn, update_fn)
