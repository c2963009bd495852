"""Guarding an optimizer against non-finite gradients: `apply_if_finite`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.numerics import safe_increment

__all__ = [
    "ApplyIfFiniteState",
    "apply_if_finite",
]


def _all_finite(tree: Any) -> jax.Array:
  """A bool scalar: whether every element of every (non-None) leaf of `tree` is finite."""
  leaves = [x for x in jax.tree.leaves(tree) if x is not None]
  if not leaves:
    return jnp.asarray(True)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


class ApplyIfFiniteState(NamedTuple):
  """State of `apply_if_finite`, with optax's field names.

  `notfinite_count` counts the consecutive non-finite steps (reset to 0 by a finite one);
  `last_finite` is whether the last step's updates were finite; `total_notfinite` counts every
  non-finite step since `init`; `inner_state` is the wrapped transformation's state.
  """

  notfinite_count: jax.Array  # int32 scalar
  last_finite: jax.Array  # bool scalar
  total_notfinite: jax.Array  # int32 scalar
  inner_state: Any


def apply_if_finite(
    inner: GradientTransformation, max_consecutive_errors: int
) -> GradientTransformation:
  r"""Skips the steps whose updates contain a NaN or an Inf, up to a number in a row.

  A step whose incoming updates have any non-finite element returns zero updates and leaves
  the inner state untouched, so the run continues as if that step never happened (moments and
  step counts are not polluted). Skips are counted; once more than `max_consecutive_errors`
  happen in a row the update is applied anyway (as in optax), so a run that diverged for good
  does not silently stop training.

  .. math::
      \text{apply}_t = \text{finite}(g_t) \lor c_t > M, \quad
      c_t = \begin{cases} 0 & \text{finite}(g_t) \\ c_{t-1} + 1 & \text{else} \end{cases},
      \quad (u_t, s_t) = \begin{cases} \mathrm{inner}(g_t, s_{t-1}) & \text{apply}_t \\
      (0, s_{t-1}) & \text{else} \end{cases}

  with :math:`c_t` = `notfinite_count` and :math:`M` = `max_consecutive_errors`.

  Args:
    inner: the transformation to guard (gradtx or optax).
    max_consecutive_errors: :math:`M \ge 0`, the number of non-finite steps in a row that are
      skipped; the next one in the row is applied.

  Returns:
    A `GradientTransformation` with state `ApplyIfFiniteState(notfinite_count, last_finite,
    total_notfinite, inner_state)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=2)
    >>> u, state = tx.update(jnp.asarray([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
    >>> u.tolist(), int(state.total_notfinite)
    ([0.0, 0.0], 1)

  References:
    `optax.apply_if_finite` (optax 0.2.8); the skip-on-overflow rule of dynamic loss scaling in
    Micikevicius et al., "Mixed Precision Training", ICLR 2018, https://arxiv.org/abs/1710.03740.
  """
  fn = "apply_if_finite"
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: inner must be a GradientTransformation with init and update, got "
        f"{type(inner).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
  _checks.check_int(fn, "max_consecutive_errors", max_consecutive_errors, 0)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    return ApplyIfFiniteState(
        notfinite_count=jnp.zeros([], jnp.int32),
        last_finite=jnp.asarray(True, jnp.bool_),
        total_notfinite=jnp.zeros([], jnp.int32),
        inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    if not pass_extra_args:
      extra_args = {}
    isfinite = _all_finite(updates)
    notfinite_count = jnp.where(
        isfinite, jnp.zeros([], jnp.int32), safe_increment(state.notfinite_count))
    apply = jnp.logical_or(isfinite, notfinite_count > max_consecutive_errors)

    def do_update():
      new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
      new_inner = jax.tree.map(
          lambda n, o: jnp.asarray(n).astype(jnp.asarray(o).dtype), new_inner, state.inner_state)
      return new_updates, new_inner

    def skip_update():
      zeros = jax.tree.map(
          lambda u: None if u is None else jnp.zeros_like(u), updates, is_leaf=is_none)
      return zeros, state.inner_state

    new_updates, inner_state = jax.lax.cond(apply, do_update, skip_update)
    return new_updates, ApplyIfFiniteState(
        notfinite_count=notfinite_count.astype(jnp.int32),
        last_finite=jnp.asarray(isfinite, jnp.bool_),
        total_notfinite=jnp.where(
            isfinite, state.total_notfinite, safe_increment(state.total_notfinite)
        ).astype(jnp.int32),
        inner_state=inner_state)

  return GradientTransformation(init_fn, update_fn)
