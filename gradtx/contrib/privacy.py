"""Differentially private SGD (optax.contrib's `dpsgd` and `differentially_private_aggregate`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from gradtx import _checks
from gradtx.base import GradientTransformationExtraArgs, ScalarOrSchedule, identity
from gradtx.combine import chain
from gradtx.transforms.momentum import trace
from gradtx.transforms.noise import _key_maker, _key_or_seed
from gradtx.transforms.per_example import per_example_global_norm_clip
from gradtx.transforms.scaling import scale_by_learning_rate

__all__ = [
    "DifferentiallyPrivateAggregateState",
    "differentially_private_aggregate",
    "dpsgd",
]


class DifferentiallyPrivateAggregateState(NamedTuple):
  """State of `differentially_private_aggregate`: the PRNG key as raw `uint32` key data.

  Attributes:
    rng_key: the PRNG key as raw `uint32` key data.
  """

  rng_key: jax.Array  # uint32 key data (jax.random.key_data)


def differentially_private_aggregate(
    l2_norm_clip: Any,
    noise_multiplier: Any,
    key: Any = None,
    *,
    seed: int | None = None,
) -> GradientTransformationExtraArgs:
  r"""Clips per-example gradients, sums them, adds Gaussian noise and averages (DP-SGD).

  Bounding each example's contribution to :math:`C` bounds the sensitivity of the sum, so
  Gaussian noise of standard deviation :math:`\sigma C` makes the step differentially private.
  The updates must be per-example gradients (batch on axis 0 of every leaf, e.g. from
  `jax.vmap(jax.grad(loss))`), so this must come first in a chain; `apply_every` and
  `MultiSteps` do not compose with it.

  .. math::
      \bar g_b = g_b / \max(1, \|g_b\|_2 / C), \qquad
      u = \frac{1}{B}\Big(\textstyle\sum_{b=1}^{B} \bar g_b + \mathcal{N}(0, \sigma^2 C^2 I)\Big)

  with :math:`C` = `l2_norm_clip`, :math:`\sigma` = `noise_multiplier`, :math:`B` the batch
  size. Each step splits the state's key into the next key and one key per leaf, as optax, so
  a given key yields optax's noise.

  Args:
    l2_norm_clip: :math:`C \ge 0`, the per-example L2 norm bound (over all leaves).
    noise_multiplier: :math:`\sigma \ge 0`.
    key: an int seed or a jax PRNG key; None (optax's default, with a warning there) means 0.
    seed: optax's deprecated name for an int `key`; give `key` or `seed`, not both.

  Returns:
    A `GradientTransformationExtraArgs` with state `DifferentiallyPrivateAggregateState(rng_key)`
    (the raw `uint32` key data, not optax's typed key, so the state is checkpointable).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.differentially_private_aggregate(1.0, 0.0, key=0)
    >>> u, _ = tx.update(jnp.asarray([[3.0, 4.0], [0.3, 0.4]]), tx.init(jnp.zeros(2)))
    >>> [round(x, 4) for x in u.tolist()]
    [0.45, 0.6]

  References:
    Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar & Zhang, "Deep Learning with Differential
    Privacy", ACM CCS 2016. https://arxiv.org/abs/1607.00133
  """
  fn = "differentially_private_aggregate"
  _checks.check_bound(fn, "l2_norm_clip", l2_norm_clip)
  _checks.check_scalar(fn, "noise_multiplier", noise_multiplier, low=0)
  make_key_data, impl = _key_maker(_key_or_seed(fn, key, seed), fn)

  def wrap(data):
    return jax.random.wrap_key_data(data) if impl is None else jax.random.wrap_key_data(
        data, impl=impl)

  def init_fn(params):
    del params
    return DifferentiallyPrivateAggregateState(rng_key=make_key_data())

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    grads, treedef = jax.tree.flatten(updates)
    batch = grads[0].shape[0] if grads and grads[0].ndim else None
    clipped, _ = per_example_global_norm_clip(grads, l2_norm_clip)  # sum_b g_b / max(1, |g_b|/C)
    noise_std = l2_norm_clip * noise_multiplier  # sigma C
    new_key, *keys = jax.random.split(wrap(state.rng_key), len(grads) + 1)
    noised = [(g + noise_std * jax.random.normal(k, g.shape, g.dtype)) / batch  # (sum + N) / B
              for g, k in zip(clipped, keys)]
    return (jax.tree.unflatten(treedef, noised),
            DifferentiallyPrivateAggregateState(rng_key=jax.random.key_data(new_key)))

  return GradientTransformationExtraArgs(init_fn, update_fn)


def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: Any,
    noise_multiplier: Any,
    seed: int,
    momentum: Any = None,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
  r"""DP-SGD: SGD (with optional momentum) on clipped, noised per-example gradients.

  Builds `chain(differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed=seed),
  trace(momentum, nesterov) or identity(), scale_by_learning_rate(learning_rate))`, as optax;
  see `differentially_private_aggregate` for the privatized gradient. The gradients passed to
  `update` must be per-example (batch on axis 0).

  Args:
    learning_rate: a float, array or schedule.
    l2_norm_clip: the per-example L2 norm bound :math:`C \ge 0`.
    noise_multiplier: :math:`\sigma \ge 0`, the noise's standard deviation over :math:`C`.
    seed: the int seed of the noise's PRNG key.
    momentum: None (no momentum) or the momentum decay.
    nesterov: Nesterov momentum.

  Returns:
    A `GradientTransformationExtraArgs`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.0, seed=0)
    >>> u, _ = tx.update(jnp.asarray([[3.0, 4.0]]), tx.init(jnp.zeros(2)))
    >>> [round(x, 4) for x in u.tolist()]
    [-0.06, -0.08]

  References:
    Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar & Zhang, "Deep Learning with Differential
    Privacy", ACM CCS 2016. https://arxiv.org/abs/1607.00133
  """
  fn = "dpsgd"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  if isinstance(seed, bool) or not isinstance(seed, int):
    raise TypeError(f"gradtx.{fn}: seed must be an int, got {type(seed).__name__} {seed!r}.")
  _checks.check_scalar(fn, "momentum", momentum, low=0, optional=True)
  _checks.check_bool(fn, "nesterov", nesterov)
  return chain(
      differentially_private_aggregate(l2_norm_clip, noise_multiplier, seed=seed),
      trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity(),
      scale_by_learning_rate(learning_rate),
  )
