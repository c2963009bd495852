"""Applying updates to parameters."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks, _eager
from gradtx._trees import is_none

__all__ = [
    "apply_updates",
    "incremental_update",
    "periodic_update",
]


def apply_updates(params: Any, updates: Any) -> Any:
  """Returns `params + updates`, each result cast back to its parameter's dtype.

  A bfloat16 parameter stays bfloat16 even when its update is float32. `None` updates leave the
  parameter unchanged, and a `None` parameter stays `None` whatever its update (as optax:
  `apply_updates(None, updates)` is `None`).

  Integer and bool params are not trainable: such a leaf keeps its value when its update is
  `None` or float0 (what `jax.grad(..., allow_int=True)` returns for it), and any other update
  raises a TypeError naming the leaf, where optax would silently truncate `[0, 1, 2] - 0.1` to
  `[0, 0, 1]`. Cast such a param to a float dtype to train it, or leave it out of the optimizer
  with `gradtx.masked` (masked-out leaves pass their float0 or None gradient through).

  Args:
    params: the current parameters (a pytree of arrays).
    updates: additive updates with the same structure (`None` leaves allowed).

  Returns:
    The new parameters, same structure and dtypes as `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.apply_updates({'w': jnp.ones(2)}, {'w': -jnp.ones(2)})['w'].tolist()
    [0.0, 0.0]

  References:
    `optax.apply_updates` (optax 0.2.8).
  """
  _checks.check_same_structure("apply_updates", "params", params, "updates", updates)
  if _eager.worth_compiling((params, updates)):
    # An eager call on many leaves: one compiled dispatch instead of one per leaf (cached by
    # tree structure, shapes and dtypes). Under an outer jit the leaves are tracers: inlined.
    return _apply_updates_jit(params, updates)
  return _apply_updates(params, updates)


def _apply_updates(params: Any, updates: Any) -> Any:
  def add(path, p, u):
    if u is None or p is None:
      return p
    dtype = jnp.result_type(p)
    if not jnp.issubdtype(dtype, jnp.inexact):
      if jnp.result_type(u) == jax.dtypes.float0:
        return p
      raise TypeError(
          f"gradtx.apply_updates: params{jax.tree_util.keystr(path)} has dtype {dtype} and got "
          f"an update of dtype {jnp.result_type(u)}; integer and bool params are not trainable "
          f"(casting the sum back to {dtype} would truncate it). Hint: cast the param to a "
          "float dtype, or give it a None or float0 update, e.g. by leaving it out with "
          "gradtx.masked(tx, mask) and jax.grad(..., allow_int=True).")
    return jnp.asarray(p + u).astype(dtype)

  return jax.tree_util.tree_map_with_path(add, params, updates, is_leaf=is_none)


_apply_updates_jit = jax.jit(_apply_updates)


def incremental_update(new_tensors: Any, old_tensors: Any, step_size: Any) -> Any:
  r"""Polyak-style incremental update :math:`\tau \cdot new + (1 - \tau) \cdot old`.

  Used for target networks; `step_size` is :math:`\tau` in [0, 1]. A `None` leaf of
  `new_tensors` gives `None`, as in optax.

  Args:
    new_tensors: the new values (a pytree; `None` leaves give `None`).
    old_tensors: the current values, same structure.
    step_size: :math:`\tau` in [0, 1].

  Returns:
    The interpolated pytree, same structure.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.incremental_update(jnp.ones(1), jnp.zeros(1), 0.25).tolist()
    [0.25]

  References:
    `optax.incremental_update` (optax 0.2.8); Mnih et al., "Human-level control through deep
    reinforcement learning", Nature 518, 2015; Lillicrap et al., "Continuous control with deep
    reinforcement learning", ICLR 2016 (soft target updates). https://arxiv.org/abs/1509.02971
  """
  _checks.check_scalar("incremental_update", "step_size", step_size, low=0.0, high=1.0)
  return jax.tree.map(
      lambda new, old: None if new is None else step_size * new + (1.0 - step_size) * old,
      new_tensors, old_tensors, is_leaf=is_none)



def periodic_update(new_tensors: Any, old_tensors: Any, steps: Any, update_period: Any) -> Any:
  r"""Returns `new_tensors` when `steps` is a multiple of `update_period`, else `old_tensors`.

  A slow copy of the params refreshed every `update_period` steps: the target network of DQN,
  or the target of self-supervised methods. The choice is a `lax.cond` on `steps`, so it works
  under `jit` with a traced step count.

  .. math::
      \theta^{-} \leftarrow \begin{cases} \theta & \text{steps} \bmod K = 0 \\
      \theta^{-} & \text{otherwise} \end{cases}

  Args:
    new_tensors: the latest params (the online network).
    old_tensors: the slow copy, with the same structure, shapes and dtypes.
    steps: the number of update steps of the online network (an int or int scalar array).
    update_period: :math:`K \ge 1`, refresh every `update_period` steps (an int or int scalar
      array).

  Returns:
    `new_tensors` or `old_tensors`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> [gradtx.periodic_update(jnp.ones(1), jnp.zeros(1), s, 2).tolist() for s in (3, 4)]
    [[0.0], [1.0]]

  References:
    Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015.
    https://arxiv.org/abs/1312.5602 ; Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020.
    https://arxiv.org/abs/2006.07733
  """
  fn = "periodic_update"
  _checks.check_int(fn, "steps", steps, low=0)
  _checks.check_int(fn, "update_period", update_period, low=1)
  _checks.check_same_structure(fn, "new_tensors", new_tensors, "old_tensors", old_tensors)
  return jax.lax.cond(
      jnp.mod(steps, update_period) == 0, lambda _: new_tensors, lambda _: old_tensors, None)
