"""Adaptive per-coordinate scaling: Adagrad, RMSprop, Adadelta and the Adam family.

Each transformation divides the updates element-wise by a running estimate of the gradients'
magnitude, so every coordinate gets its own step size. They return deltas in the direction of the
gradient; follow them with `scale_by_learning_rate` to descend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, numerics, tree
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation, ScalarOrSchedule

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByNadamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_nadam",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
]

_UNIT = dict(low=0, high=1, high_open=True)  # [0, 1)
_CLOSED_UNIT = dict(low=0, high=1)  # [0, 1]
_NON_NEGATIVE = dict(low=0)  # [0, inf)


def _cast(h: Any, like: jax.Array) -> Any:
  return _checks.as_dtype(h, like)


def _moment_state(**moments: tuple[Any, Any]) -> dict[str, Any]:
  """Casts each new moment back to the dtype of the old one (`None` leaves keep the old)."""
  return {k: tree.moment_like(new, old) for k, (new, old) in moments.items()}


# --------------------------------------------------------------------------------------------
# Adagrad, RMSprop, centered RMSprop, Adadelta.
# --------------------------------------------------------------------------------------------


class ScaleByRssState(NamedTuple):
  """State of `scale_by_rss`: the running sum of squared gradients.

  Attributes:
    sum_of_squares: :math:`G_t`, the running sum of squared gradients.
  """

  sum_of_squares: Any


def scale_by_rss(initial_accumulator_value: float = 0.1, eps: float = 1e-7, *,
                 nu_dtype: Any = None) -> GradientTransformation:
  r"""Divides the updates by the root of the sum of all past squared gradients (Adagrad).

  Coordinates with large or frequent gradients get small steps and rare ones large steps. The sum
  only grows, so the effective step size only shrinks (Ruder 2016, Sec. 4.3).

  .. math::
      G_t = G_{t-1} + g_t^2, \qquad
      u_t = \begin{cases} g_t / \sqrt{G_t + \epsilon} & G_t > 0 \\ 0 & G_t = 0 \end{cases}

  with :math:`G_0` = `initial_accumulator_value` and :math:`\epsilon` = `eps`.

  Args:
    initial_accumulator_value: :math:`G_0 \ge 0`; a float or a scalar array.
    eps: :math:`\epsilon \ge 0`, added inside the square root; a float or a scalar array.
    nu_dtype: dtype of `sum_of_squares` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByRssState(sum_of_squares)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
    >>> tx.update(jnp.array([-3.0, 0.0]), tx.init(jnp.zeros(2)))[0].tolist()
    [-1.0, 0.0]

  References:
    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 12, 2011. https://jmlr.org/papers/v12/duchi11a.html
    Ruder, "An overview of gradient descent optimization algorithms", arXiv 2016, Sec. 4.3.
    https://arxiv.org/abs/1609.04747
  """
  fn = "scale_by_rss"
  _checks.check_scalar(fn, "initial_accumulator_value", initial_accumulator_value,
                       **_NON_NEGATIVE)
  _checks.check_scalar(fn, "eps", eps, **_NON_NEGATIVE)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByRssState(
        sum_of_squares=tree.full_like(params, initial_accumulator_value, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(
        fn, "updates", updates, "state.sum_of_squares", state.sum_of_squares)
    sum_of_squares = map_skip_none(lambda g, s: numerics.abs_sq(g) + s, updates, state.sum_of_squares)
    out = map_skip_none(lambda g, s: jnp.where(s > 0, jax.lax.rsqrt(s + _cast(eps, s)), 0.0) * g,
               updates, sum_of_squares)
    return tree.cast_like(out, updates), ScaleByRssState(
        **_moment_state(sum_of_squares=(sum_of_squares, state.sum_of_squares)))

  return GradientTransformation(init_fn, update_fn)


class ScaleByRmsState(NamedTuple):
  r"""State of `scale_by_rms` without bias correction: the EMA of squared gradients.

  Attributes:
    nu: :math:`\nu_t`, the EMA of the squared gradients.
  """

  nu: Any


class ScaleByRmsWithCountState(NamedTuple):
  r"""State of `scale_by_rms(bias_correction=True)`: the step count and the EMA of squares.

  Attributes:
    count: int32 scalar, the step count.
    nu: :math:`\nu_t`, the EMA of the squared gradients.
  """

  count: jax.Array  # int32 scalar
  nu: Any


def _rms_scale(n: jax.Array, eps: Any, eps_in_sqrt: bool) -> jax.Array:
  if eps_in_sqrt:
    return jax.lax.rsqrt(n + _cast(eps, n))
  return 1 / (jnp.sqrt(n) + _cast(eps, n))


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Divides the updates by the root of an exponential moving average of their squares (RMSprop).

  Like Adagrad, but old gradients are forgotten, so the step size does not decay to zero
  (Tieleman & Hinton 2012; Ruder 2016, Sec. 4.5).

  .. math::
      \nu_t = \rho \nu_{t-1} + (1 - \rho) g_t^2, \quad \hat\nu_t = \nu_t / (1 - \rho^t)
      \text{ (bias\_correction) or } \nu_t, \qquad
      u_t = g_t / \sqrt{\hat\nu_t + \epsilon} \text{ (eps\_in\_sqrt) or }
      g_t / (\sqrt{\hat\nu_t} + \epsilon)

  with :math:`\rho` = `decay`, :math:`\epsilon` = `eps` and :math:`\nu_0` = `initial_scale`.
  `scale_by_rms(b2, eps_in_sqrt=False, bias_correction=True)` equals `scale_by_adam(0, b2)`.

  Args:
    decay: :math:`\rho`, in [0, 1] (in [0, 1) with `bias_correction`); a float or scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    initial_scale: :math:`\nu_0 \ge 0`; a float or a scalar array.
    eps_in_sqrt: add `eps` inside the square root (True, as Tieleman & Hinton) or outside it.
    bias_correction: divide :math:`\nu_t` by :math:`1 - \rho^t` (keeps a step `count`).
    nu_dtype: dtype of `nu` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByRmsState(nu)`, or
    `ScaleByRmsWithCountState(count, nu)` when `bias_correction` is set (a static flag). Unlike
    optax, `decay` = 1 is rejected with `bias_correction` (optax divides by zero).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_rms(decay=0.75, eps=0.0)
    >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0].tolist()
    [2.0]

  References:
    Tieleman & Hinton, "Lecture 6.5 - RMSprop: Divide the gradient by a running average of its
    recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012.
    Ruder, "An overview of gradient descent optimization algorithms", arXiv 2016, Sec. 4.5.
    https://arxiv.org/abs/1609.04747
  """
  fn = "scale_by_rms"
  _checks.check_bool(fn, "eps_in_sqrt", eps_in_sqrt)
  _checks.check_bool(fn, "bias_correction", bias_correction)
  _checks.check_scalar(fn, "decay", decay, **(_UNIT if bias_correction else _CLOSED_UNIT))
  _checks.check_scalar(fn, "eps", eps, **_NON_NEGATIVE)
  _checks.check_scalar(fn, "initial_scale", initial_scale, **_NON_NEGATIVE)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    nu = tree.full_like(params, initial_scale, nu_dtype)
    if bias_correction:
      return ScaleByRmsWithCountState(count=jnp.zeros([], jnp.int32), nu=nu)
    return ScaleByRmsState(nu=nu)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    nu = tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
    if bias_correction:
      count_inc = numerics.safe_increment(state.count)
      nu_hat = tree.bias_correction(nu, decay, count_inc)
    else:
      nu_hat = nu
    out = map_skip_none(lambda g, n: _rms_scale(n, eps, eps_in_sqrt) * g, updates, nu_hat)
    moments = _moment_state(nu=(nu, state.nu))
    if bias_correction:
      return tree.cast_like(out, updates), ScaleByRmsWithCountState(count=count_inc, **moments)
    return tree.cast_like(out, updates), ScaleByRmsState(**moments)

  return GradientTransformation(init_fn, update_fn)


