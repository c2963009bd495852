"""gradtx.losses: the regression, similarity, divergence, ranking and segmentation families.

Per name: optax parity on random inputs over its argument variants (bit-identical: the
arithmetic follows optax's), a float64 NumPy transcription of the equation, gradients against
finite differences in float64, jit and vmap, the edge cases (zero vectors, zero KL targets,
all-masked lists) and bad input raised at trace time naming the argument.

The NumPy references live here rather than in tests/reference.py: they are one-liners of the
docstring equations.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

optax = pytest.importorskip("optax")

L, OL = gradtx.losses, optax.losses
RNG = np.random.default_rng(0)


def _normal(*shape, scale=1.0):
  return jnp.asarray(RNG.normal(size=shape) * scale, jnp.float32)


def _softmax_np(x, axis=-1):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


P34, T34 = _normal(3, 4, scale=2.0), _normal(3, 4, scale=2.0)
MASK34 = jnp.asarray(RNG.random((3, 4)) > 0.3)
LOGP34 = jax.nn.log_softmax(_normal(3, 4))
TGT34 = jnp.asarray(_softmax_np(RNG.normal(size=(3, 4))) * np.array([1, 0, 1, 1]), jnp.float32)
EMB, LABELS = _normal(6, 3), jnp.array([0, 0, 1, 1, 2, 2])
A43, POS43, NEG43 = _normal(4, 3), _normal(4, 3), _normal(4, 3)
SCORES, RELEVANCE = _normal(3, 5), jnp.asarray(RNG.integers(0, 3, (3, 5)))
LIST_MASK = jnp.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
SEG_LOGITS = _normal(2, 3, 3, 4)
SEG_TARGETS = jax.nn.one_hot(jnp.asarray(RNG.integers(0, 4, (2, 3, 3))), 4)
BIN_LOGITS = _normal(2, 5)
BIN_TARGETS = jnp.asarray(RNG.random((2, 5)) > 0.5, jnp.float32)


def _bf16(*xs):
  return tuple(x.astype(jnp.bfloat16) for x in xs)


# (name, positional args, keyword args): each is called as gradtx.losses.<name>(*args, **kwargs)
# and optax.losses.<name>(*args, **kwargs), and must agree bit for bit.
CASES = [
    ("squared_error", (P34, T34), {}),
    ("squared_error", (P34,), {}),
    ("squared_error", _bf16(P34, T34), {}),
    ("l2_loss", (P34, T34), {}),
    ("l2_loss", _bf16(P34), {}),
    ("huber_loss", (P34, T34), {}),
    ("huber_loss", (P34, T34[0]), {"delta": 0.5}),  # targets broadcast to predictions
    ("huber_loss", _bf16(P34, T34), {"delta": 2.0}),
    ("log_cosh", (P34 * 50, T34), {}),  # large errors: the stable log-sum-exp form
    ("log_cosh", _bf16(P34), {}),
    ("cosine_similarity", (P34, T34), {}),
    ("cosine_similarity", (P34, T34), {"axis": 0, "epsilon": 1e-3}),
    ("cosine_similarity", (P34, T34), {"axis": None, "where": MASK34}),
    ("cosine_similarity", (P34, T34[0]), {"where": MASK34}),  # one target for every row
    ("cosine_similarity", (P34.at[1].set(0.0), T34), {"epsilon": 1e-6}),  # a zero vector
    ("cosine_similarity", _bf16(P34, T34), {}),
    ("cosine_distance", (P34, T34), {"axis": (0, 1)}),
    ("cosine_distance", (P34, T34), {"where": MASK34, "epsilon": 0.1}),
    ("ntxent", (EMB, LABELS), {}),
    ("ntxent", (EMB, LABELS, 0.5), {}),
    ("ntxent", (EMB * 100, jnp.array([0, 1, 0, 1, 2, 3])), {}),  # rows without a positive
    ("ntxent", _bf16(EMB) + (LABELS,), {}),
    ("triplet_margin_loss", (A43, POS43, NEG43), {}),
    ("triplet_margin_loss", (A43, POS43, NEG43, 0, 4, 0.5, 1e-3), {}),
    ("triplet_margin_loss", _bf16(A43, POS43, NEG43), {"margin": 2.0}),
    ("kl_divergence", (LOGP34, TGT34), {}),
    ("kl_divergence", (LOGP34, TGT34), {"axis": 0, "where": MASK34}),
    ("kl_divergence", (LOGP34, TGT34[0]), {}),  # one target for every row
    ("kl_divergence", (LOGP34, TGT34), {"axis": None}),
    ("kl_divergence", _bf16(LOGP34, TGT34), {}),
    ("kl_divergence_with_log_targets", (LOGP34, jax.nn.log_softmax(T34)), {}),
    ("kl_divergence_with_log_targets", (LOGP34, jax.nn.log_softmax(T34)), {"where": MASK34}),
    ("kl_divergence_with_log_targets", _bf16(LOGP34, jax.nn.log_softmax(T34)), {"axis": (0, 1)}),
    ("generalized_kl_divergence", (P34, jnp.exp(T34)), {}),
    ("generalized_kl_divergence", (P34, TGT34), {"axis": 0, "where": MASK34}),
    ("generalized_kl_divergence", _bf16(P34, TGT34), {}),
    ("ranking_softmax_loss", (SCORES, RELEVANCE), {}),
    ("ranking_softmax_loss", (SCORES, RELEVANCE), {"where": LIST_MASK}),
    ("ranking_softmax_loss", (SCORES, RELEVANCE), {"where": LIST_MASK, "reduce_fn": None}),
    ("ranking_softmax_loss", (SCORES, RELEVANCE), {"where": LIST_MASK, "reduce_fn": jnp.sum,
                                                   "weights": jnp.abs(SCORES)}),
    ("ranking_softmax_loss", (SCORES, RELEVANCE), {"where": jnp.zeros((3, 5), bool)}),  # empty
    ("ranking_softmax_loss", _bf16(SCORES) + (RELEVANCE,), {"where": LIST_MASK}),
    ("dice_loss", (SEG_LOGITS, SEG_TARGETS), {}),
    ("dice_loss", (SEG_LOGITS, SEG_TARGETS), {
        "class_weights": jnp.array([0.5, 1.0, 2.0, 1.0]), "alpha": 0.3, "beta": 0.7,
        "reduction": "sum", "ignore_background": True}),
    ("dice_loss", (SEG_LOGITS, SEG_TARGETS), {"reduction": "none", "axis": (1, 2),
                                              "smooth": 0.1}),
    ("dice_loss", (SEG_LOGITS, SEG_TARGETS), {"axis": 1, "reduction": "none"}),
    ("dice_loss", (jax.nn.softmax(SEG_LOGITS), SEG_TARGETS), {"apply_softmax": False}),
    ("dice_loss", (BIN_LOGITS, BIN_TARGETS), {}),  # binary: [...] -> [..., 1], a sigmoid
    ("dice_loss", _bf16(SEG_LOGITS, SEG_TARGETS), {}),
    ("binary_dice_loss", (BIN_LOGITS, BIN_TARGETS), {}),
    ("binary_dice_loss", (BIN_LOGITS[..., None], BIN_TARGETS), {"smooth": 0.5}),
    ("multiclass_generalized_dice_loss", (SEG_LOGITS, SEG_TARGETS), {}),
    ("multiclass_generalized_dice_loss", (SEG_LOGITS, SEG_TARGETS), {
        "ignore_background": True, "smooth": 0.5}),
    ("multiclass_generalized_dice_loss", (jax.nn.softmax(SEG_LOGITS), SEG_TARGETS), {
        "apply_softmax": False}),
]


NAMES = [
    "binary_dice_loss", "convex_kl_divergence", "cosine_distance", "cosine_similarity",
    "dice_loss", "generalized_kl_divergence", "huber_loss", "kl_divergence",
    "kl_divergence_with_log_targets", "l2_loss", "log_cosh", "multiclass_generalized_dice_loss",
    "ntxent", "ranking_softmax_loss", "squared_error", "triplet_margin_loss",
]


def _assert_same(ours, theirs):
  assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
  np.testing.assert_array_equal(np.asarray(ours, np.float32), np.asarray(theirs, np.float32))


def test_optax_parity_bit_identical():
  """Every case: the same dtype, shape and bits as optax (eager), with fresh random inputs of
  the same shapes on each of 3 draws."""
  for name, args, kwargs in CASES:
    for draw in range(3):
      if draw:  # redraw the float arguments (keep their dtype; labels and masks stay)
        args = tuple(a + jnp.asarray(RNG.normal(size=a.shape) * 0.1, a.dtype)
                     if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating)
                     and name not in ("kl_divergence", "dice_loss", "binary_dice_loss",
                                      "multiclass_generalized_dice_loss")
                     else a for a in args)
      ours = getattr(L, name)(*args, **kwargs)
      theirs = getattr(OL, name)(*args, **kwargs)
      try:
        _assert_same(ours, theirs)
      except AssertionError as e:
        raise AssertionError(f"{name} {kwargs} draw {draw}") from e


def test_top_level_names_are_the_losses():
  for name in ("l2_loss", "squared_error", "huber_loss", "log_cosh", "cosine_similarity",
               "cosine_distance", "ntxent", "kl_divergence", "convex_kl_divergence",
               "generalized_kl_divergence"):
    assert hasattr(optax, name) and getattr(gradtx, name) is getattr(L, name)
  for name in ("triplet_margin_loss", "kl_divergence_with_log_targets", "ranking_softmax_loss",
               "dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss"):
    assert not hasattr(optax, name) and not hasattr(gradtx, name)


def test_convex_kl_divergence_is_deprecated_like_optax():
  with pytest.warns(DeprecationWarning, match="generalized_kl_divergence"):
    ours = L.convex_kl_divergence(P34, TGT34, 0)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    theirs = OL.convex_kl_divergence(P34, TGT34, 0)
  _assert_same(ours, theirs)
  _assert_same(ours, L.generalized_kl_divergence(P34, TGT34, axis=0))


# ---- NumPy references (float64) of the docstring equations ----

def _np_cos(p, t, axis=-1, eps=0.0):
  pn = np.sqrt(np.maximum((p**2).sum(axis, keepdims=True), eps))
  tn = np.sqrt(np.maximum((t**2).sum(axis, keepdims=True), eps))
  return (p / pn * t / tn).sum(axis)


def _np_ntxent(z, y, tau):
  n = len(y)
  s = _np_cos(z[None], z[:, None], eps=np.finfo(np.float32).eps) / tau
  terms = []
  for i in range(n):
    negatives = [s[i, k] for k in range(n) if y[k] != y[i]]
    for j in range(n):
      if j != i and y[j] == y[i]:
        terms.append(-np.log(np.exp(s[i, j]) / (np.exp(s[i, j]) + np.exp(negatives).sum())))
  return np.mean(terms)


def _np_dice(probs, t, alpha=0.5, beta=0.5, smooth=1.0):
  axes = tuple(range(1, probs.ndim - 1))
  inter = (probs * t).sum(axes)
  fp, fn = probs.sum(axes) - inter, t.sum(axes) - inter
  return 1 - (inter + smooth) / (inter + alpha * fp + beta * fn + smooth)  # [batch, classes]


def test_numpy_references():
  f64 = lambda *xs: [np.asarray(x, np.float64) for x in xs]
  p, t, m = f64(P34, T34, MASK34)
  close = lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=2e-5, atol=1e-6)
  close(L.squared_error(P34, T34), (p - t)**2)
  close(L.l2_loss(P34, T34), 0.5 * (p - t)**2)
  e = np.abs(p - t)
  close(L.huber_loss(P34, T34, delta=0.7), np.where(e <= 0.7, 0.5 * e**2, 0.7 * (e - 0.35)))
  close(L.log_cosh(P34, T34), np.log(np.cosh(p - t)))
  close(L.cosine_similarity(P34, T34, axis=0), _np_cos(p, t, axis=0))
  close(L.cosine_distance(P34, T34, where=MASK34), 1 - _np_cos(p * m, t * m))
  close(L.ntxent(EMB, LABELS, 0.3), _np_ntxent(*f64(EMB, LABELS), 0.3))
  a, ps, ng = f64(A43, POS43, NEG43)
  for degree in (1, 2, 3):  # |x|**p: a distance for every degree
    d = lambda x, y, k=degree: ((np.abs(x - y)**k).sum(-1) + 1e-6)**(1 / k)
    close(L.triplet_margin_loss(A43, POS43, NEG43, norm_degree=degree),
          np.maximum(d(a, ps) - d(a, ng) + 1.0, 0))
  lq, tg = f64(LOGP34, TGT34)
  kl = (np.where(tg > 0, tg * (np.log(np.where(tg > 0, tg, 1)) - lq), 0))
  close(L.kl_divergence(LOGP34, TGT34), kl.sum(-1))
  close(L.kl_divergence_with_log_targets(LOGP34, jnp.log(TGT34)), kl.sum(-1))
  close(L.generalized_kl_divergence(LOGP34, TGT34, where=MASK34),
        ((kl + np.exp(lq) - tg) * m).sum(-1))
  s, y, w = f64(SCORES, RELEVANCE, LIST_MASK)
  logq = np.where(w > 0, s, -np.inf)
  with np.errstate(divide="ignore", invalid="ignore"):  # the all-masked list: -inf - -inf
    logq = logq - np.log(np.exp(logq).sum(-1, keepdims=True))
  per_list = -np.where(w > 0, y * logq, 0).sum(-1)
  close(L.ranking_softmax_loss(SCORES, RELEVANCE, where=LIST_MASK), per_list[[0, 2]].mean())
  close(L.ranking_softmax_loss(SCORES, RELEVANCE, where=LIST_MASK, reduce_fn=None), per_list)
  logits, targets = f64(SEG_LOGITS, SEG_TARGETS)
  dice = _np_dice(_softmax_np(logits), targets, alpha=0.2, beta=0.8)
  close(L.dice_loss(SEG_LOGITS, SEG_TARGETS, alpha=0.2, beta=0.8), dice.mean(-1))
  freq = targets.sum((0, 1, 2))
  cw = 1 / (freq**2 + 1e-7)
  close(L.multiclass_generalized_dice_loss(SEG_LOGITS, SEG_TARGETS),
        (_np_dice(_softmax_np(logits), targets) * cw / cw.sum() * 4).mean())
  bl, bt = f64(BIN_LOGITS, BIN_TARGETS)
  close(L.binary_dice_loss(BIN_LOGITS, BIN_TARGETS),
        _np_dice(1 / (1 + np.exp(-bl[..., None])), bt[..., None])[:, 0])


def test_gradients_match_finite_differences_in_float64():
  """jax.grad against a central difference along random directions, in float64."""
  with jax.enable_x64(True):
    rng = np.random.default_rng(1)
    x = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float64)
    p, t = x(3, 4), x(3, 4)
    tgt = jnp.asarray(_softmax_np(rng.normal(size=(3, 4))) * np.array([1, 0, 1, 1]))
    seg = SEG_TARGETS[:1, :2, :2].astype(jnp.float64)
    funcs = [
        (lambda a: L.l2_loss(a, t).sum(), p),
        (lambda a: L.squared_error(a).sum(), p),
        (lambda a: L.huber_loss(a, t, delta=0.8).sum(), p),
        (lambda a: L.log_cosh(a, t).sum(), p),
        (lambda a: L.cosine_similarity(a, t, where=np.asarray(MASK34), epsilon=1e-3).sum(), p),
        (lambda a: L.cosine_distance(a, t, axis=0).sum(), p),
        (lambda a: L.ntxent(a, LABELS, 0.5), x(6, 3)),
        (lambda a: L.triplet_margin_loss(a, t, p, norm_degree=3).sum(), x(3, 4)),
        (lambda a: L.kl_divergence(a, tgt).sum(), jax.nn.log_softmax(p)),
        (lambda a: L.kl_divergence(jax.nn.log_softmax(p), a).sum(), tgt + 0.5),
        (lambda a: L.kl_divergence_with_log_targets(p, a).sum(), t),
        (lambda a: L.generalized_kl_divergence(a, jnp.exp(t)).sum(), p),
        (lambda a: L.ranking_softmax_loss(a, RELEVANCE[:, :4], where=np.asarray(MASK34)), p),
        (lambda a: L.dice_loss(a, seg, alpha=0.3, class_weights=jnp.arange(1.0, 5.0)).sum(),
         x(1, 2, 2, 4)),
        (lambda a: L.binary_dice_loss(a, seg[..., 0]).sum(), x(1, 2, 2)),
        (lambda a: L.multiclass_generalized_dice_loss(a, seg), x(1, 2, 2, 4)),
    ]
    h = 1e-6
    for i, (f, a) in enumerate(funcs):
      v = jnp.asarray(rng.normal(size=(2,) + a.shape))

      @jax.jit
      def check(a, v, f=f):
        slope = jax.vmap(lambda d: jnp.vdot(jax.grad(f)(a), d))(v)
        fd = jax.vmap(lambda d: (f(a + h * d) - f(a - h * d)) / (2 * h))(v)
        return slope, fd

      slope, fd = check(a, v)
      np.testing.assert_allclose(slope, fd, rtol=1e-6, atol=1e-8, err_msg=str(i))


def test_edge_cases_zero_vectors_zero_targets_and_masked_lists():
  # A zero vector: NaN with epsilon=0 (0/0), as optax; 0 with a finite gradient for epsilon>0.
  zero_row = P34.at[1].set(0.0)
  assert np.isnan(L.cosine_similarity(zero_row, T34)[1])
  assert np.isnan(OL.cosine_similarity(zero_row, T34)[1])
  assert L.cosine_similarity(zero_row, T34, epsilon=1e-8)[1] == 0.0
  g = jax.grad(lambda a: L.cosine_similarity(a, T34, epsilon=1e-8).sum())(zero_row)
  assert np.isfinite(g).all()
  # Zero KL targets: the term is 0 even where the prediction is -inf too (optax: NaN), and the
  # gradients (with respect to both arguments) stay finite (optax: NaN for the targets).
  logq = LOGP34.at[:, 1].set(-jnp.inf)
  ours, theirs = L.kl_divergence(logq, TGT34), OL.kl_divergence(logq, TGT34)
  assert np.isnan(theirs).all()
  _assert_same(ours, L.kl_divergence(LOGP34, TGT34))  # column 1 (zero targets) contributes 0
  for argnum in (0, 1):
    g = jax.grad(lambda *a: L.kl_divergence(*a).sum(), argnum)(LOGP34, TGT34)
    assert np.isfinite(g).all()
    assert np.isnan(jax.grad(lambda *a: OL.kl_divergence(*a).sum(), 1)(LOGP34, TGT34)).any()
  log_t = jnp.log(TGT34)  # -inf in column 1
  assert np.isnan(OL.kl_divergence_with_log_targets(LOGP34, log_t)).all()
  np.testing.assert_allclose(L.kl_divergence_with_log_targets(LOGP34, log_t),
                             L.kl_divergence(LOGP34, TGT34), rtol=1e-6)
  g = jax.grad(lambda lt: L.kl_divergence_with_log_targets(LOGP34, lt).sum())(log_t)
  assert np.isfinite(g).all() and (g[:, 1] == 0).all()
  # A list with every item masked leaves the mean, with zero gradients; all masked: 0, not NaN.
  g = jax.grad(lambda s: L.ranking_softmax_loss(s, RELEVANCE, where=LIST_MASK))(SCORES)
  assert np.isfinite(g).all() and (g[1] == 0).all() and (g[0, 3:] == 0).all()
  assert L.ranking_softmax_loss(SCORES, RELEVANCE, where=jnp.zeros((3, 5), bool)) == 0.0
  # NT-Xent without any positive pair: 0/0 = NaN, as optax.
  assert np.isnan(L.ntxent(EMB, jnp.arange(6)))


def test_jit_and_vmap():
  """One jitted function per loss (its first float32 case; non-array arguments static) equals
  the eager value."""
  seen = set()
  for name, args, kwargs in CASES:
    if name in seen or any(a.dtype == jnp.bfloat16 for a in args if isinstance(a, jax.Array)):
      continue
    seen.add(name)
    arrays = [i for i, a in enumerate(args) if isinstance(a, jax.Array)]
    fn = getattr(L, name)

    def call(*xs, fn=fn, args=args, kwargs=kwargs, arrays=arrays):
      full = list(args)
      for i, x in zip(arrays, xs):
        full[i] = x
      return fn(*full, **kwargs)

    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      # XLA fuses the jitted program as it likes: equal to the eager value up to rounding.
      np.testing.assert_allclose(jax.jit(call)(*[args[i] for i in arrays]), call(
          *[args[i] for i in arrays]), rtol=1e-6, atol=1e-6, err_msg=name)
  assert seen == set(NAMES) - {"convex_kl_divergence"}  # a deprecated name of generalized_kl
  # dice_loss on probabilities compiles (optax's eager probability check cannot be traced).
  probs = jax.nn.softmax(SEG_LOGITS)
  jitted = jax.jit(L.dice_loss, static_argnames="apply_softmax")
  np.testing.assert_allclose(jitted(probs, SEG_TARGETS, apply_softmax=False),
                             L.dice_loss(probs, SEG_TARGETS, apply_softmax=False), rtol=1e-6)
  # vmap over a batch of hyperparameters equals a Python loop.
  deltas = jnp.array([0.1, 0.5, 2.0])
  batched = jax.vmap(lambda d: L.huber_loss(P34, T34, delta=d))(deltas)
  for d, row in zip(deltas, batched):
    np.testing.assert_allclose(row, L.huber_loss(P34, T34, delta=float(d)), rtol=1e-6)
  temps = jnp.array([0.1, 0.5])
  batched = jax.vmap(lambda tau: L.ntxent(EMB, LABELS, tau))(temps)
  for tau, value in zip(temps, batched):
    np.testing.assert_allclose(value, L.ntxent(EMB, LABELS, float(tau)), rtol=1e-5)
  # ... and over a batch of inputs, the per-example losses.
  batched = jax.vmap(lambda a, b: L.kl_divergence(a, b, axis=None))(LOGP34, TGT34)
  np.testing.assert_allclose(batched, L.kl_divergence(LOGP34, TGT34), rtol=1e-6)


def test_binary_probabilities_accepted():
  """binary_dice_loss(apply_sigmoid=False) takes probabilities in [0, 1] (optax requires each
  one-channel 'distribution' to sum to 1, so it rejects every probability but 1)."""
  probs = jax.nn.sigmoid(BIN_LOGITS)
  _assert_same(L.binary_dice_loss(probs, BIN_TARGETS, apply_sigmoid=False),
               L.binary_dice_loss(BIN_LOGITS, BIN_TARGETS))
  with pytest.raises(ValueError, match="sum to 1"):
    OL.binary_dice_loss(probs, BIN_TARGETS, apply_sigmoid=False)


BAD = [
    (TypeError, "predictions", lambda: L.squared_error(jnp.arange(3), jnp.ones(3))),
    (ValueError, "targets", lambda: L.l2_loss(jnp.ones(3), jnp.ones(4))),
    (ValueError, "targets", lambda: L.squared_error(jnp.ones((3, 1)), jnp.ones(3))),
    (ValueError, "targets", lambda: L.huber_loss(jnp.ones((3, 1)), jnp.ones(3))),  # broadcast
    (ValueError, "delta", lambda: L.huber_loss(jnp.ones(3), delta=-1.0)),
    (TypeError, "predictions", lambda: L.log_cosh(jnp.ones(3, int))),
    (TypeError, "targets", lambda: L.cosine_similarity(jnp.ones(3), jnp.ones(3, int))),
    (ValueError, "targets", lambda: L.cosine_similarity(jnp.ones((2, 3)), jnp.ones((2, 1)))),
    (ValueError, "targets", lambda: L.cosine_distance(jnp.ones((2, 3)), jnp.ones((4, 3)))),
    (ValueError, "axis", lambda: L.cosine_similarity(jnp.ones(3), jnp.ones(3), axis=1)),
    (ValueError, "epsilon", lambda: L.cosine_similarity(jnp.ones(3), jnp.ones(3), epsilon=-1.)),
    (TypeError, "where", lambda: L.cosine_similarity(jnp.ones(3), jnp.ones(3),
                                                     where=jnp.ones(3, int))),
    (ValueError, "where", lambda: L.kl_divergence(jnp.ones(3), jnp.ones(3), where=jnp.ones(
        4, bool))),
    (TypeError, "targets", lambda: L.kl_divergence(jnp.zeros(3), jnp.array([0, 1, 0]))),
    (TypeError, "log_targets", lambda: L.kl_divergence_with_log_targets(jnp.zeros(3),
                                                                        jnp.zeros(3, int))),
    (ValueError, "targets", lambda: L.generalized_kl_divergence(jnp.ones((2, 3)),
                                                                jnp.ones((2, 1)))),
    (TypeError, "axis", lambda: L.convex_kl_divergence(jnp.ones(3), jnp.ones(3), 0.5)),
    (ValueError, "labels", lambda: L.ntxent(jnp.ones((4, 2)), jnp.zeros(3))),
    (ValueError, "embeddings", lambda: L.ntxent(jnp.ones(4), jnp.zeros(4))),
    (ValueError, "temperature", lambda: L.ntxent(jnp.ones((4, 2)), jnp.zeros(4), 0.0)),
    (ValueError, "negatives", lambda: L.triplet_margin_loss(A43, POS43, NEG43[:2])),
    (ValueError, "norm_degree", lambda: L.triplet_margin_loss(A43, POS43, NEG43,
                                                              norm_degree=-1)),
    (ValueError, "eps", lambda: L.triplet_margin_loss(A43, POS43, NEG43, eps=-1e-6)),
    (ValueError, "axis", lambda: L.triplet_margin_loss(A43, POS43, NEG43, axis=2)),
    (ValueError, "labels", lambda: L.ranking_softmax_loss(SCORES, RELEVANCE[:, :4])),
    (TypeError, "logits", lambda: L.ranking_softmax_loss(RELEVANCE, RELEVANCE)),
    (ValueError, "weights", lambda: L.ranking_softmax_loss(SCORES, RELEVANCE,
                                                           weights=jnp.ones(4))),
    (TypeError, "reduce_fn", lambda: L.ranking_softmax_loss(SCORES, RELEVANCE, reduce_fn="sum")),
    (ValueError, "targets", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS[..., :3])),
    (ValueError, "reduction", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS, reduction="max")),
    (ValueError, "class_weights", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS,
                                                      class_weights=jnp.ones(3))),
    (ValueError, "axis", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS, axis=(1, 3))),
    (ValueError, "alpha", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS, alpha=-0.5)),
    (TypeError, "apply_softmax", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS,
                                                     apply_softmax="no")),
    (ValueError, "predictions", lambda: L.dice_loss(SEG_LOGITS, SEG_TARGETS,
                                                    apply_softmax=False)),
    (ValueError, "predictions", lambda: L.binary_dice_loss(BIN_LOGITS, BIN_TARGETS,
                                                           apply_sigmoid=False)),
    (ValueError, "smooth", lambda: L.binary_dice_loss(BIN_LOGITS, BIN_TARGETS, smooth=-1.0)),
    (TypeError, "predictions", lambda: L.multiclass_generalized_dice_loss(
        SEG_TARGETS.astype(int), SEG_TARGETS)),
    (ValueError, "targets", lambda: L.multiclass_generalized_dice_loss(
        SEG_LOGITS, SEG_TARGETS[:1])),
]


def test_bad_input_names_the_argument():
  for i, (error, match, call) in enumerate(BAD):
    with pytest.raises(error, match=match):
      call()
    del i


def test_bad_shapes_raise_at_trace_time_under_jit():
  """Shapes are static: under jit the error comes while tracing, naming the argument."""
  with pytest.raises(ValueError, match="targets"):
    jax.jit(L.cosine_similarity)(jnp.ones((2, 3)), jnp.ones((2, 1)))
  with pytest.raises(ValueError, match="labels"):
    jax.jit(L.ntxent)(jnp.ones((4, 2)), jnp.zeros(3))
  with pytest.raises(ValueError, match="targets"):
    jax.jit(L.dice_loss)(SEG_LOGITS, SEG_TARGETS[..., :3])
