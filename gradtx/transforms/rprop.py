"""Rprop: per-coordinate step sizes that grow while the gradient keeps its sign and shrink when it flips."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.tree.casting import cast_like, full_like, zeros_like
from gradtx.tree.moments import moment_like

__all__ = [
    "ScaleByRpropState",
    "scale_by_rprop",
]


class ScaleByRpropState(NamedTuple):
  """State of `scale_by_rprop` (optax's `ScaleByRpropState`).

  Attributes:
    step_sizes: the per-coordinate step sizes.
    prev_updates: the last update (zero where the gradient's sign flipped).
  """

  step_sizes: Any
  prev_updates: Any


def scale_by_rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> GradientTransformation:
  r"""Resilient backpropagation (iRprop-): a step size per coordinate, driven by sign agreement.

  Only the gradient's sign is used. Each coordinate's step :math:`\Delta` grows by
  :math:`\eta^+` while the gradient keeps its sign, shrinks by :math:`\eta^-` when it flips (and
  that step is skipped, the stored update zeroed so the next step does not adapt again).

  .. math::
      s_t = g_t\, u_{t-1}, \quad
      \Delta_t = \begin{cases} \mathrm{clip}(\eta^+ \Delta_{t-1}) & s_t > 0 \\
      \mathrm{clip}(\eta^- \Delta_{t-1}) & s_t < 0 \\ \Delta_{t-1} & s_t = 0 \end{cases}, \quad
      u_t = \begin{cases} 0 & s_t < 0 \\ \Delta_t \operatorname{sign}(g_t) & \text{otherwise}
      \end{cases}

  with clip to [`min_step_size`, `max_step_size`] and :math:`\Delta_0` = `learning_rate`. The
  output is :math:`u_t` (a descent step needs a `scale(-1)` after it, as `rprop` does).
  Difference from optax 0.2.8: optax returns :math:`u_{t-1}` (one step stale, zero at the first
  step; google-deepmind/optax#1725); gradtx returns :math:`u_t`, as the paper and
  `torch.optim.Rprop`. The states are the same.

  Args:
    learning_rate: the initial step size :math:`\Delta_0` > 0 (a float or scalar array).
    eta_minus: the shrink factor :math:`\eta^-` in (0, 1].
    eta_plus: the growth factor :math:`\eta^+` >= 1.
    min_step_size: the smallest step, >= 0.
    max_step_size: the largest step, >= `min_step_size`.

  Returns:
    A `GradientTransformation` with state `ScaleByRpropState(step_sizes, prev_updates)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_rprop(0.1)
    >>> u, s = tx.update(jnp.asarray([2.0, -1.0]), tx.init(jnp.zeros(2)))
    >>> [round(x, 4) for x in tx.update(jnp.asarray([1.0, 1.0]), s)[0].tolist()]
    [0.12, 0.0]

  References:
    Riedmiller & Braun, "A direct adaptive method for faster backpropagation learning: the
    RPROP algorithm", IEEE ICNN 1993.
    Igel & Huesken, "Empirical evaluation of the improved Rprop learning algorithms",
    Neurocomputing 50, 2003.
  """
  fn = "scale_by_rprop"
  _checks.check_scalar(fn, "learning_rate", learning_rate, low=0.0, low_open=True)
  _checks.check_scalar(fn, "eta_minus", eta_minus, low=0.0, high=1.0, low_open=True)
  _checks.check_scalar(fn, "eta_plus", eta_plus, low=1.0)
  _checks.check_scalar(fn, "min_step_size", min_step_size, low=0.0)
  _checks.check_scalar(fn, "max_step_size", max_step_size, low=0.0)
  if not any(map(_checks.is_tracer, (min_step_size, max_step_size))) and (
      float(max_step_size) < float(min_step_size)):
    raise ValueError(f"gradtx.{fn}: max_step_size must be >= min_step_size, got "
                     f"max_step_size={max_step_size!r} < min_step_size={min_step_size!r}.")

  def init_fn(params):
    return ScaleByRpropState(step_sizes=full_like(params, learning_rate),
                             prev_updates=zeros_like(params))

  def leaf(g, prev, step):
    s = g * prev  # s_t = g_t u_{t-1}: > 0 same sign, < 0 flipped
    step = jnp.where(s == 0, step, jnp.clip(step * jnp.where(s > 0, eta_plus, eta_minus),
                                            min=min_step_size, max=max_step_size))
    u = jnp.where(s < 0, jnp.zeros_like(g), step * jnp.sign(g))  # u_t = Delta_t sign(g_t)
    return u, step

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.step_sizes", state.step_sizes)
    both = jax.tree.map(lambda g, p, st: None if g is None else leaf(g, p, st),
                        updates, state.prev_updates, state.step_sizes, is_leaf=is_none)
    pick = lambda i: jax.tree.map(lambda g, b: None if g is None else b[i], updates, both,
                                  is_leaf=is_none)
    new_updates, steps = pick(0), pick(1)
    new_state = ScaleByRpropState(step_sizes=moment_like(steps, state.step_sizes),
                                  prev_updates=moment_like(new_updates, state.prev_updates))
    return cast_like(new_updates, updates), new_state

  return GradientTransformation(init_fn, update_fn)
