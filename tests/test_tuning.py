"""Tests of gradtx/tuning.py: Smith's learning-rate range test and the matplotlib plots."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.tuning.range_test import LRRangeTestResult, lr_range_test
from gradtx.tuning.plots import plot_lr_range_test, plot_schedule

NUM_BATCHES, BATCH, DIM = 16, 32, 5


def regression():
  """A noisy linear regression in minibatches: (loss_fn, params, stacked batches, full batch)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(NUM_BATCHES, BATCH, DIM)), jnp.float32)
  w = jnp.asarray(rng.normal(size=DIM), jnp.float32)
  y = x @ w + 0.1 * jnp.asarray(rng.normal(size=(NUM_BATCHES, BATCH)), jnp.float32)

  def loss_fn(params, batch):
    xb, yb = batch
    return jnp.mean((xb @ params["w"] + params["b"] - yb) ** 2)

  params = {"w": jnp.zeros(DIM), "b": jnp.zeros(())}
  full = (x.reshape(-1, DIM), y.reshape(-1))
  return loss_fn, params, (x, y), full


def train(loss_fn, params, batch, tx, steps=100):
  def step(carry, _):
    p, s = carry
    u, s = tx.update(jax.grad(loss_fn)(p, batch), s, p)
    return (gradtx.apply_updates(p, u), s), None

  (p, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
  return float(loss_fn(p, batch))


@pytest.fixture(scope="module")
def sgd_result():
  loss_fn, params, batches, _ = regression()
  return lr_range_test(loss_fn, params, batches, gradtx.sgd, min_lr=1e-5, max_lr=10.0,
                       num_steps=100)


def test_learning_rates_are_an_exponential_ramp(sgd_result):
  lrs = np.asarray(sgd_result.learning_rates, np.float64)
  assert lrs.shape == (100,)
  np.testing.assert_allclose([lrs[0], lrs[-1]], [1e-5, 10.0], rtol=1e-5)
  np.testing.assert_allclose(lrs[1:] / lrs[:-1], (1e6) ** (1 / 99), rtol=1e-5)


def test_sgd_diverges_and_losses_are_masked_after(sgd_result):
  r = sgd_result
  assert isinstance(r, LRRangeTestResult)
  d = int(r.diverged_at)
  assert r.diverged_at.dtype == jnp.int32 and 20 < d < 100
  losses, smoothed = np.asarray(r.losses), np.asarray(r.smoothed_losses)
  assert np.all(np.isfinite(losses[:d])) and np.all(np.isnan(losses[d + 1:]))
  assert np.all(np.isnan(smoothed[d + 1:]))
  # The stopping rule: no smoothed loss before d exceeded 4x the best so far; the one at d did.
  best = np.minimum.accumulate(smoothed[:d + 1])
  assert np.all(smoothed[:d] <= 4.0 * best[:d])
  assert not np.isfinite(smoothed[d]) or smoothed[d] > 4.0 * best[d]


def test_smoothed_losses_are_the_debiased_moving_average(sgd_result):
  d = int(sgd_result.diverged_at)
  losses = np.asarray(sgd_result.losses, np.float64)[:d]
  avg, want = 0.0, []
  for k, loss in enumerate(losses):
    avg = 0.98 * avg + 0.02 * loss
    want.append(avg / (1 - 0.98 ** (k + 1)))
  np.testing.assert_allclose(np.asarray(sgd_result.smoothed_losses)[:d], want, rtol=1e-4)


@pytest.mark.parametrize("suggestion", ["minimum", "steepest"])
def test_suggestion_is_in_the_stable_range_and_trains(suggestion):
  loss_fn, params, batches, full = regression()
  r = lr_range_test(loss_fn, params, batches, gradtx.sgd, 1e-5, 10.0, 100,
                    suggestion=suggestion)
  lr = float(r.suggested_learning_rate)
  d = int(r.diverged_at)
  assert 1e-5 < lr < float(r.learning_rates[d])
  initial = float(loss_fn(params, full))
  assert train(loss_fn, params, full, gradtx.sgd(lr)) < 0.1 * initial
  if suggestion == "minimum":  # the smoothed minimum over ten
    k = int(np.nanargmin(np.asarray(r.smoothed_losses)[:d]))
    np.testing.assert_allclose(lr, float(r.learning_rates[k]) / 10, rtol=1e-6)


def test_callable_batches_and_cycling_equal_stacked_batches():
  loss_fn, params, (x, y), _ = regression()
  kw = dict(min_lr=1e-4, max_lr=1.0, num_steps=40)
  stacked = lr_range_test(loss_fn, params, (x, y), gradtx.sgd, **kw)
  called = lr_range_test(loss_fn, params, lambda k: (x[k % NUM_BATCHES], y[k % NUM_BATCHES]),
                         gradtx.sgd, **kw)
  np.testing.assert_allclose(called.losses, stacked.losses, rtol=1e-6)
  np.testing.assert_allclose(called.suggested_learning_rate, stacked.suggested_learning_rate)


def test_gradtx_and_optax_factories_agree_and_params_only_loss():
  loss = lambda p: jnp.sum((p - 3.0) ** 2) + 0.5 * jnp.sum(p**4) * 1e-3
  p0 = jnp.zeros(3)
  ours = lr_range_test(loss, p0, None, gradtx.adam, 1e-4, 10.0, 60, smooth=0.9)
  theirs = lr_range_test(loss, p0, None, optax.adam, 1e-4, 10.0, 60, smooth=0.9)
  np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-5)
  momentum = lr_range_test(loss, p0, None, lambda learning_rate: gradtx.sgd(learning_rate, 0.9),
                           1e-4, 10.0, 60, smooth=0.9)
  assert int(momentum.diverged_at) < 60


