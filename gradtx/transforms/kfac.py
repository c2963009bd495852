"""K-FAC: Kronecker-factored approximate curvature (Martens & Grosse 2015; Grosse & Martens 2016
for convolutions), as one preconditioning transformation that runs inside the user's `jit`.

The layers are found in `value_fn`'s jaxpr (`gradtx.curvature.find_layers`); the factor
statistics come from `gradtx.curvature.kronecker_factors`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks
from gradtx._periodic import cond
from gradtx._trees import is_none
from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule
from gradtx.curvature.kronecker import _specs, kronecker_factors
from gradtx.curvature.operators import hessian
from gradtx.numerics import safe_increment

__all__ = ["ScaleByKfacState", "scale_by_kfac"]

_CALL = "tx.update(grads, state, params, value_fn=lambda p: loss(p, batch))"


class ScaleByKfacState(NamedTuple):
  """State for `scale_by_kfac`.

  Attributes:
    count: int32 step count.
    a: per leaf, the input factor A (`(d_in + 1, d_in + 1)`, homogeneous coordinate last) of a
      layer weight; for other leaves a scalar 0 placeholder (not a zero-size array, which
      Orbax cannot save).
    g: per leaf, the output-gradient factor G (`(d_out, d_out)`) of a layer weight, else the
      placeholder.
    a_inverse: per leaf, the damped inverse of A as of the last refresh, else the
      placeholder.
    g_inverse: per leaf, the damped inverse of G, else the placeholder.
    nu: per leaf, the EMA of the squared gradient of a diagonal-block leaf, else the
      placeholder.
    mu: per leaf, the previous update (momentum), like the params.
    damping: the current damping (float32 scalar; adapted with `adaptive_damping`).
  """
  count: jax.Array
  a: Any
  g: Any
  a_inverse: Any
  g_inverse: Any
  nu: Any
  mu: Any
  damping: jax.Array


def _is_kron(leaf: Any, spec: Any) -> bool:
  return jnp.ndim(leaf) >= 2 and spec != "diagonal"


@jax.jit
def _damped_inverse(m: jax.Array, shift: jax.Array) -> jax.Array:
  """(m + shift I)^{-1} for a PSD m, via Cholesky in float32 at least (one compiled function,
  so eager and jitted updates agree)."""
  dtype = jnp.promote_types(m.dtype, jnp.float32)
  eye = jnp.eye(m.shape[0], dtype=dtype)
  chol = jnp.linalg.cholesky(m.astype(dtype) + shift.astype(dtype) * eye)
  return jax.scipy.linalg.cho_solve((chol, True), eye).astype(m.dtype)


def _vdot(a: Any, b: Any) -> jax.Array:
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def scale_by_kfac(
    damping: ScalarOrSchedule = 1e-3,
    curvature_decay: float = 0.95,
    inverse_update_period: int = 5,
    *,
    momentum: ScalarOrSchedule = 0.0,
    layer_specs: Any = None,
    adaptive: bool = False,
    adaptive_damping: bool = False,
    damping_adaptation_interval: int = 5,
    damping_adaptation_decay: float = 0.95,
    min_damping: float = 1e-8,
    axis_name: str | None = None,
) -> GradientTransformationExtraArgs:
  r"""Preconditions with the inverse of a Kronecker-factored (block-diagonal) Fisher.

  Each dense or convolution layer's block of the Fisher is approximated by
  :math:`A \otimes G` (inputs' and output-gradients' second moments, found in `value_fn`'s
  jaxpr: see `gradtx.curvature.kronecker_factors`); the factors are averaged with a
  bias-corrected EMA, and their damped inverses are refreshed every :math:`T` steps:

  .. math::
      \bar A_t = (1 - \eta_t) \bar A_{t-1} + \eta_t A_t, \quad
      \eta_t = \frac{1 - \beta}{1 - \beta^t}, \quad
      \pi = \sqrt{\frac{\operatorname{tr}(\bar A) / \dim A}{\operatorname{tr}(\bar G) / \dim G}},
      \\
      u_W = (\bar A + \pi \sqrt{\lambda} I)^{-1} \nabla_W h \, (\bar G + \tfrac{\sqrt{\lambda}}
      {\pi} I)^{-1} + \mu\, u_{t-1}

  with :math:`\beta` = `curvature_decay`, :math:`\lambda` = `damping`, :math:`\mu` =
  `momentum`, :math:`\nabla_W h` the layer's gradient as a (d_in + 1, d_out) matrix (its bias
  as the last row: the homogeneous coordinate). Leaves that are no layer's weight get a
  diagonal block, :math:`u = \nabla h / (\bar\nu + \lambda)` with :math:`\bar\nu` the same EMA
  of the squared (batch) gradient. The Fisher is the empirical one (the loss on the data's
  labels, `value_fn=`) unless `update` gets `sample_value_fn=`, a loss on targets sampled from
  the model's predictive distribution (then it is the true Fisher).

  With `adaptive=True` (paper sec. 7) the update is :math:`\delta = \alpha \Delta + \mu
  \delta_{t-1}`, :math:`\Delta = -u`, with :math:`(\alpha, \mu)` minimising the quadratic model
  :math:`M(\delta) = \tfrac12 \delta^\top (H + \lambda I) \delta + \nabla h^\top \delta` (H the
  exact Hessian of `value_fn`, two products per step), and the transformation returns
  :math:`-\delta` (compose with `scale(-1)`). `adaptive_damping=True` (with `adaptive`) applies
  the Levenberg-Marquardt rule every :math:`T_1` steps: :math:`\rho = (h(\theta + \delta) -
  h(\theta)) / M(\delta)`, :math:`\lambda \leftarrow \omega \lambda` if :math:`\rho > 3/4`,
  :math:`\lambda / \omega` if :math:`\rho < 1/4`, :math:`\omega` = decay :math:`^{T_1}`.

  Args:
    damping: :math:`\lambda > 0` (float, array or schedule; with `adaptive_damping`, its initial
      value, a number).
    curvature_decay: :math:`\beta \in [0, 1)`, the factors' EMA decay.
    inverse_update_period: :math:`T \ge 1` steps between inverse refreshes (in a `cond` that
      stays periodic under `vmap`).
    momentum: :math:`\mu \ge 0` (float, array or schedule; ignored with `adaptive`).
    layer_specs: optional pytree like the params of 'dense' | 'conv' | 'diagonal' | None.
    adaptive: the paper's quadratic-model learning rate and momentum (needs `value_fn=`).
    adaptive_damping: the Levenberg-Marquardt damping rule (needs `adaptive`).
    damping_adaptation_interval: :math:`T_1 \ge 1`.
    damping_adaptation_decay: per-step :math:`\omega` base in (0, 1).
    min_damping: the adapted damping's lower bound.
    axis_name: a mapped axis (`shard_map`, `pmap`, `vmap`) over which the factors are averaged.

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `params` and `value_fn=` (params -> mean
    loss over the batch), optionally `sample_value_fn=`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p = {'w': jnp.ones((3, 2))}
    >>> loss = lambda p: jnp.mean((jnp.ones((4, 3)) @ p['w'] - 1.0) ** 2)
    >>> tx = gradtx.transforms.scale_by_kfac(damping=0.1)
    >>> u, s = tx.update(jax.grad(loss)(p), tx.init(p), p, value_fn=loss)
    >>> s.a['w'].shape, s.g['w'].shape
    ((4, 4), (2, 2))

  References:
    Martens and Grosse, `Optimizing Neural Networks with Kronecker-factored Approximate
    Curvature <https://arxiv.org/abs/1503.05671>`_, ICML 2015.
    Grosse and Martens, `A Kronecker-factored approximate Fisher matrix for convolution layers
    <https://arxiv.org/abs/1602.01407>`_, ICML 2016.
  """
  fn = "scale_by_kfac"
  _checks.check_scalar(fn, "damping", damping, low=0.0, low_open=True,
                       schedule=not adaptive_damping)
  _checks.check_scalar(fn, "curvature_decay", curvature_decay, low=0.0, high=1.0,
                       high_open=True)
  _checks.check_int(fn, "inverse_update_period", inverse_update_period, 1)
  _checks.check_scalar(fn, "momentum", momentum, low=0.0, schedule=True)
  _checks.check_bool(fn, "adaptive", adaptive)
  _checks.check_bool(fn, "adaptive_damping", adaptive_damping)
  _checks.check_int(fn, "damping_adaptation_interval", damping_adaptation_interval, 1)
  _checks.check_scalar(fn, "damping_adaptation_decay", damping_adaptation_decay, low=0.0,
                       high=1.0, low_open=True, high_open=True)
  _checks.check_scalar(fn, "min_damping", min_damping, low=0.0)
  if adaptive_damping and not adaptive:
    raise ValueError(f"gradtx.{fn}: adaptive_damping needs adaptive=True (the damping rule "
                     "compares the loss with the quadratic model of the adaptive step).")
  if axis_name is not None and not isinstance(axis_name, str):
    raise TypeError(f"gradtx.{fn}: axis_name must be a str or None, got {axis_name!r}.")

  def init_fn(params):
    specs = _specs(fn, layer_specs, params)
    leaves, treedef = jax.tree.flatten(params)
    # A scalar placeholder, not a zero-size array: Orbax refuses to save zero-size arrays.
    empty = lambda p: jnp.zeros((), jnp.asarray(p).dtype)

    def square(p, n):
      return jnp.zeros((n, n), jnp.asarray(p).dtype)

    a, g, nu = [], [], []
    for p, s in zip(leaves, specs):
      kron = _is_kron(p, s)
      din, dout = (int(jnp.size(p)) // p.shape[-1], p.shape[-1]) if kron else (0, 0)
      a.append(square(p, din + 1) if kron else empty(p))
      g.append(square(p, dout) if kron else empty(p))
      nu.append(empty(p) if kron else jnp.zeros_like(p))
    un = lambda xs: jax.tree.unflatten(treedef, xs)
    return ScaleByKfacState(
        count=jnp.zeros([], jnp.int32), a=un(a), g=un(g), a_inverse=un(a), g_inverse=un(g),
        nu=un(nu), mu=jax.tree.map(jnp.zeros_like, params),
        damping=jnp.asarray(0.0 if callable(damping) else damping, jnp.float32))

  def update_fn(updates, state, params=None, *, value_fn=None, sample_value_fn=None,
                **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    stats_fn = sample_value_fn if sample_value_fn is not None else value_fn
    if stats_fn is None or (adaptive and value_fn is None):
      raise _checks.missing_extra_arg_error(fn, "value_fn", _CALL)
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    specs = _specs(fn, layer_specs, params)
    p_leaves, treedef = jax.tree.flatten(params)
    kron = [_is_kron(p, s) for p, s in zip(p_leaves, specs)]
    grads = jax.tree.leaves(updates, is_leaf=is_none)
    flat = lambda t: jax.tree.leaves(t)
    a_old, g_old, ai_old, gi_old = flat(state.a), flat(state.g), flat(state.a_inverse), \
        flat(state.g_inverse)
    nu_old = flat(state.nu)
    count = state.count
    lam = (_checks.resolve(damping, count) if not adaptive_damping else state.damping)
    lam = jnp.asarray(lam, jnp.float32)

    _, factors = kronecker_factors(stats_fn, params, layer_specs=layer_specs, fn=fn)
    names = jax.tree_util.tree_flatten_with_path(params)[0]
    biases = {f[0].bias for f in factors.values() if f[0].bias is not None}
    for i, (p, s) in enumerate(zip(p_leaves, specs)):
      if _is_kron(p, s) and i not in factors:
        raise ValueError(
            f"gradtx.{fn}: params leaf {jax.tree_util.keystr(names[i][0])} (shape {p.shape}) is "
            "not the weight of a dense layer (dot_general) or convolution in value_fn (an "
            "unknown layer type); pass layer_specs= with 'diagonal' for it (or 'dense' / 'conv' "
            "when it is such a layer's weight).")

    # Factor EMAs (bias-corrected like kfac-jax's weighted moving average).
    beta = curvature_decay
    t = (count + 1).astype(jnp.float32)
    eta = 1.0 if beta == 0 else (1.0 - beta) / (1.0 - jnp.asarray(beta, jnp.float32) ** t)
    ema = lambda old, new: old * (1.0 - eta).astype(old.dtype) + new * jnp.asarray(
        eta, old.dtype)
    a_new, g_new, nu_new = list(a_old), list(g_old), list(nu_old)
    for i, (_, big_a, big_g) in factors.items():
      if axis_name is not None:
        big_a, big_g = lax.pmean((big_a, big_g), axis_name)
      ok = jnp.all(jnp.isfinite(big_a)) & jnp.all(jnp.isfinite(big_g))
      a_new[i] = jnp.where(ok, ema(a_old[i], big_a.astype(a_old[i].dtype)), a_old[i])
      g_new[i] = jnp.where(ok, ema(g_old[i], big_g.astype(g_old[i].dtype)), g_old[i])
    for i, g in enumerate(grads):
      if g is not None and not kron[i] and i not in biases:
        sq = jnp.square(g)
        nu_new[i] = jnp.where(jnp.all(jnp.isfinite(sq)), ema(nu_old[i], sq), nu_old[i])

    # Damped inverses every T steps (pi-adjusted factored Tikhonov damping).
    kron_idx = sorted(factors)

    def refresh(a_list, g_list, lam, ai_list, gi_list):
      del ai_list, gi_list
      out_a, out_g = [], []
      for i, a, g in zip(kron_idx, a_list, g_list):
        din = factors[i][0].input_dim + (factors[i][0].bias is not None)
        tr_a = jnp.trace(a) / din
        tr_g = jnp.trace(g) / g.shape[0]
        pi = jnp.sqrt(tr_a / tr_g)  # pi = sqrt((tr(A)/dim A) / (tr(G)/dim G))
        pi = jnp.where(jnp.isfinite(pi) & (pi > 0), pi, 1.0).astype(a.dtype)
        root = jnp.sqrt(lam).astype(a.dtype)
        out_a.append(_damped_inverse(a, pi * root))  # (A + pi sqrt(lambda) I)^-1
        out_g.append(_damped_inverse(g, root / pi))  # (G + sqrt(lambda)/pi I)^-1
      return out_a, out_g

    def keep(a_list, g_list, lam, ai_list, gi_list):
      del a_list, g_list, lam
      return list(ai_list), list(gi_list)

    fresh = (count % inverse_update_period) == 0
    ai_list, gi_list = cond(fresh, refresh, keep, [a_new[i] for i in kron_idx],
                            [g_new[i] for i in kron_idx], lam, [ai_old[i] for i in kron_idx],
                            [gi_old[i] for i in kron_idx])
    ai_new, gi_new = list(ai_old), list(gi_old)
    for i, ai, gi, ai0, gi0 in zip(kron_idx, ai_list, gi_list, [ai_old[i] for i in kron_idx],
                                   [gi_old[i] for i in kron_idx]):
      ok = jnp.all(jnp.isfinite(ai)) & jnp.all(jnp.isfinite(gi))
      ai_new[i] = jnp.where(ok, ai, ai0)
      gi_new[i] = jnp.where(ok, gi, gi0)

    # The preconditioned direction u = F~^{-1} grad.
    direction = [None if g is None else g for g in grads]
    for i in kron_idx:
      layer = factors[i][0]
      g = grads[i]
      if g is None:
        continue
      m = g.reshape((layer.input_dim, layer.output_dim))
      b = grads[layer.bias] if layer.bias is not None else None
      row = (jnp.zeros((1, layer.output_dim), g.dtype) if b is None else
             b.reshape((1, -1)).astype(g.dtype))
      m = jnp.concatenate([m, row], axis=0)
      u = ai_new[i] @ m @ gi_new[i]  # (A + ..)^-1 grad (G + ..)^-1
      direction[i] = u[:-1].reshape(g.shape).astype(g.dtype)
      if b is not None:
        direction[layer.bias] = u[-1].reshape(b.shape).astype(b.dtype)
    for i, g in enumerate(grads):
      if g is not None and not kron[i] and i not in biases:
        direction[i] = (g / (nu_new[i] + lam.astype(g.dtype))).astype(g.dtype)

    mu_old = jax.tree.leaves(state.mu)
    new_damping = state.damping
    if not adaptive:
      mom = _checks.resolve(momentum, count)
      out = [None if d is None else d + _checks.as_dtype(mom, d) * m0
             for d, m0 in zip(direction, mu_old)]
      mu_new = [m0 if d is None else d for d, m0 in zip(out, mu_old)]
    else:
      out, mu_new, new_damping = _adaptive_step(
          value_fn, params, treedef, grads, direction, mu_old, lam, count, state.damping)
    un = lambda xs: jax.tree.unflatten(treedef, xs)
    updates_out = jax.tree.unflatten(jax.tree.structure(updates, is_leaf=is_none), out)
    return updates_out, ScaleByKfacState(
        count=safe_increment(count), a=un(a_new), g=un(g_new), a_inverse=un(ai_new),
        g_inverse=un(gi_new), nu=un(nu_new), mu=un(mu_new), damping=new_damping)

  def _adaptive_step(value_fn, params, treedef, grads, direction, mu_old, lam, count, damping0):
    """(alpha, mu) from the 2x2 quadratic model (paper sec. 7), and the LM damping rule."""
    zero = lambda i: jnp.zeros_like(jax.tree.leaves(params)[i])
    grad_t = jax.tree.unflatten(treedef, [zero(i) if g is None else g
                                          for i, g in enumerate(grads)])
    big_delta = jax.tree.unflatten(treedef, [zero(i) if d is None else -d
                                             for i, d in enumerate(direction)])  # Delta = -u
    delta0 = jax.tree.unflatten(treedef, mu_old)
    op = hessian(value_fn, params)
    h_d, h_0 = op(big_delta), op(delta0)
    m11 = _vdot(big_delta, h_d) + lam * _vdot(big_delta, big_delta)
    m12 = _vdot(big_delta, h_0) + lam * _vdot(big_delta, delta0)
    m22 = _vdot(delta0, h_0) + lam * _vdot(delta0, delta0)
    b1, b2 = _vdot(grad_t, big_delta), _vdot(grad_t, delta0)
    det = m11 * m22 - m12 * m12
    alpha2 = (-b1 * m22 + b2 * m12) / det  # [alpha, mu] = -M^{-1} b
    mu2 = (b1 * m12 - b2 * m11) / det
    model2 = 0.5 * (alpha2 ** 2 * m11 + 2 * alpha2 * mu2 * m12 + mu2 ** 2 * m22) + \
        alpha2 * b1 + mu2 * b2
    alpha1 = -b1 / m11
    model1 = 0.5 * alpha1 * b1
    use2 = (count > 0) & (det > 0) & (m11 > 0) & jnp.isfinite(model2) & (model2 < 0)
    use1 = (m11 > 0) & jnp.isfinite(model1) & (model1 < 0)
    alpha = jnp.where(use2, alpha2, jnp.where(use1, alpha1, 0.0))
    mu = jnp.where(use2, mu2, 0.0)
    model = jnp.where(use2, model2, jnp.where(use1, model1, 0.0))
    delta = jax.tree.map(lambda d, d0: alpha.astype(d.dtype) * d + mu.astype(d.dtype) * d0,
                         big_delta, delta0)  # delta = alpha Delta + mu delta0
    mu_new = jax.tree.leaves(delta)
    out = [None if g is None else -x for g, x in zip(grads, mu_new)]
    new_damping = damping0
    if adaptive_damping:
      omega = jnp.float32(damping_adaptation_decay) ** damping_adaptation_interval

      def adapt(params, delta, model, damping0):
        moved = jax.tree.map(lambda p, d: p + d, params, delta)
        rho = (value_fn(moved) - value_fn(params)) / model  # reduction ratio
        lam_new = jnp.where(rho > 0.75, damping0 * omega,
                            jnp.where((rho < 0.25) | ~jnp.isfinite(rho), damping0 / omega,
                                      damping0))
        return jnp.clip(lam_new, min_damping, 1e8).astype(jnp.float32)

      new_damping = cond((count % damping_adaptation_interval) == 0, adapt,
                         lambda params, delta, model, damping0: damping0,
                         params, delta, model, damping0)
    return out, mu_new, new_damping

  return GradientTransformationExtraArgs(init_fn, update_fn)
