"""A per-parameter MLP learned optimizer in the style of Metz et al.'s learned_optimization."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from gradtx import _checks
from gradtx import base
from gradtx import numerics
from gradtx._trees import is_none
from gradtx.learned import _common
from gradtx.learned.lstm import LearnedOptimizer

__all__ = ["MLPOptimizerState", "mlp_optimizer"]


class MLPOptimizerState(NamedTuple):
  """State of `mlp_optimizer`'s transformation.

  Attributes:
    count: The int32 step count.
    mu: ``mu[k]`` is the running average of the gradient at ``decays[k]`` (trees like params).
    nu: The running average of the squared gradient at ``rms_decay`` (a tree like params).
  """

  count: jax.Array
  mu: tuple[Any, ...]
  nu: Any


def mlp_optimizer(hidden_size: int = 32, num_hidden: int = 2,
                  decays: Sequence[float] = (0.5, 0.9, 0.99, 0.999), rms_decay: float = 0.999, *,
                  step_mult: float = 1e-3, exp_mult: float = 1e-3, eps: float = 1e-8
                  ) -> LearnedOptimizer:
  r"""A small MLP, shared by every coordinate, that maps per-coordinate features to a step.

  Each coordinate's features are its parameter value :math:`\theta`, its gradient :math:`g`,
  momenta :math:`m_k` at several timescales, and :math:`g/\sqrt{v}`. Each feature is normalised
  by its root mean square over the tensor (as in learned_optimization's ``MLPLOpt``). The MLP
  outputs a direction :math:`d` and a log-magnitude :math:`s`:

  .. math::
    m_k \leftarrow \beta_k m_k + (1-\beta_k) g, \quad v \leftarrow \beta_v v + (1-\beta_v) g^2 \\
    x = \mathrm{norm}(\theta, g, m_1..m_K, g/\sqrt{v+\epsilon}), \quad (d, s) = \mathrm{MLP}_\phi(x)
    \\ \Delta\theta = \text{step\_mult}\cdot d \cdot \exp(\text{exp\_mult}\cdot s)

  Args:
    hidden_size: units of each hidden layer.
    num_hidden: hidden layers (ReLU).
    decays: the momenta's decay rates, each in [0, 1).
    rms_decay: decay of the squared-gradient average, in [0, 1).
    step_mult: scale of the output direction.
    exp_mult: scale of the output log-magnitude.
    eps: added to ``v`` and to the feature normaliser.

  Returns:
    A `LearnedOptimizer`; its transformation needs ``params`` in ``update`` and keeps an
    `MLPOptimizerState`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from gradtx import learned
    >>> opt = learned.mlp_optimizer()
    >>> tx = opt.transformation(opt.init_meta_params(jax.random.key(0)))
    >>> params = jnp.ones(3)
    >>> updates, state = tx.update(jnp.ones(3), tx.init(params), params)
    >>> len(state.mu)
    4

  References:
    Metz et al., `Tasks, stability, architecture, and compute: training more effective learned
    optimizers, and using them to train themselves <https://arxiv.org/abs/2009.11243>`_, 2020;
    Metz et al., `Understanding and correcting pathologies in the training of learned
    optimizers <https://arxiv.org/abs/1810.10180>`_, ICML 2019.
  """
  fn = "learned.mlp_optimizer"
  _checks.check_int(fn, "hidden_size", hidden_size, 1)
  _checks.check_int(fn, "num_hidden", num_hidden, 0)
  if isinstance(decays, (str, bytes)) or not isinstance(decays, Sequence) or not decays:
    raise TypeError(f"gradtx.{fn}: decays must be a non-empty sequence of floats, got {decays!r}.")
  decays = tuple(decays)
  for d in decays:
    _checks.check_scalar(fn, "decays", d, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "rms_decay", rms_decay, low=0.0, high=1.0, high_open=True)
  _checks.check_scalar(fn, "step_mult", step_mult)
  _checks.check_scalar(fn, "exp_mult", exp_mult)
  _checks.check_scalar(fn, "eps", eps, low=0.0)
  num_features = 3 + len(decays)

  def init_meta_params(key: jax.Array) -> dict[str, Any]:
    sizes = [num_features] + [hidden_size] * num_hidden + [2]
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:]):
      w = jax.random.normal(k, (n_in, n_out)) * math.sqrt(2.0 / n_in)  # He initialisation
      layers.append({"w": w, "b": jnp.zeros((n_out,))})
    return {"layers": tuple(layers)}

  expected = jax.eval_shape(init_meta_params, jax.random.key(0))

  def transformation(meta_params: Any) -> base.GradientTransformation:
    _common.check_meta_params(f"{fn}.transformation", meta_params, expected)
    dtype = jnp.result_type(meta_params["layers"][0]["w"])

    def init_fn(params):
      zeros = lambda q: jnp.zeros(jnp.shape(q), dtype)
      return MLPOptimizerState(jnp.zeros([], jnp.int32),
                               tuple(jax.tree.map(zeros, params) for _ in decays),
                               jax.tree.map(zeros, params))

    def step(g, p, mus, nu):
      g32, p32 = g.astype(dtype), p.astype(dtype)
      mus = tuple(b * m + (1 - b) * g32 for b, m in zip(decays, mus))  # m_k = b_k m_k + (1-b_k) g
      nu = rms_decay * nu + (1 - rms_decay) * g32 * g32  # v = b_v v + (1-b_v) g^2
      feats = jnp.stack([p32, g32, *mus, g32 * jax.lax.rsqrt(nu + eps)], axis=-1)
      feats = jnp.reshape(feats, (-1, num_features))
      feats = feats * jax.lax.rsqrt(jnp.mean(feats * feats, axis=0) + eps)  # per-tensor RMS norm
      x = feats
      for i, layer in enumerate(meta_params["layers"]):
        x = x @ layer["w"] + layer["b"]
        if i < len(meta_params["layers"]) - 1:
          x = jax.nn.relu(x)
      d, s = x[:, 0], x[:, 1]
      delta = step_mult * d * jnp.exp(exp_mult * s)  # step_mult * d * exp(exp_mult * s)
      return jnp.reshape(delta, jnp.shape(g)).astype(jnp.result_type(g)), mus, nu

    def update_fn(updates, state, params=None, **extra_args):
      del extra_args
      if params is None:
        raise _checks.missing_params_error(fn)
      _checks.check_same_structure(fn, "updates", updates, "params", params)
      treedef = jax.tree.structure(updates, is_leaf=is_none)
      grads = treedef.flatten_up_to(updates)
      ps = treedef.flatten_up_to(params)
      mus = [treedef.flatten_up_to(m) for m in state.mu]
      nus = treedef.flatten_up_to(state.nu)
      out_u, out_m, out_v = [], [[] for _ in decays], []
      for i, g in enumerate(grads):
        if g is None:
          u, mi, vi = None, [m[i] for m in mus], nus[i]
        else:
          u, mi, vi = step(g, ps[i], [m[i] for m in mus], nus[i])
        out_u.append(u)
        out_v.append(vi)
        for k in range(len(decays)):
          out_m[k].append(mi[k])
      return treedef.unflatten(out_u), MLPOptimizerState(
          numerics.safe_increment(state.count), tuple(treedef.unflatten(m) for m in out_m),
          treedef.unflatten(out_v))

    return base.GradientTransformation(init_fn, update_fn)

  return LearnedOptimizer(init_meta_params, transformation, f"mlp_{num_hidden}x{hidden_size}")
