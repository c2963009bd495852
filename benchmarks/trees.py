"""Parameter trees for the benchmarks: shapes, and arrays drawn on the host in one call."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def resnet_shapes(width: float = 1.0) -> dict:
  """ResNet-50's parameter shapes (bottleneck blocks 3-4-6-3, 161 leaves), channels x `width`."""
  c = lambda n: max(4, int(round(n * width)))
  shapes: dict = {"stem": {"conv": {"kernel": (7, 7, 3, c(64))},
                           "bn": {"scale": (c(64),), "bias": (c(64),)}}}
  cin = c(64)
  for s, (blocks, w) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
    stage = {}
    for b in range(blocks):
      cw, cout = c(w), c(4 * w)
      block = {}
      for i, (k, ci, co) in enumerate(((1, cin, cw), (3, cw, cw), (1, cw, cout))):
        block[f"conv{i + 1}"] = {"kernel": (k, k, ci, co)}
        block[f"bn{i + 1}"] = {"scale": (co,), "bias": (co,)}
      if b == 0:
        block["proj"] = {"kernel": (1, 1, cin, cout)}
        block["proj_bn"] = {"scale": (cout,), "bias": (cout,)}
      stage[f"block{b}"] = block
      cin = cout
    shapes[f"stage{s + 1}"] = stage
  shapes["head"] = {"kernel": (cin, 1000), "bias": (1000,)}
  return shapes


def transformer_shapes(blocks: int = 12, d: int = 768, mlp: int = 3072) -> dict:
  """`blocks` pre-LayerNorm transformer blocks (BERT-base: 12 x 7.1M = 85M floats)."""
  def dense(i, o):
    return {"kernel": (i, o), "bias": (o,)}

  def norm():
    return {"scale": (d,), "bias": (d,)}

  return {f"block{b:02d}": {"ln1": norm(), "q": dense(d, d), "k": dense(d, d), "v": dense(d, d),
                            "o": dense(d, d), "ln2": norm(), "mlp_in": dense(d, mlp),
                            "mlp_out": dense(mlp, d)} for b in range(blocks)}


def tiny_shapes(leaves: int) -> dict:
  return {f"p{i:05d}": (64,) for i in range(leaves)}


def is_shape(x: Any) -> bool:
  return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def count(shapes: Any) -> tuple[int, int]:
  """(leaves, floats) of a shapes tree."""
  leaves = jax.tree.leaves(shapes, is_leaf=is_shape)
  return len(leaves), sum(math.prod(s) for s in leaves)


def make_numpy(shapes: Any, seed: int, scale: float) -> tuple[list[np.ndarray], Any]:
  """Normal(0, scale^2) float32 leaves as NumPy arrays, and the treedef."""
  shapes, treedef = jax.tree.flatten(shapes, is_leaf=is_shape)
  sizes = [math.prod(s) for s in shapes]
  flat = scale * np.random.default_rng(seed).standard_normal(sum(sizes), np.float32)
  chunks = np.split(flat, np.cumsum(sizes)[:-1])
  return [c.reshape(s) for c, s in zip(chunks, shapes)], treedef


def make_tree(shapes: Any, seed: int, scale: float, dtype: Any = jnp.float32) -> Any:
  leaves, treedef = make_numpy(shapes, seed, scale)
  return jax.tree.unflatten(treedef, [jnp.asarray(x, dtype) for x in leaves])
