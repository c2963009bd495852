"""Combining transformations: `chain`."""

from __future__ import annotations

from gradtx import _checks
from gradtx.base import GradientTransformation

__all__ = [
    "chain",
]


def chain(*transforms: GradientTransformation) -> GradientTransformation:
  """Applies transformations in sequence; the state is the tuple of their states.

  `chain(scale_by_adam(), scale_by_learning_rate(1e-3))` is Adam. Keyword arguments given to
  `update` (such as `value=loss`) reach every member whose `update` accepts `**kwargs`; members
  that do not (plain optax transformations) are called without them, so optax's transformations
  can be chained with gradtx's.

  Args:
    *transforms: objects with `init` and `update` (gradtx or optax transformations).

  Returns:
    A `GradientTransformation` whose state is a tuple with one state per member, as optax's.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.chain(gradtx.scale(2.0), gradtx.scale(-0.5))
    >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0].tolist()
    [-1.0, -1.0]
  """
  for i, t in enumerate(transforms):
    if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
      raise TypeError(
          f"gradtx.chain: argument {i} must be a GradientTransformation (an object with init and "
          f"update), got {type(t).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3), "
          "not gradtx.adam.")
  inits = tuple(t.init for t in transforms)
  updates_fns = tuple(t.update for t in transforms)
  takes_extra = tuple(_checks.accepts_extra_args(u) for u in updates_fns)

  def init_fn(params):
    return tuple(fn(params) for fn in inits)

  def update_fn(updates, state, params=None, **extra_args):
    if not isinstance(state, tuple) or len(state) != len(updates_fns):
      raise ValueError(
          f"gradtx.chain: state must be the tuple of {len(updates_fns)} states made by this "
          f"chain's init, got {type(state).__name__}"
          f"{' of length ' + str(len(state)) if isinstance(state, tuple) else ''}.")
    new_state = []
    for fn, s, extra in zip(updates_fns, state, takes_extra):
      if extra:
        updates, s = fn(updates, s, params, **extra_args)
      else:
        updates, s = fn(updates, s, params)
      new_state.append(s)
    return updates, tuple(new_state)

  return GradientTransformation(init_fn, update_fn)
