"""Checkpoint round trips: the state of every alias, wrapper and stateful composite survives
`flax.serialization` (msgpack bytes) and Orbax (`StandardCheckpointer`), and training resumed from
the restored state is bit-identical to uninterrupted training (params and every state leaf, with
their dtypes and tree structure). Also a flax nnx `Optimizer` saved and restored with Orbax.

Each case is one row of a table: `ALIAS_KWARGS` (every alias in `gradtx.optimizers.__all__`, so a new
alias is covered, and fails here until it can be built from the table), `CASES` (variants,
wrappers, monitors, averages, schedules, bfloat16) and `OPTIONAL_CASES` (modules not yet landed are
skipped). A coverage test checks that the table reaches every state class of `gradtx.__all__`.

Cost: one compilation per case, shared by the uninterrupted run, the resumed runs and both
backends; the Orbax round trips of all cases share one checkpoint (one save costs about as much
as a dozen states in one). So the whole module runs on one xdist worker.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import optimizers as aliases
from gradtx.base import GradientTransformation
from trees import NEEDS_FUNCTIONS, first_order_aliases, make_grads, make_params

pytestmark = pytest.mark.xdist_group("checkpoint")

N_BEFORE, N_AFTER = 3, 3  # steps before the checkpoint, steps after the restore
STEPS = N_BEFORE + N_AFTER
# The monitored metric passed as `value=` (reduce_on_plateau, early stopping): it improves, then
# plateaus across the checkpoint, so the counters and the scale change on both sides of it.
VALUES = (1.0, 0.5, 0.6, 0.7, 0.4, 0.8)


MIXED = "mixed"  # bfloat16 params under "a", float32 under "b"


def _params(dtype):
  if dtype != MIXED:
    return make_params(dtype)
  return {"a": make_params(jnp.bfloat16)["a"], "b": make_params(jnp.float32)["b"]}


class Case(NamedTuple):
  id: str
  make: Callable[[], Any]      # -> a transformation (an object with init and update)
  dtype: Any = jnp.float32     # params and grads dtype, or MIXED
  value: bool = False          # update takes the metric as `value=`
  nan_step: int | None = None  # a step whose gradient holds a NaN (skip logic in the state)
  wrap_params: Callable[[Any], Any] | None = None  # params of another structure (lookahead)
  xfail: tuple[tuple[str, str], ...] = ()  # (backend, reason) pairs, strict
  skip: str | None = None


# --- the table -------------------------------------------------------------------------------

# Per-alias arguments; an alias with a required argument missing here fails its tests. Some
# take schedules (the state's count drives them across the checkpoint) or a mask function.
ALIAS_KWARGS = {
    "adabelief": dict(learning_rate=0.01),
    "adagrad": dict(learning_rate=0.1),
    "adam": dict(learning_rate=gradtx.warmup_cosine_decay_schedule(0.0, 0.01, 2, STEPS)),
    "adamax": dict(learning_rate=0.01),
    "adamaxw": dict(learning_rate=0.01),
    "adamw": dict(learning_rate=0.01, weight_decay=0.1, mask=lambda p: _mask_by_ndim(p)),
    "addsign": dict(learning_rate=0.01),
    "adan": dict(learning_rate=0.01, weight_decay=0.1),
    "amsgrad": dict(learning_rate=0.01),
    "nadam": dict(learning_rate=0.01),
    "nadamw": dict(learning_rate=0.01),
    "noisy_sgd": dict(learning_rate=0.01, key=1),
    "novograd": dict(learning_rate=0.01, weight_decay=0.1),
    "powersign": dict(learning_rate=0.01, decay=gradtx.cosine_decay_schedule(1.0, STEPS)),
    "radam": dict(learning_rate=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "rmsprop": dict(learning_rate=0.01),
    "sgd": dict(learning_rate=gradtx.piecewise_constant_schedule(0.1, {2: 0.5, 4: 0.5}),
                momentum=gradtx.momentum_schedule(0.99, steps_per_stage=2), nesterov=True),
    "sgdw": dict(learning_rate=0.1),
    "adafactor": dict(learning_rate=0.01, min_dim_size_to_factor=2, momentum=0.9),
    "fromage": dict(learning_rate=gradtx.cosine_decay_schedule(0.01, STEPS)),  # stateless if constant
    "lamb": dict(learning_rate=0.01, weight_decay=0.1),
    "lars": dict(learning_rate=0.01, weight_decay=0.01),
    "sm3": dict(learning_rate=0.01),

    # sign slice (issue 14)
    "asgd": dict(learning_rate=0.05, lambd=0.1, t0=2.0, weight_decay=0.1),
    "lion": dict(learning_rate=gradtx.linear_schedule(1e-3, 1e-4, STEPS),
             mask=lambda p: _mask_by_ndim(p)),
    "optimistic_adam": dict(learning_rate=0.01),
    "optimistic_adam_v2": dict(learning_rate=0.01),
    "optimistic_gradient_descent": dict(learning_rate=0.1),
    "polyak_sgd": dict(scaling=gradtx.linear_schedule(0.5, 0.1, STEPS)),  # a count to restore
    "rprop": dict(learning_rate=0.1),
    "sign_sgd": dict(learning_rate=gradtx.linear_schedule(0.1, 0.01, STEPS)),
    "signum": dict(learning_rate=0.1),

    "yogi": dict(learning_rate=0.01),

    # shampoo slice (issue 17): a refresh before and after the checkpoint
    "shampoo": dict(learning_rate=0.01, block_size=2, preconditioning_compute_steps=2),
    "soap": dict(learning_rate=0.01, precondition_frequency=2),
}
# Aliases whose update needs the loss as `value=` (their case passes the metric).
ALIAS_NEEDS_VALUE = {"polyak_sgd"}


def _alias(name):
  return lambda: getattr(aliases, name)(**ALIAS_KWARGS.get(name, {}))


def _skip_nonfinite(updates, gradient_step, params):
  """A `MultiSteps` skip function with a skip state: drops micro-batches holding a NaN/inf."""
  del gradient_step, params
  bad = sum(jnp.sum(~jnp.isfinite(x)).astype(jnp.int32) for x in jax.tree.leaves(updates))
  return bad > 0, {"num_not_finite": bad}


def _early_stopping_tx(patience=1):
  """`early_stopping` is not a gradient transformation; this pass-through runs it on `value=` so
  its state sits in the optimizer state and is checkpointed with it."""
  es = gradtx.early_stopping(patience=patience)

  def update_fn(updates, state, params=None, *, value, **extra_args):
    del extra_args
    return updates, es.update(state, value, params)

  return GradientTransformation(es.init, update_fn)


def _mask_by_ndim(params):
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _labels(params):
  return {"a": ("rms-bc", "rms-centered"), "b": {"c": "frozen", "d": "rms-centered-bc"}}


def _quadratic_loss(params):
  return sum(0.5 * jnp.sum(jnp.square(p.astype(jnp.float32))) for p in jax.tree.leaves(params))


def _with_value_fn(tx, value_fn):
  """A pass-through that calls `tx.update(..., value_fn=value_fn)` (`curvature_monitor` needs the
  loss as a function of the params; the table's cases only pass `value=`)."""

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    return tx.update(updates, state, params, value_fn=value_fn)

  return GradientTransformation(tx.init, update_fn)


CASES = [Case(f"alias-{name}", _alias(name), value=name in ALIAS_NEEDS_VALUE)
         for name in first_order_aliases(aliases.__all__)] + [
    # Variants with other state classes (rmsprop's are in multi_transform below).
    Case("nadam-momentum-decay", lambda: gradtx.nadam(0.01, momentum_decay=0.004)),
    # Wrappers and combinators.
    Case("masked-tree", lambda: gradtx.masked(gradtx.adam(0.01),
                                              {"a": (True, False), "b": {"c": False, "d": True}})),
    Case("multi_transform-rmsprop-variants", lambda: gradtx.multi_transform({
        "rms-bc": gradtx.rmsprop(0.01, bias_correction=True),
        "rms-centered": gradtx.rmsprop(0.01, centered=True, momentum=0.9),
        "rms-centered-bc": gradtx.rmsprop(0.01, centered=True, bias_correction=True),
        "frozen": gradtx.set_to_zero()}, _labels)),
    Case("named_chain", lambda: gradtx.named_chain(
        ("clip", gradtx.clip_by_global_norm(1.0)), ("adam", gradtx.scale_by_adam()),
        ("lr", gradtx.scale_by_learning_rate(0.01)))),
    Case("MultiSteps-schedule-skip-nan",
         lambda: gradtx.MultiSteps(gradtx.sgd(0.1, 0.9),
                                   lambda step: jnp.where(step < 1, 1, 2),
                                   should_skip_update_fn=_skip_nonfinite),
         nan_step=2),
    Case("apply_if_finite-nan", lambda: gradtx.apply_if_finite(gradtx.adam(0.01), 2),
         nan_step=1),
    Case("zero_nans-agc-nonnegative-nan", lambda: gradtx.chain(
        gradtx.zero_nans(), gradtx.adaptive_grad_clip(0.1), gradtx.sgd(0.1, momentum=0.9),
        gradtx.keep_params_nonnegative()), nan_step=1),
    Case("flatten", lambda: gradtx.flatten(gradtx.adamw(0.01))),
    Case("inject_hyperparams-sgd-schedule", lambda: gradtx.inject_hyperparams(gradtx.sgd)(
        learning_rate=gradtx.linear_schedule(0.1, 0.01, STEPS), momentum=0.9)),
    Case("inject_stateful_hyperparams-sgd-schedule",
         lambda: gradtx.inject_stateful_hyperparams(gradtx.sgd)(
             learning_rate=gradtx.linear_schedule(0.1, 0.01, STEPS), momentum=0.9)),
    Case("snapshot-monitor", lambda: gradtx.chain(
        gradtx.snapshot("pre_clip_norm", gradtx.global_norm), gradtx.clip_by_global_norm(1.0),
        gradtx.health_monitor(gradtx.adam(0.01)),
        gradtx.monitor({"norm": gradtx.global_norm, "ema": gradtx.ema(0.9)}))),
    Case("chain-decay-schedule-ema_params-snapshot_ensemble", lambda: gradtx.chain(
        gradtx.clip_by_block_rms(1.0), gradtx.clip(0.5),
        gradtx.add_decayed_weights(gradtx.linear_schedule(0.1, 0.0, 4)),
        gradtx.sgd(gradtx.warm_restarts_schedule(0.1, 2)), gradtx.ema_params(0.9),
        gradtx.snapshot_ensemble(2, 2))),
    # gradtx's additions with their own state classes.
    Case("block_coordinate_descent-random", lambda: gradtx.block_coordinate_descent(
        gradtx.sgd(0.1, momentum=0.9), lambda p: {"a": ("x", "x"), "b": {"c": "y", "d": "z"}},
        "random", seed=3)),
    Case("distance_over_gradients", lambda: gradtx.chain(
        gradtx.scale_by_distance_over_gradients(reps_rel=1e-2), gradtx.scale(-0.1))),
    Case("curvature_monitor", lambda: gradtx.chain(
        _with_value_fn(gradtx.curvature_monitor(every=2, num_iters=2, num_probes=1),
                       _quadratic_loss), gradtx.sgd(0.1))),
    Case("early_stopping", lambda: gradtx.chain(gradtx.sgd(0.1), _early_stopping_tx()),
         value=True),
    Case("nested-wrappers", lambda: gradtx.apply_if_finite(gradtx.MultiSteps(
        gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=0.01, weight_decay=1e-3),
        2).gradient_transformation(), 1)),
    # bfloat16 params (and grads): bf16 leaves, f32 moments and f32 metrics must all survive
    # (polyak_averaging and reduce_on_plateau are here).
    Case("bf16-adam-mu-f32", lambda: gradtx.adam(0.01, mu_dtype=jnp.float32), jnp.bfloat16),
    Case("bf16-sgd-f32-acc", lambda: gradtx.sgd(0.1, 0.9, accumulator_dtype=jnp.float32),
         jnp.bfloat16),
    Case("bf16-inject_hyperparams-adam",
         lambda: gradtx.inject_hyperparams(gradtx.adam)(learning_rate=0.01), jnp.bfloat16),
    Case("bf16-polyak-f32-plateau", lambda: gradtx.chain(
        gradtx.adam(0.05), gradtx.polyak_averaging(accumulator_dtype=jnp.float32),
        gradtx.reduce_on_plateau(factor=0.5, patience=1)), jnp.bfloat16, value=True),
]


