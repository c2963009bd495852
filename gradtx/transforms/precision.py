"""Low-precision training and optimizer memory: `mixed_precision`, `state_bytes`.

`mixed_precision` keeps a float32 master copy of the low-precision (bfloat16, float16) params in
the optimizer state, so steps too small to change a bfloat16 number still add up. `state_bytes`
and `state_bytes_per_param` report how much memory an optimizer state takes, without building it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx._trees import is_none
from gradtx.base import GradientTransformation

__all__ = [
    "MixedPrecisionState",
    "mixed_precision",
    "state_bytes",
    "state_bytes_per_param",
]


def _master_dtype(param_dtype: Any, master_dtype: Any) -> Any:
  """The master's dtype for a param leaf, or None when the param needs no master copy."""
  dtype = jnp.promote_types(param_dtype, master_dtype)
  return None if dtype == param_dtype else dtype


def _check_float_params(params: Any) -> None:
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.inexact):
      raise TypeError(
          f"gradtx.mixed_precision: params{jax.tree_util.keystr(path)} must have a float dtype, "
          f"got {dtype}; integer and bool params are not trainable. Hint: leave them out with "
          "gradtx.masked(gradtx.mixed_precision(tx), mask).")


class MixedPrecisionState(NamedTuple):
  """State of `mixed_precision`.

  Attributes:
    master: the high-precision copy of each low-precision param leaf (`None` where the leaf
      already has `master_dtype` or a wider one).
    inner_state: the wrapped transformation's state, built on the high-precision params.
  """

  master: Any
  inner_state: Any


def mixed_precision(
    inner: GradientTransformation, master_dtype: Any = jnp.float32
) -> GradientTransformation:
  r"""Runs `inner` on a float32 master copy of low-precision params, as mixed-precision training.

  A bfloat16 number has 8 significant bits: a step smaller than half the spacing of the numbers
  around a param (:math:`2^{-9}` just below 1.0) rounds away, so many small steps add up to
  nothing.
  This wrapper keeps a float32 master copy :math:`\theta^{32}` of each lower-precision param leaf
  in its state, gives `inner` the gradients and params in float32 (so its moments are float32),
  accumulates the steps in the master, and returns the low-precision updates that move each param
  to the rounded master:

  .. math::
      (u^{32}_t, s_t) = \mathrm{inner}(\mathrm{f32}(g_t), s_{t-1}, \theta^{32}_{t-1}), \quad
      \theta^{32}_t = \theta^{32}_{t-1} + u^{32}_t, \quad
      u_t = \mathrm{round}(\theta^{32}_t) - \theta_{t-1}

  so that `apply_updates(params, u)` is :math:`\theta_t = \mathrm{round}(\theta^{32}_t)`. The
  difference of two nearby numbers is exact in their own format (Sterbenz's lemma), so this holds
  bit for bit whenever the param changes by less than a factor of two in one step; a larger jump
  (e.g. across zero) may round the update once, which the next step corrects. Leaves already in
  `master_dtype` or wider get no master (`None`) and `inner`'s updates unchanged: on float32 params
  the wrapper is the identity. Update the params only by adding these updates (`apply_updates`,
  `nnx.Optimizer`): the master is the source of truth, and a param changed otherwise is moved
  back to it at the next step; re-`init` the state after loading or editing params.

  Args:
    inner: the transformation to run in high precision (gradtx or optax), e.g. `adam(1e-3)`.
    master_dtype: a floating dtype; a param leaf gets a master of dtype
      `jnp.promote_types(param.dtype, master_dtype)` when that is wider than the param's.

  Returns:
    A `GradientTransformation` with state `MixedPrecisionState(master, inner_state)` whose `update`
    needs `params`. Updates keep the gradients' dtype. State memory: 4 bytes per bfloat16 param
    for the master, plus `inner`'s float32 moments (see `state_bytes_per_param`).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx, p = gradtx.mixed_precision(gradtx.sgd(1e-3)), jnp.ones(1, jnp.bfloat16)
    >>> state = tx.init(p)
    >>> for _ in range(10):  # each step of -1e-3 alone would round away at 1.0
    ...   u, state = tx.update(jnp.ones_like(p), state, p); p = gradtx.apply_updates(p, u)
    >>> p.tolist(), state.master.dtype
    ([0.98828125], dtype('float32'))

  References:
    Micikevicius, Narang, Alben, Diamos, Elsen, Garcia, Ginsburg, Houston, Kuchaiev, Venkatesh &
    Wu, "Mixed Precision Training", ICLR 2018, Section 3.1 (FP32 master copy of weights).
    https://arxiv.org/abs/1710.03740
  """
  fn = "mixed_precision"
  if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
    raise TypeError(
        f"gradtx.{fn}: inner must be a GradientTransformation with init and update, got "
        f"{type(inner).__name__}. Hint: call the factory, e.g. gradtx.adam(1e-3).")
  if master_dtype is None:
    raise TypeError(f"gradtx.{fn}: master_dtype must be a floating dtype, got None.")
  master_dtype = _checks.check_dtype(fn, "master_dtype", master_dtype)
  if not jnp.issubdtype(master_dtype, jnp.floating):
    raise ValueError(f"gradtx.{fn}: master_dtype must be a real floating dtype, got "
                     f"{master_dtype}.")
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def high(master, p):
    return p if master is None else master

  def init_fn(params):
    _check_float_params(params)
    master = jax.tree.map(
        lambda p: None if _master_dtype(p.dtype, master_dtype) is None
        else p.astype(_master_dtype(p.dtype, master_dtype)), params)
    params_hi = jax.tree.map(high, master, params, is_leaf=is_none)
    return MixedPrecisionState(master=master, inner_state=inner.init(params_hi))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise _checks.missing_params_error(fn)
    if not pass_extra_args:
      extra_args = {}
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "state.master", state.master, "params", params)
    params_hi = jax.tree.map(high, state.master, params, is_leaf=is_none)
    grads_hi = jax.tree.map(
        lambda g, p: None if g is None else g.astype(p.dtype), updates, params_hi,
        is_leaf=is_none)
    updates_hi, inner_state = inner.update(grads_hi, state.inner_state, params_hi, **extra_args)

    new_master = jax.tree.map(
        lambda g, u, m: m if g is None or m is None else m + u.astype(m.dtype),
        updates, updates_hi, state.master, is_leaf=is_none)

    def low_precision_update(g, u, m, p):
      if g is None:
        return None
      if m is None:
        return u.astype(g.dtype)
      return (m.astype(p.dtype) - p).astype(g.dtype)  # exact: Sterbenz's lemma

    new_updates = jax.tree.map(
        low_precision_update, updates, updates_hi, new_master, params, is_leaf=is_none)
    return new_updates, MixedPrecisionState(master=new_master, inner_state=inner_state)

  return GradientTransformation(init_fn, update_fn)


