"""Audit: is gradtx's optimizer state laid out exactly as optax's, for every shared name?

A script, not a test (pytest collects only `test_*.py`); `tests/test_state_layout.py` asserts the
same table. For each configuration in `CONFIGS` it builds `optax.X(args).init(params)` and
`gradtx.X(args).init(params)` on a small nested params dict and compares a normalised
description of the two states: recursively the node's type *name* and field names (NamedTuples),
dict class names and keys, sequence lengths, and per leaf its kind, shape and dtype. jax treedefs compare node
types by identity, so `jax.tree.structure` of the two states is never equal: the description is
what a checkpoint (flax.serialization, Orbax) sees, plus the class names.

Run: `PYTHONPATH=. JAX_PLATFORMS=cpu python tests/state_audit.py` (from the repository root);
exits 1 when some configuration differs.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def make_params() -> dict[str, Any]:
  """A small nested params dict: a dict of a dict and a tuple, a scalar leaf, an odd shape."""
  return {
      "dense": {"w": jnp.ones((2, 3), jnp.float32), "b": jnp.zeros((3,), jnp.float32)},
      "pair": (jnp.full((4,), 0.5, jnp.float32), jnp.asarray(2.0, jnp.float32)),
  }


def _mask(params):
  """Decay the matrices only (a callable mask, as users write to skip biases)."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _labels(params):
  del params
  return {"dense": {"w": "adam", "b": "sgd"}, "pair": ("sgd", "frozen")}


def _norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def _sched(L):
  return L.linear_schedule(0.1, 0.01, 10)


def _contrib(L, name):
  """optax keeps `reduce_on_plateau` in `optax.contrib`; gradtx at the top level."""
  contrib = getattr(L, "contrib", None)
  return getattr(contrib, name) if contrib is not None and hasattr(contrib, name) else getattr(
      L, name)


def _lookahead_params(L, params):
  return L.LookaheadParams.init_synced(params)


class Config(NamedTuple):
  id: str
  make: Callable[[Any], Any]  # library module (optax or gradtx) -> a transformation
  params: Callable[[Any, Any], Any] | None = None  # (library, params) -> the params to init
  value: bool = False  # update takes the monitored metric as `value=`
  known: dict[str, str] = {}  # {"init" or "step": why gradtx deliberately differs there}


# Deliberate differences, with the reason (tests/test_state_layout.py marks them strict xfail).
RAW_KEY = ("optax keeps a typed PRNG key (key<fry>[]) in AddNoiseState.rng_key, which "
           "flax.serialization cannot write; gradtx keeps its raw uint32 key data (same tree "
           "structure, another leaf dtype/shape) so the state stays serializable")
ORDERED_DICT = ("optax's named_chain keeps an OrderedDict, which flax.serialization cannot "
                "write; gradtx keeps a plain dict with the same keys and members")
MONITOR_INIT = ("optax's monitor `init` returns empty measurements ({}) and its `update` fills "
                "them, so optax's own state changes structure after one step; gradtx's `init` "
                "builds the measurements' final structure (the same as optax's after a step)")