def _optional(module, name):
  """`module.name`, or None while the module (written separately) has not landed."""
  try:
    return getattr(importlib.import_module(module), name, None)
  except ImportError:
    return None


def _optional_case(case_id, module, name, build, dtype=jnp.float32, wrap_params=None):
  fn = _optional(module, name)
  return Case(case_id, lambda: build(fn), dtype, wrap_params=wrap_params,
              skip=None if fn is not None else f"{module}.{name} is not available yet")


def _lookahead_params(params):
  """`LookaheadParams(fast, slow)`; the gradients keep the plain params' structure (`fast`)."""
  return _optional("gradtx.transforms.lookahead", "LookaheadParams").init_synced(params)


# Modules being added separately; each row runs once its module defines the name. The argument
# lists follow optax's; adjust a row if the module's signature differs.
OPTIONAL_CASES = [
    _optional_case("lookahead", "gradtx.transforms.lookahead", "lookahead",
                   lambda f: f(gradtx.adam(0.01), sync_period=2, slow_step_size=0.5),
                   wrap_params=_lookahead_params),
    _optional_case("conditionally_transform", "gradtx.transforms.conditional", "conditionally_transform",
                   lambda f: f(gradtx.adam(0.01), lambda step: step % 2 == 0)),
    _optional_case("conditionally_mask", "gradtx.transforms.conditional", "conditionally_mask",
                   lambda f: f(gradtx.sgd(0.1, 0.9), lambda step: step >= 1)),
    # Mixed bf16 / f32 params: the f32 leaves have no master copy (`None` in the state).
    _optional_case("mixed_precision", "gradtx.transforms.precision", "mixed_precision",
                   lambda f: f(gradtx.adam(0.01)), MIXED),
]

