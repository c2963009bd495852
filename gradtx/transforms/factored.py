"""Adafactor's factored second-moment estimate (Shazeer & Stern 2018): a matrix keeps one running
mean of the squared gradients per row and one per column instead of one per entry (optax's
`scale_by_factored_rms`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.numerics import abs_sq, safe_increment

__all__ = [
    "FactoredState",
    "scale_by_factored_rms",
]


def _decay_rate_pow(i: Any, exponent: Any = 0.8) -> jax.Array:
  """Adafactor's second-moment decay schedule, :math:`1 - (t + 1)^{-c}`.

  `t + 1` is formed in float32 (optax adds 1 in int32 first, which wraps to a negative number, and
  NaN updates, at a saturated count); the same value below 2**24 steps.
  """
  t = jnp.asarray(i, jnp.float32) + 1.0
  return 1.0 - t ** (-exponent)


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
                   ) -> tuple[int, int] | None:
  """The two largest axes (second largest first), or None when the leaf is not factored."""
  if not factored or len(shape) < 2:
    return None
  sorted_dims = np.argsort(shape)
  if shape[sorted_dims[-2]] < min_dim_size_to_factor:
    return None
  return int(sorted_dims[-2]), int(sorted_dims[-1])


class FactoredState(NamedTuple):
  """State of `scale_by_factored_rms`, optax's layout.

  Per leaf, a factored leaf keeps `v_row` (the param's shape without its largest axis) and
  `v_col` (without its second largest) and a `(1,)` placeholder in `v`; an unfactored leaf keeps
  its full second moment in `v` and `(1,)` placeholders in `v_row` and `v_col`.

  Attributes:
    count: int32 scalar, the step count.
    v_row: per leaf, the row factor (or a (1,) placeholder).
    v_col: per leaf, the column factor (or a (1,) placeholder).
    v: per leaf, the full second moment of an unfactored leaf (or a (1,) placeholder).
  """

  count: jax.Array  # int32 scalar
  v_row: Any
  v_col: Any
  v: Any


class _Leaf:
  """One leaf's results (a plain object, so `jax.tree.map` does not descend into it)."""

  __slots__ = ("update", "v_row", "v_col", "v")

  def __init__(self, update: Any, v_row: Any, v_col: Any, v: Any):
    self.update, self.v_row, self.v_col, self.v = update, v_row, v_col, v


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: Any = 0.8,
    step_offset: Any = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: Any = 1e-30,
    decay_rate_fn: Callable[[Any, Any], Any] = _decay_rate_pow,
    *,
    nu_dtype: Any = None,
) -> GradientTransformation:
  r"""Scales the updates by a factored estimate of the gradients' root mean square (Adafactor).

  For a matrix :math:`G_t \in \mathbb{R}^{n \times m}` (the two largest axes of a leaf whose
  second largest axis has at least `min_dim_size_to_factor` entries) Adafactor keeps the row
  means :math:`R_t` and column means :math:`C_t` of the squared gradients and rebuilds the
  second moment as their rank-one product, :math:`O(n + m)` memory instead of :math:`O(nm)`.
  Other leaves keep a full second moment, as RMSProp.

  .. math::
      \hat\beta_{2t} = 1 - (t + 1 - t_0)^{-c}, \qquad
      R_t = \hat\beta_{2t} R_{t-1} + (1 - \hat\beta_{2t}) \operatorname{mean}_{cols}(G_t^2 +
      \epsilon_1), \\
      C_t = \hat\beta_{2t} C_{t-1} + (1 - \hat\beta_{2t}) \operatorname{mean}_{rows}(G_t^2 +
      \epsilon_1), \qquad
      U_t = G_t \odot \big(R_t / \operatorname{mean}(R_t)\big)^{-1/2} \otimes C_t^{-1/2}

  and unfactored :math:`V_t = \hat\beta_{2t} V_{t-1} + (1 - \hat\beta_{2t})(G_t^2 +
  \epsilon_1)`, :math:`U_t = G_t V_t^{-1/2}` (Algorithms 4 and 5 without the clipping and the
  relative step, which `adafactor` chains).

  Args:
    factored: whether to factor the second moment of leaves of rank >= 2.
    decay_rate: :math:`c`, the exponent of the decay schedule (> 0); a float or scalar array.
    step_offset: :math:`t_0 \geq 0`, an int: the step at which fine-tuning started.
    min_dim_size_to_factor: an int >= 1; leaves whose second largest axis is smaller keep a
      full second moment.
    epsilon: :math:`\epsilon_1 \geq 0`, added to the squared gradients.
    decay_rate_fn: `f(step, decay_rate)` giving :math:`\hat\beta_{2t}`; the default is
      Adafactor's :math:`1 - (t + 1)^{-c}` (Zhai et al. 2021 cap it, to keep adapting).
    nu_dtype: dtype of the second-moment estimates (default: the params'); not in optax.

  Returns:
    A `GradientTransformation` with state `FactoredState(count, v_row, v_col, v)`; its
    `update` needs `params` (as optax's).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_factored_rms()
    >>> p = jnp.zeros(2)
    >>> tx.update(jnp.asarray([2.0, -2.0]), tx.init(p), p)[0].tolist()
    [1.0, -1.0]

  References:
    Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML 2018.
    https://arxiv.org/abs/1804.04235

    Zhai et al., "Scaling Vision Transformers", CVPR 2022. https://arxiv.org/abs/2106.04560
  """
  fn = "scale_by_factored_rms"
  _checks.check_bool(fn, "factored", factored)
  _checks.check_scalar(fn, "decay_rate", decay_rate, low=0.0)
  _checks.check_int(fn, "step_offset", step_offset, 0)
  _checks.check_int(fn, "min_dim_size_to_factor", min_dim_size_to_factor, 1)
  if isinstance(min_dim_size_to_factor, jax.core.Tracer):
    raise TypeError(f"gradtx.{fn}: min_dim_size_to_factor must be a concrete int (it fixes the "
                    "state's shapes), got a traced value.")
  min_dim_size_to_factor = int(min_dim_size_to_factor)
  _checks.check_scalar(fn, "epsilon", epsilon, low=0.0)
  if not callable(decay_rate_fn):
    raise TypeError(f"gradtx.{fn}: decay_rate_fn must be a callable (step, decay_rate) -> "
                    f"decay, got {type(decay_rate_fn).__name__} {decay_rate_fn!r}.")
  nu_dtype = _checks.check_dtype(fn, "nu_dtype", nu_dtype)

  def init_leaf(param):
    dtype = nu_dtype or param.dtype
    placeholder = jnp.zeros((1,), dtype=dtype)
    dims = _factored_dims(param.shape, factored, min_dim_size_to_factor)
    if dims is not None:
      d1, d0 = dims
      shape_row = tuple(n for i, n in enumerate(param.shape) if i != d0)
      shape_col = tuple(n for i, n in enumerate(param.shape) if i != d1)
      return _Leaf(None, jnp.zeros(shape_row, dtype), jnp.zeros(shape_col, dtype), placeholder)
    return _Leaf(None, placeholder, placeholder, jnp.zeros_like(param, dtype=dtype))

  def state_of(count, leaves):
    is_leaf = lambda x: isinstance(x, _Leaf)
    return FactoredState(
        count=count,
        v_row=jax.tree.map(lambda o: o.v_row, leaves, is_leaf=is_leaf),
        v_col=jax.tree.map(lambda o: o.v_col, leaves, is_leaf=is_leaf),
        v=jax.tree.map(lambda o: o.v, leaves, is_leaf=is_leaf),
    )

  def init_fn(params):
    return state_of(jnp.zeros([], jnp.int32), jax.tree.map(init_leaf, params))

  def update_leaf(grad, v_row, v_col, v, param, decay_rate_t):
    dtype = nu_dtype or param.dtype
    placeholder = jnp.zeros((1,), dtype=dtype)
    dims = _factored_dims(param.shape, factored, min_dim_size_to_factor)
    grad_sqr = abs_sq(grad) + epsilon  # G^2 + eps_1
    if dims is not None:
      d1, d0 = dims
      new_v_row = (decay_rate_t * v_row
                   + (1.0 - decay_rate_t) * jnp.mean(grad_sqr, axis=d0)).astype(dtype)  # R_t
      new_v_col = (decay_rate_t * v_col
                   + (1.0 - decay_rate_t) * jnp.mean(grad_sqr, axis=d1)).astype(dtype)  # C_t
      reduced_d1 = d1 - 1 if d1 > d0 else d1
      row_col_mean = jnp.mean(new_v_row, axis=reduced_d1, keepdims=True)
      row_factor = (new_v_row / row_col_mean) ** -0.5  # (R_t / mean(R_t))^{-1/2}
      col_factor = new_v_col ** -0.5  # C_t^{-1/2}
      update = (grad * jnp.expand_dims(row_factor, axis=d0)
                * jnp.expand_dims(col_factor, axis=d1))
      return _Leaf(update.astype(grad.dtype), new_v_row, new_v_col, placeholder)
    new_v = (decay_rate_t * v + (1.0 - decay_rate_t) * grad_sqr).astype(dtype)  # V_t
    update = grad * new_v ** -0.5  # G_t V_t^{-1/2}
    return _Leaf(update.astype(grad.dtype), placeholder, placeholder, new_v)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    decay_rate_t = decay_rate_fn(state.count - step_offset, decay_rate)  # beta_2t
    out = jax.tree.map(
        lambda g, r, c, v, p: None if g is None else update_leaf(g, r, c, v, p, decay_rate_t),
        updates, state.v_row, state.v_col, state.v, params, is_leaf=is_none)
    is_leaf = lambda x: x is None or isinstance(x, _Leaf)
    pick = lambda field, old: jax.tree.map(
        lambda o, s: s if o is None else getattr(o, field), out, old, is_leaf=is_leaf)
    new_updates = jax.tree.map(lambda o: None if o is None else o.update, out, is_leaf=is_leaf)
    new_state = FactoredState(count=safe_increment(state.count), v_row=pick("v_row", state.v_row),
                              v_col=pick("v_col", state.v_col), v=pick("v", state.v))
    return new_updates, new_state

  return GradientTransformation(init_fn, update_fn)
