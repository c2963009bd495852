"""Weight decay added to the updates (L2 regularization, or decoupled when added after scaling)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.tree import cast_like, safe_increment
from gradtx.wrappers import masked

__all__ = ["AddDecayedWeightsState", "add_decayed_weights"]


def _is_none(x: Any) -> bool:
  return x is None


class AddDecayedWeightsState(NamedTuple):
  """State of `add_decayed_weights`: the step count (for a `weight_decay` schedule)."""

  count: jax.Array  # int32 scalar


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformation:
  r"""Adds the parameters scaled by `weight_decay` to the updates, as optax's.

  Placed before the adaptive scaling this is L2 regularization; placed after it (just before
  `scale_by_learning_rate`) it is the decoupled weight decay of AdamW, which shrinks every
  weight by the same fraction of the learning rate.

  .. math:: u_t = g_t + \lambda_t \theta_t \quad (\lambda_t = \texttt{weight\_decay})

  Args:
    weight_decay: :math:`\lambda \geq 0`; a float, scalar array or schedule of the step count.
    mask: optional; a pytree of bools shaped like the params (or a prefix of it), or a function
      of the params returning one. Only `True` leaves are decayed (see `masked`), e.g. to skip
      biases: `lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`.

  Returns:
    A `GradientTransformation` with state `AddDecayedWeightsState(count)`, wrapped in
    `MaskedState` when `mask` is given. Its `update` needs `params`. Differences from optax:
    the state always holds `count` (optax keeps `EmptyState()` for a constant), so swapping a
    constant for a schedule never changes the state's structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.add_decayed_weights(0.1)
    >>> p = jnp.asarray([1.0, 2.0])
    >>> tx.update(jnp.zeros(2), tx.init(p), p)[0].tolist()
    [0.10000000149011612, 0.20000000298023224]

  References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
    https://arxiv.org/abs/1711.05101
  """
  _checks.check_scalar("add_decayed_weights", "weight_decay", weight_decay, low=0, schedule=True)
  is_zero = isinstance(weight_decay, (int, float)) and weight_decay == 0.0

  def init_fn(params):
    del params
    return AddDecayedWeightsState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error("add_decayed_weights")
    _checks.check_same_structure("add_decayed_weights", "updates", updates, "params", params)
    new_state = AddDecayedWeightsState(count=safe_increment(state.count))
    if is_zero:  # A literal zero adds nothing (and keeps infinite params from making NaNs).
      return updates, new_state
    wd = _checks.resolve(weight_decay, state.count)
    out = jax.tree.map(
        lambda g, p: None if g is None else g + _checks.as_dtype(wd, g) * p,
        updates, params, is_leaf=_is_none)
    return cast_like(out, updates), new_state

  tx = GradientTransformation(init_fn, update_fn)
  return tx if mask is None else masked(tx, mask)
