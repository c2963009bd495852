"""Wrappers that change the layout of the arrays a transformation sees: `flatten`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import GradientTransformation

__all__ = [
    "flatten",
]


def _ravel(tree: Any) -> jax.Array:
  """All leaves of `tree` (`None` leaves are absent) raveled and concatenated into one vector,
  in their common dtype."""
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros([0], jnp.float32)
  return jnp.concatenate([jnp.reshape(x, [-1]) for x in leaves])


def _unravel(like: Any, flat: jax.Array) -> Any:
  """Splits `flat` back into the leaves of `like`, each with its shape and dtype."""
  leaves, treedef = jax.tree.flatten(like)
  offsets = np.cumsum([np.size(x) for x in leaves])[:-1].tolist()
  pieces = jnp.split(flat, offsets) if leaves else []
  return jax.tree.unflatten(treedef, [
      jnp.reshape(p, jnp.shape(x)).astype(jnp.asarray(x).dtype) for p, x in zip(pieces, leaves)])


def flatten(inner: GradientTransformation) -> GradientTransformation:
  r"""Applies `inner` to one vector holding every parameter, instead of leaf by leaf.

  For a model with many small arrays this replaces one small kernel per leaf and per operation
  by one large one, at the cost of a concatenation and a split per step (and the memory of one
  flat copy). The inner state holds flat vectors. Element-wise transformations give the same
  numbers either way; ones that look at a whole leaf (block clipping, per-leaf norms) see one
  leaf.

  .. math:: u = \mathrm{unravel}(\mathrm{inner}(\mathrm{ravel}(g), \mathrm{ravel}(\theta)))

  Args:
    inner: the transformation to apply to the flat vector (gradtx or optax).

  Returns:
    A `GradientTransformation` whose state is `inner`'s state for a 1-D params vector.

  Differences from optax: each update leaf is cast back to its incoming dtype (optax returns the
  leaves in the concatenation's common dtype), and `updates` and `params` must have the same
  structure.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.flatten(gradtx.scale(2.0))
    >>> p = {'a': jnp.zeros(2), 'b': jnp.zeros(())}
    >>> u, _ = tx.update(jax.tree.map(jnp.ones_like, p), tx.init(p))
    >>> u['a'].tolist(), u['b'].tolist()
    ([2.0, 2.0], 2.0)
  """
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError(
        "gradtx.flatten: inner must be a GradientTransformation with init and update, got "
        f"{type(inner).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    return inner.init(_ravel(params))

  def update_fn(updates, state, params=None, **extra_args):
    if not pass_extra_args:
      extra_args = {}
    flat_params = None
    if params is not None:
      _checks.check_same_structure("flatten", "updates", updates, "params", params)
      flat_params = _ravel(params)
    flat_updates, state = inner.update(_ravel(updates), state, flat_params, **extra_args)
    return _unravel(updates, flat_updates), state

  return GradientTransformation(init_fn, update_fn)
