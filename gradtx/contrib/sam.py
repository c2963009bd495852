"""Sharpness-Aware Minimization as a wrapper of two optimizers (optax.contrib's `sam`).

The adversarial optimizer takes `sync_period - 1` ascent steps from the outer params; the outer
optimizer then steps from the cached outer params with the gradient at the perturbed point.
gradtx's adaptive SAM (`gradtx.asam`) is this wrapper with an adaptive ascent step.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, GradientTransformationExtraArgs
from gradtx.update import apply_updates

__all__ = [
    "SAMState",
    "sam",
]


class SAMState(NamedTuple):
  """State of `sam` (optax's class).

  Attributes:
    steps_since_sync: adversarial steps taken since the last outer update (int32).
    opt_state: the outer optimizer's state.
    adv_state: the adversarial optimizer's state.
    cache: the outer params (None in opaque mode).
  """

  steps_since_sync: jax.Array
  opt_state: Any
  adv_state: Any
  cache: Any | None


def _check_transformation(fn: str, name: str, tx: Any) -> None:
  if not isinstance(tx, GradientTransformation):
    raise TypeError(f"gradtx.{fn}: {name} must be a GradientTransformation, got "
                    f"{type(tx).__name__}.")


def _pick(pred: jax.Array, if_true: Any, if_false: Any) -> Any:
  """`if_true` where `pred`, else `if_false`, leaf by leaf (a `where`, so a non-finite value in
  the branch not taken does not leak, as it would through optax's `p * a + (1 - p) * b`)."""
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), if_true, if_false)


def sam(
    optimizer: GradientTransformation,
    adv_optimizer: GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> GradientTransformationExtraArgs:
  r"""SAM (Sharpness-Aware Minimization): descend with the gradient at an adversarial point.

  SAM minimises :math:`\max_{\|\epsilon\| \le \rho} L(w + \epsilon)`: it first ascends with
  `adv_optimizer` (for the paper, `chain(contrib.normalize(), sgd(rho))`, whose update is
  negated into an ascent step), then steps `optimizer` from the cached outer params with the
  gradient taken at the perturbed params. Every `sync_period` calls, one is an outer step.

  .. math::
     \hat\epsilon = \rho\, g / \|g\|_2, \qquad
     w_{t+1} = w_t - \eta\, \nabla L(w_t + \hat\epsilon)

  In the default transparent mode each `update` call takes one step (adversarial steps are
  visible to the caller's loop). With `opaque_mode=True` one call runs the `sync_period - 1`
  adversarial steps internally and needs `grad_fn=` (`grad_fn(params, i)` -> gradient at the
  i-th adversarial step), averaged over `batch_axis_name` (a `pmap` axis) when given.

  Args:
    optimizer: the outer optimizer.
    adv_optimizer: the adversarial optimizer (its updates are negated into ascent steps).
    sync_period: calls per outer step, >= 1 (default 2: one ascent, one descent).
    reset_state: re-initialise `adv_optimizer`'s state after each outer step.
    opaque_mode: run the adversarial steps inside one `update` (see above).
    batch_axis_name: opaque mode only: the axis to `pmean` the adversarial gradients over.

  Returns:
    A `GradientTransformationExtraArgs` with state `SAMState`; `update` needs `params`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> adv = gradtx.chain(gradtx.contrib.normalize(), gradtx.sgd(0.1))
    >>> tx = gradtx.contrib.sam(gradtx.sgd(0.5), adv)
    >>> p = jnp.asarray([3.0, 4.0]); s = tx.init(p)
    >>> u, s = tx.update(2 * p, s, p); (p + u).round(2)  # ascent: p + 0.1 g / |g|
    Array([3.06, 4.08], dtype=float32)

  References:
    Foret, Kleiner, Mobahi & Neyshabur, `Sharpness-Aware Minimization for Efficiently
    Improving Generalization <https://arxiv.org/abs/2010.01412>`_, ICLR 2021.
  """
  fn = "contrib.sam"
  _check_transformation(fn, "optimizer", optimizer)
  _check_transformation(fn, "adv_optimizer", adv_optimizer)
  _checks.check_int(fn, "sync_period", sync_period, 1,
                    " sync_period counts the calls per outer step (2: one ascent, one descent).")
  _checks.check_bool(fn, "reset_state", reset_state)
  _checks.check_bool(fn, "opaque_mode", opaque_mode)
  if batch_axis_name is not None and not isinstance(batch_axis_name, str):
    raise TypeError(f"gradtx.{fn}: batch_axis_name must be a str or None, got "
                    f"{type(batch_axis_name).__name__} {batch_axis_name!r}.")
  sync_period = int(sync_period)

  def call(tx, updates, state, params, extra_args):
    if _checks.accepts_extra_args(tx.update):
      return tx.update(updates, state, params, **extra_args)
    return tx.update(updates, state, params)

  def init_fn(params):
    return SAMState(steps_since_sync=jnp.zeros([], jnp.int32), opt_state=optimizer.init(params),
                    adv_state=adv_optimizer.init(params),
                    cache=None if opaque_mode else params)

  def transparent_update_fn(updates, state, params=None, **extra_args):
    extra_args.pop("grad_fn", None)
    if params is None:
      raise _checks.missing_params_error(fn)
    first_step = state.steps_since_sync == 0
    last_step = state.steps_since_sync == sync_period - 1
    adv_updates, adv_state = call(adv_optimizer, updates, state.adv_state, params, extra_args)
    adv_updates = jax.tree.map(lambda x: -x, adv_updates)  # ascent: w + rho g / |g|
    opt_updates, opt_state = call(optimizer, updates, state.opt_state, state.cache, extra_args)
    # From the perturbed params back to the cache, then the outer step: w_{t+1} - (w + eps).
    opt_updates = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_updates)
    cache = _pick(first_step, params, state.cache)
    updates = _pick(last_step, opt_updates, adv_updates)
    if reset_state:
      adv_state = _pick(last_step, adv_optimizer.init(params), adv_state)
    else:
      adv_state = _pick(last_step, state.adv_state, adv_state)
    opt_state = _pick(last_step, opt_state, state.opt_state)
    return updates, SAMState(steps_since_sync=(state.steps_since_sync + 1) % sync_period,
                             opt_state=opt_state, adv_state=adv_state, cache=cache)

  def opaque_update_fn(updates, state, params=None, *, grad_fn: Callable | None = None,
                       **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    if grad_fn is None:
      raise _checks.missing_extra_arg_error(
          fn, "grad_fn", "update(grads, state, params, grad_fn=jax.grad(lambda p, i: "
          "loss(p, batch))) (opaque_mode=True)")
    adv_params, adv_updates, adv_state = params, updates, state.adv_state
    for i in range(sync_period - 1):  # a static, bounded loop of ascent steps
      adv_updates, adv_state = call(adv_optimizer, adv_updates, adv_state, adv_params,
                                    extra_args)
      adv_updates = jax.tree.map(lambda x: -x, adv_updates)
      adv_params = apply_updates(adv_params, adv_updates)
      adv_updates = grad_fn(adv_params, i)
      if batch_axis_name is not None:
        adv_updates = jax.lax.pmean(adv_updates, axis_name=batch_axis_name)
    if reset_state:
      adv_state = adv_optimizer.init(params)
    updates, opt_state = call(optimizer, adv_updates, state.opt_state, params, extra_args)
    return updates, SAMState(steps_since_sync=jnp.zeros([], jnp.int32), opt_state=opt_state,
                             adv_state=adv_state, cache=None)

  return GradientTransformationExtraArgs(
      init_fn, opaque_update_fn if opaque_mode else transparent_update_fn)
