"""gradtx against optax, torch.optim and the memory-bandwidth bound, in one interleaved run.

    python -m benchmarks.run            # full: < 20 min on 2 CPU cores
    python -m benchmarks.run --quick    # smaller trees, fewer optimizers: < 3 min
    python -m benchmarks.run --smoke --out /tmp/b   # seconds; what the test suite runs

Writes OUT/RESULTS.md, OUT/results.json and OUT/results.png (OUT defaults to benchmarks/).
Sections: bandwidth (STREAM-like kernel), step time per optimizer and tree (jitted, donated
`update + apply_updates`; torch.optim `step()` with foreach and fused kernels), eager steps,
hyperparameter sweeps. benchmarks/NOTES.md, if present, is copied into RESULTS.md verbatim.
Nothing here is a test: no number is asserted anywhere.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx
from benchmarks import trees

try:  # torch is optional: `pip install -e '.[bench]'`
  import torch
except ImportError:  # pragma: no cover
  torch = None

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (build(module), param-sized arrays read+written per step besides p and g: moments,
# extra gradient reads). The same call builds gradtx's and optax's optimizer.
OPTIMIZERS: dict[str, tuple[Callable[[Any], Any], int, int]] = {
    "sgd": (lambda m: m.sgd(1e-2), 0, 0),
    "sgd+momentum": (lambda m: m.sgd(1e-2, momentum=0.9), 1, 0),
    "nesterov": (lambda m: m.sgd(1e-2, momentum=0.9, nesterov=True), 1, 0),
    "adagrad": (lambda m: m.adagrad(1e-2), 1, 0),
    "adadelta": (lambda m: m.adadelta(1.0), 2, 0),
    "rmsprop": (lambda m: m.rmsprop(1e-3), 1, 0),
    "adam": (lambda m: m.adam(1e-3), 2, 0),
    "adamw": (lambda m: m.adamw(1e-3, weight_decay=1e-4), 2, 0),
    "adamax": (lambda m: m.adamax(1e-3), 2, 0),
    "nadam": (lambda m: m.nadam(1e-3), 2, 0),
    "amsgrad": (lambda m: m.amsgrad(1e-3), 3, 0),
    "clip+adamw": (lambda m: m.chain(m.clip_by_global_norm(1.0),
                                     m.adamw(1e-3, weight_decay=1e-4)), 2, 1),
}

# torch.optim counterparts (same hyperparameters as above; optax's rmsprop decay is torch's alpha).
TORCH: dict[str, tuple[Callable[..., Any], dict, bool]] = {}
if torch is not None:
  TORCH = {  # name -> (class, kwargs, clip first)
      "sgd": (torch.optim.SGD, dict(lr=1e-2), False),
      "sgd+momentum": (torch.optim.SGD, dict(lr=1e-2, momentum=0.9), False),
      "nesterov": (torch.optim.SGD, dict(lr=1e-2, momentum=0.9, nesterov=True), False),
      "adagrad": (torch.optim.Adagrad, dict(lr=1e-2), False),
      "adadelta": (torch.optim.Adadelta, dict(lr=1.0), False),
      "rmsprop": (torch.optim.RMSprop, dict(lr=1e-3, alpha=0.9), False),
      "adam": (torch.optim.Adam, dict(lr=1e-3), False),
      "adamw": (torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-4), False),
      "adamax": (torch.optim.Adamax, dict(lr=1e-3), False),
      "nadam": (torch.optim.NAdam, dict(lr=1e-3), False),
      "amsgrad": (torch.optim.Adam, dict(lr=1e-3, amsgrad=True), False),
      "clip+adamw": (torch.optim.AdamW, dict(lr=1e-3, weight_decay=1e-4), True),
  }

MANY = 20  # leaves: enough for gradtx's compiled eager path (16+)
ADAM_FAMILY = ("adam", "adamw", "adamax", "nadam", "amsgrad", "clip+adamw")


# ------------------------------------------------------------------------------------------------
# Configurations.


def config(mode: str) -> dict:
  all_opts = list(OPTIMIZERS)
  if mode == "smoke":
    return dict(
        bandwidth_floats=1 << 16, reps=2, steps=2, warmup=1,
        trees={"one_leaf": ({"w": (64, 64)}, ["sgd", "adam"]),
               "tiny": (trees.tiny_shapes(20), ["adam"])},
        bf16=({"w": (32, 32), "b": (32,)}, ["adam"]),
        eager=(trees.tiny_shapes(MANY), ["adam"], 3),
        sweep=dict(lrs=4, steps=5, hidden=8, recompile=1, chunks=(2,)))
  if mode == "quick":
    return dict(
        bandwidth_floats=1 << 23, reps=5, steps=3, warmup=2,
        trees={"one_leaf": ({"w": (2048, 2048)}, all_opts),
               "resnet_like": (trees.resnet_shapes(0.42),
                               ["sgd+momentum", "adadelta", "adam", "clip+adamw"]),
               "transformer_like": (trees.transformer_shapes(2, 512, 2048),
                                    ["sgd+momentum", "adam", "clip+adamw"]),
               "tiny": (trees.tiny_shapes(500), ["adam", "clip+adamw"])},
        bf16=(trees.resnet_shapes(0.42), ["adam"]),
        eager=(trees.resnet_shapes(0.42), ["adam", "sgd+momentum", "clip+adamw"], 5),
        sweep=dict(lrs=16, steps=50, hidden=64, recompile=2, chunks=(4,)))
  return dict(
      bandwidth_floats=1 << 25, reps=7, steps=3, warmup=2,
      trees={"one_leaf": ({"w": (4096, 4096)}, all_opts),
             "resnet_like": (trees.resnet_shapes(1.0), all_opts),
             "transformer_like": (trees.transformer_shapes(12, 768, 3072),
                                  ["sgd", "sgd+momentum", "adadelta", "adam", "adamw",
                                   "clip+adamw"]),
             "tiny": (trees.tiny_shapes(2000), ["sgd+momentum", "adam"])},
      tree_reps={"resnet_like": (7, 2), "transformer_like": (5, 2)},
      bf16=(trees.resnet_shapes(1.0), ["adam", "clip+adamw"]),
      eager=(trees.resnet_shapes(1.0), ["adam", "sgd+momentum", "clip+adamw"], 6),
      sweep=dict(lrs=64, steps=100, hidden=64, recompile=3, chunks=(4, 16)))


# ------------------------------------------------------------------------------------------------
# Measuring.


def minflt() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def bandwidth(n: int, reps: int = 15) -> dict:
  """STREAM-like: jitted, donated read-modify-write kernels (in place, so no page faults)."""
  out = {}
  kernels = {"rmw a=s*a+b (12 B/float)": (lambda a, b: 0.999 * a + b, 12),
             "scale a=s*a (8 B/float)": (lambda a, b: 0.999 * a, 8)}
  for name, (fn, nbytes) in kernels.items():
    f = jax.jit(fn, donate_argnums=0)
    a, b = jnp.ones(n, jnp.float32), jnp.full(n, 1e-3, jnp.float32)
    for _ in range(3):
      a = f(a, b)
    a.block_until_ready()
    ts = []
    for _ in range(reps):
      t0 = time.perf_counter()
      a = f(a, b)
      a.block_until_ready()
      ts.append(time.perf_counter() - t0)
    out[name] = nbytes * n / statistics.median(ts) / 1e9
  return {"kernels_gbs": out, "gbs": max(out.values())}


class JaxRunner:
  """One library's jitted, donated step on its own copy of the params."""

  def __init__(self, module: Any, tx: Any, params: Any, grads: Any):
    def step(params, state, grads):
      updates, state = tx.update(grads, state, params)
      return module.apply_updates(params, updates), state

    self.params = jax.tree.map(jnp.copy, params)
    self.grads = grads
    # A copy: some inits (optax's prodigy) alias one buffer twice in the state, which the
    # donated step cannot take.
    state = jax.block_until_ready(jax.tree.map(jnp.copy, tx.init(self.params)))
    self.state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    t0 = time.perf_counter()
    self.compiled = jax.jit(step, donate_argnums=(0, 1)).lower(self.params, state, grads).compile()
    self.compile_s = time.perf_counter() - t0
    self.state = state

  def run(self, steps: int) -> None:
    p, s = self.params, self.state
    for _ in range(steps):
      p, s = self.compiled(p, s, self.grads)
    self.params, self.state = jax.block_until_ready((p, s))

  def final_params(self) -> list[np.ndarray]:
    return [np.asarray(x, np.float32) for x in jax.tree.leaves(self.params)]


