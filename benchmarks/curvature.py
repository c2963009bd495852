"""gradtx.curvature's cost (issue 15): HVP vs gradient, XLA temporaries, and PyHessian side by side.

    python -m benchmarks.curvature            # MLP 64-256-256-10 on digits, ResNet-like x0.125
    python -m benchmarks.curvature --smoke    # seconds; what the test suite runs

Sections:
  hvp      one Hessian-vector product (`curvature.hessian(...).matvec`, a fresh linearisation)
           and one product of an already-built operator (amortised over 20 in a `fori_loop`),
           each over one jitted gradient, on the MLP and on a ResNet-like conv net whose params
           are `benchmarks.trees.resnet_shapes(width)`; the XLA temporary bytes of each compiled
           program (`compiled.memory_analysis()`).
  pyhessian the top eigenvalue (20 iterations), the trace (100 Hutchinson probes) and a 90-step
           density (1 SLQ probe) of the same MLP, the same weights and the same data, with
           gradtx (jitted; compile time reported apart) and with PyPI's `pyhessian` (torch,
           eager). PyHessian's `density()` calls `torch.eig`, removed from torch 2.x; this file
           supplies `torch.eig` for that one call as `torch.linalg.eigh` (the tridiagonal is
           symmetric), everything else is PyHessian's own code. PyHessian's power iteration
           runs exactly 20 products (tol=0); gradtx is timed with a 20-step Lanczos
           (`top_eigenvalues(order=20)`) and with `power_iteration(num_iters=20)`.
  lanczos  the compiled temporary bytes of `curvature.lanczos` for several orders against
           order x P x 4 bytes (the basis).
Nothing here is a test: no number is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import trees
from gradtx import curvature
from gradtx.curvature import power_iteration

HERE = os.path.dirname(os.path.abspath(__file__))


def digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # noqa: PLC0415
  x, y = load_digits(return_X_y=True)
  x = (x - x.mean(0)) / (x.std(0) + 1e-6)
  return x[:n].astype(np.float32), y[:n].astype(np.int32)


def mlp_params(sizes: tuple[int, ...], seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  p = {}
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    p[f"w{i}"] = (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
    p[f"b{i}"] = (0.01 * rng.standard_normal(b)).astype(np.float32)
  return p


def mlp_loss(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
  layers = len(p) // 2
  for i in range(layers):
    x = x @ p[f"w{i}"] + p[f"b{i}"]
    if i < layers - 1:
      x = jax.nn.relu(x)
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(x), y[:, None], axis=1))


def resnet_loss(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
  """A ResNet-50-shaped forward pass (bottleneck blocks, affine 'bn', stride 2 per stage)."""
  def conv(h, kernel, stride=1):
    return jax.lax.conv_general_dilated(h, kernel, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def bn(h, q):  # normalise over the batch and space, then the learned affine map
    h = (h - h.mean((0, 1, 2))) * jax.lax.rsqrt(h.var((0, 1, 2)) + 1e-5)
    return h * q["scale"] + q["bias"]

  h = jax.nn.relu(bn(conv(x, p["stem"]["conv"]["kernel"], 2), p["stem"]["bn"]))
  for s in range(1, 5):
    for b, block in enumerate(p[f"stage{s}"][f"block{j}"] for j in range(len(p[f"stage{s}"]))):
      stride = 2 if (b == 0 and s > 1) else 1
      out = jax.nn.relu(bn(conv(h, block["conv1"]["kernel"]), block["bn1"]))
      out = jax.nn.relu(bn(conv(out, block["conv2"]["kernel"], stride), block["bn2"]))
      out = bn(conv(out, block["conv3"]["kernel"]), block["bn3"])
      short = bn(conv(h, block["proj"]["kernel"], stride), block["proj_bn"]) if "proj" in block else h
      h = jax.nn.relu(out + short)
  logits = h.mean((1, 2)) @ p["head"]["kernel"] + p["head"]["bias"]
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def timed(fn: Callable[[], Any], reps: int) -> float:
  """Median seconds of `reps` calls (after one warm-up call)."""
  jax.block_until_ready(fn())
  out = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    out.append(time.perf_counter() - t)
  return float(np.median(out))


def compiled(fn: Callable, *args: Any) -> tuple[Any, float, int]:
  """(compiled executable, compile seconds, XLA temporary bytes)."""
  t = time.perf_counter()
  c = jax.jit(fn).lower(*args).compile()
  seconds = time.perf_counter() - t
  mem = c.memory_analysis()
  return c, seconds, int(getattr(mem, "temp_size_in_bytes", -1)) if mem is not None else -1


def bench_hvp(name: str, loss: Callable, params: Any, x: Any, y: Any, reps: int) -> dict:
  v = jax.tree.map(lambda a: jnp.asarray(np.random.default_rng(1).standard_normal(a.shape),
                                         a.dtype), params)
  k = 20
  grad_c, grad_s, grad_tmp = compiled(lambda p: jax.grad(loss)(p, x, y), params)
  hvp_c, hvp_s, hvp_tmp = compiled(lambda p, u: curvature.hessian(loss, p, x, y).matvec(u),
                                   params, v)

  def many(p, u):  # one linearisation, k products
    op = curvature.hessian(loss, p, x, y)
    return jax.lax.fori_loop(0, k, lambda i, w: op.matvec(w), u)

  many_c, _, many_tmp = compiled(many, params, v)
  t_grad = timed(lambda: grad_c(params), reps)
  t_hvp = timed(lambda: hvp_c(params, v), reps)
  t_many = timed(lambda: many_c(params, v), reps)
  size = sum(a.size for a in jax.tree.leaves(params))
  row = dict(model=name, params=int(size), grad_ms=1e3 * t_grad, hvp_ms=1e3 * t_hvp,
             hvp_over_grad=t_hvp / t_grad, amortised_ms=1e3 * t_many / k,
             amortised_over_grad=t_many / k / t_grad, grad_temp_bytes=grad_tmp,
             hvp_temp_bytes=hvp_tmp, many_temp_bytes=many_tmp, compile_s=hvp_s)
  print(f"{name}: P={size}, grad {row['grad_ms']:.2f} ms, HVP {row['hvp_ms']:.2f} ms "
        f"(x{row['hvp_over_grad']:.2f}), amortised product {row['amortised_ms']:.2f} ms "
        f"(x{row['amortised_over_grad']:.2f}); XLA temp bytes grad {grad_tmp}, HVP {hvp_tmp}, "
        f"{k} products {many_tmp}", flush=True)
  return row


def _torch_eig_shim(torch):
  """PyHessian's density() calls torch.eig (removed in torch 2.0) on a symmetric tridiagonal:
  (eigenvalues as an (n, 2) real/imaginary array, eigenvectors as columns)."""
  def eig(t, eigenvectors=True):
    w, v = torch.linalg.eigh(t)
    return torch.stack([w, torch.zeros_like(w)], 1), v
  return eig


def bench_pyhessian(params: dict, x: np.ndarray, y: np.ndarray, cfg: dict) -> dict | None:
  try:
    import torch  # noqa: PLC0415
    from pyhessian import hessian as PyHessian  # noqa: PLC0415, N812
  except ImportError as e:
    print(f"pyhessian: skipped ({e}); pip install pyhessian torch")
    return None
  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count() or 1)
  iters, probes, order = cfg["eig_iters"], cfg["trace_probes"], cfg["density_order"]
  layers = len(params) // 2
  mods = []
  for i in range(layers):
    w = params[f"w{i}"]
    lin = torch.nn.Linear(*w.shape)
    with torch.no_grad():
      lin.weight.copy_(torch.from_numpy(w.T.copy()))
      lin.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    mods += [lin] + ([torch.nn.ReLU()] if i < layers - 1 else [])
  model = torch.nn.Sequential(*mods)
  data = (torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
  crit = torch.nn.CrossEntropyLoss()

  t = time.perf_counter()
  hc = PyHessian(model, crit, data=data, cuda=False)
  setup = time.perf_counter() - t
  out = {"setup_s": setup}
  hc.eigenvalues(maxIter=2, tol=0.0)  # warm-up (torch's first-call costs), not timed
  t = time.perf_counter()
  top, _ = hc.eigenvalues(maxIter=iters, tol=0.0)
  out["eig_s"], out["eig"] = time.perf_counter() - t, float(top[0])
  t = time.perf_counter()
  samples = hc.trace(maxIter=probes, tol=0.0)
  out["trace_s"] = time.perf_counter() - t
  out["trace"] = float(np.mean(samples))
  out["trace_se"] = float(np.std(samples, ddof=1) / np.sqrt(len(samples)))
  t = time.perf_counter()
  saved = getattr(torch, "eig", None)
  torch.eig = _torch_eig_shim(torch)  # torch 2.x's torch.eig only raises; restored below
  try:
    ritz, weights = hc.density(iter=order, n_v=1)
  finally:
    torch.eig = saved
  out["density_s"] = time.perf_counter() - t
  ritz, weights = np.asarray(ritz[0]), np.asarray(weights[0])
  out["density_top"] = float(ritz.max())
  out["density_mean"] = float(np.sum(ritz * weights))  # ~ trace / P
  return out


def bench_gradtx_estimators(params: dict, x: np.ndarray, y: np.ndarray, cfg: dict, reps: int
                            ) -> dict:
  iters, probes, order = cfg["eig_iters"], cfg["trace_probes"], cfg["density_order"]
  p = jax.tree.map(jnp.asarray, params)
  x, y = jnp.asarray(x), jnp.asarray(y)
  key = jax.random.key(0)
  v0 = jax.tree.map(lambda a: jax.random.normal(key, a.shape, a.dtype), p)
  fns = {
      "eig": lambda p: curvature.top_eigenvalues(curvature.hessian(mlp_loss, p, x, y), 1, key,
                                                 order=iters)[0][0],
      "eig_power": lambda p: power_iteration(curvature.hessian(mlp_loss, p, x, y).matvec, v0=v0,
                                             num_iters=iters, error_tolerance=0.0)[0],
      "trace": lambda p: curvature.hutchinson_trace(curvature.hessian(mlp_loss, p, x, y), key,
                                                    probes),
      "density": lambda p: curvature.spectral_density(curvature.hessian(mlp_loss, p, x, y), key,
                                                      order, 1)[2:],
  }
  out = {}
  for name, fn in fns.items():
    c, compile_s, tmp = compiled(fn, p)
    out[f"{name}_s"] = timed(lambda: c(p), reps)
    out[f"{name}_compile_s"] = compile_s
    out[f"{name}_temp_bytes"] = tmp
    res = c(p)
    if name == "trace":
      out["trace"], out["trace_se"] = float(res[0]), float(res[1])
    elif name == "density":
      ritz, weights = np.asarray(res[0][0]), np.asarray(res[1][0])
      out["density_top"] = float(ritz.max())
      out["density_mean"] = float(np.sum(ritz * weights))
    else:
      out[name] = float(res)
  return out


def bench_lanczos_memory(params: dict, x: np.ndarray, y: np.ndarray, orders: list[int]) -> list:
  p = jax.tree.map(jnp.asarray, params)
  x, y = jnp.asarray(x), jnp.asarray(y)
  size = sum(a.size for a in jax.tree.leaves(p))
  rows = []
  for order in orders:
    fn = lambda p: curvature.lanczos(curvature.hessian(mlp_loss, p, x, y), jax.random.key(0),
                                     order)[:2]
    _, _, tmp = compiled(fn, p)
    basis = order * size * 4
    rows.append(dict(order=order, params=int(size), temp_bytes=tmp, basis_bytes=basis,
                     temp_over_basis=tmp / basis))
    print(f"lanczos order {order}: XLA temp {tmp / 2**20:.1f} MiB, order x P x 4 = "
          f"{basis / 2**20:.1f} MiB (x{tmp / basis:.2f})", flush=True)
  return rows


def configuration(smoke: bool) -> dict:
  if smoke:
    return dict(sizes=(64, 16, 10), n=128, resnet_width=None, eig_iters=5, trace_probes=4,
                density_order=8, orders=[4], reps=2)
  return dict(sizes=(64, 256, 256, 10), n=None, resnet_width=0.125, resnet_batch=8,
              resnet_image=32, eig_iters=20, trace_probes=100, density_order=90,
              orders=[20, 90], reps=5)


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true")
  parser.add_argument("--no-torch", action="store_true")
  parser.add_argument("--out", default=None, help="write curvature_results.json here")
  args = parser.parse_args(argv)
  cfg = configuration(args.smoke)
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs; "
        f"{'smoke' if args.smoke else 'full'} settings", flush=True)
  x, y = digits(cfg["n"])
  params = mlp_params(cfg["sizes"])
  results: dict = {"mode": "smoke" if args.smoke else "full", "config": cfg, "hvp": []}
  jp = jax.tree.map(jnp.asarray, params)
  results["hvp"].append(bench_hvp(f"mlp {cfg['sizes']}", mlp_loss, jp, jnp.asarray(x),
                                  jnp.asarray(y), cfg["reps"]))
  if cfg["resnet_width"]:
    shapes = trees.resnet_shapes(cfg["resnet_width"])
    rp = trees.make_tree(shapes, 0, 0.05)
    img = cfg["resnet_image"]
    rx = jnp.asarray(np.random.default_rng(2).standard_normal(
        (cfg["resnet_batch"], img, img, 3)), jnp.float32)
    ry = jnp.arange(cfg["resnet_batch"]) % 10
    results["hvp"].append(bench_hvp(f"resnet_like x{cfg['resnet_width']}", resnet_loss, rp, rx,
                                    ry, cfg["reps"]))
  results["gradtx"] = bench_gradtx_estimators(params, x, y, cfg, cfg["reps"])
  results["pyhessian"] = None if args.no_torch else bench_pyhessian(params, x, y, cfg)
  results["lanczos"] = bench_lanczos_memory(params, x, y, cfg["orders"])
  g, t = results["gradtx"], results["pyhessian"]
  print()
  print("| estimate | gradtx s (compile s) | PyHessian s | PyHessian / gradtx | gradtx value | "
        "PyHessian value |")
  print("| --- | --- | --- | --- | --- | --- |")
  for key, label in (("eig", f"top eigenvalue, {cfg['eig_iters']} Lanczos steps / power iters"),
                     ("eig_power", f"top eigenvalue, {cfg['eig_iters']} power iterations"),
                     ("trace", f"trace, {cfg['trace_probes']} probes"),
                     ("density", f"density, {cfg['density_order']} Lanczos steps")):
    py_key = "eig" if key == "eig_power" else key
    value = {"trace": lambda d: f"{d['trace']:.3f} +- {d['trace_se']:.3f}",
             "density": lambda d: f"top {d['density_top']:.4f}, mean {d['density_mean']:.5f}"
             }.get(key, lambda d: f"{d[key if d is g else py_key]:.4f}")
    ps = f"{t[py_key + '_s']:.3f}" if t else "-"
    ratio = f"{t[py_key + '_s'] / g[key + '_s']:.1f}" if t else "-"
    print(f"| {label} | {g[key + '_s']:.4f} ({g[key + '_compile_s']:.2f}) | {ps} | {ratio} | "
          f"{value(g)} | {value(t) if t else '-'} |")
  if t:
    print(f"(PyHessian setup, the create_graph backward: {t['setup_s']:.3f} s)")
    diff = abs(g["trace"] - t["trace"])
    se = float(np.hypot(g["trace_se"], t["trace_se"]))
    results["trace_diff_in_se"] = diff / se
    print(f"trace difference {diff:.3f} = {diff / se:.2f} combined standard errors")
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "curvature_results.json"), "w") as f:
      json.dump(results, f, indent=1, default=float)
  return results


if __name__ == "__main__":
  main()
