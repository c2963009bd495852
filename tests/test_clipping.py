"""Tests of the clipping family beyond the generic registry tests: the Theano clip_norms
transcription, the clipping boundary, None leaves, dtypes and validation (clipping.py); AGC
against optax and Brock et al. eq. 3 (unitwise.py); per-example clipping against optax and
Abadi et al. (per_example.py); scale_gradient against optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from trees import STEPS, make_params


def clip_norms(gs, c):
  """Deep Learning with Theano, update rules chapter, transcribed to NumPy:
  norm = T.sqrt(sum([T.sum(g**2) for g in gs])); T.switch(T.ge(norm, c), g*c/norm, g)."""
  norm = np.sqrt(sum([np.sum(g**2) for g in gs]))
  return [np.where(norm >= c, g * c / norm, g) for g in gs]


def _tree(scale, seed=0):
  rng = np.random.default_rng(seed)
  return {"a": (jnp.asarray(scale * rng.normal(size=3), jnp.float32),
                jnp.asarray(scale * rng.normal(size=(2, 5)), jnp.float32)),
          "b": jnp.asarray(scale * rng.normal(), jnp.float32)}


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("max_norm", [0.5, 5.0])
def test_clip_by_global_norm_equals_theano_clip_norms(scale, max_norm):
  g = _tree(scale)
  tx = gradtx.clip_by_global_norm(max_norm)
  u, _ = tx.update(g, tx.init(g))
  want = clip_norms([np.asarray(x, np.float64) for x in jax.tree.leaves(g)], max_norm)
  for a, b in zip(jax.tree.leaves(u), want):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert float(gradtx.global_norm(u)) <= max_norm * (1 + 1e-6)


def test_clip_by_global_norm_at_the_boundary_matches_theano():
  g = {"a": jnp.asarray([3.0]), "b": jnp.asarray([4.0])}  # norm exactly 5
  tx = gradtx.clip_by_global_norm(5.0)
  u, _ = tx.update(g, tx.init(g))
  want = clip_norms([np.asarray([3.0]), np.asarray([4.0])], 5.0)
  np.testing.assert_allclose([u["a"][0], u["b"][0]], [w[0] for w in want], rtol=1e-7)


def test_clip_by_global_norm_keeps_direction_and_zero_is_safe():
  g = {"a": jnp.asarray([30.0, -40.0])}
  tx = gradtx.clip_by_global_norm(1.0)
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(u["a"], [0.6, -0.8], rtol=1e-6)
  z, _ = tx.update({"a": jnp.zeros(2)}, tx.init(g))
  np.testing.assert_array_equal(z["a"], [0.0, 0.0])


def test_clip_by_block_rms_is_per_leaf():
  g = {"big": jnp.asarray([3.0, -3.0]), "small": jnp.asarray([0.1, 0.2])}
  tx = gradtx.clip_by_block_rms(1.0)
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(u["big"], [1.0, -1.0], rtol=1e-6)
  np.testing.assert_array_equal(u["small"], g["small"])


def test_clip_elementwise():
  tx = gradtx.clip(0.5)
  u, _ = tx.update(jnp.asarray([-2.0, 0.25, 0.5, 7.0]), tx.init(None))
  np.testing.assert_array_equal(u, [-0.5, 0.25, 0.5, 0.5])
  tx0 = gradtx.clip(0.0)
  np.testing.assert_array_equal(tx0.update(jnp.asarray([1.0, -1.0]), tx0.init(None))[0], [0, 0])


@pytest.mark.parametrize("tx", [gradtx.clip(0.1), gradtx.clip_by_global_norm(0.1),
                                gradtx.clip_by_block_rms(0.1)], ids=["clip", "global", "block"])
def test_none_leaves_and_bf16(tx):
  g = {"w": 3 * jnp.ones(3, jnp.bfloat16), "frozen": None}
  u, state = tx.update(g, tx.init(g))
  assert u["frozen"] is None and u["w"].dtype == jnp.bfloat16
  assert state == gradtx.EmptyState()


@pytest.mark.parametrize("factory", [gradtx.clip, gradtx.clip_by_global_norm,
                                     gradtx.clip_by_block_rms])
def test_scalar_array_and_traced_hyperparameters(factory):
  g = {"w": 3 * jnp.ones(3, jnp.bfloat16)}
  tx = factory(jnp.asarray(0.1, jnp.float32))  # f32 array on bf16 updates: bf16 out
  assert tx.update(g, tx.init(g))[0]["w"].dtype == jnp.bfloat16

  def f(h):
    t = factory(h)
    return t.update(g, t.init(g))[0]["w"]

  out = jax.vmap(f)(jnp.asarray([0.1, 100.0]))
  np.testing.assert_allclose(np.asarray(out[1], np.float32), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("factory,arg,value,exc,match", [
    (gradtx.clip, "max_delta", -1.0, ValueError, r"max_delta must be in \[0, inf\]"),
    (gradtx.clip, "max_delta", "1", TypeError, "max_delta"),
    (gradtx.clip, "max_delta", jnp.ones(2), ValueError, "max_delta.*jax.vmap"),
    (gradtx.clip, "max_delta", float("inf"), ValueError, "max_delta must be finite"),
    (gradtx.clip_by_global_norm, "max_norm", -1.0, ValueError,
     r"^gradtx.clip_by_global_norm: max_norm must be in \[0, inf\], got -1.0.$"),
    (gradtx.clip_by_global_norm, "max_norm", lambda t: 1.0, TypeError, "max_norm"),
    (gradtx.clip_by_global_norm, "max_norm", jnp.ones(3), ValueError, "max_norm.*jax.vmap"),
    (gradtx.clip_by_block_rms, "threshold", -1.0, ValueError, r"threshold must be in \[0, inf\]"),
    (gradtx.clip_by_block_rms, "threshold", None, TypeError, "threshold"),
    (gradtx.clip_by_block_rms, "threshold", jnp.ones(2), ValueError, "threshold.*jax.vmap"),
])
def test_validation(factory, arg, value, exc, match):
  with pytest.raises(exc, match=match):
    factory(**{arg: value})


# --- adaptive_grad_clip, unitwise_norm / unitwise_clip (gradtx/transforms/unitwise.py) ----------

from state_audit import describe  # noqa: E402  (class names, fields, shapes, dtypes)


def _unit_axes(ndim, squeezed_ndim):
  """The unit axes of Brock et al.'s AGC for each weight layout (None: the whole leaf)."""
  if squeezed_ndim <= 1:
    return None
  return {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}[ndim]


