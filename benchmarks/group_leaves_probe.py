"""ResNet-50-sized adam and clip+adamw step: optax, gradtx, and gradtx.group_leaves with each packing rule.

    python -m benchmarks.group_leaves_probe     # the H100 numbers in NOTES.md came from this
"""
import time, jax, jax.numpy as jnp, numpy as np, optax, gradtx
from gradtx import layouts
from benchmarks import trees
shapes = trees.resnet_shapes(1.0)
p0 = trees.make_tree(shapes, 0, 0.1); g = trees.make_tree(shapes, 1, 0.01)
def bench(lib, tx, label):
  def step(p, s, g):
    u, s = tx.update(g, s, p); return lib.apply_updates(p, u), s
  p = jax.tree.map(jnp.copy, p0); s = tx.init(p)
  t = time.perf_counter(); c = jax.jit(step, donate_argnums=(0, 1)).lower(p, s, g).compile(); tc = time.perf_counter() - t
  for _ in range(5): p, s = c(p, s, g)
  jax.block_until_ready(p); ts = []
  for _ in range(30):
    t = time.perf_counter(); p, s = c(p, s, g); jax.block_until_ready(p); ts.append(time.perf_counter() - t)
  print(f"{label:40s} {np.median(ts)*1e3:7.3f} ms  compile {tc:.1f} s", flush=True)
for name, mk in [("adam", lambda m: m.adam(1e-3)), ("clip+adamw", lambda m: m.chain(m.clip_by_global_norm(1.0), m.adamw(1e-3, weight_decay=1e-4)))]:
  bench(optax, mk(optax), f"optax {name}")
  bench(gradtx, mk(gradtx), f"gradtx {name}")
  for own in (1 << 16, 1 << 30):
    layouts._OWN_BUFFER_SIZE = own
    for gl in (64, 1024):
      layouts._GROUP_LEAVES = gl
      bench(gradtx, gradtx.group_leaves(mk(gradtx)), f"gradtx grouped {name} own={own} n={gl}")
