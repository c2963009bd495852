"""Private: a `lax.cond` that stays a `cond` when it is `vmap`ped over a batched predicate.

`jax.lax.cond` under `jax.vmap` with a batched predicate becomes a `select` that runs both
branches for every member, so periodic work (a projection refresh or an estimate every k steps)
would run on every step of a `vmap`ped hyperparameter sweep. `cond` below has a batching rule
that keeps one `lax.cond` on "does any member need the expensive branch": the batch runs the
true branch only on the steps where some member's predicate holds (in a sweep, the members
share the step count, so the work stays periodic), and selects per member inside that branch.
Nested `vmap`s apply the rule at every level. Closed-over tracers (a `vmap`ped learning rate)
are hoisted into explicit operands so the rule can batch them. Forward- and reverse-mode
differentiation go through the tangents of an ordinary `lax.cond`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap


def _hoist(fun: Callable[..., Any], operands: tuple) -> tuple[Callable[..., Any], list]:
  """`fun(*operands)` as `converted(*operands, *consts)`: every value `fun` closes over (tracers
  of an enclosing `vmap` or `jit` included) becomes an explicit argument."""
  closed, shape = jax.make_jaxpr(fun, return_shape=True)(*operands)
  out_tree = jax.tree.structure(shape)
  num_consts = len(closed.consts)

  def converted(*args):
    ops, consts = args[:len(args) - num_consts], args[len(args) - num_consts:]
    out = jax.core.eval_jaxpr(closed.jaxpr, list(consts), *jax.tree.leaves(ops))
    return jax.tree.unflatten(out_tree, out)

  return converted, list(closed.consts)


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
  def pick(a, b):
    return jnp.where(jnp.reshape(pred, pred.shape + (1,) * (jnp.ndim(a) - pred.ndim)), a, b)
  return jax.tree.map(pick, on_true, on_false)


def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
         *operands: Any) -> Any:
  """`lax.cond(pred, true_fun, false_fun, *operands)` that stays a `cond` under `vmap`.

  Under `vmap` with a batched `pred`, the whole batch takes the true branch (and selects per
  member) only when `any(pred)`; otherwise it runs the false branch alone.
  """
  tf, tconsts = _hoist(true_fun, operands)
  ff, fconsts = _hoist(false_fun, operands)
  return _cond(jnp.asarray(pred), tf, ff, len(operands), len(tconsts), *operands, *tconsts,
               *fconsts)


def _split(args, n_ops, n_t):
  return args[:n_ops], args[n_ops:n_ops + n_t], args[n_ops + n_t:]


def _cond(pred, tf, ff, n_ops, n_t, *args):
  def run_true(*a):
    ops, tc, _ = _split(a, n_ops, n_t)
    return tf(*ops, *tc)

  def run_false(*a):
    ops, _, fc = _split(a, n_ops, n_t)
    return ff(*ops, *fc)

  @jax.custom_jvp
  def differentiable(pred, *a):
    return batchable(pred, *a)

  @differentiable.defjvp
  def differentiable_jvp(primals, tangents):
    pred, a = primals[0], primals[1:]
    out = batchable(pred, *a)
    # The tangents of an ordinary cond (linear, so reverse mode can transpose them).
    t_out = lax.cond(pred, lambda p, t: jax.jvp(run_true, p, t)[1],
                     lambda p, t: jax.jvp(run_false, p, t)[1], a, tangents[1:])
    return out, t_out

  @custom_vmap
  def batchable(pred, *a):
    return lax.cond(pred, run_true, run_false, *a)

  @batchable.def_vmap
  def rule(axis_size, in_batched, pred, *a):
    # Per leaf: an operand may be a pytree whose leaves are batched or not.
    axes = tuple(jax.tree.map(lambda b: 0 if b else None, b) for b in in_batched[1:])
    batched_true = jax.vmap(run_true, in_axes=axes, axis_size=axis_size)
    batched_false = jax.vmap(run_false, in_axes=axes, axis_size=axis_size)
    if not in_batched[0]:
      out = cond(pred, batched_true, batched_false, *a)
    else:
      out = cond(jnp.any(pred), lambda p, *a: _select(p, batched_true(*a), batched_false(*a)),
                 lambda p, *a: batched_false(*a), pred, *a)
    return out, jax.tree.map(lambda _: True, out)

  return differentiable(pred, *args)
