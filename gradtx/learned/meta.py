"""Meta-training a learned optimizer on a task family: truncated backpropagation through unrolls
(Andrychowicz et al. 2016) or (persistent) evolution strategies, vmapped over problem instances;
and `evaluate`, the loss curves of any optimizer on held-out instances."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx import base
from gradtx import update as _update
from gradtx.learned import es as _es
from gradtx.learned.lstm import LearnedOptimizer
from gradtx.learned.tasks import Task

__all__ = ["MetaTrainResult", "evaluate", "meta_train"]


class MetaTrainResult(NamedTuple):
  """What `meta_train` returns.

  Attributes:
    meta_params: the trained meta-parameters.
    meta_opt_state: the meta-optimizer's final state (to resume training).
    history: the meta-loss of every meta-step, a NumPy array of shape ``(num_steps,)``.
  """

  meta_params: Any
  meta_opt_state: Any
  history: np.ndarray


def _unroll_fn(optimizer: LearnedOptimizer, task: Task, unroll_length: int,
               second_derivatives: bool) -> Callable:
  """``(meta_params, (params, opt_state, problem), key) -> (meta-loss, new inner state)`` for one
  task instance: `unroll_length` steps, the meta-loss the mean of f(theta_1..theta_T)."""

  def unroll(meta_params, inner, key):
    tx = optimizer.transformation(meta_params)
    params, opt_state, problem = inner
    keys = jax.random.split(key, unroll_length + 1)

    def body(carry, k):
      params, opt_state = carry
      loss, grad = jax.value_and_grad(task.loss)(params, problem, k)
      if not second_derivatives:  # the paper's choice: d(grad_t)/d(phi) = 0 (no Hessian terms)
        grad = jax.lax.stop_gradient(grad)
      updates, opt_state = tx.update(grad, opt_state, params)
      return (_update.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), keys[:-1])
    final = task.loss(params, problem, keys[-1])
    # L(phi) = (1/T) sum_{t=1..T} f(theta_t): the losses after each of this unroll's updates.
    meta_loss = (jnp.sum(losses[1:]) + final) / unroll_length
    return meta_loss, (params, opt_state, problem)

  return unroll


def meta_train(optimizer: LearnedOptimizer, task: Task, meta_optimizer: base.GradientTransformation,
               *, key: jax.Array, num_steps: int, unroll_length: int = 20, horizon: int = 100,
               num_tasks: int = 8, estimator: str = "tbptt", second_derivatives: bool = False,
               sigma: float = 0.01, meta_params: Any = None, meta_opt_state: Any = None,
               callback: Callable[[int, float], None] | None = None) -> MetaTrainResult:
  r"""Meta-trains ``optimizer`` on ``task`` by truncated unrolls.

  Each meta-step runs ``unroll_length`` inner steps of ``num_tasks`` problem instances (vmapped,
  one jitted function) from where the previous unroll stopped, estimates the gradient of the
  meta-loss

  .. math::
    L(\phi) = \frac{1}{T}\sum_{t=1}^{T} f(\theta_t),\quad
    \theta_{t+1} = \theta_t + g_t(\nabla f(\theta_t), \phi)

  with respect to :math:`\phi`, and applies ``meta_optimizer``. After ``horizon`` inner steps the
  instances are resampled (new problems, new starting points). ``estimator="tbptt"``
  backpropagates through the unroll (the paper); ``"es"`` and ``"pes"`` use antithetic
  (persistent) evolution strategies (`es_gradient`, one pair per instance).

  Args:
    optimizer: a `LearnedOptimizer` (`lstm_optimizer`, `mlp_optimizer`).
    task: a `Task` family.
    meta_optimizer: a `GradientTransformation` for the meta-parameters (the paper: Adam).
    key: a PRNG key.
    num_steps: meta-steps, >= 1.
    unroll_length: inner steps per truncation, >= 1 (the paper: 20).
    horizon: inner steps before the instances are resampled, >= unroll_length (the paper: 100).
    num_tasks: problem instances per meta-step (ES/PES: antithetic pairs), >= 1.
    estimator: ``"tbptt"``, ``"es"`` or ``"pes"``.
    second_derivatives: backpropagate through the task's gradient too (tbptt only); False drops
      :math:`\partial\nabla_t/\partial\phi`, as the paper does.
    sigma: the ES/PES perturbation scale, > 0.
    meta_params: where to start (default: ``optimizer.init_meta_params(key)``).
    meta_opt_state: the meta-optimizer's state to resume from (default: a fresh one).
    callback: called as ``callback(step, meta_loss)`` after every meta-step (e.g. progress).

  Returns:
    A `MetaTrainResult` with ``.meta_params``, ``.meta_opt_state`` and ``.history``.

  Example:
    >>> import jax, gradtx
    >>> from gradtx import learned
    >>> res = learned.meta_train(learned.lstm_optimizer(4, 1), learned.quadratic_task(3),
    ...                          gradtx.adam(1e-3), key=jax.random.key(0), num_steps=2,
    ...                          unroll_length=3, horizon=6, num_tasks=2)
    >>> res.history.shape
    (2,)

  References:
    Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016; Vicol et al., `Unbiased gradient
    estimation in unrolled computation graphs with persistent evolution strategies
    <https://arxiv.org/abs/2112.13835>`_, ICML 2021.
  """
  fn = "learned.meta_train"
  if not isinstance(optimizer, LearnedOptimizer):
    raise TypeError(f"gradtx.{fn}: optimizer must be a LearnedOptimizer (lstm_optimizer(), "
                    f"mlp_optimizer()), got {type(optimizer).__name__}.")
  if not isinstance(task, Task):
    raise TypeError(f"gradtx.{fn}: task must be a learned.Task, got {type(task).__name__}.")
  if not isinstance(meta_optimizer, base.GradientTransformation):
    raise TypeError(f"gradtx.{fn}: meta_optimizer must be a GradientTransformation (e.g. "
                    f"gradtx.adam(1e-3)), got {type(meta_optimizer).__name__}.")
  _checks.check_int(fn, "num_steps", num_steps, 1)
  _checks.check_int(fn, "unroll_length", unroll_length, 1)
  _checks.check_int(fn, "horizon", horizon, unroll_length,
                    hint=" (an inner run must hold at least one unroll)")
  _checks.check_int(fn, "num_tasks", num_tasks, 1)
  _checks.check_choice(fn, "estimator", estimator, ("tbptt", "es", "pes"))
  _checks.check_bool(fn, "second_derivatives", second_derivatives)
  _checks.check_scalar(fn, "sigma", sigma, low=0.0, low_open=True)

  key, k_init = jax.random.split(key)
  if meta_params is None:
    meta_params = optimizer.init_meta_params(k_init)
  else:
    optimizer.transformation(meta_params)  # checks the structure, names what is expected
  if meta_opt_state is None:
    meta_opt_state = meta_optimizer.init(meta_params)
  unroll = _unroll_fn(optimizer, task, unroll_length, second_derivatives)

  @jax.jit
  def fresh(meta_params, key):
    k_problem, k_params = jax.random.split(key)
    problems = jax.vmap(task.sample)(jax.random.split(k_problem, num_tasks))
    params = jax.vmap(task.init_params)(jax.random.split(k_params, num_tasks), problems)
    opt_state = jax.vmap(optimizer.transformation(meta_params).init)(params)
    inner = (params, opt_state, problems)
    return _es.es_init(inner, meta_params) if estimator != "tbptt" else inner

  def apply(meta_params, meta_opt_state, grad):
    updates, meta_opt_state = meta_optimizer.update(grad, meta_opt_state, meta_params)
    return _update.apply_updates(meta_params, updates), meta_opt_state

  @jax.jit
  def tbptt_step(meta_params, meta_opt_state, inner, key):
    def batch_loss(mp):
      keys = jax.random.split(key, num_tasks)
      losses, new_inner = jax.vmap(unroll, in_axes=(None, 0, 0))(mp, inner, keys)
      return jnp.mean(losses), new_inner

    (loss, inner), grad = jax.value_and_grad(batch_loss, has_aux=True)(meta_params)
    meta_params, meta_opt_state = apply(meta_params, meta_opt_state, grad)
    return meta_params, meta_opt_state, inner, loss

  @jax.jit
  def es_step(meta_params, meta_opt_state, state, key):
    grad, loss, state = _es.es_gradient(unroll, meta_params, state, key, sigma=sigma,
                                        persistent=estimator == "pes")
    meta_params, meta_opt_state = apply(meta_params, meta_opt_state, grad)
    return meta_params, meta_opt_state, state, loss

  step_fn = tbptt_step if estimator == "tbptt" else es_step
  history = np.zeros((num_steps,), np.float32)
  inner, t = None, horizon
  for i in range(num_steps):  # a bounded Python loop over jitted meta-steps
    key, k_reset, k_step = jax.random.split(key, 3)
    if t + unroll_length > horizon:  # resample the instances (and restart PES's accumulators)
      inner, t = fresh(meta_params, k_reset), 0
    meta_params, meta_opt_state, inner, loss = step_fn(meta_params, meta_opt_state, inner, k_step)
    t += unroll_length
    history[i] = float(loss)
    if callback is not None:
      callback(i, history[i])
  return MetaTrainResult(meta_params, meta_opt_state, history)


def evaluate(tx: base.GradientTransformation, task: Task, *, key: jax.Array, num_steps: int,
             num_tasks: int = 1) -> jax.Array:
  """Loss curves of a transformation on ``num_tasks`` fresh instances of ``task``.

  Runs ``num_steps`` steps of ``params <- params + tx.update(grad)`` on each instance (vmapped, a
  `lax.scan`) and records :math:`f(\\theta_0), \\dots, f(\\theta_T)`. Works for any transformation
  (a learned one or e.g. ``gradtx.adam(1e-2)``); call it under ``jit`` or ``vmap`` (over learning
  rates) as usual.

  Args:
    tx: the transformation to run (its updates are added to the params).
    task: a `Task`.
    key: a PRNG key (the same key gives the same instances for every optimizer).
    num_steps: inner steps, >= 1.
    num_tasks: instances, >= 1.

  Returns:
    An array of shape ``(num_tasks, num_steps + 1)``.

  Example:
    >>> import jax, gradtx
    >>> from gradtx import learned
    >>> curves = learned.evaluate(gradtx.sgd(0.01), learned.quadratic_task(3),
    ...                           key=jax.random.key(0), num_steps=5, num_tasks=2)
    >>> curves.shape
    (2, 6)

  References:
    Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016. (the loss curves of its Figure 2)
  """
  _checks.check_int("learned.evaluate", "num_steps", num_steps, 1)
  _checks.check_int("learned.evaluate", "num_tasks", num_tasks, 1)
  k_problem, k_params, k_run = jax.random.split(key, 3)

  def run(kp, ki, kr):
    problem = task.sample(kp)
    params = task.init_params(ki, problem)

    def body(carry, k):
      params, state = carry
      loss, grad = jax.value_and_grad(task.loss)(params, problem, k)
      updates, state = tx.update(grad, state, params)
      return (_update.apply_updates(params, updates), state), loss

    keys = jax.random.split(kr, num_steps + 1)
    (params, _), losses = jax.lax.scan(body, (params, tx.init(params)), keys[:-1])
    return jnp.append(losses, task.loss(params, problem, keys[-1]))

  split = lambda k: jax.random.split(k, num_tasks)
  return jax.vmap(run)(split(k_problem), split(k_params), split(k_run))
