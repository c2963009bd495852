"""gradtx's optimizers on a small network and on classic test functions: `python -m gradtx.demo`.

The `digits` suite (the default) trains a Flax nnx MLP on scikit-learn's bundled digits (nothing
downloaded) with each of gradtx's main optimizers, every one as a single jitted `jax.lax.scan`
over minibatch steps, shows a progress bar, prints a table (final training loss, test accuracy,
wall time, steps per second) and writes a PNG of the loss curves. It lives in
`gradtx/demo/digits.py` and needs the dev extra (flax, scikit-learn, matplotlib).

The `functions` suite runs each optimizer on the functions of Ruder's overview
figures (Beale, Rosenbrock, the saddle :math:`x^2 - y^2`) and on an ill-conditioned quadratic.
For one function and one optimizer, the whole learning-rate grid is a single jitted `jax.vmap`
whose body builds the optimizer from the batched learning rate
(`jax.vmap(lambda lr: run(gradtx.adam(lr)))(lrs)`, the sweep pattern of the style guide) and
trains with a `jax.lax.scan` over steps that records the loss. The table gives, per function and
optimizer, the best learning rate of the grid (of those that end within the tolerance, the one
that got there in the fewest steps; if none does, the one that ends lowest), its steps to the
tolerance (the number of updates after which loss - f_min < tol first holds, "-" if never), its
final loss and the wall time of the sweep (compile and run). On the saddle, which is unbounded
below, the tolerance is escaping (loss < -1) and each run stops there.

Run `python -m gradtx.demo --help` for the options. Only gradtx's public API is used.

References:
  Ruder, "An overview of gradient descent optimization algorithms", arXiv 2016.
  https://arxiv.org/abs/1609.04747
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx.demo import digits as _demo_digits

# ------------------------------------------------------------------------------------------------
# Test functions.


@dataclasses.dataclass(frozen=True)
class Problem:
  """A test function, its start, its minimum and what counts as reaching it."""

  name: str
  fn: Callable[[jax.Array], jax.Array]
  start: tuple[float, ...]
  f_min: float                   # the minimum value (-inf when unbounded below)
  escape: float | None = None    # unbounded functions: success is loss < escape; runs stop there
  note: str = ""


def _beale(p: jax.Array) -> jax.Array:
  x, y = p[0], p[1]
  return (1.5 - x + x * y)**2 + (2.25 - x + x * y**2)**2 + (2.625 - x + x * y**3)**2


def _rosenbrock(p: jax.Array) -> jax.Array:
  x, y = p[0], p[1]
  return (1.0 - x)**2 + 100.0 * (y - x**2)**2


def _saddle(p: jax.Array) -> jax.Array:
  return p[0]**2 - p[1]**2


_QUADRATIC_DIM = 10
_QUADRATIC_CONDITION = 1000.0


def _quadratic(p: jax.Array) -> jax.Array:
  # Curvatures log-spaced from 1 to 1000 along the axes: condition number 1000.
  h = jnp.logspace(0.0, math.log10(_QUADRATIC_CONDITION), _QUADRATIC_DIM, dtype=p.dtype)
  return 0.5 * jnp.sum(h * p**2)


PROBLEMS: tuple[Problem, ...] = (
    Problem("beale", _beale, (1.0, 1.5), 0.0, note="min at (3, 0.5)"),
    Problem("rosenbrock", _rosenbrock, (-1.2, 1.0), 0.0, note="min at (1, 1)"),
    Problem("saddle", _saddle, (1.0, 1e-3), -math.inf, escape=-1.0,
            note="x^2 - y^2, unbounded: 'steps' = steps to escape (loss < -1)"),
    Problem("quadratic", _quadratic, tuple(1.0 + 0.1 * i for i in range(_QUADRATIC_DIM)), 0.0,
            note=f"0.5 sum h_i x_i^2, {_QUADRATIC_DIM}-d, condition number "
                 f"{_QUADRATIC_CONDITION:g}"),
)

# ------------------------------------------------------------------------------------------------
# Optimizers: name -> (build(learning_rate, seed), learning-rate grid).

_SGD_LRS = (1e-4, 1e-3, 1e-2)
_ADAPTIVE_LRS = (1e-3, 1e-2, 1e-1)

OPTIMIZERS: dict[str, tuple[Callable[[Any, int], Any], tuple[float, ...]]] = {
    "sgd": (lambda lr, seed: gradtx.sgd(lr), _SGD_LRS),
    "momentum": (lambda lr, seed: gradtx.sgd(lr, momentum=0.9), _SGD_LRS),
    "nesterov": (lambda lr, seed: gradtx.sgd(lr, momentum=0.9, nesterov=True), _SGD_LRS),
    "sgdw": (lambda lr, seed: gradtx.sgdw(lr), _SGD_LRS),
    "noisy_sgd": (lambda lr, seed: gradtx.noisy_sgd(lr, key=seed), _SGD_LRS),
    "adagrad": (lambda lr, seed: gradtx.adagrad(lr), (1e-2, 1e-1, 1.0)),
    "adadelta": (lambda lr, seed: gradtx.adadelta(lr), (1.0, 10.0, 100.0)),
    "rmsprop": (lambda lr, seed: gradtx.rmsprop(lr), _ADAPTIVE_LRS),
    "adam": (lambda lr, seed: gradtx.adam(lr), _ADAPTIVE_LRS),
    "adamw": (lambda lr, seed: gradtx.adamw(lr), _ADAPTIVE_LRS),
    "adamax": (lambda lr, seed: gradtx.adamax(lr), _ADAPTIVE_LRS),
    "nadam": (lambda lr, seed: gradtx.nadam(lr), _ADAPTIVE_LRS),
    "amsgrad": (lambda lr, seed: gradtx.amsgrad(lr), _ADAPTIVE_LRS),
    # PowerSign and AddSign scale the gradient itself by up to alpha (e) or 1 + alpha (2): the
    # step is SGD's, and so is the stable learning-rate range.
    "powersign": (lambda lr, seed: gradtx.powersign(lr), _SGD_LRS),
    "addsign": (lambda lr, seed: gradtx.addsign(lr), _SGD_LRS),
}

# ------------------------------------------------------------------------------------------------
# One sweep: all learning rates of one optimizer on one function, one jitted vmap.


def _sweep_fn(problem: Problem, build: Callable[[Any, int], Any], steps: int, seed: int
              ) -> Callable[[jax.Array], jax.Array]:
  """Returns `jit(vmap(run))`: learning rates `(n,)` -> losses `(n, steps + 1)`."""
  start = jnp.asarray(problem.start, jnp.float32)
  value_and_grad = jax.value_and_grad(problem.fn)

  def run(learning_rate):
    tx = build(learning_rate, seed)  # built inside vmap: the closures capture the batched lr

    def step(carry, _):
      params, state = carry
      loss, grads = value_and_grad(params)
      updates, new_state = tx.update(grads, state, params)
      new_carry = (gradtx.apply_updates(params, updates), new_state)
      if problem.escape is not None:  # unbounded below: stop once escaped, before overflowing
        escaped = loss < problem.escape
        new_carry = jax.tree.map(
            lambda new, old: jax.lax.select(escaped, old, new), new_carry, carry)
      return new_carry, loss

    (params, _), losses = jax.lax.scan(step, (start, tx.init(start)), length=steps)
    return jnp.append(losses, problem.fn(params))  # losses at steps 0, 1, ..., steps

  return jax.jit(jax.vmap(run))


@dataclasses.dataclass(frozen=True)
class Result:
  """One row of the table: the best learning rate of one optimizer on one function."""

  function: str
  optimizer: str
  best_lr: float
  steps: int | None      # first step whose loss reached the tolerance (None: never)
  final_loss: float
  seconds: float         # wall time of the sweep, compile included
  losses: np.ndarray     # (len(lrs), steps + 1) loss curves of the whole grid
  lrs: tuple[float, ...]


def _first_success(losses: np.ndarray, problem: Problem, tol: float) -> np.ndarray:
  """Per learning rate, the first step whose loss is within `tol` (or escaped); -1 if none."""
  with np.errstate(invalid="ignore"):
    if problem.escape is not None:
      ok = losses < problem.escape
    else:
      ok = (losses - problem.f_min) < tol
  return np.where(ok.any(axis=1), ok.argmax(axis=1), -1)


def run_sweep(problem: Problem, name: str, steps: int, tol: float, seed: int) -> Result:
  """Runs one optimizer's learning-rate grid on one function and picks the best rate."""
  build, lrs = OPTIMIZERS[name]
  t0 = time.perf_counter()
  losses = _sweep_fn(problem, build, steps, seed)(jnp.asarray(lrs, jnp.float32))
  losses = np.asarray(jax.block_until_ready(losses), dtype=np.float64)
  seconds = time.perf_counter() - t0
  first = _first_success(losses, problem, tol)
  final = np.where(np.isfinite(losses[:, -1]), losses[:, -1], np.inf)
  ends_ok = _first_success(losses[:, -1:], problem, tol) == 0
  # The rates that end within the tolerance, fewest steps first; if none does, the rate with the
  # lowest final loss (a rate that touched the tolerance and then diverged does not win).
  rank = sorted(range(len(lrs)),
                key=lambda i: (not ends_ok[i], first[i] if ends_ok[i] else 0, final[i]))
  best = rank[0]
  return Result(problem.name, name, lrs[best], None if first[best] < 0 else int(first[best]),
                float(losses[best, -1]), seconds, losses, tuple(lrs))


