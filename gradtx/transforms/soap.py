"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._matrix import map_with_specs, matrix_view, resolve_specs
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.numerics import safe_increment
from gradtx.transforms.shampoo import (
    check_period,
    fields,
    gram,
    keep_if_finite,
    matrix_spec,
    mm,
    periodic,
)

__all__ = [
    "ScaleBySoapState",
    "scale_by_soap",
]


def _rotate(x: jax.Array, ql: jax.Array | None, qr: jax.Array | None) -> jax.Array:
  """Q_L^T X Q_R (a side without a basis is the identity)."""
  if ql is not None:
    x = mm(jnp.swapaxes(ql, -1, -2), x)
  return x if qr is None else mm(x, qr)


def _rotate_back(x: jax.Array, ql: jax.Array | None, qr: jax.Array | None) -> jax.Array:
  """Q_L X Q_R^T."""
  if ql is not None:
    x = mm(ql, x)
  return x if qr is None else mm(x, jnp.swapaxes(qr, -1, -2))


def _eigenbasis(a: jax.Array) -> jax.Array:
  """The eigenvectors of symmetric `a`, by decreasing eigenvalue (the paper's initial basis)."""
  _, v = jnp.linalg.eigh(a)
  return v[..., ::-1]


def _power_qr(a: jax.Array, q: jax.Array, nu: jax.Array, axis: int
              ) -> tuple[jax.Array, jax.Array]:
  """One power step with QR (Vyas et al., Algorithm 4): sort the basis by the estimated
  eigenvalues diag(Q^T A Q), decreasing, permuting `nu` along `axis` alike; Q = qr(A Q)."""
  est = jnp.diagonal(mm(jnp.swapaxes(q, -1, -2), mm(a, q)), axis1=-2, axis2=-1)
  order = jnp.argsort(-est, axis=-1, stable=True)  # (batch, n)
  q = jnp.take_along_axis(q, order[:, None, :], axis=-1)
  nu = jnp.take_along_axis(nu, order[:, :, None] if axis == 1 else order[:, None, :], axis=axis)
  q, _ = jnp.linalg.qr(mm(a, q))
  return q, nu


class ScaleBySoapState(NamedTuple):
  """State of `scale_by_soap`.

  Attributes:
    count: The int32 step count.
    mu: Adam's first moment, in the eigenbasis for matrix leaves.
    nu: Adam's second moment, in the eigenbasis for matrix leaves.
    stats_left: Per matrix leaf, Shampoo's left factor L; None otherwise (and for a side past max_precond_dim).
    stats_right: Per matrix leaf, the right factor R.
    basis_left: The eigenbasis Q_L of L.
    basis_right: The eigenbasis Q_R of R.
  """

  count: jax.Array  # int32 scalar
  mu: Any  # first moment, in the eigenbasis for matrix leaves
  nu: Any  # second moment, in the eigenbasis for matrix leaves
  stats_left: Any  # L: (batch, m, m) per matrix leaf; None otherwise (and for a side past max_precond_dim)
  stats_right: Any  # R: (batch, n, n)
  basis_left: Any  # Q_L: (batch, m, m)
  basis_right: Any  # Q_R: (batch, n, n)