def torch_device() -> str:
  """torch runs where JAX runs: on the GPU when JAX's default backend is one and torch sees it."""
  if jax.default_backend() == "gpu" and torch.cuda.is_available():
    return "cuda"
  return "cpu"


class TorchRunner:
  def __init__(self, name: str, variant: str, params_np: list[np.ndarray],
               grads_np: list[np.ndarray]):
    cls, kwargs, self.clip = TORCH[name]
    self.device = torch_device()
    self.params = [torch.nn.Parameter(torch.from_numpy(p.copy()).to(self.device))
                   for p in params_np]
    for p, g in zip(self.params, grads_np):
      p.grad = torch.from_numpy(g.copy()).to(self.device)
    flag = {"foreach": dict(foreach=True), "fused": dict(fused=True)}[variant]
    self.opt = cls(self.params, **kwargs, **flag)  # raises where torch has no such kernel
    self.compile_s = 0.0
    self.run(1)
    self.state_bytes = sum(v.numel() * v.element_size() for st in self.opt.state.values()
                           for v in st.values() if torch.is_tensor(v) and v.dim() > 0)

  def run(self, steps: int) -> None:
    for _ in range(steps):
      if self.clip:
        torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=True)
      self.opt.step()
    if self.device == "cuda":
      torch.cuda.synchronize()

  def final_params(self) -> list[np.ndarray]:
    return [p.detach().cpu().numpy() for p in self.params]


