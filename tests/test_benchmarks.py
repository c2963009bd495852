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


def test_learned_smoke_run_times_the_lstm_against_adam(tmp_path):
  """`python -m benchmarks.learned --smoke`: the LSTM and MLP optimizers' step times over Adam's
  are positive and finite (no time is asserted)."""
  pytest.importorskip("sklearn")
  from benchmarks import learned  # noqa: PLC0415

  results = learned.main(["--smoke", "--out", str(tmp_path)])
  assert (tmp_path / "learned_results.json").stat().st_size > 0
  for k in ("lstm_over_adam", "mlp_over_adam"):
    assert math.isfinite(results[k]) and results[k] > 0