class ScaleByRStdDevState(NamedTuple):
  r"""State of `scale_by_stddev` without bias correction: EMAs of the updates and their squares.

  Attributes:
    mu: :math:`\mu_t`, the EMA of the updates.
    nu: :math:`\nu_t`, the EMA of their squares.
  """

  mu: Any
  nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
  r"""State of `scale_by_stddev(bias_correction=True)`: the step count and both EMAs.

  Attributes:
    count: int32 scalar, the step count.
    mu: :math:`\mu_t`, the EMA of the updates.
    nu: :math:`\nu_t`, the EMA of their squares.
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any


def scale_by_stddev(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Divides the updates by a running estimate of their standard deviation (centered RMSprop).

  RMSprop normalizes by the root mean square; the centered variant subtracts the squared running
  mean first, so a consistent gradient direction is not penalized (Graves 2013, Eq. 38-41).

  .. math::
      \mu_t = \rho \mu_{t-1} + (1 - \rho) g_t, \quad
      \nu_t = \rho \nu_{t-1} + (1 - \rho) g_t^2, \qquad
      u_t = g_t / \sqrt{\hat\nu_t - \hat\mu_t^2 + \epsilon} \text{ (eps\_in\_sqrt) or }
      g_t / (\sqrt{\hat\nu_t - \hat\mu_t^2} + \epsilon)

  with :math:`\hat x_t = x_t / (1 - \rho^t)` under `bias_correction` (else :math:`x_t`),
  :math:`\rho` = `decay`, :math:`\epsilon` = `eps`, :math:`\mu_0 = 0`, :math:`\nu_0` =
  `initial_scale`. With `bias_correction` the first step has :math:`\hat\nu - \hat\mu^2 = 0`.

  Args:
    decay: :math:`\rho`, in [0, 1] (in [0, 1) with `bias_correction`); a float or scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    initial_scale: :math:`\nu_0 \ge 0`; a float or a scalar array.
    eps_in_sqrt: add `eps` inside the square root (True) or outside it.
    bias_correction: divide both EMAs by :math:`1 - \rho^t` (keeps a step `count`).
    mu_dtype: dtype of `mu` (default: the params'). Not in optax.
    nu_dtype: dtype of `nu` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByRStdDevState(mu, nu)`, or
    `ScaleByRStdDevWithCountState(count, mu, nu)` when `bias_correction` is set. Unlike optax,
    `decay` = 1 is rejected with `bias_correction` (optax divides by zero).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_stddev(decay=0.5, eps=0.0)
    >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0].tolist()
    [2.0]

  References:
    Graves, "Generating Sequences With Recurrent Neural Networks", arXiv 2013, Sec. 4.
    https://arxiv.org/abs/1308.0850
  """
  fn = "scale_by_stddev"
  _checks.check_bool(fn, "eps_in_sqrt", eps_in_sqrt)
  _checks.check_bool(fn, "bias_correction", bias_correction)
  _checks.check_scalar(fn, "decay", decay, **(_UNIT if bias_correction else _CLOSED_UNIT))
  _checks.check_scalar(fn, "eps", eps, **_NON_NEGATIVE)
  _checks.check_scalar(fn, "initial_scale", initial_scale, **_NON_NEGATIVE)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    mu = tree.zeros_like(params, mu_dtype)
    nu = tree.full_like(params, initial_scale, nu_dtype)
    if bias_correction:
      return ScaleByRStdDevWithCountState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)
    return ScaleByRStdDevState(mu=mu, nu=nu)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    mu = tree.update_moment(updates, state.mu, decay, 1)
    nu = tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
    if bias_correction:
      count_inc = numerics.safe_increment(state.count)
      mu_hat = tree.bias_correction(mu, decay, count_inc)
      nu_hat = tree.bias_correction(nu, decay, count_inc)
    else:
      mu_hat, nu_hat = mu, nu
    # Clamped: rounding can make nu - mu^2 slightly negative when the variance cancels.
    out = map_skip_none(lambda g, m, n: _rms_scale(jnp.maximum(n - numerics.abs_sq(m), 0), eps,
                                          eps_in_sqrt) * g,
               updates, mu_hat, nu_hat)
    moments = _moment_state(mu=(mu, state.mu), nu=(nu, state.nu))
    if bias_correction:
      return tree.cast_like(out, updates), ScaleByRStdDevWithCountState(count=count_inc,
                                                                         **moments)
    return tree.cast_like(out, updates), ScaleByRStdDevState(**moments)

  return GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
  r"""State of `scale_by_adadelta`: EMAs of the squared gradients and of the squared updates.

  Attributes:
    e_g: :math:`E[g^2]_t`, the EMA of the squared gradients.
    e_x: :math:`E[\Delta x^2]_t`, the EMA of the squared updates.
  """

  e_g: Any
  e_x: Any


