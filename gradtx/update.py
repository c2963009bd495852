"""Applying updates to parameters."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks

__all__ = [
    "apply_updates",
    "incremental_update",
]


def apply_updates(params: Any, updates: Any) -> Any:
  """Returns `params + updates`, each result cast back to its parameter's dtype.

  A bfloat16 parameter stays bfloat16 even when its update is float32. `None` updates leave the
  parameter unchanged.

  Args:
    params: the current parameters (a pytree of arrays).
    updates: additive updates with the same structure (`None` leaves allowed).

  Returns:
    The new parameters, same structure and dtypes as `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.apply_updates({'w': jnp.ones(2)}, {'w': -jnp.ones(2)})['w'].tolist()
    [0.0, 0.0]
  """
  _checks.check_same_structure("apply_updates", "params", params, "updates", updates)
  return jax.tree.map(
      lambda p, u: p if u is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
      params, updates, is_leaf=lambda x: x is None)


def incremental_update(new_tensors: Any, old_tensors: Any, step_size: Any) -> Any:
  r"""Polyak-style incremental update :math:`\tau \cdot new + (1 - \tau) \cdot old`.

  Used for target networks; `step_size` is :math:`\tau` in [0, 1].

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.incremental_update(jnp.ones(1), jnp.zeros(1), 0.25).tolist()
    [0.25]
  """
  _checks.check_scalar("incremental_update", "step_size", step_size, low=0.0, high=1.0)
  return jax.tree.map(
      lambda new, old: step_size * new + (1.0 - step_size) * old, new_tensors, old_tensors)
