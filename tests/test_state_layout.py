"""gradtx's optimizer states are laid out exactly as optax's, so checkpoints interchange.

For every configuration of `state_audit.CONFIGS` (every alias, primitive and wrapper that gradtx
shares with optax), the state after `init` and after one `update` has optax's normalised
description: class names, field names, dict keys, nesting, leaf shapes and dtypes (jax treedefs
compare node classes by identity, so the two libraries' structures are compared by description).
The few deliberate differences (`state_audit.CONFIGS[...].known`) are strict xfails with their
reasons. Then checkpoints cross over: optax's state after 3 steps, written with
`flax.serialization` (or Orbax) and read into gradtx's `init` as target, lets gradtx continue
bit-identically to optax continuing uninterrupted, and the reverse.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import state_audit
from state_audit import CONFIGS, describe, first_difference

_BY_ID = {c.id: c for c in CONFIGS}
assert len(_BY_ID) == len(CONFIGS), "duplicate configuration ids"
LIBS = {"optax": optax, "gradtx": gradtx}


@functools.lru_cache(maxsize=None)
def described(config_id):
  return state_audit.compare(_BY_ID[config_id])


def _layout_params():
  out = []
  for config in CONFIGS:
    for stage in ("init", "step"):
      why = config.known.get(stage)
      marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
      out.append(pytest.param(config.id, stage, id=f"{config.id}-{stage}", marks=marks))
  return out


@pytest.mark.parametrize("config_id, stage", _layout_params())
def test_state_layout_equals_optax(config_id, stage):
  want, got = described(config_id)[stage]
  assert want == got, first_difference(want, got)


def test_named_chain_members_match_inside_the_plain_dict():
  """The one difference in `named_chain` is its container (optax: OrderedDict, gradtx: dict)."""
  for stage, (want, got) in described("named_chain").items():
    assert (want[0], got[0]) == ("OrderedDict", "dict"), stage
    assert want[1:] == got[1:], first_difference(("dict",) + want[1:], got)


# --- gradtx's schedules where optax takes constants ------------------------------------------


P = state_audit.make_params()
SCHED = gradtx.linear_schedule(0.9, 0.99, 10)


def _names(state):
  return [type(s).__name__ for s in state]


def test_trace_schedule_keeps_a_count_only_for_the_schedule():
  assert type(gradtx.trace(0.9).init(P)) is gradtx.TraceState
  assert gradtx.TraceState._fields == optax.TraceState._fields == ("trace",)
  state = gradtx.trace(SCHED).init(P)
  assert type(state) is gradtx.TraceWithCountState and state.count.dtype == jnp.int32
  assert jax.tree.structure(state.trace) == jax.tree.structure(P)
  _, state = gradtx.trace(SCHED).update(P, state)
  assert int(state.count) == 1
  assert _names(gradtx.sgd(0.1, momentum=SCHED).init(P)) == ["TraceWithCountState", "EmptyState"]


def test_add_decayed_weights_multiplier_schedule_uses_optax_schedule_state():
  state = gradtx.add_decayed_weights(0.1, schedule_multiplier=SCHED).init(P)
  assert state == gradtx.WeightDecaySchedule(count=jnp.zeros([], jnp.int32))
  optax_sched = optax.add_decayed_weights(SCHED).init(P)
  assert describe(state) == describe(optax_sched)


def test_adam_b1_schedule_keeps_optax_layout():
  assert describe(gradtx.scale_by_adam(b1=SCHED).init(P)) == describe(
      optax.scale_by_adam().init(P))


@pytest.mark.parametrize("make", [
    lambda v: gradtx.adam(v), lambda v: gradtx.sgd(0.1, momentum=v),
    lambda v: gradtx.add_decayed_weights(v), lambda v: gradtx.adamw(0.1, weight_decay=v),
    lambda v: gradtx.scale_by_learning_rate(v)], ids=["adam", "sgd", "adw", "adamw", "sblr"])
def test_hyperparameter_value_never_changes_the_structure(make):
  structures = {jax.tree.structure(make(v).init(P))
                for v in (0.0, 0.5, 1.0, jnp.float32(0.25))}
  assert len(structures) == 1


def test_state_names_bound_as_optax_binds_them():
  """Every state name both libraries export is the same kind of thing: an alias of `EmptyState`
  in both or in neither, and otherwise a class of optax's class name and fields."""
  shared = [n for n in dir(optax) if n.endswith("State") and hasattr(gradtx, n)
            and isinstance(getattr(optax, n), type) and issubclass(getattr(optax, n), tuple)]
  assert {"ScaleState", "ClipState", "ClipByGlobalNormState", "AddDecayedWeightsState",
          "PartitionState", "MultiTransformState", "TraceState"} <= set(shared)
  for name in shared:
    o, g = getattr(optax, name), getattr(gradtx, name)
    assert (o is optax.EmptyState) == (g is gradtx.EmptyState), name
    if name == "InjectHyperparamsState":
      # optax keeps a deprecated 3-field class of this name that its inject_hyperparams no
      # longer returns; gradtx binds it to the state its inject_hyperparams returns.
      assert g is gradtx.InjectStatefulHyperparamsState
      continue
    assert g.__name__ == o.__name__, name
    assert g._fields == o._fields, name


