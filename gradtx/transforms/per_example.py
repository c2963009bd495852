"""Per-example clipping for differentially private SGD: clip each example's gradient, then sum."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.numerics import global_norm

__all__ = [
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
]


def _check_batched(fn: str, grads: Any) -> None:
  leaves = jax.tree.leaves(grads)
  if not leaves:
    raise ValueError(f"gradtx.{fn}: grads has no arrays; it must hold per-example gradients.")
  batch = jnp.shape(leaves[0])[0] if jnp.ndim(leaves[0]) >= 1 else None
  if batch is None or any(jnp.ndim(g) < 1 or jnp.shape(g)[0] != batch for g in leaves):
    raise ValueError(
        f"gradtx.{fn}: unlike other transforms, {fn} expects every array in grads to have the "
        f"same batch dimension on axis 0; got shapes {jax.tree.map(jnp.shape, grads)}.")


def per_example_global_norm_clip(grads: Any, l2_norm_clip: Any) -> tuple[Any, jax.Array]:
  r"""Clips each example's gradient to global L2 norm `l2_norm_clip`, then sums over examples.

  The clipping step of DP-SGD (Abadi et al. 2016, Algorithm 1): bounding every example's
  contribution bounds the sensitivity of the summed gradient, so that Gaussian noise of scale
  proportional to `l2_norm_clip` makes the step differentially private (add the noise and
  divide by the batch size yourself). The norm of example :math:`b` is taken over all leaves.

  .. math::
      m_b = \min\left(1, \frac{C}{\|g_b\|_2}\right) \;(m_b = 1 \text{ if NaN}), \qquad
      \bar g = \textstyle\sum_b m_b\, g_b, \qquad n = \#\{b : m_b < 1\}

  with :math:`C` = `l2_norm_clip`.

  Args:
    grads: a pytree of per-example gradients, each array with the batch on axis 0.
    l2_norm_clip: :math:`C \ge 0` (`inf` never clips).

  Returns:
    A tuple `(summed, num_clipped)`: the tree of the clipped gradients summed over the batch
    (axis 0 removed), and the int32 number of examples that were clipped.

  Raises:
    ValueError: if the arrays of `grads` do not share a batch axis 0.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> grads = [jnp.asarray([[0.0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]])]
    >>> gradtx.per_example_global_norm_clip(grads, 1.25)
    ([Array([1.75, 1.75, 1.75], dtype=float32)], Array(3, dtype=int32))

  References:
    Abadi et al., "Deep Learning with Differential Privacy", ACM CCS 2016, Algorithm 1.
    https://arxiv.org/abs/1607.00133
  """
  fn = "per_example_global_norm_clip"
  _checks.check_bound(fn, "l2_norm_clip", l2_norm_clip)
  _check_batched(fn, grads)
  norms = jax.vmap(global_norm)(grads)
  multipliers = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
  num_clipped = jnp.sum(multipliers < 1.0)
  summed = jax.tree.map(lambda g: jnp.tensordot(multipliers, g, axes=1), grads)
  return summed, num_clipped


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: Any, uniform: bool = True
) -> tuple[Any, Any]:
  r"""Clips each example's gradient layer by layer (each leaf its own bound), then sums.

  The per-layer variant of DP-SGD's clipping (McMahan et al. 2018): each of the :math:`K`
  leaves gets its own bound :math:`C_k`, chosen so that the bounds together give the global
  bound :math:`C`, :math:`\sqrt{\sum_k C_k^2} = C`; each leaf is then clipped as by
  `per_example_global_norm_clip`. With one leaf the two functions agree.

  .. math::
      C_k = \begin{cases} C / \sqrt{K} & \text{uniform} \\ C \sqrt{D_k / D} & \text{else}
      \end{cases}

  with :math:`C` = `global_l2_norm_clip`, :math:`D_k` the size of one example of leaf :math:`k`
  and :math:`D = \sum_k D_k`.

  Args:
    grads: a pytree of per-example gradients, each array with the batch on axis 0.
    global_l2_norm_clip: :math:`C \ge 0` (`inf` never clips).
    uniform: the same bound for every leaf (`True`), or bounds in proportion to the square root
      of the leaves' sizes (`False`).

  Returns:
    A tuple `(summed, num_clipped)` of two trees of `grads`' structure: each leaf's clipped
    gradients summed over the batch, and each leaf's int32 number of clipped examples.

  Raises:
    ValueError: if the arrays of `grads` do not share a batch axis 0.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> grads = [jnp.asarray([[0.0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]])]
    >>> gradtx.per_example_layer_norm_clip(grads, 1.25)
    ([Array([1.75, 1.75, 1.75], dtype=float32)], [Array(3, dtype=int32)])

  References:
    McMahan, Ramage, Talwar & Zhang, "Learning Differentially Private Recurrent Language
    Models", ICLR 2018. https://arxiv.org/abs/1710.06963
  """
  fn = "per_example_layer_norm_clip"
  _checks.check_bound(fn, "global_l2_norm_clip", global_l2_norm_clip)
  _checks.check_bool(fn, "uniform", uniform)
  _check_batched(fn, grads)
  if uniform:
    num_layers = len(jax.tree.leaves(grads))
    layer_clip_norms = jax.tree.map(
        lambda _: global_l2_norm_clip * (1.0 / num_layers) ** 0.5, grads)
  else:
    total_params = sum(g[0].size for g in jax.tree.leaves(grads))
    layer_clip_norms = jax.tree.map(
        lambda g: global_l2_norm_clip * (g[0].size / total_params) ** 0.5, grads)
  result = jax.tree.map(per_example_global_norm_clip, grads, layer_clip_norms)
  return jax.tree.transpose(
      outer_treedef=jax.tree.structure(grads),
      inner_treedef=jax.tree.structure((0, 0)),
      pytree_to_transpose=result)
