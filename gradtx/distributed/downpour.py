"""Downpour SGD: model replicas fetch params from, and push gradients to, a parameter server."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gradtx import _checks
from gradtx.base import GradientTransformation, OptState, Params, Updates
from gradtx.distributed import _axis
from gradtx.numerics import safe_increment

__all__ = ["DownpourState", "downpour"]


class DownpourState(NamedTuple):
  """State of `downpour`.

  Attributes:
    count: The step count (int32).
    server_params: The parameter server's params (the same on every worker).
    server_state: The server optimizer's state (the same on every worker).
    accumulated: This replica's accumulated gradient since its last push.
  """

  count: jax.Array
  server_params: Params
  server_state: OptState
  accumulated: Updates


def downpour(inner: GradientTransformation, fetch_every: int, push_every: int,
             axis_name: Any) -> GradientTransformation:
  r"""Downpour SGD: replicas compute gradients on stale params; a server applies their pushes.

  A parameter server holds the params and applies `inner` (AdaGrad in the paper) to the
  gradients the model replicas push. Each replica computes gradients at its own copy of the
  params, accumulates them, pushes the sum every `push_every` steps and fetches the server's
  params every `fetch_every` steps; between fetches its copy does not move, so its gradients
  are stale. The asynchronous server is simulated deterministically: the pushes of a round are
  applied one after the other, in worker order, each as one server step (so later pushes in a
  round see the earlier ones' effect on the server, as an asynchronous server would). A push
  that is not finite is dropped (that replica's accumulation restarts; the server and the
  others continue). Each worker keeps a copy of the server (simulation), so state is
  three params-sized trees per worker.

  .. math::
      a_i \leftarrow a_i + g_i; \quad
      \text{push } (t \bmod n_{push} = 0): \ w \leftarrow w + A(a_i) \ \text{for } i = 1..n,
      \ a_i \leftarrow 0; \quad
      \text{fetch } (t \bmod n_{fetch} = 0): \ x_i \leftarrow w

  with :math:`w` the server's params, :math:`x_i` the replica's, :math:`A` = `inner` and
  :math:`t` the steps taken (after this one).

  Args:
    inner: :math:`A`, the server's optimizer (the paper uses `gradtx.adagrad`).
    fetch_every: :math:`n_{fetch} \ge 1`, steps between fetches of the server's params.
    push_every: :math:`n_{push} \ge 1`, steps between pushes of the accumulated gradient.
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`.

  Returns:
    A `GradientTransformation` with state `DownpourState(count, server_params, server_state,
    accumulated)`; `update(grads, state, params)` needs params (the replica's copy). The server's
    params are `state.server_params`.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.downpour(gradtx.sgd(1.0), fetch_every=1, push_every=1,
    ...                                  axis_name='w')
    >>> params, grads = jnp.zeros(2), jnp.array([1.0, 3.0])
    >>> state = jax.vmap(tx.init, axis_name='w')(params)
    >>> u, state = jax.vmap(tx.update, axis_name='w')(grads, state, params)
    >>> (params + u).tolist()  # the server applied both pushes
    [-4.0, -4.0]

  References:
    Dean, Corrado, Monga, Chen, Devin, Le, Mao, Ranzato, Senior, Tucker, Yang & Ng, "Large Scale
    Distributed Deep Networks", NeurIPS 2012, section 4.1 (Downpour SGD).
    https://papers.nips.cc/paper/2012/hash/6aca97005c68f1206823815f66102863-Abstract.html
  """
  fn = "distributed.downpour"
  _axis.check_transformation(fn, "inner", inner)
  _checks.check_int(fn, "fetch_every", fetch_every, 1)
  _checks.check_int(fn, "push_every", push_every, 1)
  _axis.check_axis_name(fn, axis_name)

  def init_fn(params):
    _axis.check_axis_bound(fn, axis_name)
    return DownpourState(count=jnp.zeros([], jnp.int32), server_params=params,
                         server_state=inner.init(params),
                         accumulated=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _axis.check_axis_bound(fn, axis_name)
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    count = safe_increment(state.count)
    accumulated = _axis.tree_add(state.accumulated, updates)

    def push(accumulated, server_params, server_state):
      ok = _axis.all_finite(accumulated)
      pushes = jax.tree.map(lambda a: lax.all_gather(a, axis_name), accumulated)
      oks = lax.all_gather(ok, axis_name)

      def apply_one(server, push_and_ok):  # one asynchronous push, in worker order
        sp, ss = server
        a, good = push_and_ok
        step, new_ss = inner.update(a, ss, sp)
        new_sp = _axis.tree_add(sp, step)
        return (_axis.select(good, new_sp, sp), _axis.select(good, new_ss, ss)), None

      (server_params, server_state), _ = lax.scan(apply_one, (server_params, server_state),
                                                  (pushes, oks))
      return jax.tree.map(jnp.zeros_like, accumulated), server_params, server_state

    def keep(accumulated, server_params, server_state):
      return accumulated, server_params, server_state

    accumulated, server_params, server_state = _axis.sync_cond(
        count % push_every == 0, axis_name, push, keep, accumulated, state.server_params,
        state.server_state)
    fetch = count % fetch_every == 0
    new_updates = jax.tree.map(
        lambda w, x: jnp.where(fetch, w - x, jnp.zeros_like(x)).astype(x.dtype), server_params,
        params)
    return new_updates, DownpourState(count=count, server_params=server_params,
                                      server_state=server_state, accumulated=accumulated)

  return GradientTransformation(init_fn, update_fn)