# --- checkpoint interchange --------------------------------------------------------------------

N_BEFORE, N_AFTER = 3, 3
STEPS = N_BEFORE + N_AFTER
VALUES = (1.0, 0.5, 0.6, 0.7, 0.4, 0.8)

# Configurations whose checkpoints cross over (flax.serialization): every family of state.
# Not here: add_noise / noisy_sgd (optax's typed key, see state_audit.RAW_KEY), monitor (optax's
# init structure differs from its own stepped state), named_chain (optax's OrderedDict, which
# flax.serialization cannot write), lookahead (the params themselves are each library's class).
FLAX_IDS = [
    "sgd", "sgd-schedule", "sgd-nesterov", "adam", "adam-schedule", "adamw-mask",
    "adamw-schedule", "nadamw", "adamaxw", "amsgrad", "adagrad", "adadelta-wd",
    "rmsprop-centered-nesterov", "rmsprop-bias-correction", "ema", "scale_by_stddev",
    "add_decayed_weights-schedule-mask", "chain", "multi_transform", "masked-tree",
    "conditionally_mask", "conditionally_transform", "apply_if_finite", "MultiSteps",
    "MultiSteps-schedule", "flatten", "inject_hyperparams-adam",
    "inject_hyperparams-adam-schedule", "inject_hyperparams-sgd-momentum", "snapshot",
    "chain-adam-reduce_on_plateau",
]
# Where the two libraries' numbers differ by float rounding by design (README, "Differences from
# optax"), the resumed run is compared to the other library's within rounding, not bit for bit.
ROUNDING = {
    "adadelta-wd": "adadelta's E[dx^2] is computed in another order (no parameter-sized temporary)",
    "chain": "clip_by_global_norm multiplies by max_norm / norm (optax: (g / norm) * max_norm)",
}
# Where only the sign of a zero differs: optax's MultiSteps resets the accumulator with
# `(1 - emit) * acc` (-0.0 for a negative entry), gradtx with `where(emit, 0, acc)` (+0.0). Equal
# values, the same next step (the accumulator is added to); params stay bit-identical.
SIGNED_ZERO_STATE = {"MultiSteps", "MultiSteps-schedule"}
# Orbax is slower per round trip: a handful of representative states.
ORBAX_IDS = ["sgd-nesterov", "adam-schedule", "adamw-mask", "multi_transform", "MultiSteps",
             "inject_hyperparams-adam-schedule"]


def _grads():
  rng = np.random.default_rng(3)
  return [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), P)
          for _ in range(STEPS)]


GRADS = _grads()


@functools.lru_cache(maxsize=None)
def compiled(lib, config_id):
  """The library's transformation for the configuration and its jitted step (shared)."""
  config = _BY_ID[config_id]
  tx = config.make(LIBS[lib])

  def step(params, state, grads, value):
    extra = {"value": value} if config.value else {}
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state

  return tx, jax.jit(step)


def run(lib, config_id, params, state, start, stop):
  _, step = compiled(lib, config_id)
  for i in range(start, stop):
    params, state = step(params, state, GRADS[i], jnp.float32(VALUES[i]))
  return params, state


@functools.lru_cache(maxsize=None)
def trajectory(lib, config_id):
  """(params, state) after N_BEFORE steps (the checkpoint) and after all STEPS, uninterrupted."""
  tx, _ = compiled(lib, config_id)
  checkpoint = run(lib, config_id, P, tx.init(P), 0, N_BEFORE)
  return checkpoint, run(lib, config_id, *checkpoint, N_BEFORE, STEPS)


