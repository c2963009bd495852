"""GaLore: gradient low-rank projection (optax.contrib's `galore`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._matrix import map_with_specs, matrix_view, resolve_specs
from gradtx._periodic import cond
from gradtx._trees import is_none
from gradtx.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    MaskOrFn,
    ScalarOrSchedule,
)
from gradtx.combine import chain
from gradtx.contrib.muon import MuonDimensionNumbers
from gradtx.numerics import safe_increment
from gradtx.transforms.adaptive import scale_by_adam
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "GaLoreState",
    "galore",
    "scale_by_galore",
]


def _galore_spec(x: jax.Array, spec: Any) -> Any:
  """`weight_dimension_numbers=None`: the 2-D leaves; one spec: every leaf of rank >= 2."""
  if spec is None:
    return MuonDimensionNumbers() if x.ndim == 2 else None
  return spec if x.ndim >= 2 else None


def _check_transformation(fn: str, name: str, tx: Any) -> None:
  if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
    raise TypeError(f"gradtx.{fn}: {name} must be a GradientTransformation (with init and "
                    f"update) or None, got {type(tx).__name__} {tx!r}.")


class GaLoreState(NamedTuple):
  """State of `scale_by_galore`: the base state on low-rank gradients, and the projectors.

  Attributes:
    count: int32 scalar, the step count (drives the projector refresh).
    base_optimizer_state: the base optimizer's state, on the low-rank gradients of the matrix
      leaves and the full gradients of the others.
    projector: per matrix leaf an (m, r) or (n, r) projector; an empty (0, 0) array for the others.
  """

  count: jax.Array  # int32 scalar
  base_optimizer_state: Any
  projector: Any  # (m, r) or (n, r) per matrix leaf; an empty (0, 0) array for the others


def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: GradientTransformation | None = None,
    weight_dimension_numbers: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Runs `base_optimizer` on low-rank projections of the matrix gradients (GaLore).

  Gradients of weight matrices are close to low rank, so the base optimizer's moments can live
  in an :math:`r`-dimensional subspace spanned by the top singular vectors of the gradient,
  refreshed every `update_proj_gap` steps; the update is projected back to the full space.
  For an :math:`m \times n` gradient with :math:`m \ge n` (else the transposed roles):

  .. math::
      P_t = U_{:, :r} \text{ of } \operatorname{svd}(G_t) \text{ if } t \bmod T = 0
      \text{ else } P_{t-1}, \quad R_t = P_t^T G_t, \quad
      N_t = \rho(R_t), \quad u_t = \alpha P_t N_t

  with :math:`r` = `min(rank, m, n)`, :math:`T` = `update_proj_gap`, :math:`\rho` =
  `base_optimizer`, :math:`\alpha` = `scale`. The SVD (in float32) runs only on refresh steps:
  it sits in a `cond` that stays a `cond` under `vmap`.

  Args:
    rank: the target rank :math:`r \ge 1`.
    update_proj_gap: steps :math:`T \ge 1` between projector refreshes.
    scale: :math:`\alpha`, multiplies the projected-back updates.
    base_optimizer: a transformation that needs no params (`scale_by_adam`, `scale_by_lion`,
      ...); None: `scale_by_adam()`.
    weight_dimension_numbers: a `GaLoreDimensionNumbers` (every leaf of rank >= 2), a pytree of
      them and None (not projected), or a function of the params returning one; every axis of
      a projected leaf must be named. None: the 2-D leaves.

  Returns:
    A `GradientTransformationExtraArgs` with state `GaLoreState(count, base_optimizer_state,
    projector)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_galore(rank=1)
    >>> state = tx.init({'w': jnp.zeros((4, 3))})
    >>> state.projector['w'].shape, state.base_optimizer_state.mu['w'].shape
    ((4, 1), (1, 3))

  References:
    Zhao, Zhang, Chen, Wang, Anandkumar & Tian, "GaLore: Memory-Efficient LLM Training by
    Gradient Low-Rank Projection", ICML 2024. https://arxiv.org/abs/2403.03507
  """
  fn = "scale_by_galore"
  if isinstance(rank, bool) or not isinstance(rank, int):
    raise TypeError(f"gradtx.{fn}: rank must be an int, got {type(rank).__name__} {rank!r}.")
  _checks.check_int(fn, "rank", rank, 1)
  if isinstance(update_proj_gap, bool) or not isinstance(update_proj_gap, int):
    raise TypeError(f"gradtx.{fn}: update_proj_gap must be an int, got "
                    f"{type(update_proj_gap).__name__} {update_proj_gap!r}.")
  _checks.check_int(fn, "update_proj_gap", update_proj_gap, 1)
  _checks.check_scalar(fn, "scale", scale)
  if base_optimizer is None:
    base_optimizer = scale_by_adam()
  _check_transformation(fn, "base_optimizer", base_optimizer)

  def specs_of(tree):
    return resolve_specs(fn, "weight_dimension_numbers", weight_dimension_numbers, tree,
                         _galore_spec)

  def geometry(path, spec, x):
    """(view, use_left, effective rank) of a matrix leaf."""
    view = matrix_view(fn, path, x.shape, spec, batch=False)
    m, n = view.shape
    return view, m >= n, min(rank, m, n)

  def shapes(path, spec, p):
    if spec is None:
      return jnp.zeros((0, 0), dtype=p.dtype), jnp.zeros_like(p)
    view, use_left, r = geometry(path, spec, p)
    m, n = view.shape
    projector, proxy = ((m, r), (r, n)) if use_left else ((n, r), (m, r))
    return jnp.zeros(projector, dtype=p.dtype), jnp.zeros(proxy, dtype=p.dtype)

  def init_fn(params):
    if not jax.tree.leaves(params):
      return GaLoreState(count=jnp.zeros([], jnp.int32),
                         base_optimizer_state=base_optimizer.init(params), projector=params)
    pairs = map_with_specs(shapes, specs_of(params), params)
    projectors, proxies = jax.tree.transpose(
        jax.tree.structure(params), jax.tree.structure((0, 0)), pairs)
    return GaLoreState(count=jnp.zeros([], jnp.int32),
                       base_optimizer_state=base_optimizer.init(proxies), projector=projectors)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.projector", state.projector)
    refresh = (state.count % update_proj_gap) == 0  # t mod T = 0
    specs = specs_of(updates)

    def project(path, spec, g, projector):
      if spec is None:
        return g, projector
      view, use_left, r = geometry(path, spec, g)
      g2 = view.to_matrix(g)

      def fresh(g2, projector):  # P = U[:, :r] (or V[:, :r]) of the float32 SVD of G
        del projector
        u, _, vh = jnp.linalg.svd(g2.astype(jnp.float32), full_matrices=False)
        return (u[:, :r] if use_left else vh[:r, :].T).astype(g.dtype)

      projector = cond(refresh, fresh, lambda g2, projector: projector, g2, projector)
      return (projector.T @ g2 if use_left else g2 @ projector), projector  # R = P^T G

    def back(path, spec, low, projector, g):
      if spec is None:
        return low
      view, use_left, _ = geometry(path, spec, g)
      full = projector @ low if use_left else low @ projector.T  # P N
      return (scale * view.from_matrix(full)).astype(g.dtype)  # u = alpha P N

    pairs = map_with_specs(project, specs, updates, state.projector)
    low = jax.tree.map(lambda g, pr: None if g is None else pr[0], updates, pairs,
                       is_leaf=is_none)
    projectors = jax.tree.map(lambda g, pr, old: old if g is None else pr[1], updates, pairs,
                              state.projector, is_leaf=is_none)
    low_updates, base_state = base_optimizer.update(low, state.base_optimizer_state, None)
    new = map_with_specs(back, specs, low_updates, projectors, updates)
    return new, GaLoreState(count=safe_increment(state.count), base_optimizer_state=base_state,
                            projector=projectors)

  return GradientTransformationExtraArgs(init_fn, update_fn)


