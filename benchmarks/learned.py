"""Learned optimizers' step cost (issue 19): one training step of the digits MLP with
`learned.lstm_optimizer()` (2x20, the paper's) and `learned.mlp_optimizer()` against
`gradtx.adam`, the anchor.

    python -m benchmarks.learned            # the digits MLP (64-hidden-10, batch 128), ~1 minute
    python -m benchmarks.learned --smoke    # seconds; what the test suite runs

A step is one jitted function: the minibatch loss's gradient, the optimizer's update and
`apply_updates`. Rounds alternate the optimizers (so load from other processes hits all alike);
each round times `--steps` steps after a warm-up, with `block_until_ready`; the reported time is
the median round's per-step time, and the ratio is over Adam's in the same run (also given as
the median over rounds of each round's ratio, which load from other processes moves less). No
number here is asserted. The issue's bound: a learned optimizer's step at most 10x Adam's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

import gradtx
from gradtx import learned

HERE = os.path.dirname(os.path.abspath(__file__))


def make_step(tx, task, problem):
  @jax.jit
  def step(params, state, key):
    grads = jax.grad(task.loss)(params, problem, key)
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state

  return step


def main(argv: list[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true")
  ap.add_argument("--hidden", type=int, default=None)
  ap.add_argument("--steps", type=int, default=None)
  ap.add_argument("--rounds", type=int, default=None)
  ap.add_argument("--out", default=HERE)
  args = ap.parse_args(argv)
  hidden = args.hidden or (8 if args.smoke else 128)
  steps = args.steps or (5 if args.smoke else 200)
  rounds = args.rounds or (2 if args.smoke else 11)

  task = learned.digits_mlp_task(hidden=hidden, activation="sigmoid", batch_size=128)
  problem = task.sample(jax.random.key(0))
  params0 = task.init_params(jax.random.key(1), problem)
  lstm = learned.lstm_optimizer(hidden_size=4 if args.smoke else 20,
                                num_layers=1 if args.smoke else 2)
  mlp = learned.mlp_optimizer()
  txs = {"adam": gradtx.adam(1e-3),
         "lstm": lstm.transformation(lstm.init_meta_params(jax.random.key(2))),
         "mlp": mlp.transformation(mlp.init_meta_params(jax.random.key(3)))}
  runs, compile_s = {}, {}
  for name, tx in txs.items():
    step = make_step(tx, task, problem)
    state = tx.init(params0)
    t = time.perf_counter()
    jax.block_until_ready(step(params0, state, jax.random.key(0)))
    compile_s[name] = time.perf_counter() - t
    runs[name] = (step, state)
  times = {name: [] for name in txs}
  keys = jax.random.split(jax.random.key(4), steps)
  for r in range(rounds + 1):  # round 0 is a warm-up, not recorded
    for name, (step, state) in runs.items():  # interleaved: load hits every optimizer alike
      params = params0
      t = time.perf_counter()
      for k in keys:
        params, state = step(params, state, k)
      jax.block_until_ready(params)
      if r:
        times[name].append((time.perf_counter() - t) / steps)
  per_step = {name: float(np.median(v)) for name, v in times.items()}
  n_params = sum(x.size for x in jax.tree.leaves(params0))
  results = {
      "device": jax.devices()[0].device_kind, "platform": platform.platform(),
      "jax": jax.__version__, "cpus": os.cpu_count(), "smoke": args.smoke, "hidden": hidden,
      "params": int(n_params), "steps_per_round": steps, "rounds": rounds,
      "per_step_ms": {k: 1e3 * v for k, v in per_step.items()},
      "compile_s": compile_s,
      "lstm_over_adam": per_step["lstm"] / per_step["adam"],
      "mlp_over_adam": per_step["mlp"] / per_step["adam"],
      "round_ratio_median": {
          k: float(np.median(np.array(times[k]) / np.array(times["adam"]))) for k in times},
  }
  print(f"digits MLP 64-{hidden}-10 ({n_params} params), batch 128, {jax.devices()[0].device_kind}")
  for name, v in per_step.items():
    print(f"  {name:5s} {1e3 * v:8.3f} ms/step  ({v / per_step['adam']:.2f}x Adam; per-round "
          f"median {results['round_ratio_median'][name]:.2f}x), compile {compile_s[name]:.2f} s")
  with open(os.path.join(args.out, "learned_results.json"), "w") as f:
    json.dump(results, f, indent=2)
  return results


if __name__ == "__main__":
  main()
