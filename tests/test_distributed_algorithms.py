"""gradtx.distributed's parallel SGD algorithms and compressors: each against a NumPy
transcription of its paper over 4 simulated workers (`vmap(axis_name=)`), the same runs under
`shard_map` on 8 host devices (a subprocess, so the device-count flag never reaches this
process), the reductions the issue names (DiLoCo -> data parallel, EASGD alpha 0 -> independent
workers, delayed(tx, 0) -> tx), faults, checkpoints and bad input."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dist_cases as dc
import gradtx
import reference as ref
from gradtx import distributed as dist
from gradtx.distributed import _axis

N = 4
X0, C, H, ONES, SPARSE = dc.problem(N)
CASES = dc.cases()
f64 = lambda t: {k: np.asarray(v, np.float64) for k, v in t.items()}


def _ref(name, leaf):
  x0, c, h = np.float64(X0[leaf]), np.float64(C[leaf]), np.float64(H)
  if name == "local_sgd":
    return ref.dist_local_sgd(x0, c, h, dc.STEPS, 0.1, 2, start_step=1)
  if name == "diloco":
    return ref.dist_diloco(x0, c, h, dc.STEPS, 0.1, 2, 0.7, 0.9)
  if name == "easgd":
    return ref.dist_easgd(x0, c, h, dc.STEPS, 0.1, 0.1, 2)[0]
  if name == "easgd_stale":
    return ref.dist_easgd(x0, c, h, dc.STEPS, 0.1, 0.1, 1, staleness=2)[0]
  if name == "downpour":
    return ref.dist_downpour(x0, c, h, dc.STEPS, 0.05, 2, 1)
  if name == "delay_tolerant_adagrad":
    return ref.dist_delay_tolerant_adagrad(x0, c, h, dc.STEPS, 0.5, 0.1)
  if name == "hogwild":
    mask = np.float64(SPARSE[leaf]) * h.reshape((-1,) + (1,) * (c.ndim - 1))
    return ref.dist_hogwild(x0, c, mask, dc.STEPS, 0.1)
  if name == "delayed":
    return ref.dist_delayed_sgd(x0, c, h, dc.STEPS, 0.1, 2)
  if name == "top_k":
    return ref.dist_compressed_sgd(x0, c, h, dc.STEPS, 0.1, ref.top_k_compress(2))
  if name == "sign":
    return ref.dist_compressed_sgd(x0, c, h, dc.STEPS, 0.1, ref.sign_compress)
  if name == "sign_vote":
    return ref.dist_compressed_sgd(x0, c, h, dc.STEPS, 0.05, ref.sign_compress, vote=True)
  raise KeyError(name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy_reference(name):
  tx, sparse = CASES[name]
  params, state = dc.run(tx, N, sparse)
  for leaf in ("a", "b"):
    if name == "powersgd":
      q0 = np.asarray(jax.vmap(tx.init, axis_name="w")(
          jax.tree.map(lambda x: jnp.broadcast_to(x, (N,) + x.shape), X0))[0].q["a"][0])
      want = (ref.dist_powersgd(np.float64(X0[leaf]), np.float64(C[leaf]), np.float64(H),
                                dc.STEPS, 0.1, q0) if leaf == "a" else
              ref.dist_compressed_sgd(np.float64(X0[leaf]), np.float64(C[leaf]),
                                      np.float64(H), dc.STEPS, 0.1, lambda a: a))
    else:
      want = _ref(name, leaf)
    # float32 against float64 over 6 steps.
    np.testing.assert_allclose(params[leaf], want, rtol=2e-5, atol=2e-6, err_msg=f"{name}/{leaf}")
  if name == "easgd":
    center = ref.dist_easgd(np.float64(X0["a"]), np.float64(C["a"]), np.float64(H), dc.STEPS,
                            0.1, 0.1, 2)[1]
    np.testing.assert_allclose(state.center["a"][0], center, rtol=2e-5, atol=2e-6)


SUBPROCESS = r"""
import json, os, sys
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
import dist_cases as dc
mesh = jax.make_mesh((8,), (dc.AXIS,), axis_types=(jax.sharding.AxisType.Explicit,))
out = {"devices": jax.device_count()}
cases = dc.cases()
a, b = dc.run_all(cases, 8), dc.run_all(cases, 8, mesh=mesh)
for name in cases:
  out[name] = max(float(np.max(np.abs(np.asarray(a[name][k]) - np.asarray(b[name][k]))))
                  for k in a[name])
