"""Distance over Gradients (DoG): a learning-rate-free step size, per parameter array.

The step size of each parameter array is the largest distance it has moved from its initial value
divided by the root of the sum of its squared gradient norms (Ivgi et al. 2023, "layer-wise DoG").
The global-norm variants DoG and DoWG are `gradtx.contrib.dog` and `gradtx.contrib.dowg`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, tree
from gradtx._trees import is_none
from gradtx.base import GradientTransformation

__all__ = [
    "ScaleByDistanceOverGradientsState",
    "scale_by_distance_over_gradients",
]


def _l2(x: Any, y: Any = 0.0) -> jax.Array:
  """The Euclidean norm of one leaf, ``||x - y||``."""
  return jnp.sqrt(jnp.square(x - y).sum())


class ScaleByDistanceOverGradientsState(NamedTuple):
  """State of `scale_by_distance_over_gradients` (optax's layout).

  Attributes:
    max_dist: per params leaf, the largest distance from the initial params (a scalar).
    grad_sum_of_squares: per params leaf, the sum of squared gradient norms (shape (1,)).
    init_params: the initial params (cast to `param_dtype`).
  """

  max_dist: Any
  grad_sum_of_squares: Any
  init_params: Any


def scale_by_distance_over_gradients(
    reps_rel: Any = 1e-6,
    eps: Any = 1e-8,
    param_dtype: Any = jnp.float32,
    global_scale: Any = 1.0,
) -> GradientTransformation:
  r"""Scales each parameter array by its distance travelled over its gradients' norms (LDoG).

  DoG needs no learning rate: the step grows while the parameters move away from where they
  started and shrinks as gradients accumulate. Each parameter array :math:`i` gets its own step
  size ("layer-wise DoG"); the authors recommend averaging the iterates.

  .. math::
      \bar r_{i,t} = \max(\bar r_{i,t-1}, \|x_{i,t} - x_{i,0}\|), \quad
      \bar r_{i,0} = r_{\epsilon} (1 + \|x_{i,0}\|), \\
      G_{i,t} = G_{i,t-1} + \|g_{i,t}\|^2, \qquad
      u_{i,t} = s \, \frac{\bar r_{i,t}}{\sqrt{G_{i,t} + \epsilon}} \, g_{i,t}

  with :math:`r_\epsilon` = `reps_rel`, :math:`\epsilon` = `eps` and :math:`s` = `global_scale`.
  The updates point along the gradient; use `global_scale=-1.0` (or chain
  `scale_by_learning_rate`) to descend.

  Args:
    reps_rel: :math:`r_\epsilon > 0`, the relative initial distance; 1e-4 for models with batch
      norm, 1e-6 otherwise. A float or a scalar array.
    eps: :math:`\epsilon \ge 0`, added to the sum of squares; a float or a scalar array.
    param_dtype: the dtype the initial params are stored in (None: the params' own).
    global_scale: :math:`s`, a finite factor, typically 1.0 or -1.0; a float or a scalar array.

  Returns:
    A `GradientTransformation` with state `ScaleByDistanceOverGradientsState(max_dist,
    grad_sum_of_squares, init_params)`; `update` needs `params`. Unlike optax, the updates keep
    each gradient leaf's shape and dtype (optax returns shape (1,) for a scalar leaf and float32
    for bfloat16 ones) and `max_dist` keeps its dtype.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.scale_by_distance_over_gradients(reps_rel=0.5, eps=0.0)
    >>> params = jnp.array([3.0, 4.0])
    >>> tx.update(jnp.array([1.0, 0.0]), tx.init(params), params)[0].tolist()
    [3.0, 0.0]

  References:
    Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
    Schedule", ICML 2023. https://arxiv.org/abs/2302.12022
  """
  fn = "scale_by_distance_over_gradients"
  _checks.check_scalar(fn, "reps_rel", reps_rel, low=0, low_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  param_dtype = _checks.check_dtype(fn, "param_dtype", param_dtype)
  _checks.check_scalar(fn, "global_scale", global_scale)

  def init_fn(params):
    return ScaleByDistanceOverGradientsState(
        max_dist=jax.tree.map(lambda x: reps_rel * (1 + _l2(x)), params),  # r_eps (1 + |x_0|)
        grad_sum_of_squares=jax.tree.map(lambda x: jnp.zeros(1), params),
        init_params=tree.cast(params, param_dtype),
    )

  def _map(f, updates, *rest):
    return jax.tree.map(lambda g, *r: None if g is None else f(g, *r), updates, *rest,
                        is_leaf=is_none)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    _checks.check_same_structure(fn, "updates", updates, "params", params)
    _checks.check_same_structure(fn, "updates", updates, "state.max_dist", state.max_dist)
    # \bar r_t = max(\bar r_{t-1}, ||x_t - x_0||), kept in the dtype init gave it.
    max_dist = tree.moment_like(
        _map(lambda g, d, x, x0: jnp.maximum(d, _l2(x, x0)), updates, state.max_dist, params,
             state.init_params),
        state.max_dist)
    # G_t = G_{t-1} + ||g_t||^2
    g_sos = tree.moment_like(
        _map(lambda g, s: s + jnp.square(g).sum(), updates, state.grad_sum_of_squares),
        state.grad_sum_of_squares)

    def scale_leaf(g, d, s):
      eta = global_scale * (d / jnp.sqrt(s + eps))  # eta_t = s \bar r_t / sqrt(G_t + eps)
      return (eta[0] * g).astype(g.dtype)  # eta has optax's shape (1,): keep g's shape

    new_updates = _map(scale_leaf, updates, max_dist, g_sos)
    return new_updates, ScaleByDistanceOverGradientsState(max_dist, g_sos, state.init_params)

  return GradientTransformation(init_fn, update_fn)
