"""DoG and DoWG: learning-rate-free step sizes from the distance travelled (optax.contrib's).

Both scale the whole update by one step size built from global norms: the largest distance of the
params from their initial value over the (weighted) sum of squared gradient norms. The per-array
variant is `gradtx.scale_by_distance_over_gradients`; the arithmetic differs, so these are
separate primitives.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, tree
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule, identity
from gradtx.combine import chain
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "DoGState",
    "DoWGState",
    "dog",
    "dowg",
    "scale_by_dog",
    "scale_by_dowg",
]

_INIT_STEP_TAGS = ("distance", "learning_rate", "heuristic")


def _check_params(fn: str, updates: Any, params: Any, init_params: Any) -> None:
  if params is None:
    raise _checks.missing_params_error(fn)
  _checks.check_same_structure(fn, "updates", updates, "params", params)
  _checks.check_same_structure(fn, "params", params, "state.init_params", init_params)


class DoGState(NamedTuple):
  r"""State of `scale_by_dog` (optax's `DoGState`).

  Attributes:
    is_init_step: bool scalar, True before the first update.
    init_params: :math:`x_0`, the initial params.
    max_dist: :math:`\bar r_t`, the largest distance from :math:`x_0` so far (a scalar).
    sum_sq_norm_grads: :math:`\sum_{i \le t} \|g_i\|^2` (a scalar).
  """

  is_init_step: jax.Array  # bool scalar
  init_params: Any
  max_dist: jax.Array  # scalar, the params' lowest dtype
  sum_sq_norm_grads: jax.Array  # scalar, the params' lowest dtype


def scale_by_dog(init_step: tuple[str, Any], eps: Any = 1e-8) -> GradientTransformation:
  r"""Scales the updates by the Distance-over-Gradients step size (DoG, global norms).

  The step size is the largest distance of the params from where they started over the root of
  the sum of all squared gradient norms: it grows while the params travel and shrinks as
  gradients accumulate, with no learning rate to tune.

  .. math::
      \bar r_t = \max(\bar r_{t-1}, \|x_t - x_0\|), \quad
      G_t = G_{t-1} + \|g_t\|^2, \quad
      \eta_t = \frac{\bar r_t}{\sqrt{G_t + \epsilon}}, \quad u_t = \eta_t g_t

  with :math:`\epsilon` = `eps` and :math:`\bar r_0` from `init_step`.

  Args:
    init_step: a pair `(tag, value)` with `value > 0`: `("distance", r)` sets
      :math:`\bar r_0 = r`; `("heuristic", a)` sets :math:`\bar r_0 = a (1 + \|x_0\|)` (so
      `init` needs the real params); `("learning_rate", e)` makes the first step size `e`.
    eps: :math:`\epsilon \ge 0`, added to the sum of squared norms; a float or a scalar array.

  Returns:
    A `GradientTransformation` with state `DoGState(is_init_step, init_params, max_dist,
    sum_sq_norm_grads)`; `update` needs `params`. (optax keeps this primitive private.)

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_dog(("distance", 2.0), eps=0.0)
    >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))[0].tolist()
    [1.2000000476837158, 1.600000023841858]

  References:
    Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
    Schedule", ICML 2023. https://arxiv.org/abs/2302.12022
  """
  fn = "contrib.scale_by_dog"
  if not isinstance(init_step, (tuple, list)) or len(init_step) != 2:
    raise TypeError(f"gradtx.{fn}: init_step must be a pair (tag, value) with tag one of "
                    f"{_INIT_STEP_TAGS}, got {init_step!r}.")
  init_step_type, init_step_value = init_step
  _checks.check_choice(fn, "init_step", init_step_type, _INIT_STEP_TAGS)
  _checks.check_scalar(fn, "init_step", init_step_value, low=0, low_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)

  def init_fn(params):
    params_dtype = tree.dtype(params, "lowest")  # no promotion of the updates (as optax)
    if init_step_type == "distance":
      r_epsilon = init_step_value
    elif init_step_type == "heuristic":
      r_epsilon = init_step_value * (1 + tree.norm(params))  # r_eps = a (1 + ||x_0||)
    else:
      r_epsilon = 0.0
    return DoGState(
        is_init_step=jnp.asarray(True),
        init_params=params,
        max_dist=jnp.asarray(r_epsilon, dtype=params_dtype),
        sum_sq_norm_grads=jnp.asarray(0.0, dtype=params_dtype),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _check_params(fn, updates, params, state.init_params)
    dist = tree.norm(tree.sub(state.init_params, params))  # ||x_t - x_0||
    max_dist = jnp.maximum(state.max_dist, dist).astype(state.max_dist.dtype)  # \bar r_t
    sum_sq_norm_grads = (state.sum_sq_norm_grads + tree.norm(updates, squared=True)).astype(
        state.sum_sq_norm_grads.dtype)  # G_t = G_{t-1} + ||g_t||^2
    learning_rate = max_dist / jnp.sqrt(
        sum_sq_norm_grads + _checks.as_dtype(eps, sum_sq_norm_grads))  # eta_t
    if init_step_type == "learning_rate":
      learning_rate = jnp.where(state.is_init_step,
                                _checks.as_dtype(init_step_value, learning_rate), learning_rate)
    new_updates = tree.scale(learning_rate, updates)  # u_t = eta_t g_t
    return tree.cast_like(new_updates, updates), DoGState(
        is_init_step=jnp.asarray(False),
        init_params=state.init_params,
        max_dist=max_dist,
        sum_sq_norm_grads=sum_sq_norm_grads,
    )

  return GradientTransformation(init_fn, update_fn)


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[str, Any] = ("heuristic", 1e-6),
    eps: Any = 1e-8,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
) -> GradientTransformation:
  r"""Distance over Gradients (DoG): SGD with a learning-rate-free step size.

  `chain(add_decayed_weights(weight_decay, mask) (if weight_decay is not None),
  scale_by_dog(init_step, eps), scale_by_learning_rate(learning_rate))`; see `scale_by_dog` for
  the equation (:math:`x_{t+1} = x_t - \text{lr}\,\eta_t g_t`). The authors recommend averaging
  the iterates.

  Args:
    learning_rate: a multiplier of DoG's step size (1.0: none); a float, array or schedule.
    init_step: `(tag, value)` with tag `"distance"`, `"learning_rate"` or `"heuristic"` (see
      `scale_by_dog`); the suggested heuristic value is 1e-6 (1e-4 with batch norm).
    eps: added to the sum of squared gradient norms.
    weight_decay: decoupled weight decay, added to the gradients before DoG (None: none); a
      float, array or schedule.
    mask: which params `weight_decay` applies to: a pytree of bools or a callable.

  Returns:
    A `GradientTransformation`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.dog()
    >>> params = jnp.array([1.0, 2.0, 3.0])
    >>> u, _ = tx.update(2 * params, tx.init(params), params)
    >>> bool(jnp.all(jnp.abs(u) < 1e-4))
    True

  References:
    Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
    Schedule", ICML 2023. https://arxiv.org/abs/2302.12022
  """
  _checks.check_scalar("contrib.dog", "learning_rate", learning_rate, schedule=True)
  return chain(
      add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
      scale_by_dog(init_step, eps),
      scale_by_learning_rate(learning_rate),
  )


class DoWGState(NamedTuple):
  r"""State of `scale_by_dowg` (optax's `DoWGState`).

  Attributes:
    init_params: :math:`x_0`, the initial params.
    weighted_sq_norm_grads: :math:`v_t = \sum_{i \le t} \bar r_i^2 \|g_i\|^2` (a scalar).
    estim_sq_dist: :math:`\bar r_t^2`, the largest squared distance from :math:`x_0` (a scalar).
  """

  init_params: Any
  weighted_sq_norm_grads: jax.Array  # scalar, the params' lowest dtype
  estim_sq_dist: jax.Array  # scalar, the params' lowest dtype


def scale_by_dowg(init_estim_sq_dist: Any = None, eps: Any = 1e-4) -> GradientTransformation:
  r"""Scales the updates by the Distance-over-Weighted-Gradients step size (DoWG).

  Like DoG, but the squared gradient norms are weighted by the squared distance estimate when
  they are summed, which makes the method adapt to the smoothness of the objective.

  .. math::
      \bar r_t^2 = \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), \quad
      v_t = v_{t-1} + \bar r_t^2 \|g_t\|^2, \quad
      \eta_t = \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}, \quad u_t = \eta_t g_t

  with :math:`\epsilon` = `eps` and :math:`\bar r_0^2` = `init_estim_sq_dist` (`eps` if None).

  Args:
    init_estim_sq_dist: :math:`\bar r_0^2 > 0`, the initial guess of the squared distance to
      the solution; None uses `eps`. A float or a scalar array.
    eps: :math:`\epsilon > 0`, added to the denominator; a float or a scalar array.

  Returns:
    A `GradientTransformation` with state `DoWGState(init_params, weighted_sq_norm_grads,
    estim_sq_dist)`; `update` needs `params`. (optax keeps this primitive private.)

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_dowg(init_estim_sq_dist=1.0, eps=1e-6)
    >>> u, _ = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))
    >>> [round(float(x), 4) for x in u]
    [0.6, 0.8]

  References:
    Khaled, Mishchenko & Jin, "DoWG Unleashed: An Efficient Universal Parameter-Free
    Gradient Descent Method", NeurIPS 2023. https://arxiv.org/abs/2305.16284
  """
  fn = "contrib.scale_by_dowg"
  _checks.check_scalar(fn, "init_estim_sq_dist", init_estim_sq_dist, low=0, low_open=True,
                       optional=True)
  _checks.check_scalar(fn, "eps", eps, low=0, low_open=True)

  def init_fn(params):
    params_dtype = tree.dtype(params, "lowest")  # no promotion of the updates (as optax)
    init_sq_dist = eps if init_estim_sq_dist is None else init_estim_sq_dist
    return DoWGState(
        init_params=params,
        estim_sq_dist=jnp.asarray(init_sq_dist, dtype=params_dtype),
        weighted_sq_norm_grads=jnp.asarray(0.0, dtype=params_dtype),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _check_params(fn, updates, params, state.init_params)
    curr_sq_dist = tree.norm(tree.sub(state.init_params, params), squared=True)
    estim_sq_dist = jnp.maximum(state.estim_sq_dist, curr_sq_dist).astype(
        state.estim_sq_dist.dtype)  # \bar r_t^2 = max(\bar r_{t-1}^2, ||x_t - x_0||^2)
    step_sq_norm_grads = tree.norm(updates, squared=True)
    weighted_sq_norm_grads = (estim_sq_dist * step_sq_norm_grads
                              + state.weighted_sq_norm_grads).astype(
                                  state.weighted_sq_norm_grads.dtype)  # v_t
    learning_rate = estim_sq_dist / (
        jnp.sqrt(weighted_sq_norm_grads) + _checks.as_dtype(eps, estim_sq_dist))  # eta_t
    new_updates = tree.scale(learning_rate, updates)  # u_t = eta_t g_t
    return tree.cast_like(new_updates, updates), state._replace(
        estim_sq_dist=estim_sq_dist,
        weighted_sq_norm_grads=weighted_sq_norm_grads,
    )

  return GradientTransformation(init_fn, update_fn)


def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: Any = None,
    eps: Any = 1e-4,
    weight_decay: ScalarOrSchedule | None = None,
    mask: MaskOrFn = None,
) -> GradientTransformation:
  r"""Distance over Weighted Gradients (DoWG): SGD with a learning-rate-free step size.

  `chain(add_decayed_weights(weight_decay, mask) (if weight_decay is not None),
  scale_by_dowg(init_estim_sq_dist, eps), scale_by_learning_rate(learning_rate))`:

  .. math::
      \bar r_t^2 = \max(\bar r_{t-1}^2, \|x_t - x_0\|^2), \quad
      v_t = v_{t-1} + \bar r_t^2 \|g_t\|^2, \qquad
      x_{t+1} = x_t - \eta_t \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon} g_t

  with :math:`\eta_t` = `learning_rate`, :math:`\epsilon` = `eps`, :math:`\bar r_0^2` =
  `init_estim_sq_dist` (`eps` if None) and :math:`g_t` the gradient plus `weight_decay` times
  the params when given.

  Args:
    learning_rate: a multiplier of DoWG's step size (1.0: none); a float, array or schedule.
    init_estim_sq_dist: initial guess of the squared distance to the solution (None: `eps`).
    eps: added to the denominator of the step size.
    weight_decay: decoupled weight decay, added to the gradients before DoWG (None: none); a
      float, array or schedule.
    mask: which params `weight_decay` applies to: a pytree of bools or a callable.

  Returns:
    A `GradientTransformation`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.dowg()
    >>> params = jnp.array([1.0, 2.0, 3.0])
    >>> u, _ = tx.update(2 * params, tx.init(params), params)
    >>> round(float(u[0]), 6)
    -0.002669

  References:
    Khaled, Mishchenko & Jin, "DoWG Unleashed: An Efficient Universal Parameter-Free
    Gradient Descent Method", NeurIPS 2023. https://arxiv.org/abs/2305.16284
  """
  _checks.check_scalar("contrib.dowg", "learning_rate", learning_rate, schedule=True)
  return chain(
      add_decayed_weights(weight_decay, mask) if weight_decay is not None else identity(),
      scale_by_dowg(init_estim_sq_dist, eps),
      scale_by_learning_rate(learning_rate),
  )
