"""Per-step time and compile time of gradtx's optimizers against optax's, in the same run.

    python benchmarks/bench_step.py            # full: ResNet-50-sized tree (25.6M floats)
    python benchmarks/bench_step.py --quick    # ~5M-float ResNet-like tree, 500 tiny leaves,
                                               # fewer repeats

For each optimizer and each parameter tree, both libraries get the same jitted, donated step

    updates, state = tx.update(grads, state, params)
    params = apply_updates(params, updates)

compiled ahead of time (`jit(...).lower(...).compile()`, timed as "compile": tracing, lowering
and XLA compilation). After warm-up, repetitions alternate between the two libraries (gradtx then
optax, then optax then gradtx, ...) so that drifts of the machine hit both alike; each repetition
times a few steps ended by `block_until_ready`, and the table reports the median time per step
and the ratio gradtx/optax (below 1: gradtx is faster). Both libraries run the same number of
steps from the same params and gradients, so the last column, the largest difference between
their final params, also checks that they compute the same thing.

The trees: (a) one leaf of 2048 x 2048 = 4.2M floats; (b) a ResNet-50-like tree of 161 leaves
(conv kernels, batch-norm scales and biases, the head), 25.6M floats, or 5.0M with --quick;
(c) "tiny": 2000 leaves of 64 floats (500 with --quick; see --tiny-leaves), where per-leaf
overhead dominates.

An optimizer whose gradtx alias does not exist yet is skipped with a note. This script is not a
test: pytest does not collect it and nothing asserts on its numbers.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

# name -> build(module): the same call builds gradtx's optimizer and optax's (they share names,
# argument orders and defaults).
OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd": lambda m: m.sgd(1e-2),
    "sgd+momentum": lambda m: m.sgd(1e-2, momentum=0.9),
    "adam": lambda m: m.adam(1e-3),
    "adamw": lambda m: m.adamw(1e-3, weight_decay=1e-4),
    "rmsprop": lambda m: m.rmsprop(1e-3),
    "adagrad": lambda m: m.adagrad(1e-2),
    "adadelta": lambda m: m.adadelta(1.0),
    "nadam": lambda m: m.nadam(1e-3),
    "amsgrad": lambda m: m.amsgrad(1e-3),
    "clip+adamw": lambda m: m.chain(m.clip_by_global_norm(1.0), m.adamw(1e-3, weight_decay=1e-4)),
}


# ------------------------------------------------------------------------------------------------
# Parameter trees (shapes only; arrays are made by `_make_tree`).


def _resnet_shapes(width: float) -> dict:
  """ResNet-50's parameter shapes (bottleneck blocks 3-4-6-3), channels scaled by `width`."""
  c = lambda n: max(8, int(round(n * width)))
  shapes: dict = {"stem": {"conv": {"kernel": (7, 7, 3, c(64))},
                           "bn": {"scale": (c(64),), "bias": (c(64),)}}}
  cin = c(64)
  for s, (blocks, w) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
    stage = {}
    for b in range(blocks):
      cw, cout = c(w), c(4 * w)
      block = {}
      for i, (k, ci, co) in enumerate(((1, cin, cw), (3, cw, cw), (1, cw, cout))):
        block[f"conv{i + 1}"] = {"kernel": (k, k, ci, co)}
        block[f"bn{i + 1}"] = {"scale": (co,), "bias": (co,)}
      if b == 0:
        block["proj"] = {"kernel": (1, 1, cin, cout)}
        block["proj_bn"] = {"scale": (cout,), "bias": (cout,)}
      stage[f"block{b}"] = block
      cin = cout
    shapes[f"stage{s + 1}"] = stage
  shapes["head"] = {"kernel": (cin, 1000), "bias": (1000,)}
  return shapes


def tree_shapes(quick: bool, tiny_leaves: int) -> dict[str, Any]:
  return {
      "one_leaf_4M": {"w": (2048, 2048)},
      "resnet_like": _resnet_shapes(0.42 if quick else 1.0),
      "tiny": {f"p{i:05d}": (64,) for i in range(tiny_leaves)},
  }


