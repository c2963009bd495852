"""Masking: apply a transformation to the leaves a boolean mask selects (optax's `masked`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

from gradtx import _checks, _eager
from gradtx._trees import is_params_placeholder
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs

__all__ = [
    "MaskedNode",
    "MaskedState",
    "masked",
]


class MaskedNode(NamedTuple):
  """The placeholder `masked` puts where a leaf is masked out.

  An empty NamedTuple is a pytree node without children, so `jax.tree.map` skips it and the
  inner transformation neither sees nor stores anything for that leaf (as optax's `MaskedNode`).
  """


class MaskedState(NamedTuple):
  """State of `masked`: the inner transformation's state, built from the masked-in leaves.

  Attributes:
    inner_state: the inner transformation's state, on the masked-in leaves.
  """

  inner_state: Any


def _is_callable_mask(mask: Any) -> bool:
  """A mask is a function if it is a callable leaf (optax's rule: all leaves callable)."""
  leaves = jax.tree.leaves(jax.tree.map(callable, mask))
  return bool(leaves) and all(leaves)


def _check_mask_leaves(mask_tree: Any) -> None:
  for m in jax.tree.leaves(mask_tree):
    if _checks.is_static_bool(m):
      continue
    raise TypeError(
        "gradtx.masked: mask leaves must be Python bools (True to transform a leaf or subtree, "
        f"False to pass it through), got {type(m).__name__} {m!r}. The mask is static: build it "
        "from shapes or names, e.g. jax.tree.map(lambda p: p.ndim > 1, params).")


def _apply_mask(mask_tree: Any, tree: Any, what: str) -> Any:
  """Replaces the masked-out subtrees of `tree` by `MaskedNode()`; `mask_tree` is a prefix."""
  try:
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)
  except ValueError as e:
    raise ValueError(
        f"gradtx.masked: the structure of mask is not a prefix of the structure of {what}.\n"
        f"  mask: {jax.tree.structure(mask_tree)}\n"
        f"  {what}: {jax.tree.structure(tree, is_leaf=lambda x: x is None)}\n"
        "Hint: give mask the params' structure (or a prefix of it), or a function of the params."
    ) from e


def masked(
    inner: GradientTransformation,
    mask: Any | Callable[[Any], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Applies `inner` to the masked-in leaves only; the others pass through unchanged.

  The usual use is to skip weight decay for biases and normalization scales. The inner
  transformation sees (and builds its state from) the masked-in leaves only: each masked-out
  leaf or subtree is replaced by an empty `MaskedNode()`, exactly as in optax.

  .. math::
      u_{t,i} = \begin{cases} \mathrm{inner}(g_t)_i & m_i = \mathrm{True} \\
      g_{t,i} & m_i = \mathrm{False} \end{cases}

  Args:
    inner: the transformation to apply to the masked-in leaves (gradtx or optax).
    mask: a pytree of bools with the params' structure or a prefix of it (`True` transforms a
      leaf or whole subtree), or a function returning one, called on the params in `init` and
      on the updates in `update`. It must be static (Python bools).
    mask_compatible_extra_args: also mask the extra keyword arguments of `update` whose tree
      structure equals the updates'.

  Returns:
    A `GradientTransformationExtraArgs` with state `MaskedState(inner_state)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.masked(gradtx.scale(2.0), {'w': True, 'b': False})
    >>> g = {'w': jnp.ones(1), 'b': jnp.ones(1)}
    >>> tx.update(g, tx.init(g))[0]
    {'b': Array([1.], dtype=float32), 'w': Array([2.], dtype=float32)}

  References:
    `optax.masked` (optax 0.2.8).
  """
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError(
        "gradtx.masked: inner must be a GradientTransformation with init and update, got "
        f"{type(inner).__name__}.")
  if mask is None:
    raise TypeError("gradtx.masked: mask must be a pytree of bools or a function, got None.")
  _checks.check_bool("masked", "mask_compatible_extra_args", mask_compatible_extra_args)
  mask_is_fn = _is_callable_mask(mask)
  pass_extra_args = _checks.accepts_extra_args(inner.update)
  if not mask_is_fn:
    _check_mask_leaves(mask)

  def mask_tree_for(tree):
    if not mask_is_fn:
      return mask
    mask_tree = mask(tree)
    _check_mask_leaves(mask_tree)
    return mask_tree

  def init_fn(params):
    if is_params_placeholder(params):
      # `tree.map_params` inits with a placeholder standing in for the params (as optax's
      # masked, pass it through unmasked): the inner state then marks its params-shaped fields,
      # which hold MaskedNode()s for the masked-out leaves in the real state.
      return MaskedState(inner_state=inner.init(params))
    mask_tree = mask_tree_for(params)
    return MaskedState(inner_state=inner.init(_apply_mask(mask_tree, params, "params")))

  def update_fn(updates, state, params=None, **extra_args):
    mask_tree = mask_tree_for(updates)
    masked_updates = _apply_mask(mask_tree, updates, "updates")
    masked_params = None if params is None else _apply_mask(mask_tree, params, "params")
    if mask_compatible_extra_args:
      structure = jax.tree.structure(updates)
      extra_args = {
          k: _apply_mask(mask_tree, v, k) if jax.tree.structure(v) == structure else v
          for k, v in extra_args.items()}
    if not pass_extra_args:
      extra_args = {}
    new_masked, inner_state = inner.update(
        masked_updates, state.inner_state, masked_params, **extra_args)
    new_updates = jax.tree.map(
        lambda m, new, old: new if m else old, mask_tree, new_masked, updates)
    return new_updates, MaskedState(inner_state=inner_state)

  if _eager.is_traceable(inner.update):
    _eager.mark_traceable(update_fn)
  return GradientTransformationExtraArgs(init_fn, update_fn)
