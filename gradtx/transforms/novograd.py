"""NovoGrad: momentum on gradients normalized by a per-layer (per-leaf) second moment.

The second moment is one scalar per leaf, the EMA of the leaf's squared gradient norm, so the
state costs one number per layer instead of one per parameter. Returns the momentum itself, in the
direction of the gradient; follow it with `scale_by_learning_rate` to descend.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, numerics, tree
from gradtx._trees import is_none, map_skip_none
from gradtx.base import GradientTransformation, ScalarOrSchedule

__all__ = [
    "ScaleByNovogradState",
    "scale_by_novograd",
]


def _full_mask(fn: str, mask: Any, params: Any, like: Any) -> Any:
  """One bool per leaf of `like`: `mask` (or `mask(params)`) is a prefix of its structure."""
  tree = mask(params) if callable(mask) else mask
  try:
    return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub, is_leaf=is_none), tree,
                        like)
  except ValueError as e:
    raise ValueError(
        f"gradtx.{fn}: the structure of mask is not a prefix of the structure of params.\n"
        f"  mask: {jax.tree.structure(tree)}\n"
        f"  params: {jax.tree.structure(like, is_leaf=is_none)}\n"
        "Hint: give mask the params' structure (or a prefix of it), or a function of the params."
    ) from e


class ScaleByNovogradState(NamedTuple):
  """State of `scale_by_novograd`, with optax's fields.

  Attributes:
    count: int32 scalar, the step count.
    mu: :math:`m_t`, the momentum, shaped like the params.
    nu: :math:`v^l_t`, one scalar per leaf: the EMA of its squared gradient norm.
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any


def scale_by_novograd(
    b1: float = 0.9,
    b2: float = 0.25,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mu_dtype: Any = None,
    *,
    mask: Any | Callable[[Any], Any] | None = None,
) -> GradientTransformation:
  r"""Computes NovoGrad's momentum of layer-normalized gradients (Ginsburg et al., Algorithm 1).

  Each leaf :math:`l` gets one second moment, the EMA of :math:`\|g^l\|^2`; the gradient divided
  by its root, plus the weight decay, enters a (non-averaging) momentum. At the first step both
  moments start from the first gradient rather than from zero.

  .. math::
      v^l_1 = \|g^l_1\|^2, \quad v^l_t = \beta_2 v^l_{t-1} + (1 - \beta_2) \|g^l_t\|^2, \quad
      d^l_t = \frac{g^l_t}{\sqrt{v^l_t + \epsilon_{root}} + \epsilon} + \lambda_t w^l_t, \quad
      m^l_1 = d^l_1, \quad m^l_t = \beta_1 m^l_{t-1} + d^l_t, \quad u^l_t = m^l_t

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`,
  :math:`\epsilon_{root}` = `eps_root` (optax's placement), :math:`\lambda_t` = `weight_decay`
  at the 0-based step, :math:`w` the params. The weight decay sits inside the momentum, as the
  paper's (not `add_decayed_weights` after it).

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`; a float or a scalar array.
    weight_decay: :math:`\lambda \ge 0`; a float, a scalar array or a schedule (not in optax).
    mu_dtype: dtype of `mu` (default: the params' dtype).
    mask: which leaves are decayed: a pytree of bools shaped like the params (or a prefix of
      them), or a function of the params returning one; None decays every leaf (not in optax).
      Its structure is checked in `init`.

  Returns:
    A `GradientTransformation` with state `ScaleByNovogradState(count, mu, nu)`. Its `update`
    needs `params` unless `weight_decay` is the number 0. The update is the stored momentum (so
    rounded to `mu_dtype`, as optax's) in the dtype of the incoming updates (optax returns it
    in `mu_dtype`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_novograd(eps=0.0)
    >>> u, _ = tx.update(jnp.array([3.0, -4.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 4) for x in u]  # g / ||g||
    [0.6, -0.8]

  References:
    Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang & Cohen,
    "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks",
    arXiv 2019. https://arxiv.org/abs/1905.11286
  """
  fn = "scale_by_novograd"
  _checks.check_scalar(fn, "b1", b1, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0)
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0, schedule=True)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  if mask is not None and not callable(mask) and not jax.tree.leaves(mask):
    raise ValueError(f"gradtx.{fn}: mask must be a pytree of bools shaped like the params or a "
                     f"function of the params, got {mask!r}.")
  no_decay = isinstance(weight_decay, (int, float)) and weight_decay == 0.0  # static

  def init_fn(params):
    if mask is not None:  # a mask of the wrong structure fails here, even while it is unused
      _full_mask(fn, mask, params, params)
    return ScaleByNovogradState(
        count=jnp.zeros([], jnp.int32), mu=tree.zeros_like(params, mu_dtype),
        nu=jax.tree.map(lambda p: jnp.asarray(0.0, dtype=p.dtype), params))

  def leaf_norm_sq(g):  # ||g^l||^2
    return jnp.linalg.norm(g) ** 2

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    if no_decay:
      decayed = map_skip_none(lambda g: False, updates)
    else:
      if params is None:
        raise _checks.missing_params_error(fn)
      _checks.check_same_structure(fn, "updates", updates, "params", params)
      decayed = map_skip_none(lambda g: True, updates) if mask is None else _full_mask(
          fn, mask, params, updates)
    wd = None if no_decay else _checks.resolve(weight_decay, state.count, fn=fn,
                                               name="weight_decay")
    count_inc = numerics.safe_increment(state.count)

    def direction(g, n, p, d):  # d_t = g / (sqrt(v + eps_root) + eps) + wd w
      out = g / (jnp.sqrt(n + _checks.as_dtype(eps_root, n)) + _checks.as_dtype(eps, n))
      return out + _checks.as_dtype(wd, out) * p if d else out

    params_or_nones = map_skip_none(lambda g: None, updates) if no_decay else params

    def init_nu(g, nu):  # v_1 = ||g_1||^2
      return map_skip_none(lambda x, n: leaf_norm_sq(x).astype(n.dtype), g, nu)

    def update_nu(g, nu):  # v_t = b2 v_{t-1} + (1 - b2) ||g_t||^2
      return tree.moment_like(tree.update_moment(map_skip_none(leaf_norm_sq, g), nu, b2, 1), nu)

    def init_mu(g, p, m, nu):  # m_1 = d_1
      return map_skip_none(lambda x, mm, n, pp, d: direction(x, n, pp, d).astype(
          jnp.promote_types(x.dtype, mm.dtype)), g, m, nu, p, decayed)

    def update_mu(g, p, m, nu):  # m_t = b1 m_{t-1} + d_t
      return map_skip_none(lambda x, mm, n, pp, d: (b1 * mm + direction(x, n, pp, d)).astype(
          jnp.promote_types(x.dtype, mm.dtype)), g, m, nu, p, decayed)

    nu = jax.lax.cond(count_inc == 1, init_nu, update_nu, updates, state.nu)
    mu = jax.lax.cond(count_inc == 1, init_mu, update_mu, updates, params_or_nones, state.mu,
                      nu)
    mu = tree.moment_like(mu, state.mu)  # in mu_dtype; the update is the stored momentum
    return tree.cast_like(mu, updates), ScaleByNovogradState(count=count_inc, mu=mu, nu=nu)

  return GradientTransformation(init_fn, update_fn)
