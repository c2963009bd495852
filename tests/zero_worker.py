"""Run by tests/test_distributed_zero.py in a subprocess with 8 host CPU devices (the flag must not
leak into the rest of the suite): every check whose result needs several devices, printed as one
JSON line the parent asserts on. Not collected by pytest (no test_ prefix)."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P  # noqa: E402

import gradtx  # noqa: E402
from trees import make_params  # noqa: E402

STEPS = 3
out = {}
params = make_params()
params["big"] = jnp.asarray(np.random.default_rng(3).normal(size=(5, 7)), jnp.float32)
rng = np.random.default_rng(1)
grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=(STEPS,) + p.shape), p.dtype), params)


def train(txs, p, gs):
  """The contract's call form, for all optimizers of `txs` at once (one compilation per mode):
  a jitted update per step, params moved by apply_updates in a separate jitted call (fused with
  the update, the reference's rounding would change by an ulp)."""
  names = list(txs)
  init = jax.jit(lambda ps: {k: txs[k].init(ps[k]) for k in names})
  update = jax.jit(lambda gs, ss, ps: {k: txs[k].update(gs[k], ss[k], ps[k]) for k in names})
  apply = jax.jit(gradtx.apply_updates)
  ps = {k: p for k in names}
  state = init(ps)
  for t in range(STEPS):
    g = jax.tree.map(lambda x, t=t: x[t], gs)
    out = update({k: g for k in names}, state, ps)
    state = {k: v[1] for k, v in out.items()}
    ps = apply(ps, {k: v[0] for k, v in out.items()})
  return ps


def compare(refs, zeros, p, gs):
  a, b = train(refs, p, gs), train(zeros, p, gs)
  result = {}
  for k in refs:
    x, y = jax.tree.leaves(a[k]), jax.tree.leaves(b[k])
    rel = max(float(np.max(np.abs(u - v) / (np.abs(u) + 1e-30))) for u, v in zip(x, y))
    result[k] = {"identical": all(np.array_equal(u, v) for u, v in zip(x, y)), "max_rel": rel}
  return result


# 1. Every elementwise first-order alias: zero(tx) against tx on an 8-device mesh.
mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
rep = NamedSharding(mesh, P())
pr, gr = jax.device_put(params, rep), jax.device_put(grads, rep)
makers = {name: (lambda name=name: getattr(gradtx, name)(1.0 if name == "adadelta" else 1e-2))
          for name in json.loads(sys.argv[1])}
makers["sgd_momentum"] = lambda: gradtx.sgd(1e-2, momentum=0.9)
out["aliases"] = compare({k: m() for k, m in makers.items()},
                         {k: gradtx.distributed.zero(m(), mesh, "data") for k, m in makers.items()},
                         pr, gr)

# 2. Bytes per device: each device holds 1/8 of every split moment (padded to a multiple of 8).
tx = gradtx.distributed.zero(gradtx.adam(1e-2), mesh, "data")
state = jax.jit(tx.init)(pr)
mu = state[0].mu
out["moment_bytes"] = {
    jax.tree_util.keystr(k): {"size": int(np.prod(p.shape)), "global": int(v.nbytes),
                              "per_device": sorted({int(s.data.nbytes) for s in v.addressable_shards}),
                              "devices": len(v.addressable_shards), "spec": str(v.sharding.spec)}
    for (k, v), p in zip(jax.tree_util.tree_leaves_with_path(mu), jax.tree.leaves(params))}
out["count_replicated"] = bool(state[0].count.sharding.is_fully_replicated)

# 3. Explicit sharding mode: the same bits as the unsharded optimizer.
emesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
with jax.set_mesh(emesh):
  pe, ge = jax.device_put(params, NamedSharding(emesh, P())), jax.device_put(grads, NamedSharding(emesh, P()))
  out["explicit_adam"] = compare({"adam": gradtx.adam(1e-2)},
                                 {"adam": gradtx.distributed.zero(gradtx.adam(1e-2), emesh, "data")},
                                 pe, ge)["adam"]

# 4. state_sharding on a (data, model) mesh: moments follow their param, replicated ones split.
mesh2 = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
sp = {"tp": jax.device_put(jnp.zeros((6, 4)), NamedSharding(mesh2, P(None, "model"))),
      "rep": jnp.zeros((8, 6)), "odd": jnp.zeros((3, 5)), "s": jnp.zeros(())}
tx = gradtx.adamw(1e-3)
sh = gradtx.distributed.state_sharding(tx, sp, mesh2, "data")
init = jax.jit(tx.init, out_shardings=sh)(sp)
out["state_sharding"] = {
    "same_structure": jax.tree.structure(sh) == jax.tree.structure(tx.init(sp)),
    "all_shardings": all(isinstance(s, jax.sharding.Sharding) for s in jax.tree.leaves(sh)),
    "mu": {k: str(v.spec) for k, v in sh[0].mu.items()},
    "count": str(sh[0].count.spec),
    "placed": {k: str(v.sharding.spec) for k, v in init[0].nu.items()},
}

# 5. Flax nnx sharding metadata on params.
from flax import nnx  # noqa: E402


class MLP(nnx.Module):
  def __init__(self, rngs):
    self.l1 = nnx.Linear(16, 8, kernel_init=nnx.with_partitioning(
        nnx.initializers.lecun_normal(), (None, "model")), rngs=rngs)
    self.l2 = nnx.Linear(8, 4, rngs=rngs)


with jax.set_mesh(mesh2):
  model = MLP(nnx.Rngs(0))
nsh = gradtx.distributed.state_sharding(gradtx.adam(1e-3), nnx.state(model, nnx.Param), mesh2, "data")
out["nnx"] = {"l1.kernel": str(nsh[0].mu["l1"]["kernel"].get_value().spec),
              "l2.kernel": str(nsh[0].mu["l2"]["kernel"].get_value().spec),
              "l2.bias": str(nsh[0].mu["l2"]["bias"].get_value().spec)}

print("RESULT " + json.dumps(out))
