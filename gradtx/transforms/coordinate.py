"""Block coordinate descent: one labelled group of parameters moves per step (or per few steps)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Hashable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _periodic
from gradtx._trees import is_none, is_params_placeholder
from gradtx.base import (GradientTransformation, GradientTransformationExtraArgs,
                         with_extra_args_support)

from gradtx.numerics import safe_increment
from gradtx.tree.casting import cast_like

__all__ = [
    "BlockCoordinateDescentState",
    "block_coordinate_descent",
]

_ORDERS = ("cyclic", "random")


class BlockCoordinateDescentState(NamedTuple):
  """State of `block_coordinate_descent`.

  Attributes:
    count: int32 scalar, the step count.
    inner_states: per label, the inner transformation's `MaskedState` over that label's leaves
      (as `partition`'s).
  """

  count: jax.Array  # int32 scalar
  inner_states: Mapping[Hashable, Any]


def _sort_key(label: Any) -> tuple[str, str]:
  return (type(label).__name__, repr(label))


def block_coordinate_descent(
    tx: GradientTransformation | Mapping[Hashable, GradientTransformation],
    param_labels: Any | Callable[[Any], Any],
    order: str = "cyclic",
    *,
    steps_per_block: int = 1,
    seed: int = 0,
) -> GradientTransformationExtraArgs:
  r"""Block coordinate descent: updates one labelled block of parameters at a time.

  The params are split into blocks by a label per leaf. Each step (or each `steps_per_block`
  steps) one block is active: it gets `tx`'s update and `tx`'s state for it advances; every other
  block gets a zero update and its state does not move. Useful when the blocks are nearly
  independent, or when minimising over one block is cheap (Goodfellow et al., Sec. 8.7.2);
  poor when the blocks are strongly coupled.

  .. math::
      k_t = \begin{cases} \lfloor t / s \rfloor \bmod K & \text{cyclic} \\
      \mathrm{randint}(\mathrm{fold\_in}(\mathrm{key}(\text{seed}), \lfloor t / s \rfloor), K)
      & \text{random} \end{cases}, \qquad
      u_t^{(b)} = \begin{cases} \mathrm{tx}(g_t^{(b)}) & b = k_t \\ 0 & b \neq k_t \end{cases}

  with :math:`t` the 0-based step, :math:`s` = `steps_per_block` and :math:`K` the number of
  labels, taken in sorted order (or the key order of a `tx` dict). The random order depends on
  the step count and `seed` only, so it is reproducible and restarts identically from a
  checkpoint. Each block runs under a `cond` that stays a `cond` under `vmap`
  (`gradtx._periodic.cond`): only the active block computes, in a sweep too.

  Args:
    tx: the transformation applied to the active block (one state per label, built from that
      label's leaves), or a dict from label to transformation, as `partition`'s.
    param_labels: a pytree of labels with the params' structure (or a prefix), or a function
      of the params returning one.
    order: `'cyclic'` or `'random'`.
    steps_per_block: the number of consecutive steps a block stays active, >= 1.
    seed: the seed of the random order (an int).

  Returns:
    A `GradientTransformationExtraArgs` with state `BlockCoordinateDescentState(count,
    inner_states)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.block_coordinate_descent(gradtx.sgd(1.0), {'w': 'w', 'b': 'b'})
    >>> g = {'w': jnp.ones(1), 'b': jnp.ones(1)}
    >>> tx.update(g, tx.init(g))[0]  # labels sorted: 'b' first
    {'b': Array([-1.], dtype=float32), 'w': Array([0.], dtype=float32)}

  References:
    Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, Sec. 8.7.2.
    Wright, "Coordinate descent algorithms", Mathematical Programming 151, 2015.
    https://arxiv.org/abs/1502.04759
  """
  fn = "block_coordinate_descent"
  if isinstance(tx, Mapping):
    for label, t in tx.items():
      if not (callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))):
        raise TypeError(f"gradtx.{fn}: tx[{label!r}] must be a GradientTransformation, got "
                        f"{type(t).__name__}.")
  elif not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
    raise TypeError(f"gradtx.{fn}: tx must be a GradientTransformation (or a dict of them), got "
                    f"{type(tx).__name__}. Hint: call the factory, e.g. gradtx.sgd(0.1).")
  if param_labels is None:
    raise TypeError(f"gradtx.{fn}: param_labels must be a pytree of labels or a function of the "
                    "params returning one, got None.")
  _checks.check_choice(fn, "order", order, _ORDERS)
  _checks.check_int(fn, "steps_per_block", steps_per_block, 1)
  _checks.check_int(fn, "seed", seed, 0)
  labels_is_fn = callable(param_labels)

  def labels_for(tree):
    return param_labels(tree) if labels_is_fn else param_labels

  def block_names(labels):
    found = set(jax.tree.leaves(labels))
    if isinstance(tx, Mapping):
      missing = found - set(tx.keys())
      if missing:
        raise ValueError(f"gradtx.{fn}: param_labels has labels with no entry in tx: "
                         f"{sorted(missing, key=_sort_key)}.")
      return list(tx.keys())
    if not found:
      raise ValueError(f"gradtx.{fn}: param_labels holds no label.")
    return sorted(found, key=_sort_key)

  # Imported here: gradtx.transforms gathers modules that import gradtx.combine.
  from gradtx.transforms.masking import masked  # pylint: disable=import-outside-toplevel

  def members(labels):
    def mask(label):
      return jax.tree.map(lambda l: l == label, labels)
    inner = {b: with_extra_args_support(tx[b] if isinstance(tx, Mapping) else tx)
             for b in block_names(labels)}
    return {b: masked(t, mask(b)) for b, t in inner.items()}

  def zero_block(updates, labels, block):
    """`updates` with the leaves labelled `block` set to zero."""
    return jax.tree.map(
        lambda l, sub: jax.tree.map(lambda g: None if g is None else jnp.zeros_like(g), sub,
                                    is_leaf=is_none) if l == block else sub,
        labels, updates, is_leaf=is_none)

  def active_block(count, n):
    phase = count // steps_per_block
    if order == "cyclic":
      return phase % n  # k_t = floor(t / s) mod K
    key = jax.random.fold_in(jax.random.PRNGKey(seed), phase)
    return jax.random.randint(key, (), 0, n)  # k_t drawn from (seed, floor(t / s))

  def init_fn(params):
    if is_params_placeholder(params):
      raise ValueError(f"gradtx.{fn}: init needs the params (the labels are read from them).")
    ms = members(labels_for(params))
    return BlockCoordinateDescentState(count=jnp.zeros([], jnp.int32),
                                       inner_states={b: m.init(params) for b, m in ms.items()})

  def update_fn(updates, state, params=None, **extra_args):
    labels = labels_for(updates)
    ms = members(labels)
    inner = getattr(state, "inner_states", None)
    if not isinstance(inner, Mapping) or set(inner.keys()) != set(ms.keys()):
      raise ValueError(f"gradtx.{fn}: state must be the BlockCoordinateDescentState made by this "
                       f"transformation's init, with labels {list(ms.keys())}.")
    try:
      jax.tree.map(lambda l, sub: None, labels, updates)
    except ValueError as e:
      raise ValueError(
          f"gradtx.{fn}: the structure of param_labels is not a prefix of the structure of "
          f"updates.\n  param_labels: {jax.tree.structure(labels)}\n"
          f"  updates: {jax.tree.structure(updates, is_leaf=is_none)}") from e
    k = active_block(state.count, len(ms))
    new_inner = {}
    for i, (b, m) in enumerate(ms.items()):

      def step(u, s, m=m):
        out, s = m.update(u, s, params, **extra_args)
        return cast_like(out, u), s

      updates, new_inner[b] = _periodic.cond(
          k == i, step, lambda u, s, b=b: (zero_block(u, labels, b), s), updates, inner[b])
    return updates, BlockCoordinateDescentState(count=safe_increment(state.count),
                                                inner_states=new_inner)

  return GradientTransformationExtraArgs(init_fn, update_fn)
