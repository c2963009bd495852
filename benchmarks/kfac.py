"""K-FAC's cost: gradtx.kfac against kfac-jax 0.0.8's Optimizer on the same MLP (issue 17).

    python -m benchmarks.kfac            # a 128-256-256-10 MLP, batch 256; ~1 minute
    python -m benchmarks.kfac --smoke    # seconds; what the test suite runs

The problem: softmax cross-entropy on synthetic data (standard normal inputs, labels from a
random linear model), a tanh MLP with biases, float32. Both run K-FAC with the empirical Fisher
(kfac-jax `estimation_mode="fisher_empirical"`), curvature EMA 0.95, inverses every 5 steps, no
momentum and no adaptive rules; kfac-jax at (lr, damping) is gradtx at (N lr, N damping)
(kfac-jax's empirical Fisher carries one more 1/N), so both take the same steps. A step is the
whole training step: gradient, curvature statistics, (periodic) inverses, update, new params;
gradtx's is one `jax.jit` of `grad` + `tx.update(..., value_fn=)` + `apply_updates`, kfac-jax's
its own compiled `Optimizer.step`. Step time: after compilation, `--rounds` rounds alternating the
two libraries (each round `--steps` steps, `block_until_ready` after each), the median per-step
time of each round, then the median over rounds of the ratio. State bytes: the sum of the
optimizer state's array bytes. Nothing here is a test: no number is asserted.
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
LR, DAMPING, DECAY, PERIOD = 0.05, 1e-3, 0.95, 5


def make_problem(sizes, n, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(n, sizes[0])), jnp.float32)
  y = jnp.asarray(np.argmax(np.asarray(x) @ rng.normal(size=(sizes[0], sizes[-1])), -1))
  params = {f"l{i}": {"kernel": jnp.asarray(rng.normal(size=(a, b)) / np.sqrt(a), jnp.float32),
                      "bias": jnp.zeros((b,), jnp.float32)}
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}
  return params, x, y


def logits(p, x):
  for i in range(len(p)):
    x = x @ p[f"l{i}"]["kernel"] + p[f"l{i}"]["bias"]
    if i < len(p) - 1:
      x = jnp.tanh(x)
  return x


def xent(o, y):
  return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(o), y[:, None], 1))


def tree_bytes(tree):
  return int(sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree)))


def gradtx_runner(params, x, y):
  n = x.shape[0]
  tx = gradtx.kfac(n * LR, damping=n * DAMPING, curvature_decay=DECAY,
                   inverse_update_period=PERIOD)
  loss = lambda p: xent(logits(p, x), y)

  @jax.jit
  def step(p, s):
    u, s = tx.update(jax.grad(loss)(p), s, p, value_fn=loss)
    return gradtx.apply_updates(p, u), s

  state = tx.init(params)
  return step, (params, state), tree_bytes(state), loss


def kfac_jax_runner(params, x, y):
  import kfac_jax  # pylint: disable=import-outside-toplevel
  from kfac_jax._src import tag_graph_matcher as tgm  # pylint: disable=import-outside-toplevel

  def eval_eqn(eqn, in_values):  # kfac-jax 0.0.8 on jax 0.10: get_bind_params takes params only
    with eqn.ctx.manager:
      out = eqn.primitive.bind(*in_values, **eqn.primitive.get_bind_params(eqn.params))
    return out if isinstance(out, list) else [out]

  tgm.eval_jaxpr_eqn = eval_eqn

  def loss_kj(p, batch):
    o = logits(p, batch[0])
    kfac_jax.register_softmax_cross_entropy_loss(o, batch[1])
    return xent(o, batch[1])

  opt = kfac_jax.Optimizer(
      value_and_grad_func=jax.value_and_grad(loss_kj), l2_reg=0.0,
      use_adaptive_learning_rate=False, use_adaptive_momentum=False, use_adaptive_damping=False,
      learning_rate_schedule=lambda s: LR, momentum_schedule=lambda s: 0.0,
      damping_schedule=lambda s: DAMPING, curvature_ema=DECAY, inverse_update_period=PERIOD,
      estimation_mode="fisher_empirical", multi_device=False, include_norms_in_stats=False,
      num_burnin_steps=0)
  key = jax.random.PRNGKey(0)
  p = jax.tree.map(jnp.copy, params)  # kfac-jax donates its inputs
  state = opt.init(jax.tree.map(jnp.copy, params), key, (x, y))
  counter = [0]

  def step(p, s):
    counter[0] += 1
    new_p, s, _ = opt.step(p, s, key, batch=(x, y), global_step_int=counter[0])
    return new_p, s

  return step, (p, state), tree_bytes(state), lambda q: loss_kj(q, (x, y))


def time_steps(step, carry, steps):
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    carry = jax.block_until_ready(step(*carry))
    times.append(time.perf_counter() - t0)
  return carry, float(np.median(times))


def main(argv: list[str] | None = None) -> dict:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--smoke", action="store_true")
  ap.add_argument("--rounds", type=int, default=None)
  ap.add_argument("--steps", type=int, default=None)
  ap.add_argument("--out", default=HERE)
  args = ap.parse_args(argv)
  sizes, n = ((8, 16, 3), 16) if args.smoke else ((128, 256, 256, 10), 256)
  rounds = args.rounds or (2 if args.smoke else 7)
  steps = args.steps or (PERIOD if args.smoke else 2 * PERIOD)
  params, x, y = make_problem(sizes, n)
  runners = {"gradtx": gradtx_runner(params, x, y)}
  try:
    runners["kfac_jax"] = kfac_jax_runner(params, x, y)
  except Exception as e:  # pylint: disable=broad-except
    print(f"kfac-jax unavailable ({e!r}): gradtx only")
  carries = {k: r[1] for k, r in runners.items()}
  for k, r in runners.items():  # compile (and one period of warm-up)
    carries[k], _ = time_steps(r[0], carries[k], PERIOD)
  per_round = {k: [] for k in runners}
  for _ in range(rounds):  # interleaved: the two libraries see the same machine load
    for k, r in runners.items():
      carries[k], t = time_steps(r[0], carries[k], steps)
      per_round[k].append(t)
  results: dict = {"mode": "smoke" if args.smoke else "full", "sizes": list(sizes), "batch": n,
                   "params": int(sum(v.size for v in jax.tree.leaves(params))),
                   "rounds": rounds, "steps_per_round": steps, "inverse_update_period": PERIOD,
                   "device": jax.devices()[0].platform}
  for k, r in runners.items():
    results[k] = {"step_ms": 1e3 * float(np.median(per_round[k])), "state_bytes": r[2],
                  "final_loss": float(r[3](carries[k][0]))}
  if "kfac_jax" in runners:
    ratios = [a / b for a, b in zip(per_round["gradtx"], per_round["kfac_jax"])]
    results["step_time_gradtx_over_kfac_jax"] = float(np.median(ratios))
    results["state_bytes_gradtx_over_kfac_jax"] = (results["gradtx"]["state_bytes"]
                                                   / results["kfac_jax"]["state_bytes"])
  else:
    results["kfac_jax"] = None
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "kfac_results.json"), "w") as f:
    json.dump(results, f, indent=1)
  print(json.dumps(results, indent=1))
  return results


if __name__ == "__main__":
  main()
