"""Hogwild!: lock-free sparse writes to shared params, simulated deterministically."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformation, OptState
from gradtx.distributed import _axis

__all__ = ["HogwildState", "hogwild"]


class HogwildState(NamedTuple):
  """State of `hogwild`.

  Attributes:
    inner_state: This worker's inner optimizer state.
  """

  inner_state: OptState


def hogwild(inner: GradientTransformation, axis_name: Any, *,
            sparse: bool = True) -> GradientTransformation:
  r"""Hogwild!: every worker writes its sparse update into the shared params without locks.

  Recht et al. run SGD on several processors that read the shared params and write their
  updates without locking; with sparse gradients (each example touches a few coordinates) the
  writes rarely collide and the method converges nearly as fast as serial SGD. JAX is SPMD, so
  this is a faithful deterministic simulation, not a race: in each round every worker reads the
  same shared params (its gradient is up to n - 1 writes stale relative to serial SGD), computes
  its `inner` update, and all writes land, the colliding ones adding up (the paper's atomic
  component-wise adds commute, so the order does not matter). With `sparse` a worker writes
  only the coordinates where its gradient is nonzero (the paper's edge e). Torn reads (a
  worker seeing half of another's write) are not simulated. For writes that land rounds late,
  wrap the inner optimizer: `hogwild(delayed(sgd(lr), tau), 'w')`. A worker whose gradient is
  not finite writes nothing that round.

  .. math:: x \leftarrow x + \sum_{i=1}^{n} m_i \odot A(g_i(x)), \qquad m_i = [g_i \ne 0]

  with :math:`A` = `inner` (the paper's SGD: `gradtx.sgd(gamma)`).

  Args:
    inner: :math:`A`, each worker's update rule (gradtx or optax).
    axis_name: the replica axis, bound by `jax.vmap(..., axis_name=)` or `jax.shard_map`.
    sparse: write only the coordinates where the worker's gradient is nonzero.

  Returns:
    A `GradientTransformation` with state `HogwildState(inner_state)`; every worker gets the
    same updates, so the shared params stay equal.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> tx = gradtx.distributed.hogwild(gradtx.sgd(1.0), axis_name='w')
    >>> grads = jnp.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    >>> state = jax.vmap(tx.init, axis_name='w')(jnp.zeros((2, 3)))
    >>> u, state = jax.vmap(tx.update, axis_name='w')(grads, state, jnp.zeros((2, 3)))
    >>> u[0].tolist()
    [-1.0, -2.0, -1.0]

  References:
    Recht, Re, Wright & Niu, "Hogwild!: A Lock-Free Approach to Parallelizing Stochastic
    Gradient Descent", NeurIPS 2011, Algorithm 1. https://arxiv.org/abs/1106.5730
  """
  fn = "distributed.hogwild"
  _axis.check_transformation(fn, "inner", inner)
  _axis.check_axis_name(fn, axis_name)
  _checks.check_bool(fn, "sparse", sparse)
  pass_extra_args = _checks.accepts_extra_args(inner.update)

  def init_fn(params):
    _axis.check_axis_bound(fn, axis_name)
    return HogwildState(inner_state=inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    _axis.check_axis_bound(fn, axis_name)
    extra_args = extra_args if pass_extra_args else {}
    ok = _axis.all_finite(updates)
    u, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
    if sparse:
      u = jax.tree.map(lambda x, g: None if x is None else jnp.where(g != 0, x, 0).astype(x.dtype),
                       u, updates, is_leaf=lambda x: x is None)
    inner_state = _axis.select(ok, inner_state, state.inner_state)
    return _axis.masked_sum(u, axis_name, ok), HogwildState(inner_state=inner_state)

  return GradientTransformation(init_fn, update_fn)
