"""`curvature_monitor`: the top Hessian eigenvalue and the Hutchinson trace of the training loss,
measured every k steps inside the optimizer and read with `gradtx.read_measures`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, _periodic
from gradtx.base import GradientTransformationExtraArgs
from gradtx.curvature.estimators import hutchinson_trace
from gradtx.curvature.lanczos import _lanczos_flat, _tridiagonal_eigh
from gradtx.curvature.operators import hessian
from gradtx.numerics import safe_increment
from gradtx.transforms.monitoring import MonitorState

__all__ = ["CurvatureMonitorState", "curvature_monitor"]

_FN = "curvature_monitor"


class CurvatureMonitorState(NamedTuple):
  """State of `curvature_monitor`: a step count, a key and the measurements.

  Attributes:
    count: int32 scalar, the step count.
    key: the PRNG key (raw uint32 key data).
    monitor: a `MonitorState` with the latest `top_eigenvalue` and `hessian_trace` (float32
      scalars), so `gradtx.read_measures` finds them.
  """

  count: jax.Array
  key: jax.Array
  monitor: MonitorState


def _measurements(top, trace):
  return {"hessian_trace": jnp.asarray(trace, jnp.float32),
          "top_eigenvalue": jnp.asarray(top, jnp.float32)}


def curvature_monitor(every: int = 10, *, num_iters: int = 20, num_probes: int = 10,
                      seed: int = 0) -> GradientTransformationExtraArgs:
  r"""Measures the loss's top Hessian eigenvalue and trace every `every` steps (updates pass).

  On the first update and every `every`-th after, builds `gradtx.curvature.hessian(value_fn,
  params)` once and runs a `num_iters`-step Lanczos (the algebraically largest Ritz value
  :math:`\lambda_{\max}`) and a `num_probes`-probe Hutchinson trace on it; in between, the last
  measurements are kept. The branch is a `cond` that stays a `cond` under `vmap` (a sweep pays
  for the products only on measuring steps). Measurements are float32 (bfloat16 params are
  measured in float32). Edge of stability: with learning rate :math:`\eta`, full-batch gradient
  descent drives :math:`\lambda_{\max}` to :math:`2 / \eta`.

  Args:
    every: measure every this many steps (int >= 1).
    num_iters: Lanczos steps (int >= 1; capped at the number of parameters).
    num_probes: Hutchinson probes (int >= 1).
    seed: the seed of the probes' PRNG key.

  Returns:
    A pass-through `GradientTransformationExtraArgs` with state `CurvatureMonitorState`; call
    `update(updates, state, params, value_fn=lambda p: loss(p, batch))`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.curvature_monitor(every=5)
    >>> p = jnp.zeros(3)
    >>> f = lambda q: 0.5 * jnp.sum(jnp.asarray([1., 2., 3.]) * q ** 2)
    >>> _, s = tx.update(p, tx.init(p), p, value_fn=f)
    >>> {k: round(v, 3) for k, v in gradtx.read_measures(s).items()}
    {'hessian_trace': 6.0, 'top_eigenvalue': 3.0}

  References:
    Cohen et al., `Gradient Descent on Neural Networks Typically Occurs at the Edge of
    Stability <https://arxiv.org/abs/2103.00065>`_, ICLR 2021; Yao et al., `PyHessian: Neural
    Networks Through the Lens of the Hessian <https://arxiv.org/abs/1912.07145>`_, 2020.
  """
  _checks.check_int(_FN, "every", every, 1)
  _checks.check_int(_FN, "num_iters", num_iters, 1)
  _checks.check_int(_FN, "num_probes", num_probes, 1)
  _checks.check_int(_FN, "seed", seed, 0)
  num_iters, num_probes = int(num_iters), int(num_probes)  # static: the loops' trip counts

  def init_fn(params):
    del params
    zero = jnp.zeros([], jnp.float32)
    return CurvatureMonitorState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed),
                                 MonitorState(_measurements(zero, zero), ()))

  def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(_FN)
    if value_fn is None:
      raise ValueError(
          f"gradtx.{_FN}: update needs value_fn, the loss as a function of the params; call "
          "update(updates, state, params, value_fn=lambda p: loss(p, batch)).")
    _checks.check_same_structure(_FN, "params", params, "updates", updates)
    p32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.promote_types(jnp.result_type(x),
                                                                  jnp.float32)), params)
    key, measure_key = jax.random.split(state.key)

    def measure(p, k, old):
      del old
      op = hessian(value_fn, p)
      order = min(num_iters, op.size)
      lanczos_key, trace_key = jax.random.split(k)
      alphas, betas, _ = _lanczos_flat(op, lanczos_key, order, None, True)
      top = jnp.max(_tridiagonal_eigh(alphas, betas[:-1])[0])
      trace, _ = hutchinson_trace(op, trace_key, num_probes)
      return _measurements(top, trace)

    def keep(p, k, old):
      del p, k
      return old

    measurements = _periodic.cond(state.count % every == 0, measure, keep, p32, measure_key,
                                  state.monitor.measurements)
    new_state = CurvatureMonitorState(safe_increment(state.count), key,
                                      MonitorState(measurements, ()))
    return updates, new_state

  return GradientTransformationExtraArgs(init_fn, update_fn)
