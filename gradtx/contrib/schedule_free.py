"""Schedule-Free learning (optax.contrib's `schedule_free`, `_sgd`, `_adamw`, `_eval_params`).

Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less Scheduled", NeurIPS 2024.
Every quantity is updated on every step (the averaging weight included): there is no periodic
branch, so a `vmap`ped learning-rate sweep runs the same arithmetic as a single run.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    with_extra_args_support,
)
from gradtx.combine import chain
from gradtx.numerics import safe_increment
from gradtx.optimizers.sgd import sgd
from gradtx.schedules.polynomial import warmup_constant_schedule
from gradtx.transforms.adaptive import scale_by_rms
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.tree.casting import dtype as tree_dtype

__all__ = [
    "ScheduleFreeState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]


class ScheduleFreeState(NamedTuple):
  """State of `schedule_free`, with optax's fields.

  Attributes:
    b1: float scalar, the interpolation weight (kept for `schedule_free_eval_params`).
    weight_sum: float scalar, the sum of the averaging weights.
    step_count: int32 scalar, the 1-based step.
    max_lr: float scalar, the largest learning rate so far.
    base_optimizer_state: the wrapped optimizer's state.
    z: the base iterate, shaped like the params.
  """

  b1: jax.Array  # float scalar (params' lowest dtype)
  weight_sum: jax.Array  # float scalar
  step_count: jax.Array  # int32 scalar, starts at 1
  max_lr: jax.Array  # float scalar
  base_optimizer_state: Any
  z: Any


def schedule_free_eval_params(state: Any, params: Any) -> Any:
  r"""The averaged iterate :math:`x_t` of `schedule_free`, where to evaluate the model.

  The optimizer's params are the gradient points :math:`y_t = (1-\beta_1) z_t + \beta_1 x_t`;
  this inverts that interpolation: :math:`x_t = (y_t - (1-\beta_1) z_t) / \beta_1`.

  Args:
    state: a `ScheduleFreeState` (or any state with fields `b1` and `z`).
    params: the current params :math:`y_t`.

  Returns:
    The evaluation params, shaped like `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.schedule_free_sgd(0.5)
    >>> p = jnp.ones(2); s = tx.init(p)
    >>> gradtx.contrib.schedule_free_eval_params(s, p).tolist()
    [1.0, 1.0]

  References:
    Defazio et al., "The Road Less Scheduled", NeurIPS 2024. https://arxiv.org/abs/2405.15682
  """
  b1 = getattr(state, "b1", None)
  z = getattr(state, "z", None)
  if b1 is None or z is None:
    raise ValueError("gradtx.contrib.schedule_free_eval_params: state must be a "
                     f"ScheduleFreeState (with fields b1 and z), got {type(state).__name__}.")
  _checks.check_same_structure("schedule_free_eval_params", "params", params, "state.z", z)
  return jax.tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, z)  # x = (y-(1-b1)z)/b1


def _check_common(fn: str, b1: Any, weight_lr_power: Any, state_dtype: Any) -> Any:
  # The method divides by b1 (optax: "must be strictly positive").
  _checks.check_scalar(fn, "b1", b1, low=0.0, high=1.0, low_open=True)
  _checks.check_scalar(fn, "weight_lr_power", weight_lr_power)
  return _checks.check_dtype(fn, "state_dtype", state_dtype)


def schedule_free(
    base_optimizer: GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Makes `base_optimizer` schedule-free: interpolation and averaging replace its momentum.

  The base optimizer (without momentum) moves the iterate :math:`z`; the params the gradient is
  taken at are :math:`y`, an interpolation between :math:`z` and the running weighted average
  :math:`x` of the :math:`z`'s, which is what to evaluate (`schedule_free_eval_params`). No
  decaying learning-rate schedule is needed (a warmup is still recommended).

  .. math::
      y_t = (1-\beta_1) z_t + \beta_1 x_t, \quad
      z_{t+1} = z_t + \Delta_t \;(\text{the base optimizer's update at } y_t), \\
      c_{t+1} = \frac{\gamma_{max,t}^{r}}{\sum_{i\le t} \gamma_{max,i}^{r}}, \quad
      x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}

  with :math:`\beta_1` = `b1`, :math:`r` = `weight_lr_power` and :math:`\gamma_{max,t}` the
  largest `learning_rate` up to step t. The update returned is :math:`y_{t+1} - y_t`.

  Args:
    base_optimizer: the optimizer that moves :math:`z`, without momentum (e.g. `adam(lr, b1=0)`).
    learning_rate: the base optimizer's learning rate (float, scalar array or schedule, with a
      warmup but no decay); it only sets the averaging weights here.
    b1: :math:`\beta_1` in (0, 1].
    weight_lr_power: :math:`r`, the power of the learning rate in the averaging weights.
    state_dtype: dtype of :math:`z` (None: the params' dtype).

  Returns:
    A `GradientTransformationExtraArgs` with state `ScheduleFreeState`; `update` needs `params`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.schedule_free(gradtx.sgd(0.5), 0.5)
    >>> p = jnp.ones(2)
    >>> tx.update(jnp.ones(2), tx.init(p), p)[0].tolist()
    [-0.5, -0.5]

  References:
    Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less Scheduled", NeurIPS
    2024. https://arxiv.org/abs/2405.15682
  """
  fn = "contrib.schedule_free"
  base_optimizer = with_extra_args_support(base_optimizer)
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  state_dtype = _check_common(fn, b1, weight_lr_power, state_dtype)

  def init_fn(params):
    params_dtype = tree_dtype(params, "lowest")
    z = jax.tree.map(lambda t: jnp.array(t, dtype=state_dtype, copy=True), params)
    return ScheduleFreeState(
        b1=jnp.asarray(b1, dtype=params_dtype),
        weight_sum=jnp.zeros([], dtype=params_dtype),
        step_count=jnp.ones([], dtype=jnp.int32),
        max_lr=jnp.zeros([], dtype=params_dtype),
        base_optimizer_state=base_optimizer.init(params),
        z=z,
    )

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "params", params, "state.z", state.z)
    lr = _checks.resolve(learning_rate, state.step_count, fn=fn, name="learning_rate")
    base_updates, base_state = base_optimizer.update(
        updates, state.base_optimizer_state, params, **extra_args)
    out, weight_sum, max_lr, z = _averaging_step(
        lr, state.weight_sum, state.max_lr, params, state.z, base_updates, updates)
    return out, ScheduleFreeState(
        b1=state.b1,
        weight_sum=weight_sum,
        step_count=safe_increment(state.step_count),
        max_lr=max_lr,
        base_optimizer_state=base_state,
        z=z,
    )

  # One compiled kernel, also when `update` runs eagerly: XLA rewrites `/ b1` as `* (1 / b1)`,
  # `max_lr ** 2` as a product and contracts multiply-adds, so op-by-op execution would round
  # y_{t+1} - y_t (a difference of param-sized values) differently from the jitted update.
  # Under an outer `jit` this inlines to the same program as optax's (bit-identical).
  @jax.jit
  def _averaging_step(lr, weight_sum, max_lr, params, z_old, base_updates, grads):
    # The state's dtype (optax casts only a schedule's value; a constant is weakly typed, so
    # casting it too changes no bit, and keeps the state's dtype under a vmapped f32 sweep).
    lr = jnp.asarray(lr, dtype=max_lr.dtype)
    max_lr = jnp.maximum(max_lr, lr)
    weight = max_lr**weight_lr_power  # gamma_max^r
    next_total_weight = weight_sum + weight
    ck = jnp.where(  # c_{t+1} = weight / sum of weights (NaN kept, 0/0 -> 0)
        jnp.logical_or(jnp.isnan(weight), jnp.isnan(next_total_weight)),
        jnp.full(weight.shape, jnp.nan),
        jnp.nan_to_num(weight / next_total_weight, nan=0.0, posinf=jnp.inf),
    )
    z = jax.tree.map(  # z_{t+1} = z_t + Delta_t
        lambda zi, ui: jnp.asarray(zi + ui).astype(jnp.asarray(zi).dtype), z_old, base_updates)
    prev_x = jax.tree.map(lambda yi, zi: (yi - (1.0 - b1) * zi) / b1, params, z_old)  # x_t
    x = jax.tree.map(lambda xi, zi: (1.0 - ck) * xi + ck * zi, prev_x, z)  # x_{t+1}
    new_params = jax.tree.map(lambda xi, zi: b1 * xi + (1.0 - b1) * zi, x, z)  # y_{t+1}
    out = jax.tree.map(lambda npi, pi, g: (npi - pi).astype(jnp.asarray(g).dtype),
                       new_params, params, grads)
    return out, next_total_weight.astype(weight_sum.dtype), max_lr, z

  return GradientTransformationExtraArgs(init_fn, update_fn)


def _warmup(learning_rate: Any, warmup_steps: Any) -> Any:
  if warmup_steps is None:
    return learning_rate
  return warmup_constant_schedule(init_value=0, peak_value=learning_rate,
                                  warmup_steps=warmup_steps)


def schedule_free_sgd(
    learning_rate: Any = 1.0,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
    *,
    mask: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Schedule-Free SGD: SGD's step inside Defazio et al.'s schedule-free averaging.

  Builds `schedule_free(chain(add_decayed_weights(weight_decay, mask), sgd(lr)), lr, b1,
  weight_lr_power, state_dtype)`, with a linear warmup of `warmup_steps`.

  See `schedule_free` for the equations; the base step is
  :math:`\Delta_t = -\gamma_t (g_t + \lambda y_t)` (the decay :math:`\lambda` is applied at the
  gradient point and multiplied by the learning rate, as in PyTorch).

  Args:
    learning_rate: :math:`\gamma`, a float, scalar array, or a schedule when `warmup_steps`
      is None.
    warmup_steps: length of the linear warmup from 0 (None: no warmup).
    b1: :math:`\beta_1` in (0, 1].
    weight_decay: :math:`\lambda \ge 0` (float, array or schedule), or None for no decay.
    weight_lr_power: power of the learning rate in the averaging weights.
    state_dtype: dtype of :math:`z` (None: the params' dtype).
    mask: which params are decayed (pytree of bools or function of the params). Not in optax.

  Returns:
    A `GradientTransformationExtraArgs` with state `ScheduleFreeState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.schedule_free_sgd(0.5)
    >>> p = jnp.ones(2)
    >>> tx.update(jnp.ones(2), tx.init(p), p)[0].tolist()
    [-0.5, -0.5]

  References:
    Defazio et al., "The Road Less Scheduled", NeurIPS 2024. https://arxiv.org/abs/2405.15682
  """
  fn = "contrib.schedule_free_sgd"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  if warmup_steps is not None:
    _checks.check_int(fn, "warmup_steps", warmup_steps, 0)
    if callable(learning_rate):
      raise ValueError(f"gradtx.{fn}: learning_rate must be a number with warmup_steps (the "
                       "warmup makes it a schedule), got a schedule; pass warmup_steps=None and "
                       "put the warmup in the schedule.")
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0.0, schedule=True, optional=True)
  _check_common(fn, b1, weight_lr_power, state_dtype)
  if mask is not None and weight_decay is None:
    raise ValueError(f"gradtx.{fn}: mask needs a weight_decay, got weight_decay=None.")
  learning_rate = _warmup(learning_rate, warmup_steps)
  base = (sgd(learning_rate) if weight_decay is None else
          chain(add_decayed_weights(weight_decay, mask), sgd(learning_rate)))
  return schedule_free(base, learning_rate=learning_rate, b1=b1,
                       weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(
    learning_rate: Any = 0.0025,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
    *,
    mask: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Schedule-Free AdamW: AdamW's step inside Defazio et al.'s schedule-free averaging.

  Builds `schedule_free(chain(scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
  add_decayed_weights(weight_decay, mask), scale_by_learning_rate(lr)), lr, b1,
  weight_lr_power, state_dtype)`, with a linear warmup of `warmup_steps`.

  See `schedule_free` for the equations; the base step is Adam without momentum,
  :math:`\Delta_t = -\gamma_t (g_t / (\sqrt{\hat v_t} + \epsilon) + \lambda y_t)` (the
  memory-saving `scale_by_rms` form of `scale_by_adam(b1=0)`, as optax).

  Args:
    learning_rate: :math:`\gamma`, a float, scalar array, or a schedule when `warmup_steps`
      is None.
    warmup_steps: length of the linear warmup from 0 (None: no warmup).
    b1: :math:`\beta_1` in (0, 1], the interpolation weight (not Adam's momentum).
    b2: decay of the second-moment average, in [0, 1).
    eps: :math:`\epsilon \ge 0`, added outside the square root.
    weight_decay: :math:`\lambda \ge 0`, decoupled (float, array or schedule).
    weight_lr_power: power of the learning rate in the averaging weights.
    state_dtype: dtype of :math:`z` (None: the params' dtype).
    mask: which params are decayed (pytree of bools or function of the params). Not in optax.

  Returns:
    A `GradientTransformationExtraArgs` with state `ScheduleFreeState`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.schedule_free_adamw(0.5)
    >>> p = jnp.ones(2)
    >>> [round(u, 4) for u in tx.update(jnp.ones(2), tx.init(p), p)[0].tolist()]
    [-0.5, -0.5]

  References:
    Defazio et al., "The Road Less Scheduled", NeurIPS 2024. https://arxiv.org/abs/2405.15682
  """
  fn = "contrib.schedule_free_adamw"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  if warmup_steps is not None:
    _checks.check_int(fn, "warmup_steps", warmup_steps, 0)
    if callable(learning_rate):
      raise ValueError(f"gradtx.{fn}: learning_rate must be a number with warmup_steps (the "
                       "warmup makes it a schedule), got a schedule; pass warmup_steps=None and "
                       "put the warmup in the schedule.")
  _checks.check_scalar(fn, "b2", b2, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "weight_decay", weight_decay, low=0.0, schedule=True)
  _check_common(fn, b1, weight_lr_power, state_dtype)
  learning_rate = _warmup(learning_rate, warmup_steps)
  base = chain(
      scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )
  return schedule_free(base, learning_rate=learning_rate, b1=b1,
                       weight_lr_power=weight_lr_power, state_dtype=state_dtype)
