"""The benchmark suite's smoke configuration runs end to end and writes a coherent report.

No time is asserted (times depend on the machine); what must hold is that every section ran,
every number is finite and positive, gradtx and optax computed the same params, and the report
can be re-rendered from its JSON.
"""

from __future__ import annotations

import json
import math
import os
import sys

import pytest

pytest.importorskip("optax")
pytest.importorskip("sklearn")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from benchmarks import run  # noqa: E402

pytestmark = pytest.mark.xdist_group("bench")


def test_smoke_run_writes_a_complete_report(tmp_path):
  results = run.main(["--smoke", "--no-torch", "--out", str(tmp_path)])
  for name in ("RESULTS.md", "results.json", "results.png"):
    assert (tmp_path / name).stat().st_size > 0, name
  assert {r["tree"] for r in results["step"]} == {"one_leaf", "tiny"}
  for r in results["step"] + results["bf16"]:
    assert r["max_param_diff"] < (1e-5 if r["dtype"] == "float32" else 1e-2), r
    assert r["bound_ms"] > 0 and r["bytes_per_step"] > 0
    for lib, v in r["libs"].items():
      for key in ("ms", "compile_s", "x_bound", "vs_optax", "state_per_param"):
        assert math.isfinite(v[key]) and v[key] >= 0, (r["optimizer"], lib, key, v[key])
      assert v["ms"] > 0 and v["q25"] <= v["ms"] <= v["q75"]
    assert r["libs"]["optax"]["vs_optax"] == 1.0
  tiny = [r for r in results["step"] if r["tree"] == "tiny"]
  assert tiny and all("gradtx grouped" in r["libs"] for r in tiny)
  adam = next(r for r in results["step"] if r["optimizer"] == "adam")
  for lib in ("gradtx", "optax"):  # mu and nu, plus int32 step counts
    assert 2.0 <= adam["libs"][lib]["state_per_param"] < 2.01
  assert {r["mu_dtype"] for r in results["bf16"]} == {"float32", None}
  assert results["bandwidth"]["gbs"] > 0
  assert results["eager"] and all(r["optax_over_gradtx"] > 0 for r in results["eager"])
  sweep = results["sweep"]
  for key in ("grid_sweep (auto)", "grid_sweep (vmap all)", "python loop, traced lr",
              "grid_sweep (chunk_size=2)", "recompiling per value"):
    assert sweep[key]["first_s"] > 0, key
  text = (tmp_path / "RESULTS.md").read_text()
  for heading in ("## Machine", "## Targets", "## Step time", "### tiny", "## Eager steps",
                  "## Sweeps", "| adam |"):
    assert heading in text, heading
  # The JSON holds everything the report needs: re-rendering gives the same file.
  (tmp_path / "RESULTS.md").unlink()
  run.main(["--report-only", "--out", str(tmp_path)])
  assert (tmp_path / "RESULTS.md").read_text() == text
  assert json.loads((tmp_path / "results.json").read_text())["mode"] == "smoke"


def test_zoo_smoke_run_compares_gradtx_with_optax(tmp_path):
  """`python -m benchmarks.zoo --smoke`: every row ran both libraries on the same params and
  reached the same numbers; ratios and state sizes are finite (no time is asserted)."""
  from benchmarks import zoo  # noqa: PLC0415

  results = zoo.main(["--smoke", "--no-torch", "--out", str(tmp_path)])
  assert (tmp_path / "zoo_results.json").stat().st_size > 0
  assert {r["optimizer"] for r in results["rows"]} == {"adam", "adafactor", "lion", "muon"}
  for r in results["rows"]:
    assert r["max_param_diff"] < 1e-5, r["optimizer"]
    for v in r["libs"].values():
      assert math.isfinite(v["vs_optax"]) and v["state_per_param"] >= 0
  by_name = {r["optimizer"]: r["libs"]["gradtx"]["state_per_param"] for r in results["rows"]}
  # One moment instead of two (Adam also keeps a 4-byte count).
  assert by_name["lion"] == pytest.approx(by_name["adam"] / 2, rel=1e-2)


def test_curvature_smoke_run_agrees_with_pyhessian(tmp_path):
  """`python -m benchmarks.curvature --smoke`: HVP and gradient costs are positive, and where
  PyHessian is installed its trace agrees with gradtx's within the estimators' error."""
  from benchmarks import curvature  # noqa: PLC0415

  results = curvature.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "curvature_results.json").stat().st_size > 0
  row = results["hvp"][0]
  assert row["grad_ms"] > 0 and row["hvp_over_grad"] > 0 and row["hvp_temp_bytes"] >= 0
  g = results["gradtx"]
  assert math.isfinite(g["eig"]) and g["eig"] > 0 and g["trace"] > 0
  assert results["lanczos"][0]["temp_bytes"] > 0
  if results["pyhessian"] is not None:
    assert results["trace_diff_in_se"] < 4.0
    assert abs(results["pyhessian"]["density_top"] - g["density_top"]) < 0.2 * g["density_top"]


