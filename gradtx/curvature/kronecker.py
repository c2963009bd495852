"""Kronecker-factored curvature: layer discovery in a loss's jaxpr and per-layer K-FAC factors.

`find_layers` traces `value_fn` (params -> mean loss over the batch) to a jaxpr and finds every
`dot_general` / `conv_general_dilated` whose weight operand is a params leaf (up to dtype
conversions and transposes): no layer registration. `kronecker_factors` re-evaluates that jaxpr
with a zero probe added to each layer's output and differentiates the loss with respect to the
probes, which gives the per-example output gradients, while it captures each layer's input:

.. math:: A = \frac{1}{N} \sum_{n, t} \bar a_{n,t} \bar a_{n,t}^\top, \qquad
          G = \frac{1}{N T} \sum_{n, t} g_{n,t} g_{n,t}^\top, \qquad
          g_{n,t} = N \frac{\partial L}{\partial s_{n,t}}

with :math:`N` the batch size (the layer input's leading axis), :math:`t` the positions sharing
the weight (:math:`T` = 1 for a dense layer on a (batch, features) input; the spatial output
positions of a convolution, whose :math:`\bar a` are the input patches, Grosse & Martens 2016),
:math:`L` the mean loss, and :math:`\bar a = (a, 1)` the homogeneous input when a bias leaf is
added to the layer's output (the bias is the last row of the layer's matrix, as in Martens &
Grosse 2015), else :math:`(a, 0)` (the extra coordinate is then inert). `kfac` builds on these.

The layer's matrix view of a weight leaf is `leaf.reshape(-1, leaf.shape[-1])`: the last axis is
the output axis (Flax's Dense, DenseGeneral with one output axis, and Conv kernels, nnx and
linen), the leading axes the inputs.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["KroneckerLayer", "find_layers", "kronecker_factors"]

_LAYER_KINDS = ("dense", "conv", "diagonal")
_STRUCTURAL = ("convert_element_type", "copy", "copy_p", "reduce_precision")
_CALLS = ("jit", "pjit", "closed_call", "core_call")


class KroneckerLayer(NamedTuple):
  """A layer found in a loss's jaxpr (static description, no arrays).

  Attributes:
    kind: 'dense' or 'conv'.
    weight: the index of the weight leaf in `jax.tree.leaves(params)`.
    bias: the index of the bias leaf added to the layer's output, or None.
    input_dim: rows of the matrix view without the homogeneous coordinate.
    output_dim: columns of the matrix view (the weight's last axis).
  """
  kind: str
  weight: int
  bias: int | None
  input_dim: int
  output_dim: int


def _read(env, v):
  return v.val if isinstance(v, jcore.Literal) else env[v]


def _sub_jaxpr(eqn):
  for key in ("jaxpr", "call_jaxpr"):
    sub = eqn.params.get(key)
    if isinstance(sub, jcore.ClosedJaxpr):
      return sub.jaxpr, sub.consts
    if isinstance(sub, jcore.Jaxpr):
      return sub, ()
  return None


class _Context:
  """What one evaluation of the jaxpr collects: layers in encounter order, their inputs."""

  def __init__(self, fn: str, specs: list, leaves: list, probes: list | None):
    self.fn = fn
    self.specs = specs
    self.leaves = leaves
    self.probes = probes
    self.layers: list[dict] = []
    self.inputs: list = []

  def leaf_name(self, i):
    return self.names[i] if hasattr(self, "names") else f"leaf {i}"


def _dense_input(x, x_contract, w_contract, w_perm):
  """The layer input as rows (positions, input_dim), columns in the leaf's leading-axis order."""
  leaf_axes = [w_perm[c] for c in w_contract]  # which leaf axis each contracting pair feeds
  order = [x_contract[i] for i in np.argsort(leaf_axes)]
  free = [d for d in range(x.ndim) if d not in x_contract]
  a = jnp.transpose(x, free + order)
  return a.reshape((-1, math.prod(x.shape[d] for d in x_contract)))


def _conv_input(eqn, x, w_shape, w_perm):
  """The input patches (positions, input_dim) of a convolution, columns in the leaf's order."""
  p = eqn.params
  lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
  spatial = [w_shape[d] for d in rhs_spec[2:]]
  patches = lax.conv_general_dilated_patches(
      x, filter_shape=spatial, window_strides=p["window_strides"], padding=p["padding"],
      lhs_dilation=p["lhs_dilation"], rhs_dilation=p["rhs_dilation"],
      dimension_numbers=p["dimension_numbers"], precision=p.get("precision"))
  # patches: out_spec layout, feature axis ordered (C, *spatial of rhs_spec).
  patches = jnp.moveaxis(patches, out_spec[1], -1)
  rows = patches.reshape((-1, patches.shape[-1]))
  c = x.shape[lhs_spec[1]]
  rows = rows.reshape((rows.shape[0], c, *spatial))
  leaf_axes = [w_perm[d] for d in (rhs_spec[1], *rhs_spec[2:])]  # leaf axis of C, spatial...
  order = [1 + i for i in np.argsort(leaf_axes)]
  return jnp.transpose(rows, [0] + order).reshape((rows.shape[0], -1))


def _layer_of(ctx, eqn, origins):
  """(operand index of the weight, leaf, perm) when `eqn` is a layer on a params leaf."""
  name = eqn.primitive.name
  if name not in ("dot_general", "conv_general_dilated"):
    return None
  found = [(k, origins[k]) for k in range(2) if origins[k] is not None and origins[k][0] == "w"]
  if not found:
    return None
  k, (_, leaf, perm) = found[-1] if name == "conv_general_dilated" else found[0]
  return k, leaf, perm


def _unknown(ctx, leaf, why):
  return ValueError(
      f"gradtx.{ctx.fn}: params leaf {ctx.leaf_name(leaf)} (shape {ctx.leaves[leaf].shape}) "
      f"{why}; pass layer_specs= with 'diagonal' for it (or 'dense' / 'conv' when it is such a "
      "layer's weight).")


def _eval(ctx, jaxpr, consts, args, origins_in):
  env, origin, layer_out = {}, {}, {}
  for v, c in zip(jaxpr.constvars, consts):
    env[v] = c
  for v, a, o in zip(jaxpr.invars, args, origins_in):
    env[v] = a
    origin[v] = o
  for eqn in jaxpr.eqns:
    invals = [_read(env, v) for v in eqn.invars]
    ins = [origin.get(v) if not isinstance(v, jcore.Literal) else None for v in eqn.invars]
    name = eqn.primitive.name
    sub = _sub_jaxpr(eqn) if name in _CALLS else None
    layer = _layer_of(ctx, eqn, ins)
    if sub is not None and any(o is not None for o in ins):
      outs, outs_origin = _eval(ctx, sub[0], sub[1], invals, ins)
      for v, val, o in zip(eqn.outvars, outs, outs_origin):
        env[v] = val
        origin[v] = o
      continue
    with eqn.ctx.manager:
      outs = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
    outs = outs if eqn.primitive.multiple_results else [outs]
    if layer is not None:
      k, leaf, perm = layer
      spec = ctx.specs[leaf]
      kind = "dense" if name == "dot_general" else "conv"
      w_shape = ctx.leaves[leaf].shape
      if spec is not None and spec != kind:
        raise _unknown(ctx, leaf, f"is the weight of a {kind} layer but layer_specs says "
                                  f"{spec!r}")
      if any(l["weight"] == leaf for l in ctx.layers):
        raise _unknown(ctx, leaf, "is the weight of more than one layer (weight sharing)")
      x = invals[1 - k]
      if kind == "dense":
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        w_contract, x_contract = (rc, lc) if k == 1 else (lc, rc)
        if lb or rb or sorted(perm[c] for c in w_contract) != list(range(len(w_shape) - 1)):
          raise _unknown(ctx, leaf, "is used by a dot_general whose contracted axes are not "
                                    "all but its last axis (or that has batch axes)")
        a = _dense_input(x, list(x_contract), list(w_contract), perm)
        out_axis = outs[0].ndim - 1 if k == 1 else 0
        batch = x.shape[0]
      else:
        lhs_spec, rhs_spec, out_spec = eqn.params["dimension_numbers"]
        if (eqn.params["feature_group_count"] != 1 or eqn.params["batch_group_count"] != 1
            or perm[rhs_spec[0]] != len(w_shape) - 1):
          raise _unknown(ctx, leaf, "is a grouped convolution's kernel or its output axis is "
                                    "not its last axis")
        a = _conv_input(eqn, x, invals[k].shape, perm)
        out_axis = out_spec[1]
        batch = x.shape[lhs_spec[0]]
      index = len(ctx.layers)
      ctx.layers.append(dict(kind=kind, weight=leaf, bias=None, out_axis=out_axis,
                             batch=batch, shape=outs[0].shape, dtype=outs[0].dtype))
      ctx.inputs.append(a)
      out = outs[0]
      if ctx.probes is not None:
        out = out + ctx.probes[index]
      env[eqn.outvars[0]] = out
      layer_out[eqn.outvars[0]] = index
      continue
    # Bias detection: an add of a layer's output and a rank-1 params leaf of its output size.
    if name == "add" and len(eqn.invars) == 2:
      for j in range(2):
        v, o = eqn.invars[j], ins[1 - j]
        if (not isinstance(v, jcore.Literal) and v in layer_out and o is not None
            and o[0] in ("b", "w")):
          rec = ctx.layers[layer_out[v]]
          leaf = o[1]
          if (ctx.leaves[leaf].ndim == 1 and ctx.leaves[leaf].shape[0] ==
              rec["shape"][rec["out_axis"]] and rec["bias"] is None
              and ctx.specs[leaf] in (None, "dense", "conv")):
            rec["bias"] = leaf
    # Origin propagation: weights through dtype conversions and transposes; spec'd weights
    # through any same-shape op; possible biases through reshapes and broadcasts.
    for v, out in zip(eqn.outvars, outs):
      env[v] = out
    src = [(o, val) for o, val in zip(ins, invals) if o is not None]
    if len(eqn.outvars) == 1 and len(src) == 1:
      (o, val), out = src[0], outs[0]
      new = None
      if o[0] == "w" and name in _STRUCTURAL:
        new = o
      elif o[0] == "w" and name == "transpose":
        new = ("w", o[1], tuple(o[2][d] for d in eqn.params["permutation"]))
      elif o[0] == "w" and ctx.specs[o[1]] in ("dense", "conv") and out.shape == val.shape:
        new = o
      elif (ctx.leaves[o[1]].ndim == 1 and name in ("reshape", "broadcast_in_dim", "squeeze",
                                                    "expand_dims") + _STRUCTURAL):
        new = ("b", o[1])
      if new is not None:
        origin[eqn.outvars[0]] = new
  outs = [_read(env, v) for v in jaxpr.outvars]
  outs_origin = [None if isinstance(v, jcore.Literal) else origin.get(v)
                 for v in jaxpr.outvars]
  return outs, outs_origin


def _specs(fn: str, layer_specs: Any, params: Any) -> list:
  leaves = jax.tree.leaves(params)
  if layer_specs is None:
    return [None] * len(leaves)
  specs = jax.tree.leaves(layer_specs, is_leaf=lambda x: x is None or isinstance(x, str))
  structure = jax.tree.structure(layer_specs, is_leaf=lambda x: x is None or isinstance(x, str))
  if len(specs) != len(leaves):
    raise ValueError(
        f"gradtx.{fn}: layer_specs must have the params' structure (one of 'dense', 'conv', "
        f"'diagonal' or None per leaf), got {structure} for params "
        f"{jax.tree.structure(params)}.")
  for path, s in zip(_names(layer_specs, is_spec=True), specs):
    if s is not None and s not in _LAYER_KINDS:
      raise ValueError(f"gradtx.{fn}: layer_specs at {path} must be one of {_LAYER_KINDS} or "
                       f"None, got {s!r}.")
  return specs


def _names(tree: Any, is_spec: bool = False) -> list[str]:
  is_leaf = (lambda x: x is None or isinstance(x, str)) if is_spec else None
  paths = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]
  return [jax.tree_util.keystr(p) or "<root>" for p, _ in paths]


