"""Gradient accumulation over several micro-batches: `MultiSteps` and `apply_every`."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.numerics import safe_increment

__all__ = [
    "ApplyEvery",
    "MultiSteps",
    "MultiStepsState",
    "apply_every",
]


class MultiStepsState(NamedTuple):
  """State of `MultiSteps`, with optax's field names.

  Attributes:
    mini_step: int32 scalar, the micro-batches accumulated towards the next update.
    gradient_step: int32 scalar, the emitted updates.
    inner_opt_state: the wrapped optimizer's state.
    acc_grads: the running mean (or sum) of the micro-batch gradients.
    skip_state: what `should_skip_update_fn` returned at the last call (`()` without one).
  """

  mini_step: jax.Array  # int32 scalar
  gradient_step: jax.Array  # int32 scalar
  inner_opt_state: Any
  acc_grads: Any
  skip_state: Any = ()


def _no_skip(updates, gradient_step, params):
  del updates, gradient_step, params
  return jnp.asarray(False, jnp.bool_), ()


class MultiSteps:
  r"""Accumulates gradients over `k` micro-batches, then applies the optimizer once.

  With `k` micro-batches of a big batch, the emitted update equals one step of `opt` on the
  big batch's mean gradient (with `use_grad_mean=True`), at a `k`-th of the memory. Each call to
  `update` adds the micro-batch gradient to a running mean; the `k - 1` intermediate calls
  return zero updates and leave the inner state alone; the `k`-th passes the mean to `opt`,
  returns its update and resets the accumulator. `k` may follow a schedule of the number of
  emitted updates, to grow the batch size during training.

  .. math::
      a_j = a_{j-1} + \frac{g_j - a_{j-1}}{j} \;(\text{mean}) \;\text{or}\; a_{j-1} + g_j
      \;(\text{sum}), \quad
      u = \begin{cases} \mathrm{opt}(a_k) & j = k \\ 0 & j < k \end{cases}

  with :math:`j` = `mini_step + 1` and :math:`k` = `every_k_schedule(gradient_step)`.

  Args:
    opt: the wrapped optimizer (gradtx or optax).
    every_k_schedule: :math:`k \ge 1`, an int or a function from the int32 `gradient_step` to
      the number of micro-batches per update.
    use_grad_mean: average the micro-batch gradients (`True`, Welford's running mean) or sum
      them (`False`).
    should_skip_update_fn: optional `f(updates, gradient_step, params) -> (bool scalar,
      skip_state)`; a micro-batch it flags is dropped as if it never happened, and `skip_state`
      is stored in the state. `optax.skip_not_finite` fits.
    accumulator_dtype: dtype of `acc_grads` (float32, as optax).

  Returns:
    An object with `init`, `update(updates, state, params=None, **extra_args)`,
    `has_updated(state)` and `gradient_transformation()`; its state is
    `MultiStepsState(mini_step, gradient_step, inner_opt_state, acc_grads, skip_state)`.

  Differences from optax: the inner `update` runs only on the emitting micro-batch (under
  `lax.cond`, with the same numbers), instead of on every micro-batch with its result discarded.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.MultiSteps(gradtx.sgd(1.0), every_k_schedule=2)
    >>> state = tx.init(jnp.zeros(1))
    >>> for g in (1.0, 3.0):
    ...   u, state = tx.update(jnp.asarray([g]), state)
    >>> u.tolist(), bool(tx.has_updated(state))
    ([-2.0], True)

  References:
    `optax.MultiSteps` (optax 0.2.8); Welford, "Note on a method for calculating corrected sums
    of squares and products", Technometrics 1962.
  """

  def __init__(
      self,
      opt: GradientTransformation,
      every_k_schedule: int | Callable[[jax.Array], Any],
      use_grad_mean: bool = True,
      should_skip_update_fn: Callable[..., tuple[jax.Array, Any]] | None = None,
      accumulator_dtype: Any = jnp.float32,
  ):
    fn = "MultiSteps"
    if not (callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))):
      raise TypeError(
          f"gradtx.{fn}: opt must be a GradientTransformation with init and update, got "
          f"{type(opt).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
    if callable(every_k_schedule) and not isinstance(every_k_schedule, (jax.Array, np.ndarray)):
      schedule = every_k_schedule
    else:
      if isinstance(every_k_schedule, (bool, np.bool_)) or not isinstance(
          every_k_schedule, (int, np.integer)):
        raise TypeError(
            f"gradtx.{fn}: every_k_schedule must be an int or a schedule (a function of the "
            f"gradient step), got {type(every_k_schedule).__name__} {every_k_schedule!r}.")
      if every_k_schedule < 1:
        raise ValueError(
            f"gradtx.{fn}: every_k_schedule must be >= 1, got {every_k_schedule}. "
            "Hint: every_k_schedule=1 applies opt at every call.")
      k = int(every_k_schedule)
      schedule = lambda step: k  # noqa: E731
    _checks.check_bool(fn, "use_grad_mean", use_grad_mean)
    if should_skip_update_fn is not None and not callable(should_skip_update_fn):
      raise TypeError(
          f"gradtx.{fn}: should_skip_update_fn must be a function or None, got "
          f"{type(should_skip_update_fn).__name__}.")
    self._opt = opt
    self._every_k_schedule = schedule
    self._use_grad_mean = bool(use_grad_mean)
    self._should_skip_update_fn = should_skip_update_fn or _no_skip
    self._accumulator_dtype = _checks.check_dtype(fn, "accumulator_dtype", accumulator_dtype)
    self._pass_extra_args = _checks.accepts_extra_args(opt.update)

  @property
  def inner_opt(self) -> GradientTransformation:
    """The wrapped optimizer."""
    return self._opt

  def init(self, params: Any) -> MultiStepsState:
    """Builds the state: zero counters and accumulator, and the inner optimizer's state."""
    gradient_step = jnp.zeros([], jnp.int32)
    zeros = jax.tree.map(jnp.zeros_like, params)
    _, skip_state = self._should_skip_update_fn(zeros, gradient_step, params)
    return MultiStepsState(
        mini_step=jnp.zeros([], jnp.int32),
        gradient_step=gradient_step,
        inner_opt_state=self._opt.init(params),
        acc_grads=jax.tree.map(
            lambda p: jnp.zeros_like(p, dtype=self._accumulator_dtype), params),
        skip_state=skip_state)

  def update(self, updates: Any, state: MultiStepsState, params: Any = None,
             **extra_args: Any) -> tuple[Any, MultiStepsState]:
    """Accumulates `updates`; returns the inner optimizer's update every `k`-th call, else 0."""
    fn = "MultiSteps"
    _checks.check_same_structure(fn, "updates", updates, "state.acc_grads", state.acc_grads)
    if not self._pass_extra_args:
      extra_args = {}
    k = jnp.asarray(self._every_k_schedule(state.gradient_step)).astype(jnp.int32)
    should_skip, skip_state = self._should_skip_update_fn(updates, state.gradient_step, params)
    should_skip = jnp.asarray(should_skip)
    if (should_skip.dtype, should_skip.shape) != (jnp.bool_, ()):
      raise ValueError(
          f"gradtx.{fn}: should_skip_update_fn must return a bool scalar first, got dtype "
          f"{should_skip.dtype} and shape {should_skip.shape}.")

    n = state.mini_step
    if self._use_grad_mean:
      acc = jax.tree.map(lambda g, a: a + (g - a) / (n + 1), updates, state.acc_grads)
    else:
      acc = jax.tree.map(lambda g, a: g + a, updates, state.acc_grads)
    acc = jax.tree.map(lambda a: a.astype(self._accumulator_dtype), acc)
    grads = jax.tree.map(lambda a, g: a.astype(jnp.asarray(g).dtype), acc, updates)
    emit = n == k - 1
    apply = jnp.logical_and(emit, jnp.logical_not(should_skip))

    def inner_update():
      new_updates, new_inner = self._opt.update(grads, state.inner_opt_state, params,
                                                **extra_args)
      new_inner = jax.tree.map(lambda s, o: jnp.asarray(s).astype(jnp.asarray(o).dtype),
                               new_inner, state.inner_opt_state)
      return new_updates, new_inner

    out_shape = jax.eval_shape(inner_update)[0]

    def hold():
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
      return zeros, state.inner_opt_state

    new_updates, inner_state = jax.lax.cond(apply, inner_update, hold)
    keep = lambda new, old: jax.tree.map(  # noqa: E731
        lambda a, b: jnp.where(should_skip, b, a).astype(jnp.asarray(b).dtype), new, old)
    mini_step = keep(safe_increment(n) % k, n)
    gradient_step = keep(
        jnp.where(emit, safe_increment(state.gradient_step), state.gradient_step),
        state.gradient_step)
    acc_grads = keep(jax.tree.map(lambda a: jnp.where(emit, jnp.zeros_like(a), a), acc),
                     state.acc_grads)
    return new_updates, MultiStepsState(
        mini_step=mini_step, gradient_step=gradient_step, inner_opt_state=inner_state,
        acc_grads=acc_grads, skip_state=skip_state)

  def has_updated(self, state: MultiStepsState) -> jax.Array:
    """Whether the last `update` emitted the inner optimizer's update (a bool scalar)."""
    return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

  def gradient_transformation(self) -> GradientTransformation:
    """This accumulator as a plain `GradientTransformation(init, update)`, for `chain`."""
    return GradientTransformation(init=self.init, update=self.update)


class ApplyEvery(NamedTuple):
  """State of `apply_every` (optax's class name and fields).

  Attributes:
    count: int32 scalar, the number of calls modulo `k`.
    grad_acc: the sum of the updates since the last emitted one.
  """

  count: jax.Array  # int32 scalar
  grad_acc: Any


def apply_every(k: int | jax.Array = 1) -> GradientTransformation:
  r"""Sums the updates of `k` consecutive calls and emits the sum every `k`-th call, else zeros.

  A lighter `MultiSteps`: it sums (not averages) and sits inside a chain, so the members before
  it still update their states at every call; `chain(scale_by_adam(), apply_every(2))` is not
  Adam on a batch twice as large (use `MultiSteps` for that).

  .. math::
      a_t = [t \bmod k \ne 0]\, a_{t-1} + g_t, \qquad
      u_t = [t \bmod k = k - 1]\, a_t

  with :math:`t` the number of previous calls (kept modulo :math:`k` in `count`).

  Args:
    k: :math:`k \ge 1`, an int or an integer scalar array (a tracer under `vmap`).

  Returns:
    A `GradientTransformation` with state `ApplyEvery(count, grad_acc)`; `grad_acc` has the
    params' structure and dtypes.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.apply_every(2)
    >>> state = tx.init(jnp.zeros(1))
    >>> for g in (1.0, 3.0):
    ...   u, state = tx.update(jnp.asarray([g]), state)
    >>> u.tolist(), int(state.count)
    ([4.0], 0)

  References:
    `optax.apply_every` (optax 0.2.8).
  """
  fn = "apply_every"
  _checks.check_int(fn, "k", k, low=1, hint=" Hint: k=1 emits the updates at every call.")

  def init_fn(params):
    return ApplyEvery(count=jnp.zeros([], jnp.int32),
                      grad_acc=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.grad_acc", state.grad_acc)
    c = state.count % k
    acc = c != 0
    emit = c == (k - 1)
    # optax's arithmetic; the casts keep the state's and the updates' dtypes (no-ops when the
    # updates have the params' dtypes).
    grad_acc = jax.tree.map(
        lambda g, ga: ga if g is None else (acc * ga + g).astype(ga.dtype),
        updates, state.grad_acc, is_leaf=is_none)
    new_updates = jax.tree.map(
        lambda g, ga: None if g is None else (emit * ga).astype(jnp.asarray(g).dtype),
        updates, grad_acc, is_leaf=is_none)
    count = (safe_increment(state.count) % k).astype(jnp.int32)
    return new_updates, ApplyEvery(count=count, grad_acc=grad_acc)

  return GradientTransformation(init_fn, update_fn)
