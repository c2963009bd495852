"""`gradtx.tree` / `gradtx.tree_utils` against optax 0.2.8's `optax.tree` / `optax.tree_utils`:
names, signatures, bit-identical numerics (eager and jit, float32 / bfloat16 / complex), the
state accessors (`get`, `set`, `get_all_with_path`), `map_params` on gradtx optimizer states
(with `masked`), and bad input."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

INF = float("inf")


def tree_x(dtype=jnp.float32):
  return {"a": (jnp.asarray([1.5, -2.0, 0.25, 7.0], dtype),), "b": None,
          "c": jnp.asarray(-1.25, dtype)}


def tree_y(dtype=jnp.float32):
  return {"a": (jnp.asarray([0.5, 4.0, -1.0, 0.3], dtype),), "b": None,
          "c": jnp.asarray(0.75, dtype)}


def complex_tree():
  return {"a": jnp.asarray([1 + 2j, -3 + 0.5j, 0.25 - 1j], jnp.complex64),
          "b": (jnp.asarray(2.0 - 1j, jnp.complex64),)}


def assert_trees_equal(actual, expected):
  """Same structure, and every leaf equal bit for bit with the same dtype."""
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    assert jnp.asarray(a).dtype == jnp.asarray(e).dtype, (a, e)
    np.testing.assert_array_equal(np.asarray(a, np.float64 if jnp.isrealobj(a) else None),
                                  np.asarray(e, np.float64 if jnp.isrealobj(e) else None))


# ------------------------------------------------------------------------------------------------
# Names and signatures
# ------------------------------------------------------------------------------------------------

def _public(ns):
  return sorted(n for n in dir(ns) if not n.startswith("_") and n not in {"functools", "typing"})


def _params(fn):
  return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_names_signatures_and_aliases_match_optax():
  assert set(_public(optax.tree)) <= set(gradtx.tree.__all__)
  assert set(_public(optax.tree_utils)) <= set(gradtx.tree_utils.__all__)
  for name in _public(optax.tree):
    fn = getattr(gradtx.tree, name)
    assert _params(fn) == _params(getattr(optax.tree, name)), name
    assert getattr(gradtx.tree_utils, f"tree_{name}") is fn  # one object, two names (as optax)
  assert optax.tree.map_params is optax.tree_utils.tree_map_params is optax.tree_map_params
  assert gradtx.tree.map_params is gradtx.tree_utils.tree_map_params is gradtx.tree_map_params
  key = gradtx.tree_utils.NamedTupleKey("ScaleByAdamState", "count")
  assert str(key) == str(optax.tree_utils.NamedTupleKey("ScaleByAdamState", "count"))


# ------------------------------------------------------------------------------------------------
# Numerics: every function on the same trees, one jitted function per library and dtype
# ------------------------------------------------------------------------------------------------

def all_ops(t, x, y, full=True):
  """The tree functions of module `t` on trees `x`, `y` (one dict, so one jit compile); with
  `full=False` only those whose rounding depends on the dtype (for bfloat16)."""
  count = jnp.asarray(3, jnp.int32)
  out = {
      "add3": t.add(x, y, x), "div": t.div(x, y), "scale": t.scale(0.3, x),
      "add_scale": t.add_scale(x, 0.3, y), "vdot": t.vdot(x, y), "sum": t.sum(x),
      "clip": t.clip(x, -1.0, 2.0), "allclose": t.allclose(x, y), "full": t.full_like(x, 0.1),
      "cast_like": t.cast_like(t.cast(x, jnp.float16), y),
      "moment2": t.update_moment(x, y, 0.99, 2),
      "per_elem2": t.update_moment_per_elem_norm(x, y, 0.999, 2),
      "inf_moment": t.update_infinity_moment(x, y, 0.9, 1e-8),
      "bias_correction": t.bias_correction(y, 0.9, count),
      "norm": t.norm(x), "norm_sq": t.norm(x, squared=True),
  }
  if full:
    out.update({
        "add": t.add(x, y), "sub": t.sub(x, y), "mul": t.mul(x, y), "max": t.max(x),
        "min": t.min(x), "size": t.size(x), "clip_lo": t.clip(x, min_value=0.0),
        "where": t.where(True, x, y), "where_f": t.where(jnp.asarray(False), x, y),
        "allclose_self": t.allclose(x, x), "conj": t.conj(x), "real": t.real(x),
        "batch_shape": t.batch_shape(x, (2,)), "zeros": t.zeros_like(x), "ones": t.ones_like(x),
        "zeros_bf16": t.zeros_like(x, jnp.bfloat16), "cast": t.cast(x, jnp.float16),
        "moment1": t.update_moment(x, y, 0.9, 1),
        "per_elem4": t.update_moment_per_elem_norm(x, y, 0.9, 4),
        "bias_correction_b2": t.bias_correction(y, 0.999, count),
    })
    for ord_ in (1, 2, INF, "inf"):
      for squared in (False, True):
        out[f"norm_{ord_}_{squared}"] = t.norm(x, ord=ord_, squared=squared)
  return out


_JITTED = {(lib, full): jax.jit(lambda x, y, t=t, full=full: all_ops(t, x, y, full))
           for lib, t in (("gradtx", gradtx.tree), ("optax", optax.tree)) for full in (True, False)}


def test_every_function_is_bit_identical_to_optax_eager_and_jit():
  x, y = tree_x(), tree_y()
  expected = all_ops(optax.tree, x, y)
  assert_trees_equal(all_ops(gradtx.tree, x, y), expected)
  assert_trees_equal(_JITTED["gradtx", True](x, y), _JITTED["optax", True](x, y))
  # NumPy references for the reductions (float64 on the float32 inputs).
  flat = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(x)])
  np.testing.assert_allclose(float(expected["norm"]), np.linalg.norm(flat), rtol=1e-6)
  np.testing.assert_allclose(float(expected["norm_1_False"]), np.abs(flat).sum(), rtol=1e-6)
  assert float(expected["norm_inf_False"]) == np.abs(flat).max()
  assert expected["size"] == flat.size == gradtx.tree.size(x)


def test_bfloat16_trees_are_bit_identical_to_optax_under_jit():
  x, y = tree_x(jnp.bfloat16), tree_y(jnp.bfloat16)
  assert_trees_equal(_JITTED["gradtx", False](x, y), _JITTED["optax", False](x, y))


def test_complex_trees_match_optax():
  x, y = complex_tree(), jax.tree.map(lambda v: v * (0.5 - 0.25j), complex_tree())
  for t_g, t_o in ((gradtx.tree, optax.tree),):
    cases = {
        "conj": lambda t: t.conj(x), "real": lambda t: t.real(x), "vdot": lambda t: t.vdot(x, y),
        "per_elem2": lambda t: t.update_moment_per_elem_norm(x, t.real(y), 0.9, 2),
        "per_elem3": lambda t: t.update_moment_per_elem_norm(x, t.real(y), 0.9, 3),
        "per_elem1": lambda t: t.update_moment_per_elem_norm(x, t.real(y), 0.9, 1),
        **{f"norm_{o}_{s}": (lambda t, o=o, s=s: t.norm(x, ord=o, squared=s))
           for o in (None, 1, INF) for s in (False, True)},
    }
    for name, case in cases.items():
      assert_trees_equal(case(t_g), case(t_o))
  flat = np.concatenate([np.ravel(np.asarray(v)) for v in jax.tree.leaves(x)])
  np.testing.assert_allclose(float(gradtx.tree.norm(x)), np.linalg.norm(flat), rtol=1e-6)
  np.testing.assert_allclose(complex(gradtx.tree.vdot(x, y)),
                             np.vdot(flat, np.concatenate([np.ravel(np.asarray(v))
                                                           for v in jax.tree.leaves(y)])),
                             rtol=1e-6)


def test_odd_order_elementwise_norm_is_a_norm():
  """Deliberate difference: optax's real `g ** order` is negative for odd orders and g < 0."""
  g, m = jnp.asarray([-2.0, 3.0]), jnp.zeros(2)
  np.testing.assert_allclose(gradtx.tree.update_moment_per_elem_norm(g, m, 0.5, 3), [4.0, 13.5])
  assert float(optax.tree.update_moment_per_elem_norm(g, m, 0.5, 3)[0]) == -4.0