def _adadelta_step(rho: Any, eps: Any) -> Any:
  """u = g sqrt((E[dx^2]_t + rho eps) / (rho (E[g^2]_t + eps) + (1 - rho) g^2)), the docstring's
  identity with both square roots merged. The denominator is 0 only when rho = 0 and g = 0, where
  the step is exactly 0 (it is multiplied by g)."""

  def step(g, eg, ex):
    den = _cast(rho, eg) * (eg + _cast(eps, eg)) + _cast(1 - rho, eg) * numerics.abs_sq(g)
    den = jnp.where(den > 0, den, jnp.ones_like(den))
    return g * jnp.sqrt((ex + _cast(rho * eps, ex)) / den).astype(g.dtype)

  return step


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6, *, nu_dtype: Any = None
                      ) -> GradientTransformation:
  r"""Scales the updates by the ratio of the RMS of past updates to the RMS of gradients (Adadelta).

  The numerator carries the units of the parameters, so the result needs no learning rate
  (Zeiler 2012, Algorithm 1; use `scale_by_learning_rate(1.0)` to descend).

  .. math::
      E[g^2]_t = \rho E[g^2]_{t-1} + (1 - \rho) g_t^2, \qquad
      u_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}} g_t, \qquad
      E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1 - \rho) u_t^2

  with :math:`\rho` = `rho` and :math:`\epsilon` = `eps`. These are optax's numbers, computed
  in an order that lets XLA fuse the step without parameter-sized temporaries: with
  :math:`r_t = g_t^2 / (E[g^2]_t + \epsilon)`, the accumulator comes first,
  :math:`E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1 - \rho)(E[\Delta x^2]_{t-1} + \epsilon)
  r_t`, and the step reads it instead of the old one, through the exact identity
  :math:`E[\Delta x^2]_{t-1} + \epsilon = (E[\Delta x^2]_t + \rho\epsilon) / (\rho + (1 - \rho)
  r_t)` (all terms positive: no cancellation). The old accumulator is then dead once the new one
  is written in place, where optax's order makes XLA copy it (and materialise the step) every
  step. Equal to optax's to float rounding (tested).

  Args:
    rho: :math:`\rho` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon > 0` (with 0 every update is 0); a float or a scalar array.
    nu_dtype: dtype of both accumulators `e_g` and `e_x` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByAdaDeltaState(e_g, e_x)`. Differences from
    optax: `eps` = 0 is rejected (optax accepts it and then returns zero updates forever).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_adadelta(rho=0.0, eps=1.0)
    >>> u, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
    >>> print(f"{float(u[0]):.4f}")  # sqrt(0 + 1) / sqrt(1 + 1)
    0.7071

  References:
    Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv 2012.
    https://arxiv.org/abs/1212.5701
  """
  fn = "scale_by_adadelta"
  _checks.check_scalar(fn, "rho", rho, **_UNIT)
  _checks.check_scalar(fn, "eps", eps, low=0, low_open=True)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdaDeltaState(e_g=tree.zeros_like(params, nu_dtype),
                                e_x=tree.zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.e_g", state.e_g)
    _checks.check_same_structure(fn, "updates", updates, "state.e_x", state.e_x)
    e_g = tree.update_moment_per_elem_norm(updates, state.e_g, rho, 2)
    # See the docstring: E[dx^2]_t first, from (E[dx^2]_{t-1} + eps) r_t (no square roots, so
    # nothing shared with the step that XLA would materialise), then the step from E[dx^2]_t.
    e_x = map_skip_none(
        lambda g, eg, ex: (1 - rho) * ((ex + _cast(eps, ex)) * (numerics.abs_sq(g) / (
            eg + _cast(eps, eg)))) + rho * ex,
        updates, e_g, state.e_x)
    out = map_skip_none(_adadelta_step(rho, eps), updates, e_g, e_x)
    return tree.cast_like(out, updates), ScaleByAdaDeltaState(
        **_moment_state(e_g=(e_g, state.e_g), e_x=(e_x, state.e_x)))

  return GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------------------------
# The Adam family: Adam (and its Nesterov form), AdaMax, AMSGrad, NAdam.
# --------------------------------------------------------------------------------------------


def _adam_denominator(v: jax.Array, eps: Any, eps_root: Any) -> jax.Array:
  return jnp.sqrt(v + _cast(eps_root, v)) + _cast(eps, v)


def _check_adam_args(fn: str, b1: Any, b2: Any, eps: Any, eps_root: Any,
                     b1_schedule: bool = False) -> None:
  _checks.check_scalar(fn, "b1", b1, schedule=b1_schedule, **_UNIT)
  _checks.check_scalar(fn, "b2", b2, **_UNIT)
  _checks.check_scalar(fn, "eps", eps, **_NON_NEGATIVE)
  _checks.check_scalar(fn, "eps_root", eps_root, **_NON_NEGATIVE)


class ScaleByAdamState(NamedTuple):
  """State of `scale_by_adam` and `scale_by_adamax`: the step count and the two moments.

  Attributes:
    count: int32 scalar, the step count.
    mu: :math:`m_t`, the first moment.
    nu: :math:`v_t`, the second moment (the infinity norm for AdaMax).
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any


def scale_by_adam(
    b1: ScalarOrSchedule = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by bias-corrected moment estimates (Adam; Kingma & Ba, Algorithm 1).

  RMSprop with momentum: the first moment smooths the direction, the second normalizes each
  coordinate, and dividing by :math:`1 - \beta^t` removes the bias of starting both at zero.

  .. math::
      m_t = \beta_{1,t} m_{t-1} + (1 - \beta_{1,t}) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
      \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \quad
      u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}

  with :math:`\beta_{1,t}` = `b1(t - 1)` for a schedule (else `b1`), :math:`\beta_1` = `b1(0)`,
  :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`, :math:`\epsilon_{root}` = `eps_root`.
  `nesterov` uses the look-ahead :math:`\hat m_t \leftarrow \beta_{1,t+1} m_t / (1 -
  \beta_1^{t+1}) + (1 - \beta_{1,t+1}) g_t / (1 - \beta_1^t)` (Dozat 2016, as optax).
  A schedule `b1 = lambda t: 0.9 * (1 - 1e-8)**t` with `eps=1e-6` is the Theano chapter's Adam
  with b1 decay. Epsilon placement follows optax and Kingma & Ba: `eps` outside the root of the
  bias-corrected :math:`\hat v_t` (as in the Theano Adam), `eps_root` inside; the Theano Adagrad,
  RMSprop and Adadelta put their 1e-6 inside the root instead.

  Args:
    b1: :math:`\beta_1` in [0, 1); a float, a scalar array or a schedule of the step count.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`; a float or a scalar array.
    mu_dtype: dtype of `mu` (default: the params' dtype).
    nesterov: use the Nesterov (NAdam-style) look-ahead on the first moment.
    nu_dtype: dtype of `nu` (default: the params' dtype).

  Returns:
    A `GradientTransformation` with state `ScaleByAdamState(count, mu, nu)`. Differences from
    optax: `nu_dtype` and a schedule `b1` are added; with constant `b1` the numerics are optax's.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_adam()
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    https://arxiv.org/abs/1412.6980
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 Workshop.
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
  """
  fn = "scale_by_adam"
  _check_adam_args(fn, b1, b2, eps, eps_root, b1_schedule=True)
  _checks.check_bool(fn, "nesterov", nesterov)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdamState(count=jnp.zeros([], jnp.int32),
                            mu=tree.zeros_like(params, mu_dtype),
                            nu=tree.zeros_like(params, nu_dtype))

  def resolve_b1(count):
    value = _checks.resolve(b1, count)
    if callable(b1) and jnp.shape(value) != ():
      raise ValueError(f"gradtx.{fn}: the b1 schedule must return a scalar, got shape "
                       f"{jnp.shape(value)}.")
    return value

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    b1_t, b1_0 = resolve_b1(state.count), resolve_b1(jnp.zeros_like(state.count))
    mu = tree.update_moment(updates, state.mu, b1_t, 1)
    nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count_inc = numerics.safe_increment(state.count)
    if nesterov:
      b1_next = resolve_b1(count_inc)
      mu_hat = map_skip_none(
          lambda m, g: _cast(b1_next, m) * m + _cast(1 - b1_next, g) * g,
          tree.bias_correction(mu, b1_0, numerics.safe_increment(count_inc)),
          tree.bias_correction(updates, b1_0, count_inc))
    else:
      mu_hat = tree.bias_correction(mu, b1_0, count_inc)
    nu_hat = tree.bias_correction(nu, b2, count_inc)
    out = map_skip_none(lambda m, v: m / _adam_denominator(v, eps, eps_root), mu_hat, nu_hat)
    return tree.cast_like(out, updates), ScaleByAdamState(
        count=count_inc, **_moment_state(mu=(mu, state.mu), nu=(nu, state.nu)))

  return GradientTransformation(init_fn, update_fn)


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
                    mu_dtype: Any = None, nu_dtype: Any = None) -> GradientTransformation:
  r"""Adam with the infinity norm in place of the second moment (AdaMax; Kingma & Ba, Alg. 2).

  The exponentially weighted maximum of :math:`|g|` is not biased towards zero, so only the first
  moment is bias-corrected (Ruder 2016, Sec. 4.7).

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      \nu_t = \max(\beta_2 \nu_{t-1}, |g_t| + \epsilon), \qquad
      u_t = \frac{m_t}{(1 - \beta_1^t)\, \nu_t}

  with :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps` (inside the max,
  as optax).

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1]; a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    mu_dtype: dtype of `mu` (default: the params'). Not in optax.
    nu_dtype: dtype of `nu`, the infinity norm (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByAdamState(count, mu, nu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_adamax(eps=0.0)
    >>> tx.update(jnp.array([4.0, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Sec. 7.1.
    https://arxiv.org/abs/1412.6980
  """
  fn = "scale_by_adamax"
  _checks.check_scalar(fn, "b1", b1, **_UNIT)
  _checks.check_scalar(fn, "b2", b2, **_CLOSED_UNIT)
  _checks.check_scalar(fn, "eps", eps, **_NON_NEGATIVE)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=tree.zeros_like(params, mu_dtype),
                            nu=tree.zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    count_inc = numerics.safe_increment(state.count)
    mu = tree.update_moment(updates, state.mu, b1, 1)
    nu = tree.update_infinity_moment(updates, state.nu, b2, eps)
    mu_hat = tree.bias_correction(mu, b1, count_inc)
    out = map_skip_none(lambda m, v: m / v, mu_hat, nu)
    return tree.cast_like(out, updates), ScaleByAdamState(
        count=count_inc, **_moment_state(mu=(mu, state.mu), nu=(nu, state.nu)))

  return GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
  r"""State of `scale_by_amsgrad`: the step count, both moments and the running max of `nu`.

  Attributes:
    count: int32 scalar, the step count.
    mu: :math:`m_t`, the first moment.
    nu: :math:`v_t`, the second moment.
    nu_max: :math:`\hat v^{max}_t`, its running maximum.
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any
  nu_max: Any


def scale_by_amsgrad(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adam normalized by the running maximum of the second moment (AMSGrad).

  Taking the maximum keeps every coordinate's effective step size non-increasing, which fixes
  Adam's non-convergence counterexample (Reddi et al. 2018, Algorithm 2).

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
      \hat v^{max}_t = \max(\hat v^{max}_{t-1}, \hat v_t), \qquad
      u_t = \frac{\hat m_t}{\sqrt{\hat v^{max}_t + \epsilon_{root}} + \epsilon}

  with :math:`\hat m_t = m_t / (1 - \beta_1^t)` if `bias_correction_mu` (else :math:`m_t`),
  :math:`\hat v_t = v_t / (1 - \beta_2^t)` if `bias_correction_nu` (else :math:`v_t`).
  Both flags False give the paper's form; both True (default) optax's.

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`; a float or a scalar array.
    mu_dtype: dtype of `mu` (default: the params' dtype).
    bias_correction_mu: bias-correct the first moment.
    bias_correction_nu: bias-correct the second moment before the maximum.
    nu_dtype: dtype of `nu` and `nu_max` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleByAmsgradState(count, mu, nu, nu_max)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_amsgrad()
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
    https://arxiv.org/abs/1904.09237
  """
  fn = "scale_by_amsgrad"
  _check_adam_args(fn, b1, b2, eps, eps_root)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  _checks.check_bool(fn, "bias_correction_mu", bias_correction_mu)
  _checks.check_bool(fn, "bias_correction_nu", bias_correction_nu)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByAmsgradState(count=jnp.zeros([], jnp.int32),
                               mu=tree.zeros_like(params, mu_dtype),
                               nu=tree.zeros_like(params, nu_dtype),
                               nu_max=tree.zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    for name in ("mu", "nu", "nu_max"):
      _checks.check_same_structure(fn, "updates", updates, f"state.{name}", getattr(state, name))
    mu = tree.update_moment(updates, state.mu, b1, 1)
    nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count_inc = numerics.safe_increment(state.count)
    mu_hat = tree.bias_correction(mu, b1, count_inc) if bias_correction_mu else mu
    nu_hat = tree.bias_correction(nu, b2, count_inc) if bias_correction_nu else nu
    nu_max = map_skip_none(lambda v, v_max: jnp.maximum(v_max, v), nu_hat, state.nu_max)
    out = map_skip_none(lambda m, v: m / _adam_denominator(v, eps, eps_root), mu_hat, nu_max)
    return tree.cast_like(out, updates), ScaleByAmsgradState(
        count=count_inc,
        **_moment_state(mu=(mu, state.mu), nu=(nu, state.nu), nu_max=(nu_max, state.nu_max)))

  return GradientTransformation(init_fn, update_fn)


class ScaleByNadamState(NamedTuple):
  r"""State of `scale_by_nadam`: the step count, both moments and the product of the mu_t.

  Attributes:
    count: int32 scalar, the step count.
    mu: :math:`m_t`, the first moment.
    nu: :math:`v_t`, the second moment.
    mu_product: float32 scalar, :math:`\prod_{k \le t} \mu_k`.
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any
  mu_product: jax.Array  # float32 scalar, prod_{k <= t} mu_k


def scale_by_nadam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    momentum_decay: float = 0.004,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Nesterov-accelerated Adam with Dozat's momentum warm-up schedule (NAdam).

  The momentum coefficient :math:`\mu_t` rises from about :math:`\beta_1/2` to :math:`\beta_1`,
  and the update mixes the current gradient with the look-ahead momentum :math:`\mu_{t+1} m_t`
  (Dozat 2016, Algorithm 2; exactly torch.optim.NAdam and Keras' Nadam).

  .. math::
      \mu_t = \beta_1 (1 - \tfrac12 0.96^{t \psi}), \quad
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad \hat v_t = v_t / (1 - \beta_2^t),

      u_t = \Big[\frac{1 - \mu_t}{1 - \prod_{k \le t} \mu_k} g_t
      + \frac{\mu_{t+1}}{1 - \prod_{k \le t+1} \mu_k} m_t\Big]
      \Big/ \big(\sqrt{\hat v_t + \epsilon_{root}} + \epsilon\big)

  with :math:`t = 1, 2, \dots`, :math:`\psi` = `momentum_decay`, :math:`\beta_1` = `b1`,
  :math:`\beta_2` = `b2`, :math:`\epsilon` = `eps`, :math:`\epsilon_{root}` = `eps_root`.
  Unlike optax's `nadam` (Adam's `nesterov=True` form), this has the warm-up schedule.

  Args:
    b1: :math:`\beta_1` in [0, 1); a float or a scalar array.
    b2: :math:`\beta_2` in [0, 1); a float or a scalar array.
    eps: :math:`\epsilon \ge 0`, outside the square root; a float or a scalar array.
    eps_root: :math:`\epsilon_{root} \ge 0`, inside the square root; a float or a scalar array.
    mu_dtype: dtype of `mu` (default: the params' dtype).
    momentum_decay: :math:`\psi \ge 0` (0.004 as torch); a float or a scalar array.
    nu_dtype: dtype of `nu` (default: the params').

  Returns:
    A `GradientTransformation` with state `ScaleByNadamState(count, mu, nu, mu_product)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_nadam(b1=0.0)
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 Workshop.
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
  """
  fn = "scale_by_nadam"
  _check_adam_args(fn, b1, b2, eps, eps_root)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  _checks.check_scalar(fn, "momentum_decay", momentum_decay, **_NON_NEGATIVE)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleByNadamState(count=jnp.zeros([], jnp.int32),
                             mu=tree.zeros_like(params, mu_dtype),
                             nu=tree.zeros_like(params, nu_dtype),
                             mu_product=jnp.ones([], jnp.float32))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    _checks.check_same_structure(fn, "updates", updates, "state.nu", state.nu)
    count_inc = numerics.safe_increment(state.count)
    t = count_inc.astype(jnp.float32)
    mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = (state.mu_product * mu_t).astype(jnp.float32)
    coef_g = (1 - mu_t) / (1 - mu_product)
    coef_m = mu_next / (1 - mu_product * mu_next)
    mu = tree.update_moment(updates, state.mu, b1, 1)
    nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    nu_hat = tree.bias_correction(nu, b2, count_inc)
    out = map_skip_none(
        lambda g, m, v: (_cast(coef_g, g) * g + _cast(coef_m, m) * m)
        / _adam_denominator(v, eps, eps_root), updates, mu, nu_hat)
    return tree.cast_like(out, updates), ScaleByNadamState(
        count=count_inc, mu_product=mu_product,
        **_moment_state(mu=(mu, state.mu), nu=(nu, state.nu)))

  return GradientTransformation(init_fn, update_fn)
