"""Second-order methods' cost (issue 16): gradtx.lbfgs against optax.lbfgs, SciPy's L-BFGS-B
(and jaxopt's LBFGS where `import jaxopt` works), and Newton-CG's cost in gradients.

    python -m benchmarks.second_order            # P = 100,100 logistic regression, ~1-2 minutes
    python -m benchmarks.second_order --smoke    # seconds; what the test suite runs

The problem: multinomial logistic regression with L2 penalty, synthetic data (N samples, D
standard normal features, C classes, labels from a random linear model with Gumbel noise),
params {"w": (D, C), "b": (C,)}; D = 1000, C = 100, N = 2000 gives P = 100,100. float32 in JAX;
SciPy runs on the host in float64 on the same (float32) loss and gradient, jitted.

Every method starts from zeros and runs `--iters` iterations (the same for all, in the same
process). gradtx / optax is the median over 5 alternating rounds of 20 steps from the start
of the ratio of median step times. "iterations to tolerance" is the first iteration whose gradient norm is <= `--gtol`
times the initial one; "per iteration" is the wall time of the iterations after compilation
(JAX: one jitted step each, `block_until_ready`; SciPy: `minimize`'s wall time / `nit`, its
loss and gradient evaluations included). optax and gradtx run the same chain (memory 10, zoom
line search) through `value_and_grad_from_state`. Newton-CG: `gradtx.newton_cg()` with its
state's `cg_steps` (Hessian-vector products per iteration), its line search's evaluations, and
the iteration's time over one jitted gradient's ("gradient-equivalents"), averaged over the
iterations up to tolerance; one jitted HVP (forward-over-reverse) over one gradient too. Nothing here is a test: no number is asserted.
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


def make_problem(n: int, d: int, c: int, lam: float = 1e-2, seed: int = 0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, d)).astype(np.float32)
  w_true = rng.standard_normal((d, c)).astype(np.float32) / np.sqrt(d)
  y = np.argmax(x @ w_true * 3.0 + rng.gumbel(size=(n, c)), axis=1).astype(np.int32)
  x, y = jnp.asarray(x), jnp.asarray(y)

  def loss(p):
    logits = x @ p["w"] + p["b"]
    ce = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))
    return ce + 0.5 * lam * jnp.sum(p["w"] ** 2)

  p0 = {"w": jnp.zeros((d, c), jnp.float32), "b": jnp.zeros((c,), jnp.float32)}
  return loss, p0


def _gnorm(g) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(l ** 2) for l in jax.tree.leaves(g)))


def _to_tol(gnorms: list[float], gtol: float) -> int | None:
  for i, gn in enumerate(gnorms):
    if gn <= gtol * gnorms[0]:
      return i
  return None


def run_jax_lbfgs(lib, loss, p0, iters: int, gtol: float) -> dict:
  """`lib.lbfgs()` (lib is gradtx or optax) for `iters` jitted steps."""
  tx = lib.lbfgs()
  vag = lib.value_and_grad_from_state(loss)

  @jax.jit
  def step(p, s):
    v, g = vag(p, state=s)
    u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss)
    return lib.apply_updates(p, u), s, v, _gnorm(g)

  p, s = p0, tx.init(p0)
  t = time.perf_counter()
  jax.block_until_ready(step(p, s))  # compiles (the result is discarded)
  compile_s = time.perf_counter() - t
  values, gnorms, times = [], [], []
  for _ in range(iters):
    t = time.perf_counter()
    p, s, v, gn = jax.block_until_ready(step(p, s))
    times.append(time.perf_counter() - t)
    values.append(float(v)); gnorms.append(float(gn))
  return {"per_iter_ms": 1e3 * float(np.median(times)), "mean_iter_ms": 1e3 * float(np.mean(times)),
          "iters_to_tol": _to_tol(gnorms, gtol), "final_loss": float(loss(p)),
          "final_gnorm_rel": gnorms[-1] / gnorms[0], "compile_s": compile_s, "iters": iters,
          "_step": step, "_init": (p0, tx.init(p0))}


def interleaved_ratio(a: dict, b: dict, rounds: int, steps: int) -> float:
  """min over rounds of (a's median step time / b's), the two timed alternately from their own
  starts (each round the same `steps` iterations), which cancels most of a shared machine's
  load drift."""
  ratios = []
  for _ in range(rounds):
    med = []
    for r in (a, b):
      (p, s), times = r["_init"], []
      for _ in range(steps):
        t = time.perf_counter()
        p, s, *_ = jax.block_until_ready(r["_step"](p, s))
        times.append(time.perf_counter() - t)
      med.append(np.median(times))
    ratios.append(med[0] / med[1])
  return float(np.median(ratios))


def run_scipy(loss, p0, iters: int, gtol: float) -> dict:
  from scipy.optimize import minimize  # noqa: PLC0415
  flat0, unravel = jax.flatten_util.ravel_pytree(p0)
  vag = jax.jit(lambda f: jax.value_and_grad(lambda q: loss(unravel(q)))(f))
  jax.block_until_ready(vag(flat0))
  gnorm_of = jax.jit(lambda f: _gnorm(jax.grad(lambda q: loss(unravel(q)))(f)))

  def fun(xf):
    v, g = vag(jnp.asarray(xf, jnp.float32))
    return float(v), np.asarray(g, np.float64)

  xs = []
  t = time.perf_counter()
  res = minimize(fun, np.zeros(flat0.size), jac=True, method="L-BFGS-B",
                 callback=lambda intermediate_result: xs.append(intermediate_result.x.copy()),
                 options={"maxiter": iters, "maxcor": 10, "ftol": 0.0, "gtol": 0.0})
  wall = time.perf_counter() - t
  gnorms = [float(gnorm_of(flat0))] + [float(gnorm_of(jnp.asarray(x, jnp.float32))) for x in xs]
  return {"per_iter_ms": 1e3 * wall / max(res.nit, 1), "iters_to_tol": _to_tol(gnorms, gtol),
          "final_loss": float(res.fun), "final_gnorm_rel": gnorms[-1] / gnorms[0],
          "nfev": int(res.nfev), "iters": int(res.nit)}


def run_jaxopt(loss, p0, iters: int, gtol: float) -> dict | None:
  try:
    import jaxopt  # noqa: PLC0415
  except Exception:  # noqa: BLE001  (not installed, or broken against this jax)
    return None
  solver = jaxopt.LBFGS(fun=loss, maxiter=iters, history_size=10, tol=0.0)
  step = jax.jit(solver.update)
  p, s = p0, solver.init_state(p0)
  jax.block_until_ready(step(p, s))
  gnorms, times = [float(_gnorm(jax.grad(loss)(p0)))], []
  for _ in range(iters):
    t = time.perf_counter()
    p, s = jax.block_until_ready(step(p, s))
    times.append(time.perf_counter() - t)
    gnorms.append(float(_gnorm(jax.grad(loss)(p))))
  return {"per_iter_ms": 1e3 * float(np.median(times)), "iters_to_tol": _to_tol(gnorms, gtol),
          "final_loss": float(loss(p)), "final_gnorm_rel": gnorms[-1] / gnorms[0],
          "iters": iters}


def run_newton_cg(loss, p0, iters: int, gtol: float) -> dict:
  tx = gradtx.newton_cg()

  @jax.jit
  def step(p, s):
    v, g = jax.value_and_grad(loss)(p)
    u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss)
    return gradtx.apply_updates(p, u), s, _gnorm(g)

  grad = jax.jit(jax.grad(loss))
  jax.block_until_ready(grad(p0))
  gtimes = []
  for _ in range(5):
    t = time.perf_counter(); jax.block_until_ready(grad(p0)); gtimes.append(time.perf_counter() - t)
  grad_ms = 1e3 * float(np.median(gtimes))
  p, s = p0, tx.init(p0)
  jax.block_until_ready(step(p, s))  # compiles (the result is discarded)
  hvp = jax.jit(lambda p, v: jax.jvp(jax.grad(loss), (p,), (v,))[1])
  jax.block_until_ready(hvp(p0, p0))
  htimes = []
  for _ in range(5):
    t = time.perf_counter(); jax.block_until_ready(hvp(p0, p0)); htimes.append(time.perf_counter() - t)
  gnorms, times, cg, ls = [], [], [], []
  for _ in range(iters):
    t = time.perf_counter()
    p, s, gn = jax.block_until_ready(step(p, s))
    times.append(time.perf_counter() - t)
    gnorms.append(float(gn)); cg.append(int(s[0].cg_steps))
    ls.append(int(s[-1].info.num_linesearch_steps))
  to_tol = _to_tol(gnorms, gtol)
  k = (to_tol or iters - 1) + 1  # the iterations up to tolerance (after it float32 noise rules)
  iter_ms = 1e3 * float(np.mean(times[:k]))
  mean_cg = float(np.mean(cg[:k]))
  return {"per_iter_ms": iter_ms, "grad_ms": grad_ms, "grad_equiv_per_iter": iter_ms / grad_ms,
          "hvp_over_grad": float(np.median(htimes) / np.median(gtimes)),
          "mean_cg_steps": mean_cg, "mean_linesearch_evals": float(np.mean(ls[:k])),
          "cg_steps": cg, "linesearch_evals": ls,
          "grad_equiv_per_cg_step": iter_ms / grad_ms / max(mean_cg, 1e-9),
          "iters_to_tol": _to_tol(gnorms, gtol), "final_gnorm_rel": gnorms[-1] / gnorms[0],
          "final_loss": float(loss(p)), "iters": iters}


def main(argv: list[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true")
  ap.add_argument("--iters", type=int, default=None)
  ap.add_argument("--gtol", type=float, default=1e-3)
  ap.add_argument("--out", default=HERE)
  args = ap.parse_args(argv)
  n, d, c = (200, 50, 10) if args.smoke else (2000, 1000, 100)
  iters = args.iters or (5 if args.smoke else 100)
  newton_iters = max(2, iters // 10)
  loss, p0 = make_problem(n, d, c)
  import optax  # noqa: PLC0415  (a dev dependency; the comparison oracle)
  results: dict = {"mode": "smoke" if args.smoke else "full", "n": n, "d": d, "c": c,
                   "params": d * c + c, "gtol": args.gtol, "backend": jax.default_backend(),
                   "device": str(jax.devices()[0]), "jax": jax.__version__}
  results["gradtx"] = run_jax_lbfgs(gradtx, loss, p0, iters, args.gtol)
  results["optax"] = run_jax_lbfgs(optax, loss, p0, iters, args.gtol)
  results["gradtx_over_optax"] = interleaved_ratio(results["gradtx"], results["optax"],
                                                   rounds=3 if args.smoke else 5,
                                                   steps=min(iters, 20))
  for k in ("gradtx", "optax"):
    del results[k]["_step"], results[k]["_init"]
  results["scipy_lbfgsb"] = run_scipy(loss, p0, iters, args.gtol)
  results["jaxopt"] = run_jaxopt(loss, p0, iters, args.gtol)
  results["newton_cg"] = run_newton_cg(loss, p0, newton_iters, args.gtol)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "second_order_results.json"), "w") as f:
    json.dump(results, f, indent=1)
  print(json.dumps(results, indent=1))
  return results


if __name__ == "__main__":
  main()
