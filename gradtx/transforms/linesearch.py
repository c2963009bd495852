r"""Line searches: a step size along the incoming direction from extra loss evaluations.

A line search sits at the end of a chain (`chain(scale_by_lbfgs(), scale(-1.0),
scale_by_zoom_linesearch(20))`): the direction `updates` arrives, the search evaluates
`value_fn(params + eta * updates)` and returns `eta * updates`. Its `update` needs, as keyword
extra arguments, `value_fn` (params -> loss, closing over the batch) and, when they are at hand,
`value` and `grad` at `params` (computed from `value_fn` otherwise). Keyword arguments that
`value_fn` accepts by name (`x=`, `y=`, ...) are passed on to it; others are ignored.

Every search is a bounded `lax.while_loop`; `fixed_steps=True` makes it a `fori_loop` of exactly
the maximal number of steps (each lane of a `vmap`ped sweep then costs the same evaluations), with
the same result. A non-finite value or gradient is never accepted: when no finite trial point
exists the step size is 0 and the state keeps the value and gradient at `params`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs
from gradtx.numerics import safe_increment
from gradtx.tree.access import get as _tree_get
from gradtx.tree.arithmetic import add_scale, conj, real, scale, vdot, where
from gradtx.tree.casting import cast_like, zeros_like

__all__ = [
    "ScaleByBacktrackingLinesearchState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
]


# --- shared by the searches and the quasi-Newton methods ----------------------------------------

def fn_kwargs_for(value_fn: Callable[..., Any], extra_args: dict[str, Any]) -> dict[str, Any]:
  """The extra arguments `value_fn` takes by name (data such as `x=`, `y=`), as optax passes them.

  Others are ignored (gradtx's rule for unknown extras; optax raises a TypeError).
  """
  try:
    names = inspect.signature(value_fn).parameters
  except (TypeError, ValueError):
    return {}
  return {k: v for k, v in extra_args.items() if k in names}


def value_and_grad_at(fn: str, params: Any, value: Any, grad: Any, value_fn: Any,
                      fn_kwargs: dict[str, Any], call: str) -> tuple[Any, Any]:
  """`value`, `grad` at `params` as given, or computed from `value_fn` when not given."""
  if value_fn is None:
    raise _checks.missing_extra_arg_error(fn, "value_fn", call)
  if value is None or grad is None:
    v, g = jax.value_and_grad(functools.partial(value_fn, **fn_kwargs))(params)
    value = v if value is None else value
    grad = g if grad is None else grad
  return value, grad


def bounded_loop(cond: Callable[[Any], Any], body: Callable[[Any], Any], init: Any,
                 max_steps: Any, fixed_steps: bool) -> Any:
  """`lax.while_loop(cond, body, init)`, or with `fixed_steps` a `fori_loop` of `max_steps` trips
  that freezes the state once `cond` is false (the same result, a fixed number of bodies)."""
  if not fixed_steps:
    return jax.lax.while_loop(cond, body, init)

  def step(_, state):
    return where(cond(state), body(state), state)

  return jax.lax.fori_loop(0, max_steps, step, init)


def _val_dtype(params: Any) -> Any:
  """The real dtype of the first params leaf (the dtype of values and step sizes)."""
  return jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype


def _check_common(fn: str, max_steps_name: str, max_steps: Any, fixed_steps: bool) -> None:
  _checks.check_int(fn, max_steps_name, max_steps, 1)
  _checks.check_bool(fn, "fixed_steps", fixed_steps)
  if fixed_steps and _checks.is_tracer(max_steps):
    raise ValueError(f"gradtx.{fn}: fixed_steps=True needs a concrete {max_steps_name} (an int), "
                     "got a traced value.")


_CALL = ("update(updates, state, params, value=loss, grad=grad, value_fn=lambda p: loss_fn(p, "
         "batch))")


# --- backtracking (Armijo) ----------------------------------------------------------------------

class BacktrackingLinesearchInfo(NamedTuple):
  """What the last backtracking search did (optax's class, for checkpoints; not exported).

  Attributes:
    num_linesearch_steps: number of evaluations of `value_fn`.
    decrease_error: violation of the sufficient-decrease criterion at the end (0: satisfied).
  """

  num_linesearch_steps: Any
  decrease_error: Any


class ScaleByBacktrackingLinesearchState(NamedTuple):
  """State of `scale_by_backtracking_linesearch` (optax's layout).

  Attributes:
    learning_rate: the step size found by the last search.
    value: the loss at the accepted point (reused by `value_and_grad_from_state`).
    grad: the gradient there if `store_grad`, else None.
    info: a `BacktrackingLinesearchInfo`.
  """

  learning_rate: Any
  value: Any
  grad: Any
  info: BacktrackingLinesearchInfo


class _BacktrackingSearch(NamedTuple):
  learning_rate: Any
  new_value: Any
  new_grad: Any
  decrease_error: Any
  iter_num: Any


def scale_by_backtracking_linesearch(
    max_backtracking_steps: Any,
    slope_rtol: Any = 1e-4,
    decrease_factor: Any = 0.8,
    increase_factor: Any = 1.5,
    max_learning_rate: Any = 1.0,
    atol: Any = 0.0,
    rtol: Any = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
    *,
    fixed_steps: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Backtracking line search: shrinks the step until the loss decreases enough (Armijo).

  Starts from the previous step size times `increase_factor` (at most `max_learning_rate`) and
  multiplies it by `decrease_factor` until the sufficient-decrease criterion holds:

  .. math::
      f(w + \eta u) \le (1 + \delta) f(w) + \eta\, c\, \langle u, \nabla f(w)\rangle + \epsilon

  with :math:`u` the incoming direction (a descent direction), :math:`c` = `slope_rtol`,
  :math:`\delta` = `rtol`, :math:`\epsilon` = `atol`. Returns :math:`\eta u`; :math:`\eta = 0`
  if every trial value was non-finite.

  Args:
    max_backtracking_steps: maximal number of reductions (int >= 1).
    slope_rtol: :math:`c` in [0, 1).
    decrease_factor: factor in (0, 1) applied to the step size at each reduction.
    increase_factor: factor >= 0 applied to the previous step size to start (`inf`: start at
      `max_learning_rate`).
    max_learning_rate: largest step size tried, > 0.
    atol: :math:`\epsilon` >= 0.
    rtol: :math:`\delta` >= 0.
    store_grad: also compute the gradient at the accepted point and keep it in the state, for
      `value_and_grad_from_state`.
    verbose: print a diagnostic (`jax.debug.print`) when the search fails.
    fixed_steps: run exactly `max_backtracking_steps + 1` evaluations (for `vmap` sweeps).

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `value_fn=` and `params`, and uses
    `value=`, `grad=` at params when given (computes them from `value_fn` otherwise).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.scale_by_backtracking_linesearch(15))
    >>> w = jnp.array([1., 2., 3.]); v, g = jax.value_and_grad(f)(w)
    >>> u, _ = tx.update(g, tx.init(w), w, value=v, grad=g, value_fn=f)
    >>> print(f"{f(w + u):.2f}")
    5.04

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithm 3.1.
    Vaswani et al., "Painless Stochastic Gradient: Interpolation, Line-Search, and Convergence
    Rates", NeurIPS 2019. https://arxiv.org/abs/1905.09997
  """
  fn = "scale_by_backtracking_linesearch"
  _check_common(fn, "max_backtracking_steps", max_backtracking_steps, fixed_steps)
  _checks.check_scalar(fn, "slope_rtol", slope_rtol, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "decrease_factor", decrease_factor, low=0.0, high=1.0, low_open=True,
                       high_open=True)
  _checks.check_bound(fn, "increase_factor", increase_factor)
  _checks.check_scalar(fn, "max_learning_rate", max_learning_rate, low=0.0, low_open=True)
  _checks.check_scalar(fn, "atol", atol, low=0.0)
  _checks.check_scalar(fn, "rtol", rtol, low=0.0)
  _checks.check_bool(fn, "store_grad", store_grad)
  _checks.check_bool(fn, "verbose", verbose)

  def init_fn(params):
    dtype = _val_dtype(params)
    return ScaleByBacktrackingLinesearchState(
        learning_rate=jnp.array(1.0, dtype=dtype),
        value=jnp.array(jnp.inf, dtype=dtype),
        grad=zeros_like(params) if store_grad else None,
        info=BacktrackingLinesearchInfo(jnp.zeros([], jnp.int32), jnp.array(jnp.inf, dtype=dtype)))

  def decrease_error_at(stepsize, slope, value, new_value):
    err = new_value - (1.0 + rtol) * value - stepsize * slope_rtol * slope
    return jnp.maximum(jnp.where(jnp.isnan(err), jnp.inf, err), 0.0)

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    fn_kwargs = fn_kwargs_for(value_fn, extra_args) if value_fn is not None else {}
    value, grad = value_and_grad_at(fn, params, value, grad, value_fn, fn_kwargs, _CALL)
    f = functools.partial(value_fn, **fn_kwargs)
    # The slope of eta -> f(params + eta * updates) at 0 (negative for a descent direction).
    slope = real(vdot(updates, conj(grad)))

    def cond(s):
      return (~(s.decrease_error <= atol)) & (s.iter_num <= max_backtracking_steps)

    def body(s):
      lr = jnp.where(s.iter_num > 0, decrease_factor * s.learning_rate, s.learning_rate)
      trial = add_scale(params, lr, updates)
      if store_grad:
        new_value, f_jvp = jax.linearize(f, trial)
        err = decrease_error_at(lr, slope, value, new_value)
        new_grad = jax.lax.cond(
            (err <= atol) | (s.iter_num == max_backtracking_steps),
            lambda p: jax.linear_transpose(f_jvp, p)(jnp.ones_like(new_value))[0],
            lambda p: s.new_grad, trial)
      else:
        new_value = f(trial)
        err = decrease_error_at(lr, slope, value, new_value)
        new_grad = s.new_grad
      return cast_like(_BacktrackingSearch(lr, new_value, new_grad, err, s.iter_num + 1), s)

    # increase_factor = inf starts every search at max_learning_rate, even after a failed one
    # (where inf * 0 would be NaN).
    first_lr = jnp.minimum(increase_factor * state.learning_rate, max_learning_rate)
    first_lr = jnp.where(jnp.isinf(increase_factor), max_learning_rate, first_lr)
    start = _BacktrackingSearch(
        learning_rate=first_lr,
        new_value=value, new_grad=zeros_like(params), decrease_error=jnp.array(jnp.inf),
        iter_num=jnp.asarray(0))
    s = bounded_loop(cond, body, start, max_backtracking_steps + 1, fixed_steps)
    failed = jnp.isinf(s.decrease_error)  # no finite trial value: no step
    lr = jnp.where(failed, 0.0, s.learning_rate)
    # With no step the params stay: keep the value and gradient there; a NaN value at params
    # is kept as inf (the "no value" of `init`), so the state never holds a NaN.
    new_value = jnp.where(failed, jnp.where(jnp.isnan(value), jnp.inf, value), s.new_value)
    new_grad = where(failed, grad, s.new_grad) if store_grad else None
    if verbose:
      jax.lax.cond(
          s.decrease_error > atol,
          lambda: jax.debug.print(
              "gradtx.scale_by_backtracking_linesearch: no step size with sufficient decrease "
              "found (value {v}, slope {sl}, step size {lr}, decrease error {e}).",
              v=value, sl=slope, lr=lr, e=s.decrease_error, ordered=True),
          lambda: None)
    new_state = ScaleByBacktrackingLinesearchState(
        learning_rate=lr, value=new_value, grad=new_grad,
        info=BacktrackingLinesearchInfo(s.iter_num, s.decrease_error))
    return scale(lr, updates), cast_like(new_state, state)

  return GradientTransformationExtraArgs(init_fn, update_fn)


# --- zoom (strong Wolfe) ------------------------------------------------------------------------

class _ZoomSearch(NamedTuple):
  """The running state of one zoom search (Nocedal & Wright, Algorithms 3.5 and 3.6)."""

  count: Any
  params: Any
  updates: Any
  stepsize_guess: Any
  stepsize: Any
  value: Any
  grad: Any
  slope: Any
  value_init: Any
  slope_init: Any
  decrease_error: Any
  curvature_error: Any
  error: Any
  interval_found: Any
  done: Any
  failed: Any
  # The bracket: `low` has the smaller value (it need not be the smaller step size).
  low: Any
  value_low: Any
  slope_low: Any
  high: Any
  value_high: Any
  slope_high: Any
  cubic_ref: Any
  value_cubic_ref: Any
  # The best point with sufficient decrease seen so far (a fallback).
  safe_stepsize: Any
  safe_value: Any
  safe_grad: Any


def _cubicmin(a, fa, fpa, b, fb, c, fc):
  """The critical point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a (NaN
  if it has none), as SciPy's line search computes it."""
  db, dc = b - a, c - a
  denom = (db * dc) ** 2 * (db - dc)
  d1 = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
  coef_a, coef_b = jnp.dot(d1, jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc]),
                           precision=jax.lax.Precision.HIGHEST) / denom
  radical = coef_b * coef_b - 3.0 * coef_a * fpa
  return a + (-coef_b + jnp.sqrt(radical)) / (3.0 * coef_a)


def _quadmin(a, fa, fpa, b, fb):
  """The critical point of the quadratic through (a, fa), (b, fb) with slope fpa at a."""
  db = b - a
  coef_b = (fb - fa - fpa * db) / (db**2)
  return a - fpa / (2.0 * coef_b)


def _zoom_search(max_steps, max_stepsize, tol, increase_factor, slope_rtol, curv_rtol,
                 approx_dec_rtol, interval_threshold):
  """The zoom search as (start, step, keep_going) functions of its `_ZoomSearch` state."""

  def on_line(value_and_grad_fn, params, stepsize, updates):
    value, grad = value_and_grad_fn(add_scale(params, stepsize, updates))
    return value, grad, real(vdot(conj(grad), updates))

  def decrease_error_at(stepsize, value, slope, value_init, slope_init):
    # Armijo (Nocedal & Wright eq. 3.7a) ...
    err = value - value_init - slope_rtol * stepsize * slope_init
    if approx_dec_rtol is not None:
      # ... or, near the minimum, Hager & Zhang's approximate decrease (their eqs. 23, 26-27).
      approx = slope - (2 * slope_rtol - 1.0) * slope_init
      approx = jnp.maximum(approx, value - value_init - approx_dec_rtol * jnp.abs(value_init))
      err = jnp.minimum(approx, err)
    err = jnp.maximum(err, 0.0)
    return jnp.where(jnp.isnan(err), jnp.inf, err)

  def curvature_error_at(slope, slope_init):
    err = jnp.maximum(jnp.abs(slope) - curv_rtol * jnp.abs(slope_init), 0.0)  # eq. 3.7b
    return jnp.where(jnp.isnan(err), jnp.inf, err)

  def safe_step(s):
    """On failure: the best point with sufficient decrease if any (or step 0 if no trial point
    was finite), else the last point tried."""
    use_safe = (s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error)
    stepsize, value, grad = where(use_safe, [s.safe_stepsize, s.safe_value, s.safe_grad],
                                  [s.stepsize, s.value, s.grad])
    return cast_like(s._replace(stepsize=stepsize, value=value, grad=grad), s)

  def search_interval(s, value_and_grad_fn):
    """Algorithm 3.5: grow the step size until the bracket [low, high] holds a good one."""
    stepsize = jnp.where(s.count == 0, s.stepsize_guess, increase_factor * s.stepsize)
    if max_stepsize is not None:
      at_max = stepsize >= max_stepsize
      stepsize = jnp.minimum(stepsize, max_stepsize)
    else:
      at_max = jnp.asarray(False)
    value, grad, slope = on_line(value_and_grad_fn, s.params, stepsize, s.updates)
    dec = decrease_error_at(stepsize, value, slope, s.value_init, s.slope_init)
    curv = curvature_error_at(slope, s.slope_init)
    error = jnp.maximum(dec, curv)
    safe = where(dec <= tol, [stepsize, value, grad], [s.safe_stepsize, s.safe_value, s.safe_grad])
    high_is_new = (dec > 0.0) | ((value >= s.value) & (s.count > 0))
    low_is_new = (slope >= 0.0) & (~high_is_new)
    previous, new = [s.stepsize, s.value, s.slope], [stepsize, value, slope]
    low, value_low, slope_low, high, value_high, slope_high = where(
        low_is_new, new + previous, previous + new)
    interval_found = high_is_new | low_is_new | (error <= tol)
    # At the largest step size with no bracket, no larger step could satisfy curvature: stop.
    done = (error <= tol) | (at_max & ~interval_found)
    failed = (s.count + 1 >= max_steps) & (~done)
    new_state = _ZoomSearch(
        safe_increment(s.count), s.params, s.updates, s.stepsize_guess, stepsize, value, grad,
        slope, s.value_init, s.slope_init, dec, curv, error, jnp.asarray(interval_found),
        jnp.asarray(done), jnp.asarray(failed), low, value_low, slope_low, high, value_high,
        slope_high, low, value_low, *safe)
    return cast_like(new_state, s)

  def zoom(s, value_and_grad_fn):
    """Algorithm 3.6: shrink the bracket by cubic, quadratic or bisection steps."""
    delta = jnp.abs(s.high - s.low)
    left, right = jnp.minimum(s.high, s.low), jnp.maximum(s.high, s.low)
    cubic = _cubicmin(s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref,
                      s.value_cubic_ref)
    use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
    quad = _quadmin(s.low, s.value_low, s.slope_low, s.high, s.value_high)
    use_quad = (~use_cubic) & (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
    use_bisection = (~use_cubic) & (~use_quad)
    middle = jnp.where(use_cubic, cubic, s.cubic_ref)
    middle = jnp.where(use_quad, quad, middle)
    middle = jnp.where(use_bisection, (s.low + s.high) / 2.0, middle)

    value, grad, slope = on_line(value_and_grad_fn, s.params, middle, s.updates)
    dec = decrease_error_at(middle, value, slope, s.value_init, s.slope_init)
    curv = curvature_error_at(slope, s.slope_init)
    error = jnp.maximum(dec, curv)
    better_safe = (dec <= tol) & (value < s.safe_value)
    safe = where(better_safe, [middle, value, grad], [s.safe_stepsize, s.safe_value, s.safe_grad])
    done = error <= tol
    high_to_middle = (dec > 0.0) | (value >= s.value_low)
    high_to_low = (slope * (s.high - s.low) >= 0.0) & (~high_to_middle)
    low_to_middle = ~high_to_middle
    mid = [middle, value, slope]
    high = where(high_to_middle, mid, [s.high, s.value_high, s.slope_high])
    high = where(high_to_low, [s.low, s.value_low, s.slope_low], high)
    low = where(low_to_middle, mid, [s.low, s.value_low, s.slope_low])
    cubic_ref = where(high_to_middle | high_to_low, [s.high, s.value_high], [s.low, s.value_low])
    # Stop at the step limit, or once the bracket is below the threshold and a step with
    # sufficient decrease is known (very steep functions may need tiny steps: keep going then).
    give_up = jnp.asarray((s.count + 1) >= max_steps) | (
        (delta <= interval_threshold) & (safe[0] > 0.0))
    new_state = _ZoomSearch(
        safe_increment(s.count), s.params, s.updates, s.stepsize_guess, middle, value, grad,
        slope, s.value_init, s.slope_init, dec, curv, error, s.interval_found, done,
        give_up & ~done, *low, *high, *cubic_ref, *safe)
    return cast_like(new_state, s)

  def start(updates, params, value, grad, stepsize_guess):
    dtype = _val_dtype(params)
    slope = real(vdot(updates, grad))
    zero, inf = jnp.asarray(0.0), jnp.asarray(jnp.inf)
    return _ZoomSearch(
        jnp.asarray(0), params, updates, stepsize_guess, jnp.asarray(0.0, dtype=dtype),
        jnp.array(value, dtype=dtype), grad, slope, value, slope, inf, inf, inf,
        jnp.asarray(False), jnp.asarray(False), jnp.asarray(False), zero, value, slope, zero,
        value, slope, zero, value, zero, value, grad)

  def step(s, value_and_grad_fn):
    s_new = jax.lax.cond(
        s.interval_found, functools.partial(zoom, value_and_grad_fn=value_and_grad_fn),
        functools.partial(search_interval, value_and_grad_fn=value_and_grad_fn), s)
    s_new = jax.lax.cond(s_new.failed, safe_step, lambda x: x, s_new)
    return cast_like(s_new, s)

  def keep_going(s):
    return ~(s.done | s.failed)

  return start, step, keep_going


class ZoomLinesearchInfo(NamedTuple):
  """What the last zoom search did, for debugging (optax's class).

  A positive `curvature_error` is mild (the largest step size may be too small); a positive
  `decrease_error` means the loss may not have decreased.

  Attributes:
    num_linesearch_steps: number of evaluations of `value_fn` (and its gradient).
    decrease_error: violation of the sufficient-decrease criterion (0: satisfied).
    curvature_error: violation of the curvature criterion (0: satisfied).
  """

  num_linesearch_steps: Any
  decrease_error: Any
  curvature_error: Any


class ScaleByZoomLinesearchState(NamedTuple):
  """State of `scale_by_zoom_linesearch`, with optax's layout.

  State of `scale_by_zoom_linesearch` (optax's layout; `init` builds strongly typed leaves, where
  optax's are weakly typed, so a jitted step does not compile twice).

  Attributes:
    learning_rate: the step size found by the last search.
    value: the loss at the accepted point (reused by `value_and_grad_from_state`).
    grad: the gradient there (likewise).
    info: a `ZoomLinesearchInfo`.
  """

  learning_rate: Any
  value: Any
  grad: Any
  info: ZoomLinesearchInfo


_GUESSES = ("one", "keep")


def scale_by_zoom_linesearch(
    max_linesearch_steps: Any,
    max_learning_rate: Optional[Any] = None,
    tol: Any = 0.0,
    increase_factor: Any = 2.0,
    slope_rtol: Any = 1e-4,
    curv_rtol: Any = 0.9,
    approx_dec_rtol: Optional[Any] = 1e-6,
    stepsize_precision: Any = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
    *,
    fixed_steps: bool = False,
) -> GradientTransformationExtraArgs:
  r"""Zoom line search: a step size satisfying the strong Wolfe conditions.

  Finds :math:`\eta` with sufficient decrease and small curvature along the direction :math:`u`:

  .. math::
      f(w + \eta u) \le f(w) + c_1 \eta \langle u, \nabla f(w)\rangle + \epsilon, \qquad
      |\langle \nabla f(w + \eta u), u\rangle| \le c_2 |\langle \nabla f(w), u\rangle| + \epsilon

  (:math:`c_1` = `slope_rtol`, :math:`c_2` = `curv_rtol`, :math:`\epsilon` = `tol`). Near a
  minimum (:math:`f(w+\eta u) \le f(w) + c_3|f(w)|`, :math:`c_3` = `approx_dec_rtol`) the first
  condition may be replaced by Hager and Zhang's approximate one,
  :math:`\langle \nabla f(w+\eta u), u\rangle \le (2c_1 - 1)\langle \nabla f(w), u\rangle`.
  First the step grows by `increase_factor` until a bracket is found (Algorithm 3.5), then the
  bracket shrinks by cubic, quadratic or bisection steps (Algorithm 3.6). On failure the best
  step with sufficient decrease is used. `curv_rtol=inf` drops the curvature condition.

  Args:
    max_linesearch_steps: maximal number of evaluations (int >= 1).
    max_learning_rate: largest step size (> 0), or None for no bound.
    tol: :math:`\epsilon` >= 0.
    increase_factor: growth factor (> 1) of the step size while bracketing.
    slope_rtol: :math:`c_1` in [0, 1).
    curv_rtol: :math:`c_2` >= 0 (`inf` allowed).
    approx_dec_rtol: :math:`c_3` >= 0, or None for the Armijo condition only.
    stepsize_precision: bracket length below which a step with sufficient decrease is accepted.
    initial_guess_strategy: `'keep'` (start from the last step size, for SGD-like directions) or
      `'one'` (start from 1, for Newton and quasi-Newton directions).
    verbose: print a diagnostic (`jax.debug.print`) when the search fails.
    fixed_steps: run exactly `max_linesearch_steps` evaluations (for `vmap` sweeps); the
      result is the same.

  Returns:
    A `GradientTransformationExtraArgs`; `update` needs `value_fn=` and `params`, and uses
    `value=`, `grad=` at params when given (computes them from `value_fn` otherwise).

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.scale_by_zoom_linesearch(15))
    >>> w = jnp.zeros(3); v, g = jax.value_and_grad(f)(w)
    >>> u, _ = tx.update(g, tx.init(w), w, value=v, grad=g, value_fn=f)
    >>> (w + u).tolist()
    [1.0, 1.0, 1.0]

  References:
    Nocedal & Wright, "Numerical Optimization", Springer 1999, Algorithms 3.5 and 3.6.
    Hager & Zhang, "Algorithm 851: CG_DESCENT, a Conjugate Gradient Method with Guaranteed
    Descent", ACM TOMS 2006. https://doi.org/10.1145/1132973.1132979
  """
  fn = "scale_by_zoom_linesearch"
  _check_common(fn, "max_linesearch_steps", max_linesearch_steps, fixed_steps)
  _checks.check_scalar(fn, "max_learning_rate", max_learning_rate, low=0.0, low_open=True,
                       optional=True)
  _checks.check_scalar(fn, "tol", tol, low=0.0)
  _checks.check_scalar(fn, "increase_factor", increase_factor, low=1.0, low_open=True)
  _checks.check_scalar(fn, "slope_rtol", slope_rtol, low=0.0, high=1.0, high_open=True)
  _checks.check_bound(fn, "curv_rtol", curv_rtol)
  _checks.check_scalar(fn, "approx_dec_rtol", approx_dec_rtol, low=0.0, optional=True)
  _checks.check_scalar(fn, "stepsize_precision", stepsize_precision, low=0.0)
  _checks.check_choice(fn, "initial_guess_strategy", initial_guess_strategy, _GUESSES)
  _checks.check_bool(fn, "verbose", verbose)
  start, step, keep_going = _zoom_search(
      max_linesearch_steps, max_learning_rate, tol, increase_factor, slope_rtol, curv_rtol,
      approx_dec_rtol, stepsize_precision)

  def init_fn(params):
    dtype = _val_dtype(params)
    return ScaleByZoomLinesearchState(
        learning_rate=jnp.asarray(1.0, dtype=dtype), value=jnp.asarray(jnp.inf, dtype=dtype),
        grad=zeros_like(params),
        info=ZoomLinesearchInfo(jnp.zeros([], jnp.int32), jnp.asarray(jnp.inf, jnp.float32),
                                jnp.asarray(jnp.inf, jnp.float32)))

  def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    fn_kwargs = fn_kwargs_for(value_fn, extra_args) if value_fn is not None else {}
    value, grad = value_and_grad_at(fn, params, value, grad, value_fn, fn_kwargs, _CALL)
    value_and_grad_fn = jax.value_and_grad(functools.partial(value_fn, **fn_kwargs))
    guess = jnp.asarray(1.0) if initial_guess_strategy == "one" else state.learning_rate
    s = start(updates, params, value, grad, guess)
    s = bounded_loop(keep_going, functools.partial(step, value_and_grad_fn=value_and_grad_fn),
                     s, max_linesearch_steps, fixed_steps)
    if verbose:
      jax.lax.cond(
          s.error > tol,
          lambda: jax.debug.print(
              "gradtx.scale_by_zoom_linesearch: no step size satisfying both conditions found "
              "(value {v}, slope {sl}, step size {lr}, decrease error {d}, curvature error {c}).",
              v=s.value_init, sl=s.slope_init, lr=s.stepsize, d=s.decrease_error,
              c=s.curvature_error, ordered=True),
          lambda: None)
    new_state = ScaleByZoomLinesearchState(
        learning_rate=s.stepsize, value=s.value, grad=s.grad,
        info=ZoomLinesearchInfo(s.count, s.decrease_error, s.curvature_error))
    return scale(s.stepsize, updates), cast_like(new_state, state)

  return GradientTransformationExtraArgs(init_fn, update_fn)


# --- reusing the search's last evaluation -------------------------------------------------------

def value_and_grad_from_state(
    value_fn: Callable[..., Any],
) -> Callable[..., tuple[Any, Any]]:
  r"""`jax.value_and_grad(value_fn)` that reuses the value and gradient a line search stored.

  A line search evaluates the loss and its gradient at the point it accepts, which is the next
  iterate: the returned function takes them from the optimizer state (`value`, `grad` fields)
  instead of computing them again, and falls back to `jax.value_and_grad(value_fn)` when the
  stored value is not finite (the first step):

  .. math::
      (f(\theta), \nabla f(\theta)) = \begin{cases} (\text{state.value}, \text{state.grad})
      & \text{state.value finite} \\ \text{value\_and\_grad}(f)(\theta) & \text{otherwise}
      \end{cases}

  with :math:`f` = `value_fn`.

  Args:
    value_fn: the loss, a differentiable function of the params (and further arguments)
      returning a scalar.

  Returns:
    A function `(params, *args, state, **kwargs) -> (value, grad)`; it raises a ValueError when
    the state has no `value` and `grad` or holds several.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = gradtx.lbfgs(); w = jnp.array([1., 2.]); state = tx.init(w)
    >>> v, g = gradtx.value_and_grad_from_state(f)(w, state=state)
    >>> u, state = tx.update(g, state, w, value=v, grad=g, value_fn=f)
    >>> v, g = gradtx.value_and_grad_from_state(f)(w + u, state=state)  # no evaluation
    >>> bool(jnp.isclose(v, f(w + u)))
    True

  References:
    `optax.value_and_grad_from_state` (optax 0.2.8).
  """
  if not callable(value_fn):
    raise TypeError("gradtx.value_and_grad_from_state: value_fn must be callable, got "
                    f"{type(value_fn).__name__}.")

  def value_and_grad(params, *fn_args, state, **fn_kwargs):
    try:
      value, grad = _tree_get(state, "value"), _tree_get(state, "grad")
    except KeyError as e:
      raise ValueError(f"gradtx.value_and_grad_from_state: {e.args[0]}") from e
    if value is None or grad is None:
      raise ValueError(
          "gradtx.value_and_grad_from_state: the state holds no value or no gradient; use a "
          "line search that stores them (scale_by_zoom_linesearch, or "
          "scale_by_backtracking_linesearch(..., store_grad=True)).")
    return jax.lax.cond(
        (~jnp.isinf(value)) & (~jnp.isnan(value)),
        lambda *_: (value, grad),
        lambda p, a, kw: jax.value_and_grad(value_fn)(p, *a, **kw),
        params, fn_args, fn_kwargs)

  return value_and_grad