C = Config
CONFIGS: list[Config] = [
    # --- aliases -----------------------------------------------------------------------------
    C("sgd", lambda L: L.sgd(0.1)),
    C("sgd-schedule", lambda L: L.sgd(_sched(L))),
    C("sgd-momentum", lambda L: L.sgd(0.1, momentum=0.9)),
    C("sgd-nesterov", lambda L: L.sgd(0.1, momentum=0.9, nesterov=True)),
    C("sgd-momentum-f32-acc", lambda L: L.sgd(0.1, 0.9, accumulator_dtype=jnp.bfloat16)),
    C("adam", lambda L: L.adam(0.01)),
    C("adam-schedule", lambda L: L.adam(_sched(L))),
    C("adam-mu-bf16", lambda L: L.adam(0.01, mu_dtype=jnp.bfloat16)),
    C("adamw", lambda L: L.adamw(0.01)),
    C("adamw-mask", lambda L: L.adamw(0.01, weight_decay=0.1, mask=_mask)),
    C("adamw-schedule", lambda L: L.adamw(_sched(L), weight_decay=0.1)),
    C("nadam", lambda L: L.nadam(0.01)),
    C("nadamw", lambda L: L.nadamw(0.01)),
    C("adamax", lambda L: L.adamax(0.01)),
    C("adamaxw", lambda L: L.adamaxw(0.01)),
    C("amsgrad", lambda L: L.amsgrad(0.01)),
    C("adagrad", lambda L: L.adagrad(0.1)),
    C("adadelta", lambda L: L.adadelta(1.0)),
    C("adadelta-wd", lambda L: L.adadelta(1.0, weight_decay=0.1)),
    C("rmsprop", lambda L: L.rmsprop(0.01)),
    C("rmsprop-centered", lambda L: L.rmsprop(0.01, centered=True)),
    C("rmsprop-momentum", lambda L: L.rmsprop(0.01, momentum=0.9)),
    C("rmsprop-centered-nesterov",
      lambda L: L.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True)),
    C("rmsprop-bias-correction", lambda L: L.rmsprop(0.01, bias_correction=True)),
    C("rmsprop-centered-bias-correction",
      lambda L: L.rmsprop(0.01, centered=True, bias_correction=True)),
    C("noisy_sgd", lambda L: L.noisy_sgd(0.01, key=0), known={"init": RAW_KEY, "step": RAW_KEY}),
    # --- primitives --------------------------------------------------------------------------
    C("scale", lambda L: L.scale(0.5)),
    C("scale_by_learning_rate", lambda L: L.scale_by_learning_rate(0.1)),
    C("scale_by_learning_rate-no-flip", lambda L: L.scale_by_learning_rate(0.1, flip_sign=False)),
    C("scale_by_learning_rate-schedule", lambda L: L.scale_by_learning_rate(_sched(L))),
    C("scale_by_schedule", lambda L: L.scale_by_schedule(_sched(L))),
    C("trace", lambda L: L.trace(0.9)),
    C("trace-nesterov", lambda L: L.trace(0.9, nesterov=True)),
    C("ema", lambda L: L.ema(0.9)),
    C("ema-no-debias", lambda L: L.ema(0.9, debias=False)),
    C("scale_by_rms", lambda L: L.scale_by_rms()),
    C("scale_by_rms-bias-correction", lambda L: L.scale_by_rms(bias_correction=True)),
    C("scale_by_stddev", lambda L: L.scale_by_stddev()),
    C("scale_by_stddev-bias-correction", lambda L: L.scale_by_stddev(bias_correction=True)),
    C("scale_by_rss", lambda L: L.scale_by_rss()),
    C("scale_by_adam", lambda L: L.scale_by_adam()),
    C("scale_by_adam-nesterov", lambda L: L.scale_by_adam(nesterov=True)),
    C("scale_by_adamax", lambda L: L.scale_by_adamax()),
    C("scale_by_amsgrad", lambda L: L.scale_by_amsgrad()),
    C("scale_by_adadelta", lambda L: L.scale_by_adadelta()),
    C("scale_by_sign", lambda L: L.scale_by_sign()),
    C("add_decayed_weights", lambda L: L.add_decayed_weights(0.1)),
    C("add_decayed_weights-zero", lambda L: L.add_decayed_weights()),
    C("add_decayed_weights-schedule", lambda L: L.add_decayed_weights(_sched(L))),
    C("add_decayed_weights-mask", lambda L: L.add_decayed_weights(0.1, _mask)),
    C("add_decayed_weights-schedule-mask", lambda L: L.add_decayed_weights(_sched(L), _mask)),
    C("add_noise", lambda L: L.add_noise(0.01, 0.55, 0), known={"init": RAW_KEY, "step": RAW_KEY}),
    C("clip", lambda L: L.clip(1.0)),
    C("clip_by_global_norm", lambda L: L.clip_by_global_norm(1.0)),
    C("clip_by_block_rms", lambda L: L.clip_by_block_rms(1.0)),
    C("identity", lambda L: L.identity()),
    C("set_to_zero", lambda L: L.set_to_zero()),
    C("stateless", lambda L: L.stateless(lambda u, p: u)),
    # --- wrappers and combinators ------------------------------------------------------------
    C("chain", lambda L: L.chain(L.clip_by_global_norm(1.0), L.scale_by_adam(),
                                 L.scale_by_learning_rate(0.01))),
    C("named_chain", lambda L: L.named_chain(("clip", L.clip(1.0)), ("adam", L.adam(0.01))),
      known={"init": ORDERED_DICT, "step": ORDERED_DICT}),
    C("multi_transform", lambda L: L.multi_transform(
        {"adam": L.adam(0.01), "sgd": L.sgd(0.1, 0.9), "frozen": L.set_to_zero()}, _labels)),
    C("masked", lambda L: L.masked(L.adam(0.01), _mask)),
    C("masked-tree", lambda L: L.masked(
        L.sgd(0.1, 0.9), {"dense": {"w": True, "b": False}, "pair": (False, True)})),
    C("conditionally_mask", lambda L: L.conditionally_mask(L.sgd(0.1, 0.9),
                                                           lambda step: step >= 1)),
    C("conditionally_transform", lambda L: L.conditionally_transform(L.adam(0.01),
                                                                     lambda step: step >= 1)),
    C("apply_if_finite", lambda L: L.apply_if_finite(L.adam(0.01), 3)),
    C("MultiSteps", lambda L: L.MultiSteps(L.adam(0.01), 2)),
    C("MultiSteps-schedule", lambda L: L.MultiSteps(L.sgd(0.1, 0.9),
                                                    lambda step: jnp.where(step < 1, 1, 2))),
    C("flatten", lambda L: L.flatten(L.adam(0.01))),
    C("lookahead", lambda L: L.lookahead(L.adam(0.01), 2, 0.5), _lookahead_params),
    C("inject_hyperparams-adam", lambda L: L.inject_hyperparams(L.adam)(learning_rate=0.01)),
    C("inject_hyperparams-adam-schedule",
      lambda L: L.inject_hyperparams(L.adam)(learning_rate=_sched(L))),
    C("inject_hyperparams-sgd-momentum",
      lambda L: L.inject_hyperparams(L.sgd)(learning_rate=0.1, momentum=0.9)),
    C("monitor", lambda L: L.monitor({"norm": _norm, "ema": L.ema(0.9)}),
      known={"init": MONITOR_INIT}),
    C("snapshot", lambda L: L.snapshot("norm", _norm)),
    C("reduce_on_plateau", lambda L: _contrib(L, "reduce_on_plateau")(factor=0.5, patience=2),
      value=True),
    C("chain-adam-reduce_on_plateau", lambda L: L.chain(
        L.adam(0.01), _contrib(L, "reduce_on_plateau")(factor=0.5, patience=2)), value=True),
]


