"""K-FAC (gradtx/curvature/kronecker.py, transforms/kfac.py, optimizers/kfac.py): factors equal the
dense (per-example) empirical Fisher's Kronecker factors on a tiny MLP and CNN, kfac-jax agreement,
periodic inverses under vmap, axis_name, Flax, clipping/schedules, apply_if_finite, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from jaxprs import primitives_inside_cond, primitives_outside_cond

RNG = np.random.default_rng(0)
N = 8  # a 4-6-3 MLP on 8 examples: every check compiles small programs
X = jnp.asarray(RNG.normal(size=(N, 4)), jnp.float32)
Y = jnp.asarray(RNG.integers(0, 3, size=N))
P = {"l1": {"kernel": jnp.asarray(RNG.normal(size=(4, 6)) * 0.5, jnp.float32),
            "bias": jnp.full((6,), 0.1, jnp.float32)},
     "l2": {"kernel": jnp.asarray(RNG.normal(size=(6, 3)) * 0.5, jnp.float32),
            "bias": jnp.zeros((3,), jnp.float32)}}


def logits(p, x):
  h = jnp.tanh(x @ p["l1"]["kernel"] + p["l1"]["bias"])
  return h @ p["l2"]["kernel"] + p["l2"]["bias"]


def loss_example(p, x, y):
  return -jax.nn.log_softmax(logits(p, x[None])[0])[y]


def mlp_loss(p, x=X, y=Y):
  return jnp.mean(jax.vmap(loss_example, (None, 0, 0))(p, x, y))


def _matrix(g, name):  # [W; b], the layer's (d_in + 1, d_out) matrix view
  return jnp.concatenate([g[name]["kernel"], g[name]["bias"][None]], 0)


def _factors(loss, p):
  """{weight leaf: (layer, A, G)}, the arrays computed under jit."""
  layers = gradtx.curvature.find_layers(loss, p)
  arrays = jax.jit(lambda q: {k: v[1:] for k, v in
                               gradtx.curvature.kronecker_factors(loss, q)[1].items()})(p)
  return {k: (layers[k], *arrays[k]) for k in layers}


def test_mlp_factors_equal_the_dense_per_example_fisher():
  factors = _factors(mlp_loss, P)
  per_ex = jax.jit(jax.vmap(jax.grad(loss_example), (None, 0, 0)))(P, X, Y)
  h = np.tanh(np.asarray(X) @ np.asarray(P["l1"]["kernel"]) + np.asarray(P["l1"]["bias"]))
  for name, inputs in (("l1", np.asarray(X)), ("l2", h)):
    layer, a, g = next(f for f in factors.values() if f[0].input_dim == inputs.shape[1])
    assert layer.kind == "dense" and layer.bias is not None
    hom = np.concatenate([inputs, np.ones((N, 1))], 1)
    np.testing.assert_allclose(a, hom.T @ hom / N, rtol=1e-5, atol=1e-6)  # A = E[a a^T]
    gb = np.asarray(per_ex[name]["bias"], np.float64)  # per-example output gradients
    np.testing.assert_allclose(g, gb.T @ gb / N, rtol=1e-5, atol=1e-7)  # G = E[g g^T]
  # One example: the Kronecker product is the exact Fisher block of vec([W; b]).
  one = _factors(lambda p: mlp_loss(p, X[:1], Y[:1]), P)
  grad = jax.grad(mlp_loss)(P, X[:1], Y[:1])
  for layer, a, g in one.values():
    name = "l1" if layer.input_dim == 4 else "l2"
    v = np.asarray(_matrix(grad, name)).reshape(-1)
    np.testing.assert_allclose(np.kron(a, g), np.outer(v, v), rtol=1e-4, atol=1e-6)


def _cnn_loss(p, x, y):
  h = jax.lax.conv_general_dilated(x, p["c1"]["kernel"], (1, 1), "VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  h = jnp.tanh(h + p["c1"]["bias"])  # (N, 3, 3, 3)
  o = jax.lax.conv_general_dilated(h, p["c2"]["kernel"], (1, 1), "VALID",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))[:, 0, 0]
  return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(o), y[:, None], 1))


def test_cnn_factors_equal_patches_and_the_dense_fisher():
  xs = jnp.asarray(RNG.normal(size=(4, 4, 4, 2)), jnp.float32)
  ys = jnp.asarray([0, 1, 2, 1])
  p = {"c1": {"kernel": jnp.asarray(RNG.normal(size=(2, 2, 2, 3)) * 0.5, jnp.float32),
              "bias": jnp.zeros((3,), jnp.float32)},
       "c2": {"kernel": jnp.asarray(RNG.normal(size=(3, 3, 3, 4)) * 0.5, jnp.float32),
              "bias": jnp.zeros((4,), jnp.float32)}}
  f = _factors(lambda q: _cnn_loss(q, xs, ys), p)
  (l1, a1, g1), = [v for v in f.values() if v[0].input_dim == 8]
  assert l1.kind == "conv" and l1.bias is not None and g1.shape == (3, 3)
  x = np.asarray(xs, np.float64)  # KFC: patches in the kernel's (H, W, I) order, summed over t
  patches = np.stack([x[:, i:i + 2, j:j + 2, :].reshape(4, -1) for i in range(3)
                      for j in range(3)], 1).reshape(-1, 8)
  hom = np.concatenate([patches, np.ones((len(patches), 1))], 1)
  np.testing.assert_allclose(a1, hom.T @ hom / 4, rtol=1e-5, atol=1e-5)
  # One example through the second conv (a single output position): the exact Fisher block.
  one = _factors(lambda q: _cnn_loss(q, xs[:1], ys[:1]), p)
  (_, a2, g2), = [v for v in one.values() if v[0].input_dim == 27]
  grad = jax.grad(_cnn_loss)(p, xs[:1], ys[:1])
  v = np.asarray(jnp.concatenate([grad["c2"]["kernel"].reshape(27, 4),
                                  grad["c2"]["bias"][None]])).reshape(-1)
  np.testing.assert_allclose(np.kron(a2, g2), np.outer(v, v), rtol=1e-4, atol=1e-6)


def _kfac_jax_compatible():
  """kfac-jax 0.0.8 predates jax 0.10's `get_bind_params` (params only): patch its one user."""
  from kfac_jax._src import tag_graph_matcher as tgm

  def eval_eqn(eqn, in_values):
    with eqn.ctx.manager:
      out = eqn.primitive.bind(*in_values, **eqn.primitive.get_bind_params(eqn.params))
    return out if isinstance(out, list) else [out]

  tgm.eval_jaxpr_eqn = eval_eqn


def test_direction_agrees_with_kfac_jax():
  try:  # absent, or failing to import / patch on this jax: skip (it is a test oracle only)
    import kfac_jax  # pylint: disable=import-outside-toplevel
    _kfac_jax_compatible()
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f"kfac_jax unusable here: {e!r}")

  def loss_kj(p, batch):
    o = logits(p, batch[0])
    kfac_jax.register_softmax_cross_entropy_loss(o, batch[1])
    return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(o), batch[1][:, None], 1))

  lr, damping, decay = 0.1, 1e-2, 0.9
  opt = kfac_jax.Optimizer(
      value_and_grad_func=jax.value_and_grad(loss_kj), l2_reg=0.0,
      use_adaptive_learning_rate=False, use_adaptive_momentum=False,
      use_adaptive_damping=False, learning_rate_schedule=lambda s: lr,
      momentum_schedule=lambda s: 0.0, damping_schedule=lambda s: damping, curvature_ema=decay,
      inverse_update_period=1, estimation_mode="fisher_empirical", multi_device=False,
      include_norms_in_stats=False, num_burnin_steps=0)
  key = jax.random.PRNGKey(0)
  copy = lambda t: jax.tree.map(jnp.copy, t)  # kfac-jax donates its inputs
  kj_state = opt.init(copy(P), key, (X, Y))
  # kfac-jax's "fisher_empirical" divides the output-gradient statistics by N once more than
  # the paper's E[g g^T] (its comment: so they are normalised by batch_size**2); hence its
  # (lr, damping) is gradtx's (N lr, N damping), with the same curvature EMA.
  tx = gradtx.kfac(N * lr, damping=N * damping, curvature_decay=decay, inverse_update_period=1)
  state = tx.init(P)
  step = jax.jit(lambda g, s, p: tx.update(g, s, p, value_fn=mlp_loss))
  params = P
  for i in range(2):
    new_kj, kj_state, _ = opt.step(copy(params), kj_state, key, batch=(X, Y),
                                   global_step_int=i)
    u, state = step(jax.grad(mlp_loss)(params), state, params)
    want = jax.flatten_util.ravel_pytree(new_kj)[0] - jax.flatten_util.ravel_pytree(params)[0]
    got = jax.flatten_util.ravel_pytree(u)[0]
    assert float(jnp.linalg.norm(got - want) / jnp.linalg.norm(want)) < 1e-4
    params = new_kj


def test_trains_under_jit_with_clipping_schedule_apply_if_finite_and_orbax(tmp_path):
  tx = gradtx.apply_if_finite(gradtx.chain(
      gradtx.clip_by_global_norm(10.0),
      gradtx.kfac(gradtx.linear_schedule(0.5, 0.2, 10), damping=1e-2, momentum=0.5,
                  inverse_update_period=2)), 3)
  state = tx.init(P)

  @jax.jit
  def step(p, s, x):
    loss = lambda q: mlp_loss(q, x)
    u, s = tx.update(jax.grad(loss)(p), s, p, value_fn=loss)
    return gradtx.apply_updates(p, u), s

  params = P
  params, state = step(params, state, X.at[0, 0].set(jnp.nan))  # a non-finite batch: skipped
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(P)))
  for _ in range(5):
    params, state = step(params, state, X)
  # Orbax round trip of the state mid-period (count 5: the inverses are stale), then two steps
  # from the restored copy equal two steps from the original, bit for bit.
  ocp = pytest.importorskip("orbax.checkpoint")
  saved = {"params": params, "opt_state": state}
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(tmp_path / "ckpt", saved)
  with ocp.StandardCheckpointer() as checkpointer:
    restored = checkpointer.restore(
        tmp_path / "ckpt", jax.tree.map(ocp.utils.to_shape_dtype_struct, saved))
  assert jax.tree.structure(restored) == jax.tree.structure(saved)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(saved)):
    assert a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()
  p1, s1, p2, s2 = params, state, restored["params"], restored["opt_state"]
  for _ in range(2):
    p1, s1 = step(p1, s1, X)
    p2, s2 = step(p2, s2, X)
  for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
  assert float(mlp_loss(p1)) < 0.5 * float(mlp_loss(P))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(s1))


def test_inverses_stay_periodic_under_a_vmapped_damping_sweep():
  tx_of = lambda lam: gradtx.transforms.scale_by_kfac(lam, inverse_update_period=4)
  g = jax.grad(mlp_loss)(P)

  def update(lam, count):
    tx = tx_of(lam)
    s = tx.init(P)._replace(count=count)
    return tx.update(g, s, P, value_fn=mlp_loss)[0]

  jaxpr = jax.make_jaxpr(jax.vmap(update, (0, None)))(jnp.asarray([1e-2, 1e-1]), jnp.int32(0))
  assert "cholesky" in primitives_inside_cond(jaxpr)
  assert "cholesky" not in primitives_outside_cond(jaxpr)
  got = jax.jit(jax.vmap(update, (0, None)))(jnp.asarray([1e-2, 1e-1]), jnp.int32(0))
  one = jax.jit(update)
  for i, lam in enumerate((1e-2, 1e-1)):
    want = one(jnp.float32(lam), jnp.int32(0))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-7)


def test_axis_name_averages_the_factors():
  tx = gradtx.transforms.scale_by_kfac(1e-2, axis_name="data")
  xs, ys = X.reshape(2, N // 2, 4), Y.reshape(2, N // 2)

  def local(x, y):
    loss = lambda p: mlp_loss(p, x, y)
    return tx.update(jax.grad(mlp_loss)(P), tx.init(P), P, value_fn=loss)[1]

  states = jax.jit(jax.vmap(local, axis_name="data"))(xs, ys)
  plain = gradtx.transforms.scale_by_kfac(1e-2)
  full = jax.jit(lambda p: plain.update(jax.grad(mlp_loss)(p), plain.init(p), p,
                                       value_fn=mlp_loss)[1])(P)
  # Equal halves: the mean of the halves' A is the full batch's A; G likewise.
  np.testing.assert_allclose(states.a["l1"]["kernel"][0], full.a["l1"]["kernel"], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(states.g["l2"]["kernel"][1], full.g["l2"]["kernel"], rtol=1e-4,
                             atol=1e-6)


def test_adaptive_step_and_damping_reduce_the_loss():
  tx = gradtx.kfac(None, damping=1.0, adaptive_damping=True, damping_adaptation_interval=1)
  state = tx.init(P)
  step = jax.jit(lambda g, s, p: tx.update(g, s, p, value_fn=mlp_loss))
  params = P
  for _ in range(3):
    u, state = step(jax.grad(mlp_loss)(params), state, params)
    params = gradtx.apply_updates(params, u)
  assert float(mlp_loss(params)) < float(mlp_loss(P))
  assert float(state[0].damping) != 1.0


def test_flax_nnx_and_linen():
  nnx = pytest.importorskip("flax.nnx")
  linen = pytest.importorskip("flax.linen")
  train_state = pytest.importorskip("flax.training.train_state")
  x = jnp.asarray(RNG.normal(size=(8, 4, 4, 1)), jnp.float32)
  y = jnp.asarray(RNG.integers(0, 2, size=8))

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.conv = nnx.Conv(1, 2, (3, 3), rngs=rngs)
      self.dense = nnx.Linear(32, 2, rngs=rngs)

    def __call__(self, x):
      return self.dense(jnp.tanh(self.conv(x)).reshape(x.shape[0], -1))

  ce = lambda o: jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(o), y[:, None], 1))
  model = Net(nnx.Rngs(0))
  opt = nnx.Optimizer(model, gradtx.kfac(0.2, damping=1e-2), wrt=nnx.Param)
  graphdef, _ = nnx.split(model)

  @nnx.jit
  def nnx_step(model, opt):
    params = nnx.state(model, nnx.Param)
    value_fn = lambda p: ce(nnx.merge(graphdef, p)(x))
    grads = jax.grad(value_fn)(params)
    opt.update(model, grads, value_fn=value_fn)

  first = float(ce(model(x)))
  for _ in range(3):
    nnx_step(model, opt)
  assert float(ce(model(x))) < first

  class LNet(linen.Module):
    @linen.compact
    def __call__(self, x):
      h = jnp.tanh(linen.Conv(2, (3, 3))(x)).reshape(x.shape[0], -1)
      return linen.Dense(2)(h)

  net = LNet()
  st = train_state.TrainState.create(apply_fn=net.apply, params=net.init(jax.random.key(0), x),
                                     tx=gradtx.kfac(0.2, damping=1e-2))

  @jax.jit
  def linen_step(s):
    value_fn = lambda p: ce(s.apply_fn(p, x))
    # TrainState.apply_gradients passes no extra arguments to tx.update: call it here.
    u, opt_state = s.tx.update(jax.grad(value_fn)(s.params), s.opt_state, s.params,
                               value_fn=value_fn)
    return s.replace(step=s.step + 1, params=gradtx.apply_updates(s.params, u),
                     opt_state=opt_state)

  first = float(ce(net.apply(st.params, x)))
  for _ in range(3):
    st = linen_step(st)
  assert float(ce(net.apply(st.params, x))) < first


def test_bad_input_and_missing_value_fn():
  with pytest.raises(ValueError, match="damping"):
    gradtx.kfac(0.1, damping=0.0)
  with pytest.raises(ValueError, match="inverse_update_period"):
    gradtx.kfac(0.1, inverse_update_period=0)
  with pytest.raises(ValueError, match="curvature_decay"):
    gradtx.kfac(0.1, curvature_decay=1.0)
  with pytest.raises(ValueError, match="adaptive_damping"):
    gradtx.transforms.scale_by_kfac(adaptive_damping=True)
  tx = gradtx.kfac(0.1)
  g = jax.grad(mlp_loss)(P)
  with pytest.raises(ValueError, match="value_fn"):
    jax.eval_shape(lambda q: tx.update(g, tx.init(q), q), P)
  # A 2-D leaf that is no layer's weight (an embedding gathered by index): named, with a hint.
  p = {"emb": jnp.ones((4, 3)), "w": jnp.ones((3, 2))}
  loss = lambda p: jnp.mean(p["emb"][jnp.asarray([0, 2])] @ p["w"])
  with pytest.raises(ValueError, match=r"\['emb'\].*layer_specs"):  # raised while tracing
    jax.eval_shape(lambda q: tx.update(jax.grad(loss)(q), tx.init(q), q, value_fn=loss), p)
  specs = {"emb": "diagonal", "w": None}
  tx = gradtx.kfac(0.1, layer_specs=specs)
  u, s = jax.eval_shape(lambda q: tx.update(jax.grad(loss)(q), tx.init(q), q, value_fn=loss), p)
  assert s[0].nu["emb"].shape == (4, 3) and s[0].a["w"].shape == (4, 4)
  with pytest.raises(ValueError, match="layer_specs"):
    gradtx.kfac(0.1, layer_specs={"emb": "lstm", "w": None}).init(p)