def test_moments_over_20_steps_match_optax_bit_for_bit():
  def run(t, moment_dtype):
    mu = t.zeros_like(tree_y(), moment_dtype)
    nu, u = mu, mu
    for i in range(1, 21):
      g = jax.tree.map(lambda v: jnp.sin(v * i), tree_x())
      mu = t.cast(t.update_moment(g, mu, 0.9, 1), moment_dtype)
      nu = t.cast(t.update_moment_per_elem_norm(g, nu, 0.999, 2), moment_dtype)
      u = t.cast(t.update_infinity_moment(g, u, 0.99, 1e-8), moment_dtype)
      out = t.div(t.bias_correction(mu, 0.9, jnp.asarray(i)),
                  t.bias_correction(nu, 0.999, jnp.asarray(i)))
    return mu, nu, u, out

  for moment_dtype in (jnp.float32, jnp.bfloat16):
    assert_trees_equal(run(gradtx.tree, moment_dtype), run(optax.tree, moment_dtype))


def test_empty_trees_and_zero_size_leaves_match_optax():
  for tree in ({}, {"a": None}, {"e": jnp.zeros((0,)), "a": jnp.asarray([2.0, -3.0])}):
    for name in ("sum", "max", "min", "size", "norm"):
      assert_trees_equal(getattr(gradtx.tree, name)(tree), getattr(optax.tree, name)(tree))
    for o in (1, INF):
      assert_trees_equal(gradtx.tree.norm(tree, o), optax.tree.norm(tree, o))
    assert_trees_equal(gradtx.tree.vdot(tree, tree), optax.tree.vdot(tree, tree))
    assert gradtx.tree.allclose(tree, tree) == optax.tree.allclose(tree, tree)
  tree = {"a": jnp.ones(3), "b": jnp.ones(2)}
  assert_trees_equal(gradtx.tree.sum(tree, associative_reduction=True),
                     optax.tree.sum(tree, associative_reduction=True))