# ------------------------------------------------------------------------------------------------
# The table and the command line.


def _format_table(results: Sequence[Result]) -> str:
  header = f"{'function':<11} {'optimizer':<10} {'best lr':>8} {'steps':>6} {'final loss':>11} " \
           f"{'time (s)':>8}"
  lines = [header, "-" * len(header)]
  previous = None
  for r in results:
    if previous is not None and r.function != previous:
      lines.append("")
    previous = r.function
    steps = "-" if r.steps is None else str(r.steps)
    lines.append(f"{r.function:<11} {r.optimizer:<10} {r.best_lr:>8.0e} {steps:>6} "
                 f"{r.final_loss:>11.3e} {r.seconds:>8.2f}")
  return "\n".join(lines)


def run_functions(args: argparse.Namespace) -> list[Result]:
  """The `functions` suite: every optimizer on every test function; prints the table."""
  print(f"gradtx demo, suite 'functions': {args.steps} steps, tolerance {args.tol:g} "
        f"(loss - f_min), seed {args.seed}, device {jax.devices()[0].platform}")
  for p in PROBLEMS:
    print(f"  {p.name:<11} start {p.start[:2]}{'...' if len(p.start) > 2 else ''}, {p.note}")
  print("  learning-rate grids: " + "; ".join(
      f"{name} {'/'.join(f'{lr:g}' for lr in OPTIMIZERS[name][1])}" for name in args.optimizers))
  print()
  results, skipped = [], []
  t0 = time.perf_counter()
  for problem in PROBLEMS:
    for name in args.optimizers:
      try:
        results.append(run_sweep(problem, name, args.steps, args.tol, args.seed))
      except AttributeError as e:  # an alias not in this version of gradtx
        if name not in skipped:
          skipped.append(name)
          print(f"  skipped {name}: {e}")
  print(_format_table(results))
  print(f"\ntotal {time.perf_counter() - t0:.1f} s")
  return results


