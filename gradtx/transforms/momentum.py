"""Momentum: heavy-ball / Nesterov traces and exponential moving averages of the updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation, ScalarOrSchedule
from gradtx.numerics import safe_increment
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import bias_correction, moment_like, update_moment

__all__ = [
    "EmaState",
    "TraceState",
    "TraceWithCountState",
    "ema",
    "trace",
]


class TraceState(NamedTuple):
  """State of `trace` with a constant `decay`: the momentum buffer (optax's `TraceState`).

  Attributes:
    trace: the momentum buffer.
  """

  trace: Any


class TraceWithCountState(NamedTuple):
  """State of `trace` with a `decay` schedule: the step count that drives it, and the buffer.

  Not in optax, whose `trace` takes no schedule; a constant `decay` keeps optax's `TraceState`.

  Attributes:
    count: int32 scalar, the step count.
    trace: the momentum buffer.
  """

  count: jax.Array  # int32 scalar
  trace: Any


def trace(
    decay: ScalarOrSchedule,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> GradientTransformation:
  r"""Momentum (Polyak's heavy ball) or Nesterov momentum, as optax's `trace`.

  The trace accumulates past updates with weight `decay`, so consistent directions build speed
  and oscillating ones cancel (Ruder 2016, Sec. 4.1-4.2; Sutskever et al. 2013).

  .. math::
      v_t = g_t + \mu_t v_{t-1}, \qquad
      u_t = \begin{cases} g_t + \mu_t v_t & \text{nesterov} \\ v_t & \text{otherwise}\end{cases}

  with :math:`\mu_t` = `decay` (a constant or a schedule of the step, e.g. Sutskever et al.'s
  slowly increasing momentum). Followed by `scale_by_learning_rate(eta)` this is
  :math:`\theta_{t+1} = \theta_t - \eta v_t`, the sources' :math:`v = \gamma v + \eta g` for a
  constant learning rate.

  Args:
    decay: the momentum coefficient :math:`\mu` in [0, 1]; a float, array or schedule.
    nesterov: use Nesterov's look-ahead form.
    accumulator_dtype: dtype of the buffer (default: the params' dtype).

  Returns:
    A `GradientTransformation` with state `TraceState(trace)` (optax's) for a constant `decay`.
    Differences from optax: `decay` may be a schedule, and then the state is
    `TraceWithCountState(count, trace)`, whose `count` is the schedule's step.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.trace(0.9)
    >>> u, s = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    >>> round(tx.update(jnp.ones(1), s)[0].tolist()[0], 5)
    1.9

  References:
    Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
    Computational Mathematics and Mathematical Physics, 1964.
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013.
  """
  _checks.check_scalar("trace", "decay", decay, low=0.0, high=1.0, schedule=True)
  _checks.check_bool("trace", "nesterov", nesterov)
  accumulator_dtype = _checks.check_dtype("trace", "accumulator_dtype", accumulator_dtype)

  scheduled = callable(decay)  # static: only a schedule needs the step count

  def init_fn(params):
    trace_ = zeros_like(params, accumulator_dtype)
    if scheduled:
      return TraceWithCountState(count=jnp.zeros([], jnp.int32), trace=trace_)
    return TraceState(trace=trace_)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure("trace", "updates", updates, "state.trace", state.trace)
    mu = _checks.resolve(decay, state.count) if scheduled else decay
    f = lambda g, t: g + _checks.as_dtype(mu, g) * t
    new_trace = jax.tree.map(
        lambda g, t: None if g is None else f(g, t), updates, state.trace, is_leaf=is_none)
    if nesterov:
      out = jax.tree.map(
          lambda g, t: None if g is None else f(g, t), updates, new_trace, is_leaf=is_none)
    else:
      out = new_trace
    out, new_trace = cast_like(out, updates), moment_like(new_trace, state.trace)
    if scheduled:
      return out, TraceWithCountState(count=safe_increment(state.count), trace=new_trace)
    return out, TraceState(trace=new_trace)

  return GradientTransformation(init_fn, update_fn)


class EmaState(NamedTuple):
  """State of `ema`: the step count and the moving average.

  Attributes:
    count: int32 scalar, the step count.
    ema: the moving average.
  """

  count: jax.Array  # int32 scalar
  ema: Any


def ema(decay: ScalarOrSchedule, debias: bool = True, accumulator_dtype: Any = None
        ) -> GradientTransformation:
  r"""Replaces the updates by their exponential moving average, optionally debiased.

  .. math::
      m_t = (1 - \beta) g_t + \beta m_{t-1}, \qquad
      u_t = m_t / (1 - \beta^{t}) \;\text{(debias)} \;\text{or}\; m_t

  Args:
    decay: :math:`\beta` in [0, 1]; a float or a scalar array.
    debias: divide by :math:`1 - \beta^t` to remove the bias towards zero of the start.
    accumulator_dtype: dtype of the average (default: the params' dtype).

  Returns:
    A `GradientTransformation` with state `EmaState(count, ema)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.ema(0.9)
    >>> round(tx.update(2 * jnp.ones(1), tx.init(jnp.zeros(1)))[0].tolist()[0], 5)
    2.0

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Sec. 3 (bias
    correction). https://arxiv.org/abs/1412.6980
  """
  _checks.check_scalar("ema", "decay", decay, low=0.0, high=1.0)
  _checks.check_bool("ema", "debias", debias)
  accumulator_dtype = _checks.check_dtype("ema", "accumulator_dtype", accumulator_dtype)

  def init_fn(params):
    return EmaState(
        count=jnp.zeros([], jnp.int32),
        ema=zeros_like(params, accumulator_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure("ema", "updates", updates, "state.ema", state.ema)
    new_ema = update_moment(updates, state.ema, decay, order=1)
    count_inc = safe_increment(state.count)
    out = bias_correction(new_ema, decay, count_inc) if debias else new_ema
    out, new_ema = cast_like(out, updates), moment_like(new_ema, state.ema)
    return out, EmaState(count=count_inc, ema=new_ema)

  return GradientTransformation(init_fn, update_fn)