def test_dtype_matches_optax():
  mixed = {"a": jnp.ones(1, jnp.float16), "b": jnp.ones(1), "c": jnp.ones(1, jnp.bfloat16)}
  for tree in (tree_x(), tree_x(jnp.bfloat16), {}):
    assert gradtx.tree.dtype(tree) == optax.tree.dtype(tree)
  for handler in ("promote",):
    assert gradtx.tree.dtype(mixed, handler) == optax.tree.dtype(mixed, handler)
  ints = {"a": jnp.ones(1, jnp.int32), "b": jnp.ones(1, jnp.uint32)}
  assert gradtx.tree.dtype(ints, "promote") == optax.tree.dtype(ints, "promote")
  floats = {"a": jnp.ones(1, jnp.float16), "b": jnp.ones(1)}
  for handler in ("lowest", "highest"):
    assert gradtx.tree.dtype(floats, handler) == optax.tree.dtype(floats, handler)
    assert gradtx.tree.dtype(ints, handler) == optax.tree.dtype(ints, handler)
    assert gradtx.tree.dtype(mixed, "highest") == optax.tree.dtype(mixed, "highest")
  with pytest.raises(ValueError, match="cannot order dtypes float16 and bfloat16"):
    gradtx.tree.dtype(mixed, "lowest")  # each promotes to float32, neither to the other
  with pytest.raises(ValueError, match=r"(?s)several dtypes.*\['b'\]"):
    gradtx.tree.dtype(mixed)
  with pytest.raises(ValueError, match="mixed_dtype_handler"):
    gradtx.tree.dtype(mixed, "max")


def test_random_functions_match_optax():
  key = jax.random.key(42)
  target = {"w": jnp.ones((2, 3)), "b": jnp.ones(4, jnp.bfloat16), "n": None}
  keys_g = gradtx.tree.unwrap_random_key_data(gradtx.tree.split_key_like(key, target))
  keys_o = optax.tree.unwrap_random_key_data(optax.tree.split_key_like(key, target))
  assert_trees_equal(keys_g, keys_o)
  for kwargs in ({}, {"dtype": jnp.float16}, {"sampler": jax.random.uniform},
                 {"sampler": lambda k, s, d: jax.random.bernoulli(k, 0.5, s).astype(d)}):
    assert_trees_equal(gradtx.tree.random_like(key, target, **kwargs),
                       optax.tree.random_like(key, target, **kwargs))
  ints = {"i": jnp.ones(5, jnp.int32)}
  assert_trees_equal(gradtx.tree.random_like(key, ints, jax.random.rademacher),
                     optax.tree.random_like(key, ints, jax.random.rademacher))
  jitted = jax.jit(gradtx.tree.random_like)(key, target)
  assert_trees_equal(jitted, optax.tree.random_like(key, target))


# ------------------------------------------------------------------------------------------------
# get / set / get_all_with_path
# ------------------------------------------------------------------------------------------------

def _state():
  tx = gradtx.chain(gradtx.add_noise(0.1, 0.55, key=0), gradtx.scale_by_adam(),
                    gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1))
  return tx.init({"w": jnp.ones(2), "b": {"x": jnp.zeros(1)}})


def _paths(found):
  return [(jax.tree_util.keystr(p), str(p[-1]) if p else "", v) for p, v in found]


