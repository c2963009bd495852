"""Hutchinson's estimator of the Hessian diagonal as a gradient transformation (optax.contrib's
`hutchinson_estimator_diag_hessian`, Sophia-H's curvature estimate), with its products from
gradtx's shared curvature operator (`gradtx.curvature.hessian`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs
from gradtx.curvature.operators import hessian
from gradtx.tree.casting import cast, dtype as tree_dtype
from gradtx.tree.random import random_like

__all__ = ["HutchinsonState", "hutchinson_estimator_diag_hessian"]


class HutchinsonState(NamedTuple):
  """State of `hutchinson_estimator_diag_hessian`: the PRNG key, split at every update.

  Attributes:
    key: the PRNG key, split at every update.
  """

  key: jax.Array


def hutchinson_estimator_diag_hessian(random_seed: jax.Array | None = None
                                      ) -> GradientTransformationExtraArgs:
  r"""Estimates the Hessian diagonal of `obj_fn` at `params` with one Rademacher probe per step.

  The output updates are :math:`z \odot H z` (unbiased, high variance); the incoming updates are
  ignored. `update` needs `params` and the extra argument `obj_fn` (params -> scalar loss).

  .. math:: \widehat{\operatorname{diag}}(H) = z \odot \nabla^2 f(\theta) z, \quad
            z \sim \text{Rademacher}

  Args:
    random_seed: the PRNG key of the probes (default `jax.random.PRNGKey(0)`).

  Returns:
    A `GradientTransformationExtraArgs` with state `HutchinsonState`; call
    `update(updates, state, params, obj_fn=loss_of_params)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.hutchinson_estimator_diag_hessian()
    >>> p = jnp.ones(2)
    >>> d, _ = tx.update(p, tx.init(p), p, obj_fn=lambda q: jnp.sum(q ** 2))
    >>> d
    Array([2., 2.], dtype=float32)

  References:
    Hutchinson, `A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines <https://doi.org/10.1080/03610918908812806>`_, 1989; Liu et al.,
    `Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training
    <https://arxiv.org/abs/2305.14342>`_, ICLR 2024.
  """
  fn = "contrib.hutchinson_estimator_diag_hessian"

  def init_fn(params):
    del params
    return HutchinsonState(key=random_seed if random_seed is not None else
                           jax.random.PRNGKey(0))

  def update_fn(updates, state, params=None, obj_fn=None, **extra_args):
    del extra_args
    if params is None:
      raise _checks.missing_params_error(fn)
    if obj_fn is None:
      raise ValueError(
          f"gradtx.{fn}: update needs obj_fn, the loss as a function of the params; call "
          "update(updates, state, params, obj_fn=lambda p: loss(p, batch)).")
    _checks.check_same_structure(fn, "params", params, "updates", updates)
    key, subkey = jax.random.split(state.key)
    signs = random_like(subkey, params, jax.random.rademacher, dtype=jnp.float32)
    signs = cast(signs, tree_dtype(params, "lowest"))
    product = hessian(obj_fn, params).matvec(signs)
    return jax.tree.map(lambda h, r: h * r, product, signs), HutchinsonState(key=key)

  return GradientTransformationExtraArgs(init_fn, update_fn)
