"""Sophia: gradtx's `contrib.sophia` against optax's, and a vmapped learning-rate sweep.

1. Step time (jitted, after warm-up, `block_until_ready`, the two libraries interleaved) and
   optimizer-state bytes of one Sophia-H step on an MLP's params (the Hessian estimate every
   `update_interval` steps). Ratio gradtx / optax (<= 1.00 expected: the same numbers).
2. Sophia over 8 learning rates, `jax.vmap`ped in one jitted scan, against 8 separate jitted
   runs, for each library. optax's `lax.cond` becomes a `select` once the state is batched, so its
   vmapped sweep runs the HVP every step; gradtx's stays periodic (`gradtx._periodic.cond`).

Run: `python -m benchmarks.sophia [--smoke] [--out DIR]`; writes DIR/sophia_results.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx


def _mlp(sizes, key):
  params = []
  for m, n in zip(sizes[:-1], sizes[1:]):
    key, sub = jax.random.split(key)
    params.append({"w": jax.random.normal(sub, (m, n)) / np.sqrt(m), "b": jnp.zeros(n)})
  return params


def _loss(params, x, y):
  h = x
  for layer in params[:-1]:
    h = jnp.tanh(h @ layer["w"] + layer["b"])
  out = h @ params[-1]["w"] + params[-1]["b"]
  return jnp.mean((out - y) ** 2)


def _problem(smoke):
  sizes = (16, 32, 1) if smoke else (64, 256, 256, 1)
  key = jax.random.PRNGKey(0)
  params = _mlp(sizes, key)
  x = jax.random.normal(jax.random.PRNGKey(1), (64 if smoke else 512, sizes[0]))
  y = jnp.sin(x[:, :1])
  return params, x, y


def _state_bytes(state):
  return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state)))


def _train(lib, lr, params, x, y, steps, interval):
  """`steps` Sophia-H steps in one lax.scan; returns the final loss."""
  tx = lib.contrib.sophia(lr, update_interval=interval)
  obj = lambda p: _loss(p, x, y)

  def body(carry, _):
    p, s = carry
    g = jax.grad(obj)(p)
    u, s = tx.update(g, s, p, obj_fn=obj)
    return (optax.apply_updates(p, u), s), None

  (p, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
  return obj(p)


def _time(fn, *args, repeats):
  jax.block_until_ready(fn(*args))  # warm-up (compile)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true", help="tiny sizes, a few repeats")
  ap.add_argument("--out", default=str(pathlib.Path(__file__).parent))
  args = ap.parse_args(argv)
  params, x, y = _problem(args.smoke)
  steps, interval, repeats, rounds = (20, 10, 2, 1) if args.smoke else (200, 10, 5, 3)
  results = {"device": str(jax.devices()[0]), "jax": jax.__version__, "optax": optax.__version__,
             "python": platform.python_version(), "smoke": args.smoke, "steps": steps,
             "update_interval": interval, "num_params": int(sum(
                 p.size for p in jax.tree.leaves(params)))}

  # 1. one training run (a scan of `steps` steps), interleaving the libraries.
  runs = {name: jax.jit(lambda p, lib=lib: _train(lib, 1e-3, p, x, y, steps, interval))
          for name, lib in (("gradtx", gradtx), ("optax", optax))}
  times = {"gradtx": [], "optax": []}
  for _ in range(rounds):
    for name in ("gradtx", "optax"):
      times[name].append(_time(runs[name], params, repeats=repeats))
  step_ms = {k: 1e3 * min(v) / steps for k, v in times.items()}
  states = {name: lib.contrib.sophia(1e-3).init(params)
            for name, lib in (("gradtx", gradtx), ("optax", optax))}
  results["step_ms"] = step_ms
  results["step_ratio_gradtx_over_optax"] = step_ms["gradtx"] / step_ms["optax"]
  results["state_bytes"] = {k: _state_bytes(s) for k, s in states.items()}
  results["final_loss"] = {k: float(runs[k](params)) for k in runs}

  # 2. 8 learning rates: one vmapped run vs 8 separate runs.
  lrs = jnp.asarray(np.geomspace(1e-4, 1e-2, 8), jnp.float32)
  sweep = {}
  for name, lib in (("gradtx", gradtx), ("optax", optax)):
    vmapped = jax.jit(jax.vmap(lambda lr, lib=lib: _train(lib, lr, params, x, y, steps, interval)))
    single = jax.jit(lambda lr, lib=lib: _train(lib, lr, params, x, y, steps, interval))
    t_vmap = _time(vmapped, lrs, repeats=repeats)
    _time(single, lrs[0], repeats=1)
    t0 = time.perf_counter()
    for _ in range(repeats):
      for lr in lrs:
        jax.block_until_ready(single(lr))
    t_loop = (time.perf_counter() - t0) / repeats
    sweep[name] = {"vmap_s": t_vmap, "loop_s": t_loop, "vmap_over_loop": t_vmap / t_loop}
  sweep["gradtx_vmap_over_optax_vmap"] = sweep["gradtx"]["vmap_s"] / sweep["optax"]["vmap_s"]
  results["sweep_8_lrs"] = sweep

  print(f"device {results['device']}, jax {jax.__version__}, optax {optax.__version__}, "
        f"{results['num_params']} params, {steps} steps, Hessian every {interval}")
  print(f"step: gradtx {step_ms['gradtx']:.3f} ms, optax {step_ms['optax']:.3f} ms, ratio "
        f"{results['step_ratio_gradtx_over_optax']:.2f}; state bytes {results['state_bytes']}")
  for name in ("gradtx", "optax"):
    s = sweep[name]
    print(f"8 lrs {name}: vmap {s['vmap_s']:.3f} s, 8 runs {s['loop_s']:.3f} s, ratio "
          f"{s['vmap_over_loop']:.2f}")
  print(f"vmapped sweep gradtx / optax: {sweep['gradtx_vmap_over_optax_vmap']:.2f}")
  out = pathlib.Path(args.out) / "sophia_results.json"
  out.write_text(json.dumps(results, indent=2))
  return results


if __name__ == "__main__":
  main()
