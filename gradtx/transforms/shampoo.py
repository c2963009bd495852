"""Shampoo: Kronecker-factored preconditioning of the matrix leaves (Gupta, Koren & Singer 2018),
with Anil et al.'s blocking of large dimensions, grafting and periodic inverse roots."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks
from gradtx._matrix import map_with_specs, matrix_view, resolve_specs
from gradtx._periodic import cond
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.curvature.power import matrix_inverse_pth_root
from gradtx.numerics import safe_increment

__all__ = [
    "ScaleByShampooState",
    "scale_by_shampoo",
]

_HI = lax.Precision.HIGHEST
GRAFTS = ("adagrad", "rmsprop", "sgd", None)


def matrix_spec(x: jax.Array, spec: Any) -> Any:
  """Private, shared with SOAP: `None` specs mean the 2-D leaves; one spec, every leaf of rank
  >= 2 (as GaLore)."""
  if spec is None:
    from gradtx.contrib.muon import MuonDimensionNumbers  # noqa: PLC0415 (a cycle at import)
    return MuonDimensionNumbers() if x.ndim == 2 else None
  return spec if x.ndim >= 2 else None


def check_period(fn: str, name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int):
    raise TypeError(f"gradtx.{fn}: {name} must be an int, got {type(value).__name__} {value!r}.")
  _checks.check_int(fn, name, value, 1)


def mm(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.matmul(a, b, precision=_HI)


def gram(x: jax.Array) -> jax.Array:
  """X X^T over the last two axes."""
  return mm(x, jnp.swapaxes(x, -1, -2))


def _blocks(view_shape: tuple[int, ...], block_size: int) -> tuple[int, int, int, int]:
  """(b_m, b_n, k_m, k_n): block sizes and counts of a (batch, m, n) view."""
  _, m, n = view_shape
  bm, bn = min(m, block_size), min(n, block_size)
  return bm, bn, math.ceil(m / bm), math.ceil(n / bn)


def _to_blocks(x: jax.Array, block_size: int) -> jax.Array:
  """(batch, m, n) -> (batch k_m k_n, b_m, b_n); the last row/column blocks zero-padded."""
  b, m, n = x.shape
  bm, bn, km, kn = _blocks(x.shape, block_size)
  x = jnp.pad(x, ((0, 0), (0, km * bm - m), (0, kn * bn - n)))
  return x.reshape(b, km, bm, kn, bn).transpose(0, 1, 3, 2, 4).reshape(b * km * kn, bm, bn)


def _from_blocks(x: jax.Array, view_shape: tuple[int, ...], block_size: int) -> jax.Array:
  b, m, n = view_shape
  bm, bn, km, kn = _blocks(view_shape, block_size)
  x = x.reshape(b, km, kn, bm, bn).transpose(0, 1, 3, 2, 4).reshape(b, km * bm, kn * bn)
  return x[:, :m, :n]


def periodic(pred: Any, true_fun: Any, false_fun: Any, *operands: Any) -> Any:
  """`gradtx._periodic.cond` (a `cond` that stays one under `vmap`) when `pred` is traced; called
  eagerly, the branch is picked on the host, so no `cond` is compiled on every eager call."""
  if _checks.is_tracer(pred):
    return cond(pred, true_fun, false_fun, *operands)
  return true_fun(*operands) if bool(pred) else false_fun(*operands)


@jax.jit
def inverse_fourth_roots(stats: jax.Array, ridge_epsilon: Any) -> jax.Array:
  """`matrix_inverse_pth_root(a, 4)` of each (b, b) matrix of `stats` (jitted once per shape, so
  eager calls reuse it)."""
  return jax.vmap(lambda a: matrix_inverse_pth_root(a, 4, ridge_epsilon=ridge_epsilon)[0])(stats)


def fields(tree: Any, per_leaf: Any, n: int) -> tuple:
  """`n` trees shaped like `tree` from `per_leaf`, which holds an n-tuple at each leaf of `tree`
  (None leaves of `tree` give None in each)."""
  return tuple(jax.tree.map(lambda x, t: None if x is None else t[i], tree, per_leaf,
                            is_leaf=is_none) for i in range(n))


def keep_if_finite(new: Any, old: Any) -> Any:
  """`new` where all its leaves are finite, else `old` (a failed root never reaches the state)."""
  ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(new)]))
  return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


class ScaleByShampooState(NamedTuple):
  """State of `scale_by_shampoo`.

  Attributes:
    count: The int32 step count.
    nu: The graft's sum (adagrad) or EMA (rmsprop) of squared gradients, shaped like params.
    stats_left: Per matrix leaf, the left statistics L, one (b, b) matrix per block; None for the other leaves.
    stats_right: Per matrix leaf, the right statistics R, one per block.
    precond_left: L^{-1/4} per block, the identity until the first refresh.
    precond_right: R^{-1/4} per block.
  """

  count: jax.Array  # int32 scalar
  nu: Any  # the graft's sum (adagrad) or EMA (rmsprop) of g^2, shaped like params
  stats_left: Any  # L: (blocks, b_m, b_m) per matrix leaf; None for the others
  stats_right: Any  # R: (blocks, b_n, b_n)
  precond_left: Any  # L^{-1/4}, the identity until the first refresh
  precond_right: Any  # R^{-1/4}


def scale_by_shampoo(
    block_size: int = 128,
    beta2: ScalarOrSchedule = 1.0,
    matrix_epsilon: float = 1e-6,
    graft: str | None = "adagrad",
    graft_b2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    preconditioning_compute_steps: int = 1,
    start_preconditioning_step: int = 1,
    weight_dimension_numbers: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Preconditions each matrix gradient by the inverse fourth roots of its Kronecker factors.

  Shampoo approximates full-matrix AdaGrad of an :math:`m \times n` weight by a Kronecker
  product of an :math:`m \times m` and an :math:`n \times n` factor, each cheap to invert.
  Anil et al.'s practical version splits dimensions larger than `block_size` into blocks (one
  pair of factors per block), refreshes the inverse roots only every `preconditioning_compute_steps`
  steps (in a `cond` that stays a `cond` under `vmap`), and grafts: the preconditioned
  direction takes the layer-wise (per-leaf) norm of a diagonal method's update. Per block
  :math:`G_t` of a matrix leaf, with :math:`\beta_2 = 1` summing as the paper,

  .. math::
      L_t = \beta_2 L_{t-1} + w G_t G_t^\top, \quad R_t = \beta_2 R_{t-1} + w G_t^\top G_t,
      \quad w = 1 \text{ if } \beta_2 = 1 \text{ else } 1 - \beta_2, \\
      \hat L = (L_t + \epsilon \lambda_{\max} I)^{-1/4}, \ \hat R \text{ likewise, recomputed
      when } t \ge t_0,\ (t - t_0) \bmod k = 0, \quad S_t = \hat L G_t \hat R, \\
      u_t = \frac{\|D_t\|_F}{\|S_t\|_F} S_t \ (t \ge t_0), \qquad u_t = D_t \ (t < t_0)

  where :math:`D_t` is the graft's update of the whole leaf: AdaGrad :math:`g / (\sqrt{\sum
  g^2} + \varepsilon)`, RMSProp :math:`g / (\sqrt{\hat\nu_t} + \varepsilon)` with
  :math:`\nu_t = b \nu_{t-1} + (1 - b) g^2` bias-corrected, or SGD :math:`g`; with
  `graft=None`, :math:`u_t = S_t`. Leaves that are not matrices get :math:`D_t` (AdaGrad's for
  `graft=None`), as the papers fall back to a diagonal method. The roots come from
  `gradtx.matrix_inverse_pth_root` (float32 coupled Newton); a non-finite root keeps the old one.

  Args:
    block_size: the largest factor side :math:`b`; larger dimensions are split into blocks of
      :math:`b` (the last zero-padded).
    beta2: :math:`\beta_2 \in (0, 1]`, the statistics' decay (1: running sums); a schedule too.
    matrix_epsilon: :math:`\epsilon > 0`, the ridge relative to a factor's largest eigenvalue.
    graft: 'adagrad', 'rmsprop', 'sgd' or None: whose per-leaf norm the update takes.
    graft_b2: :math:`b \in [0, 1)`, the RMSProp graft's decay (a schedule too).
    eps: :math:`\varepsilon \ge 0` in the diagonal graft's denominator.
    preconditioning_compute_steps: :math:`k \ge 1`, steps between inverse-root refreshes.
    start_preconditioning_step: :math:`t_0 \ge 1`, the first step (1-based) that preconditions.
    weight_dimension_numbers: a `MuonDimensionNumbers` (every leaf of rank >= 2; unnamed axes
      are a batch of independent matrices), a pytree of them and None (not a matrix), or a
      function of the params returning one. None: the 2-D leaves.

  Returns:
    A `GradientTransformationExtraArgs` with state `ScaleByShampooState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.transforms.scale_by_shampoo(block_size=2)
    >>> state = tx.init({'w': jnp.zeros((3, 2)), 'b': jnp.zeros(2)})
    >>> state.stats_left['w'].shape, state.stats_left['b']
    ((2, 2, 2), None)

  References:
    Gupta, Koren & Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization", ICML
    2018. https://arxiv.org/abs/1802.09568
    Anil, Gupta, Koren, Regan & Singer, "Scalable Second Order Optimization for Deep Learning",
    2020. https://arxiv.org/abs/2002.09018
  """
  fn = "scale_by_shampoo"
  check_period(fn, "block_size", block_size)
  _checks.check_scalar(fn, "beta2", beta2, low=0.0, high=1.0, low_open=True, schedule=True)
  _checks.check_scalar(fn, "matrix_epsilon", matrix_epsilon, low=0.0, low_open=True)
  _checks.check_choice(fn, "graft", graft, GRAFTS)
  _checks.check_scalar(fn, "graft_b2", graft_b2, low=0.0, high=1.0, high_open=True,
                       schedule=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  check_period(fn, "preconditioning_compute_steps", preconditioning_compute_steps)
  check_period(fn, "start_preconditioning_step", start_preconditioning_step)

  def specs_of(tree):
    return resolve_specs(fn, "weight_dimension_numbers", weight_dimension_numbers, tree,
                         matrix_spec)

  def factors(path, spec, p):
    if spec is None:
      return None, None, None, None
    view = matrix_view(fn, path, p.shape, spec)
    bm, bn, km, kn = _blocks(view.shape, block_size)
    k = view.shape[0] * km * kn
    eye = lambda b: jnp.broadcast_to(jnp.eye(b, dtype=jnp.float32), (k, b, b))
    return (jnp.zeros((k, bm, bm), jnp.float32), jnp.zeros((k, bn, bn), jnp.float32),
            eye(bm), eye(bn))

  def init_fn(params):
    nu = jax.tree.map(lambda p: None if p is None else jnp.zeros_like(p), params,
                      is_leaf=is_none)
    sl, sr, pl, pr = fields(params, map_with_specs(factors, specs_of(params), params), 4)
    return ScaleByShampooState(jnp.zeros([], jnp.int32), nu, sl, sr, pl, pr)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    count = state.count
    t = count + 1
    b2 = _checks.resolve(beta2, count)
    w = jnp.where(b2 == 1, 1.0, 1.0 - b2)
    gb2 = _checks.resolve(graft_b2, count)
    refresh = (t >= start_preconditioning_step) & (
        (t - start_preconditioning_step) % preconditioning_compute_steps == 0)
    precondition = t >= start_preconditioning_step
    specs = specs_of(updates)

    def diagonal(g, nu):
      """The graft's (new nu, D)."""
      if graft == "sgd":
        return nu, g
      if graft == "rmsprop":
        nu = gb2 * nu + (1 - gb2) * g * g  # nu_t = b nu_{t-1} + (1 - b) g^2
        nu_hat = nu / (1 - gb2 ** t)
      else:  # adagrad (and the non-matrix leaves of graft=None)
        nu = nu + g * g
        nu_hat = nu
      return nu, g / (jnp.sqrt(nu_hat) + eps)

    def leaf(path, spec, g, nu, sl, sr, pl, pr):
      nu, d = diagonal(g, nu)
      nu = nu.astype(g.dtype)
      if spec is None:
        return d.astype(g.dtype), nu, sl, sr, pl, pr
      view = matrix_view(fn, path, g.shape, spec)
      gb = _to_blocks(view.to_matrix(g.astype(jnp.float32)), block_size)
      f32 = lambda x: x.astype(jnp.float32)  # the factors stay float32 (a float64 beta2 too)
      sl = f32(b2 * sl + w * gram(gb))  # L_t = beta2 L_{t-1} + w G G^T
      sr = f32(b2 * sr + w * gram(jnp.swapaxes(gb, -1, -2)))  # R_t = beta2 R_{t-1} + w G^T G

      def roots(sl, sr, pl, pr):
        new = (inverse_fourth_roots(sl, matrix_epsilon), inverse_fourth_roots(sr, matrix_epsilon))
        return keep_if_finite(new, (pl, pr))

      pl, pr = periodic(refresh, roots, lambda sl, sr, pl, pr: (pl, pr), sl, sr, pl, pr)
      s = view.from_matrix(_from_blocks(mm(mm(pl, gb), pr), view.shape, block_size))  # S_t
      if graft is None:
        u = s
      else:
        d32 = d.astype(jnp.float32)
        ns, nd = jnp.linalg.norm(s), jnp.linalg.norm(d32)
        grafted = s * jnp.where(ns > 0, nd / jnp.where(ns > 0, ns, 1.0), 0.0)  # ||D|| S / ||S||
        u = jnp.where(precondition, grafted, d32)
      return u.astype(g.dtype), nu, sl, sr, pl, pr

    out = map_with_specs(leaf, specs, updates, state.nu, state.stats_left, state.stats_right,
                         state.precond_left, state.precond_right)
    pick = lambda i, old: jax.tree.map(lambda g, o, x: x if g is None else o[i], updates, out,
                                       old, is_leaf=is_none)
    new_updates = jax.tree.map(lambda g, o: None if g is None else o[0], updates, out,
                               is_leaf=is_none)
    return new_updates, ScaleByShampooState(
        count=safe_increment(count), nu=pick(1, state.nu), stats_left=pick(2, state.stats_left),
        stats_right=pick(3, state.stats_right), precond_left=pick(4, state.precond_left),
        precond_right=pick(5, state.precond_right))

  return GradientTransformationExtraArgs(init_fn, update_fn)
