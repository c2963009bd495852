"""Guarding an optimizer against non-finite or huge gradients: `apply_if_finite`, `zero_nans`,
and the `should_skip_update_fn`s of `MultiSteps` (`skip_not_finite`, `skip_large_updates`)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs
from gradtx.numerics import safe_increment

__all__ = [
    "ApplyIfFiniteState",
    "ShouldSkipUpdateFunction",
    "ZeroNansState",
    "apply_if_finite",
    "skip_large_updates",
    "skip_not_finite",
    "zero_nans",
]


def _all_finite(tree: Any) -> jax.Array:
  """A bool scalar: whether every element of every (non-None) leaf of `tree` is finite."""
  leaves = [x for x in jax.tree.leaves(tree) if x is not None]
  if not leaves:
    return jnp.asarray(True)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


class ApplyIfFiniteState(NamedTuple):
  """State of `apply_if_finite`, with optax's field names.

  Attributes:
    notfinite_count: int32 scalar, the consecutive non-finite steps.
    last_finite: bool scalar, whether the last step's updates were finite.
    total_notfinite: int32 scalar, every non-finite step since `init`.
    inner_state: the wrapped transformation's state.
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

  return GradientTransformationExtraArgs(init_fn, update_fn)


class ZeroNansState(NamedTuple):
  """State of `zero_nans`, with optax's field name.

  Attributes:
    found_nan: per params leaf a bool scalar: whether the last update had a NaN there.
  """

  found_nan: Any


def zero_nans() -> GradientTransformation:
  r"""Replaces every NaN in the updates by 0, and records which leaves had one.

  A last line of defence that keeps a single NaN gradient entry from poisoning the parameters
  and every moment downstream (as optax's `zero_nans`); unlike `apply_if_finite` it keeps the
  rest of the step, and it leaves infinities alone. The state is not used by the update; it
  lets the user see where NaNs were found.

  .. math:: u_j = \begin{cases} 0 & g_j \text{ is NaN} \\ g_j & \text{else}\end{cases},
      \qquad \text{found\_nan}_i = \exists j \in \text{leaf } i : g_j \text{ is NaN}

  Returns:
    A `GradientTransformation` with state `ZeroNansState(found_nan)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.zero_nans()
    >>> u, state = tx.update(jnp.asarray([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
    >>> u.tolist(), bool(state.found_nan)
    ([1.0, 0.0], True)

  References:
    `optax.zero_nans` (optax 0.2.8).
  """

  def init_fn(params):
    return ZeroNansState(found_nan=jax.tree.map(
        lambda p: None if p is None else jnp.array(False, dtype=jnp.bool_), params,
        is_leaf=is_none))

  def update_fn(updates, state, params=None, **extra_args):
    del state, params, extra_args
    found_nan = jax.tree.map(
        lambda u: None if u is None else jnp.any(jnp.isnan(u)), updates, is_leaf=is_none)
    updates = jax.tree.map(
        lambda u: None if u is None else jnp.where(jnp.isnan(u), jnp.zeros_like(u), u),
        updates, is_leaf=is_none)
    return updates, ZeroNansState(found_nan=found_nan)

  return GradientTransformation(init_fn, update_fn)


class ShouldSkipUpdateFunction(Protocol):
  """The type of `MultiSteps`' `should_skip_update_fn` (as optax's).

  `f(updates, gradient_step, params) -> (should_skip, skip_state)`: `should_skip` is a bool
  scalar, True to drop this micro-batch; `skip_state` is any pytree of arrays, stored in
  `MultiStepsState.skip_state` (debugging information). `gradient_step` is
  `MultiStepsState.gradient_step`, e.g. to anneal a threshold; `params` may be None.
  `skip_not_finite` and `functools.partial(skip_large_updates, max_squared_norm=...)` fit.
  """

  def __call__(self, updates: Any, gradient_step: Any, params: Any | None
               ) -> tuple[Any, Any]:
    """Returns `(should_skip, skip_state)` for these updates."""


def _leaves(tree: Any) -> list:
  return [x for x in jax.tree.leaves(tree) if x is not None]


def skip_not_finite(updates: Any, gradient_step: Any, params: Any | None
                    ) -> tuple[jax.Array, Any]:
  r"""Flags updates that hold a NaN or an Inf: a `should_skip_update_fn` for `MultiSteps`.

  With it, `MultiSteps` drops a micro-batch whose gradient is not finite as if it never
  happened (as optax's `skip_not_finite`), instead of letting it poison the accumulator.

  .. math:: n = \#\{j : g_j \notin \mathbb{R}\}, \qquad \text{skip} = n > 0

  Args:
    updates: the micro-batch's updates.
    gradient_step: unused (see `ShouldSkipUpdateFunction`).
    params: unused.

  Returns:
    `(should_skip, {'should_skip': should_skip, 'num_not_finite': n})`, a bool scalar and the
    int32 count of non-finite elements.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.MultiSteps(gradtx.sgd(1.0), 2, should_skip_update_fn=gradtx.skip_not_finite)
    >>> _, state = tx.update(jnp.asarray([jnp.inf]), tx.init(jnp.zeros(1)))
    >>> int(state.mini_step), int(state.skip_state['num_not_finite'])
    (0, 1)

  References:
    `optax.skip_not_finite` (optax 0.2.8).
  """
  del gradient_step, params
  num_not_finite = jnp.sum(jnp.array(
      [jnp.sum(jnp.logical_not(jnp.isfinite(p))) for p in _leaves(updates)]))
  should_skip = num_not_finite > 0
  return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(updates: Any, gradient_step: Any, params: Any | None,
                       max_squared_norm: Any) -> tuple[jax.Array, Any]:
  r"""Flags updates whose squared global norm reaches `max_squared_norm` (or is NaN).

  A `should_skip_update_fn` for `MultiSteps`, bound with
  `functools.partial(skip_large_updates, max_squared_norm=...)` (as optax's): a micro-batch
  with an outsized gradient is dropped instead of being accumulated.

  .. math:: \|g\|^2 = \textstyle\sum_j g_j^2, \qquad \text{skip} = \lnot(\|g\|^2 < M)

  with :math:`M` = `max_squared_norm`.

  Args:
    updates: the micro-batch's updates.
    gradient_step: unused (see `ShouldSkipUpdateFunction`).
    params: unused.
    max_squared_norm: :math:`M \ge 0`, the smallest squared norm that is skipped.

  Returns:
    `(should_skip, {'should_skip': should_skip, 'norm_squared': n})`, a bool scalar and the
    squared global norm.

  Example:
    >>> import functools, jax.numpy as jnp, gradtx
    >>> skip = functools.partial(gradtx.skip_large_updates, max_squared_norm=10.0)
    >>> bool(skip(jnp.asarray([3.0, 1.0]), 0, None)[0]), bool(skip(jnp.ones(2), 0, None)[0])
    (True, False)

  References:
    `optax.skip_large_updates` (optax 0.2.8).
  """
  del gradient_step, params
  _checks.check_bound("skip_large_updates", "max_squared_norm", max_squared_norm)
  norm_sq = jnp.sum(jnp.array([jnp.sum(p**2) for p in _leaves(updates)]))
  # Also True when norm_sq is NaN.
  should_skip = jnp.logical_not(norm_sq < max_squared_norm)
  return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}
