"""Shampoo and SOAP's cost (issue 17): step time and optimizer-state bytes of gradtx.shampoo and
gradtx.soap against gradtx.adam and optax.adam (the anchor), on an MLP's parameters.

    python -m benchmarks.shampoo            # a 784-512-512-10 MLP's params, ~1-2 minutes on CPU
    python -m benchmarks.shampoo --smoke    # seconds; what the test suite runs

Each optimizer's step is one jitted `update` + `apply_updates` on fixed random gradients (the
model's forward/backward is not timed: this is the optimizer's own cost). Shampoo refreshes its
inverse roots every `--every` steps and SOAP its eigenbases every `--every` steps, so the mean
step time over a multiple of `--every` steps includes one refresh; the refresh step and a plain
step are also timed alone. Rounds alternate the optimizers (interleaved, so machine load hits
all alike); the reported time is the median over rounds of the per-step mean. "state bytes"
sums the optimizer state's array bytes. Ratios are over optax.adam. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import gradtx

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp_params(sizes, seed=0):
  rng = np.random.default_rng(seed)
  params = {}
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    params[f"w{i}"] = jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32)
    params[f"b{i}"] = jnp.zeros((b,), jnp.float32)
  return params


def state_bytes(state) -> int:
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)))


def make_runner(tx, grads):
  @jax.jit
  def run(params, state):
    def body(carry, g):
      p, s = carry
      u, s = tx.update(g, s, p)
      return (gradtx.apply_updates(p, u), s), None
    (params, state), _ = jax.lax.scan(body, (params, state), grads)
    return params, state

  @jax.jit
  def one(params, state, g):
    u, s = tx.update(g, state, params)
    return gradtx.apply_updates(params, u), s

  return run, one


def main(argv: list[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true")
  ap.add_argument("--every", type=int, default=10)
  ap.add_argument("--rounds", type=int, default=None)
  ap.add_argument("--out", default=HERE)
  args = ap.parse_args(argv)
  import optax  # noqa: PLC0415  (a dev dependency; the anchor)

  sizes = (16, 12, 4) if args.smoke else (784, 512, 512, 10)
  rounds = args.rounds or (2 if args.smoke else 5)
  every = 2 if args.smoke else args.every
  steps = every * (1 if args.smoke else 2)
  params = mlp_params(sizes)
  rng = np.random.default_rng(1)
  stacked = jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=(steps,) + p.shape) * 1e-2, jnp.float32), params)
  grads = [jax.tree.map(lambda g, i=i: g[i], stacked) for i in range(steps)]
  optimizers = {
      "optax.adam": optax.adam(1e-3),
      "gradtx.adam": gradtx.adam(1e-3),
      "gradtx.shampoo": gradtx.shampoo(1e-3, preconditioning_compute_steps=every),
      "gradtx.soap": gradtx.soap(1e-3, precondition_frequency=every),
  }
  results: dict = {"mode": "smoke" if args.smoke else "full", "sizes": sizes,
                   "params": int(sum(p.size for p in jax.tree.leaves(params))),
                   "every": every, "steps_per_round": steps, "rounds": rounds,
                   "backend": jax.default_backend(), "device": str(jax.devices()[0]),
                   "jax": jax.__version__, "optax": optax.__version__, "rows": {}}
  runners, states = {}, {}
  for name, tx in optimizers.items():
    state = tx.init(params)
    run, one = make_runner(tx, stacked)
    t0 = time.perf_counter()
    jax.block_until_ready(run(params, state))
    compile_s = time.perf_counter() - t0
    runners[name], states[name] = run, state
    results["rows"][name] = {"state_bytes": state_bytes(state), "compile_s": compile_s, "ms": []}
    if args.smoke:
      continue
    # The first step (a refresh for both) and a plain step (the second), each timed alone.
    jax.block_until_ready(one(params, state, grads[0]))
    t0 = time.perf_counter()
    p1, s1 = jax.block_until_ready(one(params, state, grads[0]))
    first_ms = 1e3 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    jax.block_until_ready(one(p1, s1, grads[1]))
    plain_ms = 1e3 * (time.perf_counter() - t0)
    results["rows"][name].update(refresh_step_ms=first_ms, plain_step_ms=plain_ms)
  for _ in range(rounds):  # interleaved rounds
    for name, run in runners.items():
      t0 = time.perf_counter()
      jax.block_until_ready(run(params, states[name]))
      results["rows"][name]["ms"].append(1e3 * (time.perf_counter() - t0) / steps)
  anchor = results["rows"]["optax.adam"]
  for name, row in results["rows"].items():
    row["step_ms"] = float(np.median(row.pop("ms")))
  for name, row in results["rows"].items():
    row["step_over_optax_adam"] = row["step_ms"] / anchor["step_ms"]
    row["state_bytes_over_optax_adam"] = row["state_bytes"] / anchor["state_bytes"]
    print(f"{name:16s} step {row['step_ms']:9.3f} ms ({row['step_over_optax_adam']:6.2f}x)  "
          f"refresh step {row.get('refresh_step_ms', float('nan')):9.3f} ms  plain step "
          f"{row.get('plain_step_ms', float('nan')):9.3f} ms  state {row['state_bytes']:>10d} B "
          f"({row['state_bytes_over_optax_adam']:.2f}x)")
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "shampoo_results.json"), "w") as f:
    json.dump(results, f, indent=1)
  return results


if __name__ == "__main__":
  main()
