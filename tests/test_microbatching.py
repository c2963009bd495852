"""gradtx.microbatching: microbatch, micro_vmap, micro_grad, reshape_batch_axis, Accumulator and
AccumulationType against optax (bit-identical: the same loop, split and accumulation order) and
against the un-microbatched function (sums and means of per-example results, the full-batch
gradient of a mean loss), for each accumulation type, argnums/argnames/in_axes,
num_real_microbatches (Python and traced), jit and vmap, and bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

optax = pytest.importorskip("optax")

M = gradtx.microbatching
OM = optax.microbatching
K = M.AccumulationType
OK = OM.AccumulationType

B, MB = 12, 3  # a batch of 12 examples in 4 microbatches of 3
NMB = B // MB


def _kinds(acc_tree, module):
  """The same accumulator tree in `module`'s AccumulationType."""
  return jax.tree.map(lambda k: module.AccumulationType[k.name], acc_tree)


def _data(seed=0, batch=B):
  ks = jax.random.split(jax.random.key(seed), 3)
  return (jax.random.normal(ks[0], (3,)),  # params
          jax.random.normal(ks[1], (batch, 3)),  # features
          jax.random.normal(ks[2], (batch,)))  # targets


def _loss(w, x, y):
  """Mean squared error of a linear model over the examples given (any batch size)."""
  return jnp.mean((x @ w - y) ** 2)


def _outputs(w, x, y):
  """Several per-batch outputs: a sum, per-example values, a mean and a nested pair."""
  r = x @ w - y
  return {"sum": jnp.sum(r ** 2), "each": r, "mean": jnp.mean(jnp.abs(r)),
          "pair": (jnp.sum(x, axis=0), jnp.max(r))}


ACC = {"sum": K.SUM, "each": K.CONCAT, "mean": K.MEAN, "pair": (K.RUNNING_MEAN, K.SUM)}


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64))


def _microbatches(x, n):
  """The microbatches of the examples as `reshape_batch_axis` splits them (column-major):
  microbatch i holds examples i, i + n, i + 2n, ..."""
  return [x[i::n] for i in range(n)]


# ----------------------------------------------------------------------------------------------
# The names and types are optax's
# ----------------------------------------------------------------------------------------------

def test_names_and_types_match_optax():
  assert gradtx.microbatch is M.microbatch  # one object, as optax.microbatch
  assert optax.microbatch is OM.microbatch
  assert [(m.name, m.value) for m in K] == [(m.name, m.value) for m in OK]
  assert ([f.name for f in dataclasses.fields(M.Accumulator)]
          == [f.name for f in dataclasses.fields(OM.Accumulator)])
  assert M.Accumulator.__dataclass_params__.frozen
  w, x, y = _data()
  _, ours = M.micro_grad(_loss, batch_argnums=(1, 2))(w, x, y)
  _, theirs = OM.micro_grad(_loss, batch_argnums=(1, 2))(w, x, y)
  assert type(ours).__name__ == type(theirs).__name__ == "Aux"
  assert ours._fields == theirs._fields


# ----------------------------------------------------------------------------------------------
# reshape_batch_axis
# ----------------------------------------------------------------------------------------------

def test_reshape_batch_axis_matches_optax_and_numpy():
  x = np.arange(2 * 12 * 5, dtype=np.float32).reshape(2, 12, 5)
  tree = {"a": jnp.asarray(x), "b": (jnp.asarray(x[..., 0]),)}
  ours = M.reshape_batch_axis(tree, 4, axis=1)
  _assert_trees_equal(ours["a"], OM.reshape_batch_axis(tree, 4, axis=1)["a"])
  np.testing.assert_array_equal(ours["a"], x.reshape(2, 3, 4, 5, order="F"))
  # microbatch i (index along the new axis) holds the examples i, i + 3, i + 6, i + 9
  np.testing.assert_array_equal(ours["a"][:, 1], x[:, 1::3])
  np.testing.assert_array_equal(ours["b"][0], x[..., 0].reshape(2, 3, 4, order="F"))
  # gradtx also counts a negative axis from the end (optax's shape arithmetic needs axis >= 0)
  _assert_trees_equal(M.reshape_batch_axis(tree["a"], 4, axis=-2), ours["a"])