def _is_shape(x: Any) -> bool:
  return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def _make_tree(shapes: Any, seed: int, scale: float) -> Any:
  """Normal(0, scale^2) float32 leaves, drawn on the host in one call (fast for many leaves)."""
  shapes, treedef = jax.tree.flatten(shapes, is_leaf=_is_shape)
  sizes = [math.prod(s) for s in shapes]
  flat = scale * np.random.default_rng(seed).standard_normal(sum(sizes), np.float32)
  chunks = np.split(flat, np.cumsum(sizes)[:-1])
  return jax.tree.unflatten(treedef, [jnp.asarray(c.reshape(s)) for c, s in zip(chunks, shapes)])


# ------------------------------------------------------------------------------------------------
# Timing.


def _compile_step(module: Any, tx: Any, params: Any, grads: Any) -> tuple[Any, Any, float]:
  """Returns (compiled step, initial state, compile seconds)."""

  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return module.apply_updates(params, updates), state

  state = jax.block_until_ready(tx.init(params))  # eager: jitting it costs seconds on big trees
  t0 = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
  return compiled, state, time.perf_counter() - t0


def bench_one(name: str, params0: Any, grads: Any, reps: int, steps_per_rep: int, warmup: int
              ) -> dict:
  build = OPTIMIZERS[name]
  txs = {"gradtx": build(gradtx), "optax": build(optax)}  # AttributeError: alias missing
  modules = {"gradtx": gradtx, "optax": optax}
  carry, compiled, compile_s, times = {}, {}, {}, {lib: [] for lib in txs}
  for lib, tx in txs.items():
    params = jax.tree.map(jnp.copy, params0)  # each library donates its own buffers
    compiled[lib], state, compile_s[lib] = _compile_step(modules[lib], tx, params, grads)
    for _ in range(warmup):
      params, state = compiled[lib](params, state, grads)
    carry[lib] = jax.block_until_ready((params, state))
  order = list(txs)
  for rep in range(reps):
    for lib in (order if rep % 2 == 0 else order[::-1]):
      params, state = carry[lib]
      t0 = time.perf_counter()
      for _ in range(steps_per_rep):
        params, state = compiled[lib](params, state, grads)
      jax.block_until_ready((params, state))
      times[lib].append((time.perf_counter() - t0) / steps_per_rep)
      carry[lib] = (params, state)
  diffs = jax.tree.map(lambda a, b: np.max(np.abs(np.asarray(a) - np.asarray(b))),
                       carry["gradtx"][0], carry["optax"][0])
  step = {lib: statistics.median(t) for lib, t in times.items()}
  return {
      "optimizer": name,
      "gradtx_step_ms": 1e3 * step["gradtx"], "optax_step_ms": 1e3 * step["optax"],
      "ratio": step["gradtx"] / step["optax"],
      "gradtx_compile_s": compile_s["gradtx"], "optax_compile_s": compile_s["optax"],
      "max_param_diff": float(max(jax.tree.leaves(diffs))),
  }


# ------------------------------------------------------------------------------------------------
# Command line.


