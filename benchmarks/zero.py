"""ZeRO: optimizer state bytes per device, step time and bytes communicated, zero(adamw) vs adamw.

    python -m benchmarks.zero            # transformer-like tree, 1/2/4/8 host devices (minutes)
    python -m benchmarks.zero --smoke    # seconds; what the test suite runs

Each device count runs in its own subprocess (`--xla_force_host_platform_device_count` must be
set before JAX starts). In each, `gradtx.distributed.zero(gradtx.adamw(1e-3), mesh, "data")` and
the replicated `gradtx.adamw(1e-3)` take the same jitted step (update + apply_updates, params and
gradients replicated, as `zero`'s contract takes them), timed interleaved. Reported:
- state bytes per device: the bytes of device 0's shards of every state leaf;
- step time: the median of interleaved timed steps (host CPU devices share the machine's cores,
  so more devices do not mean more compute: on 2 cores the step time measures overhead, not
  scaling);
- bytes communicated per step: from the collectives in the compiled HLO, each op's result size
  and the ring-algorithm traffic per device ((n - 1) / n of an all-gather's result or a
  reduce-scatter's operand, twice that for an all-reduce). Replicated gradients make zero's
  only collective the all-gather of the updates; a data-parallel step also all-reduces (adamw)
  or reduce-scatters (ZeRO-2) the gradients, outside the optimizer.
Writes benchmarks/zero_results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
_COLLECTIVE = re.compile(
    r"=\s*(.*?)\s(all-gather|all-reduce|reduce-scatter|collective-permute|all-to-all)(?:-start)?\(")
_SHAPE = re.compile(r"(pred|s8|u8|s16|u16|f16|bf16|s32|u32|f32|s64|u64|f64)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8}


def collective_bytes(hlo: str, n: int) -> dict:
  """Bytes of the collectives in a compiled HLO module's text: per op kind, the summed result
  sizes, and the ring-algorithm traffic each device sends per step."""
  out: dict = {"ops": {}, "result_bytes": 0, "ring_bytes_per_device": 0.0}
  for line in hlo.splitlines():
    m = _COLLECTIVE.search(line)
    if not m or "-done" in line:
      continue
    size = sum(_BYTES[t] * math.prod(int(d) for d in dims.split(",") if d)
               for t, dims in _SHAPE.findall(m.group(1)))
    kind = m.group(2)
    op = out["ops"].setdefault(kind, {"count": 0, "result_bytes": 0})
    op["count"] += 1
    op["result_bytes"] += size
    out["result_bytes"] += size
    factor = {"all-gather": (n - 1) / n, "reduce-scatter": (n - 1),  # result is 1/n the operand
              "all-reduce": 2 * (n - 1) / n}.get(kind, 1.0)
    out["ring_bytes_per_device"] += factor * size
  return out


def child(n: int, smoke: bool) -> dict:
  """One device count: both optimizers' bytes, HLO collectives and interleaved step times."""
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from jax.sharding import AxisType, NamedSharding  # noqa: PLC0415
  from jax.sharding import PartitionSpec as P

  import gradtx  # noqa: PLC0415
  from benchmarks import trees  # noqa: PLC0415

  assert len(jax.devices()) == n, jax.devices()
  shapes = (trees.transformer_shapes(blocks=1, d=64, mlp=256) if smoke
            else trees.transformer_shapes(blocks=2))
  leaves, floats = trees.count(shapes)
  mesh = jax.make_mesh((n,), ("data",), axis_types=(AxisType.Auto,))
  rep = NamedSharding(mesh, P())
  params = jax.device_put(trees.make_tree(shapes, 0, 0.02), rep)
  grads = jax.device_put(trees.make_tree(shapes, 1, 1e-3), rep)
  txs = {"adamw": gradtx.adamw(1e-3),
         "zero_adamw": gradtx.distributed.zero(gradtx.adamw(1e-3), mesh, "data")}
  result: dict = {"devices": n, "leaves": leaves, "floats": floats, "libs": {}}
  steps, states = {}, {}
  for name, tx in txs.items():
    def step(p, s, g, tx=tx):
      u, s = tx.update(g, s, p)
      return gradtx.apply_updates(p, u), s
    states[name] = jax.jit(tx.init)(params)
    jitted = jax.jit(step)
    hlo = jitted.lower(params, states[name], grads).compile().as_text()
    steps[name] = jitted
    dev0 = jax.devices()[0]
    per_device = sum(int(s.data.nbytes) for leaf in jax.tree.leaves(states[name])
                     for s in leaf.addressable_shards if s.device == dev0)
    result["libs"][name] = {"state_bytes_per_device": per_device,
                            "collectives": collective_bytes(hlo, n), "times_ms": []}
  rounds, reps = (2, 2) if smoke else (5, 5)
  for name in txs:  # warm up
    jax.block_until_ready(steps[name](params, states[name], grads))
  for _ in range(rounds):  # interleaved: the machine is shared
    for name in txs:
      t0 = time.perf_counter()
      for _ in range(reps):
        out = steps[name](params, states[name], grads)
      jax.block_until_ready(out)
      result["libs"][name]["times_ms"].append(1e3 * (time.perf_counter() - t0) / reps)
  for r in result["libs"].values():
    r["step_ms"] = float(np.median(r["times_ms"]))
  z, a = result["libs"]["zero_adamw"], result["libs"]["adamw"]
  result["state_ratio"] = z["state_bytes_per_device"] / a["state_bytes_per_device"]
  result["time_ratio"] = z["step_ms"] / a["step_ms"]
  return result


def main(argv=None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true")
  ap.add_argument("--devices", type=int, nargs="*", default=None)
  ap.add_argument("--out", default=HERE)
  ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
  args = ap.parse_args(argv)
  if args.child is not None:
    print("RESULT " + json.dumps(child(args.child, args.smoke)))
    return {}
  counts = args.devices or ([1, 2] if args.smoke else [1, 2, 4, 8])
  results: dict = {"mode": "smoke" if args.smoke else "full", "cpu_count": os.cpu_count(),
                   "note": "measured under load (host CPU devices share the machine's cores)",
                   "rows": []}
  for n in counts:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
               XLA_FLAGS=os.environ.get("XLA_FLAGS", "")
               + f" --xla_force_host_platform_device_count={n}")
    cmd = [sys.executable, "-m", "benchmarks.zero", "--child", str(n)] + (
        ["--smoke"] if args.smoke else [])
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
      raise RuntimeError(f"benchmarks.zero with {n} devices failed:\n{proc.stderr[-3000:]}")
    row = json.loads(lines[-1][len("RESULT "):])
    results["rows"].append(row)
    z, a = row["libs"]["zero_adamw"], row["libs"]["adamw"]
    print(f"{n} devices: state/device zero {z['state_bytes_per_device'] / 2**20:8.2f} MiB, "
          f"adamw {a['state_bytes_per_device'] / 2**20:8.2f} MiB ({row['state_ratio']:.3f}); "
          f"step zero {z['step_ms']:7.2f} ms, adamw {a['step_ms']:7.2f} ms "
          f"({row['time_ratio']:.2f}); zero sends "
          f"{z['collectives']['ring_bytes_per_device'] / 2**20:.2f} MiB/device/step "
          f"({z['collectives']['ops']}), adamw {a['collectives']['result_bytes']} B")
  with open(os.path.join(args.out, "zero_results.json"), "w") as f:
    json.dump(results, f, indent=1)
  return results


if __name__ == "__main__":
  main()