# ----------------------------------------------------------------------------------------------
# microbatch: each accumulation type, optax parity and the un-microbatched function
# ----------------------------------------------------------------------------------------------

def test_accumulation_types_match_optax_and_the_full_batch():
  w, x, y = _data()
  ours = jax.jit(M.microbatch(_outputs, (1, 2), MB, ACC))(w, x, y)
  theirs = jax.jit(OM.microbatch(_outputs, (1, 2), MB, _kinds(ACC, OM)))(w, x, y)
  _assert_trees_equal(ours, theirs)  # same split, loop and accumulation order: bit-identical

  full = _outputs(w, x, y)
  parts = [_outputs(w, xi, yi) for xi, yi in zip(_microbatches(x, NMB), _microbatches(y, NMB))]
  np.testing.assert_array_equal(ours["each"], full["each"])  # CONCAT: the examples' order
  np.testing.assert_allclose(ours["sum"], full["sum"], rtol=1e-5)  # SUM of per-example sums
  np.testing.assert_allclose(ours["mean"], full["mean"], rtol=1e-5)  # MEAN of equal-size means
  np.testing.assert_allclose(ours["pair"][0], np.mean([p["pair"][0] for p in parts], 0),
                             rtol=1e-5, atol=1e-6)  # RUNNING_MEAN
  np.testing.assert_allclose(ours["pair"][1], sum(p["pair"][1] for p in parts), rtol=1e-5)


def test_gradient_of_a_mean_loss_equals_the_full_batch_gradient():
  w, x, y = _data(1)
  ours = jax.jit(jax.grad(M.microbatch(_loss, (1, 2), MB, K.MEAN)))(w, x, y)
  theirs = jax.jit(jax.grad(OM.microbatch(_loss, (1, 2), MB, OK.MEAN)))(w, x, y)
  _assert_trees_equal(ours, theirs)
  # float32 rounding: the microbatched mean sums in another order than the full batch's mean
  np.testing.assert_allclose(ours, jax.grad(_loss)(w, x, y), rtol=1e-5, atol=1e-6)
  # and the value in float64 (exact up to float64 rounding)
  with jax.enable_x64(True):
    w64, x64, y64 = (np.asarray(a, np.float64) for a in (w, x, y))
    value = M.microbatch(_loss, (1, 2), MB, K.MEAN)(w64, x64, y64)
    assert value.dtype == jnp.float64
    np.testing.assert_allclose(value, np.mean((x64 @ w64 - y64) ** 2), rtol=1e-12)


def test_integer_outputs_and_bf16_match_optax():
  data = jnp.array([1, 2, 3, 4])
  fun = lambda x: (x + 1, jnp.sum(3 * x))
  ours = M.microbatch(fun, 0, 2, (K.CONCAT, K.SUM))(data)
  _assert_trees_equal(ours, (jnp.array([2, 3, 4, 5]), jnp.array(30)))
  xb = jax.random.normal(jax.random.key(3), (8, 2)).astype(jnp.bfloat16)
  acc = (K.MEAN, K.RUNNING_MEAN, K.CONCAT)
  f = lambda x: (jnp.sum(x, 0), jnp.mean(x), x * 2)
  ours = M.microbatch(f, 0, 2, acc)(xb)
  _assert_trees_equal(ours, OM.microbatch(f, 0, 2, _kinds(acc, OM))(xb))
  assert all(leaf.dtype == jnp.bfloat16 for leaf in jax.tree.leaves(ours))


