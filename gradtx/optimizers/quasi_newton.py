r"""Quasi-Newton and conjugate-gradient optimizers: a direction, a sign flip, a line search.

Each alias is `chain(<direction>, scale(-1.0) or scale_by_learning_rate(lr), <line search>)`.
Pass the loss at each step: `update(grad, state, params, value=loss, grad=grad, value_fn=f)`
(`value` and `grad` are computed from `value_fn` when omitted; `gradtx.value_and_grad_from_state`
reuses the line search's last evaluation instead).

Box constraints (an L-BFGS-B-style method, Bertsekas's projected quasi-Newton): keep the
iterates in the box with `gradtx.projections.projection_box` after each step, and make two more
changes, without which the projected iteration stalls at a wrong point when the curvature couples
free and bound coordinates: zero the gradient on the active bounds (a coordinate at its lower
bound with a positive gradient, or at its upper bound with a negative one, stays there), and let
the line search measure the loss at projected points::

  lo, hi = lower_bounds, upper_bounds
  g = jax.grad(f)(x)
  g = jnp.where(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)), 0.0, g)
  u, state = tx.update(g, state, x, value_fn=lambda p: f(projection_box(p, lo, hi)))
  x = projection_box(gradtx.apply_updates(x, u), lo, hi)

with `tx = gradtx.lbfgs()`. This reaches L-BFGS-B's solution (tests/test_quasi_newton.py
checks it against SciPy's), with a linear rate once the active set is found (L-BFGS-B's
subspace minimisation converges faster there).
"""

from __future__ import annotations

from typing import Any, Optional

from gradtx.base import GradientTransformation, GradientTransformationExtraArgs, identity
from gradtx.combine import chain
from gradtx.transforms.bfgs import scale_by_bfgs
from gradtx.transforms.lbfgs import scale_by_lbfgs, scale_by_stochastic_lbfgs
from gradtx.transforms.linesearch import scale_by_zoom_linesearch
from gradtx.transforms.nonlinear_cg import scale_by_nonlinear_cg
from gradtx.transforms.scaling import scale, scale_by_learning_rate

__all__ = [
    "bfgs",
    "lbfgs",
    "nonlinear_cg",
    "stochastic_lbfgs",
]


def _step(learning_rate):
  return scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)


def lbfgs(
    learning_rate: Optional[Any] = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Optional[GradientTransformation] = scale_by_zoom_linesearch(
        max_linesearch_steps=20, initial_guess_strategy="one"),
) -> GradientTransformationExtraArgs:
  r"""L-BFGS: the limited-memory BFGS direction with a zoom (strong Wolfe) line search.

  Builds `chain(scale_by_lbfgs(memory_size, scale_init_precond), scale(-1.0) (or
  scale_by_learning_rate(learning_rate)), linesearch)` (optax's chain and state); the update is
  :math:`-\eta_k P_k g_k` with :math:`P_k` the L-BFGS inverse-Hessian approximation (see
  `scale_by_lbfgs`) and :math:`\eta_k` from the line search.

  Args:
    learning_rate: None (the line search picks the step) or a float, array or schedule.
    memory_size: number of pairs kept (>= 1).
    scale_init_precond: scale the initial approximation (see `scale_by_lbfgs`).
    linesearch: a line search transformation (default: zoom, 20 steps, initial guess 1), or
      None for none.

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `params`, `value_fn=` (and takes
    `value=`, `grad=`).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum((w - 2.0) ** 2); w = jnp.zeros(3); tx = gradtx.lbfgs()
    >>> state = tx.init(w)
    >>> for _ in range(2):
    ...   u, state = tx.update(jax.grad(f)(w), state, w, value_fn=f); w = w + u
    >>> w.tolist()
    [2.0, 2.0, 2.0]

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithms 7.4 and 7.5.
    Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
    Mathematical Programming 1989. https://doi.org/10.1007/BF01589116
  """
  return chain(
      scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
      _step(learning_rate),
      identity() if linesearch is None else linesearch,
  )


def bfgs(
    learning_rate: Optional[Any] = None,
    scale_init_precond: bool = False,
    linesearch: Optional[GradientTransformation] = scale_by_zoom_linesearch(
        max_linesearch_steps=20, initial_guess_strategy="one"),
) -> GradientTransformationExtraArgs:
  r"""BFGS with a dense inverse-Hessian approximation and a zoom line search (small problems).

  Builds `chain(scale_by_bfgs(scale_init_precond), scale(-1.0) (or
  scale_by_learning_rate(learning_rate)), linesearch)`: the update is :math:`-\eta_k H_k g_k`
  (see `scale_by_bfgs`). The state holds an n x n matrix for n parameters.

  Args:
    learning_rate: None (the line search picks the step) or a float, array or schedule.
    scale_init_precond: scale the initial approximation (see `scale_by_bfgs`).
    linesearch: a line search transformation (default: zoom, 20 steps, initial guess 1), or
      None for none.

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `params`, `value_fn=` (and takes
    `value=`, `grad=`).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum((w - 2.0) ** 2); w = jnp.zeros(3); tx = gradtx.bfgs()
    >>> state = tx.init(w)
    >>> for _ in range(2):
    ...   u, state = tx.update(jax.grad(f)(w), state, w, value_fn=f); w = w + u
    >>> [round(x, 5) for x in w.tolist()]
    [2.0, 2.0, 2.0]

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithm 6.1.
  """
  return chain(
      scale_by_bfgs(scale_init_precond=scale_init_precond),
      _step(learning_rate),
      identity() if linesearch is None else linesearch,
  )