def test_get_all_with_path_and_get_match_optax():
  state = _state()
  by_adam = lambda p, v: getattr(p[-1], "tuple_name", None) == "ScaleByAdamState"  # noqa: E731
  for key in ("count", "mu", "learning_rate", "ScaleByAdamState", "AddNoiseState", "x", "zz"):
    for filtering in (None, by_adam, lambda p, v: isinstance(v, jax.Array)):
      got = _paths(gradtx.tree.get_all_with_path(state, key, filtering))
      want = _paths(optax.tree.get_all_with_path(state, key, filtering))
      assert [g[:2] for g in got] == [w[:2] for w in want]
      assert_trees_equal([g[2] for g in got], [w[2] for w in want])
  assert_trees_equal(gradtx.tree.get(state, "mu"), optax.tree.get(state, "mu"))
  assert gradtx.tree.get(state, "zz", default=7) == 7
  assert int(gradtx.tree.get(state, "count", filtering=by_adam)) == 0
  with pytest.raises(KeyError, match="count"):
    gradtx.tree.get(state, "count")  # one per state in the chain


def test_set_matches_optax():
  state = _state()
  for filtering, kwargs in (
      (None, {"mu": {"w": jnp.ones(2), "b": {"x": jnp.ones(1)}}}),
      (None, {"learning_rate": jnp.asarray(0.5), "x": jnp.asarray([3.0])}),
      (lambda p, v: getattr(p[-1], "tuple_name", None) == "ScaleByAdamState",
       {"count": jnp.asarray(5)}),
      (None, {"AddNoiseState": gradtx.AddNoiseState(jnp.asarray(1), jnp.zeros(2, jnp.uint32))}),
  ):
    args = () if filtering is None else (filtering,)
    assert_trees_equal(gradtx.tree.set(state, *args, **kwargs),
                       optax.tree.set(state, *args, **kwargs))
  with pytest.raises(KeyError, match="zz"):
    gradtx.tree.set(state, zz=1)
  with pytest.raises(KeyError, match="filtering"):
    gradtx.tree.set(state, lambda p, v: False, count=1)


# ------------------------------------------------------------------------------------------------
# map_params on optimizer states
# ------------------------------------------------------------------------------------------------

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3), "s": jnp.asarray(1.0)}
SPECS = {"w": "W", "b": "B", "s": "S"}
_mask_fn = lambda p: jax.tree.map(lambda x: x.ndim == 2, p)  # noqa: E731


def _optimizers(lib):
  return {
      "adam": lib.adam(1e-3),
      "masked_fn": lib.masked(lib.adam(1e-3), _mask_fn),
      "masked_tree": lib.masked(lib.adam(1e-3), {"w": True, "b": False, "s": True}),
      "chain": lib.chain(lib.clip_by_global_norm(1.0), lib.masked(lib.adamw(1e-3), _mask_fn),
                         lib.trace(0.9)),
      "multi": lib.multi_transform({"a": lib.adam(1e-3), "b": lib.sgd(1e-3, momentum=0.9)},
                                   {"w": "a", "b": "b", "s": "a"}),
  }


def _describe(tree):
  """Type names + fields + leaves (non-array leaves as they are), recursively."""
  if isinstance(tree, tuple) and hasattr(tree, "_fields"):
    return (type(tree).__name__, {f: _describe(getattr(tree, f)) for f in tree._fields})
  if isinstance(tree, (tuple, list)):
    return [_describe(v) for v in tree]
  if isinstance(tree, dict):
    return {k: _describe(v) for k, v in tree.items()}
  if isinstance(tree, jax.Array):
    return (tree.shape, str(tree.dtype), np.asarray(tree).tolist())
  return tree


def _params_leaves(lib, tx, state):
  """Every params-shaped leaf of the state after map_params, with its path."""
  out = lib.tree.map_params(tx, lambda p: p * 2 + 1, state, transform_non_params=lambda _: None)
  return [(jax.tree_util.keystr(p), v) for p, v in jax.tree_util.tree_leaves_with_path(out)]


