"""Smoke tests of `python -m gradtx.demo` (gradtx/demo/cli.py, gradtx/demo/digits.py): small
settings, a few seconds."""

import contextlib
import io
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtx.demo import cli as demo, digits as _demo_digits

# One worker runs the whole module so each module-scoped demo run happens once.
pytestmark = pytest.mark.xdist_group("demo")

FUNCTIONS = [p.name for p in demo.PROBLEMS]


@pytest.fixture(scope="module")
def small_run():
  """One small run of the functions suite, shared by the tests below: (results, printed text)."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    results = demo.main(["--suite", "functions", "--steps", "300", "--optimizers", "sgd,adam",
                         "--tol", "1e-3"])
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
  for option in ("--suite", "--steps", "--optimizers", "--tol", "--seed", "--batch-size",
                 "--output", "digits", "functions"):
    assert option in text


@pytest.mark.parametrize("suite", ["digits", "functions"])
def test_unknown_optimizer_is_a_usage_error(capsys, suite):
  with pytest.raises(SystemExit) as e:
    demo.main(["--suite", suite, "--optimizers", "adam,not_an_optimizer"])
  assert e.value.code == 2
  assert "not_an_optimizer" in capsys.readouterr().err


def test_optimizer_of_the_other_suite_is_a_usage_error(capsys):
  with pytest.raises(SystemExit) as e:
    demo.main(["--optimizers", "noisy_sgd"])  # a 'functions' optimizer; digits is the default
  assert e.value.code == 2
  assert "noisy_sgd" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [(["--steps", "0"], "--steps"),
                                         (["--batch-size", "0"], "--batch-size")])
def test_bad_sizes_are_usage_errors(capsys, argv, match):
  with pytest.raises(SystemExit) as e:
    demo.main(argv)
  assert e.value.code == 2
  assert match in capsys.readouterr().err


def test_every_listed_optimizer_builds_with_a_traced_learning_rate():
  params = jnp.zeros(2)
  for name, (build, lrs) in demo.OPTIMIZERS.items():
    def one_step(lr, build=build):
      tx = build(lr, 0)
      return tx.update(jnp.ones(2), tx.init(params), params)[0]

    updates = jax.eval_shape(jax.vmap(one_step), jnp.asarray(lrs, jnp.float32))  # trace only
    assert updates.shape == (len(lrs), 2), name


def test_every_digits_optimizer_steps_on_an_mlp_shaped_tree():
  """Each optimizer the digits suite offers (the zoo included) builds at its learning rate and
  takes a step on a kernel/bias tree with the loss passed as `value=` (traced only: cheap)."""
  params = {"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3)}
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.1), params)
  for name, (lr, build) in _demo_digits.OPTIMIZERS.items():
    tx = build(lr)
    updates, _ = jax.eval_shape(lambda g, p: tx.update(g, tx.init(p), p, value=jnp.asarray(1.0)),
                                grads, params)
    assert jax.tree.map(lambda u: u.shape, updates) == {"kernel": (4, 3), "bias": (3,)}, name
  assert set(_demo_digits.DEFAULT_OPTIMIZERS) < set(_demo_digits.OPTIMIZERS)


def test_module_entry_point_help():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run([sys.executable, "-m", "gradtx.demo", "--help"], capture_output=True,
                        text=True, env=env, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert "--suite" in proc.stdout


# ------------------------------------------------------------------------------------------------
# The digits suite (the default): a Flax nnx MLP on scikit-learn's digits.

DIGITS_OPTIMIZERS = ("sgd", "adam", "momo")  # momo: a zoo optimizer that needs value=loss
DIGITS_STEPS = 30


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
  """One small run of the digits suite: (results, printed text, PNG path)."""
  pytest.importorskip("flax.nnx")
  pytest.importorskip("sklearn")
  png = tmp_path_factory.mktemp("demo") / "curves.png"
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    results = demo.main(["--steps", str(DIGITS_STEPS), "--optimizers", ",".join(DIGITS_OPTIMIZERS),
                         "--batch-size", "64", "--output", str(png)])
  return results, out.getvalue(), png


def test_digits_table_has_one_row_per_optimizer(digits_run):
  results, text, _ = digits_run
  assert tuple(r.optimizer for r in results) == DIGITS_OPTIMIZERS
  rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
  for r in results:
    row = rows[r.optimizer]
    assert len(row) == 7, row  # optimizer, lr, train loss, test acc, time, compile, steps/s
    assert float(row[1]) == pytest.approx(_demo_digits.OPTIMIZERS[r.optimizer][0])
    assert float(row[3]) == pytest.approx(r.test_accuracy, abs=1e-3)
  for column in ("train loss", "test acc", "time (s)", "steps/s"):
    assert column in text
  # Not a terminal: the progress bar prints one line per optimizer.
  for i, name in enumerate(DIGITS_OPTIMIZERS, 1):
    assert f"{i:>2}/{len(DIGITS_OPTIMIZERS)} {name}" in text
  assert "\r" not in text


def test_digits_rows_are_finite_and_in_range(digits_run):
  results, _, _ = digits_run
  for r in results:
    assert 0.0 <= r.test_accuracy <= 1.0
    assert r.losses.shape == (DIGITS_STEPS,) and np.isfinite(r.losses).all()
    assert np.isfinite(r.final_loss) and r.final_loss > 0
    assert r.seconds >= r.compile_seconds > 0 and r.steps_per_second > 0
  # Every optimizer starts from the same model on the same first minibatch.
  np.testing.assert_allclose([r.losses[0] for r in results], results[0].losses[0], rtol=1e-6)


def test_digits_adam_loss_decreases_and_beats_chance(digits_run):
  results, _, _ = digits_run
  adam = next(r for r in results if r.optimizer == "adam")
  assert adam.losses[-5:].mean() < 0.5 * adam.losses[:5].mean()
  assert adam.final_loss < adam.losses[0]
  assert adam.test_accuracy > 0.5  # 10 classes: chance is 0.1


def test_digits_writes_a_png(digits_run):
  _, text, png = digits_run
  data = png.read_bytes()
  assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
  assert f"written to {png}" in text


def test_digits_plot_without_matplotlib_is_skipped(digits_run, tmp_path, monkeypatch):
  results, _, _ = digits_run
  monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
  monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
  assert _demo_digits.plot(results, str(tmp_path / "x.png"), "title") is False
  assert not (tmp_path / "x.png").exists()


def test_digits_without_scikit_learn_names_the_dev_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
  with pytest.raises(SystemExit, match=r"scikit-learn.*pip install -e '\.\[dev\]'"):
    _demo_digits.load_data(0)


def test_digits_padded_last_chunk_equals_one_chunk(monkeypatch):
  """7 steps in chunks of 4 (the last padded by one step) train exactly like one chunk of 7."""
  pytest.importorskip("flax.nnx")
  pytest.importorskip("sklearn")
  data = _demo_digits.load_data(1)
  indices = _demo_digits.batch_indices(len(data[0]), 7, 16, 1)
  evaluate = _demo_digits.make_evaluate(data, 1)
  runs = []
  for chunk in (4, 7):
    monkeypatch.setattr(_demo_digits, "CHUNK", chunk)
    done = []
    runs.append(_demo_digits.train("sgd", data, indices, 1, evaluate, done.append))
    assert done == ([0, 4, 7] if chunk == 4 else [0, 7])
  np.testing.assert_allclose(runs[0].losses, runs[1].losses, rtol=1e-6)
  assert runs[0].final_loss == pytest.approx(runs[1].final_loss, rel=1e-6)


def test_digits_data_split_batches_and_chunks():
  pytest.importorskip("sklearn")
  x_train, y_train, x_test, y_test = _demo_digits.load_data(0)
  assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
  assert set(np.unique(y_train)) == set(range(10))
  np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
  indices = _demo_digits.batch_indices(100, 7, 30, 0)  # 210 rows: 3 epochs of 100, cut
  assert indices.shape == (7, 30)
  assert sorted(indices.reshape(-1)[:100]) == list(range(100))  # the first epoch, permuted
  assert _demo_digits._chunks(1000) == (10, 100)
  assert _demo_digits._chunks(997) == (10, 100)
  assert _demo_digits._chunks(130) == (2, 65)
  assert _demo_digits._chunks(30) == (1, 30)


def test_progress_bar_redraws_in_place_on_a_terminal():
  class Terminal(io.StringIO):
    def isatty(self):
      return True

  stream = Terminal()
  bar = _demo_digits.Progress(["sgd", "adam"], steps=10, stream=stream, width=10)
  bar.update(5)
  bar.finish_item("done")
  bar.update(10)
  bar.finish_item("done")
  text = stream.getvalue()
  assert text.startswith("\r  [##--------]  25%  sgd")
  assert "[##########] 100%   2/2 adam" in text and text.endswith("\n")


def test_smooth_is_a_centred_moving_average():
  np.testing.assert_allclose(_demo_digits.smooth(np.arange(5.0), 3), [0.5, 1, 2, 3, 3.5])
  np.testing.assert_allclose(_demo_digits.smooth(np.arange(5.0), 1), np.arange(5.0))