def nonlinear_cg(
    method: str = "polak_ribiere",
    learning_rate: Optional[Any] = None,
    *,
    restart_period: Optional[int] = None,
    restart_threshold: Optional[Any] = None,
    linesearch: Optional[GradientTransformation] = scale_by_zoom_linesearch(
        max_linesearch_steps=20, curv_rtol=0.1, initial_guess_strategy="keep"),
) -> GradientTransformationExtraArgs:
  r"""Nonlinear conjugate gradient with a strong Wolfe line search.

  Builds `chain(scale_by_nonlinear_cg(method, restart_period=..., restart_threshold=...),
  scale(-1.0) (or scale_by_learning_rate(learning_rate)), linesearch)`: the update is
  :math:`-\eta_k p_k` with :math:`p_k = g_k + \beta_k p_{k-1}` (see `scale_by_nonlinear_cg`
  for the four :math:`\beta` formulas). The default line search keeps the last step size as its
  first guess and asks for a small curvature (:math:`c_2 = 0.1`, as Nocedal & Wright advise
  for conjugate gradients).

  Args:
    method: `'fletcher_reeves'`, `'polak_ribiere'` (PR+, default), `'hestenes_stiefel'` or
      `'dai_yuan'`.
    learning_rate: None (the line search picks the step) or a float, array or schedule.
    restart_period: restart every this many steps, or None.
    restart_threshold: Powell's restart threshold, or None.
    linesearch: a line search transformation, or None for none.

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `params`, `value_fn=` (and takes
    `value=`, `grad=`).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum(jnp.array([1., 10.]) * w ** 2); w = jnp.ones(2)
    >>> tx = gradtx.nonlinear_cg(); state = tx.init(w)
    >>> for _ in range(3):
    ...   u, state = tx.update(jax.grad(f)(w), state, w, value_fn=f); w = w + u
    >>> bool(f(w) < 1e-8)
    True

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithm 5.4 and Section 5.2.
  """
  return chain(
      scale_by_nonlinear_cg(method, restart_period=restart_period,
                            restart_threshold=restart_threshold),
      _step(learning_rate),
      identity() if linesearch is None else linesearch,
  )


def stochastic_lbfgs(
    learning_rate: Any = 0.5,
    memory_size: int = 10,
    delta: Any = 1.0,
    *,
    damping_threshold: Any = 0.25,
) -> GradientTransformationExtraArgs:
  r"""Stochastic damped L-BFGS (SdLBFGS, Wang et al. 2017) for minibatch training.

  Builds `chain(scale_by_stochastic_lbfgs(memory_size, delta, damping_threshold=...),
  scale_by_learning_rate(learning_rate))`: the update is :math:`-\alpha_k H_k g_k` with the
  damped L-BFGS :math:`H_k` of `scale_by_stochastic_lbfgs` (one extra minibatch gradient per
  step, at the previous params). No line search: minibatch losses are noisy.

  Args:
    learning_rate: :math:`\alpha_k`, a float, array or schedule (a decaying schedule gives the
      paper's convergence guarantee); 0.5 damps the minibatch noise of quasi-Newton steps.
    memory_size: number of pairs kept.
    delta: lower bound on the curvature estimate :math:`\gamma`.
    damping_threshold: Powell's damping threshold.

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `params` and `value_fn=` (the loss on
    the current minibatch).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2); w = jnp.zeros(2)
    >>> tx = gradtx.stochastic_lbfgs(); state = tx.init(w)
    >>> for _ in range(30):
    ...   u, state = tx.update(jax.grad(f)(w), state, w, value_fn=f); w = w + u
    >>> bool(jnp.allclose(w, 1.0, atol=1e-3))
    True

  References:
    Wang, Ma, Goldfarb & Liu, "Stochastic Quasi-Newton Methods for Nonconvex Stochastic
    Optimization", SIAM Journal on Optimization 2017. https://arxiv.org/abs/1607.01231
  """
  return chain(
      scale_by_stochastic_lbfgs(memory_size, delta, damping_threshold=damping_threshold),
      scale_by_learning_rate(learning_rate),
  )
