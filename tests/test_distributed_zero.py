"""gradtx.distributed.zero and state_sharding: 8 host devices in one subprocess (tests/zero_worker.py,
so the device-count flag never reaches the rest of the suite), two processes on localhost, bad input."""

import json
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import optimizers as aliases
from trees import first_order_aliases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
           JAX_PLATFORMS="cpu")

# First-order aliases zero cannot shard, and why: each device would see one shard of a leaf, so an
# optimizer that reduces over a whole leaf or over all leaves computes something else.
NOT_ELEMENTWISE = {
    "adafactor": "factored second moments and update clipping by the leaf's RMS",
    "fromage": "scales by the norms of each whole parameter and gradient",
    "lamb": "trust ratio from the norms of each whole parameter and update",
    "lars": "trust ratio from the norms of each whole parameter and gradient",
    "novograd": "second moment of each whole gradient's norm",
    "sm3": "accumulators over each dimension of a leaf",
    "noisy_sgd": "its noise is drawn for the leaf's shape, so a shard draws other numbers",
    "polyak_sgd": "step size from the global gradient norm (and needs value=)",
    "shampoo": "Kronecker factors of each whole matrix leaf",
    "soap": "Kronecker factors and eigenbases of each whole matrix leaf",
}
ELEMENTWISE = [n for n in first_order_aliases(aliases.__all__) if n not in NOT_ELEMENTWISE]


# One worker process runs the 8-device subprocess once for the whole module.
pytestmark = pytest.mark.xdist_group("zero")


@pytest.fixture(scope="module")
def worker():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "zero_worker.py"),
                         json.dumps(ELEMENTWISE)], env=ENV, capture_output=True, text=True,
                        timeout=600)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-4000:]
  return json.loads(lines[-1][len("RESULT "):])


def test_zero_equals_unsharded_optimizer_for_every_elementwise_alias(worker):
  results = worker["aliases"]
  assert set(results) == set(ELEMENTWISE) | {"sgd_momentum"}
  # Bit for bit: zero concatenates (not pads) and fences the shard's slicing from tx's
  # arithmetic, so XLA:CPU compiles it into the same FMA contractions as the unsharded update.
  assert {n for n, r in results.items() if not r["identical"]} == set(), results
  assert worker["explicit_adam"] == {"identical": True, "max_rel": 0.0}


def test_each_device_holds_an_eighth_of_the_moments(worker):
  for path, b in worker["moment_bytes"].items():
    assert b["devices"] == 8
    if b["size"] >= 8:  # split: flat, zero-padded to a multiple of 8, one equal shard each
      assert b["spec"] == "P('data',)", path
      assert b["global"] == 4 * 8 * -(-b["size"] // 8) and b["per_device"] == [b["global"] // 8]
      assert b["global"] - 4 * b["size"] < 64  # the padding, in bytes
    else:  # fewer elements than devices: replicated
      assert b["spec"] == "P()" and b["per_device"] == [4 * b["size"]], path
  assert worker["count_replicated"]


def test_state_sharding_follows_params_and_nnx_metadata(worker):
  s = worker["state_sharding"]
  assert s["same_structure"] and s["all_shardings"]
  assert s["mu"] == {"tp": "P(None, 'model')", "rep": "P('data', None)", "odd": "P()", "s": "P()"}
  assert s["count"] == "P()" and s["placed"] == s["mu"]
  assert worker["nnx"] == {"l1.kernel": "P(None, 'model')", "l2.kernel": "P('data', None)",
                           "l2.bias": "P('data',)"}


def test_optimizers_that_are_not_elementwise_raise_at_init():
  mesh = jax.make_mesh((1,), ("data",))
  params = {"w": jnp.zeros((5, 7)), "b": jnp.zeros(7)}
  txs = {name: getattr(gradtx, name)(1e-2) for name in NOT_ELEMENTWISE}
  txs["clip_by_global_norm"] = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-2))
  for name, tx in txs.items():
    with pytest.raises(ValueError, match="not act elementwise.*state_sharding"):
      gradtx.distributed.zero(tx, mesh, "data").init(params)
  # Elementwise clipping and the elementwise aliases pass the check (the worker runs them all).
  gradtx.distributed.zero(gradtx.chain(gradtx.clip(1.0), gradtx.adam(1e-2)), mesh, "data").init(params)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process_bit_for_bit(tmp_path):
  pytest.importorskip("sklearn")
  script = os.path.join(ROOT, "examples", "zero_two_process.py")
  port = str(_free_port())
  procs = [subprocess.Popen([sys.executable, script, "--num-processes", "2", "--process-id", str(i),
                             "--port", port, "--steps", "3", "--out", str(tmp_path / f"p{i}.npz")],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  single = subprocess.run([sys.executable, script, "--devices", "4", "--steps", "3",
                           "--out", str(tmp_path / "single.npz")], env=ENV, capture_output=True,
                          text=True, timeout=300)
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=300))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  errs = "".join(e for _, e in outs)
  if any(p.returncode for p in procs) and "gloo" in errs.lower() and "error" in errs.lower():
    pytest.skip("gloo CPU collectives are unavailable in this jaxlib: " + errs[-300:])
  assert all(p.returncode == 0 for p in procs), errs[-4000:]
  assert single.returncode == 0, single.stderr[-4000:]
  ref = np.load(tmp_path / "single.npz")
  for i in range(2):
    got = np.load(tmp_path / f"p{i}.npz")
    for k in ref.files:
      np.testing.assert_array_equal(got[k], ref[k], err_msg=f"process {i}, {k}")


def test_mesh_without_the_axis_is_an_error_naming_it():
  mesh = jax.make_mesh((1,), ("data",))
  with pytest.raises(ValueError, match="'model'.*axes are \\('data',\\)"):
    gradtx.distributed.zero(gradtx.adam(1e-3), mesh, "model")
  with pytest.raises(ValueError, match="'model'"):
    gradtx.distributed.state_sharding(gradtx.adam(1e-3), {"w": jnp.zeros(3)}, mesh, "model")
  with pytest.raises(TypeError, match="mesh"):
    gradtx.distributed.zero(gradtx.adam(1e-3), "data", "data")

