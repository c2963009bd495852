"""Sophia: a clipped diagonal-Hessian preconditioner (optax.contrib's `sophia`), with its Hessian
estimate every `update_interval` steps kept periodic under `vmap` (`gradtx._periodic.cond`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._periodic import cond
from gradtx._trees import is_none
from gradtx.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    with_extra_args_support,
)
from gradtx.combine import chain
from gradtx.contrib.hutchinson import hutchinson_estimator_diag_hessian
from gradtx.numerics import safe_increment
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.tree.casting import cast, zeros_like
from gradtx.tree.moments import bias_correction, update_moment

__all__ = [
    "SophiaState",
    "scale_by_sophia",
    "sophia",
]

# optax's default estimator (one object, built once, PRNGKey(0) probes); `is` finds it below.
_DEFAULT_HESSIAN = hutchinson_estimator_diag_hessian()


class SophiaState(NamedTuple):
  """State of `scale_by_sophia` (optax's class: fields, order and nesting).

  Attributes:
    count: int32 scalar.
    mu: EMA of the gradients.
    nu: EMA of the Hessian-diagonal estimates.
    hessian_fn_state: state of `hessian_diagonal_fn`.
  """

  count: jax.Array  # int32 scalar
  mu: Any  # EMA of the gradients
  nu: Any  # EMA of the Hessian-diagonal estimates
  hessian_fn_state: Any  # state of `hessian_diagonal_fn`


def _check_options(fn: str, b1, b2, eps, gamma, clip_threshold, update_interval,
                   hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps):
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "gamma", gamma, low=0.0, low_open=True)
  if clip_threshold is not None:
    _checks.check_scalar(fn, "clip_threshold", clip_threshold, low=0.0, low_open=True)
  _checks.check_int(fn, "update_interval", update_interval, 1,
                    " The Hessian diagonal is re-estimated every update_interval steps.")
  if not isinstance(hessian_diagonal_fn, GradientTransformation):
    raise TypeError(f"gradtx.{fn}: hessian_diagonal_fn must be a GradientTransformation (such "
                    "as gradtx.contrib.hutchinson_estimator_diag_hessian()), got "
                    f"{type(hessian_diagonal_fn).__name__}.")
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  _checks.check_bool(fn, "verbose", verbose)
  if verbose:
    _checks.check_int(fn, "print_win_rate_every_n_steps", print_win_rate_every_n_steps, 1,
                      " verbose=True prints the win rate every that many steps.")
  return mu_dtype


def scale_by_sophia(
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    gamma: Any = 0.01,
    clip_threshold: Any | None = 1.0,
    update_interval: Any = 10,
    hessian_diagonal_fn: GradientTransformation = _DEFAULT_HESSIAN,
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: Any = 0,
) -> GradientTransformationExtraArgs:
  r"""Sophia's preconditioning: momentum over a clipped, EMA'd Hessian diagonal.

  Sophia divides the bias-corrected gradient momentum by a running estimate of the Hessian
  diagonal, floored at `eps`, and clips each coordinate, so flat directions take bounded steps
  and sharp ones short steps. The diagonal is re-estimated every `update_interval` steps (by
  default Hutchinson's :math:`z \odot Hz`, Sophia-H). optax's numbers, bit for bit; under
  `vmap` the estimate stays periodic (optax's `lax.cond` becomes a `select` there).

  .. math::
     m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad \hat m_t = m_t / (1 - \beta_1^t) \\
     u_t = \operatorname{clip}\big(\hat m_t / \max(\gamma h_{t-1}, \epsilon), -\rho, \rho\big)
     \\
     h_t = \beta_2 h_{t-1} + (1 - \beta_2) \hat h_t \text{ if } (t - 1) \bmod k = 0
     \text{ else } h_{t-1}

  with :math:`\hat h_t` the `hessian_diagonal_fn` estimate, :math:`\rho` = `clip_threshold`,
  :math:`k` = `update_interval`.

  Args:
    b1: :math:`\beta_1 \in [0, 1)`, the gradient EMA's decay.
    b2: :math:`\beta_2 \in [0, 1)`, the Hessian EMA's decay (effectively
      :math:`1 - (1 - \beta_2)/k` per step).
    eps: :math:`\epsilon \ge 0`, the floor of the denominator.
    gamma: :math:`\gamma > 0`, the Hessian's scale.
    clip_threshold: :math:`\rho > 0`, or `None` for no clipping.
    update_interval: :math:`k \ge 1`, steps between Hessian estimates.
    hessian_diagonal_fn: a transformation returning the diagonal estimate; it receives
      `params` and `update`'s extra arguments (Hutchinson needs `obj_fn=`, a loss of params;
      gradtx's `value_fn=` is passed on as `obj_fn` when `obj_fn` is absent).
    mu_dtype: the dtype of `mu` (default: the gradients').
    verbose: print the win rate (the fraction of coordinates not clipped) with
      `jax.debug.print` every `print_win_rate_every_n_steps` (>= 1) steps.
    print_win_rate_every_n_steps: see `verbose`.

  Returns:
    A `GradientTransformationExtraArgs` with state `SophiaState`; call
    `update(grads, state, params, obj_fn=loss_of_params)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_sophia()
    >>> p = jnp.ones(2)
    >>> u, s = tx.update(p, tx.init(p), p, obj_fn=lambda q: jnp.sum(q ** 2))
    >>> u  # clipped: the first step's Hessian EMA is still zero
    Array([1., 1.], dtype=float32)

  References:
    Liu, Li, Hall, Liang & Ma, `Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training <https://arxiv.org/abs/2305.14342>`_, ICLR 2024.
  """
  fn = "contrib.scale_by_sophia"
  mu_dtype = _check_options(fn, b1, b2, eps, gamma, clip_threshold, update_interval,
                            hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps)
  hessian_fn = with_extra_args_support(hessian_diagonal_fn)

  def init_fn(params):
    return SophiaState(count=jnp.zeros([], jnp.int32), mu=zeros_like(params, dtype=mu_dtype),
                       nu=zeros_like(params), hessian_fn_state=hessian_fn.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    if "obj_fn" not in extra_args and "value_fn" in extra_args:
      extra_args = {**extra_args, "obj_fn": extra_args["value_fn"]}
    if hessian_diagonal_fn is _DEFAULT_HESSIAN and extra_args.get("obj_fn") is None:
      raise ValueError(
          f"gradtx.{fn}: update needs obj_fn (or value_fn), the loss as a function of the "
          "params (closing over the batch); call update(grads, state, params, "
          "obj_fn=lambda p: loss(p, batch)).")
    count_inc = safe_increment(state.count)
    grads = updates
    mu = update_moment(updates, state.mu, b1, 1)  # m_t = b1 m + (1 - b1) g
    mu_hat = bias_correction(mu, b1, count_inc)  # m_t / (1 - b1^t)
    updates = jax.tree.map(  # m_hat / max(gamma h, eps)
        lambda m, h: None if m is None else m / jnp.maximum(gamma * h, eps), mu_hat, state.nu,
        is_leaf=is_none)
    if clip_threshold is not None:
      if verbose:
        not_clipped = sum(jnp.sum(jnp.abs(u) < clip_threshold) for u in jax.tree.leaves(updates))
        win_rate = not_clipped / sum(jnp.size(u) for u in jax.tree.leaves(updates))
        jax.lax.cond(count_inc % print_win_rate_every_n_steps == 0,
                     lambda: jax.debug.print("Sophia optimizer win rate: {}", win_rate),
                     lambda: None)
      updates = jax.tree.map(  # clip(., -rho, rho)
          lambda u: None if u is None else jnp.clip(u, -clip_threshold, clip_threshold),
          updates, is_leaf=is_none)

    def estimate(hess_fn_state, nu):  # h_t = b2 h + (1 - b2) h_hat, every k-th step
      diag, hess_fn_state = hessian_fn.update(grads, hess_fn_state, params=params, **extra_args)
      return hess_fn_state, update_moment(diag, nu, b2, 1)

    hessian_fn_state, nu = cond(state.count % update_interval == 0, estimate,
                                lambda h, n: (h, n), state.hessian_fn_state, state.nu)
    return updates, SophiaState(count=count_inc, mu=cast(mu, mu_dtype), nu=nu,
                                hessian_fn_state=hessian_fn_state)

  return GradientTransformationExtraArgs(init_fn, update_fn)


def sophia(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    weight_decay_mask: Any | Callable[[Any], Any] | None = None,
    gamma: Any = 0.01,
    clip_threshold: Any | None = 1.0,
    update_interval: Any = 10,
    hessian_diagonal_fn: GradientTransformation = _DEFAULT_HESSIAN,
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: Any = 0,
) -> GradientTransformationExtraArgs:
  r"""Sophia (Sophia-H by default): optax.contrib's alias, with decoupled weight decay.

  Builds `chain(scale_by_sophia(b1, b2, eps, gamma, clip_threshold, update_interval,
  hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps),
  add_decayed_weights(weight_decay, weight_decay_mask), scale_by_learning_rate(learning_rate))`
  (optax's chain and state). See `scale_by_sophia` for the update. `update` needs `params` and
  `obj_fn=lambda p: loss(p, batch)` (or gradtx's `value_fn=`) for the default estimator.

  .. math::

    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
    \theta_{t+1} = \theta_t - \eta_t \lambda \theta_t
      - \eta_t \operatorname{clip}\big(m_t / \max(\gamma h_t, \epsilon), \rho\big)

  with :math:`\beta_1` = ``b1``, :math:`\eta_t` = ``learning_rate``, :math:`\lambda` =
  ``weight_decay``, :math:`\gamma` = ``gamma``, :math:`\epsilon` = ``eps``, :math:`\rho` =
  ``clip_threshold`` and :math:`h_t` the EMA (``b2``) of the Hessian-diagonal estimate refreshed
  every ``update_interval`` steps.

  Args:
    learning_rate: a float, scalar array or schedule.
    b1: see `scale_by_sophia`.
    b2: see `scale_by_sophia`.
    eps: see `scale_by_sophia`.
    gamma: see `scale_by_sophia`.
    clip_threshold: see `scale_by_sophia`.
    update_interval: see `scale_by_sophia`.
    hessian_diagonal_fn: see `scale_by_sophia`.
    mu_dtype: see `scale_by_sophia`.
    verbose: see `scale_by_sophia`.
    print_win_rate_every_n_steps: see `scale_by_sophia`.
    weight_decay: the decoupled weight decay rate (a float or schedule).
    weight_decay_mask: a tree of bools (or a function of params returning one) selecting the
      leaves that decay.

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.sophia(0.1, weight_decay=0.0)
    >>> p = jnp.ones(2)
    >>> u, s = tx.update(p, tx.init(p), p, obj_fn=lambda q: jnp.sum(q ** 2))
    >>> u
    Array([-0.1, -0.1], dtype=float32)

  References:
    Liu, Li, Hall, Liang & Ma, `Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training <https://arxiv.org/abs/2305.14342>`_, ICLR 2024.
  """
  return chain(
      scale_by_sophia(b1=b1, b2=b2, eps=eps, gamma=gamma, clip_threshold=clip_threshold,
                      update_interval=update_interval, hessian_diagonal_fn=hessian_diagonal_fn,
                      mu_dtype=mu_dtype, verbose=verbose,
                      print_win_rate_every_n_steps=print_win_rate_every_n_steps),
      add_decayed_weights(weight_decay, mask=weight_decay_mask),
      scale_by_learning_rate(learning_rate),
  )