def test_linear_ramp_and_negative_losses():
  loss = lambda p, target: jnp.sum((p - target) ** 2) - 10.0  # diverges for lr > 1
  targets = lambda k: 3.0 + 0.1 * jnp.sin(k.astype(jnp.float32))
  r = lr_range_test(loss, jnp.zeros(2), targets, gradtx.sgd, 0.01, 3.0, 80, ramp="linear",
                    smooth=0.5)
  lrs = np.asarray(r.learning_rates)
  np.testing.assert_allclose(np.diff(lrs), (3.0 - 0.01) / 79, rtol=1e-4)
  assert float(lrs[int(r.diverged_at)]) > 1.0 and int(r.diverged_at) < 80
  assert 0.01 < float(r.suggested_learning_rate) < 1.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(min_lr=0.0), "min_lr"),
    (dict(max_lr=1e-8), "max_lr must be > min_lr"),
    (dict(num_steps=2), "num_steps"),
    (dict(num_steps=10.0), "num_steps"),
    (dict(smooth=1.0), "smooth"),
    (dict(diverge_factor=1.0), "diverge_factor"),
    (dict(ramp="cosine"), "ramp"),
    (dict(suggestion="valley"), "suggestion"),
])
def test_invalid_arguments_raise_naming_them(kwargs, match):
  loss = lambda p: jnp.sum(p**2)
  with pytest.raises(ValueError, match=f"lr_range_test: {match}"):
    lr_range_test(loss, jnp.zeros(2), None, gradtx.sgd, **kwargs)


def test_invalid_callables_and_batches_raise():
  loss = lambda p, b: jnp.sum(p**2)
  with pytest.raises(TypeError, match="optimizer_factory.*gradtx.adam, not gradtx.adam"):
    lr_range_test(loss, jnp.zeros(2), None, gradtx.adam(1e-3))
  with pytest.raises(TypeError, match="must return a GradientTransformation"):
    lr_range_test(loss, jnp.zeros(2), None, lambda learning_rate: learning_rate)
  with pytest.raises(TypeError, match="loss_fn"):
    lr_range_test(None, jnp.zeros(2), None, gradtx.sgd)
  with pytest.raises(ValueError, match="leading axis"):
    lr_range_test(loss, jnp.zeros(2), jnp.float32(1.0), gradtx.sgd)
  with pytest.raises(ValueError, match="share their leading"):
    lr_range_test(loss, jnp.zeros(2), (jnp.zeros((3, 2)), jnp.zeros((4,))), gradtx.sgd)


# --- plots ------------------------------------------------------------------------------------


@pytest.fixture
def plt():
  matplotlib = pytest.importorskip("matplotlib")
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  yield plt
  plt.close("all")


def test_plot_schedule_draws_num_steps_points(plt):
  _, ax = plt.subplots()
  schedule = gradtx.warm_restarts_schedule(1.0, 10, 2)
  assert plot_schedule(schedule, 70, ax=ax, label="sgdr") is ax
  line = ax.lines[-1]
  assert len(line.get_xdata()) == 70 and line.get_label() == "sgdr"
  np.testing.assert_allclose(line.get_ydata(), [float(schedule(t)) for t in range(70)],
                             rtol=1e-6)
  assert ax.get_legend() is not None
  plot_schedule(0.5, 5, ax=ax)  # a constant
  np.testing.assert_allclose(ax.lines[-1].get_ydata(), [0.5] * 5)
  assert plot_schedule(schedule, 3) is plt.gca()


def test_plot_lr_range_test(plt, sgd_result):
  _, ax = plt.subplots()
  assert plot_lr_range_test(sgd_result, ax=ax) is ax
  assert ax.get_xscale() == "log"
  assert len(ax.lines) == 3  # smoothed, raw and the suggestion
  assert len(ax.lines[0].get_xdata()) == 100
  np.testing.assert_allclose(ax.lines[2].get_xdata()[0], sgd_result.suggested_learning_rate)


def test_plots_explain_missing_matplotlib(monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
  with pytest.raises(ImportError, match="plot_schedule needs matplotlib.*pip install matplotlib"):
    plot_schedule(lambda t: 1.0, 3)
  result = LRRangeTestResult(*(jnp.zeros(3),) * 3, jnp.float32(1.0), jnp.int32(3))
  with pytest.raises(ImportError, match="pip install matplotlib"):
    plot_lr_range_test(result)


def test_plot_arguments_are_validated():
  with pytest.raises(ValueError, match="plot_schedule: num_steps"):
    plot_schedule(lambda t: 1.0, 0)
  with pytest.raises(TypeError, match="plot_schedule: schedule"):
    plot_schedule("cosine", 3)
  with pytest.raises(TypeError, match="plot_lr_range_test: result"):
    plot_lr_range_test((1, 2))