def agc_reference(g, w, clipping, eps):
  """Brock, De, Smith & Simonyan 2021 ("High-Performance Large-Scale Image Recognition Without
  Normalization"), eq. 3, in float64: G_i <- lambda ||W_i||*_F / ||G_i||_F G_i if
  ||G_i||_F / ||W_i||*_F > lambda, else G_i, with ||W_i||* = max(||W_i||_F, eps)."""
  g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
  axes = _unit_axes(g.ndim, np.squeeze(g).ndim)
  g_norm = np.sqrt(np.sum(g**2, axis=axes, keepdims=True))
  w_star = np.maximum(np.sqrt(np.sum(w**2, axis=axes, keepdims=True)), eps)
  return np.where(g_norm / w_star > clipping, clipping * w_star / g_norm * g, g)


def _agc_params():
  params = make_params()
  params["bias"] = jnp.zeros(3)  # zero-initialised: eps keeps it from freezing
  params["conv"] = jnp.asarray(np.random.default_rng(5).normal(size=(2, 2, 1, 3)), jnp.float32)
  return params


def _agc_grads():
  rng = np.random.default_rng(7)
  params = _agc_params()
  # Per-step scales from tiny to large, so that some units are clipped and some are not.
  return [jax.tree.map(lambda p, s=s: jnp.asarray(s * rng.normal(size=p.shape), jnp.float32),
                       params) for s in np.geomspace(1e-3, 3.0, STEPS + 2)]


def _run(tx, grads, params, jit=True):
  state = tx.init(params)
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, params)
    params = jax.tree.map(lambda p, x: p + x, params, u)
    out.append(u)
  return out, state, params


def test_adaptive_grad_clip_matches_optax_bit_identically_over_20_steps():
  grads = _agc_grads()
  got, gstate, gparams = _run(gradtx.chain(gradtx.adaptive_grad_clip(0.1), gradtx.scale(-0.1)),
                              grads, _agc_params())
  want, ostate, oparams = _run(optax.chain(optax.adaptive_grad_clip(0.1), optax.scale(-0.1)),
                               grads, _agc_params())
  assert len(got) > 20
  for u, w in zip(got, want):
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(w)):
      np.testing.assert_array_equal(a, b)
  assert describe(gstate) == describe(ostate) and gstate[0] == gradtx.EmptyState()
  assert jax.tree.structure(gparams) == jax.tree.structure(oparams)


@pytest.mark.parametrize("clipping,eps", [(0.1, 1e-3), (0.01, 0.5)])
def test_adaptive_grad_clip_equals_brock_eq3(clipping, eps):
  params = _agc_params()
  tx = gradtx.adaptive_grad_clip(clipping, eps)
  clipped = 0
  for g in _agc_grads()[::4]:
    u, _ = tx.update(g, tx.init(params), params)
    for gi, wi, ui in zip(jax.tree.leaves(g), jax.tree.leaves(params), jax.tree.leaves(u)):
      want = agc_reference(gi, wi, clipping, eps)
      np.testing.assert_allclose(ui, want, rtol=1e-5, atol=1e-7)
      clipped += int(np.sum(np.abs(np.asarray(ui) - np.asarray(gi)) > 1e-7))
  assert clipped > 0


def test_adaptive_grad_clip_axis_and_unitwise_helpers_match_optax():
  rng = np.random.default_rng(3)
  for shape in [(), (4,), (1, 5), (3, 4), (2, 3, 4), (2, 2, 3, 4), (2, 2, 2, 3, 4)]:
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    np.testing.assert_array_equal(gradtx.transforms.unitwise_norm(x),
                                  optax.transforms.unitwise_norm(x))
  x = jnp.asarray(rng.normal(size=(3, 4, 5)), jnp.float32)
  for axis in (1, (0, 2), -1):
    np.testing.assert_array_equal(gradtx.transforms.unitwise_norm(x, axis=axis),
                                  optax.transforms.unitwise_norm(x, axis=axis))
  with pytest.raises(ValueError, match="axis"):
    gradtx.transforms.unitwise_norm(jnp.ones((2,) * 6))
  g_norm, max_norm = gradtx.transforms.unitwise_norm(x), jnp.full(x.shape, 2.0)
  np.testing.assert_array_equal(gradtx.transforms.unitwise_clip(g_norm, max_norm, x),
                                optax.transforms.unitwise_clip(g_norm, max_norm, x))
  with pytest.raises(ValueError, match="same shape"):
    gradtx.transforms.unitwise_clip(g_norm, jnp.ones(3), x)
  params, g = {"w": x + 1.0}, {"w": 3.0 * x}
  for axis in (1, (0, 2)):
    got = gradtx.adaptive_grad_clip(0.05, axis=axis).update(g, gradtx.EmptyState(), params)[0]
    want = optax.adaptive_grad_clip(0.05, axis=axis).update(g, optax.EmptyState(), params)[0]
    np.testing.assert_array_equal(got["w"], want["w"])


def test_adaptive_grad_clip_eager_jit_vmap_over_clipping():
  params, grads = _agc_params(), _agc_grads()[-4:]
  tx = gradtx.chain(gradtx.adaptive_grad_clip(0.1), gradtx.scale(-0.1))
  eager, _, _ = _run(tx, grads, params, jit=False)
  jitted, _, _ = _run(tx, grads, params)
  for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)

  @jax.jit
  def one_step(clipping, g):
    t = gradtx.adaptive_grad_clip(clipping)
    return t.update(g, t.init(params), params)[0]

  clippings = jnp.asarray([0.01, 0.1, 1e4])
  batched = jax.vmap(one_step, in_axes=(0, None))(clippings, grads[-1])
  for i, c in enumerate(clippings):
    want = gradtx.adaptive_grad_clip(float(c)).update(grads[-1], gradtx.EmptyState(), params)[0]
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(want)):
      np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-8)
  # A large enough ratio clips nothing.
  for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(grads[-1])):
    np.testing.assert_array_equal(a[2], b)


def test_adaptive_grad_clip_none_leaves_bf16_and_errors():
  tx = gradtx.adaptive_grad_clip(0.1)
  params = {"w": jnp.ones(3, jnp.bfloat16), "frozen": jnp.ones(2)}
  u, state = tx.update({"w": 3 * jnp.ones(3, jnp.bfloat16), "frozen": None}, tx.init(params),
                       params)
  assert u["frozen"] is None and u["w"].dtype == jnp.bfloat16 and state == gradtx.EmptyState()
  with pytest.raises(ValueError, match="params"):
    tx.update({"w": jnp.ones(3)}, state)
  with pytest.raises(ValueError, match="structure"):
    tx.update({"w": jnp.ones(3)}, state, {"v": jnp.ones(3)})


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(clipping=-0.1), ValueError, r"^gradtx.adaptive_grad_clip: clipping must be in \[0, inf"),
    (dict(clipping="0.1"), TypeError, "clipping"),
    (dict(clipping=jnp.ones(2)), ValueError, "clipping.*jax.vmap"),
    (dict(clipping=float("nan")), ValueError, "clipping"),
    (dict(clipping=0.1, eps=-1.0), ValueError, "eps"),
    (dict(clipping=0.1, axis=1.5), TypeError, "axis"),
])
def test_adaptive_grad_clip_validation(kwargs, exc, match):
  with pytest.raises(exc, match=match):
    gradtx.adaptive_grad_clip(**kwargs)


def test_adaptive_grad_clip_state_names_as_optax():
  assert gradtx.AdaptiveGradClipState is gradtx.EmptyState
  assert optax.AdaptiveGradClipState is optax.EmptyState


# --- per_example_global_norm_clip, per_example_layer_norm_clip (transforms/per_example.py) -------


def _batched_grads(batch=6):
  rng = np.random.default_rng(11)
  scales = np.asarray([0.0, 0.05, 0.5, 1.0, 3.0, 10.0])[:batch]
  def leaf(*shape):
    x = rng.normal(size=(batch, *shape))
    return jnp.asarray(x * scales.reshape((batch,) + (1,) * len(shape)), jnp.float32)
  return {"a": (leaf(3), leaf(2, 5)), "b": {"c": leaf(), "d": leaf(4, 1, 3)}}


def dp_clip_reference(grads, c):
  """Abadi et al. 2016, Algorithm 1 ("clip gradient"), in float64: each example's gradient
  divided by max(1, ||g_b||_2 / C), then summed over the batch."""
  leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(grads)]
  norms = np.sqrt(sum(np.sum(x.reshape(len(x), -1) ** 2, axis=1) for x in leaves))
  with np.errstate(divide="ignore", invalid="ignore"):
    mult = np.where(norms > c, c / norms, 1.0)
  mult = np.nan_to_num(mult, nan=1.0)
  return [np.tensordot(mult, x, axes=1) for x in leaves], int(np.sum(mult < 1.0))


@pytest.mark.parametrize("c", [0.0, 0.7, 5.0, float("inf")])
def test_per_example_global_norm_clip_matches_optax_and_abadi(c):
  grads = _batched_grads()
  got, n = gradtx.per_example_global_norm_clip(grads, c)
  want, wn = optax.per_example_global_norm_clip(grads, c)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  assert n.dtype == wn.dtype == jnp.int32 and int(n) == int(wn)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b)
  ref, ref_n = dp_clip_reference(grads, c)
  assert int(n) == ref_n
  for a, b in zip(jax.tree.leaves(got), ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_per_example_layer_norm_clip_matches_optax_jit_and_vmap():
  grads = _batched_grads()
  f = jax.jit(gradtx.per_example_layer_norm_clip, static_argnames="uniform")
  for uniform in (True, False):
    for c in (0.0, 0.9, 4.0):
      want = optax.per_example_layer_norm_clip(grads, c, uniform=uniform)
      eager = gradtx.per_example_layer_norm_clip(grads, c, uniform=uniform)
      assert jax.tree.structure(eager) == jax.tree.structure(want)
      for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(want)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
      # Under jit XLA fuses the norm and the tensordot differently from optax's eager ops:
      # equal up to float32 rounding.
      for a, b in zip(jax.tree.leaves(f(grads, c, uniform=uniform)), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  one = [grads["a"][1]]  # a single leaf: the same as the global-norm clip
  for a, b in zip(jax.tree.leaves(gradtx.per_example_layer_norm_clip(one, 0.9)),
                  jax.tree.leaves(gradtx.per_example_global_norm_clip(one, 0.9))):
    np.testing.assert_array_equal(np.ravel(a), np.ravel(b))
  cs = jnp.asarray([0.1, 1.0, 100.0])
  batched, counts = jax.vmap(gradtx.per_example_global_norm_clip, in_axes=(None, 0))(grads, cs)
  for i, c in enumerate(cs):
    s, n = gradtx.per_example_global_norm_clip(grads, float(c))
    assert int(counts[i]) == int(n)
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(s)):
      np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn,arg", [(gradtx.per_example_global_norm_clip, "l2_norm_clip"),
                                    (gradtx.per_example_layer_norm_clip, "global_l2_norm_clip")])
def test_per_example_validation(fn, arg):
  grads = _batched_grads()
  with pytest.raises(ValueError, match=arg):
    fn(grads, -1.0)
  with pytest.raises(ValueError, match=arg):
    fn(grads, float("nan"))
  with pytest.raises(ValueError, match="batch dimension"):
    fn({"a": jnp.ones((3, 2)), "b": jnp.ones((4,))}, 1.0)
  with pytest.raises(ValueError, match="batch dimension"):
    fn([jnp.ones(())], 1.0)


# --- scale_gradient (gradtx/transforms/clipping.py; top level only, as optax) ------------------


def test_scale_gradient_matches_optax():
  x = {"a": jnp.asarray([0.3, -1.2]), "b": jnp.asarray(2.0)}

  def loss(lib, s):
    return lambda x: sum(jnp.sum(jnp.sin(v) * 3.0) for v in jax.tree.leaves(lib.scale_gradient(x, s)))

  for s in (0.0, 1.0, 0.5, -2.0, jnp.asarray(0.25)):
    assert jax.tree.leaves(gradtx.scale_gradient(x, s))[0] is not None
    got, want = jax.grad(loss(gradtx, s))(x), jax.grad(loss(optax, s))(x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_array_equal(a, b)
  assert gradtx.scale_gradient(x, 1.0) is x
  # A traced scale (optax's `scale == 1.0` needs a concrete value): jit and vmap work.
  g = jax.jit(lambda s: jax.grad(loss(gradtx, s))(x))(0.5)
  np.testing.assert_allclose(g["a"], 1.5 * jnp.cos(x["a"]), rtol=1e-6)
  gs = jax.vmap(lambda s: jax.grad(loss(gradtx, s))(x)["b"])(jnp.asarray([0.0, 1.0, 2.0]))
  np.testing.assert_allclose(gs, 3.0 * jnp.cos(2.0) * jnp.asarray([0.0, 1.0, 2.0]), rtol=1e-6)
