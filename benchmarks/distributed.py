"""gradtx.distributed's communication and memory (issue 18): bytes communicated per step, read
from the collectives in the compiled HLO of the `shard_map`'ped step, state bytes per device,
and step time on 1/2/4/8 host devices, for every algorithm and compressor, against the anchor,
synchronous data parallelism (`chain(all_reduce, optimizer)`).

    python -m benchmarks.distributed            # a 2-block transformer tree (1.6M floats)
    python -m benchmarks.distributed --smoke    # seconds; what the test suite runs (subprocess)

The process forces 8 host devices (XLA_FLAGS, set before JAX is imported): run it as its own
process. Bytes: for each all-reduce, all-gather, reduce-scatter, all-to-all and
collective-permute in the compiled step, the bytes of its result (the payload each device ends
up with; a ring all-reduce moves about twice that over the wire), summed. Collectives inside the
sync branch run only on sync steps, so "per step" divides them by the sync period (read from
the branch structure is not attempted: the period is the configuration's). The few bytes of the
sync predicate's `pmax` (4 per step) are included. State bytes per device: one worker's state
(each device holds one). Times: the jitted step's median over interleaved rounds, one worker
per device; the host has 2 cores, so 4 and 8 "devices" share them and times grow with the
device count: read them as the overhead of the algorithm's collectives, not as scaling.
Nothing here is a test: no number is asserted.
"""

from __future__ import annotations

import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gradtx  # noqa: E402
from benchmarks import trees  # noqa: E402
from gradtx import distributed as dist  # noqa: E402
from gradtx.distributed import _axis  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
AXIS = "w"
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
DTYPE_BYTES = {"f32": 4, "s32": 4, "u32": 4, "pred": 1, "bf16": 2, "f16": 2, "f64": 8, "s64": 8,
               "u64": 8, "s8": 1, "u8": 1}


def algorithms(period: int) -> dict:
  """name -> (transformation, sync period for the per-step division)."""
  adam = gradtx.adam(1e-3)
  return {
      "data_parallel (anchor)": (gradtx.chain(dist.all_reduce(AXIS), adam), 1),
      "local_sgd": (dist.local_sgd(adam, sync_period=period, axis_name=AXIS), period),
      "diloco": (dist.diloco(gradtx.adamw(1e-3), gradtx.sgd(0.7, momentum=0.9, nesterov=True),
                             sync_period=period, axis_name=AXIS), period),
      "easgd": (dist.easgd(gradtx.sgd(0.01), alpha=0.1, sync_period=period, axis_name=AXIS),
                period),
      "downpour": (dist.downpour(gradtx.adagrad(0.01), fetch_every=period, push_every=period,
                                 axis_name=AXIS), period),
      "delay_tolerant_adagrad": (dist.delay_tolerant_adagrad(0.01, AXIS), 1),
      "hogwild": (dist.hogwild(gradtx.sgd(0.01), AXIS), 1),
      "top_k (1%) + all_reduce": (None, 1),  # built per tree (k from the smallest leaf)
      "sign (1-bit EF) + all_reduce": (gradtx.chain(dist.sign_compression(),
                                                    dist.all_reduce(AXIS), adam), 1),
      "signSGD majority vote": (gradtx.chain(dist.sign_compression(axis_name=AXIS), adam), 1),
      "powersgd rank 4": (gradtx.chain(dist.powersgd(4, axis_name=AXIS), adam), 1),
  }


def collective_bytes(hlo: str) -> dict:
  """Bytes of each kind of collective in compiled HLO text (result shapes, summed)."""
  out = {}
  hlo = re.sub(r"/\*.*?\*/", "", hlo)  # tuple shapes carry /*index=5*/ comments
  pattern = re.compile(r"=\s*(\([^=]*?\)|[a-z0-9]+\[[0-9,]*\](?:\{[^}]*\})?)\s+("
                       + "|".join(COLLECTIVES) + r")(-start)?\(")
  for m in pattern.finditer(hlo):
    shapes = re.findall(r"([a-z0-9]+)\[([0-9,]*)\]", m.group(1))
    nbytes = sum(DTYPE_BYTES.get(t, 4) * math.prod(int(d) for d in dims.split(",") if d)
                 for t, dims in shapes)
    out[m.group(2)] = out.get(m.group(2), 0) + nbytes
  return out


def _step(tx, params, state, grads):
  updates, state = tx.update(grads, state, params)
  return gradtx.apply_updates(params, updates), state


def build(tx, mesh, params1):
  """The jitted shard_map'ped init and step, one worker per device of `mesh`."""
  spec = jax.sharding.PartitionSpec(AXIS)

  def per_device(f):
    def g(*args):
      out = f(*jax.tree.map(lambda x: x[0], args))
      return jax.tree.map(lambda x: x[None], out)
    return jax.jit(jax.shard_map(g, mesh=mesh, in_specs=spec, out_specs=spec))

  n = mesh.size
  put = lambda t: jax.device_put(t, jax.sharding.NamedSharding(mesh, spec))
  params = put(jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), params1))
  grads = put(jax.tree.map(lambda x: 0.01 * jnp.broadcast_to(x, (n,) + x.shape)
                           * jnp.arange(1, n + 1, dtype=x.dtype).reshape((n,) + (1,) * x.ndim),
                           params1))
  init = per_device(lambda p: _axis.varying(tx.init(p), (AXIS,)))
  step = per_device(lambda p, s, g: _step(tx, p, s, g))
  return init, step, params, grads


