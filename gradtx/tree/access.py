"""Finding, replacing and mapping values inside optimizer states (optax's `tree.get`, `tree.set`,
`tree.get_all_with_path`, `tree.map_params`).

A key names a dict key, a NamedTuple field or a NamedTuple class (`'count'`, `'mu'`,
`'ScaleByAdamState'`). Paths are tuples of JAX key entries in which each NamedTuple field is a
`NamedTupleKey` that also carries the tuple's class name, so `filtering` can tell apart the
`count` of two different states in a chain.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Union

import jax

from gradtx._trees import ParamsPlaceholder, is_params_placeholder

__all__ = [
    "NamedTupleKey",
    "get",
    "get_all_with_path",
    "map_params",
    "set",
]


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
  """A path entry for a NamedTuple field: the tuple's class name and the field's name.

  `get_all_with_path`, `get` and `set` put one in the path for each NamedTuple field they go
  through, so a `filtering(path, value)` function can check which state a value is in.

  Attributes:
    tuple_name: class name of the NamedTuple (e.g. `'ScaleByAdamState'`).
    name: the field's name (e.g. `'count'`).

  Example:
    >>> import gradtx
    >>> str(gradtx.tree_utils.NamedTupleKey('ScaleByAdamState', 'count'))
    'ScaleByAdamState.count'
  """

  tuple_name: str
  name: str

  def __str__(self) -> str:
    return f"{self.tuple_name}.{self.name}"


KeyPath = tuple[Any, ...]
Filtering = Callable[[KeyPath, Any], bool]


def _is_named_tuple(x: Any) -> bool:
  return isinstance(x, tuple) and hasattr(x, "_fields")


def _has_any_key(node: Any, keys: tuple[Any, ...]) -> bool:
  """Whether `node` is a NamedTuple with such a field or class name, or a dict with such a key."""
  if _is_named_tuple(node):
    return type(node).__name__ in keys or any(k in node._fields for k in keys)
  return isinstance(node, dict) and any(k in node for k in keys)


def _leaves_with_named_path(tree: Any, is_leaf: Callable[[Any], bool] | None = None
                            ) -> list[tuple[KeyPath, Any]]:
  """`jax.tree_util.tree_leaves_with_path`, with `NamedTupleKey`s for NamedTuple fields.

  A node for which `is_leaf` holds is returned whole.
  """
  stop = is_leaf or (lambda _: False)
  out = []
  for path, node in jax.tree_util.tree_leaves_with_path(
      tree, is_leaf=lambda x: stop(x) or _is_named_tuple(x)):
    if stop(node) or not _is_named_tuple(node):
      out.append((path, node))
      continue
    for field in node._fields:
      entry = NamedTupleKey(type(node).__name__, field)
      out.extend(((*path, entry, *sub), leaf)
                 for sub, leaf in _leaves_with_named_path(getattr(node, field), is_leaf))
  return out


def _children(path: KeyPath, node: Any) -> list[tuple[KeyPath, Any]]:
  """The fields of a NamedTuple or the items of a dict, with their paths."""
  if _is_named_tuple(node):
    name = type(node).__name__
    return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
  return [((*path, jax.tree_util.DictKey(k)), v) for k, v in node.items()]


def _entry_name(entry: Any) -> Any:
  """The plain key (str or int) of a path entry."""
  if isinstance(entry, jax.tree_util.DictKey):
    if isinstance(entry.key, (str, int)):
      return entry.key
    raise KeyError(f"gradtx.tree.set: dict keys must be str or int, got {entry.key!r}.")
  for attr in ("name", "key", "idx"):  # NamedTupleKey / GetAttrKey, FlattenedIndexKey, SequenceKey
    if hasattr(entry, attr):
      return getattr(entry, attr)
  raise KeyError(f"gradtx.tree.set: path entry {entry!r} of type {type(entry).__name__} is not "
                 "a dict key, attribute, index or NamedTuple field.")


def _all_with_path(tree: Any, key: Any) -> list[tuple[KeyPath, Any]]:
  """Every (path, value) under `key`, outermost first, in flattening order (as optax)."""
  has_key = lambda node: _has_any_key(node, (key,))  # noqa: E731
  nodes = [(p, n) for p, n in _leaves_with_named_path(tree, has_key) if has_key(n)]
  found = []
  for path, node in nodes:
    if _is_named_tuple(node) and type(node).__name__ == key:
      found.append((path, node))
    elif _is_named_tuple(node):
      found.append(((*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)))
    else:
      found.append(((*path, jax.tree_util.DictKey(key)), node[key]))
  for path, node in nodes:  # then the matches nested inside the matching nodes
    for child_path, child in _children(path, node):
      found.extend(((*child_path, *sub), v) for sub, v in _all_with_path(child, key))
  return found


def get_all_with_path(tree: Any, key: Any, filtering: Filtering | None = None
                      ) -> list[tuple[KeyPath, Any]]:
  """Every value in `tree` under `key` (a dict key, NamedTuple field or NamedTuple class name).

  Args:
    tree: the pytree to search (typically an optimizer state).
    key: the dict key, NamedTuple field name or NamedTuple class name to look for.
    filtering: optional `filtering(path, value) -> bool` keeping only some of the matches.

  Returns:
    A list of `(path, value)`; `jax.tree_util.keystr(path)` prints a path.

  Example:
    >>> import jax, jax.numpy as jnp, gradtx
    >>> state = gradtx.adam(0.1).init(jnp.zeros(2))
    >>> [jax.tree_util.keystr(p) for p, _ in gradtx.tree.get_all_with_path(state, 'mu')]
    ['[0]ScaleByAdamState.mu']

  References:
    `optax.tree_utils.tree_get_all_with_path` (optax 0.2.8).
  """
  found = _all_with_path(tree, key)
  if filtering is not None:
    found = [(path, value) for path, value in found if filtering(path, value)]
  return found


def get(tree: Any, key: Any, default: Any = None, filtering: Filtering | None = None) -> Any:
  """The one value in `tree` under `key`; `default` if there is none, KeyError if several.

  Args:
    tree: the pytree to search (typically an optimizer state).
    key: a dict key, NamedTuple field name or NamedTuple class name.
    default: returned when nothing matches.
    filtering: optional `filtering(path, value) -> bool` to pick among several matches (paths
      hold `NamedTupleKey`s naming each state).

  Returns:
    The matching value, or `default`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> state = gradtx.adam(0.1).init(jnp.zeros(2))
    >>> int(gradtx.tree.get(state, 'count', filtering=lambda p, v: 'Adam' in str(p[-1])))
    0

  References:
    `optax.tree_utils.tree_get` (optax 0.2.8).
  """
  found = get_all_with_path(tree, key, filtering=filtering)
  if len(found) > 1:
    paths = ", ".join(jax.tree_util.keystr(p) for p, _ in found)
    raise KeyError(f"gradtx.tree.get: found {len(found)} values for key {key!r} (at {paths}); "
                   "pass filtering=lambda path, value: ... to choose one.")
  return found[0][1] if found else default


def set(tree: Any, filtering: Filtering | None = None, /, **kwargs: Any) -> Any:  # noqa: A001
  """A copy of `tree` with the values under each keyword's key replaced by its value.

  A key may name a dict key, a NamedTuple field or a NamedTuple class (which is then replaced
  whole). Every key must match at least one value (given `filtering`), else KeyError.

  Args:
    tree: the pytree (typically an optimizer state).
    filtering: optional `filtering(path, value) -> bool`; only matches it accepts are replaced.
    **kwargs: `key=new_value` pairs.

  Returns:
    The new pytree.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> state = gradtx.scale_by_adam().init(jnp.zeros(2))
    >>> gradtx.tree.set(state, count=jnp.asarray(5)).count.tolist()
    5

  References:
    `optax.tree_utils.tree_set` (optax 0.2.8).
  """
  for key in kwargs:
    if not get_all_with_path(tree, key, filtering):
      given = " given the filtering" if filtering is not None else ""
      raise KeyError(f"gradtx.tree.set: found no value for key {key!r}{given} in the tree.")
  keys = tuple(kwargs)
  has_key = lambda node: _has_any_key(node, keys)  # noqa: E731
  accept = lambda path, value: filtering is None or filtering(path, value)  # noqa: E731

  def replace(path: KeyPath, node: Any) -> Any:
    if not has_key(node):
      return node
    if _is_named_tuple(node) and type(node).__name__ in kwargs and accept(path, node):
      return kwargs[type(node).__name__]
    new = {}
    for child_path, child in _children(path, node):
      name = _entry_name(child_path[-1])
      if name in kwargs and accept(child_path, child):
        new[name] = kwargs[name]
      elif isinstance(child, (dict, list, tuple)):
        new[name] = replace(child_path, child)
      else:
        new[name] = child
    return node._replace(**new) if _is_named_tuple(node) else new

  treedef = jax.tree.structure(tree, is_leaf=has_key)
  return treedef.unflatten(replace(p, n) for p, n in _leaves_with_named_path(tree, has_key))


Initable = Union[Callable[[Any], Any], Any]


def map_params(initable: Initable, f: Callable[..., Any], state: Any, /, *rest: Any,
               transform_non_params: Callable[[Any], Any] | None = None,
               is_leaf: Callable[[Any], bool] | None = None) -> Any:
  """Maps `f` over every params-shaped tree inside an optimizer state (optax's `tree_map_params`).

  The typical use builds sharding specs for a state from the params' specs. To find the
  params-shaped parts, `initable` is initialised with a placeholder standing in for the params;
  every field where the placeholder lands (`mu`, `nu`, `trace`, ...) gets
  `jax.tree.map(f, value, *rest, is_leaf=is_leaf)`, every other leaf (counts, keys) gets
  `transform_non_params(leaf)` or stays. Wrappers that reshape the params pass the placeholder
  through: under `masked`, the masked-out leaves are `MaskedNode()`s, so with `rest` pass
  `is_leaf=lambda v: isinstance(v, gradtx.MaskedNode)` (then `f` sees the MaskedNode).

  Args:
    initable: the transformation (anything with `init`) or its init function.
    f: called as `f(param_like_leaf, *rest_leaves)`.
    state: the optimizer state to map over (from `initable`'s init).
    *rest: more trees with the params' structure, passed to `f` leaf by leaf.
    transform_non_params: optional function applied to every non-params leaf of the state.
    is_leaf: passed to the `jax.tree.map` over each params-shaped tree.

  Returns:
    The state with `f` applied to its params-shaped trees.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.adam(0.1)
    >>> state = tx.init({'w': jnp.zeros(2)})
    >>> gradtx.tree.map_params(tx, lambda p: p + 1, state, transform_non_params=lambda _: None)[0]
    ScaleByAdamState(count=None, mu={'w': Array([1., 1.], dtype=float32)}, nu={'w': Array([1., 1.], dtype=float32)})

  References:
    `optax.tree_utils.tree_map_params` (optax 0.2.8).
  """
  init = getattr(initable, "init", None)
  if not callable(init):
    if not callable(initable):
      raise TypeError("gradtx.tree.map_params: initable must be a GradientTransformation (with "
                      f"init) or an init function, got {type(initable).__name__}.")
    init = initable
  if not callable(f):
    raise TypeError(f"gradtx.tree.map_params: f must be callable, got {type(f).__name__}.")
  if transform_non_params is not None and not callable(transform_non_params):
    raise TypeError("gradtx.tree.map_params: transform_non_params must be callable or None, got "
                    f"{type(transform_non_params).__name__}.")
  skeleton = init(ParamsPlaceholder())

  def fits(*trees: Any, is_leaf: Callable[[Any], bool] | None) -> bool:
    """Whether the trees' structures agree (the first a prefix of the others)."""
    try:
      jax.tree.map(lambda *_: None, *trees, is_leaf=is_leaf)
    except ValueError:
      return False
    return True

  def map_one(marker, value):
    if not is_params_placeholder(marker):
      return value if transform_non_params is None else transform_non_params(value)
    try:
      return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
    except ValueError as e:
      for i, r in enumerate(rest):
        if not fits(value, r, is_leaf=is_leaf):
          raise ValueError(
              f"gradtx.tree.map_params: the structure of rest[{i}] does not match the params "
              "trees in state.\n"
              f"  params tree in state: {jax.tree.structure(value, is_leaf=is_leaf)}\n"
              f"  rest[{i}]: {jax.tree.structure(r, is_leaf=is_leaf)}\n"
              "Hint: under masked, pass is_leaf=lambda v: isinstance(v, gradtx.MaskedNode).") from e
      raise

  if not fits(skeleton, state, is_leaf=is_params_placeholder):
    raise ValueError(
        "gradtx.tree.map_params: the structure of state does not match the state initable "
        "builds.\n"
        f"  initable's state: {jax.tree.structure(skeleton, is_leaf=is_params_placeholder)}\n"
        f"  state: {jax.tree.structure(state)}")
  return jax.tree.map(map_one, skeleton, state, is_leaf=is_params_placeholder)
