"""Evolution-strategies meta-gradient estimators for truncated unrolls: antithetic ES and persistent
ES (PES, Vicol et al., ICML 2021).

Both treat an unroll as a black box ``unroll(meta_params, inner_state, key) -> (loss,
new_inner_state)`` and need no backpropagation through it, so they handle long horizons and
non-differentiable inner loops. Each antithetic pair ``i`` keeps its own two inner states, one run
with :math:`\\phi + \\epsilon_i` and one with :math:`\\phi - \\epsilon_i`, carried from truncation
to truncation. Plain truncated ES forgets the perturbations of earlier truncations and is biased
for the loss of the whole run; PES accumulates them in :math:`\\xi_i` and is unbiased.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks

__all__ = ["ESState", "es_gradient", "es_init"]


class ESState(NamedTuple):
  """The particles of `es_gradient`.

  Attributes:
    pos: The inner states of the positive perturbations (leading axis: the antithetic pairs).
    neg: The inner states of the negative perturbations.
    accumulator: Per pair, PES's accumulated perturbation (structured like meta_params).
  """

  pos: Any
  neg: Any
  accumulator: Any


def es_init(inner_state: Any, meta_params: Any) -> ESState:
  """Starts (or restarts, after the inner runs reset) the particles of `es_gradient`.

  Args:
    inner_state: the inner state of every antithetic pair, stacked on a leading axis.
    meta_params: the meta-parameters (gives the accumulator's structure).

  Returns:
    An `ESState` whose two particles of each pair start from ``inner_state`` with a zero
    accumulator.

  Example:
    >>> import jax.numpy as jnp
    >>> from gradtx import learned
    >>> s = learned.es_init(jnp.zeros((4, 2)), {"phi": jnp.zeros(3)})
    >>> s.accumulator["phi"].shape
    (4, 3)

  References:
    Vicol, Metz & Sohl-Dickstein, `Unbiased Gradient Estimation in Unrolled Computation Graphs with
    Persistent Evolution Strategies <https://arxiv.org/abs/2112.13835>`_, ICML 2021.
  """
  n = jax.tree.leaves(inner_state)[0].shape[0]
  acc = jax.tree.map(lambda m: jnp.zeros((n,) + jnp.shape(m), jnp.result_type(m)), meta_params)
  return ESState(inner_state, inner_state, acc)


def es_gradient(unroll: Callable[[Any, Any, jax.Array], tuple[jax.Array, Any]], meta_params: Any,
                state: ESState, key: jax.Array, *, sigma: float = 0.01, persistent: bool = True
                ) -> tuple[Any, jax.Array, ESState]:
  r"""One antithetic (P)ES estimate of the meta-gradient over one truncation.

  With :math:`\epsilon_i \sim \mathcal{N}(0, \sigma^2 I)` and :math:`N` pairs:

  .. math::
    \xi_i \leftarrow \xi_i + \epsilon_i \text{ (PES) or } \xi_i = \epsilon_i \text{ (ES)},\quad
    \hat g = \frac{1}{2N\sigma^2} \sum_i \xi_i \bigl(L(\phi+\epsilon_i; s^+_i)
    - L(\phi-\epsilon_i; s^-_i)\bigr)

  Summed over the truncations of a run, PES's estimates are unbiased for the gradient of the
  Gaussian-smoothed total loss (Vicol et al., Eq. 8); ES's are not (they drop how earlier
  truncations' perturbations affect later losses).

  Args:
    unroll: ``(meta_params, inner_state, key) -> (loss, new_inner_state)`` for one particle.
    meta_params: the current meta-parameters.
    state: the particles (`es_init`).
    key: a PRNG key for the perturbations and the unrolls (both particles of a pair share the
      unroll key, as antithetic sampling needs).
    sigma: the perturbations' standard deviation, > 0.
    persistent: accumulate perturbations over truncations (PES); False gives truncated ES.

  Returns:
    ``(gradient estimate like meta_params, mean loss of the pairs, new state)``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from gradtx import learned
    >>> unroll = lambda phi, s, key: (jnp.sum(phi ** 2), s)
    >>> state = learned.es_init(jnp.zeros((64, 1)), jnp.ones(2))
    >>> g, loss, state = learned.es_gradient(unroll, jnp.ones(2), state, jax.random.key(0))
    >>> g.shape
    (2,)

  References:
    Vicol, Metz and Sohl-Dickstein, `Unbiased gradient estimation in unrolled computation graphs
    with persistent evolution strategies <https://arxiv.org/abs/2112.13835>`_, ICML 2021;
    Salimans et al., `Evolution strategies as a scalable alternative to reinforcement learning
    <https://arxiv.org/abs/1703.03864>`_, 2017.
  """
  _checks.check_scalar("learned.es_gradient", "sigma", sigma, low=0.0, low_open=True)
  _checks.check_bool("learned.es_gradient", "persistent", persistent)
  n = jax.tree.leaves(state.pos)[0].shape[0]
  leaves, treedef = jax.tree.flatten(meta_params)
  k_eps, k_unroll = jax.random.split(key)
  keys = jax.random.split(k_eps, len(leaves))
  eps = treedef.unflatten([
      sigma * jax.random.normal(k, (n,) + jnp.shape(x), jnp.result_type(x))
      for k, x in zip(keys, leaves)])
  unroll_keys = jax.random.split(k_unroll, n)

  def pair(eps_i, pos, neg, k):
    plus = jax.tree.map(jnp.add, meta_params, eps_i)
    minus = jax.tree.map(jnp.subtract, meta_params, eps_i)
    l_pos, pos = unroll(plus, pos, k)
    l_neg, neg = unroll(minus, neg, k)
    return l_pos, l_neg, pos, neg

  l_pos, l_neg, pos, neg = jax.vmap(pair)(eps, state.pos, state.neg, unroll_keys)
  acc = jax.tree.map(jnp.add, state.accumulator, eps) if persistent else eps  # xi_i += eps_i
  diff = l_pos - l_neg
  grad = jax.tree.map(  # (1 / (2 N sigma^2)) sum_i xi_i (L+_i - L-_i)
      lambda a: jnp.tensordot(diff.astype(a.dtype), a, axes=1) / (2 * n * sigma**2), acc)
  return grad, 0.5 * jnp.mean(l_pos + l_neg), ESState(pos, neg, acc)