ALL_CASES = CASES + OPTIONAL_CASES
_BY_ID = {c.id: c for c in ALL_CASES}
assert len(_BY_ID) == len(ALL_CASES), "duplicate case ids"


# --- running a case --------------------------------------------------------------------------


def initial_params(case_id):
  case = _BY_ID[case_id]
  params = _params(case.dtype)
  return params if case.wrap_params is None else case.wrap_params(params)


@functools.lru_cache(maxsize=None)
def grads_for(case_id):
  case = _BY_ID[case_id]
  like = _params(case.dtype)
  grads = [jax.tree.map(lambda g, p: g.astype(p.dtype), g, like) for g in make_grads(STEPS)]
  if case.nan_step is not None:
    g = grads[case.nan_step]
    grads[case.nan_step] = {**g, "b": {**g["b"], "c": jnp.full_like(g["b"]["c"], jnp.nan)}}
  return grads


_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.lru_cache(maxsize=None)
def compiled(case_id):
  """The case's transformation and one jitted training step, shared by the uninterrupted and the
  resumed runs of both backends (each case compiles once per worker)."""
  case = _BY_ID[case_id]
  tx = case.make()

  def step(params, state, grads, value):
    extra = {"value": value} if case.value else {}
    updates, state = tx.update(grads, state, params, **extra)
    return gradtx.apply_updates(params, updates), state

  # The claim compares two runs of one executable, whatever XLA's optimizations: skipping the
  # expensive ones makes the table's compilations about a third cheaper.
  return tx, jax.jit(step, compiler_options=_FAST_COMPILE)