def scale_by_soap(
    b1: ScalarOrSchedule = 0.95,
    b2: ScalarOrSchedule = 0.95,
    eps: float = 1e-8,
    shampoo_beta: ScalarOrSchedule | None = None,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    weight_dimension_numbers: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Adam in the eigenbasis of Shampoo's factors, the basis refreshed every few steps (SOAP).

  Shampoo with exponent 1/2 is Adafactor in the eigenbasis of its factors; SOAP runs Adam
  there instead, so the basis can be refreshed rarely (one power step with QR) while Adam's
  second moment tracks the curvature every step. Per matrix leaf :math:`G_t` (an
  :math:`m \times n` view; a side longer than `max_precond_dim` keeps the identity basis):

  .. math::
      G'_t = Q_L^\top G_t Q_R, \quad m_t = \beta_1 m_{t-1} + (1 - \beta_1) G'_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) G'^2_t, \\
      u_t = \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \,
      Q_L \frac{m_t}{\sqrt{v_t} + \epsilon} Q_R^\top, \quad
      L_t = \beta_s L_{t-1} + (1 - \beta_s) G_t G_t^\top, \
      R_t = \beta_s R_{t-1} + (1 - \beta_s) G_t^\top G_t

  and when :math:`t \bmod f = 0`: :math:`Q \leftarrow \operatorname{qr}(L_t Q)` after sorting
  :math:`Q`'s columns (and :math:`v`'s rows) by :math:`\operatorname{diag}(Q^\top L_t Q)`,
  decreasing (likewise for :math:`R`), and :math:`m` is rotated into the new basis. The first
  call only builds :math:`L, R` and :math:`Q` = their eigenvectors (its update is zero, and
  :math:`t` counts from the next call), as the paper. Other leaves run the same Adam with
  :math:`Q = I`. The eigendecomposition and the QR steps sit in `cond`s that stay `cond`s under
  `vmap`; a non-finite basis keeps the old one.

  Args:
    b1: :math:`\beta_1 \in [0, 1)` (a schedule too).
    b2: :math:`\beta_2 \in [0, 1)` (a schedule too).
    eps: :math:`\epsilon \ge 0`.
    shampoo_beta: :math:`\beta_s \in [0, 1)`, the factors' decay; None: `b2` (the paper's).
    precondition_frequency: :math:`f \ge 1`, steps between basis refreshes.
    max_precond_dim: sides longer than this get no basis (identity).
    weight_dimension_numbers: as in `scale_by_shampoo` (None: the 2-D leaves).

  Returns:
    A `GradientTransformationExtraArgs` with state `ScaleBySoapState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.transforms.scale_by_soap()
    >>> state = tx.init({'w': jnp.zeros((3, 2)), 'b': jnp.zeros(2)})
    >>> state.basis_left['w'].shape, state.mu['w'].shape
    ((1, 3, 3), (3, 2))

  References:
    Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson & Kakade, "SOAP: Improving and
    Stabilizing Shampoo using Adam", 2024. https://arxiv.org/abs/2409.11321
  """
  fn = "scale_by_soap"
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0, high_open=True, schedule=True)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0, high_open=True, schedule=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "shampoo_beta", shampoo_beta, low=0.0, high=1.0, high_open=True,
                       schedule=True, optional=True)
  check_period(fn, "precondition_frequency", precondition_frequency)
  check_period(fn, "max_precond_dim", max_precond_dim)

  def specs_of(tree):
    return resolve_specs(fn, "weight_dimension_numbers", weight_dimension_numbers, tree,
                         matrix_spec)

  def sides(view):
    _, m, n = view.shape
    return m <= max_precond_dim, n <= max_precond_dim

  def factors(path, spec, p):
    empty = None  # no factor: not a matrix, or a side longer than max_precond_dim
    if spec is None:
      return empty, empty, empty, empty
    view = matrix_view(fn, path, p.shape, spec)
    b, m, n = view.shape
    left, right = sides(view)
    zeros = lambda k: jnp.zeros((b, k, k), jnp.float32)
    eye = lambda k: jnp.broadcast_to(jnp.eye(k, dtype=jnp.float32), (b, k, k))
    return (zeros(m) if left else empty, zeros(n) if right else empty,
            eye(m) if left else empty, eye(n) if right else empty)

  def init_fn(params):
    zeros = lambda p: None if p is None else jnp.zeros_like(p)
    mu = jax.tree.map(zeros, params, is_leaf=is_none)
    nu = jax.tree.map(zeros, params, is_leaf=is_none)
    sl, sr, ql, qr = fields(params, map_with_specs(factors, specs_of(params), params), 4)
    return ScaleBySoapState(jnp.zeros([], jnp.int32), mu, nu, sl, sr, ql, qr)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    count = state.count
    first = count == 0  # builds the bases only
    t = jnp.maximum(count, 1)  # the paper's step, counted from the second call
    beta1 = _checks.resolve(b1, count)
    beta2 = _checks.resolve(b2, count)
    beta_s = beta2 if shampoo_beta is None else _checks.resolve(shampoo_beta, count)
    refresh = (count > 0) & (count % precondition_frequency == 0)
    step_size = jnp.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    specs = specs_of(updates)

    def adam(g, mu, nu):
      """Adam in the rotated space: (new mu, new nu, m / (sqrt(v) + eps)), unchanged at t=0."""
      mu_new = beta1 * mu + (1 - beta1) * g  # m_t
      nu_new = beta2 * nu + (1 - beta2) * g * g  # v_t
      mu_new, nu_new = jnp.where(first, mu, mu_new), jnp.where(first, nu, nu_new)
      return mu_new, nu_new, mu_new / (jnp.sqrt(nu_new) + eps)

    def leaf(path, spec, g, mu, nu, sl, sr, ql, qr):
      if spec is None:
        mu_new, nu_new, n = adam(g, mu, nu)
        u = jnp.where(first, 0.0, step_size * n)
        return (u.astype(g.dtype), mu_new.astype(mu.dtype), nu_new.astype(nu.dtype), sl, sr, ql,
                qr)
      view = matrix_view(fn, path, g.shape, spec)
      left, right = sides(view)
      g2 = view.to_matrix(g.astype(jnp.float32))
      mu2, nu2 = view.to_matrix(mu.astype(jnp.float32)), view.to_matrix(nu.astype(jnp.float32))
      opt = lambda use, x: x if use else None
      mu2, nu2, n = adam(_rotate(g2, opt(left, ql), opt(right, qr)), mu2, nu2)  # G' = Q_L^T G Q_R
      mu2, nu2 = mu2.astype(jnp.float32), nu2.astype(jnp.float32)
      u = step_size * _rotate_back(n, opt(left, ql), opt(right, qr))  # Q_L N Q_R^T
      u = jnp.where(first, 0.0, u)
      if left:
        sl = (beta_s * sl + (1 - beta_s) * gram(g2)).astype(jnp.float32)  # L_t
      if right:
        sr = (beta_s * sr + (1 - beta_s) * gram(jnp.swapaxes(g2, -1, -2))).astype(jnp.float32)

      def initial(sl, sr, ql, qr, mu2, nu2):  # Q = eigenvectors of L, R
        new = (_eigenbasis(sl) if left else ql, _eigenbasis(sr) if right else qr)
        return (*keep_if_finite(new, (ql, qr)), mu2, nu2)

      def power(sl, sr, ql, qr, mu2, nu2):  # one power step with QR; moments rotated along
        m_full = _rotate_back(mu2, opt(left, ql), opt(right, qr))
        new_ql, new_nu = _power_qr(sl, ql, nu2, 1) if left else (ql, nu2)
        new_qr, new_nu = _power_qr(sr, qr, new_nu, 2) if right else (qr, new_nu)
        (new_ql, new_qr, new_nu) = keep_if_finite((new_ql, new_qr, new_nu), (ql, qr, nu2))
        new_mu = _rotate(m_full, opt(left, new_ql), opt(right, new_qr))
        return new_ql, new_qr, new_mu, new_nu

      keep = lambda sl, sr, ql, qr, mu2, nu2: (ql, qr, mu2, nu2)
      ql, qr, mu2, nu2 = periodic(first, initial, keep, sl, sr, ql, qr, mu2, nu2)
      ql, qr, mu2, nu2 = periodic(refresh, power, keep, sl, sr, ql, qr, mu2, nu2)
      return (view.from_matrix(u).astype(g.dtype), view.from_matrix(mu2).astype(mu.dtype),
              view.from_matrix(nu2).astype(nu.dtype), sl, sr, ql, qr)

    out = map_with_specs(leaf, specs, updates, state.mu, state.nu, state.stats_left,
                         state.stats_right, state.basis_left, state.basis_right)
    pick = lambda i, old: jax.tree.map(lambda g, o, x: x if g is None else o[i], updates, out,
                                       old, is_leaf=is_none)
    new_updates = jax.tree.map(lambda g, o: None if g is None else o[0], updates, out,
                               is_leaf=is_none)
    return new_updates, ScaleBySoapState(
        count=safe_increment(count), mu=pick(1, state.mu), nu=pick(2, state.nu),
        stats_left=pick(3, state.stats_left), stats_right=pick(4, state.stats_right),
        basis_left=pick(5, state.basis_left), basis_right=pick(6, state.basis_right))

  return GradientTransformationExtraArgs(init_fn, update_fn)