def _run(fn: str, value_fn: Callable[[Any], Any], params: Any, specs: list, probes):
  leaves, treedef = jax.tree.flatten(params)
  closed = jax.make_jaxpr(lambda *ls: value_fn(jax.tree.unflatten(treedef, ls)))(*leaves)
  ctx = _Context(fn, specs, leaves, probes)
  ctx.names = _names(params)
  origins = [("w", i, tuple(range(jnp.ndim(l)))) for i, l in enumerate(leaves)]
  outs, _ = _eval(ctx, closed.jaxpr, closed.consts, leaves, origins)
  if len(outs) != 1 or jnp.shape(outs[0]) != ():
    raise ValueError(f"gradtx.{fn}: value_fn must return a scalar loss (the mean over the "
                     f"batch), got {len(outs)} outputs of shapes {[jnp.shape(o) for o in outs]}.")
  return outs[0], ctx


def find_layers(value_fn: Callable[[Any], Any], params: Any, *,
                layer_specs: Any = None, fn: str = "curvature.find_layers") -> dict[int, Any]:
  r"""The dense and convolution layers of a loss, found in its jaxpr (no registration).

  A layer is a ``dot_general`` or ``conv_general_dilated`` whose weight operand is a params leaf
  :math:`W`, computing :math:`s = \bar a^\top W` from its (homogeneous) input :math:`\bar a`;
  its K-FAC block is :math:`F_W \approx A \otimes G` (see `kronecker_factors`).

  Args:
    value_fn: params -> the mean loss over a batch (closing over the batch).
    params: the parameters (a pytree of arrays).
    layer_specs: optional pytree with the params' structure of 'dense' | 'conv' | 'diagonal' |
      None: 'dense'/'conv' also follow the leaf through same-shape ops (a weight mask, a
      normalisation) to its layer; 'diagonal' leaves are no layer's weight.
    fn: the function name used in error messages.

  Returns:
    A dict from the weight leaf's index in `jax.tree.leaves(params)` to a `KroneckerLayer`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p = {'w': jnp.ones((3, 2)), 'b': jnp.zeros(2)}
    >>> loss = lambda p: jnp.mean((jnp.ones((4, 3)) @ p['w'] + p['b']) ** 2)
    >>> gradtx.curvature.find_layers(loss, p)[1]
    KroneckerLayer(kind='dense', weight=1, bias=0, input_dim=3, output_dim=2)

  References:
    Martens & Grosse, `Optimizing Neural Networks with Kronecker-factored Approximate Curvature
    <https://arxiv.org/abs/1503.05671>`_, ICML 2015; Grosse & Martens, `A Kronecker-factored
    approximate Fisher matrix for convolution layers <https://arxiv.org/abs/1602.01407>`_,
    ICML 2016.
  """
  specs = _specs(fn, layer_specs, params)
  leaves = jax.tree.leaves(params)
  ctx = _layer_records(fn, value_fn, params, specs)
  return {r["weight"]: KroneckerLayer(r["kind"], r["weight"], r["bias"],
                                      math.prod(leaves[r["weight"]].shape[:-1]),
                                      leaves[r["weight"]].shape[-1]) for r in ctx.layers}


