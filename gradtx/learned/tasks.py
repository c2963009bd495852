"""Tasks for learned optimizers: families of random problems a learned optimizer is trained on.

A `Task` is a family, not one problem: `sample(key)` draws a problem instance (a pytree of arrays,
e.g. a random quadratic's `W` and `y`), `init_params(key, problem)` its starting point and
`loss(params, problem, key)` its objective (`key` draws a minibatch where the task has data; tasks
without data ignore it). Everything is a pure function of arrays, so a meta-training loop `vmap`s
over problem instances and `jit`s the whole unroll.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks

__all__ = ["Task", "quadratic_task"]


class Task(NamedTuple):
  """A family of optimization problems.

  Attributes:
    sample: ``key -> problem``, one random problem instance (a pytree of arrays).
    init_params: ``(key, problem) -> params``, the starting point of an optimization run.
    loss: ``(params, problem, key) -> scalar``, the objective (``key`` draws a minibatch where
      the task has data).
    name: a short name for reports.

  Example:
    >>> import jax
    >>> from gradtx import learned
    >>> task = learned.quadratic_task(dim=10)
    >>> problem = task.sample(jax.random.key(0))
    >>> params = task.init_params(jax.random.key(1), problem)
    >>> task.loss(params, problem, jax.random.key(2)).shape
    ()
  """

  sample: Callable[[jax.Array], Any]
  init_params: Callable[[jax.Array, Any], Any]
  loss: Callable[[Any, Any, jax.Array], jax.Array]
  name: str = "task"


def quadratic_task(dim: int = 10) -> Task:
  r"""Andrychowicz et al.'s random quadratics, :math:`f(\theta) = \lVert W\theta - y\rVert_2^2`.

  Each problem draws :math:`W \in \mathbb{R}^{d\times d}` and :math:`y \in \mathbb{R}^d` with
  i.i.d. standard normal entries (the paper's Section 3.1); the starting point :math:`\theta_0`
  is standard normal too.

  Args:
    dim: the dimension :math:`d` of :math:`\theta` (the paper uses 10).

  Returns:
    A `Task` whose problems are ``{"W": (d, d), "y": (d,)}`` and whose params are a ``(d,)`` array.

  Example:
    >>> import jax
    >>> from gradtx import learned
    >>> task = learned.quadratic_task(dim=3)
    >>> problem = task.sample(jax.random.key(0))
    >>> problem["W"].shape, problem["y"].shape
    ((3, 3), (3,))

  References:
    Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016.
  """
  _checks.check_int("learned.quadratic_task", "dim", dim, 1)

  def sample(key):
    kw, ky = jax.random.split(key)
    return {"W": jax.random.normal(kw, (dim, dim)), "y": jax.random.normal(ky, (dim,))}

  def init_params(key, problem):
    del problem
    return jax.random.normal(key, (dim,))

  def loss(params, problem, key):
    del key
    r = problem["W"] @ params - problem["y"]  # f(theta) = ||W theta - y||^2
    return jnp.sum(r * r)

  return Task(sample, init_params, loss, f"quadratic_{dim}d")
