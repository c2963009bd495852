"""Freezing parameters: zero the updates of some leaves (`freeze`), or optimize only the others
(`selective_transform`), with optax's names and states."""

from __future__ import annotations

from typing import Any, Callable, Union

import jax

from gradtx import _checks
from gradtx.base import ArrayTree, GradientTransformation, GradientTransformationExtraArgs
from gradtx.base import set_to_zero
from gradtx.combine import partition
from gradtx.transforms.masking import masked

__all__ = [
    "freeze",
    "selective_transform",
]


def _check_static_mask(fn: str, name: str, mask: Any) -> None:
  """A mask is a bool, a 0-d concrete bool array, a pytree of them, or a function of the params
  returning one (checked when it is called)."""
  if mask is None:
    raise TypeError(f"gradtx.{fn}: {name} must be a bool or a pytree of bools, got None.")
  if callable(mask):
    return
  for m in jax.tree.leaves(mask):
    if _checks.is_static_bool(m):
      continue
    raise TypeError(
        f"gradtx.{fn}: {name} must be a bool or a pytree of bools (True freezes a leaf or "
        f"subtree), got a leaf {type(m).__name__} {m!r}. The mask is static: build it from "
        "names or shapes, e.g. jax.tree.map(lambda p: p.ndim == 1, params).")


def freeze(mask: Union[bool, ArrayTree, Callable[[Any], Any]]) -> GradientTransformationExtraArgs:
  r"""Zeros the updates of the leaves where `mask` is True; the others pass through unchanged.

  `masked(set_to_zero(), mask)`, as optax's: chained after an optimizer, the masked-in (frozen)
  params do not move. Its state is `MaskedState(inner_state=EmptyState())`.

  .. math::
      u_i = \begin{cases} 0 & m_i = \mathrm{True} \\ g_i & m_i = \mathrm{False} \end{cases}

  Args:
    mask: a bool (freeze everything or nothing), or a pytree of bools with the params'
      structure or a prefix of it (True freezes that leaf or subtree), or a function of the
      params returning one. It is static: Python bools or concrete 0-d bool arrays.

  Returns:
    A `GradientTransformationExtraArgs` with state `MaskedState(EmptyState())`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.freeze({'a': True, 'b': False})
    >>> g = {'a': jnp.ones(1), 'b': jnp.ones(2)}
    >>> tx.update(g, tx.init(g))[0]
    {'a': Array([0.], dtype=float32), 'b': Array([1., 1.], dtype=float32)}

  References:
    `optax.transforms.freeze` (optax 0.2.8).
  """
  _check_static_mask("freeze", "mask", mask)
  return masked(set_to_zero(), mask)


def selective_transform(
    optimizer: GradientTransformation,
    *,
    freeze_mask: Union[bool, ArrayTree, Callable[[Any], Any]],
) -> GradientTransformationExtraArgs:
  """Optimizes only the leaves where `freeze_mask` is False; the others get zero updates.

  `partition({'train': optimizer, 'freeze': set_to_zero()}, labels)` with label `'freeze'`
  where the mask is True, as optax's. Unlike `chain(optimizer, freeze(mask))`, the optimizer
  sees and keeps state for the trainable leaves only (its moments hold `MaskedNode()` for the
  frozen ones), so frozen params cost no optimizer memory.

  Args:
    optimizer: the transformation for the trainable leaves (gradtx or optax).
    freeze_mask: keyword-only; a bool (freeze everything or nothing), or a pytree of bools
      with the params' structure or a prefix of it (True freezes), or a function of the params
      returning one. Static: Python bools or concrete 0-d bool arrays.

  Returns:
    A `GradientTransformationExtraArgs` with state `PartitionState({'train': MaskedState(...),
    'freeze': MaskedState(EmptyState())})`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.selective_transform(gradtx.sgd(1.0), freeze_mask={'a': True, 'b': False})
    >>> g = {'a': jnp.ones(1), 'b': jnp.ones(2)}
    >>> tx.update(g, tx.init(g))[0]
    {'a': Array([0.], dtype=float32), 'b': Array([-1., -1.], dtype=float32)}

  References:
    `optax.transforms.selective_transform` (optax 0.2.8).
  """
  fn = "selective_transform"
  if not (callable(getattr(optimizer, "init", None))
          and callable(getattr(optimizer, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: optimizer must be a GradientTransformation (an object with init and "
        f"update), got {type(optimizer).__name__}. Hint: call the factory, e.g. "
        "gradtx.adam(1e-3), not gradtx.adam.")
  _check_static_mask(fn, "freeze_mask", freeze_mask)

  def to_labels(mask):
    return jax.tree.map(lambda m: "freeze" if m else "train", mask)

  if callable(freeze_mask):
    def param_labels(params):
      mask = freeze_mask(params)
      _check_static_mask(fn, "freeze_mask(params)", mask)
      return to_labels(mask)
  else:
    param_labels = to_labels(freeze_mask)
  return partition({"train": optimizer, "freeze": set_to_zero()}, param_labels)