def _layer_records(fn, value_fn, params, specs):
  box = {}

  def trace(p):
    _, ctx = _run(fn, value_fn, p, specs, None)
    box["ctx"] = ctx
    return 0.0

  jax.eval_shape(trace, params)
  ctx = box["ctx"]
  for i, (leaf, spec) in enumerate(zip(ctx.leaves, specs)):
    if spec in ("dense", "conv") and not any(l["weight"] == i for l in ctx.layers):
      raise _unknown(ctx, i, f"is given layer_specs {spec!r} but no {spec} layer of value_fn "
                             "uses it")
  return ctx


def kronecker_factors(value_fn: Callable[[Any], Any], params: Any, *, layer_specs: Any = None,
                      fn: str = "curvature.kronecker_factors") -> tuple[Any, dict]:
  r"""The loss, its gradient probes and the K-FAC factors (A, G) of each layer, for one batch.

  .. math:: A = \frac{1}{N} \sum_{n,t} \bar a_{n,t} \bar a_{n,t}^\top, \quad
            G = \frac{1}{N T} \sum_{n,t} g_{n,t} g_{n,t}^\top

  (see the module docstring). With `value_fn` the loss on the data's labels these are the
  factors of the empirical Fisher; with a loss on targets sampled from the model, of the Fisher.

  Args:
    value_fn: params -> the mean loss over a batch (closing over the batch).
    params: the parameters.
    layer_specs: as in `find_layers`.
    fn: the function name used in error messages.

  Returns:
    `(loss, factors)`: factors maps each weight leaf's index to `(KroneckerLayer, A, G)`, A of
    shape (input_dim + 1, input_dim + 1) (homogeneous coordinate last; all zero without a
    bias), G of shape (output_dim, output_dim).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> p = {'w': jnp.ones((3, 2))}
    >>> loss = lambda p: jnp.mean((jnp.ones((4, 3)) @ p['w']) ** 2)
    >>> _, f = gradtx.curvature.kronecker_factors(loss, p)
    >>> f[0][1].shape, f[0][2].shape
    ((4, 4), (2, 2))

  References:
    Martens & Grosse, `Optimizing Neural Networks with Kronecker-factored Approximate Curvature
    <https://arxiv.org/abs/1503.05671>`_, ICML 2015; Grosse & Martens, `A Kronecker-factored
    approximate Fisher matrix for convolution layers <https://arxiv.org/abs/1602.01407>`_,
    ICML 2016.
  """
  specs = _specs(fn, layer_specs, params)
  rec = _layer_records(fn, value_fn, params, specs).layers
  leaves = jax.tree.leaves(params)
  probes = [jnp.zeros(r["shape"], r["dtype"]) for r in rec]

  def loss_of_probes(probes):
    loss, ctx = _run(fn, value_fn, params, specs, probes)
    return loss, ctx.inputs

  (loss, inputs), dprobes = jax.value_and_grad(loss_of_probes, has_aux=True)(probes)
  factors = {}
  for r, a, ds in zip(rec, inputs, dprobes):
    n = r["batch"]
    g = jnp.moveaxis(ds, r["out_axis"], -1)
    g = g.reshape((-1, g.shape[-1])) * n  # g_{n,t} = N dL/ds_{n,t}
    t = g.shape[0] // n
    one = jnp.ones if r["bias"] is not None else jnp.zeros
    a = jnp.concatenate([a, one((a.shape[0], 1), a.dtype)], axis=1)  # homogeneous (a, 1)
    big_a = a.T @ a / n  # A = (1/N) sum a a^T
    big_g = g.T @ g / (n * t)  # G = (1/(N T)) sum g g^T
    w = leaves[r["weight"]]
    layer = KroneckerLayer(r["kind"], r["weight"], r["bias"], math.prod(w.shape[:-1]),
                           w.shape[-1])
    factors[r["weight"]] = (layer, big_a, big_g)
  return loss, factors