def interleave(runners: dict[str, Any], reps: int, steps: int, warmup: int) -> dict:
  """Median/IQR seconds per step and page faults per step; library order rotates every rep."""
  for r in runners.values():
    r.run(warmup)
  times: dict[str, list[float]] = {k: [] for k in runners}
  faults = {k: 0 for k in runners}
  names = list(runners)
  for rep in range(reps):
    k = rep % len(names)
    for name in names[k:] + names[:k]:
      f0, t0 = minflt(), time.perf_counter()
      runners[name].run(steps)
      times[name].append((time.perf_counter() - t0) / steps)
      faults[name] += minflt() - f0
  out = {}
  for name, ts in times.items():
    q = np.percentile(ts, [25, 50, 75])
    out[name] = dict(ms=1e3 * q[1], q25=1e3 * q[0], q75=1e3 * q[2], times=ts,
                     faults=faults[name] / (reps * steps))
  return out


def paired_ratio(a: list[float], b: list[float]) -> float:
  return float(np.median(np.asarray(a) / np.asarray(b)))


def bench_tree(tree_name: str, shapes: Any, optimizers: list[str], cfg: dict, bw: float,
               dtype: Any = jnp.float32, mu_dtype: Any = None, use_torch: bool = True,
               log: Callable[[str], None] = print) -> list[dict]:
  n_leaves, n_floats = trees.count(shapes)
  params_np, treedef = trees.make_numpy(shapes, 0, 0.1)
  grads_np, _ = trees.make_numpy(shapes, 1, 0.01)
  params = jax.tree.unflatten(treedef, [jnp.asarray(x, dtype) for x in params_np])
  grads = jax.tree.unflatten(treedef, [jnp.asarray(x, dtype) for x in grads_np])
  p_size = jnp.dtype(dtype).itemsize
  rows = []
  for name in optimizers:
    build, moments, extra_g = OPTIMIZERS[name]
    runners: dict[str, Any] = {}
    kw = {} if mu_dtype is None else {"mu_dtype": mu_dtype}
    for lib, module in (("gradtx", gradtx), ("optax", optax)):
      tx = build(module) if not kw else _with_dtype(name, module, kw, lib)
      runners[lib] = JaxRunner(module, tx, params, grads)
    if tree_name == "tiny":
      runners["gradtx grouped"] = JaxRunner(gradtx, gradtx.group_leaves(build(gradtx)), params,
                                            grads)
    torch_notes = {}
    if use_torch and torch is not None and name in TORCH and dtype == jnp.float32:
      for variant in ("foreach", "fused"):
        try:
          runners[f"torch {variant}"] = TorchRunner(name, variant, params_np, grads_np)
        except (RuntimeError, TypeError, ValueError) as e:
          torch_notes[variant] = f"n/a ({type(e).__name__})"
    reps, steps = cfg.get("tree_reps", {}).get(tree_name, (cfg["reps"], cfg["steps"]))
    res = interleave(runners, reps, steps, cfg["warmup"])
    m_size = p_size if mu_dtype is None else jnp.dtype(mu_dtype).itemsize
    nbytes = n_floats * (3 * p_size + extra_g * p_size + 2 * moments * m_size)
    bound_ms = 1e3 * nbytes / (bw * 1e9)
    diff = max(float(np.max(np.abs(a - b))) for a, b in
               zip(runners["gradtx"].final_params(), runners["optax"].final_params()))
    row = dict(tree=tree_name, optimizer=name, leaves=n_leaves, floats=n_floats,
               dtype=jnp.dtype(dtype).name, mu_dtype=None if mu_dtype is None else
               jnp.dtype(mu_dtype).name, bytes_per_step=nbytes, bound_ms=bound_ms,
               max_param_diff=diff, torch_notes=torch_notes, libs={})
    for lib, r in runners.items():
      row["libs"][lib] = dict(
          ms=res[lib]["ms"], q25=res[lib]["q25"], q75=res[lib]["q75"],
          faults=res[lib]["faults"], compile_s=r.compile_s,
          state_per_param=r.state_bytes / (n_floats * p_size),
          x_bound=res[lib]["ms"] / bound_ms,
          vs_optax=paired_ratio(res[lib]["times"], res["optax"]["times"]))
    torch_libs = [k for k in row["libs"] if k.startswith("torch")]
    if torch_libs:
      best = min(torch_libs, key=lambda k: row["libs"][k]["ms"])
      row["gradtx_vs_torch_best"] = paired_ratio(res["gradtx"]["times"], res[best]["times"])
      row["torch_best"] = best
    rows.append(row)
    g, o = row["libs"]["gradtx"], row["libs"]["optax"]
    label = tree_name if mu_dtype is None else f"{tree_name} (mu {row['mu_dtype']})"
    log(f"  {label:17s} {name:13s} gradtx {g['ms']:8.2f} ms  optax {o['ms']:8.2f} ms  "
        f"ratio {g['vs_optax']:.2f}  bound x{g['x_bound']:.2f}  compile {g['compile_s']:.1f}/"
        f"{o['compile_s']:.1f} s" + "".join(
            f"  {k} {v['ms']:.2f} ms" for k, v in row["libs"].items()
            if k not in ("gradtx", "optax")))
    del runners
  return rows


