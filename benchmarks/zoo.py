"""The optimizer zoo (issue 14) against optax and torch.optim, in one interleaved run.

    python -m benchmarks.zoo              # ResNet-like (x0.42) and transformer-like (2 x d=512)
    python -m benchmarks.zoo --full       # ResNet-50 (25.6M) and 12 x d=768 (85M floats)
    python -m benchmarks.zoo --smoke      # seconds; what the test suite runs

For each optimizer and tree: step time (jitted, donated `update + apply_updates`, median of
interleaved repetitions), compile seconds and optimizer-state bytes per parameter byte, for
gradtx and optax built by the same call, as ratios gradtx/optax; torch.optim's `foreach` and
`fused` steps beside them where torch has the optimizer. The timing machinery is
`benchmarks.run`'s. Nothing here is a test: no number is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import jax

from benchmarks import run, trees

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (build(module), moment-sized arrays read+written per step, extra gradient reads).
ZOO = {
    "adam": (lambda m: m.adam(1e-3), 2, 0),  # the reference row for state bytes
    "adafactor": (lambda m: m.adafactor(1e-3), 0, 0),
    "lion": (lambda m: m.lion(1e-4), 1, 0),
    "lamb": (lambda m: m.lamb(1e-3), 2, 0),
    "lars": (lambda m: m.lars(1e-3), 1, 0),
    "radam": (lambda m: m.radam(1e-3), 2, 0),
    "adabelief": (lambda m: m.adabelief(1e-3), 2, 0),
    "sm3": (lambda m: m.sm3(1e-3), 1, 0),
    "muon": (lambda m: m.contrib.muon(1e-3), 1, 0),
    "schedule_free_adamw": (lambda m: m.contrib.schedule_free_adamw(1e-3), 2, 0),
    "prodigy": (lambda m: m.contrib.prodigy(1.0), 4, 0),
    "adopt": (lambda m: m.contrib.adopt(1e-3), 2, 0),
    "rprop": (lambda m: m.rprop(1e-3), 2, 0),
    "adamax": (lambda m: m.adamax(1e-3), 2, 0),
    "nadam": (lambda m: m.nadam(1e-3), 2, 0),
}

_TORCH = {  # torch.optim's optimizer of the same name (its numerics differ in places)
    "adafactor": ("Adafactor", dict(lr=1e-3)),
    "radam": ("RAdam", dict(lr=1e-3)),
    "rprop": ("Rprop", dict(lr=1e-3)),
    "adamax": ("Adamax", dict(lr=1e-3)),
    "nadam": ("NAdam", dict(lr=1e-3)),
    "adam": ("Adam", dict(lr=1e-3)),
}


def _register() -> None:
  for name, spec in ZOO.items():
    run.OPTIMIZERS.setdefault(name, spec)
  if run.torch is not None:
    for name, (cls, kwargs) in _TORCH.items():
      if hasattr(run.torch.optim, cls):
        run.TORCH.setdefault(name, (getattr(run.torch.optim, cls), kwargs, False))


def configuration(mode: str) -> dict:
  names = list(ZOO)
  if mode == "smoke":
    return dict(reps=2, steps=1, warmup=1,
                trees={"small": ({"w": (32, 48), "b": (48,), "v": (8, 16, 4)},
                                 ["adam", "adafactor", "lion", "muon"])})
  if mode == "full":
    return dict(reps=5, steps=2, warmup=1,
                trees={"resnet_like": (trees.resnet_shapes(1.0), names),
                       "transformer_like": (trees.transformer_shapes(12, 768, 3072), names)})
  return dict(reps=5, steps=3, warmup=2,
              trees={"resnet_like": (trees.resnet_shapes(0.42), names),
                     "transformer_like": (trees.transformer_shapes(2, 512, 2048), names)})


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--full", action="store_true")
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--optimizers", default=None, help="comma-separated subset of the zoo")
  parser.add_argument("--no-torch", action="store_true")
  parser.add_argument("--out", default=None, help="write zoo_results.json here")
  args = parser.parse_args(argv)
  _register()
  cfg = configuration("smoke" if args.smoke else "full" if args.full else "quick")
  bw = run.bandwidth(1 << (16 if args.smoke else 23))["gbs"]
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; bandwidth {bw:.1f} GB/s")
  rows = []
  for tree_name, (shapes, names) in cfg["trees"].items():
    if args.optimizers:
      names = [n for n in names if n in args.optimizers.split(",")]
    rows += run.bench_tree(tree_name, shapes, names, cfg, bw, use_torch=not args.no_torch)
  print()
  print("| tree | optimizer | step ms gradtx / optax | ratio | compile s gradtx / optax | "
        "state bytes per param byte gradtx / optax | torch.optim ms (foreach / fused) |")
  print("| --- | --- | --- | --- | --- | --- | --- |")
  for r in rows:
    g, o = r["libs"]["gradtx"], r["libs"]["optax"]
    t = " / ".join(f"{r['libs'][k]['ms']:.2f}" if k in r["libs"] else
                   r["torch_notes"].get(k.split()[1], "-")
                   for k in ("torch foreach", "torch fused"))
    print(f"| {r['tree']} | {r['optimizer']} | {g['ms']:.2f} / {o['ms']:.2f} | "
          f"{g['vs_optax']:.2f} | {g['compile_s']:.2f} / {o['compile_s']:.2f} | "
          f"{g['state_per_param']:.3f} / {o['state_per_param']:.3f} | {t} |")
  results = {"bandwidth_gbs": bw, "rows": rows}
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "zoo_results.json"), "w") as f:
      json.dump(results, f, indent=1, default=str)
  return results


if __name__ == "__main__":
  sys.exit(0 if main() else 1)
