"""Meta-checkpoints: save and reload meta-parameters (or any pytree of arrays, such as an
optimizer state) as a NumPy ``.npz`` file, with no dependency beyond NumPy."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["load_meta_params", "save_meta_params"]

_NATIVE = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
           "uint16", "uint32", "uint64", "bool"}


def save_meta_params(path: str | os.PathLike, meta_params: Any) -> None:
  """Writes a pytree of arrays to ``path`` (``.npz``).

  The file holds its leaves in order, their dtypes, and the tree's structure (for the check on
  loading).

  Args:
    path: the file to write (NumPy appends ``.npz`` if missing).
    meta_params: meta-parameters, an optimizer state, or any pytree of arrays. bfloat16 leaves
      are stored bit for bit.

  Returns:
    None.

  Example:
    >>> import os, tempfile, jax.numpy as jnp
    >>> from gradtx import learned
    >>> path = os.path.join(tempfile.mkdtemp(), "meta.npz")
    >>> learned.save_meta_params(path, {"w": jnp.ones(2)})
    >>> learned.load_meta_params(path, {"w": jnp.zeros(2)})["w"].tolist()
    [1.0, 1.0]

  References:
    numpy.savez (the ``.npz`` format); the meta-checkpoints of Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016.
  """
  leaves, treedef = jax.tree.flatten(meta_params)
  arrays, dtypes = {}, []
  for i, leaf in enumerate(leaves):
    if jax.dtypes.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    a = np.asarray(leaf)
    dtypes.append(a.dtype.name)
    if a.dtype.name not in _NATIVE:  # bfloat16 and other ml_dtypes: store the raw bits
      a = a.view(np.dtype(f"uint{8 * a.dtype.itemsize}"))
    arrays[f"leaf_{i:05d}"] = a
  np.savez(path, __dtypes__=np.array(dtypes), __treedef__=np.array(str(treedef)), **arrays)


def load_meta_params(path: str | os.PathLike, like: Any) -> Any:
  """Reads a pytree written by `save_meta_params` into the structure of ``like``.

  Args:
    path: the ``.npz`` file.
    like: a pytree of the expected structure (e.g. ``init_meta_params(key)`` or ``tx.init(params)``);
      its leaves give the shapes to check.

  Returns:
    The saved tree, as JAX arrays, with ``like``'s structure.

  Raises:
    ValueError: the file holds a different number of leaves, another structure or other shapes.

  Example:
    >>> import os, tempfile, jax.numpy as jnp
    >>> from gradtx import learned
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> learned.save_meta_params(path, (jnp.ones(3),))
    >>> learned.load_meta_params(path, (jnp.zeros(3),))[0].shape
    (3,)

  References:
    numpy.load (the ``.npz`` format); the meta-checkpoints of Andrychowicz et al., `Learning to learn by gradient descent by gradient descent
    <https://arxiv.org/abs/1606.04474>`_, NeurIPS 2016.
  """
  fn = "gradtx.learned.load_meta_params"
  leaves, treedef = jax.tree.flatten(like)
  with np.load(path, allow_pickle=False) as f:
    dtypes = [str(d) for d in f["__dtypes__"]]
    saved_treedef = str(f["__treedef__"])
    if len(dtypes) != len(leaves) or saved_treedef != str(treedef):
      raise ValueError(f"{fn}: the checkpoint's structure does not match like.\n"
                       f"  saved: {saved_treedef}\n  like:  {treedef}")
    out = []
    for i, (leaf, dtype) in enumerate(zip(leaves, dtypes)):
      a = f[f"leaf_{i:05d}"]
      if dtype not in _NATIVE:
        a = a.view(jnp.dtype(dtype))
      is_key = jax.dtypes.issubdtype(jnp.result_type(leaf), jax.dtypes.prng_key)
      want = jnp.shape(jax.random.key_data(leaf)) if is_key else jnp.shape(leaf)
      if a.shape != want:
        raise ValueError(f"{fn}: leaf {i} has shape {a.shape} in the checkpoint but "
                         f"{want} in like.")
      out.append(jax.random.wrap_key_data(a) if is_key else jnp.asarray(a))
  return treedef.unflatten(out)