def test_second_order_smoke_run_compares_lbfgs_with_optax_and_scipy(tmp_path):
  """`python -m benchmarks.second_order --smoke`: gradtx's and optax's L-BFGS take the same
  iterates (same final loss), SciPy's L-BFGS-B ran, Newton-CG reports its CG steps (no time is
  asserted)."""
  from benchmarks import second_order  # noqa: PLC0415

  results = second_order.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "second_order_results.json").stat().st_size > 0
  assert results["gradtx"]["final_loss"] == pytest.approx(results["optax"]["final_loss"],
                                                          rel=1e-5)
  assert math.isfinite(results["gradtx_over_optax"]) and results["gradtx_over_optax"] > 0
  assert results["scipy_lbfgsb"]["iters"] >= 1 and math.isfinite(
      results["scipy_lbfgsb"]["final_loss"])
  n = results["newton_cg"]
  assert n["mean_cg_steps"] >= 1 and n["grad_equiv_per_iter"] > 0
  assert n["final_loss"] < math.log(results["c"])  # below the loss at zero params


def test_sophia_smoke_run_compares_with_optax_and_the_vmapped_sweep(tmp_path):
  """`python -m benchmarks.sophia --smoke`: both libraries reach the same loss, same state
  bytes, and the sweep timings are reported (no time is asserted)."""
  from benchmarks import sophia  # noqa: PLC0415

  results = sophia.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "sophia_results.json").stat().st_size > 0
  assert results["final_loss"]["gradtx"] == results["final_loss"]["optax"]
  assert results["state_bytes"]["gradtx"] == results["state_bytes"]["optax"]
  assert all(results["sweep_8_lrs"][k]["vmap_s"] > 0 for k in ("gradtx", "optax"))


def test_distributed_smoke_run_counts_collective_bytes(tmp_path):
  """`python -m benchmarks.distributed --smoke` in its own process (it forces 8 host devices):
  the anchor's all-reduce moves the params' bytes each step, local SGD's 1/period of them (no
  time is asserted)."""
  import subprocess  # noqa: PLC0415

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
  proc = subprocess.run([sys.executable, "-m", "benchmarks.distributed", "--smoke", "--out",
                         str(tmp_path)], cwd=root, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / "distributed_results.json").read_text())
  anchor, local = results["rows"][:2]
  assert results["devices"] == 8
  assert results["params_bytes"] <= anchor["bytes_per_step"] <= results["params_bytes"] + 64
  assert local["bytes_per_step"] < anchor["bytes_per_step"] / 4
  assert all(v > 0 for v in results["step_ms"]["local_sgd"].values())


def test_shampoo_smoke_run_times_shampoo_and_soap_against_adam(tmp_path):
  """`python -m benchmarks.shampoo --smoke`: every optimizer timed, state bytes above Adam's for
  the Kronecker factors (no time is asserted)."""
  from benchmarks import shampoo  # noqa: PLC0415

  results = shampoo.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "shampoo_results.json").stat().st_size > 0
  rows = results["rows"]
  assert rows["gradtx.adam"]["state_bytes"] == rows["optax.adam"]["state_bytes"]
  for name in ("gradtx.shampoo", "gradtx.soap"):
    assert rows[name]["state_bytes"] > rows["optax.adam"]["state_bytes"]
    assert math.isfinite(rows[name]["step_over_optax_adam"]) and rows[name]["step_ms"] > 0


def test_zero_smoke_run_splits_adamw_state_and_counts_the_all_gather(tmp_path):
  """`python -m benchmarks.zero --smoke`: on 2 host devices (a subprocess) zero(adamw) keeps
  about half of adamw's state bytes per device and all-gathers every update once; no time is
  asserted."""
  from benchmarks import zero  # noqa: PLC0415

  results = zero.main(["--smoke", "--devices", "2", "--out", str(tmp_path)])
  assert (tmp_path / "zero_results.json").stat().st_size > 0
  (row,) = results["rows"]
  z, a = row["libs"]["zero_adamw"], row["libs"]["adamw"]
  assert 0.5 <= row["state_ratio"] < 0.51  # two moments split in two; the count replicated
  assert a["collectives"]["result_bytes"] == 0
  gathered = z["collectives"]["ops"]["all-gather"]["result_bytes"]
  assert 4 * row["floats"] <= gathered < 4 * row["floats"] + 64 * row["leaves"]
  assert z["step_ms"] > 0 and a["step_ms"] > 0


def test_kfac_smoke_run_compares_with_kfac_jax(tmp_path):
  """`python -m benchmarks.kfac --smoke`: gradtx's kfac and kfac-jax (where it imports) take the
  same steps (same final loss) and report step times and state bytes (no time is asserted)."""
  from benchmarks import kfac  # noqa: PLC0415

  results = kfac.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "kfac_results.json").stat().st_size > 0
  assert results["gradtx"]["step_ms"] > 0 and results["gradtx"]["state_bytes"] > 0
  if results["kfac_jax"] is not None:
    assert results["gradtx"]["final_loss"] == pytest.approx(results["kfac_jax"]["final_loss"],
                                                            rel=1e-3)
    assert math.isfinite(results["step_time_gradtx_over_kfac_jax"])


def test_learned_smoke_run_times_the_lstm_against_adam(tmp_path):
  """`python -m benchmarks.learned --smoke`: the LSTM and MLP optimizers' step times over Adam's
  are positive and finite (no time is asserted)."""
  pytest.importorskip("sklearn")
  from benchmarks import learned  # noqa: PLC0415

  results = learned.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "learned_results.json").stat().st_size > 0
  for k in ("lstm_over_adam", "mlp_over_adam"):
    assert math.isfinite(results[k]) and results[k] > 0