BUILT: dict = {}  # (name, devices) -> [step, params, state, grads], compiled once


def _built(name, tx, params1, k):
  if (name, k) not in BUILT:
    mesh = jax.make_mesh((k,), (AXIS,), axis_types=(jax.sharding.AxisType.Explicit,),
                         devices=jax.devices()[:k])
    init, step, params, grads = build(tx, mesh, params1)
    BUILT[(name, k)] = [step, params, init(params), grads]
  return BUILT[(name, k)]


def measure(name, tx, period, params1, mesh8, params_bytes):
  step, params, state, grads = _built(name, tx, params1, mesh8.size)
  hlo = step.lower(params, state, grads).compile().as_text()
  kinds = collective_bytes(hlo)
  total = sum(kinds.values())
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(state)) // mesh8.size
  return {"name": name, "sync_period": period, "collectives": kinds,
          "bytes_sync_step": total, "bytes_per_step": total / period,
          "state_bytes_per_device": state_bytes,
          "state_over_params": state_bytes / params_bytes}


def time_steps(name, tx, params1, devices, rounds, steps):
  """Median ms per step for each device count, rounds interleaved over the counts."""
  built = {}
  for k in devices:
    built[k] = _built(name, tx, params1, k)
    step, params, state, grads = built[k]
    built[k][1:3] = step(params, state, grads)  # compile
    jax.block_until_ready(built[k][1])
  times = {k: [] for k in devices}
  for _ in range(rounds):
    for k in devices:
      step, params, state, grads = built[k]
      t0 = time.perf_counter()
      for _ in range(steps):
        params, state = step(params, state, grads)
      jax.block_until_ready(params)
      times[k].append((time.perf_counter() - t0) / steps * 1e3)
      built[k][1:3] = [params, state]
  return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true")
  ap.add_argument("--period", type=int, default=8)
  ap.add_argument("--out", default=HERE)
  args = ap.parse_args(argv)
  shapes = (trees.transformer_shapes(blocks=1, d=32, mlp=64) if args.smoke
            else trees.transformer_shapes(blocks=2, d=256, mlp=1024))
  leaves, floats = trees.count(shapes)
  params1 = trees.make_tree(shapes, seed=0, scale=0.02)
  params_bytes = 4 * floats
  mesh8 = jax.make_mesh((8,), (AXIS,), axis_types=(jax.sharding.AxisType.Explicit,))
  smallest = min(math.prod(s) for s in jax.tree.leaves(shapes, is_leaf=trees.is_shape))
  algs = algorithms(args.period)
  algs["top_k (1%) + all_reduce"] = (gradtx.chain(dist.top_k(max(1, smallest // 100)),
                                                  dist.all_reduce(AXIS), gradtx.adam(1e-3)), 1)
  results: dict = {"mode": "smoke" if args.smoke else "full", "leaves": leaves, "floats": floats,
                   "params_bytes": params_bytes, "devices": jax.device_count(),
                   "backend": jax.default_backend(), "jax": jax.__version__,
                   "cpu_cores": os.cpu_count(), "rows": []}
  for name, (tx, period) in (list(algs.items())[:2] if args.smoke else algs.items()):
    row = measure(name, tx, period, params1, mesh8, params_bytes)
    results["rows"].append(row)
  anchor = results["rows"][0]
  for row in results["rows"]:
    row["bytes_per_step_over_anchor"] = row["bytes_per_step"] / anchor["bytes_per_step"]
  devices = (8,) if args.smoke else (1, 2, 4, 8)  # smoke: the steps already compiled
  timed = ["data_parallel (anchor)", "local_sgd"] + ([] if args.smoke else
                                                    ["diloco", "powersgd rank 4"])
  results["step_ms"] = {}
  for name in timed:
    results["step_ms"][name] = time_steps(name, algs[name][0], params1, devices,
                                          rounds=2 if args.smoke else 5,
                                          steps=2 if args.smoke else 10)
  base = results["step_ms"]["data_parallel (anchor)"]
  results["step_ms_over_anchor"] = {
      name: {k: v / base[k] for k, v in ms.items()} for name, ms in results["step_ms"].items()}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "distributed_results.json"), "w") as f:
    json.dump(results, f, indent=1, default=str)
  print(f"{'algorithm':32s} {'bytes/step':>12s} {'x anchor':>9s} {'state B/dev':>12s} "
        f"{'x params':>9s}")
  for r in results["rows"]:
    print(f"{r['name']:32s} {r['bytes_per_step']:12.0f} {r['bytes_per_step_over_anchor']:9.3f} "
          f"{r['state_bytes_per_device']:12d} {r['state_over_params']:9.2f}")
  for name, ms in results["step_ms"].items():
    print(name, {k: round(v, 3) for k, v in ms.items()}, "ms/step;",
          {k: round(v, 2) for k, v in results["step_ms_over_anchor"][name].items()}, "x anchor")
  return results


if __name__ == "__main__":
  main()