def _versions() -> dict[str, str]:
  out = {"python": platform.python_version()}
  for pkg in ("jax", "jaxlib", "optax", "gradtx", "numpy"):
    try:
      out[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      out[pkg] = "?"
  return out


def main(argv: list[str] | None = None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="~5M-float ResNet-like tree, fewer repetitions")
  parser.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                      help="comma-separated subset of: %(default)s")
  parser.add_argument("--trees", default="one_leaf_4M,resnet_like,tiny",
                      help="comma-separated subset of: %(default)s")
  parser.add_argument("--tiny-leaves", type=int, default=None,
                      help="leaves of 64 floats in the 'tiny' tree (default 2000, --quick 500: "
                           "compiling 2000 leaves takes minutes per optimizer on a small CPU)")
  parser.add_argument("--reps", type=int, default=None,
                      help="timed repetitions per library (default 21, --quick 7)")
  parser.add_argument("--steps-per-rep", type=int, default=None,
                      help="steps per timed repetition (default 5, --quick 3)")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
  parser.add_argument("--json", default=None, help="also write the results to this file")
  args = parser.parse_args(argv)
  reps = args.reps or (7 if args.quick else 21)
  steps_per_rep = args.steps_per_rep or (3 if args.quick else 5)
  names = [n for n in args.optimizers.split(",") if n]
  tiny_leaves = args.tiny_leaves or (500 if args.quick else 2000)
  all_trees = tree_shapes(args.quick, tiny_leaves)
  tree_names = [t for t in args.trees.split(",") if t]
  for bad, known, what in ((names, OPTIMIZERS, "optimizer"), (tree_names, all_trees, "tree")):
    unknown = [n for n in bad if n not in known]
    if unknown:
      parser.error(f"unknown {what} {unknown}; choose from {','.join(known)}")

  device = jax.devices()[0]
  versions = _versions()
  print(f"device: {device.platform} ({device.device_kind}), {jax.device_count()} device(s), "
        f"{os.cpu_count()} CPU cores")
  print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
  print(f"mode: {'quick' if args.quick else 'full'}; median of {reps} repetitions x "
        f"{steps_per_rep} steps per library, interleaved; {args.warmup} warm-up steps")
  header = (f"{'optimizer':<13} {'gradtx ms':>10} {'optax ms':>10} {'ratio':>6} "
            f"{'gradtx comp s':>13} {'optax comp s':>12} {'max|dp|':>9}")
  results, skipped = [], {}
  t_start = time.perf_counter()
  for tree in tree_names:
    shapes = all_trees[tree]
    sizes = [math.prod(s) for s in jax.tree.leaves(shapes, is_leaf=_is_shape)]
    print(f"\n[{tree}] {len(sizes)} leaves, {sum(sizes) / 1e6:.2f}M floats")
    params0, grads = _make_tree(shapes, 0, 1.0), _make_tree(shapes, 1, 1e-2)
    t_tree = time.perf_counter()
    print(header)
    print("-" * len(header))
    for name in names:
      if name in skipped:
        continue
      try:
        with warnings.catch_warnings():
          warnings.simplefilter("ignore")  # e.g. "donated buffers were not usable"
          r = bench_one(name, params0, grads, reps, steps_per_rep, args.warmup)
      except AttributeError as e:
        skipped[name] = str(e)
        print(f"{name:<13} skipped: {e}")
        continue
      r["tree"] = tree
      results.append(r)
      print(f"{name:<13} {r['gradtx_step_ms']:>10.3f} {r['optax_step_ms']:>10.3f} "
            f"{r['ratio']:>6.2f} {r['gradtx_compile_s']:>13.2f} {r['optax_compile_s']:>12.2f} "
            f"{r['max_param_diff']:>9.1e}", flush=True)
    print(f"({tree}: {time.perf_counter() - t_tree:.0f} s)")
  if results:
    ratios = [r["ratio"] for r in results]
    print(f"\ngeometric mean ratio gradtx/optax (step time): "
          f"{math.exp(statistics.fmean(math.log(x) for x in ratios)):.3f} over {len(ratios)} runs")
  if skipped:
    print("skipped (not in this version of gradtx): " + ", ".join(skipped))
  print(f"total {time.perf_counter() - t_start:.0f} s")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"device": f"{device.platform} ({device.device_kind})", "versions": versions,
                 "quick": args.quick, "tiny_leaves": tiny_leaves, "reps": reps,
                 "steps_per_rep": steps_per_rep,
                 "results": results, "skipped": skipped}, f, indent=2)
  return results


if __name__ == "__main__":
  main()
  sys.exit(0)