def _with_dtype(name: str, module: Any, kw: dict, lib: str) -> Any:
  """The optimizer with float32 moments: `mu_dtype` for both, and gradtx's `nu_dtype` too."""
  extra = dict(kw)
  if lib == "gradtx":
    extra["nu_dtype"] = kw["mu_dtype"]
  if name == "adam":
    return module.adam(1e-3, **extra)
  if name == "adamw":
    return module.adamw(1e-3, weight_decay=1e-4, **extra)
  if name == "clip+adamw":
    return module.chain(module.clip_by_global_norm(1.0),
                        module.adamw(1e-3, weight_decay=1e-4, **extra))
  raise ValueError(name)


def bench_eager(shapes: Any, optimizers: list[str], steps: int, use_torch: bool,
                log: Callable[[str], None] = print) -> list[dict]:
  params_np, treedef = trees.make_numpy(shapes, 0, 0.1)
  grads_np, _ = trees.make_numpy(shapes, 1, 0.01)
  params = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in params_np])
  grads = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in grads_np])
  rows = []
  for name in optimizers:
    row = dict(optimizer=name, libs={})
    for lib, module in (("gradtx", gradtx), ("optax", optax)):
      tx = OPTIMIZERS[name][0](module)
      p, s = params, tx.init(params)
      ts = []
      for _ in range(steps):
        t0 = time.perf_counter()
        u, s = tx.update(grads, s, p)
        p = module.apply_updates(p, u)
        jax.block_until_ready(p)
        ts.append(time.perf_counter() - t0)
      # first call (includes gradtx's one compilation) and steady state (median of the rest)
      row["libs"][lib] = dict(first_ms=1e3 * ts[0], ms=1e3 * statistics.median(ts[1:]))
    if use_torch and torch is not None:
      r = TorchRunner(name, "foreach", params_np, grads_np)
      ts = []
      for _ in range(steps - 1):
        t0 = time.perf_counter()
        r.run(1)
        ts.append(time.perf_counter() - t0)
      row["libs"]["torch foreach"] = dict(first_ms=float("nan"), ms=1e3 * statistics.median(ts))
    row["optax_over_gradtx"] = row["libs"]["optax"]["ms"] / row["libs"]["gradtx"]["ms"]
    rows.append(row)
    log(f"  eager {name:13s} " + "  ".join(f"{k} {v['ms']:.1f} ms" for k, v in row["libs"].items())
        + f"  optax/gradtx {row['optax_over_gradtx']:.1f}x")
  return rows


