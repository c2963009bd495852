"""The transformation contract: `GradientTransformation`, its state and type aliases.

A gradient transformation is a pair of pure functions. `init(params)` builds a state (a pytree of
arrays); `update(updates, state, params=None, **extra_args)` maps incoming updates (usually
gradients) to outgoing updates and a new state. Optimizers are `chain`s of them.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, Union

import jax
import jax.numpy as jnp

from gradtx._checks import accepts_extra_args, check_same_structure

__all__ = [
    "ArrayTree",
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "MaskOrFn",
    "Numeric",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
    "identity",
    "init_empty_state",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
    "with_extra_args_support",
]

Array = jax.Array
ArrayTree = Any
Params = Any
Updates = Any
OptState = Any
#: A number: a Python float or int, or a JAX array (a scalar, possibly a tracer).
#:
#: The type of hyperparameters that take no schedule (optax's name), e.g. `eps`, `b2`.
Numeric = Union[float, int, jax.Array]
#: A schedule: a function of the step count returning the hyperparameter's value at that step.
#:
#: `schedule(count) -> value`, with `count` an int32 scalar array (possibly traced) and `value` a
#: scalar; it must be a pure JAX function so the optimizer stays jit- and vmap-safe.
Schedule = Callable[[jax.Array], jax.Array]
#: A hyperparameter given as a constant (a `Numeric`) or as a `Schedule` of the step count.
#:
#: The type of `learning_rate` and of the other arguments that accept a schedule (optax's name).
ScalarOrSchedule = Union[float, int, jax.Array, Schedule]
#: A mask: a pytree of bools shaped like (a prefix of) the params, or a callable returning one.
#:
#: The callable is called with the params (`mask(params) -> pytree of bools`); `None` means no
#: mask. optax's name, used by `masked`, `add_decayed_weights(mask=)` and the aliases' `mask=`.
MaskOrFn = Union[Any, Callable[[Any], Any], None]


class TransformInitFn(Protocol):
  """`init(params) -> state`."""

  def __call__(self, params: Params) -> OptState:
    ...


class TransformUpdateFn(Protocol):
  """`update(updates, state, params=None) -> (updates, state)` (optax's plain update).

  gradtx's own update functions all take `**extra_args` too (`TransformUpdateExtraArgsFn`).
  """

  def __call__(
      self, updates: Updates, state: OptState, params: Params | None = None
  ) -> tuple[Updates, OptState]:
    ...


class TransformUpdateExtraArgsFn(Protocol):
  """`update(updates, state, params=None, **extra_args) -> (updates, state)`.

  An update that accepts any keyword arguments, ignoring those it does not need; the ones it
  needs are keyword-only (`def update(updates, state, params=None, *, value, **extra_args)`), so
  a call without them fails with a clear error.
  """

  def __call__(
      self, updates: Updates, state: OptState, params: Params | None = None, **extra_args: Any
  ) -> tuple[Updates, OptState]:
    ...


class GradientTransformation(NamedTuple):
  """A pair of pure functions `(init, update)`, with optax's field names and signatures.

  `init(params)` returns the state; `update(updates, state, params=None, **extra_args)` returns
  `(new_updates, new_state)`. Every gradtx `update` accepts and ignores unknown keyword arguments,
  so gradtx transformations run inside `optax.chain`, `flax.nnx.Optimizer` and flax linen's
  `TrainState`, and optax's transformations run inside `gradtx.chain`.

  Attributes:
    init: `init(params) -> state`, the initial state.
    update: `update(updates, state, params=None, **extra_args) -> (updates, state)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale(0.5)
    >>> updates, state = tx.update({'w': jnp.ones(2)}, tx.init({'w': jnp.zeros(2)}))
    >>> updates['w'].tolist()
    [0.5, 0.5]
  """

  init: TransformInitFn
  update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
  """A `GradientTransformation` whose `update` accepts extra keyword arguments (optax's class).

  A subclass of `GradientTransformation` (so `isinstance(tx, GradientTransformation)` holds) and
  still a NamedTuple of two functions. `chain`, `named_chain`, `partition` and the aliases built
  on them return it, as optax's do, so code that tests
  `isinstance(tx, GradientTransformationExtraArgs)` before passing `value=loss` works unchanged.
  `with_extra_args_support` turns any transformation into one.

  Attributes:
    init: `init(params) -> state`, the initial state.
    update: `update(updates, state, params=None, **extra_args) -> (updates, state)`; extra keyword
      arguments (`value`, `grad`, ...) are accepted.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(0.5))
    >>> isinstance(tx, gradtx.GradientTransformationExtraArgs)
    True
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), value=1.0)[0].tolist()
    [0.5, 0.5]
  """

  update: TransformUpdateExtraArgsFn


def with_extra_args_support(tx: GradientTransformation) -> GradientTransformationExtraArgs:
  """Returns `tx` as a `GradientTransformationExtraArgs`, whose `update` accepts extra arguments.

  A `GradientTransformationExtraArgs` is returned as is (the same object). A transformation
  whose `update` does not take `**extra_args` (a plain optax one) is wrapped so that its
  `update` accepts and ignores them, as in optax. One whose `update` already takes
  `**extra_args` (every gradtx transformation, and optax's ExtraArgs ones) keeps its own `init`
  and `update`, re-typed, so the extra arguments still reach it.

  Args:
    tx: an object with `init` and `update` (gradtx or optax transformation).

  Returns:
    A `GradientTransformationExtraArgs` with `tx`'s `init`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> plain = gradtx.GradientTransformation(lambda p: (), lambda u, s, p=None: (2 * u, s))
    >>> tx = gradtx.with_extra_args_support(plain)
    >>> tx.update(jnp.ones(1), tx.init(None), value=3.0)[0].tolist()
    [2.0]

  References:
    `optax.with_extra_args_support` (optax 0.2.8).
  """
  if isinstance(tx, GradientTransformationExtraArgs):
    return tx
  init, update = getattr(tx, "init", None), getattr(tx, "update", None)
  if not (callable(init) and callable(update)):
    raise TypeError(
        "gradtx.with_extra_args_support: tx must be a GradientTransformation (an object with "
        f"init and update), got {type(tx).__name__}. Hint: call the factory, e.g. "
        "gradtx.adam(1e-3), not gradtx.adam.")
  if accepts_extra_args(update):
    return GradientTransformationExtraArgs(init, update)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    return update(updates, state, params)

  return GradientTransformationExtraArgs(init, update_fn)


class EmptyState(NamedTuple):
  """The state of a stateless transformation: an empty NamedTuple."""


def init_empty_state(params: Params) -> EmptyState:
  """Returns `EmptyState()` whatever the params; the `init` of stateless transformations.

  Args:
    params: the params (ignored).

  Returns:
    `EmptyState()`.

  Example:
    >>> import gradtx
    >>> gradtx.init_empty_state({'w': 1.0})
    EmptyState()

  References:
    `optax.init_empty_state` (optax 0.2.8).
  """
  del params
  return EmptyState()


def identity() -> GradientTransformation:
  """Passes updates through unchanged.

  Returns:
    A stateless `GradientTransformation` (its state is `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.identity()
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0].tolist()
    [1.0, 1.0]

  References:
    `optax.identity` (optax 0.2.8).
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return updates, state

  return GradientTransformation(init_empty_state, update_fn)


