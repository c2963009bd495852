"""Smoke tests of `python -m gradtx.demo` (gradtx/demo.py): small settings, a few seconds."""

import contextlib
import io
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtx import demo

FUNCTIONS = [p.name for p in demo.PROBLEMS]


@pytest.fixture(scope="module")
def small_run():
  """One small run of the default suite, shared by the tests below: (results, printed text)."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    results = demo.main(["--steps", "300", "--optimizers", "sgd,adam", "--tol", "1e-3"])
  return results, out.getvalue()


def test_table_has_one_row_per_function_and_optimizer(small_run):
  results, text = small_run
  assert [(r.function, r.optimizer) for r in results] == [
      (f, o) for f in FUNCTIONS for o in ("sgd", "adam")]
  rows = [line.split() for line in text.splitlines()]
  for f in FUNCTIONS:
    for o in ("sgd", "adam"):
      assert any(row[:2] == [f, o] for row in rows), (f, o, text)
  assert "best lr" in text and "final loss" in text and "skipped" not in text


def test_rows_are_consistent_with_their_loss_curves(small_run):
  results, _ = small_run
  for r in results:
    assert r.losses.shape == (len(r.lrs), 301)
    assert r.best_lr in r.lrs and r.seconds > 0
    curve = r.losses[r.lrs.index(r.best_lr)]
    assert r.final_loss == curve[-1]
    if r.steps is not None:
      f_min = next(p for p in demo.PROBLEMS if p.name == r.function).f_min
      if r.function == "saddle":
        assert curve[r.steps] < -1.0 <= curve[:r.steps].min()
      else:
        assert curve[r.steps] - f_min < 1e-3 <= (curve[:r.steps] - f_min).min()


def test_adam_reaches_the_minimum_of_the_quadratic_and_escapes_the_saddle(small_run):
  results, _ = small_run
  by_key = {(r.function, r.optimizer): r for r in results}
  quadratic = by_key["quadratic", "adam"]
  assert quadratic.steps is not None and quadratic.final_loss < 1e-3
  saddle = by_key["saddle", "adam"]
  assert saddle.steps is not None and saddle.final_loss < -1.0
  assert np.isfinite(saddle.losses).all()  # the unbounded run stops at the escape


def test_help_lists_the_options_and_exits_0(capsys):
  with pytest.raises(SystemExit) as e:
    demo.main(["--help"])
  assert e.value.code == 0
  text = capsys.readouterr().out
  for option in ("--suite", "--steps", "--optimizers", "--tol", "--seed"):
    assert option in text


def test_unknown_optimizer_is_a_usage_error(capsys):
  with pytest.raises(SystemExit) as e:
    demo.main(["--optimizers", "adam,not_an_optimizer"])
  assert e.value.code == 2
  assert "not_an_optimizer" in capsys.readouterr().err


def test_every_listed_optimizer_builds_with_a_traced_learning_rate():
  params = jnp.zeros(2)
  for name, (build, lrs) in demo.OPTIMIZERS.items():
    def one_step(lr, build=build):
      tx = build(lr, 0)
      return tx.update(jnp.ones(2), tx.init(params), params)[0]

    updates = jax.eval_shape(jax.vmap(one_step), jnp.asarray(lrs, jnp.float32))  # trace only
    assert updates.shape == (len(lrs), 2), name


def test_module_entry_point_help():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run([sys.executable, "-m", "gradtx.demo", "--help"], capture_output=True,
                        text=True, env=env, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert "--suite" in proc.stdout
