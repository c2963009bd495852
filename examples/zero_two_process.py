"""Data-parallel MLP on digits with `gradtx.distributed.zero(adamw)`, on one or several processes.

Two processes on this machine, two CPU devices each (run each line in its own shell):

  python examples/zero_two_process.py --num-processes 2 --process-id 0 --port 12355
  python examples/zero_two_process.py --num-processes 2 --process-id 1 --port 12355

One process with four devices, for comparison (the final parameters are bit-identical):

  python examples/zero_two_process.py --num-processes 1 --devices 4

The processes meet at a loopback coordinator (`jax.distributed.initialize`) and talk through
gloo CPU collectives. The gradient is averaged with an all-gather followed by a sum in a fixed
order, so the result does not depend on how the collective library orders its additions (a
`psum` is faster and equal up to rounding).
"""

import argparse
import hashlib
import os
import sys


def main(argv=None):
  ap = argparse.ArgumentParser()
  ap.add_argument("--num-processes", type=int, default=1)
  ap.add_argument("--process-id", type=int, default=0)
  ap.add_argument("--port", type=int, default=12355)
  ap.add_argument("--devices", type=int, default=None,
                  help="CPU devices per process (default: 4 // num_processes)")
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--out", default=None, help="write the final params here (.npz)")
  args = ap.parse_args(argv)
  devices = args.devices or 4 // args.num_processes
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + f" --xla_force_host_platform_device_count={devices}")
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import NamedSharding, PartitionSpec as P
  from sklearn.datasets import load_digits

  if args.num_processes > 1:  # before anything touches a device (importing gradtx does)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{args.port}",
                               num_processes=args.num_processes, process_id=args.process_id)
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
  import gradtx
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  n = jax.device_count()

  x, y = load_digits(return_X_y=True)
  x, y = (x[:256] / 16.0).astype(np.float32), y[:256].astype(np.int32)
  rng = np.random.default_rng(0)
  host_params = {"w1": rng.normal(0, 0.125, (64, 32)).astype(np.float32),
                 "b1": np.zeros(32, np.float32),
                 "w2": rng.normal(0, 0.18, (32, 10)).astype(np.float32),
                 "b2": np.zeros(10, np.float32)}

  def global_array(a, spec):
    """A global array from host data every process holds whole."""
    return jax.make_array_from_callback(a.shape, NamedSharding(mesh, spec), lambda i: a[i])

  params = jax.tree.map(lambda a: global_array(a, P()), host_params)
  xs, ys = global_array(x, P("data")), global_array(y, P("data"))

  def loss_fn(p, xb, yb):
    h = jnp.tanh(xb @ p["w1"] + p["b1"])
    logits = h @ p["w2"] + p["b2"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

  def mean_grad(p, xb, yb):
    g = jax.grad(loss_fn)(p, xb, yb)  # this device's shard of the batch
    stacked = jax.tree.map(lambda v: jax.lax.all_gather(v, "data"), g)
    return jax.tree.map(lambda v: jnp.sum(v, axis=0) / n, stacked)  # fixed order

  grad_fn = jax.shard_map(mean_grad, mesh=mesh, in_specs=(P(), P("data"), P("data")),
                          out_specs=P(), check_vma=False)
  tx = gradtx.distributed.zero(gradtx.adamw(1e-2, weight_decay=1e-2), mesh, "data")

  @jax.jit
  def step(p, s, xb, yb):
    u, s = tx.update(grad_fn(p, xb, yb), s, p)
    return gradtx.apply_updates(p, u), s

  state = jax.jit(tx.init)(params)
  for _ in range(args.steps):
    params, state = step(params, state, xs, ys)
  final = {k: np.asarray(jax.device_get(v.addressable_shards[0].data)) for k, v in params.items()}
  digest = hashlib.sha256(b"".join(final[k].tobytes() for k in sorted(final))).hexdigest()
  loss = float(loss_fn(final, x, y))
  print(f"process {args.process_id}/{args.num_processes}, {n} devices: loss {loss:.6f}, "
        f"params sha256 {digest[:16]}", flush=True)
  if args.out:
    np.savez(args.out, **final)
  if args.num_processes > 1:
    jax.distributed.shutdown()


if __name__ == "__main__":
  main()