def _leaves_with_paths(tree):
  return [(jax.tree_util.keystr(p), x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def assert_bit_identical(got, want, what, rtol=None, signed_zeros=True):
  """Same description (class names, fields, shapes, dtypes) and the same bytes per leaf (or,
  with `rtol`, values within it; without `signed_zeros`, -0.0 equal to +0.0)."""
  assert describe(got) == describe(want), first_difference(describe(want), describe(got))
  for (path, a), (_, b) in zip(_leaves_with_paths(got), _leaves_with_paths(want)):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what} {path}"
    if rtol is not None:
      np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-9, err_msg=f"{what} {path}")
      continue
    if not signed_zeros and np.issubdtype(a.dtype, np.floating):
      a, b = a + 0.0, b + 0.0  # -0.0 + 0.0 is +0.0
    if a.tobytes() != b.tobytes():
      np.testing.assert_array_equal(a, b, err_msg=f"{what} {path}")
      raise AssertionError(f"{what} {path}: equal values but different bits")


def flax_round_trip(state, target, tmp_path):
  serialization = pytest.importorskip("flax.serialization")
  del tmp_path
  return serialization.from_bytes(target, serialization.to_bytes(state))


def orbax_round_trip(state, target, tmp_path):
  ocp = pytest.importorskip("orbax.checkpoint")
  path = tmp_path / "checkpoint"
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path, state)
    checkpointer.wait_until_finished()
    return checkpointer.restore(path, jax.tree.map(ocp.utils.to_shape_dtype_struct, target))


BACKENDS = {"flax": flax_round_trip, "orbax": orbax_round_trip}


def _interchange_params():
  out = []
  for backend, ids in (("flax", FLAX_IDS), ("orbax", ORBAX_IDS)):
    for config_id in ids:
      for source, dest in (("optax", "gradtx"), ("gradtx", "optax")):
        out.append(pytest.param(config_id, backend, source, dest,
                                id=f"{config_id}-{backend}-{source}-to-{dest}"))
  return out


def test_interchange_tables_name_known_configurations():
  assert set(FLAX_IDS) | set(ORBAX_IDS) <= set(_BY_ID)
  assert set(ORBAX_IDS) <= set(FLAX_IDS)


@pytest.mark.parametrize("config_id, backend, source, dest", _interchange_params())
def test_checkpoint_restores_into_the_other_library(config_id, backend, source, dest, tmp_path):
  (params3, state3), (params6, state6) = trajectory(source, config_id)
  dest_tx, _ = compiled(dest, config_id)
  restored = BACKENDS[backend](state3, dest_tx.init(P), tmp_path)
  # The destination's own classes, holding the source's numbers.
  assert describe(restored) == describe(dest_tx.init(P))
  assert_bit_identical(restored, state3, f"{config_id}: {source}'s state restored into {dest}")
  params, state = run(dest, config_id, params3, restored, N_BEFORE, STEPS)
  rtol = 1e-6 if config_id in ROUNDING else None
  assert_bit_identical(params, params6, f"{config_id}: {dest} resumed from {source}'s checkpoint",
                       rtol=rtol)
  assert_bit_identical(state, state6, f"{config_id}: {dest}'s state resumed", rtol=rtol,
                       signed_zeros=config_id not in SIGNED_ZERO_STATE)


@pytest.mark.parametrize("source, dest", [("optax", "gradtx"), ("gradtx", "optax")])
def test_orbax_restores_every_configuration_in_one_checkpoint(source, dest, tmp_path):
  """Every configuration of the flax table through Orbax too: all the states saved as one
  checkpoint (one Orbax round trip instead of one per configuration), restored with the other
  library's states as the target, and resumed to the uninterrupted run's numbers."""
  ids = [c for c in FLAX_IDS if c not in ORBAX_IDS]
  states = {c: trajectory(source, c)[0][1] for c in ids}
  targets = {c: compiled(dest, c)[0].init(P) for c in ids}
  restored = orbax_round_trip(states, targets, tmp_path)
  for c in ids:
    assert describe(restored[c]) == describe(targets[c]), c
    assert_bit_identical(restored[c], states[c], f"{c}: {source}'s state restored into {dest}")
    (params3, _), (params6, state6) = trajectory(source, c)
    params, state = run(dest, c, params3, restored[c], N_BEFORE, STEPS)
    rtol = 1e-6 if c in ROUNDING else None
    assert_bit_identical(params, params6, f"{c}: {dest} resumed from {source}'s checkpoint",
                         rtol=rtol)
    assert_bit_identical(state, state6, f"{c}: {dest}'s state resumed", rtol=rtol,
                         signed_zeros=c not in SIGNED_ZERO_STATE)