def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: float = 1.0,
    base_optimizer: GradientTransformation | None = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn | Callable | None = None,
    weight_dimension_numbers: Any = None,
) -> GradientTransformationExtraArgs:
  r"""GaLore: memory-efficient training by gradient low-rank projection.

  Builds `chain(scale_by_galore(rank, update_proj_gap, scale, base_optimizer,
  weight_dimension_numbers), add_decayed_weights(weight_decay, mask),
  scale_by_learning_rate(learning_rate))`, as optax: the decoupled weight decay acts in the full
  parameter space. For each projected matrix:

  .. math::
      P_t = U_{:, :r} \text{ of } \operatorname{svd}(G_t) \text{ if } t \bmod T = 0
      \text{ else } P_{t-1}, \qquad
      W_t = W_{t-1} - \eta_t \big(\alpha P_t\, \rho(P_t^\top G_t) + \lambda W_{t-1}\big)

  with :math:`\eta_t` = `learning_rate`, :math:`r` = `rank`, :math:`T` = `update_proj_gap`,
  :math:`\alpha` = `scale`, :math:`\rho` = `base_optimizer` and :math:`\lambda` =
  `weight_decay` (on the masked leaves); see `scale_by_galore` for the projection's side.

  Args:
    learning_rate: a float, array or schedule.
    rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers: as in
      `scale_by_galore` (`base_optimizer` must not need params: not `adamw`).
    weight_decay: decoupled weight decay (a float, array or schedule).
    mask: which leaves to decay (a pytree of bools or a function of the params).

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.galore(0.01, rank=1)
    >>> params = {'w': jnp.ones((4, 3)), 'b': jnp.ones(3)}
    >>> u, _ = tx.update(params, tx.init(params), params)
    >>> u['w'].shape
    (4, 3)

  References:
    Zhao, Zhang, Chen, Wang, Anandkumar & Tian, "GaLore: Memory-Efficient LLM Training by
    Gradient Low-Rank Projection", ICML 2024. https://arxiv.org/abs/2403.03507
  """
  _checks.check_scalar("galore", "learning_rate", learning_rate, schedule=True)
  return chain(
      scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )
