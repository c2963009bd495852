"""Matrix-free curvature operators over parameter pytrees: Hessian, Gauss-Newton and Fisher.

Each factory linearises once (`jax.linearize` of the gradient, or of the network's outputs) and
returns a `LinearOperator` whose products reuse that linearisation, so k products cost one
forward-over-reverse pass plus k cheap applications. These are gradtx's one implementation of
curvature products (STYLE §13): the estimators, Lanczos, the monitor and optax's
`second_order` / Hutchinson helpers all go through them.

Batch averaging: `batches=` (an iterable of argument tuples) or `stacked_batches=` (a tuple of
arguments with a leading batch axis, scanned with `lax.map`) give the operator of the mean loss
over the batches, still with a single linearisation.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
from jax import flatten_util

__all__ = ["LinearOperator", "fisher", "gauss_newton", "hessian"]


class LinearOperator:
  """A symmetric linear operator on parameter pytrees.

  Built by `hessian`, `gauss_newton` and `fisher`. `op.matvec(v)` and `op(v)` return the product
  with a params-shaped pytree `v`; `to_dense()` the (n, n) matrix in
  `jax.flatten_util.ravel_pytree` order (small problems only); `diagonal()` the exact diagonal as
  a params-shaped pytree (n products, never an n x n matrix). `params` is the point of
  linearisation, `size` its number of entries.

  Args:
    matvec: `v -> H v` on params-shaped pytrees.
    params: the point of linearisation (a params pytree).
    name: a short name for messages (e.g. 'hessian').
  """

  def __init__(self, matvec: Callable[[Any], Any], params: Any, name: str):
    self._matvec = matvec
    self.params = params
    self.name = name
    flat, self.unravel = flatten_util.ravel_pytree(params)
    self.size = int(flat.size)
    self.dtype = flat.dtype

  def matvec(self, v: Any) -> Any:
    """The product with a params-shaped pytree `v` (a pytree of the same structure)."""
    return self._matvec(v)

  def __call__(self, v: Any) -> Any:
    return self._matvec(v)

  def ravel(self, tree: Any) -> jax.Array:
    """A params-shaped pytree as one flat vector (`ravel_pytree` order)."""
    return flatten_util.ravel_pytree(tree)[0]

  def flat_matvec(self, x: jax.Array) -> jax.Array:
    """The product with a flat vector, as a flat vector."""
    return self.ravel(self._matvec(self.unravel(x)))

  def to_dense(self) -> jax.Array:
    """The (n, n) matrix, column i = op(e_i), in `ravel_pytree` order."""
    eye = jnp.eye(self.size, dtype=self.dtype)
    return jax.vmap(self.flat_matvec)(eye).T

  def diagonal(self) -> Any:
    """The exact diagonal (one product per entry, `lax.map`: memory O(n)), params-shaped."""
    def entry(i):
      e = jax.nn.one_hot(i, self.size, dtype=self.dtype)
      return jnp.vdot(e, self.flat_matvec(e))
    return self.unravel(jax.lax.map(entry, jnp.arange(self.size)))

  def __repr__(self) -> str:
    return f"LinearOperator({self.name}, size={self.size}, dtype={self.dtype})"


def _check_scalar_loss(fn: str, what: str, f: Callable[..., Any], *args: Any) -> None:
  out = jax.eval_shape(f, *args)
  shape = getattr(out, "shape", None)
  if shape != ():
    raise ValueError(f"gradtx.curvature.{fn}: {what} must return a scalar loss, got "
                     f"{'shape ' + str(shape) if shape is not None else type(out).__name__}. "
                     "Hint: reduce the per-example losses with .mean() or .sum().")


def _batch_list(fn: str, args: tuple, batches: Iterable | None, stacked: Any) -> tuple:
  """(kind, batches): kind is 'single', 'list' or 'stacked'."""
  given = (len(args) > 0) + (batches is not None) + (stacked is not None)
  if given > 1:
    raise ValueError(f"gradtx.curvature.{fn}: pass the data either as *args, as batches= or as "
                     "stacked_batches=, not several of them.")
  if batches is not None:
    batches = [tuple(b) if isinstance(b, (tuple, list)) else (b,) for b in batches]
    if not batches:
      raise ValueError(f"gradtx.curvature.{fn}: batches must hold at least one batch, got none.")
    return "list", batches
  if stacked is not None:
    stacked = tuple(stacked) if isinstance(stacked, (tuple, list)) else (stacked,)
    return "stacked", stacked
  return "single", args


def _mean_over_batches(kind: str, batches: Any, f: Callable[..., Any]) -> Callable[[Any], Any]:
  """p -> mean over the batches of f(p, *batch), a pytree."""
  if kind == "single":
    return lambda p: f(p, *batches)
  if kind == "list":
    n = len(batches)
    return lambda p: jax.tree.map(lambda *xs: sum(xs) / n, *[f(p, *b) for b in batches])
  return lambda p: jax.tree.map(lambda x: jnp.mean(x, axis=0),
                                jax.lax.map(lambda b: f(p, *b), batches))


def hessian(loss_fn: Callable[..., Any], params: Any, *args: Any,
            batches: Iterable | None = None, stacked_batches: Any = None) -> LinearOperator:
  r"""The Hessian of `loss_fn(params, *args)` as a matrix-free operator.

  .. math:: H v = \nabla^2_\theta L(\theta) v
     = \tfrac{d}{d\epsilon} \nabla L(\theta + \epsilon v)\big|_{\epsilon=0}

  One `jax.linearize` of the gradient (forward-over-reverse) at construction; each product
  applies the stored linear map.

  Args:
    loss_fn: `loss_fn(params, *args)` -> scalar loss.
    params: the point (a pytree of arrays).
    *args: the data passed to `loss_fn`.
    batches: optional iterable of argument tuples; the operator is the mean over them.
    stacked_batches: optional tuple of arguments with a leading batch axis (scanned).

  Returns:
    A `LinearOperator`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.hessian(lambda p: jnp.sum(p ** 3), jnp.asarray([1.0, 2.0]))
    >>> op.to_dense()
    Array([[ 6.,  0.],
           [ 0., 12.]], dtype=float32)

  References:
    Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation 6(1),
    1994 (the Hessian-vector product as forward-over-reverse differentiation).
  """
  kind, data = _batch_list("hessian", args, batches, stacked_batches)
  first = data[0] if kind == "list" else (
      jax.tree.map(lambda x: x[0], data) if kind == "stacked" else data)
  _check_scalar_loss("hessian", "loss_fn", loss_fn, params, *first)
  grad_fn = _mean_over_batches(kind, data, jax.grad(loss_fn))
  _, hvp = jax.linearize(grad_fn, params)
  return LinearOperator(hvp, params, "hessian")


def gauss_newton(predict_fn: Callable[..., Any], output_loss_fn: Callable[..., Any], params: Any,
                 *args: Any, loss_args: tuple = (), batches: Iterable | None = None,
                 stacked_batches: Any = None) -> LinearOperator:
  r"""The generalised Gauss-Newton matrix :math:`J^\top H_L J` as a matrix-free operator.

  .. math:: G v = J^\top H_L J v, \quad J = \partial f(\theta) / \partial \theta, \quad
            H_L = \nabla^2_z \ell(z)\big|_{z = f(\theta)}

  positive semi-definite when :math:`\ell` is convex in the outputs. The network is linearised
  once (`jax.linearize`, transposed for :math:`J^\top`) and the output loss's gradient once.

  Args:
    predict_fn: `predict_fn(params, *args)` -> outputs (a pytree).
    output_loss_fn: `output_loss_fn(outputs, *loss_args)` -> scalar loss (with no `loss_args`,
      `output_loss_fn(outputs)`).
    params: the point.
    *args: the inputs passed to `predict_fn`.
    loss_args: the arguments passed to `output_loss_fn` after the outputs (e.g. the targets).
    batches: optional iterable of `(args, loss_args)` pairs; the operator is their mean.
    stacked_batches: optional `(args, loss_args)` with a leading batch axis (scanned).

  Returns:
    A `LinearOperator`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> op = gradtx.curvature.gauss_newton(lambda p: p ** 2, lambda z: 0.5 * jnp.sum(z ** 2),
    ...                                    jnp.asarray([1.0, 2.0]))
    >>> op.to_dense()
    Array([[ 4.,  0.],
           [ 0., 16.]], dtype=float32)

  References:
    Schraudolph, `Fast Curvature Matrix-Vector Products for Second-Order Gradient Descent
    <https://doi.org/10.1162/08997660260028683>`_, Neural Computation 2002.
  """
  fn = "gauss_newton"
  given = (len(args) > 0 or len(loss_args) > 0) + (batches is not None) + (
      stacked_batches is not None)
  if given > 1:
    raise ValueError(f"gradtx.curvature.{fn}: pass the data either as *args/loss_args, as "
                     "batches= or as stacked_batches=, not several of them.")
  if batches is not None:
    pairs = [(tuple(a), tuple(la)) for a, la in batches]
    if not pairs:
      raise ValueError(f"gradtx.curvature.{fn}: batches must hold at least one batch, got none.")
    outs0 = jax.eval_shape(lambda p: predict_fn(p, *pairs[0][0]), params)
    _check_scalar_loss(fn, "output_loss_fn", lambda o: output_loss_fn(o, *pairs[0][1]), outs0)
    n = len(pairs)
    predict = lambda p: [predict_fn(p, *a) for a, _ in pairs]
    loss = lambda outs: sum(output_loss_fn(o, *la) for o, (_, la) in zip(outs, pairs)) / n
  elif stacked_batches is not None:
    s_args, s_loss_args = (tuple(x) for x in stacked_batches)
    first = lambda t: jax.tree.map(lambda x: x[0], t)
    outs0 = jax.eval_shape(lambda p: predict_fn(p, *first(s_args)), params)
    _check_scalar_loss(fn, "output_loss_fn", lambda o: output_loss_fn(o, *first(s_loss_args)),
                       outs0)
    predict = lambda p: jax.lax.map(lambda a: predict_fn(p, *a), s_args)
    loss = lambda outs: jnp.mean(jax.lax.map(lambda ol: output_loss_fn(ol[0], *ol[1]),
                                             (outs, s_loss_args)))
  else:
    outs0 = jax.eval_shape(lambda p: predict_fn(p, *args), params)
    _check_scalar_loss(fn, "output_loss_fn", lambda o: output_loss_fn(o, *loss_args), outs0)
    predict = lambda p: predict_fn(p, *args)
    loss = lambda o: output_loss_fn(o, *loss_args)
  outputs, jvp = jax.linearize(predict, params)
  vjp = jax.linear_transpose(jvp, params)
  _, loss_hvp = jax.linearize(jax.grad(loss), outputs)

  def matvec(v):
    return vjp(loss_hvp(jvp(v)))[0]

  return LinearOperator(matvec, params, "gauss_newton")


def fisher(loss_fn: Callable[..., Any], params: Any, *batch: Any,
           batches: Iterable | None = None, stacked_batches: Any = None) -> LinearOperator:
  r"""The empirical Fisher, the mean outer product of per-example gradients, as an operator.

  .. math:: F v = \frac{1}{N} \sum_{i=1}^N g_i (g_i^\top v), \quad
            g_i = \nabla_\theta \ell(\theta; x_i)

  The per-example gradients are computed once (`vmap` of `grad`: memory N x n) and reused.

  Args:
    loss_fn: `loss_fn(params, *example)` -> one example's scalar loss.
    params: the point.
    *batch: the examples, each argument with the leading example axis.
    batches: optional iterable of batch tuples; the mean runs over all their examples.
    stacked_batches: optional tuple with axes (num_batches, batch_size, ...) (scanned).

  Returns:
    A `LinearOperator`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> loss = lambda p, x: 0.5 * (p @ x) ** 2
    >>> op = gradtx.curvature.fisher(loss, jnp.asarray([1.0, 0.0]), jnp.eye(2))
    >>> op.to_dense()
    Array([[0.5, 0. ],
           [0. , 0. ]], dtype=float32)

  References:
    Kunstner, Hennig and Balles, `Limitations of the empirical Fisher approximation for natural
    gradient descent <https://arxiv.org/abs/1905.12558>`_, NeurIPS 2019.
  """
  fn = "fisher"
  kind, data = _batch_list(fn, batch, batches, stacked_batches)
  if kind == "single" and not data:
    raise ValueError(f"gradtx.curvature.{fn}: pass the examples as *batch (leading axis), as "
                     "batches= or as stacked_batches=.")
  first_batch = data[0] if kind == "list" else (
      jax.tree.map(lambda x: x[0], data) if kind == "stacked" else data)
  _check_scalar_loss(fn, "loss_fn", loss_fn, params, *jax.tree.map(lambda x: x[0], first_batch))
  per_example = jax.vmap(jax.grad(loss_fn), in_axes=(None,) + (0,) * len(first_batch))
  if kind == "single":
    grads = per_example(params, *data)
  elif kind == "list":
    grads = jax.tree.map(lambda *g: jnp.concatenate(g), *[per_example(params, *b) for b in data])
  else:
    grads = jax.lax.map(lambda b: per_example(params, *b), data)
    grads = jax.tree.map(lambda g: g.reshape((-1,) + g.shape[2:]), grads)

  def matvec(v):
    dots = sum(jnp.tensordot(g, x, axes=x.ndim) for g, x in
               zip(jax.tree.leaves(grads), jax.tree.leaves(v)))
    num = dots.shape[0]
    return jax.tree.map(lambda g: jnp.tensordot(dots, g, axes=1) / num, grads)

  return LinearOperator(matvec, params, "fisher")
