"""The all-reduce placed between a compressor and the optimizer in data-parallel training."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import EmptyState, GradientTransformation
from gradtx.distributed import _axis

__all__ = ["all_reduce"]


def all_reduce(axis_name: Any, *, skip_nonfinite: bool = True) -> GradientTransformation:
  r"""Averages the updates over the workers of `axis_name` (synchronous data parallelism).

  Place it where the workers' gradients meet: `chain(compressor, all_reduce('w'), optimizer)`
  compresses each worker's gradient (`top_k`, `sign_compression`), averages the compressed
  gradients over the replica axis and gives the same average to every worker's optimizer, so
  the workers' params stay equal. With `skip_nonfinite` (the default) a worker whose gradient
  has a non-finite entry is left out of the round's average (the others' mean is used); it
  loses nothing, since it receives the same average as the others.

  .. math:: \bar g = \frac{1}{|S|} \sum_{i \in S} g_i, \quad
      S = \{ i : g_i \text{ finite} \}

  Args:
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`.
    skip_nonfinite: leave out the workers whose gradient is not finite; False averages all
      (as `lax.pmean`), so one NaN spreads to every worker.

  Returns:
    A stateless `GradientTransformation` (`EmptyState`).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.all_reduce('w')
    >>> u, _ = jax.vmap(tx.update, in_axes=(0, None), axis_name='w')(
    ...     jnp.array([1.0, 3.0, jnp.nan]), gradtx.EmptyState())
    >>> u.tolist()
    [2.0, 2.0, 2.0]

  References:
    Dean et al., `Large Scale Distributed Deep Networks
    <https://papers.nips.cc/paper/4687-large-scale-distributed-deep-networks>`_, NeurIPS 2012
    (synchronous data parallelism as the baseline of Ruder's section 5).
  """
  fn = "distributed.all_reduce"
  _axis.check_axis_name(fn, axis_name)
  _checks.check_bool(fn, "skip_nonfinite", skip_nonfinite)

  def init_fn(params):
    del params
    _axis.check_axis_bound(fn, axis_name)
    return EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _axis.check_axis_bound(fn, axis_name)
    ok = _axis.all_finite(updates) if skip_nonfinite else True
    mean, _ = _axis.masked_mean(updates, axis_name, jnp.asarray(ok))
    return mean, state

  return GradientTransformation(init_fn, update_fn)