def test_custom_accumulator_matches_optax():
  def make(module):
    return module.Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda c, v, i: jnp.maximum(c, v * (i + 1)),  # uses the index
        finalize=lambda c: c * 2,
        aggregate=lambda v: jnp.max(v, axis=0))

  x = jax.random.normal(jax.random.key(4), (B, 2))
  f = lambda x: jnp.max(x, axis=0)
  ours = M.microbatch(lambda x: {"m": f(x)}, 0, MB, {"m": make(M)})(x)
  theirs = OM.microbatch(lambda x: {"m": f(x)}, 0, MB, {"m": make(OM)})(x)
  _assert_trees_equal(ours, theirs)
  expected = 2 * np.max([np.max(np.asarray(xi), 0) * (i + 1)
                         for i, xi in enumerate(_microbatches(np.asarray(x), NMB))], 0)
  np.testing.assert_allclose(ours["m"], expected, rtol=1e-6)


def test_microbatch_size_none_returns_the_function():
  assert M.microbatch(_loss, 1, None) is _loss


# ----------------------------------------------------------------------------------------------
# argnums, argnames, in_axes
# ----------------------------------------------------------------------------------------------

def _kw_fun(w, x, scale, *, y, offset=0.0):
  """x has its batch axis at 1, y at 0; w, scale and offset are not batched."""
  r = jnp.einsum("fb,f->b", x, w) * scale - y + offset
  return jnp.sum(r ** 2), r


def test_argnums_argnames_and_in_axes_match_optax_and_the_full_batch():
  w, x, y = _data(5)
  xt = x.T  # batch axis 1
  acc = (K.SUM, K.CONCAT)
  ours = M.microbatch(_kw_fun, argnums=1, microbatch_size=MB, accumulator=acc, argnames="y",
                      in_axes=(1, 0))(w, xt, 2.0, y=y, offset=0.5)
  theirs = OM.microbatch(_kw_fun, argnums=1, microbatch_size=MB, accumulator=_kinds(acc, OM),
                         argnames="y", in_axes=(1, 0))(w, xt, 2.0, y=y, offset=0.5)
  _assert_trees_equal(ours, theirs)
  full = _kw_fun(w, xt, 2.0, y=y, offset=0.5)
  np.testing.assert_allclose(ours[0], full[0], rtol=1e-5)
  np.testing.assert_array_equal(ours[1], full[1])
  # negative argnums and in_axes count from the end (gradtx; optax's split needs in_axes >= 0)
  neg = M.microbatch(_kw_fun, argnums=-2, microbatch_size=MB, accumulator=acc, argnames=("y",),
                     in_axes=(-1, 0))(w, xt, 2.0, y=y, offset=0.5)
  _assert_trees_equal(neg, ours)


# ----------------------------------------------------------------------------------------------
# num_real_microbatches: Python and traced counts; the padding microbatches are excluded
# ----------------------------------------------------------------------------------------------

NUM_REAL_ACC = {"sum": K.SUM, "each": K.CONCAT, "mean": K.MEAN, "pair": (K.RUNNING_MEAN, K.SUM)}


@jax.jit
def _ours_traced(w, x, y, k):
  return M.microbatch(_outputs, (1, 2), MB, NUM_REAL_ACC, num_real_microbatches=k)(w, x, y)


def test_num_real_microbatches_excludes_the_padding():
  w, x, y = _data(6)
  k = 3
  # the padding: one microbatch (examples 3, 7, 11) filled with garbage that must not count
  pad = np.zeros(B, bool)
  pad[NMB - 1::NMB] = True
  x_pad = jnp.where(pad[:, None], 1e6, x)
  y_pad = jnp.where(pad, jnp.nan, y)
  static = M.microbatch(_outputs, (1, 2), MB, NUM_REAL_ACC, num_real_microbatches=k)(
      w, x_pad, y_pad)
  traced = _ours_traced(w, x_pad, y_pad, jnp.int32(k))
  theirs_static = OM.microbatch(_outputs, (1, 2), MB, _kinds(NUM_REAL_ACC, OM),
                                num_real_microbatches=k)(w, x_pad, y_pad)
  theirs_traced = jax.jit(lambda w, x, y, k: OM.microbatch(
      _outputs, (1, 2), MB, _kinds(NUM_REAL_ACC, OM), num_real_microbatches=k)(w, x, y))(
          w, x_pad, y_pad, jnp.int32(k))
  _assert_trees_equal(static, theirs_static)
  _assert_trees_equal(traced, theirs_traced)
  _assert_trees_equal(traced, static)

  real = ~pad
  r = np.asarray(x @ w - y)
  parts = [_outputs(w, xi, yi) for xi, yi in
           zip(_microbatches(x, NMB)[:k], _microbatches(y, NMB)[:k])]
  np.testing.assert_allclose(static["sum"], np.sum(r[real] ** 2), rtol=1e-5)
  np.testing.assert_array_equal(static["each"], np.where(real, r, 0.0))  # not run: zeros
  # MEAN divides by all microbatches of the batch (optax's); RUNNING_MEAN by those run
  np.testing.assert_allclose(static["mean"], sum(p["mean"] for p in parts) / NMB, rtol=1e-5)
  np.testing.assert_allclose(static["pair"][0], np.mean([p["pair"][0] for p in parts], 0),
                             rtol=1e-5, atol=1e-6)
  # the traced count changes without recompiling, and 0 runs nothing
  zero = _ours_traced(w, x_pad, y_pad, jnp.int32(0))
  np.testing.assert_array_equal(zero["sum"], 0.0)
  all_real = _ours_traced(w, x, y, jnp.int32(NMB))
  _assert_trees_equal(all_real, M.microbatch(_outputs, (1, 2), MB, NUM_REAL_ACC)(w, x, y))
  assert _ours_traced._cache_size() == 1


def test_traced_num_real_microbatches_is_reverse_differentiable():
  """gradtx's loop keeps a static trip count under a traced count (optax's becomes a
  while_loop, which reverse mode cannot differentiate)."""
  w, x, y = _data(7)
  k = 2
  grad = jax.jit(jax.grad(lambda w, k: M.microbatch(
      _loss, (1, 2), MB, K.SUM, num_real_microbatches=k)(w, x, y)))(w, jnp.int32(k))
  expected = sum(jax.grad(_loss)(w, xi, yi) for xi, yi in
                 zip(_microbatches(x, NMB)[:k], _microbatches(y, NMB)[:k]))
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# jit and vmap
# ----------------------------------------------------------------------------------------------

def test_jit_and_vmap_over_a_hyperparameter_equal_a_python_loop():
  w, x, y = _data(8)
  scales = jnp.array([0.5, 1.0, 2.0])
  f = M.microbatch(_kw_fun, 1, MB, (K.SUM, K.CONCAT), argnames="y", in_axes=(1, 0))
  batched = jax.jit(jax.vmap(lambda s: f(w, x.T, s, y=y)))(scales)
  for i, s in enumerate(scales):
    _assert_trees_equal(jax.tree.map(lambda a, i=i: a[i], batched), f(w, x.T, s, y=y))


# ----------------------------------------------------------------------------------------------
# micro_vmap
# ----------------------------------------------------------------------------------------------

def test_micro_vmap_matches_vmap_and_optax():
  w, x, y = _data(9)
  per_example = lambda w, xi, yi, *, b: ((xi @ w - yi + b) ** 2, xi * 2)
  bias = jnp.linspace(0.0, 1.0, B)  # a keyword argument: mapped along axis 0
  in_axes = (None, 0, 0)
  reference = jax.vmap(lambda w, xi, yi, b: per_example(w, xi, yi, b=b), (None, 0, 0, 0))(
      w, x, y, bias)
  concat = M.micro_vmap(per_example, in_axes, microbatch_size=MB)(w, x, y, b=bias)
  _assert_trees_equal(concat, reference)
  _assert_trees_equal(concat, OM.micro_vmap(per_example, in_axes, microbatch_size=MB)(
      w, x, y, b=bias))
  acc = (K.MEAN, K.SUM)
  reduced = M.micro_vmap(per_example, in_axes, microbatch_size=MB, accumulator=acc)(
      w, x, y, b=bias)
  _assert_trees_equal(reduced, OM.micro_vmap(per_example, in_axes, microbatch_size=MB,
                                             accumulator=_kinds(acc, OM))(w, x, y, b=bias))
  np.testing.assert_allclose(reduced[0], np.mean(reference[0]), rtol=1e-5)
  np.testing.assert_allclose(reduced[1], np.sum(reference[1], 0), rtol=1e-5)
  # no microbatching: one vmap, then the reduction
  _assert_trees_equal(M.micro_vmap(per_example, in_axes, accumulator=acc)(w, x, y, b=bias),
                      OM.micro_vmap(per_example, in_axes, accumulator=_kinds(acc, OM))(
                          w, x, y, b=bias))
  # one int maps every positional argument (as jax.vmap; optax's maps a single argument only)
  _assert_trees_equal(M.micro_vmap(jnp.multiply, microbatch_size=MB)(x, x), x * x)


# ----------------------------------------------------------------------------------------------
# micro_grad
# ----------------------------------------------------------------------------------------------

def _clip(g, c=1.0):
  return g * jnp.minimum(1.0, c / jnp.linalg.norm(g))