def set_to_zero() -> GradientTransformation:
  """Replaces every update by zeros of the same shape and dtype (freezes the parameters).

  Returns:
    A stateless `GradientTransformation` (its state is `EmptyState()`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.set_to_zero()
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0].tolist()
    [0.0, 0.0]

  References:
    `optax.set_to_zero` (optax 0.2.8).
  """

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return jax.tree.map(jnp.zeros_like, updates), state

  return GradientTransformation(init_empty_state, update_fn)


def stateless(
    f: Callable[[Updates, Params | None], Updates],
) -> GradientTransformation:
  """Builds a stateless transformation from `f(updates, params) -> updates`.

  Args:
    f: a pure function of the updates and (possibly `None`) params returning new updates of the
      same structure.

  Returns:
    A `GradientTransformation` whose state is `EmptyState()`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.stateless(lambda u, p: jax.tree.map(lambda x: 2 * x, u))
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0].tolist()
    [2.0, 2.0]

  References:
    `optax.stateless` (optax 0.2.8).
  """
  if not callable(f):
    raise TypeError(f"gradtx.stateless: f must be callable, got {type(f).__name__}.")

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    return f(updates, params), state

  return GradientTransformation(init_empty_state, update_fn)


def stateless_with_tree_map(
    f: Callable[[jax.Array, jax.Array | None], jax.Array],
) -> GradientTransformation:
  """Builds a stateless transformation from `f(update_leaf, param_leaf) -> update_leaf`.

  Like `gradtx.stateless`, but `f` sees one leaf at a time: it is mapped over the updates and
  the params (`param_leaf` is `None` when `update` gets no params). `None` updates pass through.

  Args:
    f: a pure function of one update array and its param array (or `None`) returning the new
      update array.

  Returns:
    A `GradientTransformation` whose state is `EmptyState()`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.stateless_with_tree_map(lambda g, p: g + 0.5 * p)
    >>> tx.update({'w': jnp.ones(1)}, tx.init(None), {'w': jnp.ones(1)})[0]['w'].tolist()
    [1.5]

  References:
    `optax.stateless_with_tree_map` (optax 0.2.8).
  """
  fn = "stateless_with_tree_map"
  if not callable(f):
    raise TypeError(
        f"gradtx.{fn}: f must be a function of an update leaf and its param leaf, got "
        f"{type(f).__name__} {f!r}.")

  def update_fn(updates: Updates, state: Any, params: Params | None = None, **extra_args):
    del extra_args
    if params is None:
      return jax.tree.map(lambda u: None if u is None else f(u, None), updates,
                          is_leaf=lambda x: x is None), state
    check_same_structure(fn, "updates", updates, "params", params)
    return jax.tree.map(lambda u, p: None if u is None else f(u, p), updates, params,
                        is_leaf=lambda x: x is None), state

  return GradientTransformation(init_empty_state, update_fn)