print("RESULT" + json.dumps(out))
"""


def test_vmap_and_shard_map_agree_on_8_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  tests_dir = os.path.dirname(__file__)
  env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(tests_dir), env.get("PYTHONPATH", "")])
  proc = subprocess.run([sys.executable, "-c", SUBPROCESS, tests_dir], env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.split("RESULT")[-1])
  assert out.pop("devices") == 8
  assert set(out) == set(CASES)
  # The same arithmetic, except that an all-reduce across devices sums in another order than
  # vmap's reduction: agreement to float32 rounding, not bit for bit.
  for name, diff in out.items():
    assert diff <= 1e-5, (name, diff)


def _vmap_run(tx, steps=dc.STEPS):
  return dc.run(tx, N, steps=steps)


def test_diloco_sync_1_outer_sgd_1_is_data_parallel():
  params, _ = _vmap_run(dist.diloco(gradtx.sgd(0.1), gradtx.sgd(1.0), sync_period=1,
                                    axis_name="w"))
  data_parallel, _ = _vmap_run(gradtx.chain(dist.all_reduce("w"), gradtx.sgd(0.1)))
  for leaf in params:  # mean(lr g_i) against lr mean(g_i): rounding apart
    np.testing.assert_allclose(params[leaf], data_parallel[leaf], rtol=1e-6, atol=1e-7)


def test_easgd_alpha_0_is_independent_workers():
  params, _ = _vmap_run(dist.easgd(gradtx.sgd(0.1), alpha=0.0, sync_period=1, axis_name="w"))
  independent, _ = _vmap_run(gradtx.sgd(0.1))
  for leaf in params:
    np.testing.assert_array_equal(params[leaf], independent[leaf])


def test_delayed_0_is_tx_bit_for_bit():
  tx, d = gradtx.adam(0.1), dist.delayed(gradtx.adam(0.1), 0)
  p, s, q, r = X0, tx.init(X0), X0, d.init(X0)
  for t in range(5):
    g = jax.tree.map(lambda x: jnp.sin(x + t), p)
    u, s = tx.update(g, s, p)
    v, r = d.update(g, r, q)
    p, q = gradtx.apply_updates(p, u), gradtx.apply_updates(q, v)
  for leaf in p:
    np.testing.assert_array_equal(p[leaf], q[leaf])


def test_nonfinite_worker_is_left_out_and_loses_nothing():
  g = jnp.array([[1.0, 2.0], [jnp.nan, 5.0], [3.0, 4.0]])
  u, _ = jax.vmap(dist.all_reduce("w").update, in_axes=(0, None), axis_name="w")(
      g, gradtx.EmptyState())
  np.testing.assert_array_equal(u, np.tile([2.0, 3.0], (3, 1)))
  # local SGD syncing every step: worker 1's NaN round leaves its state alone, and every worker
  # (it included) gets the others' average.
  tx = dist.local_sgd(gradtx.sgd(1.0, momentum=0.5), sync_period=1, axis_name="w")
  params = jnp.zeros((3, 2))
  state = jax.vmap(tx.init, axis_name="w")(params)
  u, new_state = jax.jit(jax.vmap(tx.update, axis_name="w"))(g, state, params)
  np.testing.assert_array_equal(u, np.tile([-2.0, -3.0], (3, 1)))
  np.testing.assert_array_equal(new_state.inner_state[0].trace[1], [0.0, 0.0])
  assert np.isfinite(np.asarray(jax.tree.leaves(new_state)[1])).all()
  # DiLoCo and EASGD: everything stays finite.
  for tx in (dist.diloco(gradtx.adamw(0.1), gradtx.sgd(0.7, momentum=0.9, nesterov=True), 1, "w"),
             dist.easgd(gradtx.sgd(0.1), alpha=0.2, sync_period=1, axis_name="w")):
    state = jax.vmap(tx.init, axis_name="w")(params)
    u, state = jax.jit(jax.vmap(tx.update, axis_name="w"))(g, state, params)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((u, state)))


def test_checkpoint_between_syncs_restores_bit_identically():
  tx = dist.diloco(gradtx.adamw(0.05), gradtx.sgd(0.7, momentum=0.9, nesterov=True),
                   sync_period=3, axis_name="w")
  step = jax.jit(jax.vmap(lambda p, s, c, h, m: dc._step(tx, p, s, c, h, m), axis_name="w"))
  params = jax.tree.map(lambda x: jnp.broadcast_to(x, (N,) + x.shape), X0)
  state = jax.vmap(tx.init, axis_name="w")(params)
  for t in range(5):
    if t == 4:  # between the syncs after steps 3 and 6: save and restore through NumPy
      saved = jax.tree.map(np.asarray, (params, state))
      restored = jax.tree.map(jnp.asarray, saved)
      params_r, state_r = step(*restored, C, H, ONES)
    params, state = step(params, state, C, H, ONES)
  for a, b in zip(jax.tree.leaves((params, state)), jax.tree.leaves((params_r, state_r))):
    np.testing.assert_array_equal(a, b)


def test_hyperparameter_sweep_equals_loop():
  def final(lr):
    tx = dist.local_sgd(gradtx.sgd(lr), sync_period=2, axis_name="w")
    step = jax.vmap(lambda p, s, c, h: dc._step(tx, p, s, c, h, 1.0), axis_name="w")
    params = jnp.broadcast_to(X0["b"], (N, 5))
    carry = (params, jax.vmap(tx.init, axis_name="w")(params))
    return jax.lax.fori_loop(0, 3, lambda _, ps: step(*ps, C["b"], H), carry)[0]

  lrs = jnp.array([0.05, 0.2])
  swept = jax.jit(jax.vmap(final))(lrs)
  one = jax.jit(final)
  for i, lr in enumerate(lrs):
    np.testing.assert_allclose(swept[i], one(lr), rtol=1e-6)


def test_sync_is_a_cond_not_a_select():
  tx = dist.local_sgd(gradtx.sgd(0.1), sync_period=4, axis_name="w")
  params = jnp.zeros((N, 3))
  state = jax.vmap(tx.init, axis_name="w")(params)
  jaxpr = str(jax.make_jaxpr(jax.vmap(tx.update, axis_name="w"))(params, state, params))
  assert "cond[" in jaxpr


@pytest.mark.parametrize("make", [
    lambda: dist.local_sgd(gradtx.sgd(0.1), sync_period=0, axis_name="w"),
    lambda: dist.diloco(gradtx.sgd(0.1), gradtx.sgd(1.0), sync_period=0, axis_name="w"),
    lambda: dist.easgd(gradtx.sgd(0.1), alpha=0.1, sync_period=0, axis_name="w"),
])
def test_sync_period_below_1_names_it(make):
  with pytest.raises(ValueError, match="sync_period"):
    make()


def test_unbound_axis_name_is_named():
  tx = dist.local_sgd(gradtx.sgd(0.1), sync_period=2, axis_name="replicas")
  with pytest.raises(ValueError, match="'replicas'.*jax.vmap"):
    tx.init(jnp.zeros(2))
  with pytest.raises(ValueError, match="'replicas'"):
    jax.vmap(tx.init, axis_name="other")(jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match="'w'"):
    dist.all_reduce("w").update(jnp.zeros(2), gradtx.EmptyState())


def test_mesh_without_the_axis_is_named():
  mesh = jax.make_mesh((1,), ("data",))
  with pytest.raises(ValueError, match="'model'.*'data'"):
    _axis.check_mesh_axis("distributed.zero", mesh, "model")


def test_k_larger_than_a_leaf_names_k():
  with pytest.raises(ValueError, match="k=6"):
    dist.top_k(6).init(X0)  # leaf 'b' has 5 entries
  with pytest.raises(ValueError, match="k"):
    dist.top_k(0)


def test_top_k_keeps_k_largest_unscaled_and_carries_the_residual():
  tx = dist.top_k(2)
  g = jnp.array([[0.1, -3.0], [2.0, 0.5]])
  u, state = tx.update(g, tx.init(g))
  np.testing.assert_array_equal(u, [[0.0, -3.0], [2.0, 0.0]])
  np.testing.assert_array_equal(state.residual, np.float32([[0.1, 0.0], [0.0, 0.5]]))
  u, state = tx.update(g, state)  # accumulated 0.2 and 1.0 now compete with -3 and 2
  np.testing.assert_array_equal(u, [[0.0, -3.0], [2.0, 0.0]])
  np.testing.assert_allclose(state.residual, [[0.2, 0.0], [0.0, 1.0]], rtol=1e-6)
