r"""Tools for choosing a learning rate: Smith's range test and plots of schedules and results.

`lr_range_test` runs one short, jit-compiled training run with an exponentially increasing
learning rate and returns the loss curve with a suggested rate. `plot_schedule` and
`plot_lr_range_test` draw schedules and results with matplotlib, an optional dependency imported
only when they are called (`pip install matplotlib`).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.base import GradientTransformation, Schedule
from gradtx.update import apply_updates

__all__ = [
    "LRRangeTestResult",
    "lr_range_test",
]


_RAMPS = ("exponential", "linear")


_SUGGESTIONS = ("steepest", "minimum")


class LRRangeTestResult(NamedTuple):
  """The result of `lr_range_test`; every field is a JAX array.

  Attributes:
    learning_rates: float32 `(num_steps,)`, the rate of each step.
    losses: float32 `(num_steps,)`, `losses[k]` is the loss at the params before the `k`-th
      update (which used `learning_rates[k]`); NaN after `diverged_at`.
    smoothed_losses: float32 `(num_steps,)`, the debiased exponential moving average of the
      losses; NaN after `diverged_at`.
    suggested_learning_rate: float32 scalar, chosen from the steps before `diverged_at` by the
      `suggestion` rule of `lr_range_test`; NaN when no step qualifies.
    diverged_at: int32 scalar, the step at which the run was found diverging (recorded, then
      training stopped), or `num_steps` if it never diverged.
  """

  learning_rates: jax.Array
  losses: jax.Array
  smoothed_losses: jax.Array
  suggested_learning_rate: jax.Array
  diverged_at: jax.Array


def _ramp(min_lr: Any, max_lr: Any, num_steps: int, ramp: str) -> Schedule:
  """The learning-rate ramp from `min_lr` at step 0 to `max_lr` at step `num_steps - 1`."""

  def schedule(count):
    frac = jnp.asarray(count, jnp.float32) / (num_steps - 1)
    lo, hi = jnp.asarray(min_lr, jnp.float32), jnp.asarray(max_lr, jnp.float32)
    if ramp == "exponential":
      return lo * jnp.exp(frac * jnp.log(hi / lo))
    return lo + frac * (hi - lo)

  return schedule


def _batch_getter(batches: Any) -> Callable[[jax.Array], Any]:
  if batches is None:
    return lambda k: None
  if callable(batches):
    return batches
  leaves = jax.tree.leaves(batches)
  if not leaves or any(jnp.ndim(x) == 0 for x in leaves):
    raise ValueError(
        "gradtx.lr_range_test: batches must be None, a callable step -> batch, or a pytree of "
        "arrays whose leading axis indexes the batches; got a leaf without a leading axis. "
        "Hint: for one full batch pass `lambda step: batch`.")
  sizes = {jnp.shape(x)[0] for x in leaves}
  if len(sizes) != 1:
    raise ValueError(
        "gradtx.lr_range_test: the leaves of batches must share their leading (batch index) "
        f"axis, got sizes {sorted(sizes)}.")
  n = sizes.pop()
  return lambda k: jax.tree.map(lambda x: x[k % n], batches)


def _suggest(lrs: jax.Array, smoothed: jax.Array, diverged_at: jax.Array, rule: str):
  """The suggested rate from the steps before `diverged_at` (NaN if none qualifies)."""
  n = lrs.shape[0]
  k = jnp.arange(n)
  if rule == "minimum":
    valid = (k < diverged_at) & jnp.isfinite(smoothed)
    best = jnp.argmin(jnp.where(valid, smoothed, jnp.inf))
    return jnp.where(jnp.any(valid), lrs[best] / 10, jnp.nan)
  # Central differences of the smoothed loss in log(lr) over a span of n/20 steps each side, away
  # from the first tenth of the run, where the average still follows single batches (fast.ai
  # skips 10 of 100 steps too).
  h = max(1, n // 20)
  x = jnp.log(lrs)
  slope = (smoothed[2 * h:] - smoothed[:-2 * h]) / (x[2 * h:] - x[:-2 * h])
  center = k[h:n - h]
  valid = (center + h < diverged_at) & (center >= n // 10) & jnp.isfinite(slope)
  steepest = center[jnp.argmin(jnp.where(valid, slope, jnp.inf))]
  return jnp.where(jnp.any(valid), lrs[steepest], jnp.nan)


def lr_range_test(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    batches: Any,
    optimizer_factory: Callable[..., GradientTransformation],
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    *,
    smooth: float = 0.98,
    diverge_factor: float = 4.0,
    ramp: str = "exponential",
    suggestion: str = "minimum",
) -> LRRangeTestResult:
  r"""Smith's learning-rate range test: train briefly while raising the rate, watch the loss.

  The loss barely moves while the rate is too small, falls fastest around good rates, then
  blows up once the rate is too large; the rate where it falls fastest is a good (maximum)
  learning rate, and the range up to the minimum bounds a cyclical schedule. The whole run is
  one jit-compiled `lax.scan`; after divergence the params are frozen and the losses are NaN.

  .. math::
      \eta_k = \eta_{min} (\eta_{max} / \eta_{min})^{k / (n - 1)}, \quad
      a_k = \beta a_{k-1} + (1 - \beta) \ell_k, \quad \bar\ell_k = a_k / (1 - \beta^{k+1}),
      \\ \text{diverged when } \bar\ell_k > \ell^* + (f - 1) |\ell^*| \text{ (} = f \ell^*
      \text{ for } \ell^* \ge 0\text{) or } \bar\ell_k \text{ is not finite}, \quad
      \ell^* = \min_{j \le k} \bar\ell_j

  with :math:`\beta` = `smooth`, :math:`f` = `diverge_factor`, :math:`n` = `num_steps`.
  Suggestion rules, over the steps before divergence: 'minimum' (default) is the rate of the
  lowest smoothed loss divided by 10, a safety margin below the edge of stability; 'steepest' is
  the rate of the most negative slope :math:`d\bar\ell / d\log\eta` (central differences over
  :math:`\pm n/20` steps, skipping the first tenth of the run), more sensitive to batch noise.
  The moving average lags about :math:`\beta / (1 - \beta)` steps behind the losses, which
  shifts both rules to larger rates: use more steps (or a smaller `smooth`) for short runs.

  Args:
    loss_fn: `loss_fn(params, batch) -> scalar` (or `loss_fn(params)` when `batches` is None).
    params: the initial params, a pytree of arrays.
    batches: a pytree of arrays whose leading axis indexes batches (step `k` uses batch
      `k mod n`), a callable `step -> batch` of the traced int32 step (e.g. sampling with
      `jax.random.fold_in(key, step)`), or None.
    optimizer_factory: called as `optimizer_factory(learning_rate=schedule)`, e.g. `gradtx.adam`
      or `lambda learning_rate: gradtx.sgd(learning_rate, momentum=0.9)`; its optimizer must
      evaluate the schedule at its step count (every gradtx and optax alias does).
    min_lr: :math:`\eta_{min} > 0`, the first rate.
    max_lr: :math:`\eta_{max} > \eta_{min}`, the last rate.
    num_steps: :math:`n \ge 3`, the steps of the run.
    smooth: :math:`\beta` in [0, 1), the smoothing of the loss.
    diverge_factor: :math:`f > 1`, stop once the smoothed loss exceeds this factor of its best.
    ramp: 'exponential' (default) or 'linear' (Smith's original test).
    suggestion: 'minimum' or 'steepest', the rule for `suggested_learning_rate`.

  Returns:
    An `LRRangeTestResult(learning_rates, losses, smoothed_losses, suggested_learning_rate,
    diverged_at)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> loss = lambda p: jnp.sum((p - 3.0) ** 2)
    >>> r = gradtx.lr_range_test(loss, jnp.zeros(2), None, gradtx.sgd, 1e-4, 10.0, 50)
    >>> bool(1e-3 < r.suggested_learning_rate < 1.0), int(r.diverged_at) < 50
    (True, True)

  References:
    Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017, Sec. 3.3.
    https://arxiv.org/abs/1506.01186
    Howard & Gugger, "Fastai: A Layered API for Deep Learning", Information 2020 (lr_find).
    https://arxiv.org/abs/2002.04688
  """
  fn = "lr_range_test"
  if not callable(loss_fn):
    raise TypeError(f"gradtx.{fn}: loss_fn must be a callable, got {type(loss_fn).__name__}.")
  if not callable(optimizer_factory):
    raise TypeError(
        f"gradtx.{fn}: optimizer_factory must be a callable taking learning_rate=, got "
        f"{type(optimizer_factory).__name__}. Hint: pass gradtx.adam, not gradtx.adam(1e-3).")
  _checks.check_scalar(fn, "min_lr", min_lr, low=0.0, low_open=True)
  _checks.check_scalar(fn, "max_lr", max_lr, low=0.0, low_open=True)
  if not _checks.is_tracer(min_lr) and not _checks.is_tracer(max_lr) and float(
      np.asarray(max_lr)) <= float(np.asarray(min_lr)):
    raise ValueError(f"gradtx.{fn}: max_lr must be > min_lr, got min_lr={min_lr!r} and "
                     f"max_lr={max_lr!r}.")
  if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 3:
    raise ValueError(f"gradtx.{fn}: num_steps must be an int >= 3, got {num_steps!r}.")
  _checks.check_scalar(fn, "smooth", smooth, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "diverge_factor", diverge_factor, low=1.0, low_open=True)
  _checks.check_choice(fn, "ramp", ramp, _RAMPS)
  _checks.check_choice(fn, "suggestion", suggestion, _SUGGESTIONS)
  num_steps = int(num_steps)
  schedule = _ramp(min_lr, max_lr, num_steps, ramp)
  tx = optimizer_factory(learning_rate=schedule)
  if not (hasattr(tx, "init") and hasattr(tx, "update")):
    raise TypeError(f"gradtx.{fn}: optimizer_factory(learning_rate=...) must return a "
                    f"GradientTransformation, got {type(tx).__name__}.")
  get_batch = _batch_getter(batches)

  def loss_at(p, batch):
    return loss_fn(p) if batches is None else loss_fn(p, batch)

  def step(carry, k):
    params, opt_state, avg, best, diverged = carry

    def train(operand):
      params, opt_state = operand
      loss, grads = jax.value_and_grad(loss_at)(params, get_batch(k))
      updates, opt_state = tx.update(grads, opt_state, params)
      return jnp.asarray(loss, jnp.float32), apply_updates(params, updates), opt_state

    def frozen(operand):
      return jnp.float32(jnp.nan), *operand

    loss, new_params, new_state = jax.lax.cond(diverged, frozen, train, (params, opt_state))
    avg = smooth * avg + (1 - smooth) * loss
    smoothed = avg / (1 - jnp.power(jnp.float32(smooth), k.astype(jnp.float32) + 1))
    best = jnp.where(diverged, best, jnp.fmin(best, smoothed))
    now = ~jnp.isfinite(smoothed) | (smoothed > best + (diverge_factor - 1) * jnp.abs(best))
    record = lambda x: jnp.where(diverged, jnp.nan, x)
    out = (record(loss), record(smoothed), diverged | now)
    return (new_params, new_state, avg, best, diverged | now), out

  @jax.jit
  def run(params):
    carry = (params, tx.init(params), jnp.float32(0.0), jnp.float32(jnp.inf), jnp.bool_(False))
    ks = jnp.arange(num_steps, dtype=jnp.int32)
    _, (losses, smoothed, flags) = jax.lax.scan(step, carry, ks)
    diverged_at = jnp.where(jnp.any(flags), jnp.argmax(flags), num_steps).astype(jnp.int32)
    lrs = jax.vmap(schedule)(ks)
    return LRRangeTestResult(lrs, losses, smoothed, _suggest(lrs, smoothed, diverged_at,
                                                             suggestion), diverged_at)

  return run(params)
