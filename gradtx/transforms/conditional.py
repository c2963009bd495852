"""Applying an inner transformation only at some steps (`conditionally_transform`,
`conditionally_mask`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs
from gradtx.numerics import safe_increment

__all__ = [
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "conditionally_mask",
    "conditionally_transform",
]


def _check_wrapper_args(fn: str, inner: Any, should_transform_fn: Any,
                        forward_extra_args: Any) -> None:
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: inner must be a GradientTransformation with init and update, got "
        f"{type(inner).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
  if not callable(should_transform_fn):
    raise TypeError(
        f"gradtx.{fn}: should_transform_fn must be a function of the int32 step count returning "
        f"a bool scalar, got {type(should_transform_fn).__name__} {should_transform_fn!r}. "
        "Hint: should_transform_fn=lambda step: step % 4 == 0.")
  _checks.check_bool(fn, "forward_extra_args", forward_extra_args)


def _condition(fn: str, should_transform_fn: Callable[..., Any], step: jax.Array,
               kwargs: dict) -> jax.Array:
  """`should_transform_fn(step, **kwargs)` as a bool scalar (an integer is `!= 0`)."""
  pred = jnp.asarray(should_transform_fn(step, **kwargs))
  if pred.shape != ():
    raise ValueError(
        f"gradtx.{fn}: should_transform_fn must return a bool scalar, got an array of shape "
        f"{pred.shape}.")
  if pred.dtype == jnp.bool_:
    return pred
  if jnp.issubdtype(pred.dtype, jnp.integer):
    return pred != 0
  raise TypeError(
      f"gradtx.{fn}: should_transform_fn must return a bool scalar, got dtype {pred.dtype}.")


def _cond(pred: jax.Array, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
  """`lax.cond(pred, true_fn, false_fn)`; a concrete `pred` (eager mode, or a condition that
  does not depend on the step) runs the chosen branch alone, with nothing to compile. A skipped
  `true_fn` is still traced abstractly, so its checks (tree structures) raise as under `jit`."""
  if _checks.is_tracer(pred):
    return jax.lax.cond(pred, true_fn, false_fn)
  if bool(pred):
    return true_fn()
  jax.eval_shape(true_fn)
  return false_fn()


def _inner_update(fn, inner, updates, inner_state, params, extra_args):
  """The inner update, its updates cast to the incoming dtypes and its state to the old dtypes
  (so both branches of `lax.cond` agree)."""
  new_updates, new_state = inner.update(updates, inner_state, params, **extra_args)
  structure = jax.tree.structure(updates, is_leaf=is_none)
  new_structure = jax.tree.structure(new_updates, is_leaf=is_none)
  if new_structure != structure:
    raise ValueError(
        f"gradtx.{fn}: the structure of inner's updates does not match the incoming updates.\n"
        f"  updates: {structure}\n  inner's updates: {new_structure}")
  new_updates = jax.tree.map(
      lambda n, u: None if n is None else jnp.asarray(n).astype(jnp.asarray(u).dtype),
      new_updates, updates, is_leaf=is_none)
  new_state = jax.tree.map(
      lambda n, o: n if jnp.asarray(n).dtype == jnp.asarray(o).dtype
      else jnp.asarray(n).astype(jnp.asarray(o).dtype), new_state, inner_state)
  return new_updates, new_state


class ConditionFn(Protocol):
  """The type of `should_transform_fn`: `(step, **extra_args) -> bool scalar` (optax's name).

  `step` is the int32 scalar count of previous `update` calls; the extra keyword arguments of
  `update` arrive only with `forward_extra_args=True`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> every_4: gradtx.transforms.ConditionFn = lambda step, **extra_args: step % 4 == 0
    >>> bool(every_4(jnp.asarray(8, jnp.int32)))
    True
  """

  def __call__(self, step: jax.Array, **extra_args: Any) -> jax.Array:
    ...


class ConditionallyTransformState(NamedTuple):
  """State of `conditionally_transform`, with optax's field names.

  Attributes:
    inner_state: the inner transformation's state.
    step: int32 scalar, the `update` calls so far (saturating at the int32 maximum).
  """

  inner_state: Any
  step: jax.Array  # int32 scalar


def conditionally_transform(
    inner: GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Applies `inner` at the selected steps only; the updates pass through at the others.

  `inner` runs where `should_transform_fn(step)` holds; otherwise the updates pass through
  unchanged and the inner state stands still.

  Use it for a transformation that should act from some step on or every few steps: clipping
  that starts after a warm-up, a preconditioner refreshed every `k` steps. On a skipped step
  the inner transformation is not run (`lax.cond` under `jit`), so its moments and counts stand
  still. To zero the updates on skipped steps instead, use `conditionally_mask`.

  .. math::
      (u_t, s_t) = \begin{cases} \mathrm{inner}(g_t, s_{t-1}) & f(t) \\
      (g_t, s_{t-1}) & \text{else} \end{cases}

  with :math:`f` = `should_transform_fn` and :math:`t` = `step`, the number of previous calls
  to `update` (0 at the first).

  Args:
    inner: the transformation to apply (gradtx or optax).
    should_transform_fn: a function of the int32 scalar `step` returning a bool scalar (e.g.
      `lambda step: step % 4 == 0`); it also receives the extra keyword arguments of `update`
      when `forward_extra_args` is set.
    forward_extra_args: pass `update`'s extra keyword arguments to `should_transform_fn`
      (they always reach an `inner` that accepts them).

  Returns:
    A `GradientTransformationExtraArgs` with state
    `ConditionallyTransformState(inner_state, step)`.

  Differences from optax (0.2.8): outside `jit` (a concrete step) only the chosen branch runs,
  where optax compiles a `lax.cond` at every call; the inner updates and state are cast to the
  incoming updates' and the old state's dtypes, so both branches agree (bfloat16 in, bfloat16
  out); `should_transform_fn` is checked to be callable and to return a scalar.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.conditionally_transform(gradtx.scale(10.0), lambda step: step >= 1)
    >>> state = tx.init(jnp.zeros(1))
    >>> u0, state = tx.update(jnp.ones(1), state); u1, state = tx.update(jnp.ones(1), state)
    >>> u0.tolist(), u1.tolist()
    ([1.0], [10.0])

  References:
    `optax.conditionally_transform` (optax 0.2.8).
  """
  fn = "conditionally_transform"
  _check_wrapper_args(fn, inner, should_transform_fn, forward_extra_args)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    return ConditionallyTransformState(
        inner_state=inner.init(params), step=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, **extra_args):
    apply = _condition(fn, should_transform_fn, state.step,
                       extra_args if forward_extra_args else {})
    inner_args = extra_args if pass_extra_args else {}
    new_updates, inner_state = _cond(
        apply,
        lambda: _inner_update(fn, inner, updates, state.inner_state, params, inner_args),
        lambda: (updates, state.inner_state))
    return new_updates, ConditionallyTransformState(
        inner_state=inner_state, step=safe_increment(state.step))

  return GradientTransformationExtraArgs(init_fn, update_fn)


class ConditionallyMaskState(NamedTuple):
  """State of `conditionally_mask`, with optax's field names and order.

  Attributes:
    step: int32 scalar, the `update` calls so far (saturating at the int32 maximum).
    inner_state: the inner transformation's state.
  """

  step: jax.Array  # int32 scalar
  inner_state: Any


def conditionally_mask(
    inner: GradientTransformation,
    should_transform_fn: ConditionFn,
    forward_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Applies `inner` at the selected steps only, and zero updates at the others.

  `inner` runs where `should_transform_fn(step)` holds; otherwise the updates are zero and the
  inner state stands still.

  The parameters move only on the selected steps, e.g. `lambda step: step >= warmup` freezes
  them for a warm-up (while other parts of a training loop, such as batch statistics, run).
  The inner transformation is not run on a skipped step (`lax.cond` under `jit`). To pass the
  updates through unchanged instead, use `conditionally_transform`.

  .. math::
      (u_t, s_t) = \begin{cases} \mathrm{inner}(g_t, s_{t-1}) & f(t) \\
      (0, s_{t-1}) & \text{else} \end{cases}

  with :math:`f` = `should_transform_fn` and :math:`t` = `step`, the number of previous calls
  to `update` (0 at the first).

  Args:
    inner: the transformation to apply (gradtx or optax).
    should_transform_fn: a function of the int32 scalar `step` returning a bool scalar; it
      also receives the extra keyword arguments of `update` when `forward_extra_args` is set.
    forward_extra_args: pass `update`'s extra keyword arguments to `should_transform_fn`
      (they always reach an `inner` that accepts them).

  Returns:
    A `GradientTransformationExtraArgs` with state `ConditionallyMaskState(step, inner_state)`.

  Differences from optax (0.2.8): outside `jit` (a concrete step) only the chosen branch runs,
  where optax compiles a `lax.cond` at every call; the inner updates and state are cast to the
  incoming updates' and the old state's dtypes, so both branches agree (bfloat16 in, bfloat16
  out); `should_transform_fn` is checked to be callable and to return a scalar.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.conditionally_mask(gradtx.sgd(1.0), lambda step: step % 2 == 1)
    >>> state = tx.init(jnp.zeros(1))
    >>> u0, state = tx.update(jnp.ones(1), state); u1, state = tx.update(jnp.ones(1), state)
    >>> u0.tolist(), u1.tolist()
    ([0.0], [-1.0])

  References:
    `optax.conditionally_mask` (optax 0.2.8).
  """
  fn = "conditionally_mask"
  _check_wrapper_args(fn, inner, should_transform_fn, forward_extra_args)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    return ConditionallyMaskState(step=jnp.zeros([], jnp.int32), inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    apply = _condition(fn, should_transform_fn, state.step,
                       extra_args if forward_extra_args else {})
    inner_args = extra_args if pass_extra_args else {}
    zeros = lambda: jax.tree.map(  # noqa: E731
        lambda u: None if u is None else jnp.zeros_like(u), updates, is_leaf=is_none)
    new_updates, inner_state = _cond(
        apply,
        lambda: _inner_update(fn, inner, updates, state.inner_state, params, inner_args),
        lambda: (zeros(), state.inner_state))
    return new_updates, ConditionallyMaskState(
        step=safe_increment(state.step), inner_state=inner_state)

  return GradientTransformationExtraArgs(init_fn, update_fn)
