"""The Lookahead optimizer: `k` steps of a fast optimizer forward, one step of the slow weights
back towards them."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, OptState, Params
from gradtx.numerics import safe_increment

__all__ = [
    "LookaheadParams",
    "LookaheadState",
    "lookahead",
]


class LookaheadParams(NamedTuple):
  """The fast and slow weights of `lookahead`, with optax's field names.

  Compute gradients at `fast` (the weights the fast optimizer moves) and evaluate or deploy
  `slow` (the weights that generalize better). `gradtx.apply_updates` adds `lookahead`'s
  updates to both at once.

  Attributes:
    fast: the fast weights (where gradients are computed).
    slow: the slow weights (to evaluate or deploy).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p = gradtx.LookaheadParams.init_synced({'w': jnp.ones(2)})
    >>> p.fast['w'].tolist(), p.slow['w'].tolist()
    ([1.0, 1.0], [1.0, 1.0])
  """

  fast: Params
  slow: Params

  @classmethod
  def init_synced(cls, params: Params) -> "LookaheadParams":
    """Starts the fast and the slow weights at the same `params`."""
    return cls(fast=params, slow=params)


class LookaheadState(NamedTuple):
  """State of `lookahead`, with optax's field names.

  Attributes:
    fast_state: the fast optimizer's state.
    steps_since_sync: int32 scalar in [0, sync_period), the fast steps since the last sync.
  """

  fast_state: OptState
  steps_since_sync: jax.Array  # int32 scalar


def _is_lookahead_params(params: Any) -> bool:
  """A NamedTuple with `fast` and `slow` fields (gradtx's or optax's `LookaheadParams`)."""
  fields = getattr(params, "_fields", None)
  return isinstance(params, tuple) and fields is not None and {"fast", "slow"} <= set(fields)


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: int,
    slow_step_size: float | jax.Array,
    reset_state: bool = False,
) -> GradientTransformation:
  r"""Lookahead: the slow weights move a fraction of the way to where `k` fast steps went.

  A fast optimizer (any transformation, such as `adam`) takes `sync_period` steps from the slow
  weights; then the slow weights move `slow_step_size` of the way towards the fast weights and
  the fast weights restart from them. The slow weights average out the fast optimizer's noise
  and oscillations, which makes training less sensitive to the fast optimizer's
  hyperparameters. The params are a `LookaheadParams(fast, slow)` and the updates are one too:
  compute gradients at `params.fast`, then `gradtx.apply_updates(params, updates)` (do not
  rescale or clip the updates after `lookahead`; do that inside `fast_optimizer`).

  .. math::
      \theta_{t,i} = \theta_{t,i-1} + A(g_{t,i}), \quad i = 1, \dots, k, \qquad
      \phi_{t+1} = \phi_t + \alpha\,(\theta_{t,k} - \phi_t), \quad
      \theta_{t+1,0} = \phi_{t+1}

  with :math:`\theta` = `params.fast`, :math:`\phi` = `params.slow`, :math:`A` =
  `fast_optimizer`, :math:`k` = `sync_period` and :math:`\alpha` = `slow_step_size`. The
  :math:`k`-th fast step and the synchronization are one update.

  Args:
    fast_optimizer: :math:`A`, the inner optimizer (gradtx or optax); it sees `params.fast`.
    sync_period: :math:`k \ge 1`, fast steps between synchronizations (an int).
    slow_step_size: :math:`\alpha` in [0, 1], a float or scalar array (no schedule); 1 makes
      lookahead the fast optimizer alone, 0 keeps the slow weights at their start.
    reset_state: re-initialize the fast optimizer's state at each synchronization.

  Returns:
    A `GradientTransformation` with state `LookaheadState(fast_state, steps_since_sync)` whose
    `update(grads, state, params)` needs `params = LookaheadParams(fast, slow)` and returns
    `LookaheadParams` updates. `init` also accepts the plain params (as optax).

  The updates are optax's bit for bit, eagerly and under jit (the same products in the same
  order, so that XLA fuses them alike). Differences from optax (0.2.8): `update` accepts extra
  keyword arguments and forwards them to a fast optimizer that takes them; a non-finite
  `theta + u - phi` off the sync step counts as 0 (optax multiplies it by 0, which spreads
  NaNs to the slow weights) and `reset_state` selects with `jnp.where` where optax multiplies
  by 0 and 1; `init` with plain params logs no warning; the updates keep the fast optimizer's
  update dtype (bfloat16 in, bfloat16 out).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.lookahead(gradtx.sgd(1.0), sync_period=2, slow_step_size=0.5)
    >>> params = gradtx.LookaheadParams.init_synced(jnp.zeros(1)); state = tx.init(params)
    >>> for _ in range(3):  # fast: -1, then -2 and synced to -1, then -2
    ...   u, state = tx.update(jnp.ones(1), state, params); params = gradtx.apply_updates(params, u)
    >>> params.fast.tolist(), params.slow.tolist()
    ([-2.0], [-1.0])

  References:
    Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back", NeurIPS
    2019, Algorithm 1. https://arxiv.org/abs/1907.08610
  """
  fn = "lookahead"
  if not (callable(getattr(fast_optimizer, "init", None))
          and callable(getattr(fast_optimizer, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: fast_optimizer must be a GradientTransformation with init and update, "
        f"got {type(fast_optimizer).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
  _checks.check_int(fn, "sync_period", sync_period, 1,
                    " sync_period=1 synchronizes after every fast step.")
  _checks.check_scalar(fn, "slow_step_size", slow_step_size, low=0.0, high=1.0)
  _checks.check_bool(fn, "reset_state", reset_state)
  pass_extra_args = _checks.accepts_extra_args(fast_optimizer.update)
  alpha = slow_step_size
  one_minus_alpha = 1 - slow_step_size  # in Python double for a float, as optax rounds it

  def init_fn(params):
    fast = params.fast if _is_lookahead_params(params) else params
    return LookaheadState(
        fast_state=fast_optimizer.init(fast), steps_since_sync=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    if not _is_lookahead_params(params):
      raise TypeError(
          f"gradtx.{fn}: params must be a LookaheadParams(fast, slow), got "
          f"{type(params).__name__}. Hint: params = gradtx.LookaheadParams.init_synced(params); "
          "compute the gradients at params.fast and apply the updates to both with "
          "gradtx.apply_updates(params, updates).")
    _checks.check_same_structure(fn, "params.fast", params.fast, "params.slow", params.slow)
    fast_structure = jax.tree.structure(params.fast, is_leaf=is_none)
    updates_structure = jax.tree.structure(updates, is_leaf=is_none)
    if updates_structure != fast_structure:
      raise ValueError(
          f"gradtx.{fn}: the structure of updates does not match params.fast.\n"
          f"  params.fast: {fast_structure}\n  updates: {updates_structure}\n"
          "Hint: compute the gradients at params.fast, not at the LookaheadParams.")
    if not pass_extra_args:
      extra_args = {}
    fast_updates, fast_state = fast_optimizer.update(
        updates, state.fast_state, params.fast, **extra_args)
    sync = state.steps_since_sync == sync_period - 1

    # optax's products, (alpha * sync) * d and u - (sync * (1 - alpha)) * d, so that XLA fuses
    # them as optax's (with alpha = 0.5 both are one product, which it may share between the two
    # outputs). A non-finite d off the sync step is 0, so that it does not spread (0 * inf is
    # NaN); a select on `sync` alone would merge with the factor's and lose the fused
    # multiply-add of u - factor * d.
    def last_difference(theta, u, phi):  # theta_{t,k} - phi_t
      d = theta + u - phi
      return jnp.where(sync | jnp.isfinite(d), d, 0)

    def fast_update(u, theta, phi):  # u, or phi_{t+1} - theta_{t,k-1} on a sync step
      if u is None:
        return None
      d = last_difference(theta, u, phi)
      return (u - sync * _checks.as_dtype(one_minus_alpha, d) * d).astype(u.dtype)

    def slow_update(u, theta, phi):  # 0, or alpha (theta_{t,k} - phi_t) on a sync step
      if u is None:
        return None
      d = last_difference(theta, u, phi)
      return (_checks.as_dtype(alpha, d) * sync * d).astype(u.dtype)

    trees = (fast_updates, params.fast, params.slow)
    new_updates = LookaheadParams(
        fast=jax.tree.map(fast_update, *trees, is_leaf=is_none),
        slow=jax.tree.map(slow_update, *trees, is_leaf=is_none))
    if reset_state:
      fast_state = jax.tree.map(
          lambda current, init: jnp.where(sync, init, current).astype(jnp.asarray(current).dtype),
          fast_state, fast_optimizer.init(params.fast))
    steps_since_sync = (safe_increment(state.steps_since_sync) % sync_period).astype(jnp.int32)
    return new_updates, LookaheadState(fast_state=fast_state, steps_since_sync=steps_since_sync)

  return GradientTransformation(init_fn, update_fn)
