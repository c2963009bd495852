"""gradtx.losses.ctc_loss against optax.ctc_loss: jitted forward + backward (loss and the
gradient with respect to the logits), interleaved repeats, medians and the ratio gradtx/optax.

    python -m benchmarks.ctc                 # both sizes
    python -m benchmarks.ctc --sizes small   # batch 8 x 200 frames x 32 classes, 50 labels
    python -m benchmarks.ctc --reps 30

Each function is compiled ahead of time (compile seconds reported), warmed up, then timed with
`block_until_ready` in repetitions that alternate which library goes first; the reported ratio
is the median of the per-repetition ratios. Prints the device and versions. Not a test: pytest
does not collect this folder and no number is asserted.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

SIZES = {  # name: (batch, frames, classes, max label length)
    "small": (8, 200, 32, 50),
    "large": (64, 400, 128, 50),
}


def make_inputs(batch, frames, classes, label_len, seed=0):
  """Random logits; frame and label lengths drawn per sequence (at least half of the maximum),
  right-padded as optax requires; labels avoid the blank (0)."""
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(batch, frames, classes)).astype(np.float32)
  frame_lens = rng.integers(frames // 2, frames + 1, size=batch)
  label_lens = rng.integers(label_len // 2, label_len + 1, size=batch)
  logit_paddings = (np.arange(frames)[None] >= frame_lens[:, None]).astype(np.float32)
  label_paddings = (np.arange(label_len)[None] >= label_lens[:, None]).astype(np.float32)
  labels = rng.integers(1, classes, size=(batch, label_len)).astype(np.int32)
  return tuple(jnp.asarray(x) for x in (logits, logit_paddings, labels, label_paddings))


def compiled_step(lib, inputs):
  """jit(value_and_grad) of the mean loss, compiled ahead of time; returns (fn, seconds)."""
  def objective(logits, logit_paddings, labels, label_paddings):
    return jnp.mean(lib.ctc_loss(logits, logit_paddings, labels, label_paddings))

  start = time.perf_counter()
  fn = jax.jit(jax.value_and_grad(objective)).lower(*inputs).compile()
  return fn, time.perf_counter() - start


def time_once(fn, inputs, inner):
  start = time.perf_counter()
  for _ in range(inner):
    out = fn(*inputs)
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / inner


def bench(name, reps, inner, warmup):
  inputs = make_inputs(*SIZES[name])
  fns, compile_s = {}, {}
  for lib_name, lib in (("gradtx", gradtx.losses), ("optax", optax.losses)):
    fns[lib_name], compile_s[lib_name] = compiled_step(lib, inputs)
  (loss_g, grad_g), (loss_o, grad_o) = fns["gradtx"](*inputs), fns["optax"](*inputs)
  max_loss_diff = float(jnp.max(jnp.abs(loss_g - loss_o)))
  max_grad_diff = float(jnp.max(jnp.abs(grad_g - grad_o)))
  for fn in fns.values():
    for _ in range(warmup):
      jax.block_until_ready(fn(*inputs))
  times = {"gradtx": [], "optax": []}
  ratios = []
  for rep in range(reps):
    order = ("gradtx", "optax") if rep % 2 == 0 else ("optax", "gradtx")
    this = {lib_name: time_once(fns[lib_name], inputs, inner) for lib_name in order}
    for lib_name, t in this.items():
      times[lib_name].append(t)
    ratios.append(this["gradtx"] / this["optax"])
  med = {k: statistics.median(v) for k, v in times.items()}
  batch, frames, classes, label_len = SIZES[name]
  print(f"{name:6s} B={batch:3d} T={frames:4d} K={classes:4d} N={label_len:3d} | "
        f"gradtx {med['gradtx'] * 1e3:8.3f} ms  optax {med['optax'] * 1e3:8.3f} ms  "
        f"ratio {statistics.median(ratios):.3f} "
        f"(IQR {np.percentile(ratios, 25):.3f}-{np.percentile(ratios, 75):.3f}) | "
        f"compile gradtx {compile_s['gradtx']:.2f} s optax {compile_s['optax']:.2f} s | "
        f"max |diff| loss {max_loss_diff:.1e} grad {max_grad_diff:.1e}")
  return med, statistics.median(ratios)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="small,large")
  parser.add_argument("--reps", type=int, default=21)
  parser.add_argument("--inner", type=int, default=5, help="calls per timed repetition")
  parser.add_argument("--warmup", type=int, default=3)
  args = parser.parse_args()
  print(f"device {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{platform.processor() or platform.machine()}; jax {jax.__version__}, "
        f"optax {importlib.metadata.version('optax')}, gradtx from {gradtx.__file__}")
  print("jit(value_and_grad(mean ctc_loss)) w.r.t. logits, medians of interleaved repeats")
  for name in args.sizes.split(","):
    bench(name, args.reps, args.inner, args.warmup)


if __name__ == "__main__":
  main()
