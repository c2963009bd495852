"""Generic tests driven by tests/registry.py: every public transformation and alias, against its
NumPy reference, against optax, under eager / jit / vmap, with bfloat16, and state invariants."""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from trees import STEPS, make_grads, make_params
from registry import ENTRIES, NOT_TRANSFORMS


_BY_ID = {e.id: e for e in ENTRIES}


@functools.lru_cache(maxsize=None)
def compiled(entry_id):
  """One transformation and one jitted update per entry, shared by the float32 tests (so each
  entry compiles once, not once per test)."""
  tx = _BY_ID[entry_id].make()
  return tx, jax.jit(tx.update)


def run_compiled(entry, params, grads):
  tx, step = compiled(entry.id)
  return run(tx, params, grads, step=step, update_kwargs=entry.update_kwargs)


def run(tx, params, grads, jit=True, step=None, update_kwargs=None, **extra):
  """Applies `tx` over the gradient sequence; returns (list of update trees, final state).
  `update_kwargs(i)` gives step i's keyword arguments of update (`extra` overrides them)."""
  state = tx.init(params)
  if step is None:
    step = jax.jit(tx.update) if jit else tx.update
  out = []
  for i, g in enumerate(grads):
    kwargs = {**(update_kwargs(i) if update_kwargs is not None else {}), **extra}
    u, state = step(g, state, params, **kwargs)
    params = gradtx.apply_updates(params, u)
    out.append(u)
  return out, state


def leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def assert_close(got, want, rtol, atol, what=""):
  for step, (g, w) in enumerate(zip(got, want)):
    for i, (a, b) in enumerate(zip(leaves64(g) if not isinstance(g, list) else g, w)):
      np.testing.assert_allclose(a, b, rtol=rtol, atol=atol,
                                 err_msg=f"{what} step {step} leaf {i}")


def entry_ids():
  return [e.id for e in ENTRIES]


def params_for(entries):
  """Parametrizes over entries, keeping each entry's tests on one xdist worker (so its compiled
  update is shared across the tests)."""
  return [pytest.param(e, id=e.id, marks=pytest.mark.xdist_group(e.id)) for e in entries]


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_matches_numpy_reference(entry):
  if entry.reference is None:
    pytest.skip("no deterministic reference (tested in its own module)")
  params, grads = make_params(), make_grads()
  got, _ = run_compiled(entry, params, grads)
  want = entry.reference(leaves64(params), [leaves64(g) for g in grads], **entry.kwargs)
  assert len(want) == STEPS
  assert_close(got, want, entry.rtol, entry.atol, entry.id)


def _raw(x):
  """Typed PRNG keys (optax keeps them) compared through their raw key data."""
  if jax.dtypes.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key):
    return jax.random.key_data(x)
  return x


def _named_fields(state, path=()):
  """Flattens a state into {path: subtree} keyed by NamedTuple field names and tuple indices."""
  out = {}
  if isinstance(state, tuple) and hasattr(state, "_fields"):
    for name in state._fields:
      out.update(_named_fields(getattr(state, name), path + (name,)))
    out[path + ("<type>",)] = type(state).__name__
  elif isinstance(state, (tuple, list)):
    for i, s in enumerate(state):
      out.update(_named_fields(s, path + (i,)))
  else:
    out[path] = state
  return out


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_matches_optax(entry):
  if entry.optax is None:
    pytest.skip("optax has no counterpart")
  params, grads = make_params(), make_grads()
  got, state = run_compiled(entry, params, grads)
  otx = entry.optax(**(entry.optax_kwargs if entry.optax_kwargs is not None else entry.kwargs))
  want, ostate = run(otx, params, grads, update_kwargs=entry.update_kwargs)
  assert_close(got, [leaves64(w) for w in want], 1e-6, 1e-7, entry.id)
  ours, theirs = _named_fields(state), _named_fields(ostate)
  shared = [k for k in ours if k in theirs and k[-1] != "<type>"]
  for k in shared:
    if ours[k] is None or theirs[k] is None:
      continue
    for a, b in zip(jax.tree.leaves(ours[k]), jax.tree.leaves(theirs[k])):
      a, b = _raw(a), _raw(b)
      if jnp.issubdtype(jnp.asarray(a).dtype, jnp.integer) or jnp.asarray(a).dtype == jnp.uint32:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{entry.id} {k}")
      else:
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                   rtol=1e-6, atol=1e-7, err_msg=f"{entry.id} state {k}")


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_eager_equals_jit(entry):
  params, grads = make_params(), make_grads(steps=4)
  eager, s1 = run(entry.make(), params, grads, jit=False, update_kwargs=entry.update_kwargs)
  jitted, s2 = run_compiled(entry, params, grads)
  assert_close(eager, [leaves64(j) for j in jitted], *entry.jit_tol, entry.id)
  assert jax.tree.structure(s1) == jax.tree.structure(s2)