def run_steps(case_id, params, state, start, stop):
  """Steps `start` to `stop`. The inputs are committed to the device first, as Orbax restores
  them, so the uninterrupted and the resumed runs call one compiled program."""
  _, step = compiled(case_id)
  grads = grads_for(case_id)
  params, state = jax.device_put((params, state), jax.devices()[0])
  for i in range(start, stop):
    params, state = step(params, state, grads[i], jnp.float32(VALUES[i]))
  return params, state


@functools.lru_cache(maxsize=None)
def fresh_target(case_id):
  """What a restarted program builds before restoring: the initial params and `tx.init`."""
  tx, _ = compiled(case_id)
  params0 = initial_params(case_id)
  return {"params": params0, "opt_state": tx.init(params0)}


@functools.lru_cache(maxsize=None)
def trajectory(case_id):
  """The uninterrupted run: (params, state) after `N_BEFORE` steps (the checkpoint) and after
  all `STEPS`."""
  target = fresh_target(case_id)
  checkpoint = run_steps(case_id, target["params"], target["opt_state"], 0, N_BEFORE)
  final = run_steps(case_id, *checkpoint, N_BEFORE, STEPS)
  return checkpoint, final


def saved_checkpoint(case_id):
  (params, state), _ = trajectory(case_id)
  return {"params": params, "opt_state": state}


def flax_round_trip(tree, target, tmp_path):
  """`flax.serialization.to_bytes`, then `from_bytes` into the concrete target."""
  serialization = pytest.importorskip("flax.serialization")
  del tmp_path
  return serialization.from_bytes(target, serialization.to_bytes(tree))