def _leaf_bytes(x: Any) -> int:
  dtype = x.dtype if hasattr(x, "dtype") else jnp.result_type(x)
  if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
    x = jax.eval_shape(jax.random.key_data, x)
    dtype = x.dtype
  return math.prod(np.shape(x)) * np.dtype(dtype).itemsize


def _is_transformation(x: Any) -> bool:
  return callable(getattr(x, "init", None)) and callable(getattr(x, "update", None))


def _state_of(fn: str, state_or_tx: Any, params: Any) -> Any:
  """The state itself, or the abstract state of `tx.init(params)` (nothing is allocated)."""
  if not _is_transformation(state_or_tx):
    return state_or_tx
  if params is None:
    raise ValueError(f"gradtx.{fn}: params must be given with a transformation, e.g. "
                     f"{fn}(tx, params).")
  return jax.eval_shape(state_or_tx.init, params)


def state_bytes(state_or_tx: Any, params: Any = None) -> int:
  """The memory of an optimizer state in bytes, counting every leaf (step counts and keys too).

  Given a transformation and params it traces `tx.init(params)` abstractly (`jax.eval_shape`):
  nothing is allocated, so `params` may be `jax.ShapeDtypeStruct`s of a model too large to
  build. Given a state (e.g. `nnx.Optimizer.opt_state`) it sums that state's leaves. A leaf takes
  `size * itemsize` bytes; `None` leaves take none; a typed PRNG key counts as its key data.

  Args:
    state_or_tx: a `GradientTransformation` (gradtx or optax), or an optimizer state.
    params: the params (arrays or `jax.ShapeDtypeStruct`s), needed with a transformation only.

  Returns:
    The number of bytes, an int.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> p = jax.ShapeDtypeStruct((1000,), jnp.float32)
    >>> gradtx.state_bytes(gradtx.adam(1e-3), p)  # mu, nu and one int32 step count
    8004

  References:
    `jax.eval_shape` (abstract evaluation of `init`).
  """
  if params is not None and not _is_transformation(state_or_tx):
    raise ValueError("gradtx.state_bytes: params is only used with a transformation; call "
                     "state_bytes(state) for a state, or state_bytes(tx, params).")
  state = _state_of("state_bytes", state_or_tx, params)
  return sum(_leaf_bytes(x) for x in jax.tree.leaves(state))


def state_bytes_per_param(state_or_tx: Any, params: Any) -> float:
  """Optimizer-state bytes per parameter element: `state_bytes` over the number of elements.

  For an element-wise optimizer this is its moments' bytes per element plus a negligible share of
  the tree-level constants (int32 step counts, PRNG keys): `adam` on float32 params gives 8 (mu
  and nu) plus 4 bytes of its count over the number of elements; on bfloat16 params 4, and 12 under
  `mixed_precision` (a float32 master and float32 moments).

  Args:
    state_or_tx: a `GradientTransformation` (gradtx or optax), or an optimizer state.
    params: the params (arrays or `jax.ShapeDtypeStruct`s) whose elements are counted.

  Returns:
    A float, bytes per parameter element.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> p = jax.ShapeDtypeStruct((10**6,), jnp.bfloat16)
    >>> gradtx.state_bytes_per_param(gradtx.mixed_precision(gradtx.adam(1e-3)), p)
    12.000004

  References:
    `jax.eval_shape` (abstract evaluation of `init`).
  """
  if params is None:
    raise ValueError("gradtx.state_bytes_per_param: params must be given, to count their "
                     "elements, e.g. state_bytes_per_param(tx, params).")
  state = _state_of("state_bytes_per_param", state_or_tx, params)
  count = sum(math.prod(np.shape(x)) for x in jax.tree.leaves(params))
  if count == 0:
    raise ValueError("gradtx.state_bytes_per_param: params must have at least one element, got "
                     "none.")
  return sum(_leaf_bytes(x) for x in jax.tree.leaves(state)) / count
