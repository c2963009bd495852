"""gradtx.assignment (hungarian_algorithm, base_hungarian_algorithm): the same indices as optax,
the same total cost as SciPy's linear_sum_assignment (the same pairs where the optimum is unique),
ties, infinite/NaN costs (bounded loops: always a valid assignment), jit/vmap, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtx import assignment

optax = pytest.importorskip("optax")
scipy_optimize = pytest.importorskip("scipy.optimize")

NAMES = ("hungarian_algorithm", "base_hungarian_algorithm")
SHAPES = [(5, 5), (3, 6), (6, 3), (1, 4)]
INF, NAN = np.inf, np.nan


def _fns(name):
  return jax.jit(getattr(assignment, name)), jax.jit(getattr(optax.assignment, name))


def _assert_valid(i, j, n, m):
  i, j = np.asarray(i), np.asarray(j)
  k = min(n, m)
  assert i.shape == j.shape == (k,)
  assert len(set(i.tolist())) == k and len(set(j.tolist())) == k
  assert (0 <= i).all() and (i < n).all() and (0 <= j).all() and (j < m).all()


@pytest.mark.parametrize("name", NAMES)
def test_random_matrices_match_optax_and_scipy(name):
  ours, theirs = _fns(name)
  rng = np.random.default_rng(0)
  for n, m in SHAPES:
    for _ in range(3):
      cost = rng.normal(size=(n, m)).astype(np.float32)
      i, j = ours(cost)
      oi, oj = theirs(jnp.asarray(cost))
      np.testing.assert_array_equal(i, oi)  # optax's return form and order exactly
      np.testing.assert_array_equal(j, oj)
      assert i.dtype == oi.dtype and j.dtype == oj.dtype
      _assert_valid(i, j, n, m)
      r, c = scipy_optimize.linear_sum_assignment(cost)
      np.testing.assert_allclose(cost[i, j].sum(), cost[r, c].sum(), rtol=1e-5)
      # continuous random costs: the optimum is unique, so the pairs are SciPy's
      assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(r.tolist(), c.tolist()))


@pytest.mark.parametrize("name", NAMES)
def test_ties_integer_and_bf16_costs(name):
  ours, theirs = _fns(name)
  rng = np.random.default_rng(1)
  for n, m in SHAPES[:3]:
    cost = rng.integers(0, 3, size=(n, m)).astype(np.int32)  # many optimal assignments
    i, j = ours(cost)
    oi, oj = theirs(jnp.asarray(cost))
    np.testing.assert_array_equal(i, oi)  # the same tie-breaking as optax
    np.testing.assert_array_equal(j, oj)
    r, c = scipy_optimize.linear_sum_assignment(cost)
    assert cost[i, j].sum() == cost[r, c].sum()
  cost = jnp.asarray(rng.normal(size=(5, 5)), jnp.bfloat16)
  for a, b in zip(ours(cost), theirs(cost)):
    np.testing.assert_array_equal(a, b)
  # all costs equal: any assignment is optimal, still a valid one
  _assert_valid(*ours(jnp.ones((3, 6))), 3, 6)


def test_optax_docstring_examples():
  cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
  i, j = assignment.base_hungarian_algorithm(cost)
  assert cost[i, j].sum() == 15 and i.tolist() == [0, 1, 3] and j.tolist() == [0, 2, 1]
  cost = jnp.array([[90, 80, 75, 70], [35, 85, 55, 65], [125, 95, 90, 95], [45, 110, 95, 115],
                    [50, 100, 90, 100]])
  for fn in (assignment.base_hungarian_algorithm, assignment.hungarian_algorithm):
    i, j = fn(cost)
    assert cost[i, j].sum() == 265
  i, j = assignment.base_hungarian_algorithm(cost)
  assert i.tolist() == [0, 1, 2, 3] and j.tolist() == [3, 2, 1, 0]


def test_empty_matrices():
  for name in NAMES:
    for shape in [(0, 3), (3, 0)]:
      i, j = getattr(assignment, name)(jnp.zeros(shape))
      oi, oj = getattr(optax.assignment, name)(jnp.zeros(shape))
      assert i.shape == j.shape == (0,) and i.dtype == oi.dtype and j.dtype == oj.dtype


# Non-finite costs where optax's loops end: the same indices as optax.
OPTAX_ENDS = {
    "inf_entry": [[1., INF, 3.], [2., 1., INF], [INF, 2., 1.]],
    "neg_inf": [[-INF, 1.], [2., 3.]],
    "nan_entry": [[1., NAN], [2., 3.]],
    "nan_first": [[NAN, 1.], [2., 3.]],
    "inf_rect": [[INF, 1., 2., 3.], [INF, INF, 0., 1.]],
}
# Where optax's base_hungarian_algorithm never returns (checked by hand with a timeout): gradtx's
# loops are bounded, the row without a finite path takes the first free column.
OPTAX_HANGS = {
    "inf_row": [[INF, INF, INF], [2., 1., 4.], [3., 2., 1.]],
    "all_inf": [[INF, INF], [INF, INF]],
    "infeasible": [[1., INF, INF], [2., INF, INF], [3., 4., 5.]],
    "nan_row": [[NAN, NAN, NAN], [1., 2., 3.], [3., 1., 2.]],
}


@pytest.mark.parametrize("name", NAMES)
def test_infinite_and_nan_costs(name):
  ours, theirs = _fns(name)  # jitted: one compilation per shape
  for cost in OPTAX_ENDS.values():
    cost = jnp.array(cost)
    for a, b in zip(ours(cost), theirs(cost)):
      np.testing.assert_array_equal(a, b)
  for cost in OPTAX_HANGS.values():
    cost = jnp.array(cost)
    _assert_valid(*ours(cost), *cost.shape)
    if name == "hungarian_algorithm":  # Scenic's formulation ends on these in optax too
      for a, b in zip(ours(cost), theirs(cost)):
        np.testing.assert_array_equal(a, b)
  # random sprinkles of inf / NaN / -inf: always a valid assignment; with +inf only and a finite
  # optimum, SciPy's cost
  rng = np.random.default_rng(2)
  for t in range(12):
    cost = rng.normal(size=(4, 5)).astype(np.float32)
    if t % 2:
      cost = cost.T
    cost[rng.random(cost.shape) < 0.3] = (INF, NAN, -INF)[t % 3]
    i, j = ours(cost)
    _assert_valid(i, j, *cost.shape)
    if t % 3 == 0:
      try:
        r, c = scipy_optimize.linear_sum_assignment(cost)
      except ValueError:  # infeasible: no finite assignment
        continue
      np.testing.assert_allclose(cost[i, j].sum(), cost[r, c].sum(), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_equals_loop(name):
  fn = getattr(assignment, name)
  costs = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3, 5)), jnp.float32)
  bi, bj = jax.vmap(fn)(costs)
  fn = jax.jit(fn)
  for k in range(costs.shape[0]):
    i, j = fn(costs[k])
    np.testing.assert_array_equal(bi[k], i)
    np.testing.assert_array_equal(bj[k], j)


def test_bad_input():
  for name in NAMES:
    fn = getattr(assignment, name)
    for bad in (jnp.zeros(3), jnp.zeros((2, 2, 2)), 1.0):
      with pytest.raises(ValueError, match="cost_matrix"):
        fn(bad)
    with pytest.raises(TypeError, match="cost_matrix"):
      fn(jnp.ones((2, 2), jnp.complex64))
    with pytest.raises(TypeError, match="cost_matrix"):
      fn("abc")
  # array-likes are accepted (optax needs `.shape`)
  i, j = assignment.hungarian_algorithm([[1.0, 0.0], [0.0, 1.0]])
  assert sorted(j[i.argsort()].tolist()) == [0, 1]