SUITES: dict[str, Callable[[argparse.Namespace], list[Any]]] = {
    "digits": _demo_digits.run_digits,
    "functions": run_functions,
}
SUITE_OPTIMIZERS: dict[str, dict[str, Any]] = {
    "digits": _demo_digits.OPTIMIZERS,
    "functions": OPTIMIZERS,
}
# What runs without --optimizers (digits: the classic optimizers; the zoo is opt-in).
SUITE_DEFAULTS: dict[str, tuple[str, ...]] = {"digits": _demo_digits.DEFAULT_OPTIMIZERS}


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m gradtx.demo",
      description="Runs gradtx's optimizers on a small problem. Suite 'digits' (the default): "
                  "trains a Flax nnx MLP on scikit-learn's digits with each optimizer (one "
                  "jitted lax.scan each), prints final training loss, test accuracy, wall time "
                  "and steps/s, and writes a PNG of the loss curves. Suite 'functions': the "
                  "classic test functions; prints, per function and optimizer, the best learning "
                  "rate of a small grid, the steps it took to reach the tolerance, the final loss "
                  "and the wall time.")
  parser.add_argument("--suite", choices=sorted(SUITES), default="digits",
                      help="'digits': an MLP on scikit-learn's digits (needs flax, scikit-learn, "
                           "matplotlib: pip install -e '.[dev]'); 'functions': Beale, "
                           "Rosenbrock, the saddle x^2 - y^2 and an ill-conditioned quadratic "
                           "(default: %(default)s)")
  parser.add_argument("--optimizers", default=None,
                      help="comma-separated optimizers to run (default: digits: "
                           f"{', '.join(_demo_digits.DEFAULT_OPTIMIZERS)}; functions: all of "
                           f"its own); digits can also run {', '.join(list(_demo_digits.OPTIMIZERS)[len(_demo_digits.DEFAULT_OPTIMIZERS):])}; functions: "
                           f"{', '.join(OPTIMIZERS)})")
  parser.add_argument("--steps", type=int, default=1000,
                      help="optimization steps per run (default: %(default)s)")
  parser.add_argument("--seed", type=int, default=0,
                      help="random seed: digits' train/test split, minibatch order and model "
                           "initialisation; the noise of noisy_sgd in 'functions' "
                           "(default: %(default)s)")
  parser.add_argument("--batch-size", type=int, default=128,
                      help="digits: minibatch size (default: %(default)s)")
  parser.add_argument("--output", default=_demo_digits.DEFAULT_OUTPUT,
                      help="digits: path of the PNG of loss curves and test accuracies, 'none' "
                           "for no plot (default: %(default)s)")
  parser.add_argument("--tol", type=float, default=1e-3,
                      help="functions: a run reaches the minimum when loss - f_min < tol "
                           "(default: %(default)g); on the saddle, when it escapes to loss < -1")
  return parser


def main(argv: Sequence[str] | None = None) -> list[Any]:
  """Parses `argv` (default: `sys.argv[1:]`), runs the chosen suite and returns its rows."""
  parser = _parser()
  args = parser.parse_args(argv)
  available = SUITE_OPTIMIZERS[args.suite]
  if args.optimizers is None:
    args.optimizers = list(SUITE_DEFAULTS.get(args.suite, available))
  else:
    args.optimizers = [name.strip() for name in args.optimizers.split(",") if name.strip()]
  unknown = [name for name in args.optimizers if name not in available]
  if unknown or not args.optimizers:
    parser.error(f"--optimizers: unknown {unknown} for suite {args.suite!r}; choose from "
                 f"{','.join(available)}")
  if args.steps < 1:
    parser.error(f"--steps must be >= 1, got {args.steps}")
  if args.batch_size < 1:
    parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
  if not args.tol > 0:
    parser.error(f"--tol must be > 0, got {args.tol}")
  return SUITES[args.suite](args)


if __name__ == "__main__":
  main()
  sys.exit(0)