def bench_sweep(lrs: int, steps: int, hidden: int, recompile: int, chunks: tuple[int, ...] = (),
                log: Callable[[str], None] = print) -> dict:
  """64 (or fewer) learning rates of adam on a digits MLP: grid_sweep (default chunking, all at
  once, and chunks of each size in `chunks`), a loop over one jitted function, recompiling."""
  from sklearn.datasets import load_digits  # dev dependency; bundled data, no download

  x, y = load_digits(return_X_y=True)
  x, yy = jnp.asarray(x / 16.0, jnp.float32), jax.nn.one_hot(y, 10)
  rng = np.random.default_rng(0)
  p0 = {"w1": jnp.asarray(rng.standard_normal((64, hidden)) * 0.1, jnp.float32),
        "b1": jnp.zeros(hidden), "w2": jnp.asarray(rng.standard_normal((hidden, 10)) * 0.1,
                                                   jnp.float32), "b2": jnp.zeros(10)}

  def loss(p):
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    return -jnp.mean(jnp.sum(yy * jax.nn.log_softmax(h @ p["w2"] + p["b2"]), -1))

  def train(learning_rate):
    tx = gradtx.adam(learning_rate)

    def body(carry, _):
      p, s = carry
      u, s = tx.update(jax.grad(loss)(p), s, p)
      return (gradtx.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, steps)
    return loss(p)

  grid = jnp.logspace(-4, -1, lrs)

  def timed(fn):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0

  out: dict[str, Any] = {"lrs": lrs, "steps": steps, "hidden": hidden}
  strategies = {
      "grid_sweep (auto)": lambda: gradtx.grid_sweep(train, learning_rate=grid),
      "grid_sweep (vmap all)": lambda: gradtx.grid_sweep(train, chunk_size=None,
                                                         learning_rate=grid),
  }
  for k in chunks:
    strategies[f"grid_sweep (chunk_size={k})"] = functools.partial(
        gradtx.grid_sweep, train, chunk_size=k, learning_rate=grid)
  traced = jax.jit(train)
  strategies["python loop, traced lr"] = lambda: [traced(lr) for lr in grid]
  for name, fn in strategies.items():
    first = timed(fn)
    steady = min(timed(fn) for _ in range(2))
    out[name] = dict(first_s=first, steady_s=steady)
    log(f"  sweep {name:24s} first {first:.2f} s (with compile)  steady {steady:.2f} s")
  per = timed(lambda: [jax.jit(functools.partial(train, float(lr)))() for lr in grid[:recompile]])
  out["recompiling per value"] = dict(first_s=per / recompile * lrs, steady_s=per / recompile * lrs,
                                      measured_values=recompile)
  log(f"  sweep recompiling: {per:.2f} s for {recompile} values -> {per / recompile * lrs:.1f} s "
      f"for {lrs} (extrapolated)")
  return out


# ------------------------------------------------------------------------------------------------
# Report.


def machine() -> dict:
  cpu = "?"
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
  except OSError:
    pass
  mem = "?"
  try:
    with open("/proc/meminfo") as f:
      mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
  except OSError:
    pass
  versions = {"python": platform.python_version()}
  for pkg in ("jax", "jaxlib", "optax", "numpy", "torch"):
    try:
      versions[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      versions[pkg] = "not installed"
  try:
    rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, timeout=10).stdout.strip() or "?"
  except (OSError, subprocess.SubprocessError):
    rev = "?"
  versions["gradtx"] = f"{gradtx.__version__} (git {rev})" if hasattr(gradtx, "__version__") \
      else f"git {rev}"
  return dict(cpu=cpu, cores=os.cpu_count(), memory=mem, os=platform.platform(),
              device=str(jax.devices()[0]), backend=jax.default_backend(), versions=versions,
              date=datetime.datetime.now().isoformat(timespec="minutes"))