def orbax_round_trip(tree, target, tmp_path):
  """Saves `tree` with Orbax's `StandardCheckpointer` and restores it into the abstract target
  (shapes, dtypes and tree structure of `target`), the recommended API of orbax-checkpoint 0.12."""
  ocp = pytest.importorskip("orbax.checkpoint")
  path = tmp_path / "checkpoint"
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path, tree)
    checkpointer.wait_until_finished()
    return checkpointer.restore(path, abstract)


BACKENDS = {"flax": flax_round_trip, "orbax": orbax_round_trip}


@pytest.fixture(scope="module")
def orbax_batch(request, tmp_path_factory):
  """The Orbax round trip of every selected case's checkpoint in one save and one restore:
  `{case_id: restored}`, or `{}` when the batch fails (each case then saves on its own, so the
  failure names its case)."""
  pytest.importorskip("orbax.checkpoint")
  ids = {item.callspec.params["case"].id for item in request.session.items
         if getattr(item, "module", None) is not None and item.module.__name__ == __name__
         and item.originalname == "test_resumed_training_is_bit_identical"
         and item.callspec.params["backend"] == "orbax"
         and not item.callspec.params["case"].skip}
  saved, targets = {}, {}
  for case_id in sorted(ids):
    try:
      saved[case_id], targets[case_id] = saved_checkpoint(case_id), fresh_target(case_id)
    except Exception:  # pylint: disable=broad-except  (the case's own test reports it)
      pass
  try:
    return orbax_round_trip(saved, targets, tmp_path_factory.mktemp("orbax_batch"))
  except Exception:  # pylint: disable=broad-except
    return {}


# --- assertions ------------------------------------------------------------------------------