def test_micro_grad_matches_optax_and_per_example_gradients():
  w, x, y = _data(10)
  kwargs = {"argnums": 0, "batch_argnums": (1, 2), "microbatch_size": MB,
            "transform_fn": lambda g: (_clip(g), g ** 2), "metrics_fn": jnp.linalg.norm}
  ours = M.micro_grad(_loss, accumulator=K.MEAN, **kwargs)(w, x, y)
  theirs = OM.micro_grad(_loss, accumulator=OK.MEAN, **kwargs)(w, x, y)
  _assert_trees_equal(ours[0], theirs[0])
  _assert_trees_equal(tuple(ours[1]), tuple(theirs[1]))
  # per-example gradients of the loss on batches of one example
  per_example = jax.vmap(jax.grad(_loss), (None, 0, 0))(w, x[:, None], y[:, None])
  clipped = jax.vmap(_clip)(per_example)
  np.testing.assert_allclose(ours[0][0], np.mean(clipped, 0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ours[0][1], np.mean(per_example ** 2, 0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ours[1].metrics, np.linalg.norm(per_example, axis=1), rtol=1e-5)
  np.testing.assert_allclose(ours[1].values, (x @ w - y) ** 2, rtol=1e-5)
  assert ours[1].aux is None


def test_micro_grad_has_aux_and_no_batch_dim_match_optax():
  w, x, y = _data(11)
  def loss_aux(w, xi, yi):  # one example, no batch axis
    r = xi @ w - yi
    return r ** 2, {"residual": r}
  kwargs = {"has_aux": True, "batch_argnums": (1, 2), "keep_batch_dim": False,
            "microbatch_size": MB}
  ours = M.micro_grad(loss_aux, **kwargs)(w, x, y)
  theirs = OM.micro_grad(loss_aux, **kwargs)(w, x, y)
  _assert_trees_equal(ours[0], theirs[0])
  _assert_trees_equal(tuple(ours[1]), tuple(theirs[1]))
  np.testing.assert_allclose(ours[1].aux["residual"], x @ w - y, rtol=1e-5, atol=1e-6)
  # SUM of per-example gradients of a summed loss is the gradient of the sum
  full = jax.grad(lambda w: jnp.sum((x @ w - y) ** 2))(w)
  np.testing.assert_allclose(ours[0], full, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Bad input: Python errors at trace time naming the argument
# ----------------------------------------------------------------------------------------------

def test_bad_input():
  w, x, y = _data()
  f = lambda x: jnp.sum(x)
  with pytest.raises(ValueError, match="microbatch_size"):  # 12 examples, microbatches of 5
    M.microbatch(f, 0, 5)(x)
  with pytest.raises(ValueError, match="microbatch_size"):
    M.microbatch(f, 0, 0)
  with pytest.raises(TypeError, match="microbatch_size"):
    M.microbatch(f, 0, 2.0)
  with pytest.raises(ValueError, match="argnums"):  # one positional argument
    M.microbatch(f, 1, MB)(x)
  with pytest.raises(ValueError, match="argnums"):
    M.microbatch(f, (0, -1), MB)(x)
  with pytest.raises(TypeError, match="argnums"):
    M.microbatch(f, "x", MB)
  with pytest.raises(ValueError, match="argnames"):
    M.microbatch(lambda *, y: y, (), MB, argnames="y")()
  with pytest.raises(ValueError, match="in_axes"):
    M.microbatch(_outputs, (1, 2), MB, in_axes=(0,))
  with pytest.raises(ValueError, match="in_axes"):
    M.microbatch(f, 0, MB, in_axes=2)(x)
  with pytest.raises(ValueError, match="equal-size"):
    M.microbatch(_loss, (1, 2), MB)(w, x, y[:6])
  with pytest.raises(ValueError, match="accumulator"):
    M.microbatch(f, 0, MB, accumulator="sum")
  with pytest.raises(ValueError, match="MEAN"):  # integer outputs cannot be averaged
    M.microbatch(f, 0, MB, K.MEAN)(jnp.arange(B))
  with pytest.raises(ValueError, match="num_real_microbatches"):
    M.microbatch(f, 0, MB, num_real_microbatches=-1)
  with pytest.raises(ValueError, match="num_real_microbatches"):
    M.microbatch(f, 0, MB, num_real_microbatches=NMB + 1)(x)
  with pytest.raises(ValueError, match="microbatch_size"):
    M.reshape_batch_axis(x, 5)
  with pytest.raises(NotImplementedError, match="out_axes"):
    M.micro_vmap(f, out_axes=1)
  with pytest.raises(ValueError, match="in_axes"):
    M.micro_vmap(_loss, (None, 0))(w, x, y)
  with pytest.raises(ValueError, match="batch_argnums"):
    M.micro_grad(_loss, batch_argnums=3)(w, x, y)
  with pytest.raises(TypeError, match="has_aux"):
    M.micro_grad(_loss, has_aux=1)
  with pytest.raises(TypeError, match="transform_fn"):
    M.micro_grad(_loss, transform_fn=None)


def test_explicit_sharding_moves_to_the_microbatch_size_axis():
  """Under an explicit-axes mesh the batch axis's sharding moves to the `microbatch_size` axis and
  CONCAT restores it (optax 0.2.8 compares jax versions as strings, so with jax >= 0.10 it takes
  its unsharded path and fails here)."""
  from jax.sharding import AxisType, NamedSharding
  from jax.sharding import PartitionSpec as P
  mesh = jax.make_mesh((1,), ("b",), axis_types=(AxisType.Explicit,))
  with jax.set_mesh(mesh):
    x = jax.device_put(jnp.arange(24.0).reshape(B, 2), NamedSharding(mesh, P("b")))
    split = M.reshape_batch_axis(x, MB)
    assert tuple(split.sharding.spec)[:2] == (None, "b")
    out, total = M.microbatch(lambda x: (x * 2, jnp.sum(x)), 0, MB, (K.CONCAT, K.SUM))(x)
    assert out.sharding.spec[0] == "b"
  np.testing.assert_array_equal(out, 2 * np.arange(24.0).reshape(B, 2))
  np.testing.assert_array_equal(total, np.sum(np.arange(24.0)))