def _fmt(x: float, nd: int = 2) -> str:
  return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def targets(results: dict) -> list[tuple[str, str, str]]:
  """(target, measured, verdict) rows from the issue's list."""
  rows = []
  step = [r for r in results["step"] if r["tree"] in ("one_leaf", "resnet_like",
                                                      "transformer_like")]
  if step:
    worst = max(step, key=lambda r: r["libs"]["gradtx"]["vs_optax"])
    gm = float(np.exp(np.mean([np.log(r["libs"]["gradtx"]["vs_optax"]) for r in step])))
    rows.append(("gradtx/optax <= 1.00 on large trees",
                 f"geometric mean {gm:.2f}; worst {worst['libs']['gradtx']['vs_optax']:.2f} "
                 f"({worst['optimizer']}, {worst['tree']})",
                 "met" if worst["libs"]["gradtx"]["vs_optax"] <= 1.05 else
                 "met on average, not in every row" if gm <= 1.0 else "not met"))
    fam = [r for r in step if r["optimizer"] in ADAM_FAMILY]
    if fam:
      xb = [r["libs"]["gradtx"]["x_bound"] for r in fam]
      rows.append(("Adam family within 1.25x of the bandwidth bound",
                   f"{min(xb):.2f}x - {max(xb):.2f}x of bound",
                   "met" if max(xb) <= 1.25 else "not met (see Notes: XLA:CPU floor 1.43x)"))
    for name in ("adadelta", "clip+adamw"):
      rs = [r for r in step if r["optimizer"] == name]
      if rs:
        sp = [1 / r["libs"]["gradtx"]["vs_optax"] for r in rs]
        rows.append((f"{name} >= 2x faster than optax",
                     ", ".join(f"{r['tree']} {s:.2f}x" for r, s in zip(rs, sp)),
                     "met" if min(sp) >= 2 else "met in some trees" if max(sp) >= 2 else
                     "not met"))
  tiny = [r for r in results["step"] if r["tree"] == "tiny" and "gradtx grouped" in r["libs"]]
  for r in tiny:
    g, o = r["libs"]["gradtx grouped"], r["libs"]["optax"]
    s, c = o["ms"] / g["ms"], o["compile_s"] / g["compile_s"]
    rows.append((f"{r['leaves']} tiny leaves ({r['optimizer']}): >= 5x faster step and compile",
                 f"step {s:.1f}x, compile {c:.1f}x",
                 "met" if s >= 5 and c >= 5 else "compile met" if c >= 5 else "not met"))
  for r in results["eager"]:
    s = r["optax_over_gradtx"]
    rows.append((f"eager {r['optimizer']}: >= 4x faster than optax eager", f"{s:.1f}x",
                 "met" if s >= 4 else "not met"))
  for r in results["bf16"]:
    v = r["libs"]["gradtx"]["vs_optax"]
    moments = f"mu_dtype={r['mu_dtype']}" if r["mu_dtype"] else "default dtypes"
    rows.append((f"bfloat16 {r['optimizer']} ({moments}): gradtx <= optax",
                 f"{v:.2f}", "met" if v <= 1.05 else "not met"))
  sw = results.get("sweep")
  if sw:
    g, loop = sw["grid_sweep (auto)"], sw["python loop, traced lr"]
    rec = sw["recompiling per value"]
    rows.append(("sweep: grid_sweep >= traced loop (with compile / steady)",
                 f"{loop['first_s'] / g['first_s']:.2f}x / {loop['steady_s'] / g['steady_s']:.2f}x",
                 "met" if loop["first_s"] >= g["first_s"] * 0.95 else "not met"))
    rows.append(("sweep: grid_sweep >= 3x faster than recompiling",
                 f"{rec['first_s'] / g['first_s']:.1f}x",
                 "met" if rec["first_s"] >= 3 * g["first_s"] else "not met"))
  return rows