@pytest.mark.parametrize("entry", params_for([e for e in ENTRIES if e.sweep]))
def test_vmap_over_hyperparameter_equals_loop(entry):
  name, values = entry.sweep
  params, grads = make_params(), make_grads(steps=6)

  def train(h):
    ups, _ = run(entry.make(**{name: h}), params, grads, jit=False,
                 update_kwargs=entry.update_kwargs)
    return ups

  batched = jax.jit(jax.vmap(train))(jnp.asarray(values, jnp.float32))
  for i, v in enumerate(values):
    single = train(float(v))
    for step in range(len(grads)):
      for a, b in zip(jax.tree.leaves(batched[step]), jax.tree.leaves(single[step])):
        np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=2e-5, atol=1e-6,
                                   err_msg=f"{entry.id} {name}={v} step {step}")


def _state_signature(state):
  return jax.tree.structure(state), [(jnp.shape(x), jnp.asarray(x).dtype)
                                     for x in jax.tree.leaves(state)]


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_state_invariants_and_dtypes(entry):
  for dtype in (jnp.float32, jnp.bfloat16):
    params = make_params(dtype)
    tx, step = compiled(entry.id) if dtype == jnp.float32 else (entry.make(), None)
    state0 = tx.init(params)
    step = step or jax.jit(tx.update)
    state = state0
    for i, g in enumerate(make_grads(steps=3, dtype=dtype)):
      u, state = step(g, state, params, **entry.kwargs_at(i))
      assert jax.tree.structure(u) == jax.tree.structure(params)
      for leaf in jax.tree.leaves(u):
        assert leaf.dtype == dtype, f"{entry.id}: updates must keep {dtype}, got {leaf.dtype}"
      assert _state_signature(state) == _state_signature(state0)
      params = gradtx.apply_updates(params, u)
      for leaf in jax.tree.leaves(params):
        assert leaf.dtype == dtype
    assert step._cache_size() == 1, f"{entry.id}: the second jitted step recompiled"
    for k, v in _named_fields(state).items():
      if k and k[-1] == "count":
        assert jnp.asarray(v).dtype == jnp.int32 and jnp.shape(v) == ()
    if dtype == jnp.float32:
      for leaf in jax.tree.leaves(state):
        assert isinstance(leaf, jax.Array), f"{entry.id}: state leaf {type(leaf)} is not an array"


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_unknown_extra_args_ignored_and_finite(entry):
  params = make_params()
  tx = entry.make()
  grads = make_grads(steps=2)
  u1, _ = run(tx, params, grads, update_kwargs=entry.update_kwargs, some_unknown_argument=3.0,
              value=jnp.asarray(1.0))
  for leaf in jax.tree.leaves(u1):
    assert np.all(np.isfinite(np.asarray(leaf)))


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_count_at_int32_max_keeps_working(entry):
  params = make_params()
  tx = entry.make()
  state = tx.init(params)
  imax = jnp.iinfo(jnp.int32).max

  def saturate(path, x):
    names = [getattr(p, "name", None) for p in path]
    return jnp.full_like(x, imax) if names and names[-1] == "count" else x

  state = jax.tree_util.tree_map_with_path(saturate, state)
  _, s1 = tx.update(make_grads(steps=1)[0], state, params, **entry.kwargs_at(0))
  u, s2 = tx.update(make_grads(steps=1)[0], s1, params, **entry.kwargs_at(1))
  for leaf in jax.tree.leaves(u):
    assert np.all(np.isfinite(np.asarray(leaf))), entry.id
  for k, v in _named_fields(s2).items():
    if k and k[-1] == "count":
      assert int(v) == imax


@pytest.mark.parametrize("entry", params_for(ENTRIES))
def test_mismatched_update_tree_raises(entry):
  params = make_params()
  tx = entry.make()
  state = tx.init(params)
  bad = {"a": make_grads(steps=1)[0]["a"]}  # drops the "b" subtree
  has_param_trees = any(hasattr(l, "shape") and l.shape != () for l in jax.tree.leaves(state))
  if not has_param_trees and not entry.needs_params:
    pytest.skip("stateless element-wise transformation: any tree is valid")
  with pytest.raises(ValueError, match="structure"):
    tx.update(bad, state, params, **entry.kwargs_at(0))


def _family_modules():
  """Every module of the namespaces that hold transformations (a moved or renamed module is
  found by walking the packages, never skipped)."""
  import importlib
  import pkgutil

  yield importlib.import_module("gradtx.combine")
  for pkg in ("gradtx.transforms", "gradtx.optimizers", "gradtx.contrib"):
    package = importlib.import_module(pkg)
    for info in pkgutil.iter_modules(package.__path__):
      if not info.name.startswith("_"):
        yield importlib.import_module(f"{pkg}.{info.name}")


def test_every_public_transformation_is_registered():
  registered = {e.name.split(".")[-1] for e in ENTRIES}
  missing = []
  modules = list(_family_modules())
  assert len(modules) >= 20
  for mod in modules:
    for name in getattr(mod, "__all__", []):
      obj = getattr(mod, name)
      if inspect.isclass(obj) or name in NOT_TRANSFORMS:
        continue
      if name not in registered:
        missing.append(f"{mod.__name__}.{name}")
  assert not missing, f"public transformations without a registry entry: {missing}"