def _with_paths(tree):
  return [(jax.tree_util.keystr(p), x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def assert_bit_identical(got, want, what):
  """Same tree structure, and per leaf the same dtype, shape and bytes."""
  assert jax.tree.structure(got) == jax.tree.structure(want), (
      f"{what}: tree structure changed\n  got:  {jax.tree.structure(got)}\n"
      f"  want: {jax.tree.structure(want)}")
  for (path, a), (_, b) in zip(_with_paths(got), _with_paths(want)):
    a, b = np.asarray(a), np.asarray(b)
    assert (a.dtype, a.shape) == (b.dtype, b.shape), (
        f"{what} {path}: {a.dtype}{list(a.shape)} != {b.dtype}{list(b.shape)}")
    if a.tobytes() != b.tobytes():
      np.testing.assert_array_equal(a, b, err_msg=f"{what} {path}")
      raise AssertionError(f"{what} {path}: equal values but different bits: {a!r} vs {b!r}")


def assert_checkpointable(state, what):
  """Every leaf is a strongly typed JAX array: a Python scalar would not keep its dtype, and a
  weakly typed array is restored strongly typed (a different program for the jitted step)."""
  for path, x in _with_paths(state):
    assert isinstance(x, jax.Array), f"{what} {path}: {type(x).__name__} {x!r} is not an array"
    assert not x.weak_type, f"{what} {path}: weakly typed {x.dtype} leaf"


def _differs(a, b):
  return any(np.asarray(x).tobytes() != np.asarray(y).tobytes()
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def case_params(cases, backends=tuple(BACKENDS)):
  out = []
  for case in cases:
    for backend in backends:
      marks = []
      if case.skip:
        marks.append(pytest.mark.skip(reason=case.skip))
      marks += [pytest.mark.xfail(strict=True, reason=reason)
                for b, reason in case.xfail if b == backend]
      out.append(pytest.param(case, backend, id=f"{case.id}-{backend}", marks=marks))
  return out


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case, backend", case_params(ALL_CASES))
def test_resumed_training_is_bit_identical(case, backend, tmp_path, request):
  (params3, state3), (params6, state6) = trajectory(case.id)
  assert_checkpointable(state3, case.id)
  target, saved = fresh_target(case.id), saved_checkpoint(case.id)
  assert jax.tree.structure(target) == jax.tree.structure(saved)

  batch = request.getfixturevalue("orbax_batch") if backend == "orbax" else {}
  if case.id in batch:
    restored = batch[case.id]
  else:
    restored = BACKENDS[backend](saved, target, tmp_path)
  assert_bit_identical(restored, saved, f"{case.id} restored by {backend}")

  params, state = run_steps(case.id, restored["params"], restored["opt_state"], N_BEFORE, STEPS)
  assert_bit_identical({"params": params, "opt_state": state},
                       {"params": params6, "opt_state": state6}, f"{case.id} resumed")
  assert compiled(case.id)[1]._cache_size() == 1, "the restored state changed the step's signature"
  # The restore had something to do (params and state), and training after it moved the params.
  assert _differs(target["params"], saved["params"]) and _differs(target["opt_state"], state3)
  assert _differs(params3, params6)


def _node_types(tree):
  seen = set()

  def visit(node):
    if isinstance(node, tuple) and hasattr(node, "_fields"):
      seen.add(type(node))
    return False

  jax.tree.leaves(tree, is_leaf=visit)
  return seen


def _state_classes(module):
  return {getattr(module, n) for n in module.__all__ if n.endswith("State")
          and isinstance(getattr(module, n), type) and issubclass(getattr(module, n), tuple)}


def test_table_covers_every_state_class_and_dtype():
  """Every state class of gradtx (and of the optional modules present) occurs in some case's
  state, and the states hold int32, uint32, bool, float32 and bfloat16 leaves."""
  # The second-order methods' states (trees.NEEDS_FUNCTIONS) are checked in their own test
  # files: a fixed structure across init and every update, so a lax.scan over steps works.
  # So are the line searches' (optax's layout and an optax checkpoint continued bit-identically:
  # tests/test_quasi_newton.py::test_state_layout_and_checkpoint_cross_optax).
  second_order = {getattr(gradtx, n) for n in dir(gradtx) if n.endswith("State") and (any(
      n.lower().startswith(f"scaleby{a.replace('_', '')}") for a in NEEDS_FUNCTIONS)
      or n.endswith("LinesearchState"))}
  wanted = _state_classes(gradtx) - second_order
  for module in sorted({"gradtx.transforms.lookahead", "gradtx.transforms.conditional", "gradtx.transforms.precision"}):
    try:
      wanted |= _state_classes(importlib.import_module(module))
    except ImportError:
      pass
  seen, dtypes = set(), set()
  for case in ALL_CASES:
    if case.skip:
      continue
    state = jax.eval_shape(case.make().init, initial_params(case.id))
    seen |= _node_types(state)
    dtypes |= {x.dtype for x in jax.tree.leaves(state)}
  missing = sorted(c.__name__ for c in wanted - seen)
  assert not missing, f"no case has a state of class {missing}; add a row to CASES"
  assert {jnp.dtype(d) for d in (jnp.int32, jnp.uint32, jnp.bool_, jnp.float32,
                                 jnp.bfloat16)} <= dtypes


def test_alias_table_names_only_aliases():
  assert set(ALIAS_KWARGS) <= set(aliases.__all__), "ALIAS_KWARGS names a removed alias"


def test_nnx_optimizer_resumed_from_orbax_is_bit_identical(tmp_path):
  nnx = pytest.importorskip("flax.nnx")
  ocp = pytest.importorskip("orbax.checkpoint")
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
  y = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)

  def fresh(seed):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(seed))
    return model, nnx.Optimizer(model, gradtx.adamw(0.05, weight_decay=0.1), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer):
    grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)

  model, optimizer = fresh(0)
  for _ in range(N_BEFORE):
    train_step(model, optimizer)
  saved = {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}
  path = tmp_path / "nnx"
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path, saved)
    checkpointer.wait_until_finished()
    # A model with other initial weights: everything it ends with comes from the checkpoint.
    model2, optimizer2 = fresh(1)
    target = {"model": nnx.state(model2), "optimizer": nnx.state(optimizer2)}
    restored = checkpointer.restore(path, jax.tree.map(ocp.utils.to_shape_dtype_struct, target))
  assert jax.tree.structure(restored) == jax.tree.structure(saved)
  nnx.update(model2, restored["model"])
  nnx.update(optimizer2, restored["optimizer"])
  assert_bit_identical(nnx.state(optimizer2), nnx.state(optimizer), "nnx restored")

  for _ in range(N_AFTER):
    train_step(model, optimizer)
    train_step(model2, optimizer2)
  assert_bit_identical(nnx.state(model2), nnx.state(model), "nnx model resumed")
  assert_bit_identical(nnx.state(optimizer2), nnx.state(optimizer), "nnx optimizer resumed")
  assert int(optimizer2.step.value) == STEPS
  assert {jnp.dtype(jnp.int32), jnp.dtype(jnp.float32)} <= {
      x.dtype for x in jax.tree.leaves(nnx.state(optimizer2).opt_state)}