def write_report(results: dict, out_dir: str) -> str:
  m = results["machine"]
  lines = [
      "# gradtx benchmark results", "",
      f"Mode `{results['mode']}`, {m['date']}, {results['wall_s']:.0f} s. Written by "
      "`python -m benchmarks.run` (see benchmarks/README.md); re-run to refresh.", "",
      "## Machine", "",
      f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}",
      f"- JAX device: {m['device']} (backend `{m['backend']}`)",
      "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
      f"- memory bandwidth (STREAM-like, same run): **{results['bandwidth']['gbs']:.1f} GB/s** ("
      + ", ".join(f"{k}: {v:.1f}" for k, v in results["bandwidth"]["kernels_gbs"].items()) + ")",
      "",
      "## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
  lines += [f"| {t} | {v} | {d} |" for t, v, d in targets(results)]
  lines += ["", "## Step time", "",
            "Median ms per jitted, donated `update + apply_updates` step (IQR in brackets); "
            "`ratio` = median of the per-repetition ratios gradtx/optax (repetitions interleave "
            "the libraries); `x bound` = time / (bytes a fused step must move / measured "
            "bandwidth); faults = minor page faults per step; state = optimizer-state bytes per "
            "param byte; compile = AOT lower+compile seconds.", ""]
  for tree_name in dict.fromkeys(r["tree"] for r in results["step"]):
    rs = [r for r in results["step"] if r["tree"] == tree_name]
    r0 = rs[0]
    lines += [f"### {tree_name}: {r0['leaves']} leaves, {r0['floats'] / 1e6:.2f}M floats "
              f"({r0['dtype']})", ""]
    libs = list(dict.fromkeys(k for r in rs for k in r["libs"]))
    head = ["optimizer"] + [f"{k} ms" for k in libs] + [
        "gradtx/optax", "gradtx/torch best", "x bound gradtx", "x bound optax",
        "compile s gradtx/optax", "faults gradtx/optax", "state B/B gradtx/optax", "max abs dp"]
    if tree_name == "tiny":
      head.insert(-1, "grouped: compile s, optax/grouped step")
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rs:
      L = r["libs"]
      cells = [r["optimizer"]] + [
          f"{L[k]['ms']:.2f} [{L[k]['q25']:.2f}-{L[k]['q75']:.2f}]" if k in L else
          r["torch_notes"].get(k.split()[-1], "-") for k in libs]
      cells += [_fmt(L["gradtx"]["vs_optax"]), _fmt(r.get("gradtx_vs_torch_best")),
                _fmt(L["gradtx"]["x_bound"]), _fmt(L["optax"]["x_bound"]),
                f"{L['gradtx']['compile_s']:.1f} / {L['optax']['compile_s']:.1f}",
                f"{L['gradtx']['faults']:.0f} / {L['optax']['faults']:.0f}",
                f"{L['gradtx']['state_per_param']:.2f} / {L['optax']['state_per_param']:.2f}"]
      if tree_name == "tiny":
        g = L["gradtx grouped"]
        cells.append(f"{g['compile_s']:.1f}, {L['optax']['ms'] / g['ms']:.1f}x")
      cells.append(f"{r['max_param_diff']:.1e}")
      lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
  if results["bf16"]:
    r0 = results["bf16"][0]
    lines += [f"### bfloat16 params ({r0['leaves']} leaves, {r0['floats'] / 1e6:.2f}M)", "",
              "Moments `float32`: gradtx runs with `mu_dtype=nu_dtype=float32`, optax with "
              "`mu_dtype=float32` (optax has no `nu_dtype`: its second moment stays bfloat16). "
              "Moments `default`: both libraries' defaults (moments in the params' bfloat16).", "",
              "| optimizer | moments | gradtx ms | optax ms | gradtx/optax | x bound gradtx | "
              "state B/B gradtx/optax | max abs dp |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["bf16"]:
      L = r["libs"]
      lines.append(f"| {r['optimizer']} | {r['mu_dtype'] or 'default'} | "
                   f"{L['gradtx']['ms']:.2f} | {L['optax']['ms']:.2f} | "
                   f"{L['gradtx']['vs_optax']:.2f} | {L['gradtx']['x_bound']:.2f} | "
                   f"{L['gradtx']['state_per_param']:.2f} / {L['optax']['state_per_param']:.2f} | "
                   f"{r['max_param_diff']:.1e} |")
    lines.append("")
  if results["eager"]:
    libs = list(dict.fromkeys(k for r in results["eager"] for k in r["libs"]))
    lines += [f"## Eager steps (no jit), {results.get('eager_tree', '')}", "",
              "Median ms per `update` + `apply_updates` called eagerly (torch: `step()`); first = "
              "the first call (gradtx compiles its chain there).", "",
              "| optimizer | " + " | ".join(f"{k} ms (first)" for k in libs) +
              " | optax/gradtx |", "|" + " --- |" * (len(libs) + 2)]
    for r in results["eager"]:
      lines.append(f"| {r['optimizer']} | " + " | ".join(
          f"{r['libs'][k]['ms']:.1f} ({_fmt(r['libs'][k]['first_ms'], 0)})" for k in libs)
          + f" | {r['optax_over_gradtx']:.1f}x |")
    lines.append("")
  sw = results.get("sweep")
  if sw:
    lines += [f"## Sweeps: {sw['lrs']} learning rates of adam, {sw['steps']} steps of a "
              f"64-{sw['hidden']}-10 MLP on digits", "",
              "| strategy | first call s (with compile) | steady s |", "| --- | --- | --- |"]
    for k, v in sw.items():
      if isinstance(v, dict):
        note = f" (timed on {v['measured_values']}, extrapolated)" if "measured_values" in v \
            else ""
        lines.append(f"| {k}{note} | {v['first_s']:.2f} | {v['steady_s']:.2f} |")
    lines.append("")
  notes = os.path.join(HERE, "NOTES.md")
  if os.path.exists(notes):
    with open(notes) as f:
      lines += [f.read().rstrip(), ""]
  if results.get("png"):
    lines += [f"![step-time ratios]({os.path.basename(results['png'])})", ""]
  path = os.path.join(out_dir, "RESULTS.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path


COLORS = {"gradtx": "tab:blue", "optax": "tab:orange", "gradtx grouped": "tab:purple",
          "torch foreach": "tab:green", "torch fused": "tab:red"}


def write_png(results: dict, out_dir: str) -> str | None:
  try:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:  # pragma: no cover
    return None
  tree_names = list(dict.fromkeys(r["tree"] for r in results["step"]))
  fig, axes = plt.subplots(1, len(tree_names), figsize=(4.2 * len(tree_names), 4.2),
                           squeeze=False)
  for ax, tree_name in zip(axes[0], tree_names):
    rs = [r for r in results["step"] if r["tree"] == tree_name]
    libs = [k for k in dict.fromkeys(k for r in rs for k in r["libs"])]
    ys = np.arange(len(rs))
    h = 0.8 / len(libs)
    for i, lib in enumerate(libs):
      ax.barh(ys + i * h, [r["libs"].get(lib, {}).get("x_bound", np.nan) for r in rs], h,
              label=lib, color=COLORS.get(lib, "gray"))
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(ys + 0.4 - h / 2, [r["optimizer"] for r in rs])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title(tree_name)
    ax.set_xlabel("step time / bandwidth bound (log)")
  handles = {}
  for ax in axes[0]:
    for h, label in zip(*ax.get_legend_handles_labels()):
      handles.setdefault(label, h)
  fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles),
             fontsize=8)
  fig.tight_layout(rect=(0, 0.07, 1, 1))
  path = os.path.join(out_dir, "results.png")
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--quick", action="store_true", help="smaller trees (< 3 min)")
  parser.add_argument("--smoke", action="store_true", help="tiny everything (the test suite)")
  parser.add_argument("--out", default=HERE, help="directory for RESULTS.md, results.json/png")
  parser.add_argument("--only", default="bandwidth,step,bf16,eager,sweep",
                      help="comma-separated sections: %(default)s")
  parser.add_argument("--optimizers", default=None, help="comma-separated subset")
  parser.add_argument("--trees", default=None, help="comma-separated subset of the trees")
  parser.add_argument("--no-torch", action="store_true", help="skip torch.optim")
  parser.add_argument("--report-only", action="store_true",
                      help="re-write RESULTS.md from OUT/results.json (e.g. after editing NOTES.md)")
  args = parser.parse_args(argv)
  if args.report_only:
    with open(os.path.join(args.out, "results.json")) as f:
      results = json.load(f)
    if results["step"]:
      results["png"] = os.path.basename(write_png(results, args.out))
    print("wrote", write_report(results, args.out))
    return results
  mode = "smoke" if args.smoke else "quick" if args.quick else "full"
  cfg = config(mode)
  sections = set(args.only.split(","))
  use_torch = not args.no_torch and not args.smoke
  only_opts = None if args.optimizers is None else args.optimizers.split(",")
  pick = lambda names: [n for n in names if only_opts is None or n in only_opts]
  os.makedirs(args.out, exist_ok=True)
  if torch is not None:
    torch.set_num_threads(os.cpu_count() or 1)
  t_start = time.perf_counter()
  log = lambda s: print(f"[{time.perf_counter() - t_start:5.0f} s] {s}", flush=True)
  results: dict[str, Any] = dict(mode=mode, machine=machine(), step=[], bf16=[], eager=[])
  log(f"gradtx benchmarks, mode {mode}, on {results['machine']['device']}")
  results["bandwidth"] = bandwidth(cfg["bandwidth_floats"]) if "bandwidth" in sections else \
      {"kernels_gbs": {}, "gbs": float("nan")}
  log(f"bandwidth {results['bandwidth']['gbs']:.1f} GB/s")
  bw = results["bandwidth"]["gbs"]
  if "step" in sections:
    for tree_name, (shapes, opts) in cfg["trees"].items():
      if args.trees and tree_name not in args.trees.split(","):
        continue
      results["step"] += bench_tree(tree_name, shapes, pick(opts), cfg, bw,
                                    use_torch=use_torch, log=log)
  if "bf16" in sections:
    shapes, opts = cfg["bf16"]
    for mu_dtype in (jnp.float32, None):  # float32 moments, then each library's defaults
      results["bf16"] += bench_tree("bf16", shapes, pick(opts), cfg, bw, dtype=jnp.bfloat16,
                                    mu_dtype=mu_dtype, use_torch=False, log=log)
  if "eager" in sections:
    shapes, opts, steps = cfg["eager"]
    n_leaves, n_floats = trees.count(shapes)
    results["eager_tree"] = f"{n_leaves} leaves, {n_floats / 1e6:.2f}M floats"
    results["eager"] = bench_eager(shapes, pick(opts), steps, use_torch, log=log)
  if "sweep" in sections:
    results["sweep"] = bench_sweep(**cfg["sweep"], log=log)
  results["wall_s"] = time.perf_counter() - t_start
  png = write_png(results, args.out) if results["step"] else None
  results["png"] = None if png is None else os.path.basename(png)  # no machine paths in the JSON
  for r in results["step"] + results["bf16"]:
    for v in r["libs"].values():
      v.pop("times", None)
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(results, f, indent=1, default=str)
  path = write_report(results, args.out)
  log(f"wrote {path} in {results['wall_s']:.0f} s")
  return results


if __name__ == "__main__":
  main(sys.argv[1:])
