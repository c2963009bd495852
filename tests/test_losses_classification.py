"""Classification losses (gradtx/losses/classification.py, sparsemax.py, fenchel_young.py):
optax parity over argument variants (bit-identical: the arithmetic follows optax's), float64
NumPy references of each equation, gradients against finite differences (float64, forward and
reverse mode, second order where the loss is smooth), edge cases (-inf logits, all-masked rows,
out-of-range labels), jit/vmap, and bad input raised at trace time naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import logsumexp as np_logsumexp

import gradtx
from gradtx import losses

optax = pytest.importorskip("optax")

RNG = np.random.default_rng(0)
B, C = 4, 5
X = RNG.normal(size=(B, C)).astype(np.float32) * 2
P = RNG.dirichlet(np.ones(C), size=B).astype(np.float32)          # probability labels
ONE_HOT = np.eye(C, dtype=np.float32)[[0, 3, 1, 4]]
Y = np.array([0, 3, 1, 4], np.int32)                              # integer labels
MASK = RNG.random((B, C)) > 0.3
MASK[:, 0] = True
ROW_MASK = np.array([True, False, True, True])
X4 = RNG.normal(size=(2, 3, 4, 2)).astype(np.float32)             # classes on axes (1, 2)
Y4 = np.array([[0, 11], [5, 7]], np.int32)
BIN = (RNG.random((B, C)) > 0.5).astype(np.int32)
SIGNS = np.where(BIN, 1.0, -1.0).astype(np.float32)


def _bf16(x):
  return jnp.asarray(x, jnp.bfloat16)


# name -> (gradtx loss, optax loss, positional args, keyword args). optax's own arithmetic order
# is followed everywhere, so values and gradients (w.r.t. the first argument) are bit-identical.
CASES = {
    "sce": ("softmax_cross_entropy", (X, P), {}),
    "sce_onehot_axis0": ("softmax_cross_entropy", (X.T, ONE_HOT.T), {"axis": 0}),
    "sce_axes": ("softmax_cross_entropy", (X4, np.abs(X4)), {"axis": (1, 2)}),
    "sce_where": ("softmax_cross_entropy", (X, P), {"where": MASK}),
    "sce_row_where": ("softmax_cross_entropy", (X, P), {"where": ROW_MASK}),
    "sce_bf16": ("softmax_cross_entropy", (_bf16(X), P), {}),
    "int": ("softmax_cross_entropy_with_integer_labels", (X, Y), {}),
    "int_negative": ("softmax_cross_entropy_with_integer_labels", (X, Y - C), {}),
    "int_axis0": ("softmax_cross_entropy_with_integer_labels", (X.T, Y), {"axis": 0}),
    "int_axes": ("softmax_cross_entropy_with_integer_labels", (X4, Y4), {"axis": (1, 2)}),
    "int_where": ("softmax_cross_entropy_with_integer_labels", (X, Y), {"where": MASK}),
    "int_row_where": ("softmax_cross_entropy_with_integer_labels", (X, Y), {"where": ROW_MASK}),
    "int_axes_where": ("softmax_cross_entropy_with_integer_labels", (X4, Y4),
                       {"axis": (1, 2), "where": X4 > -1}),
    "int_bf16": ("softmax_cross_entropy_with_integer_labels", (_bf16(X), Y), {}),
    "safe": ("safe_softmax_cross_entropy", (X, P), {}),
    "bce_binary": ("sigmoid_binary_cross_entropy", (X, BIN), {}),
    "bce_soft": ("sigmoid_binary_cross_entropy", (X, P), {}),
    "bce_bf16": ("sigmoid_binary_cross_entropy", (_bf16(X), BIN), {}),
    "focal": ("sigmoid_focal_loss", (X, BIN), {}),
    "focal_alpha": ("sigmoid_focal_loss", (X, P), {"alpha": 0.25, "gamma": 1.5}),
    "poly": ("poly_loss_cross_entropy", (X, P), {"epsilon": -1.0}),
    "poly_where": ("poly_loss_cross_entropy", (X, P), {"where": MASK}),
    "poly_axis0": ("poly_loss_cross_entropy", (X.T, ONE_HOT.T), {"axis": 0}),
    "smooth": ("smooth_labels", (ONE_HOT, 0.1), {}),
    "smooth_where": ("smooth_labels", (ONE_HOT, 0.3), {"where": MASK}),
    "smooth_axis0": ("smooth_labels", (ONE_HOT, 0.2), {"axis": 0}),
    "hinge": ("hinge_loss", (X, SIGNS), {}),
    "perceptron": ("perceptron_loss", (X, SIGNS), {}),
    "mc_hinge": ("multiclass_hinge_loss", (X, Y), {}),
    "mc_perceptron": ("multiclass_perceptron_loss", (X, Y), {}),
    "sparsemax": ("sparsemax_loss", (X, BIN), {}),
    "mc_sparsemax": ("multiclass_sparsemax_loss", (X, Y), {}),
}


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_equal_optax(case):
  name, args, kwargs = CASES[case]
  ours, theirs = getattr(losses, name), getattr(optax.losses, name)
  args = tuple(jnp.asarray(a) for a in args)
  differentiable = jnp.issubdtype(args[0].dtype, jnp.floating)

  def run(f, *args):
    out = f(*args, **kwargs)
    if not differentiable:
      return out, None
    return out, jax.grad(lambda x: jnp.sum(f(x, *args[1:], **kwargs)))(args[0])

  run = jax.jit(run, static_argnums=0)  # one compilation per side: cheaper than op-by-op
  for a, b in zip(run(ours, *args), run(theirs, *args)):
    np.testing.assert_array_equal(a, b)


def test_fenchel_young_equals_optax():
  ours = losses.make_fenchel_young_loss(jax.nn.logsumexp)
  theirs = optax.losses.make_fenchel_young_loss(jax.nn.logsumexp)
  np.testing.assert_array_equal(ours(X, P), theirs(X, P))
  x3 = X4.reshape(2, 3, 8)
  np.testing.assert_array_equal(ours(x3, np.abs(x3)), theirs(x3, np.abs(x3)))
  # The logsumexp Fenchel-Young loss is the softmax cross entropy (up to the labels' entropy).
  np.testing.assert_allclose(ours(X, ONE_HOT), losses.softmax_cross_entropy(X, ONE_HOT),
                             rtol=1e-6)


# -- NumPy float64 references, transcribed from the equations ---------------------------------

def _np_log_softmax(x, axis=-1):
  return x - np_logsumexp(x, axis=axis, keepdims=True)


def _np_log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


def _np_simplex(v):  # Held, Wolfe and Crowder (1974): the sort-based projection
  u = np.sort(v)[::-1]
  css = np.cumsum(u)
  k = np.arange(1, len(v) + 1)
  rho = k[u - (css - 1) / k > 0][-1]
  return np.maximum(v - (css[rho - 1] - 1) / rho, 0)


def _np_sparsemax_loss(s, y):
  p = _np_simplex(s)
  return p @ s - 0.5 * p @ p + 0.5 - s[y]  # Omega*(s) - s_y, Omega(p) = (||p||^2 - 1) / 2


x64, p64, oh64, bin64, sg64 = (a.astype(np.float64) for a in (X, P, ONE_HOT, BIN, SIGNS))
_pt = lambda x, y: y / (1 + np.exp(-x)) + (1 - y) / (1 + np.exp(x))
REFERENCES = {
    "softmax_cross_entropy": ((X, P), lambda: -(p64 * _np_log_softmax(x64)).sum(-1)),
    "softmax_cross_entropy_with_integer_labels": (
        (X, Y), lambda: np_logsumexp(x64, axis=-1) - x64[np.arange(B), Y]),
    "safe_softmax_cross_entropy": ((X, P), lambda: -(p64 * _np_log_softmax(x64)).sum(-1)),
    "sigmoid_binary_cross_entropy": (
        (X, P), lambda: -p64 * _np_log_sigmoid(x64) - (1 - p64) * _np_log_sigmoid(-x64)),
    "sigmoid_focal_loss": (
        (X, BIN), lambda: -(1 - _pt(x64, bin64)) ** 2 * np.log(_pt(x64, bin64))),
    "poly_loss_cross_entropy": (
        (X, P), lambda: -(p64 * _np_log_softmax(x64)).sum(-1)
        + 2.0 * (p64 * (1 - np.exp(_np_log_softmax(x64)))).sum(-1)),
    "smooth_labels": ((ONE_HOT, 0.1), lambda: 0.9 * oh64 + 0.1 / C),
    "hinge_loss": ((X, SIGNS), lambda: np.maximum(0, 1 - x64 * sg64)),
    "perceptron_loss": ((X, SIGNS), lambda: np.maximum(0, -x64 * sg64)),
    "multiclass_hinge_loss": (
        (X, Y), lambda: (x64 + 1 - oh64).max(-1) - x64[np.arange(B), Y]),
    "multiclass_perceptron_loss": ((X, Y), lambda: x64.max(-1) - x64[np.arange(B), Y]),
    "sparsemax_loss": (  # binary sparsemax = the 2-class sparsemax loss on scores (x, 0)
        (X, BIN), lambda: np.vectorize(
            lambda x, y: _np_sparsemax_loss(np.array([x, 0.0]), 1 - int(y)))(x64, bin64)),
    "multiclass_sparsemax_loss": (
        (X, Y), lambda: np.array([_np_sparsemax_loss(x64[i], Y[i]) for i in range(B)])),
}


@pytest.mark.parametrize("name", REFERENCES)
def test_matches_numpy_reference(name):
  args, ref = REFERENCES[name]
  np.testing.assert_allclose(getattr(losses, name)(*args), ref(), rtol=2e-6, atol=2e-6)


def test_focal_loss_reference_with_alpha_and_soft_labels():
  got = losses.sigmoid_focal_loss(X, P, alpha=0.25, gamma=0.5)
  ce = -p64 * _np_log_sigmoid(x64) - (1 - p64) * _np_log_sigmoid(-x64)
  p = 1 / (1 + np.exp(-x64))
  one_minus_pt = (1 - p64) * p + p64 * (1 - p)  # the log-space weight of optax >= 0.2.5
  want = (0.25 * p64 + 0.75 * (1 - p64)) * one_minus_pt ** 0.5 * ce
  np.testing.assert_allclose(got, want, rtol=2e-5)


# -- Gradients: float64 finite differences, reverse and forward mode ----------------------------

def test_gradients_match_finite_differences_float64():
  with jax.enable_x64(True):
    x = jnp.asarray(x64)
    y = jnp.asarray(Y)
    p = jnp.asarray(p64)
    smooth = [  # the custom-JVP ones (first two) to second order: forward mode and hessians work
        lambda x: losses.softmax_cross_entropy_with_integer_labels(x, y),
        lambda x: losses.softmax_cross_entropy_with_integer_labels(x.reshape(2, 2, C), y.reshape(
            2, 2), axis=-1, where=jnp.asarray(MASK).reshape(2, 2, C)),
        lambda x: losses.softmax_cross_entropy(x, p, where=jnp.asarray(MASK)),
        lambda x: losses.safe_softmax_cross_entropy(x, p),
        lambda x: losses.poly_loss_cross_entropy(x, p, epsilon=0.5),
        lambda x: losses.sigmoid_focal_loss(x, p, alpha=0.3, gamma=2.0),
        lambda x: losses.sigmoid_binary_cross_entropy(x, p),
        lambda x: losses.smooth_labels(p, x[0, 0] ** 2 / 10),
    ]
    for i, f in enumerate(smooth):  # jitted: check_grads evaluates each many times
      check_grads(jax.jit(f), (x,), order=2 if i < 2 else 1, modes=("fwd", "rev"), atol=1e-5,
                  rtol=1e-5)
    # piecewise-linear / sparse losses: first order away from the kinks
    check_grads(jax.jit(lambda x: losses.multiclass_sparsemax_loss(x, y)), (x,), order=1,
                modes=("fwd", "rev"), atol=1e-5, rtol=1e-5, eps=1e-6)
    check_grads(jax.jit(lambda x: losses.multiclass_hinge_loss(x, y)), (x,), order=1,
                modes=("rev",), eps=1e-6)


def test_integer_label_gradient_is_softmax_minus_onehot_without_scatter():
  f = lambda x: jnp.sum(losses.softmax_cross_entropy_with_integer_labels(x, Y))
  np.testing.assert_allclose(jax.grad(f)(X), jax.nn.softmax(X) - ONE_HOT, atol=1e-6)
  assert "scatter" not in str(jax.make_jaxpr(jax.grad(f))(X))  # a select, not a scatter-add
  g = lambda x: jnp.sum(optax.losses.softmax_cross_entropy_with_integer_labels(x, Y))
  assert "scatter" in str(jax.make_jaxpr(jax.grad(g))(X))


# -- Edge cases --------------------------------------------------------------------------------

NEG_INF_X = np.array([[1.0, -np.inf, 0.5], [0.2, 0.3, -np.inf]], np.float32)
NEG_INF_P = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)


def test_zero_labels_on_minus_inf_logits_are_finite():
  want = losses.softmax_cross_entropy_with_integer_labels(NEG_INF_X, np.array([0, 1]))
  assert np.all(np.isfinite(want))
  for f in (losses.softmax_cross_entropy, losses.safe_softmax_cross_entropy,
            losses.poly_loss_cross_entropy):
    np.testing.assert_allclose(f(NEG_INF_X, NEG_INF_P), want + (0 if f is not
                               losses.poly_loss_cross_entropy else 2 * (1 - jnp.exp(-want))),
                               rtol=1e-6)
  # optax's softmax_cross_entropy gives NaN values here (0 * -inf); its gradient is finite, and
  # gradtx's gradient equals it.
  assert np.all(np.isnan(optax.losses.softmax_cross_entropy(NEG_INF_X, NEG_INF_P)))
  grads = [jax.grad(lambda x: jnp.sum(f(x, NEG_INF_P)))(NEG_INF_X) for f in (
      losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy,
      losses.safe_softmax_cross_entropy)]
  grads.append(jax.grad(lambda x: jnp.sum(losses.softmax_cross_entropy_with_integer_labels(
      x, np.array([0, 1]))))(NEG_INF_X))
  for g in grads:
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, grads[1], atol=1e-7)
  # A nonzero label on a -inf logit is an infinite loss, as it should be.
  assert losses.softmax_cross_entropy(NEG_INF_X, NEG_INF_P[::-1])[0] == np.inf


def test_all_masked_rows_give_zero_and_zero_gradient():
  where = np.array([True, False, True, False])
  for f, labels in ((losses.softmax_cross_entropy, P),
                    (losses.softmax_cross_entropy_with_integer_labels, Y),
                    (losses.poly_loss_cross_entropy, P)):
    loss = lambda x: f(x, labels, where=where)
    out, grad = loss(X), jax.grad(lambda x: jnp.sum(loss(x)))(X)
    np.testing.assert_array_equal(out[~where], 0.0)
    np.testing.assert_array_equal(grad[~where], 0.0)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad))
  # smooth_labels: optax divides by zero on a row with no class included; gradtx only scales it.
  row_out = np.zeros((2, C), bool)
  row_out[0, :2] = True
  smoothed = losses.smooth_labels(ONE_HOT[:2], 0.2, where=row_out)
  np.testing.assert_allclose(smoothed[1], 0.8 * ONE_HOT[1])
  np.testing.assert_allclose(smoothed[0], 0.8 * ONE_HOT[0] + 0.1)
  assert np.all(np.isinf(optax.smooth_labels(ONE_HOT[:2], 0.2, where=row_out)[1]))


INTEGER_LABEL_LOSSES = ("softmax_cross_entropy_with_integer_labels", "multiclass_hinge_loss",
                        "multiclass_perceptron_loss", "multiclass_sparsemax_loss")


def test_out_of_range_integer_labels_give_nan_loss_and_gradient():
  labels = np.array([C, -C - 1, 2, 100], np.int32)  # rows 0, 1, 3 out of range
  bad = np.array([True, True, False, True])
  for name in INTEGER_LABEL_LOSSES:
    f = getattr(losses, name)
    out = jax.jit(f)(X, labels)
    grad = jax.grad(lambda x: jnp.sum(f(x, labels)))(X)
    assert np.all(np.isnan(out[bad])) and np.all(np.isfinite(out[~bad])), name
    assert np.all(np.isnan(grad[bad])), name
    # a label in [-C, 0) counts from the end, as optax's cross entropy (NumPy indexing)
    np.testing.assert_array_equal(f(X, Y - C), f(X, Y))
  # optax: NaN value but a finite (wrong: softmax only) gradient for the cross entropy, and a
  # finite loss for the multiclass hinge.
  g = jax.grad(lambda x: jnp.sum(optax.losses.softmax_cross_entropy_with_integer_labels(
      x, labels)))(X)
  assert np.all(np.isfinite(g))
  assert np.all(np.isfinite(optax.losses.multiclass_hinge_loss(X, labels)))


# -- jit / vmap ----------------------------------------------------------------------------------

def test_jit_and_vmap():
  f = losses.softmax_cross_entropy_with_integer_labels
  value_and_grad = jax.jit(jax.value_and_grad(lambda x, y: jnp.sum(f(x, y))))
  xs = jnp.asarray(RNG.normal(size=(3, B, C)), jnp.float32)
  ys = jnp.asarray(RNG.integers(0, C, size=(3, B)), jnp.int32)
  batched = jax.vmap(value_and_grad)(xs, ys)
  for i in range(3):
    v, g = value_and_grad(xs[i], ys[i])
    np.testing.assert_allclose(batched[0][i], v, rtol=1e-6)
    np.testing.assert_allclose(batched[1][i], g, atol=1e-7)
    np.testing.assert_allclose(v, jnp.sum(f(xs[i], ys[i])), rtol=1e-6)
  # a batch of hyperparameters equals a Python loop
  gammas = jnp.array([0.0, 1.0, 2.5])
  swept = jax.jit(jax.vmap(lambda g: losses.sigmoid_focal_loss(X, P, alpha=0.4, gamma=g)))(gammas)
  for i, g in enumerate(np.asarray(gammas)):
    np.testing.assert_allclose(swept[i], losses.sigmoid_focal_loss(X, P, alpha=0.4, gamma=g),
                               rtol=1e-6)
  alphas = jnp.array([0.0, 0.1, 0.5])
  swept = jax.vmap(lambda a: losses.smooth_labels(ONE_HOT, a))(alphas)
  for i, a in enumerate(np.asarray(alphas)):
    np.testing.assert_allclose(swept[i], losses.smooth_labels(ONE_HOT, a), rtol=1e-6)
  # multiclass_sparsemax_loss takes any batch shape (optax: [batch, classes] only)
  np.testing.assert_array_equal(
      losses.multiclass_sparsemax_loss(X.reshape(2, 2, C), Y.reshape(2, 2)).reshape(-1),
      losses.multiclass_sparsemax_loss(X, Y))


# -- Bad input: raised in Python at trace time, naming the argument -------------------------------

BAD = [
    (lambda: losses.softmax_cross_entropy(Y, P), TypeError, "logits"),
    (lambda: losses.softmax_cross_entropy(X, Y), TypeError, "labels"),
    (lambda: losses.softmax_cross_entropy(X, ONE_HOT.astype(np.int32)), TypeError, "labels"),
    (lambda: losses.softmax_cross_entropy(X, P[:, :3]), ValueError, "labels"),
    (lambda: losses.softmax_cross_entropy(X[:, :1], P), ValueError, "labels"),
    (lambda: losses.softmax_cross_entropy(X, P, where=MASK[:3]), ValueError, "where"),
    (lambda: losses.safe_softmax_cross_entropy(X, Y), TypeError, "labels"),
    (lambda: losses.softmax_cross_entropy_with_integer_labels(X, P), TypeError, "labels"),
    (lambda: losses.softmax_cross_entropy_with_integer_labels(X, Y[:3]), ValueError, "labels"),
    (lambda: losses.softmax_cross_entropy_with_integer_labels(X, Y, axis=2), ValueError, "axis"),
    (lambda: losses.softmax_cross_entropy_with_integer_labels(X, Y, axis=[1]), TypeError,
     "axis"),
    (lambda: losses.sigmoid_binary_cross_entropy(X[:, :1], Y), ValueError, "labels"),
    (lambda: losses.sigmoid_binary_cross_entropy(BIN, BIN), TypeError, "logits"),
    (lambda: losses.sigmoid_focal_loss(X, BIN, alpha=1.5), ValueError, "alpha"),
    (lambda: losses.sigmoid_focal_loss(X, BIN, gamma=-1.0), ValueError, "gamma"),
    (lambda: losses.poly_loss_cross_entropy(X, P, epsilon=np.inf), ValueError, "epsilon"),
    (lambda: losses.poly_loss_cross_entropy(X, ONE_HOT.astype(int)), TypeError, "labels"),
    (lambda: losses.smooth_labels(ONE_HOT, -0.1), ValueError, "alpha"),
    (lambda: losses.smooth_labels(Y, 0.1), TypeError, "labels"),
    (lambda: losses.smooth_labels(ONE_HOT, 0.1, where=MASK[:, :2]), ValueError, "where"),
    (lambda: losses.hinge_loss(X[:, :1], SIGNS[:, 0]), ValueError, "targets"),
    (lambda: losses.perceptron_loss(X, SIGNS[0]), ValueError, "targets"),
    (lambda: losses.multiclass_hinge_loss(X, P), TypeError, "labels"),
    (lambda: losses.multiclass_perceptron_loss(X, Y[:2]), ValueError, "labels"),
    (lambda: losses.multiclass_sparsemax_loss(X, Y[None]), ValueError, "labels"),
    (lambda: losses.sparsemax_loss(X, BIN[:, :2]), ValueError, "labels"),
    (lambda: losses.make_fenchel_young_loss("logsumexp"), TypeError, "max_fun"),
    (lambda: losses.make_fenchel_young_loss(jax.nn.logsumexp)(X, P[:, :2]), ValueError,
     "targets"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input_names_the_argument(i):
  call, error, name = BAD[i]
  with pytest.raises(error, match=name):
    call()


def test_shape_errors_raise_at_trace_time_under_jit():
  with pytest.raises(ValueError, match="labels"):
    jax.jit(losses.softmax_cross_entropy_with_integer_labels)(X, Y[:3])
  with pytest.raises(TypeError, match="labels"):
    jax.jit(losses.softmax_cross_entropy)(X, Y)


def test_top_level_names_are_the_losses():
  for name in ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
               "safe_softmax_cross_entropy", "sigmoid_binary_cross_entropy",
               "sigmoid_focal_loss", "smooth_labels", "hinge_loss"):
    assert getattr(gradtx, name) is getattr(losses, name)