# --- normalised description ------------------------------------------------------------------


def describe(x: Any) -> Any:
  """A hashable, library-neutral description of a state: what a checkpoint sees, plus class
  names. NamedTuples by type name and fields, dicts by keys, other pytree nodes by type name and
  children, array leaves by shape and dtype, Python scalars by type."""
  if x is None:
    return ("None",)
  if isinstance(x, tuple) and hasattr(x, "_fields"):
    return (type(x).__name__, tuple((f, describe(getattr(x, f))) for f in x._fields))
  if isinstance(x, (tuple, list)):
    return (type(x).__name__, tuple(describe(v) for v in x))
  if isinstance(x, dict):  # by class name too: jax and flax treat OrderedDict apart from dict
    return (type(x).__name__, "keys",
            tuple((k, describe(x[k])) for k in sorted(x, key=repr)))
  if isinstance(x, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
    return ("array", tuple(x.shape), str(x.dtype))
  if isinstance(x, (bool, int, float, complex)):
    return ("python", type(x).__name__)
  children, _ = jax.tree_util.tree_flatten(x, is_leaf=lambda y: y is not x)
  if len(children) == 1 and children[0] is x:  # an unregistered leaf
    return ("leaf", type(x).__name__)
  return (type(x).__name__, tuple(describe(c) for c in children))


def render(d: Any) -> str:
  """A compact one-line rendering of a description."""
  kind = d[0]
  if kind == "None":
    return "None"
  if kind == "array":
    return f"{d[2]}{list(d[1])}"
  if kind in ("python", "leaf"):
    return f"<{d[1]}>"
  if len(d) == 3 and d[1] == "keys":  # a dict (or a dict subclass such as OrderedDict)
    body = "{" + ", ".join(f"{k!r}: {render(v)}" for k, v in d[2]) + "}"
    return body if kind == "dict" else f"{kind}({body})"
  if kind in ("tuple", "list"):
    return "(" + ", ".join(render(v) for v in d[1]) + ("," if len(d[1]) == 1 else "") + ")"
  if d[1] and isinstance(d[1][0], tuple) and len(d[1][0]) == 2 and isinstance(d[1][0][0], str):
    return f"{kind}(" + ", ".join(f"{f}={render(v)}" for f, v in d[1]) + ")"
  return f"{kind}(" + ", ".join(render(v) for v in d[1]) + ")"


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
  """The path and both sides of the first place where two descriptions differ."""
  if a == b:
    return None
  if len(a) == 3 and a[1] == "keys" and len(b) == 3 and b[1] == "keys":
    if a[0] != b[0] or [k for k, _ in a[2]] != [k for k, _ in b[2]]:
      return f"{path or '<root>'}: optax {render(a)} | gradtx {render(b)}"
    for (k, x), (_, y) in zip(a[2], b[2]):
      sub = first_difference(x, y, f"{path}[{k!r}]")
      if sub:
        return sub
  if a[0] != b[0] or a[0] in ("array", "python", "leaf", "None") or len(a[1]) != len(b[1]):
    return f"{path or '<root>'}: optax {render(a)} | gradtx {render(b)}"
  for i, (x, y) in enumerate(zip(a[1], b[1])):
    if a[0] not in ("tuple", "list") and isinstance(x, tuple) and len(x) == 2 and not (
        isinstance(x[0], str) and x[0] in ("array",)):
      (kx, vx), (ky, vy) = x, y
      if kx != ky:
        return f"{path}.{a[0]}: field {kx!r} (optax) vs {ky!r} (gradtx)"
      sub = first_difference(vx, vy, f"{path}.{kx}")
    else:
      sub = first_difference(x, y, f"{path}[{i}]")
    if sub:
      return sub
  return f"{path or '<root>'}: optax {render(a)} | gradtx {render(b)}"


def states(L: Any, config: Config) -> dict[str, Any]:
  """{"init": tx.init(params), "step": the state after one `update`} for library `L`."""
  params = grads = make_params()
  if config.params is not None:
    params = config.params(L, params)
  tx = config.make(L)
  state = tx.init(params)
  extra = {"value": jnp.float32(1.0)} if config.value else {}
  _, stepped = tx.update(grads, state, params, **extra)
  return {"init": state, "step": stepped}


def compare(config: Config) -> dict[str, tuple[Any, Any]]:
  """{stage: (optax's description, gradtx's description)} for stages "init" and "step"."""
  import gradtx  # pylint: disable=import-outside-toplevel
  import optax  # pylint: disable=import-outside-toplevel
  want, got = states(optax, config), states(gradtx, config)
  return {stage: (describe(want[stage]), describe(got[stage])) for stage in want}


def main() -> int:
  rows = []
  for config in CONFIGS:
    try:
      pairs = compare(config)
    except Exception as e:  # pylint: disable=broad-except
      rows.append((config.id, "-", f"ERROR {type(e).__name__}: {e}", ""))
      continue
    for stage, (want, got) in pairs.items():
      if want != got:
        rows.append((config.id, stage, first_difference(want, got),
                     config.known.get(stage, "UNEXPECTED")))
  width = max([len(c.id) for c in CONFIGS] + [6])
  unexpected = [r for r in rows if r[3] in ("", "UNEXPECTED")]
  print(f"{len(CONFIGS)} configurations x (init, after one step): {len(rows)} mismatches, "
        f"{len(unexpected)} unexpected\n")
  if rows:
    print(f"{'config':<{width}}  stage  first difference (optax | gradtx)")
    print(f"{'-' * width}  -----  {'-' * 60}")
    for name, stage, diff, why in rows:
      print(f"{name:<{width}}  {stage:<5}  {diff}")
      print(f"{'':<{width}}         known: {why}" if why not in ("", "UNEXPECTED") else
            f"{'':<{width}}         UNEXPECTED")
  return 1 if unexpected else 0




# --- layer-wise and factored optimizers (issue 14, slice "layerwise"). optax's SM3 cannot update
# a scalar leaf (IndexError), so its configurations mask the scalar out.
_NO_SCALAR = {"dense": {"w": True, "b": True}, "pair": (True, False)}


CONFIGS += [
    C("adafactor", lambda L: L.adafactor(0.1, min_dim_size_to_factor=2)),
    C("adafactor-full", lambda L: L.adafactor(_sched(L), min_dim_size_to_factor=2, momentum=0.9,
                                              weight_decay_rate=0.01, weight_decay_mask=_mask)),
    C("adafactor-unfactored", lambda L: L.adafactor(factored=False)),
    C("scale_by_factored_rms", lambda L: L.scale_by_factored_rms(min_dim_size_to_factor=2)),
    C("sm3", lambda L: L.masked(L.sm3(0.1), _NO_SCALAR)),
    C("scale_by_sm3", lambda L: L.masked(L.scale_by_sm3(), _NO_SCALAR)),
    C("lamb", lambda L: L.lamb(0.1, weight_decay=0.1, mask=_mask)),
    C("lars", lambda L: L.lars(_sched(L), weight_decay=0.01)),
    C("lars-masks", lambda L: L.lars(0.1, weight_decay_mask=_mask, trust_ratio_mask=_mask)),
    C("fromage", lambda L: L.fromage(0.1)),
    C("fromage-schedule", lambda L: L.fromage(_sched(L))),
    C("scale_by_trust_ratio", lambda L: L.scale_by_trust_ratio()),
    C("param_block", lambda L: L.chain(L.scale_by_param_block_norm(),
                                       L.scale_by_param_block_rms(), L.centralize(),
                                       L.normalize_by_update_norm())),
]


# --- issue 14 zoo, slice cocob: DoG (top level), contrib DoG/DoWG, COCOB, MoMo, MoMo-Adam ---------

CONFIGS += [
    C("scale_by_distance_over_gradients",
      lambda L: L.scale_by_distance_over_gradients(reps_rel=1e-4)),
    C("contrib.dog", lambda L: _contrib(L, "dog")()),
    C("contrib.dog-wd-mask", lambda L: _contrib(L, "dog")(
        0.5, ("learning_rate", 0.1), weight_decay=0.01, mask=_mask)),
    C("contrib.dowg", lambda L: _contrib(L, "dowg")()),
    C("contrib.dowg-wd", lambda L: _contrib(L, "dowg")(init_estim_sq_dist=0.1, weight_decay=0.1)),
    C("contrib.cocob", lambda L: _contrib(L, "cocob")()),
    C("contrib.cocob-schedule-mask", lambda L: _contrib(L, "cocob")(
        _sched(L), weight_decay=0.01, mask=_mask)),
    C("contrib.momo", lambda L: _contrib(L, "momo")(), value=True),
    C("contrib.momo-adapt", lambda L: _contrib(L, "momo")(
        0.5, weight_decay=0.01, adapt_lower_bound=True), value=True),
    C("contrib.momo_adam", lambda L: _contrib(L, "momo_adam")(), value=True),
    C("contrib.momo_adam-adapt", lambda L: _contrib(L, "momo_adam")(
        0.05, weight_decay=0.01, adapt_lower_bound=True), value=True),
]


# --- sign slice (issue 14) ---------------------------------------------------------------------
CONFIGS += [
    C("lion", lambda L: L.lion(1e-3)),
    C("lion-mu-bf16-mask", lambda L: L.lion(1e-3, mu_dtype=jnp.bfloat16, mask=_mask)),
    C("sign_sgd", lambda L: L.sign_sgd(0.1)),
    C("signum", lambda L: L.signum(0.1)),
    C("rprop", lambda L: L.rprop(0.1)),
    C("optimistic_gradient_descent", lambda L: L.optimistic_gradient_descent(0.1)),
    C("optimistic_adam", lambda L: L.optimistic_adam(0.1)),
    C("optimistic_adam_v2", lambda L: L.optimistic_adam_v2(_sched(L))),
    C("polyak_sgd", lambda L: L.polyak_sgd(), value=True),
]


# --- contrib: madgrad, acprop, ademamix, simplified_ademamix, adopt
CONFIGS += [
    C("contrib.madgrad", lambda L: _contrib(L, "madgrad")(0.01)),
    C("contrib.madgrad-schedule", lambda L: _contrib(L, "madgrad")(_sched(L), weight_decay=0.1)),
    C("contrib.acprop", lambda L: _contrib(L, "acprop")(0.01)),
    C("contrib.acprop-mask", lambda L: _contrib(L, "acprop")(0.01, weight_decay=0.1, mask=_mask)),
    C("contrib.ademamix", lambda L: _contrib(L, "ademamix")(0.01)),
    C("contrib.ademamix-schedules", lambda L: _contrib(L, "ademamix")(
        _sched(L), b3=_sched(L), alpha=_sched(L), weight_decay=0.1, mask=_mask)),
    C("contrib.simplified_ademamix", lambda L: _contrib(L, "simplified_ademamix")(0.01)),
    C("contrib.adopt", lambda L: _contrib(L, "adopt")(0.01)),
    C("contrib.adopt-nesterov", lambda L: _contrib(L, "adopt")(_sched(L), nesterov=True)),
]


# --- issue 14, adaptive slice: adabelief, yogi, radam, adan, novograd and their primitives
CONFIGS += [
    C("adabelief", lambda L: L.adabelief(0.01)),
    C("adabelief-nesterov", lambda L: L.adabelief(_sched(L), nesterov=True)),
    C("yogi", lambda L: L.yogi(0.01)),
    C("radam", lambda L: L.radam(0.01)),
    C("radam-nesterov-schedule", lambda L: L.radam(_sched(L), nesterov=True)),
    C("adan", lambda L: L.adan(0.01)),
    C("adan-mask", lambda L: L.adan(0.01, weight_decay=0.1, mask=_mask)),
    C("novograd", lambda L: L.novograd(0.01, weight_decay=0.1)),
    C("scale_by_belief", lambda L: L.scale_by_belief()),
    C("scale_by_yogi", lambda L: L.scale_by_yogi()),
    C("scale_by_radam", lambda L: L.scale_by_radam()),
    C("scale_by_adan", lambda L: L.scale_by_adan()),
    C("scale_by_novograd", lambda L: L.scale_by_novograd(mu_dtype=jnp.bfloat16)),
]


# --- contrib: learning-rate-free optimizers (schedule_free, prodigy, dadapt_adamw, mechanize) ----

CONFIGS += [
    C("schedule_free", lambda L: _contrib(L, "schedule_free")(L.sgd(0.1), 0.1)),
    C("schedule_free-adam-schedule", lambda L: _contrib(L, "schedule_free")(
        L.adam(_sched(L), b1=0.0), _sched(L), b1=0.8)),
    C("schedule_free_sgd", lambda L: _contrib(L, "schedule_free_sgd")(0.1)),
    C("schedule_free_sgd-wd-warmup", lambda L: _contrib(L, "schedule_free_sgd")(
        0.1, warmup_steps=5, weight_decay=0.01)),
    C("schedule_free_adamw", lambda L: _contrib(L, "schedule_free_adamw")(0.01)),
    C("schedule_free_adamw-warmup-bf16z", lambda L: _contrib(L, "schedule_free_adamw")(
        0.01, warmup_steps=5, weight_decay=0.1, state_dtype=jnp.bfloat16)),
    C("prodigy", lambda L: _contrib(L, "prodigy")()),
    C("prodigy-schedule", lambda L: _contrib(L, "prodigy")(_sched(L), safeguard_warmup=True)),
    C("dadapt_adamw", lambda L: _contrib(L, "dadapt_adamw")()),
    C("dadapt_adamw-schedule", lambda L: _contrib(L, "dadapt_adamw")(_sched(L),
                                                                    weight_decay=0.1)),
    C("mechanize", lambda L: _contrib(L, "mechanize")(L.adam(0.01))),
    C("mechanize-sgd-3betas", lambda L: _contrib(L, "mechanize")(L.sgd(0.1, 0.9), num_betas=3)),
]




# --- contrib: muon, galore, dpsgd, normalize, split_real_and_imaginary (issue 14, "matrix") --
CONFIGS += [
    C("contrib.muon", lambda L: _contrib(L, "muon")(0.1)),
    C("contrib.muon-wd-bf16", lambda L: _contrib(L, "muon")(
        _sched(L), weight_decay=0.1, mu_dtype=jnp.bfloat16, ns_coeffs="dion")),
    C("contrib.galore", lambda L: _contrib(L, "galore")(0.1, rank=1, update_proj_gap=2)),
    C("contrib.scale_by_galore", lambda L: _contrib(L, "scale_by_galore")(rank=2)),
    C("contrib.normalize", lambda L: _contrib(L, "normalize")()),
    C("contrib.split_real_and_imaginary",
      lambda L: _contrib(L, "split_real_and_imaginary")(L.adam(0.1))),
]


# --- quasi-Newton and line searches (issue 16, "qn"). optax's searches need value=, grad= and
# value_fn= at every update: `_qn` wraps a transformation so that `update` computes them at params
# from a smooth loss (the state stays the wrapped transformation's).
def _qn_loss(params):
  return sum(jnp.sum(0.5 * x ** 2 + 0.1 * x ** 4) for x in jax.tree.leaves(params))


def _qn(L, tx):
  def update(updates, state, params=None, **extra_args):
    del extra_args
    value, grad = jax.value_and_grad(_qn_loss)(params)
    return tx.update(updates, state, params, value=value, grad=grad, value_fn=_qn_loss)
  return L.GradientTransformationExtraArgs(tx.init, update)


CONFIGS += [
    C("lbfgs", lambda L: _qn(L, L.lbfgs())),
    C("lbfgs-lr-nosearch", lambda L: _qn(L, L.lbfgs(0.1, memory_size=3, linesearch=None))),
    C("scale_by_lbfgs", lambda L: L.scale_by_lbfgs(memory_size=4, scale_init_precond=False)),
    C("scale_by_zoom_linesearch", lambda L: _qn(L, L.chain(
        L.sgd(1.0), L.scale_by_zoom_linesearch(10, initial_guess_strategy="one")))),
    C("scale_by_backtracking_linesearch", lambda L: _qn(L, L.chain(
        L.sgd(1.0), L.scale_by_backtracking_linesearch(10)))),
    C("scale_by_backtracking_linesearch-store_grad", lambda L: _qn(L, L.chain(
        L.sgd(1.0), L.scale_by_backtracking_linesearch(10, store_grad=True)))),
]


# --- issue 17 ("sophia"): contrib.sophia (its update needs obj_fn=, supplied by the wrapper) and
# contrib.sam (opaque mode's state is the same classes; tests/test_sophia.py compares it).
def _with_loss_fns(L, tx):
  def update(updates, state, params=None, **extra_args):
    del extra_args
    return tx.update(updates, state, params, obj_fn=_qn_loss)
  return L.GradientTransformationExtraArgs(tx.init, update)


def _sam(L, **kwargs):
  adv = L.chain(L.contrib.normalize(), L.sgd(0.05))
  return L.contrib.sam(L.sgd(0.1, momentum=0.9), adv, **kwargs)


CONFIGS += [
    C("contrib.sophia", lambda L: _with_loss_fns(L, L.contrib.sophia(0.1, update_interval=2))),
    C("contrib.sam", lambda L: _sam(L)),
]


if __name__ == "__main__":
  sys.exit(main())
