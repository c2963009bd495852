"""Hyperparameter sweeps as one jitted program: `grid_sweep` runs the Cartesian product of grids as a `vmap` (chunked on CPU)."""

from __future__ import annotations

import functools
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "grid_sweep",
]


def grid_sweep(
    train_fn: Callable[..., Any],
    /,
    *,
    chunk_size: int | str | None = "auto",
    **grids: Any,
) -> Any:
  """Runs `train_fn` on every combination of the grids, as one jitted, vmapped program.

  `train_fn(**hyperparams)` trains one configuration and returns a pytree of arrays (final loss,
  params, a loss curve); it builds its optimizer from the traced values it receives, e.g.
  `gradtx.adamw(learning_rate=learning_rate, weight_decay=weight_decay)`, or writes them into an
  injected state with `set_hyperparams`, and loops with `jax.lax.scan`. The Cartesian product of
  the 1-d `grids` is flattened, vmapped and compiled once with `jax.jit`: 64 learning rates x 4
  weight decays are 256 trainings in one program, with results of shape `(64, 4, ...)`, the grid
  axes in keyword order. A grid of integer seeds gives repeats of each configuration. Calling
  `grid_sweep` again with the same `train_fn` and grid shapes reuses the compiled program.

  `chunk_size=None` vectorizes all configurations at once, the usual best on an accelerator.
  `chunk_size=k` runs the
  flattened grid as a `jax.lax.map` over chunks of `k` vmapped configurations, inside the same
  compiled program, so peak memory is that of `k` runs; choose it when the full batch does not fit
  (large models, big grids on an accelerator). The default `'auto'` is `None` on accelerators
  and 8 on CPU, where vectorizing more configurations than that ran slower in our measurements
  (their working set outgrows the caches; benchmarks/RESULTS.md, "Sweeps"). Each
  configuration's numbers are those of its own run either way.

  Args:
    train_fn: a function of the grids' names returning a pytree of arrays.
    chunk_size: 'auto', None, or the number of configurations vectorized together (an
      int >= 1).
    **grids: one non-empty 1-d array (or list) of values per argument of `train_fn`.

  Returns:
    `train_fn`'s output with leading axes `tuple(len(g) for g in grids.values())`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> def train(lr, wd):  # one adamw step on sum(p**2) from p = 1
    ...   tx, p = gradtx.adamw(lr, weight_decay=wd), jnp.ones(1)
    ...   return gradtx.apply_updates(p, tx.update(2 * p, tx.init(p), p)[0])
    >>> gradtx.grid_sweep(train, lr=jnp.asarray([0.1, 0.2, 0.5]), wd=jnp.asarray([0.0, 1.0])).shape
    (3, 2, 1)

  References:
    `jax.vmap` over the grid's flattened product (`itertools.product`).
  """
  if not callable(train_fn):
    raise TypeError(
        f"gradtx.grid_sweep: train_fn must be callable, got {type(train_fn).__name__}.")
  if isinstance(chunk_size, str) and chunk_size == "auto":
    chunk_size = _AUTO_CPU_CHUNK if jax.default_backend() == "cpu" else None
  if chunk_size is not None and (isinstance(chunk_size, bool)
                                 or not isinstance(chunk_size, numbers.Integral)
                                 or chunk_size < 1):
    raise ValueError(
        f"gradtx.grid_sweep: chunk_size must be 'auto', None or an int >= 1, got "
        f"{chunk_size!r}.")
  if not grids:
    raise ValueError(
        "gradtx.grid_sweep: give at least one grid, e.g. "
        "grid_sweep(train, learning_rate=jnp.logspace(-4, -1, 64)).")
  names = list(grids)
  axes = []
  for name, grid in grids.items():
    axis = jnp.asarray(grid)
    if axis.ndim != 1 or axis.shape[0] == 0:
      raise ValueError(
          f"gradtx.grid_sweep: {name} must be a non-empty 1-d grid of values, got shape "
          f"{axis.shape}.")
    axes.append(axis)
  shape = tuple(axis.shape[0] for axis in axes)
  try:
    program = _sweep_program(train_fn, tuple(names), shape, chunk_size)
  except TypeError:  # an unhashable callable (e.g. a callable object): compile uncached
    program = _sweep_program.__wrapped__(train_fn, tuple(names), shape, chunk_size)
  return program(*axes)


# Configurations vectorized together on CPU by chunk_size='auto' (measured: benchmarks/).
_AUTO_CPU_CHUNK = 8


@functools.lru_cache(maxsize=32)
def _sweep_program(train_fn: Callable[..., Any], names: tuple[str, ...], shape: tuple[int, ...],
                   chunk_size: int | None) -> Callable[..., Any]:
  """The jitted sweep, cached so that calling `grid_sweep` again with the same `train_fn` and
  grid shapes reuses the compiled program instead of compiling a new one."""
  size = int(np.prod(shape))

  def one(values):
    return train_fn(**dict(zip(names, values)))

  def run_all(*axes):
    flat = [m.reshape(-1) for m in jnp.meshgrid(*axes, indexing="ij")]
    if chunk_size is None or chunk_size >= size:
      out = jax.vmap(one)(flat)
    else:
      out = jax.lax.map(one, flat, batch_size=int(chunk_size))
    return jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), out)

  return jax.jit(run_all)
