"""Combining transformations: `chain`, `named_chain` and `partition` (also `multi_transform`)."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, NamedTuple

import jax

from gradtx import _checks, _eager
from gradtx._trees import is_params_placeholder
from gradtx.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    with_extra_args_support,
)

__all__ = [
    "PartitionState",
    "chain",
    "named_chain",
    "partition",
]


def _is_transformation(t: Any) -> bool:
  return callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))


def chain(*transforms: GradientTransformation) -> GradientTransformationExtraArgs:
  """Applies transformations in sequence; the state is the tuple of their states.

  `chain(scale_by_adam(), scale_by_learning_rate(1e-3))` is Adam. Each member goes through
  `with_extra_args_support`, as in optax: keyword arguments given to `update` (such as
  `value=loss`) reach every member whose `update` accepts `**kwargs` (all of gradtx's, optax's
  ExtraArgs ones), and members that do not (plain optax transformations) are called without
  them, so optax's transformations can be chained with gradtx's.

  Args:
    *transforms: objects with `init` and `update` (gradtx or optax transformations).

  Returns:
    A `GradientTransformationExtraArgs` (whatever the members, as optax's) whose state is a
    tuple with one state per member.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(2.0), gradtx.scale(-0.5))
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0].tolist()
    [-1.0, -1.0]

  References:
    `optax.chain` (optax 0.2.8).
  """
  for i, t in enumerate(transforms):
    if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
      raise TypeError(
          f"gradtx.chain: argument {i} must be a GradientTransformation (an object with init and "
          f"update), got {type(t).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3), "
          "not gradtx.adam.")
  transforms = tuple(with_extra_args_support(t) for t in transforms)
  inits = tuple(t.init for t in transforms)
  updates_fns = tuple(t.update for t in transforms)

  def init_fn(params):
    return tuple(fn(params) for fn in inits)

  def update_fn(updates, state, params=None, **extra_args):
    if not isinstance(state, tuple) or len(state) != len(updates_fns):
      raise ValueError(
          f"gradtx.chain: state must be the tuple of {len(updates_fns)} states made by this "
          f"chain's init, got {type(state).__name__}"
          f"{' of length ' + str(len(state)) if isinstance(state, tuple) else ''}.")
    new_state = []
    for fn, s in zip(updates_fns, state):
      updates, s = fn(updates, s, params, **extra_args)
      new_state.append(s)
    return updates, tuple(new_state)

  if all(_eager.is_traceable(u) for u in updates_fns):
    # Only gradtx's own transformations: compile eager calls (see gradtx/_eager.py).
    update_fn = _eager.jit_when_eager(update_fn)
  return GradientTransformationExtraArgs(init_fn, update_fn)


def named_chain(*transforms: tuple[str, GradientTransformation]
                ) -> GradientTransformationExtraArgs:
  """Applies transformations in sequence, like `chain`, with each state stored under a name.

  The state is a dict from name to state, so `state['adam']` reads one member's state (as
  optax's `named_chain`). It is a plain `dict` where optax's is an `OrderedDict`, so
  `flax.serialization` round-trips it; the members run in the order given whatever the key
  order (which `jit` sorts). Keyword arguments given to `update` reach every member whose
  `update` accepts `**kwargs`, as in `chain`.

  Args:
    *transforms: `(name, transformation)` pairs; the names are unique strings, the
      transformations gradtx's or optax's.

  Returns:
    A `GradientTransformationExtraArgs` whose state is a `dict` from name to the member's state.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.named_chain(('clip', gradtx.clip(1.0)), ('lr', gradtx.scale(-0.5)))
    >>> updates, state = tx.update(jnp.full(2, 5.0), tx.init(jnp.zeros(2)))
    >>> updates.tolist(), list(state)
    ([-0.5, -0.5], ['clip', 'lr'])

  References:
    `optax.named_chain` (optax 0.2.8).
  """
  fn = "named_chain"
  for i, pair in enumerate(transforms):
    if _is_transformation(pair) or not (isinstance(pair, tuple) and len(pair) == 2):
      raise TypeError(
          f"gradtx.{fn}: argument {i} must be a (name, transformation) pair, got "
          f"{type(pair).__name__}. Hint: gradtx.named_chain(('adam', gradtx.adam(1e-3))).")
    name, t = pair
    if not isinstance(name, str):
      raise TypeError(f"gradtx.{fn}: the name of argument {i} must be a str, got "
                      f"{type(name).__name__} {name!r}.")
    if not _is_transformation(t):
      raise TypeError(
          f"gradtx.{fn}: the transformation named {name!r} must be a GradientTransformation (an "
          f"object with init and update), got {type(t).__name__}. Hint: call the factory, e.g. "
          "gradtx.adam(1e-3), not gradtx.adam.")
  names = [name for name, _ in transforms]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"gradtx.{fn}: names must be unique, got {duplicates} more than once in "
                     f"{names}.")
  members = tuple((name, with_extra_args_support(t)) for name, t in transforms)

  def init_fn(params):
    return {name: t.init(params) for name, t in members}

  def update_fn(updates, state, params=None, **extra_args):
    if not isinstance(state, Mapping) or sorted(state.keys()) != sorted(names):
      got = list(state.keys()) if isinstance(state, Mapping) else type(state).__name__
      raise ValueError(
          f"gradtx.{fn}: state must be the dict with keys {names} made by this named_chain's "
          f"init, got {got}.")
    new_state = {}
    for name, t in members:
      updates, new_state[name] = t.update(updates, state[name], params, **extra_args)
    return updates, new_state

  return GradientTransformationExtraArgs(init_fn, update_fn)


class PartitionState(NamedTuple):
  """State of `partition` (also named `MultiTransformState`).

  Attributes:
    inner_states: a dict from label to that label's `MaskedState`.
  """

  inner_states: Mapping[Hashable, Any]


# optax keeps `MultiTransformState` as a second name of `PartitionState` (`optax.MultiTransformState
# is optax.PartitionState`); the same binding here, so the class name a checkpoint sees is optax's.
MultiTransformState = PartitionState


def _check_labels(labels: Any, keys: Any) -> None:
  missing = set(jax.tree.leaves(labels)) - set(keys)
  if missing:
    raise ValueError(
        f"gradtx.partition: param_labels has labels with no entry in transforms: "
        f"{sorted(missing, key=repr)}; transforms has keys {sorted(keys, key=repr)}. Hint: add "
        "a transformation for each label, e.g. gradtx.set_to_zero() to freeze those leaves.")


def partition(
    transforms: Mapping[Hashable, GradientTransformation],
    param_labels: Any | Callable[[Any], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
  """Applies a different transformation to each group of leaves, chosen by a label per leaf.

  Each leaf (or subtree) of the params carries a label; the transformation under that label in
  `transforms` is applied to those leaves only, through `masked`, so it sees and builds its state
  from its own leaves (as optax's `partition`). Its older name `multi_transform` is the same
  function. The usual use is no weight decay on biases: `partition({'decay': adamw(1e-3),
  'no_decay': adam(1e-3)}, labels_fn)`. Keyword arguments given to `update` reach each member
  that accepts `**kwargs` (members go through `with_extra_args_support`).

  Args:
    transforms: a dict from label to transformation (gradtx or optax). A label that no leaf
      carries gets an empty state.
    param_labels: a pytree of labels with the params' structure or a prefix of it, or a
      function returning one, called on the params in `init` (under flax nnx, the
      Variable-wrapped params) and on the updates in `update`. Every label must be a key of
      `transforms`.
    mask_compatible_extra_args: also mask the extra keyword arguments of `update` whose tree
      structure equals the updates' (see `masked`).

  Returns:
    A `GradientTransformationExtraArgs` with state `PartitionState(inner_states)` (also
    named `MultiTransformState`), where `inner_states` maps each label to its `MaskedState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.partition({'w': gradtx.scale(-1.0), 'b': gradtx.set_to_zero()},
    ...                       {'w': 'w', 'b': 'b'})
    >>> g = {'w': jnp.ones(1), 'b': jnp.ones(1)}
    >>> tx.update(g, tx.init(g))[0]
    {'b': Array([0.], dtype=float32), 'w': Array([-1.], dtype=float32)}

  References:
    `optax.partition` (optax 0.2.8; formerly `multi_transform`).
  """
  fn = "partition"
  if not isinstance(transforms, Mapping):
    raise TypeError(
        f"gradtx.{fn}: transforms must be a dict from label to transformation, got "
        f"{type(transforms).__name__}. Hint: gradtx.partition({{'a': gradtx.adam(1e-3), "
        "'b': gradtx.sgd(0.1)}, param_labels).")
  for label, t in transforms.items():
    if not _is_transformation(t):
      raise TypeError(
          f"gradtx.{fn}: transforms[{label!r}] must be a GradientTransformation (an object with "
          f"init and update), got {type(t).__name__}. Hint: call the factory, e.g. "
          "gradtx.adam(1e-3), not gradtx.adam.")
  if param_labels is None:
    raise TypeError(f"gradtx.{fn}: param_labels must be a pytree of labels or a function of "
                    "the params returning one, got None.")
  _checks.check_bool(fn, "mask_compatible_extra_args", mask_compatible_extra_args)
  labels_is_fn = callable(param_labels)
  keys = list(transforms.keys())
  if not labels_is_fn:
    _check_labels(param_labels, keys)

  def labels_for(tree):
    if not labels_is_fn:
      return param_labels
    labels = param_labels(tree)
    _check_labels(labels, keys)
    return labels

  def mask_for(label):
    if not labels_is_fn:
      return jax.tree.map(lambda l: l == label, param_labels)
    return lambda tree: jax.tree.map(lambda l: l == label, labels_for(tree))

  # Imported here: gradtx.transforms gathers this module's names, so a top-level import would be
  # circular.
  from gradtx.transforms.masking import masked  # pylint: disable=import-outside-toplevel

  members = {
      label: masked(with_extra_args_support(t), mask_for(label),
                    mask_compatible_extra_args=mask_compatible_extra_args)
      for label, t in transforms.items()}

  def check_prefix(tree, what):
    labels = labels_for(tree)
    try:
      jax.tree.map(lambda label, subtree: None, labels, tree)
    except ValueError as e:
      raise ValueError(
          f"gradtx.{fn}: the structure of param_labels is not a prefix of the structure of "
          f"{what}.\n  param_labels: {jax.tree.structure(labels)}\n"
          f"  {what}: {jax.tree.structure(tree, is_leaf=lambda x: x is None)}\n"
          "Hint: give param_labels the params' structure (or a prefix of it), or a function of "
          "the params.") from e

  def init_fn(params):
    # `tree.map_params` inits with a placeholder for the params: no labels to check, and each
    # member (a `masked`) passes it through.
    if not is_params_placeholder(params):
      check_prefix(params, "params")  # checks the labels once, before any member's init
    return PartitionState(
        inner_states={label: t.init(params) for label, t in members.items()})

  def update_fn(updates, state, params=None, **extra_args):
    inner = getattr(state, "inner_states", None)
    if not isinstance(inner, Mapping) or set(inner.keys()) != set(keys):
      got = sorted(inner.keys(), key=repr) if isinstance(inner, Mapping) else type(state).__name__
      raise ValueError(
          f"gradtx.{fn}: state must be the PartitionState (MultiTransformState) with labels "
          f"{sorted(keys, key=repr)} made by this partition's init, got {got}.")
    check_prefix(updates, "updates")
    new_inner = {}
    for label, t in members.items():
      updates, new_inner[label] = t.update(updates, inner[label], params, **extra_args)
    return updates, PartitionState(inner_states=new_inner)

  return GradientTransformationExtraArgs(init_fn, update_fn)
