"""The Hungarian algorithm for the linear assignment problem (optax's
`assignment.hungarian_algorithm` and `assignment.base_hungarian_algorithm`).

Both follow optax's steps exactly (same potentials, same tie-breaking, same return forms), with one
change: every `while` loop carries a trip counter bounded by what the matrix size allows on finite
costs, so a matrix with infinite or NaN entries (where optax's loops may never end) still returns.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax import lax
import jax.numpy as jnp

__all__ = [
    "base_hungarian_algorithm",
    "hungarian_algorithm",
]

_DOC_PROBLEM = r"""
  Given an :math:`n \times m` cost matrix :math:`C`, find an assignment of :math:`\min(n, m)`
  distinct rows to distinct columns with the least total cost:

  .. math::
    \min_{X \in \{0,1\}^{n \times m}} \sum_{i,j} C_{ij} X_{ij} \quad \text{s.t.} \quad
    \sum_i X_{ij} \le 1,\ \ \sum_j X_{ij} \le 1,\ \ \sum_{i,j} X_{ij} = \min(n, m)
"""


def _check_cost_matrix(fn: str, cost_matrix: Any) -> jax.Array:
  try:
    cost_matrix = jnp.asarray(cost_matrix)
  except TypeError as e:
    raise TypeError(f"gradtx.assignment.{fn}: cost_matrix must be an array, got "
                    f"{type(cost_matrix).__name__}.") from e
  if cost_matrix.ndim != 2:
    raise ValueError(f"gradtx.assignment.{fn}: cost_matrix must be a 2-D array (rows x columns), "
                     f"got shape {cost_matrix.shape}. To solve a batch of problems, "
                     f"jax.vmap({fn}).")
  if jnp.issubdtype(cost_matrix.dtype, jnp.complexfloating) or not (
      jnp.issubdtype(cost_matrix.dtype, jnp.number) or cost_matrix.dtype == jnp.bool_):
    raise TypeError(f"gradtx.assignment.{fn}: cost_matrix must be real-valued, got dtype "
                    f"{cost_matrix.dtype}.")
  return cost_matrix


def _empty() -> tuple[jax.Array, jax.Array]:
  return jnp.zeros(0, int), jnp.zeros(0, int)


# -- hungarian_algorithm: the Scenic formulation (shortest augmenting path with potentials) ----


def _masked_argmin(array: jax.Array, mask: jax.Array) -> jax.Array:
  return jnp.argmin(jnp.where(mask, array, jnp.inf))


def hungarian_algorithm(cost_matrix: Any) -> tuple[jax.Array, jax.Array]:
  r"""The Hungarian algorithm for the linear assignment problem (Scenic's formulation).
  {problem}
  One row at a time, a Dijkstra-like search over reduced costs :math:`C_{{ij}} - u_i - v_j`
  finds the shortest augmenting path, then the row and column potentials :math:`u, v` are
  updated; :math:`O(n^2 m)` for :math:`n \le m` (a taller matrix is solved transposed). Each
  search visits a new column per step, so its loop is bounded by :math:`m + 1` steps.

  Args:
    cost_matrix: a 2-D array of real costs, `(n, m)`. Infinite or NaN costs do not hang the
      search (its loops are bounded), but the assignment found is then not guaranteed optimal.

  Returns:
    `(i, j)`: int arrays of length :math:`\min(n, m)`, row and column indices of the assigned
    pairs; the cost is `cost_matrix[i, j].sum()`. As optax: for `n == m`, `j` is
    `arange(m)` and `i` the row of each column; for `n < m`, `i` runs from `n - 1` down to 0;
    for `n > m`, `j = arange(m)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    >>> i, j = gradtx.assignment.hungarian_algorithm(cost)
    >>> print(cost[i, j].sum())
    15

  References:
    Dehghani et al., `Scenic: A JAX Library for Computer Vision Research and Beyond
    <https://arxiv.org/abs/2110.11403>`_, CVPR 2022.

    Kuhn, `The Hungarian method for the assignment problem
    <https://doi.org/10.1002/nav.3800020109>`_, Naval Research Logistics Quarterly 1955.
  """
  cost_matrix = _check_cost_matrix("hungarian_algorithm", cost_matrix)
  if cost_matrix.shape[0] == 0 or cost_matrix.shape[1] == 0:
    return _empty()

  transpose = cost_matrix.shape[0] > cost_matrix.shape[1]
  if transpose:
    cost_matrix = cost_matrix.T
  rows, cols = cost_matrix.shape
  # On finite costs the search marks a new column each step (at most rows + 1 <= cols + 1 steps)
  # and the path back is as long; the bound only stops loops that infinite/NaN costs break.
  max_steps = cols + 1

  def row_fn(state, row):
    u, v, parent = state
    parent = parent.at[0].set(row + 1)

    def dfs_cond_fn(state):
      *_, col, step = state
      return (parent[col] != 0) & (step < max_steps)

    def dfs_body_fn(state):
      u, v, used, minv, path, col, step = state
      used = used.at[col].set(True)  # column `col` joins the tree
      unused_slice = ~used[1:]
      row = parent[col]
      # reduced costs from that column's row; relax the distances and their predecessors
      cur = cost_matrix[row - 1, :] - u[row] - v[1:]
      cur = jnp.where(unused_slice, cur, jnp.inf)
      path = jnp.where(cur < minv, col, path)
      minv = jnp.where(cur < minv, cur, minv)
      # the closest column not yet in the tree, and its distance
      col = _masked_argmin(minv, unused_slice) + 1
      delta = minv.min(where=unused_slice, initial=jnp.inf)
      # potentials: rows of used columns gain delta (others write out of bounds: dropped)
      indices = jnp.where(used, parent, rows + 1)
      u = u.at[indices].add(delta)
      v = jnp.where(used, v - delta, v)
      minv = jnp.where(unused_slice, minv - delta, minv)
      return u, v, used, minv, path, col, step + 1

    path = jnp.zeros(cols, int)
    used = jnp.zeros(cols + 1, bool)
    minv = jnp.full(cols, jnp.inf)
    state = u, v, used, minv, path, 0, 0
    u, v, _, _, path, col, _ = lax.while_loop(dfs_cond_fn, dfs_body_fn, state)

    def back_cond_fn(state):
      _, col, step = state
      return (col != 0) & (step < max_steps)

    def back_body_fn(state):
      parent, old_col, step = state
      new_col = path[old_col - 1]
      parent = parent.at[old_col].set(parent[new_col])
      return parent, new_col, step + 1

    parent, _, _ = lax.while_loop(back_cond_fn, back_body_fn, (parent, col, 0))
    return (u, v, parent), None

  u = jnp.zeros(rows + 2)  # row potentials (1-based, one spare slot for dropped writes)
  v = jnp.zeros(cols + 1)  # column potentials (1-based; -v[0] ends as the matching cost)
  parent = jnp.zeros(cols + 1, int)  # the (1-based) row of each (1-based) column, 0 if free
  (u, v, parent), _ = lax.scan(row_fn, (u, v, parent), jnp.arange(rows))

  if rows == cols:  # every column is assigned: skip the top_k
    parent, indices = parent[1:], jnp.arange(rows)
  else:
    parent, indices = lax.top_k(parent[1:], rows)
  parent -= 1
  if transpose:
    return indices, parent
  return parent, indices


# -- base_hungarian_algorithm: Crouse's shortest augmenting path (as SciPy's) ----------------


def _augpath_inner(it, val):
  """One column of the Dijkstra step: relax its distance and record the closest column."""
  remaining, min_value, costs, i, u, v, spc, path, lowest, row4col, index = val
  j = remaining[it]
  r = min_value + costs[i, j] - u[i] - v[j]
  path = path.at[j].set(jnp.where(r < spc[j], i, path[j]))
  spc = spc.at[j].min(r)
  # the closest column, preferring a free one on ties
  index = jnp.where((spc[j] < lowest) | ((spc[j] == lowest) & (row4col[j] == -1)), it, index)
  lowest = jnp.minimum(lowest, spc[j])
  return remaining, min_value, costs, i, u, v, spc, path, lowest, row4col, index


def _augpath_tail(val):
  """Moves the closest column into the tree: a free one ends the search, else its row is next."""
  remaining, index, row4col, sink, i, sc, num_remaining = val
  j = remaining[index]
  free = row4col[j] == -1
  sink = jnp.where(free, j, sink)
  i = jnp.where(free, i, row4col[j])
  sc = sc.at[j].set(True)
  num_remaining -= 1
  remaining = remaining.at[index].set(remaining[num_remaining])
  return remaining, sink, i, sc, num_remaining


def _augpath_body(val):
  (costs, u, v, path, row4col, current_row, min_value, num_remaining, remaining, sr, sc, spc,
   sink, step) = val
  sr = sr.at[current_row].set(True)
  init = (remaining, min_value, costs, current_row, u, v, spc, path, jnp.inf, row4col, -1)
  (remaining, _, costs, current_row, u, v, spc, path, lowest, row4col, index) = lax.fori_loop(
      0, num_remaining, _augpath_inner, init)
  min_value = lowest
  sink = jnp.where(min_value == jnp.inf, -1, sink)  # no finite path (yet)
  state = remaining, index, row4col, sink, current_row, sc, num_remaining
  remaining, sink, current_row, sc, num_remaining = jax.tree.map(
      functools.partial(jnp.where, sink == -1), _augpath_tail(state),
      (remaining, sink, current_row, sc, num_remaining))
  return (costs, u, v, path, row4col, current_row, min_value, num_remaining, remaining, sr, sc,
          spc, sink, step + 1)


def _find_augmenting_path(costs, u, v, path, row4col, current_row):
  rows, cols = costs.shape
  # On finite costs each step moves one column into the tree: at most `cols` steps. optax's
  # loop, on infinite costs, may still end after cycling through its `remaining` buffer once
  # more; twice that is the bound.
  max_steps = 2 * cols + 2
  init = (costs, u, v, path, row4col, current_row, 0, cols, jnp.arange(cols)[::-1],
          jnp.zeros(rows, bool), jnp.zeros(cols, bool), jnp.full(cols, jnp.inf), -1, 0)
  out = lax.while_loop(lambda val: (val[-2] == -1) & (val[-1] < max_steps), _augpath_body, init)
  (_, _, _, path, _, _, min_value, _, _, sr, sc, spc, sink, _) = out
  return sink, min_value, sr, sc, spc, path


def _lsa_body(current_row, val):
  costs, u, v, path, row4col, col4row = val
  rows, cols = costs.shape
  sink, min_value, sr, sc, spc, path = _find_augmenting_path(
      costs, u, v, path, row4col, current_row)

  def augment(carry):
    sink, row4col, col4row, _, step = carry
    i = path[sink]
    row4col = row4col.at[sink].set(i)
    col4row, sink = col4row.at[i].set(sink), col4row[i]
    return sink, row4col, col4row, i == current_row, step + 1

  # The path alternates between rows to reassign, at most `rows` of them.
  _, new_row4col, new_col4row, done, _ = lax.while_loop(
      lambda val: ~val[-2] & (val[-1] < rows + 1), augment, (sink, row4col, col4row, False, 0))

  # On finite costs the augmented matching is always valid (rows 0..current_row matched, each to
  # its own column) and this is optax's step. Only infinite or NaN costs can leave no finite
  # path (optax's loops then do not end, following stale or unset predecessors): there the row
  # takes the first free column instead, and the potentials and the other pairs stay.
  row_ids = jnp.arange(rows)
  matched = new_col4row >= 0
  valid = (done & (sink != -1) & (min_value != jnp.inf)
           & jnp.all(matched == (row_ids <= current_row))
           & jnp.all(~matched | (new_row4col[jnp.where(matched, new_col4row, 0)] == row_ids))
           & (jnp.sum(new_row4col >= 0) == current_row + 1))
  # the dual update (with the matching from before the augmentation)
  new_u = u.at[current_row].add(min_value)
  mask = sr & (row_ids != current_row)
  new_u = jnp.where(mask, new_u + min_value - spc[col4row], new_u)
  new_v = jnp.where(sc, v + spc - min_value, v)
  free_col = jnp.argmax(row4col == -1)
  u = jnp.where(valid, new_u, u)
  v = jnp.where(valid, new_v, v)
  row4col = jnp.where(valid, new_row4col, row4col.at[free_col].set(current_row))
  col4row = jnp.where(valid, new_col4row, col4row.at[current_row].set(free_col))
  return costs, u, v, path, row4col, col4row


def base_hungarian_algorithm(cost_matrix: Any) -> tuple[jax.Array, jax.Array]:
  r"""The Hungarian algorithm for the linear assignment problem (Crouse's formulation).
  {problem}
  For each row, a shortest augmenting path over reduced costs (Dijkstra with the dual potentials
  :math:`u, v`) is found and the matching is augmented along it; :math:`O(n^2 m)` for
  :math:`n \le m` (a taller matrix is solved transposed). This is the algorithm of SciPy's
  `linear_sum_assignment`; optax's `hungarian_algorithm` is usually faster.

  Args:
    cost_matrix: a 2-D array of real costs, `(n, m)`, cast to the default float dtype. A row
      with no finite augmenting path (infinite or NaN costs, where optax's loops may not end)
      is assigned to the first free column; the result is then a valid assignment, not
      guaranteed optimal.

  Returns:
    `(i, j)`: int arrays of length :math:`\min(n, m)`, row and column indices of the assigned
    pairs; the cost is `cost_matrix[i, j].sum()`. As optax: for `n <= m`, `i = arange(n)`;
    for `n > m`, `i` is sorted ascending.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
    >>> i, j = gradtx.assignment.base_hungarian_algorithm(cost)
    >>> print(cost[i, j].sum(), i, j)
    15 [0 1 3] [0 2 1]

  References:
    Crouse, `On implementing 2D rectangular assignment algorithms
    <https://ieeexplore.ieee.org/document/7738348>`_, IEEE Transactions on Aerospace and
    Electronic Systems 2016.
  """
  cost_matrix = _check_cost_matrix("base_hungarian_algorithm", cost_matrix)
  if cost_matrix.shape[0] == 0 or cost_matrix.shape[1] == 0:
    return _empty()

  transpose = cost_matrix.shape[1] < cost_matrix.shape[0]
  if transpose:
    cost_matrix = cost_matrix.T
  cost_matrix = cost_matrix.astype(float)
  rows, cols = cost_matrix.shape
  u = jnp.zeros(rows, cost_matrix.dtype)
  v = jnp.zeros(cols, cost_matrix.dtype)
  path = jnp.full(cols, -1)
  col4row = jnp.full(rows, -1)
  row4col = jnp.full(cols, -1)
  init = cost_matrix, u, v, path, row4col, col4row
  *_, col4row = lax.fori_loop(0, rows, _lsa_body, init)

  if transpose:
    i = col4row.argsort()
    return col4row[i], i
  return jnp.arange(rows), col4row


hungarian_algorithm.__doc__ = hungarian_algorithm.__doc__.format(problem=_DOC_PROBLEM)
base_hungarian_algorithm.__doc__ = base_hungarian_algorithm.__doc__.format(problem=_DOC_PROBLEM)
