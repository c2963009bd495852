"""Tasks for learned optimizers: families of random problems a learned optimizer is trained on.

A `Task` is a family, not one problem: `sample(key)` draws a problem instance (a pytree of arrays,
e.g. a random quadratic's `W` and `y`), `init_params(key, problem)` its starting point and
`loss(params, problem, key)` its objective (`key` draws a minibatch where the task has data; tasks
without data ignore it). Everything is a pure function of arrays, so a meta-training loop `vmap`s
over problem instances and `jit`s the whole unroll.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks

__all__ = ["Task", "digits_mlp_task", "quadratic_task", "wrap_task"]


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


def wrap_task(loss_fn: Callable[[Any, Any], jax.Array], init_params: Any, data: Any,
              batch_size: int | None = None, *, name: str = "wrapped") -> Task:
  """Makes a `Task` of any ``loss_fn(params, batch)`` and a dataset.

  Problem instances differ only by their starting point and minibatches: ``sample`` returns an
  empty problem ``{}``, ``init_params(key, problem)`` calls ``init_params(key)`` (or returns the
  given params), and ``loss(params, problem, key)`` draws ``batch_size`` rows of ``data`` with
  replacement (all rows when ``batch_size`` is None).

  Args:
    loss_fn: ``(params, batch) -> scalar``; ``batch`` has ``data``'s structure.
    init_params: ``key -> params``, or a params pytree every run starts from.
    data: a pytree of arrays sharing a leading axis (e.g. ``(x, y)``).
    batch_size: rows per minibatch, >= 1, or None for full-batch.
    name: a short name for reports.

  Returns:
    A `Task`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from gradtx import learned
    >>> x = jnp.arange(8.0)
    >>> task = learned.wrap_task(lambda w, b: jnp.mean((w * b - 1) ** 2), jnp.array(0.5), x, 4)
    >>> float(task.loss(task.init_params(None, {}), {}, jax.random.key(0))) >= 0
    True

  References:
    Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016. (the tasks a learned optimizer trains on)
  """
  fn = "learned.wrap_task"
  if not callable(loss_fn):
    raise TypeError(f"gradtx.{fn}: loss_fn must be callable (params, batch) -> scalar, got "
                    f"{type(loss_fn).__name__}.")
  leaves = jax.tree.leaves(data)
  if not leaves:
    raise ValueError(f"gradtx.{fn}: data must be a pytree of arrays with a leading batch axis, "
                     "got no arrays.")
  n = np.shape(leaves[0])[0] if np.ndim(leaves[0]) else 0
  if n < 1 or any(np.ndim(x) == 0 or np.shape(x)[0] != n for x in leaves):
    raise ValueError(f"gradtx.{fn}: every array in data must share one non-empty leading axis, "
                     f"got shapes {[np.shape(x) for x in leaves]}.")
  if batch_size is not None:
    _checks.check_int(fn, "batch_size", batch_size, 1)
  data = jax.tree.map(jnp.asarray, data)

  def sample(key):
    del key
    return {}

  def init(key, problem):
    del problem
    return init_params(key) if callable(init_params) else init_params

  def loss(params, problem, key):
    del problem
    if batch_size is None:
      return loss_fn(params, data)
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return loss_fn(params, jax.tree.map(lambda x: x[idx], data))

  return Task(sample, init, loss, name)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled digits, standardized (as `gradtx.demo` does), loaded once."""
  try:
    from sklearn import datasets  # noqa: PLC0415 - a dev dependency, imported when used
  except ImportError as e:
    raise ImportError("gradtx.learned.digits_mlp_task needs scikit-learn for its bundled digits "
                      "(nothing is downloaded): pip install scikit-learn, or "
                      "pip install -e '.[dev]'.") from e
  x, y = datasets.load_digits(return_X_y=True)
  std = x.std(axis=0)
  std[std == 0] = 1.0  # the always-blank corner pixels
  return ((x - x.mean(axis=0)) / std).astype(np.float32), y.astype(np.int32)


_ACTIVATIONS = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}


def digits_mlp_task(hidden: int = 20, activation: str = "sigmoid", batch_size: int = 128) -> Task:
  r"""A one-hidden-layer MLP classifying scikit-learn's 8x8 digits (64-hidden-10, cross-entropy).

  The small-scale stand-in for Andrychowicz et al.'s MNIST experiment (Section 3.2: one hidden
  layer of 20 sigmoid units, minibatches of 128); changing ``hidden`` or ``activation`` gives the
  paper's generalisation tests. Instances differ by their initialisation (scaled normal) and
  minibatch draws; all 1797 images are used for training.

  The loss of a minibatch :math:`B` is the mean cross-entropy
  :math:`f(\theta) = -\frac{1}{|B|}\sum_{(x, y) \in B} \log \operatorname{softmax}
  (W_2\, \sigma(W_1 x + b_1) + b_2)_y` with :math:`\sigma` = ``activation``.

  Args:
    hidden: hidden units, >= 1.
    activation: ``"sigmoid"``, ``"relu"`` or ``"tanh"``.
    batch_size: minibatch size, >= 1.

  Returns:
    A `Task` with params ``{"w1", "b1", "w2", "b2"}``. Needs scikit-learn (a dev dependency).

  Example:
    >>> import jax
    >>> from gradtx import learned
    >>> task = learned.digits_mlp_task(hidden=8)
    >>> params = task.init_params(jax.random.key(0), task.sample(jax.random.key(1)))
    >>> params["w1"].shape
    (64, 8)

  References:
    Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016.
  """
  fn = "learned.digits_mlp_task"
  _checks.check_int(fn, "hidden", hidden, 1)
  _checks.check_choice(fn, "activation", activation, tuple(_ACTIVATIONS))
  _checks.check_int(fn, "batch_size", batch_size, 1)
  x, y = _digits()
  act = _ACTIVATIONS[activation]

  def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w1": jax.random.normal(k1, (64, hidden)) / 8.0, "b1": jnp.zeros((hidden,)),
            "w2": jax.random.normal(k2, (hidden, 10)) / np.sqrt(hidden),
            "b2": jnp.zeros((10,))}

  def loss_fn(params, batch):
    xb, yb = batch
    logits = act(xb @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=-1))

  return wrap_task(loss_fn, init_params, (x, y), batch_size,
                   name=f"digits_mlp_{hidden}{activation}")
