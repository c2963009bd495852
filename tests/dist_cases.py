"""The small problem that tests/test_distributed_algorithms.py runs every `gradtx.distributed`
algorithm on, under `jax.vmap(..., axis_name='w')` here and under `jax.shard_map` in a subprocess
with 8 host devices (shared, so both build the same cases).

Worker i's gradient at x is h_i m_i (x - c_i) leaf by leaf (m_i a 0/1 mask: all ones except for
Hogwild!'s sparse gradients); every worker starts at X0.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import distributed as dist
from gradtx.distributed import _axis

AXIS = "w"
STEPS = 6


def problem(n):
  rng = np.random.default_rng(0)
  x0 = {"a": rng.normal(size=(3, 4)).astype(np.float32),
        "b": rng.normal(size=(5,)).astype(np.float32)}
  c = {k: rng.normal(size=(n,) + v.shape).astype(np.float32) for k, v in x0.items()}
  h = np.linspace(0.5, 1.4, n).astype(np.float32)
  ones = {k: np.ones_like(v) for k, v in c.items()}
  sparse = {k: (rng.random(v.shape) < 0.3).astype(np.float32) for k, v in c.items()}
  return x0, c, h, ones, sparse


def cases():
  """name -> (transformation, uses the sparse mask)."""
  sgd = gradtx.sgd(0.1)
  return {
      "local_sgd": (dist.local_sgd(sgd, sync_period=2, axis_name=AXIS, start_step=1), False),
      "diloco": (dist.diloco(sgd, gradtx.sgd(0.7, momentum=0.9, nesterov=True), sync_period=2,
                             axis_name=AXIS), False),
      "easgd": (dist.easgd(sgd, alpha=0.1, sync_period=2, axis_name=AXIS), False),
      "easgd_stale": (dist.easgd(sgd, alpha=0.1, sync_period=1, axis_name=AXIS, staleness=2),
                      False),
      "downpour": (dist.downpour(gradtx.sgd(0.05), fetch_every=2, push_every=1, axis_name=AXIS),
                   False),
      "delay_tolerant_adagrad": (dist.delay_tolerant_adagrad(0.5, AXIS,
                                                             initial_accumulator_value=0.1),
                                 False),
      "hogwild": (dist.hogwild(gradtx.sgd(0.1), AXIS), True),
      "delayed": (dist.delayed(sgd, 2), False),
      "top_k": (gradtx.chain(dist.top_k(2), dist.all_reduce(AXIS), sgd), False),
      "sign": (gradtx.chain(dist.sign_compression(), dist.all_reduce(AXIS), sgd), False),
      "sign_vote": (gradtx.chain(dist.sign_compression(axis_name=AXIS), gradtx.sgd(0.05)),
                    False),
      "powersgd": (gradtx.chain(dist.powersgd(1, axis_name=AXIS), sgd), False),
  }


def _step(tx, params, state, c, h, mask):
  grads = jax.tree.map(lambda x, c, m: h * m * (x - c), params, c, mask)
  updates, state = tx.update(grads, state, params)
  return gradtx.apply_updates(params, updates), state


def run(tx, n, sparse=False, steps=STEPS, mesh=None):
  """The workers' params and states after `steps` steps, under `jax.vmap(axis_name=AXIS)`, or
  under `jax.shard_map` over `mesh` (one worker per device) when given."""
  x0, c, h, ones, sp = problem(n)
  wrap = shard_map_wrap(mesh) if mesh is not None else (lambda f: jax.vmap(f, axis_name=AXIS))
  params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), x0)
  if mesh is not None:
    put = lambda t: jax.device_put(t, jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec(AXIS)))
    params, c, h, ones, sp = put((params, c, h, ones, sp))
  state = jax.jit(wrap(tx.init))(params)
  step = jax.jit(wrap(functools.partial(_step, tx)))
  for _ in range(steps):
    params, state = step(params, state, c, h, sp if sparse else ones)
  return params, state


def run_all(txs, n, mesh=None, steps=STEPS):
  """Every transformation of `txs` (name -> (tx, sparse)) run for `steps` steps in ONE jitted
  function (init and a `fori_loop` of steps per case: one compilation for all of them), under
  `vmap` or, with `mesh`, `shard_map`. Returns name -> the workers' final params."""
  x0, c, h, ones, sp = problem(n)
  params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), x0)

  def per_worker(params, c, h, ones, sp):
    out = {}
    for name, (tx, sparse) in txs.items():
      mask = sp if sparse else ones
      body = lambda _, ps, tx=tx, mask=mask: _step(tx, *ps, c, h, mask)
      # Under shard_map each worker's state varies over the axis; a loop carry must say so.
      state = _axis.varying(tx.init(params), (AXIS,))
      out[name] = jax.lax.fori_loop(0, steps, body, (params, state))[0]
    return out

  args = (params, c, h, ones, sp)
  if mesh is None:
    return jax.jit(jax.vmap(per_worker, axis_name=AXIS))(*args)
  put = lambda t: jax.device_put(t, jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(AXIS)))
  return jax.jit(shard_map_wrap(mesh)(per_worker))(*put(args))


def shard_map_wrap(mesh):
  """Per-worker function -> one worker per device (leading axis sharded over AXIS)."""
  spec = jax.sharding.PartitionSpec(AXIS)

  def wrap(f):
    def per_device(*args):
      out = f(*jax.tree.map(lambda x: x[0], args))
      return jax.tree.map(lambda x: x[None], out)
    return jax.shard_map(per_device, mesh=mesh, in_specs=spec, out_specs=spec)
  return wrap
