"""AdEMAMix and Simplified AdEMAMix: Adam with a mixture of a fast and a slow momentum."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx._trees import map_skip_none
from gradtx.base import GradientTransformation, MaskOrFn, ScalarOrSchedule
from gradtx.combine import chain
from gradtx.numerics import safe_increment
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.tree.casting import cast_like, zeros_like
from gradtx.tree.moments import (
  bias_correction,
  moment_like,
  update_moment,
  update_moment_per_elem_norm,
)

__all__ = [
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ademamix",
    "scale_by_ademamix",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]

_UNIT = dict(low=0.0, high=1.0, high_open=True)  # [0, 1)


class ScaleByAdemamixState(NamedTuple):
  """State of `scale_by_ademamix`, with optax's fields.

  Attributes:
    count: int32 scalar, the step count of the fast EMA and the second moment.
    count_m2: int32 scalar, the step count of the slow EMA and its schedules.
    m1: the fast EMA of the gradients, shaped like the params.
    m2: the slow EMA of the gradients, shaped like the params.
    nu: the EMA of the squared gradients, shaped like the params.
  """

  count: jax.Array  # int32 scalar
  count_m2: jax.Array  # int32 scalar
  m1: Any
  m2: Any
  nu: Any


def scale_by_ademamix(
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Adam whose numerator adds a slow, un-debiased EMA of the gradients (AdEMAMix).

  A fast EMA reacts to recent gradients, a slow one (:math:`\beta_3` close to 1) keeps using
  gradients from tens of thousands of steps ago; the slow one is not bias-corrected so that it
  fills slowly (Pagliardini, Ablin & Grangier 2024, Algorithm 1).

  .. math::
      m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1 - \beta_1) g_t, \quad
      m^{(2)}_t = \beta_{3,t} m^{(2)}_{t-1} + (1 - \beta_{3,t}) g_t, \quad
      \nu_t = \beta_2 \nu_{t-1} + (1 - \beta_2) g_t^2,

      u_t = \frac{m^{(1)}_t / (1 - \beta_1^t) + \alpha_t m^{(2)}_t}
      {\sqrt{\nu_t / (1 - \beta_2^t) + \bar\epsilon} + \epsilon}

  with :math:`\beta_{3,t}` = `b3(t - 1)` and :math:`\alpha_t` = `alpha(t - 1)` for schedules (the
  paper's warm-ups), :math:`\epsilon` = `eps`, :math:`\bar\epsilon` = `eps_root`.

  Args:
    b1: :math:`\beta_1` in [0, 1).
    b2: :math:`\beta_2` in [0, 1).
    b3: :math:`\beta_3` in [0, 1]; a float, array or schedule.
    alpha: :math:`\alpha \ge 0`; a float, array or schedule.
    eps: :math:`\epsilon \ge 0`.
    eps_root: :math:`\bar\epsilon \ge 0`.
    mu_dtype: dtype of `m1`, `m2` (default: the params').
    nu_dtype: dtype of `nu`; None means `mu_dtype`, as optax (which keeps `nu` in `mu_dtype`).

  Returns:
    A `GradientTransformation` with state `ScaleByAdemamixState(count, count_m2, m1, m2, nu)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_ademamix(alpha=0.0)
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older", ICLR 2025.
    https://arxiv.org/abs/2409.03137
  """
  fn = "scale_by_ademamix"
  _checks.check_scalar(fn, "b1", b1, **_UNIT)
  _checks.check_scalar(fn, "b2", b2, **_UNIT)
  _checks.check_scalar(fn, "b3", b3, low=0.0, high=1.0, schedule=True)
  _checks.check_scalar(fn, "alpha", alpha, low=0.0, schedule=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0.0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)
  if nu_dtype is None:
    nu_dtype = mu_dtype

  def init_fn(params):
    return ScaleByAdemamixState(
        count=jnp.zeros([], jnp.int32), count_m2=jnp.zeros([], jnp.int32),
        m1=zeros_like(params, mu_dtype), m2=zeros_like(params, mu_dtype),
        nu=zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    for name in ("m1", "m2", "nu"):
      _checks.check_same_structure(fn, "updates", updates, f"state.{name}", getattr(state, name))
    b3_t = _checks.resolve(b3, state.count_m2, fn=fn, name="b3")
    alpha_t = _checks.resolve(alpha, state.count_m2, fn=fn, name="alpha")
    m1 = update_moment(updates, state.m1, b1, 1)  # fast EMA
    m2 = update_moment(updates, state.m2, b3_t, 1)  # slow EMA, never debiased
    nu = update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count_inc = safe_increment(state.count)
    m1_hat = bias_correction(m1, b1, count_inc)
    nu_hat = bias_correction(nu, b2, count_inc)
    out = map_skip_none(  # (m1_hat + alpha m2) / (sqrt(nu_hat + eps_root) + eps)
        lambda g, a, b, v: (a + _checks.as_dtype(alpha_t, b) * b) / (jnp.sqrt(v + eps_root)
                                                                    + eps),
        updates, m1_hat, m2, nu_hat)
    return cast_like(out, updates), ScaleByAdemamixState(
        count=count_inc, count_m2=safe_increment(state.count_m2),
        m1=moment_like(m1, state.m1), m2=moment_like(m2, state.m2), nu=moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)


def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn | Callable | None = None,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""AdEMAMix (Pagliardini et al.) with decoupled weight decay, as optax.

  Builds `chain(scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
  add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))`. Best for long
  runs; the paper warms `b3` and `alpha` up with schedules.

  .. math::
      m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1 - \beta_1) g_t, \quad
      m^{(2)}_t = \beta_{3,t} m^{(2)}_{t-1} + (1 - \beta_{3,t}) g_t, \quad
      \nu_t = \beta_2 \nu_{t-1} + (1 - \beta_2) g_t^2,

      \theta_t = \theta_{t-1} - \eta_t \Big(\frac{m^{(1)}_t / (1 - \beta_1^t) + \alpha_t m^{(2)}_t}
      {\sqrt{\nu_t / (1 - \beta_2^t) + \bar\epsilon} + \epsilon} + \lambda \theta_{t-1}\Big)

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1, \beta_2` = `b1, b2`,
  :math:`\beta_{3,t}` = `b3`, :math:`\alpha_t` = `alpha` (schedules of the 0-based step),
  :math:`\epsilon` = `eps`, :math:`\bar\epsilon` = `eps_root` and :math:`\lambda` =
  `weight_decay` (on the masked leaves).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, b3, alpha, eps, eps_root, mu_dtype, nu_dtype: as `scale_by_ademamix`.
    weight_decay: >= 0; a float, array or schedule.
    mask: which params are decayed (pytree of bools or a callable).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.ademamix(0.01)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older", ICLR 2025.
    https://arxiv.org/abs/2409.03137
  """
  return chain(
      scale_by_ademamix(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root,
                        mu_dtype=mu_dtype, nu_dtype=nu_dtype),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
  """State of `scale_by_simplified_ademamix`, with optax's fields.

  Attributes:
    t: int32 scalar, the step count.
    m: the accumulated momentum, shaped like the params.
    n: the EMA of the squared gradients, shaped like the params.
  """

  t: jax.Array  # int32 scalar
  m: Any
  n: Any


def scale_by_simplified_ademamix(
    b1: float = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""One undamped momentum plus :math:`\alpha` times the gradient, over Adam's denominator.

  Morwani et al. show that AdEMAMix's two EMAs reduce to one heavy-ball sum (no :math:`1 -
  \beta_1` damping) mixed with the current gradient; :math:`\alpha = 0` is Adam up to a
  rescaling of the learning rate and :math:`\beta_1` (Morwani et al. 2025, Sec. 4).

  .. math::
      m_t = \beta_1 m_{t-1} + g_t, \quad
      n_t = g_t^2 + \beta_2 (n_{t-1} - g_t^2), \qquad
      u_t = \frac{m_t + \alpha_t g_t}{\sqrt{n_t / (1 - \beta_2^t) + \bar\epsilon} + \epsilon}

  with :math:`\alpha_t` = `alpha(t - 1)` for a schedule, :math:`\epsilon` = `eps`,
  :math:`\bar\epsilon` = `eps_root` (:math:`n_t` is the EMA of :math:`g^2` written as optax's
  lerp).

  Args:
    b1: :math:`\beta_1` in [0, 1).
    b2: :math:`\beta_2` in [0, 1).
    alpha: :math:`\alpha \ge 0`; a float, array or schedule.
    eps: :math:`\epsilon \ge 0`.
    eps_root: :math:`\bar\epsilon \ge 0`.
    mu_dtype: dtype of `m` (default: the params'). Not in optax.
    nu_dtype: dtype of `n` (default: the params'). Not in optax.

  Returns:
    A `GradientTransformation` with state `ScaleBySimplifiedAdEMAMixState(t, m, n)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_simplified_ademamix()
    >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0].round(4).tolist()
    [1.0, -1.0]

  References:
    Morwani et al., "Connections between Schedule-Free Optimizers, AdEMAMix, and Accelerated
    SGD Variants", 2025. https://arxiv.org/abs/2502.02431
  """
  fn = "scale_by_simplified_ademamix"
  _checks.check_scalar(fn, "b1", b1, **_UNIT)
  _checks.check_scalar(fn, "b2", b2, **_UNIT)
  _checks.check_scalar(fn, "alpha", alpha, low=0.0, schedule=True)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  _checks.check_scalar(fn, "eps_root", eps_root, low=0.0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_fn(params):
    return ScaleBySimplifiedAdEMAMixState(
        t=jnp.zeros([], jnp.int32), m=zeros_like(params, mu_dtype),
        n=zeros_like(params, nu_dtype))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.m", state.m)
    _checks.check_same_structure(fn, "updates", updates, "state.n", state.n)
    alpha_t = _checks.resolve(alpha, state.t, fn=fn, name="alpha")
    # optax turns the scalars into (float32) arrays before multiplying (tree.add_scale).
    b1_, b2_, alpha_ = jnp.asarray(b1), jnp.asarray(b2), jnp.asarray(alpha_t)
    m = map_skip_none(lambda g, m_: g + b1_ * m_, updates, state.m)  # m_t = g_t + b1 m_{t-1}
    n = map_skip_none(lambda g, n_: g * g + b2_ * (n_ - g * g),  # n_t = g^2 + b2 (n_{t-1} - g^2)
             updates, state.n)
    t = safe_increment(state.t)
    n_hat = bias_correction(n, b2, t)
    out = map_skip_none(lambda g, m_, v: (m_ + alpha_ * g) / (jnp.sqrt(v + eps_root) + eps),
               updates, m, n_hat)
    return cast_like(out, updates), ScaleBySimplifiedAdEMAMixState(
        t=t, m=moment_like(m, state.m), n=moment_like(n, state.n))

  return GradientTransformation(init_fn, update_fn)


def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: MaskOrFn | Callable | None = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Simplified AdEMAMix (Morwani et al.) with decoupled weight decay, as optax.

  Builds `chain(scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
  add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))`:

  .. math::
      m_t = \beta_1 m_{t-1} + g_t, \quad
      n_t = g_t^2 + \beta_2 (n_{t-1} - g_t^2), \qquad
      \theta_t = \theta_{t-1} - \eta_t \Big(\frac{m_t + \alpha_t g_t}
      {\sqrt{n_t / (1 - \beta_2^t) + \bar\epsilon} + \epsilon} + \lambda \theta_{t-1}\Big)

  with :math:`\eta_t` = `learning_rate`, :math:`\beta_1` = `b1`, :math:`\beta_2` = `b2`,
  :math:`\alpha_t` = `alpha` (a schedule of the 0-based step), :math:`\epsilon` = `eps`,
  :math:`\bar\epsilon` = `eps_root` and :math:`\lambda` = `weight_decay` (on the masked leaves).

  Args:
    learning_rate: a float, scalar array or schedule.
    b1, b2, alpha, eps, eps_root, mu_dtype, nu_dtype: as `scale_by_simplified_ademamix`.
    weight_decay: >= 0; a float, array or schedule.
    mask: which params are decayed (pytree of bools or a callable).

  Returns:
    A `GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.simplified_ademamix(0.01)
    >>> tx.update(jnp.ones(1), tx.init(jnp.zeros(1)), jnp.zeros(1))[0].tolist()[0] < 0
    True

  References:
    Morwani et al., "Connections between Schedule-Free Optimizers, AdEMAMix, and Accelerated
    SGD Variants", 2025. https://arxiv.org/abs/2502.02431
  """
  return chain(
      scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps, eps_root=eps_root,
                                   mu_dtype=mu_dtype, nu_dtype=nu_dtype),
      add_decayed_weights(weight_decay, mask),
      scale_by_learning_rate(learning_rate),
  )
