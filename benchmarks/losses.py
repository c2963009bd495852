"""Forward + backward of `softmax_cross_entropy_with_integer_labels`: gradtx against optax.

    python -m benchmarks.losses                      # 256 x 32768, float32 and bfloat16 logits
    python -m benchmarks.losses --batch 64 --repeats 9   # quicker

Times `jax.jit(jax.value_and_grad(lambda x: loss(x, labels).sum()))` after a warm-up, with
`block_until_ready`, repetitions interleaving the two libraries (rotating which goes first), and
prints the medians, the median of the per-repetition ratios gradtx/optax (target <= 1.00), the
largest difference of values and gradients, and what each compiled program contains (fusions,
scatters, full-size intermediates). Standalone: pytest does not collect it; no number is
asserted anywhere.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import re
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx


def _program(fn, *args) -> tuple[object, dict[str, int]]:
  """Compiles `fn` ahead of time; counts fusions, scatters and the full-size buffers in it."""
  compiled = jax.jit(fn).lower(*args).compile()
  text = compiled.as_text()
  entry = text[text.index("ENTRY"):]
  full = "[" + ",".join(str(d) for d in args[0].shape) + "]"
  return compiled, {
      "fusions": len(re.findall(r"= \S+ fusion\(", entry)),
      "scatters": len(re.findall(r"= \S+ scatter\(", text)),
      "full-size ops": sum(1 for line in entry.splitlines()
                           if full in line.split("=", 1)[-1].split("(")[0]
                           and "parameter(" not in line),
  }


def bench(batch: int, classes: int, dtype, repeats: int, warmup: int) -> dict:
  key_x, key_y = jax.random.split(jax.random.key(0))
  logits = (3 * jax.random.normal(key_x, (batch, classes), jnp.float32)).astype(dtype)
  labels = jax.random.randint(key_y, (batch,), 0, classes, jnp.int32)
  fns = {
      "gradtx": lambda x, y: jnp.sum(gradtx.softmax_cross_entropy_with_integer_labels(x, y)),
      "optax": lambda x, y: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(x, y)),
  }
  compiled, info, outs = {}, {}, {}
  for name, f in fns.items():
    compiled[name], info[name] = _program(jax.value_and_grad(f), logits, labels)
    for _ in range(warmup):
      outs[name] = jax.block_until_ready(compiled[name](logits, labels))
  times = {name: [] for name in fns}
  names = list(fns)
  for r in range(repeats):
    order = names[r % 2:] + names[:r % 2]  # rotate who goes first
    for name in order:
      t0 = time.perf_counter()
      jax.block_until_ready(compiled[name](logits, labels))
      times[name].append(time.perf_counter() - t0)
  ratios = [a / b for a, b in zip(times["gradtx"], times["optax"])]
  as64 = lambda a: np.asarray(a, np.float64)
  return {
      "median_ms": {n: 1e3 * statistics.median(t) for n, t in times.items()},
      "ratio": statistics.median(ratios),
      "value_diff": float(np.abs(as64(outs["gradtx"][0]) - as64(outs["optax"][0]))),
      "grad_max_diff": float(np.max(np.abs(as64(outs["gradtx"][1]) - as64(outs["optax"][1])))),
      "grad_bit_identical": bool(np.array_equal(as64(outs["gradtx"][1]),
                                                as64(outs["optax"][1]))),
      "program": info,
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--classes", type=int, default=32768)
  parser.add_argument("--dtypes", default="float32,bfloat16")
  parser.add_argument("--repeats", type=int, default=31)
  parser.add_argument("--warmup", type=int, default=3)
  args = parser.parse_args(argv)
  device = jax.devices()[0]
  ours = importlib.metadata.version("gradtx") if _installed("gradtx") else "(source tree)"
  print(f"device: {device.platform} {device.device_kind}; python {platform.python_version()}; "
        f"jax {jax.__version__}; jaxlib {importlib.metadata.version('jaxlib')}; "
        f"optax {optax.__version__}; gradtx {ours}")
  print(f"softmax_cross_entropy_with_integer_labels, value_and_grad of the sum, "
        f"logits [{args.batch}, {args.classes}], {args.repeats} interleaved repeats\n")
  print(f"{'dtype':>9} {'gradtx ms':>10} {'optax ms':>9} {'ratio':>6}  values/grads vs optax"
        "      programs (fusions, scatters, full-size ops): gradtx | optax")
  for name in args.dtypes.split(","):
    r = bench(args.batch, args.classes, jnp.dtype(name), args.repeats, args.warmup)
    g, o = r["program"]["gradtx"], r["program"]["optax"]
    same = "bit-identical" if r["grad_bit_identical"] and r["value_diff"] == 0 else (
        f"value diff {r['value_diff']:.2e}, grad max diff {r['grad_max_diff']:.2e}")
    print(f"{name:>9} {r['median_ms']['gradtx']:>10.2f} {r['median_ms']['optax']:>9.2f} "
          f"{r['ratio']:>6.3f}  {same:<26} "
          f"{g['fusions']}, {g['scatters']}, {g['full-size ops']} | "
          f"{o['fusions']}, {o['scatters']}, {o['full-size ops']}")


def _installed(dist: str) -> bool:
  try:
    importlib.metadata.version(dist)
    return True
  except importlib.metadata.PackageNotFoundError:
    return False


if __name__ == "__main__":
  main()