@pytest.mark.parametrize("name", ["adam", "masked_fn", "masked_tree", "chain", "multi"])
def test_map_params_on_gradtx_states_equals_optax_on_optax_states(name):
  tx_g, tx_o = _optimizers(gradtx)[name], _optimizers(optax)[name]
  state_g, state_o = tx_g.init(PARAMS), tx_o.init(PARAMS)
  got, want = _params_leaves(gradtx, tx_g, state_g), _params_leaves(optax, tx_o, state_o)
  # gradtx keeps a count where optax has EmptyState (README); the params-shaped parts are equal.
  assert [p for p, _ in got] == [p for p, _ in want]
  assert_trees_equal([v for _, v in got], [v for _, v in want])
  # With the params' specs as `rest`: masked-out leaves are MaskedNodes, which is_leaf keeps.
  specs = {}
  for lib, tx, state in ((gradtx, tx_g, state_g), (optax, tx_o, state_o)):
    specs[lib.__name__] = _describe(lib.tree.map_params(
        tx, lambda _, spec: spec, state, SPECS, transform_non_params=lambda _: None,
        is_leaf=lambda v: isinstance(v, lib.MaskedNode)))
  for key in ("mu", "nu", "trace"):
    found = {k: [v for _, v in gradtx.tree.get_all_with_path(v, key)] for k, v in specs.items()}
    assert found["gradtx"] == found["optax"]
  # Without transform_non_params the counts stay; the result is a valid state under jit.
  mapped = jax.jit(lambda s: gradtx.tree_map_params(tx_g, lambda p: p + 1, s))(state_g)
  assert jax.tree.structure(mapped) == jax.tree.structure(state_g)
  _, new_state = tx_g.update(PARAMS, mapped, PARAMS)
  assert jax.tree.structure(new_state) == jax.tree.structure(state_g)


def test_map_params_is_optax_on_optax_optimizers_and_optax_on_gradtx_masked():
  for name, tx in _optimizers(optax).items():
    if name != "adam":
      continue  # optax's masked (also inside multi_transform) knows only optax's placeholder
    state = tx.init(PARAMS)
    assert _describe(gradtx.tree.map_params(tx, lambda p: p - 1, state)) == _describe(
        optax.tree.map_params(tx, lambda p: p - 1, state))
  tx = gradtx.masked(gradtx.adam(1e-3), {"w": True, "b": False, "s": True})
  state = tx.init(PARAMS)
  assert _describe(optax.tree.map_params(tx, lambda p: p - 1, state)) == _describe(
      gradtx.tree.map_params(tx, lambda p: p - 1, state))


def test_map_params_bad_input():
  tx = gradtx.adam(1e-3)
  state = tx.init(PARAMS)
  with pytest.raises(TypeError, match="initable"):
    gradtx.tree.map_params(3, lambda p: p, state)
  with pytest.raises(TypeError, match="f must be callable"):
    gradtx.tree.map_params(tx, None, state)
  with pytest.raises(ValueError, match="structure of state"):
    gradtx.tree.map_params(tx, lambda p: p, state[0])
  with pytest.raises(ValueError, match=r"rest\[0\]"):
    gradtx.tree.map_params(tx, lambda p, s: s, state, {"w": 1})
  assert _describe(gradtx.tree.map_params(tx.init, lambda p: p, state)) == _describe(state)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------

def test_mismatched_structures_raise_naming_the_argument():
  x, other = tree_x(), {"a": jnp.ones(1)}
  for fn in ("add", "sub", "mul", "div", "vdot"):
    with pytest.raises(ValueError, match=rf"tree\.{fn}: the structure of tree_y does not match"):
      getattr(gradtx.tree, fn)(x, other)
  with pytest.raises(ValueError, match=r"other_trees\[1\]"):
    gradtx.tree.add(x, x, x, other)
  with pytest.raises(ValueError, match="tree_y"):
    gradtx.tree.add_scale(x, 0.5, other)
  with pytest.raises(ValueError, match="tree_y"):
    gradtx.tree.where(True, x, other)
  with pytest.raises(ValueError, match="the structure of b"):
    gradtx.tree.allclose(x, other)
  with pytest.raises(TypeError):  # a leaf error is not reported as a structure error
    gradtx.tree.add({"a": jnp.ones(2)}, {"a": "text"})


def test_norm_rejects_unknown_ord_and_non_bool_squared():
  for bad in (3, 0, "fro", -INF):
    with pytest.raises(ValueError, match=rf"tree\.norm: ord must be one of .*got {bad!r}"):
      gradtx.tree.norm(tree_x(), ord=bad)
  with pytest.raises(TypeError, match="squared"):
    gradtx.tree.norm(tree_x(), squared="yes")


def test_like_builders_need_a_dtype_for_integer_leaves():
  """Deliberate difference: optax builds integer trees; gradtx asks for an explicit dtype."""
  ints = {"w": jnp.ones(2), "n": jnp.arange(3)}
  for fn, args in (("zeros_like", ()), ("ones_like", ()), ("full_like", (2,))):
    with pytest.raises(TypeError, match=r"params\['n'\].*pass dtype="):
      getattr(gradtx.tree, fn)(ints, *args)
    assert_trees_equal(getattr(gradtx.tree, fn)(ints, *args, dtype=jnp.int32),
                       getattr(optax.tree, fn)(ints, *args, dtype=jnp.int32))
