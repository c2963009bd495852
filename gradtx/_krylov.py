"""Private machinery of the curvature-based methods (transforms/newton.py, least_squares.py):
the extra-argument and CG-argument checks, the restriction of a loss to the leaves that have
gradients, and a bounded truncated conjugate gradient on flat vectors.

The CG is a `lax.while_loop` with a bounded trip count, or a `fori_loop` of exactly that many
trips (`fixed_steps=True`, the same work on every lane of a `vmap`; the flag has the line
searches' name). Non-finite values met inside stop it; the last finite iterate is returned.
The line searches are the shared ones of gradtx/transforms/linesearch.py.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import flatten_util, lax

from gradtx import _checks
from gradtx._trees import is_none

_VALUE_FN_CALL = ("update(grads, state, params, value_fn=lambda p: loss(p, batch)) "
                  "(in nnx.Optimizer: optimizer.update(model, grads, value_fn=...))")
_RESIDUAL_FN_CALL = ("update(grads, state, params, residual_fn=lambda p: residuals(p, batch)), "
                     "with grads = J^T r, the gradient of 0.5 * sum(residuals ** 2)")


def missing_error(fn: str, name: str) -> ValueError:
  """The error of a missing `value_fn=` or `residual_fn=` (STYLE §13: name it, show the call)."""
  call = _RESIDUAL_FN_CALL if name == "residual_fn" else _VALUE_FN_CALL
  return _checks.missing_extra_arg_error(fn, name, call)


def check_cg(fn: str, cg_tol: Any, max_cg_steps: Any, fixed_steps: Any, *,
             tol_optional: bool = True) -> None:
  """The factory checks of a CG-based method's `cg_tol`, `max_cg_steps` and `fixed_steps`."""
  _checks.check_scalar(fn, "cg_tol", cg_tol, low=0.0, low_open=True, optional=tol_optional)
  if max_cg_steps is not None:
    _checks.check_int(fn, "max_cg_steps", max_cg_steps, 1)
  _checks.check_bool(fn, "fixed_steps", fixed_steps)


def cg_bound(max_cg_steps: Any, size: int) -> int:
  """The CG trip bound: `max_cg_steps`, by default twice the number of parameters, at most 250
  (static)."""
  return int(max_cg_steps) if max_cg_steps is not None else max(1, min(2 * size, 250))


def check_update(fn: str, updates: Any, params: Any) -> None:
  if params is None:
    raise _checks.missing_params_error(fn)
  _checks.check_same_structure(fn, "updates", updates, "params", params)


def present(updates: Any, tree: Any) -> Any:
  """`tree` with `None` wherever `updates` has a `None` leaf (frozen leaves take no part)."""
  return jax.tree.map(lambda g, t: None if g is None else t, updates, tree, is_leaf=is_none)


def restrict(fn_of_params: Callable[[Any], Any], params: Any) -> Callable[[Any], Any]:
  """`fn_of_params` as a function of the present leaves only (the `None` ones held at params)."""
  def restricted(sub):
    full = jax.tree.map(lambda s, p: p if s is None else s, sub, params, is_leaf=is_none)
    return fn_of_params(full)
  return restricted


def sum_of_squares_loss(residual_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
  """p -> 0.5 * sum of the squared residuals (a pytree)."""
  def loss(p):
    return 0.5 * sum(jnp.sum(jnp.square(r)) for r in jax.tree.leaves(residual_fn(p)))
  return loss


def half_sum_of_squares(outputs: Any) -> Any:
  return 0.5 * sum(jnp.sum(jnp.square(r)) for r in jax.tree.leaves(outputs))


def work_dtype(dtype: Any) -> Any:
  """The dtype CG runs in: at least float32 (bfloat16 params are solved in float32)."""
  return jnp.promote_types(dtype, jnp.float32)


def scalar_dtype(params: Any) -> Any:
  """The dtype of a method's scalar state (a damping): the params' working dtype (float32, or
  float64 for float64 params)."""
  leaves = [l for l in jax.tree.leaves(params) if hasattr(l, "dtype")]
  return work_dtype(jnp.result_type(*leaves)) if leaves else jnp.float32


def ravel(tree: Any, dtype: Any) -> jax.Array:
  return flatten_util.ravel_pytree(tree)[0].astype(dtype)


def unraveler(like: Any) -> Callable[[jax.Array], Any]:
  """flat vector (any float dtype) -> a pytree shaped and typed like `like`."""
  flat, unravel = flatten_util.ravel_pytree(like)
  def fn(x):
    out = unravel(x.astype(flat.dtype))
    return jax.tree.map(lambda o, l: o.astype(jnp.result_type(l)), out, like)
  return fn


def flat_operator(op: Any, dtype: Any) -> Callable[[jax.Array], jax.Array]:
  """A curvature `LinearOperator`'s product on flat vectors of the working dtype."""
  return lambda v: op.flat_matvec(v.astype(op.dtype)).astype(dtype)


def all_finite(x: jax.Array) -> jax.Array:
  return jnp.all(jnp.isfinite(x))


class CGResult(NamedTuple):
  x: jax.Array  # the (approximate) solution
  steps: jax.Array  # int32, CG steps taken
  negative_curvature: jax.Array  # bool, stopped on p^T A p <= 0


def truncated_cg(matvec: Callable[[jax.Array], jax.Array], b: jax.Array, *, damping: Any,
                 tol: jax.Array, max_steps: int, fixed_steps: bool,
                 detect_negative_curvature: bool = True,
                 x0: jax.Array | None = None) -> CGResult:
  r"""Conjugate gradient on :math:`(A + \lambda I) x = b`, stopped at :math:`\|r\| \le` `tol`,
  after `max_steps`, on non-finite values, or (`detect_negative_curvature`) on a direction with
  :math:`p^\top (A + \lambda I) p \le 0`, where it returns the iterate so far, or `b` itself if
  that happens on the first step (Nocedal and Wright, Algorithm 7.1).
  """
  dtype = b.dtype
  damping = jnp.asarray(damping, dtype)
  apply = lambda v: matvec(v) + damping * v
  if x0 is None:
    x = jnp.zeros_like(b)
    r = b
  else:
    x = x0
    r = b - apply(x0)
    bad = ~all_finite(r)
    x, r = jnp.where(bad, 0, x), jnp.where(bad, b, r)
  rs = jnp.vdot(r, r)
  tiny = jnp.finfo(dtype).tiny
  init = (jnp.zeros((), jnp.int32), x, r, r, rs, jnp.sqrt(rs) <= tol, jnp.zeros((), bool))

  def step(carry):
    j, x, r, p, rs, done, neg = carry
    ap = apply(p)
    pap = jnp.vdot(p, ap)
    curv_bad = (pap <= 0) if detect_negative_curvature else (pap == 0)
    stop_here = curv_bad | ~jnp.isfinite(pap) | ~all_finite(ap)
    alpha = rs / jnp.where(stop_here, 1, pap)
    x_new = x + alpha * p
    r_new = r - alpha * ap
    rs_new = jnp.vdot(r_new, r_new)
    stop_here = stop_here | ~all_finite(x_new) | ~jnp.isfinite(rs_new)
    # On a stop, keep x; on the first step of a cold start, steepest descent (x = b).
    first_cold = (j == 0) & (x0 is None)
    x_stop = jnp.where(first_cold & curv_bad, b, x)
    x = jnp.where(stop_here, x_stop, x_new)
    beta = rs_new / jnp.maximum(rs, tiny)
    p_new = r_new + beta * p
    converged = jnp.sqrt(rs_new) <= tol
    return (j + 1, x, jnp.where(stop_here, r, r_new), jnp.where(stop_here, p, p_new),
            jnp.where(stop_here, rs, rs_new), done | stop_here | converged,
            neg | (curv_bad & detect_negative_curvature))

  if fixed_steps:
    def body(_, carry):
      new = step(carry)
      done = carry[5]
      return jax.tree.map(lambda a, b_: jnp.where(done, a, b_), carry, new)
    out = lax.fori_loop(0, max_steps, body, init)
  else:
    out = lax.while_loop(lambda c: (~c[5]) & (c[0] < max_steps), step, init)
  j, x, *_, neg = out
  steps = jnp.minimum(j, max_steps) if not fixed_steps else j
  return CGResult(x, steps.astype(jnp.int32), neg)
