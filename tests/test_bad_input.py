"""Bad input to the aliases and their wrappers: the one list of the rules, one test per rule.

Each error is raised as early as the information exists (hyperparameters when the optimizer is
built, params dtypes in `init`, tree structures in `update` at trace time) and names the
argument. Every rule, with where it is tested:

======================================================  =====================================
rule                                                    tested in
======================================================  =====================================
a NaN or vector (SWEEP_HINT) ``learning_rate``          test_aliases.py::test_alias_descends_
                                                        and_rejects_vector_learning_rate
a NaN or vector value of any other numeric argument     here
a schedule for an argument that takes none              here
a schedule returning a non-scalar, for every argument   here
that takes one (at construction, or at update when
the schedule cannot be traced abstractly)
integer and bool params: apply_updates, and the init    here
of every alias whose state holds moments
an alias mask (``mask``, ``weight_decay_mask``) whose   here (masked itself: test_wrappers.py,
structure does not match the params                     add_decayed_weights: test_decay.py)
``multi_transform`` param_labels of the wrong           here (labels with no transform:
structure                                               test_combine.py)
updates whose structure differs from the state (every   here (each primitive: test_registry.py::
alias and wrapper), or from params where params are     test_mismatched_update_tree_raises)
used; ``apply_updates`` params vs updates               test_core.py
======================================================  =====================================

Params whose structure differs from the updates are ignored by the aliases that do not read
params (adam, sgd, ...), as in optax: they cannot corrupt the result.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from trees import first_order_aliases
from gradtx import optimizers as aliases

ALIASES = first_order_aliases(aliases.__all__)  # second-order ones: trees.NEEDS_FUNCTIONS
P = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
BAD = {"w": jnp.ones((2, 3))}  # the "b" leaf is missing


# Extra keyword arguments of `update` an alias needs (optax's polyak_sgd takes the loss).
UPDATE_KWARGS = {"polyak_sgd": dict(value=jnp.asarray(1.0))}


def _needs_lr(name):  # polyak_sgd has no learning_rate (its max_learning_rate has a default)
  lr = inspect.signature(getattr(gradtx, name)).parameters.get("learning_rate")
  return lr is not None and lr.default is inspect.Parameter.empty


def build(name, **kwargs):
  base = {"learning_rate": 0.1} if _needs_lr(name) and "learning_rate" not in kwargs else {}
  return getattr(gradtx, name)(**base, **kwargs)


def _arguments(kinds):
  """(alias, argument) pairs whose annotation mentions one of `kinds`."""
  out = []
  for name in ALIASES:
    for arg, p in inspect.signature(getattr(gradtx, name)).parameters.items():
      annotation = str(p.annotation)
      if any(k in annotation for k in kinds) and "Mask" not in annotation:
        out.append((name, arg))
  return out


NUMERIC = [(n, a) for n, a in _arguments(["ScalarOrSchedule", "float"]) if a != "learning_rate"]
# Documented as schedules: ScalarOrSchedule arguments, and the sign aliases' `decay` function.
# nadam(w)'s b1 is annotated `float` but reaches adam's b1 in optax's form, which takes one.
SCHEDULABLE = _arguments(["ScalarOrSchedule"]) + [
    ("addsign", "decay"), ("powersign", "decay"), ("nadam", "b1"), ("nadamw", "b1")]
NOT_SCHEDULABLE = [pair for pair in NUMERIC if pair not in SCHEDULABLE]
# Aliases whose state holds param-shaped moments built in `init`.
INIT_REJECTS_INTEGER_PARAMS = ["adadelta", "adagrad", "adam", "adamax", "adamaxw", "adamw",
                               "amsgrad", "nadam", "nadamw", "rmsprop"]


def test_argument_tables_are_not_empty():
  assert ("sgd", "momentum") in SCHEDULABLE and ("adamw", "weight_decay") in SCHEDULABLE
  assert ("adam", "b2") in NOT_SCHEDULABLE and ("noisy_sgd", "eta") in NUMERIC


# ------------------------------------------------------------------------------------------------
# Hyperparameters (checked when the optimizer is built).
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,arg", NUMERIC, ids=[f"{n}-{a}" for n, a in NUMERIC])
def test_nan_or_vector_hyperparameter_raises_naming_it(name, arg):
  with pytest.raises(ValueError, match=rf"{arg} must be finite, got nan"):
    build(name, **{arg: float("nan")})
  with pytest.raises(ValueError, match=rf"{arg} must be a scalar.*shape \(2,\).*vmap"):
    build(name, **{arg: jnp.asarray([0.1, 0.2])})


@pytest.mark.parametrize("name,arg", NOT_SCHEDULABLE, ids=[f"{n}-{a}" for n, a in NOT_SCHEDULABLE])
def test_schedule_for_an_argument_that_takes_none_raises_naming_it(name, arg):
  with pytest.raises(TypeError, match=rf"{arg} does not accept a schedule"):
    build(name, **{arg: lambda count: 0.1})


@pytest.mark.parametrize("name,arg", SCHEDULABLE, ids=[f"{n}-{a}" for n, a in SCHEDULABLE])
def test_non_scalar_schedule_raises_naming_the_argument(name, arg):
  with pytest.raises(ValueError, match=rf"the {arg} schedule must return a scalar.*shape \(2,\)"):
    build(name, **{arg: lambda count: jnp.full(2, 0.1)})


def test_schedule_returning_a_tuple_raises_naming_the_argument():
  with pytest.raises(ValueError, match=r"sgd: the momentum schedule must return a scalar.*tuple"):
    gradtx.sgd(0.1, momentum=lambda count: (0.9, 0.9))


def test_untraceable_non_scalar_schedule_raises_at_update():
  def schedule(count):  # Python control flow: cannot be traced abstractly when built
    return 0.1 if count < 1 else jnp.full(3, 0.1)

  tx = gradtx.sgd(schedule)
  _, state = tx.update(P, tx.init(P))
  with pytest.raises(ValueError, match=r"the learning_rate schedule must return a scalar.*shape \(3,\)"):
    tx.update(P, state)


def test_scalar_schedules_under_vmap_are_accepted():
  def train(lr):  # the schedule closes over a batched tracer: each member sees a scalar
    tx = gradtx.sgd(gradtx.cosine_decay_schedule(lr, 10), momentum=lambda count: lr)
    return tx.update(P, tx.init(P), P)[0]["b"]

  out = jax.vmap(train)(jnp.asarray([0.1, 0.2]))
  assert out.shape == (2, 3) and np.all(np.isfinite(out))


# ------------------------------------------------------------------------------------------------
# Integer and bool params: not trainable (apply_updates and the moment-building inits say so).
# ------------------------------------------------------------------------------------------------

INT_P = {"w": jnp.ones(3), "n": jnp.arange(3)}
INT_G = {"w": jnp.ones(3), "n": jnp.ones(3)}


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.bool_])
def test_apply_updates_rejects_updates_to_integer_or_bool_params(dtype):
  params = {"w": jnp.zeros(2), "n": jnp.zeros(3, dtype)}
  with pytest.raises(TypeError, match=rf"apply_updates: params\['n'\] has dtype "
                                      rf"{jnp.dtype(dtype).name}.*not trainable"):
    gradtx.apply_updates(params, {"w": jnp.ones(2), "n": jnp.full(3, 0.1)})
  with pytest.raises(TypeError, match=r"params\['n'\]"):  # integer updates too, and under jit
    jax.jit(gradtx.apply_updates)(params, {"w": jnp.ones(2), "n": jnp.ones(3, jnp.int32)})


def test_apply_updates_keeps_integer_params_with_none_or_float0_updates():
  grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2), allow_int=True)(INT_P)
  assert grads["n"].dtype == jax.dtypes.float0
  for updates in ({"w": jnp.ones(3), "n": None}, {"w": jnp.ones(3), "n": grads["n"]}):
    new = gradtx.apply_updates(INT_P, updates)
    assert new["n"].dtype == jnp.int32 and new["n"].tolist() == [0, 1, 2]
    assert new["w"].tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("name", INIT_REJECTS_INTEGER_PARAMS)
def test_alias_init_rejects_integer_params(name):
  with pytest.raises(TypeError, match=r"params\['n'\] must have a float dtype.*got int32"):
    build(name).init(INT_P)


def test_alias_init_rejects_bool_params():
  with pytest.raises(TypeError, match=r"params\[1\] must have a float dtype.*got bool"):
    gradtx.adam(0.1).init([jnp.ones(2), jnp.zeros(2, jnp.bool_)])


@pytest.mark.parametrize("name", ALIASES)
def test_integer_params_are_never_silently_truncated(name):
  tx = build(name)
  with pytest.raises(TypeError, match=r"params\['n'\]"):
    state = tx.init(INT_P)  # the aliases without moments accept it here ...
    updates, _ = tx.update(INT_G, state, INT_P, **UPDATE_KWARGS.get(name, {}))
    gradtx.apply_updates(INT_P, updates)  # ... and apply_updates refuses the float update


def test_tree_helpers_build_integer_trees_only_with_an_explicit_dtype():
  with pytest.raises(TypeError, match=r"zeros_like: params\['n'\].*pass dtype="):
    gradtx.zeros_like(INT_P)
  with pytest.raises(TypeError, match=r"full_like: params\['n'\]"):
    gradtx.full_like(INT_P, 0.1)
  assert gradtx.zeros_like(INT_P, jnp.float32)["n"].dtype == jnp.float32
  assert gradtx.full_like(INT_P, 2, jnp.int32)["n"].tolist() == [2, 2, 2]


def test_masked_integer_param_with_float0_grads_is_left_alone():
  """The documented way to keep an integer leaf in the params: mask it out, use allow_int."""
  tx = gradtx.masked(gradtx.adam(0.1), lambda p: jax.tree.map(
      lambda x: jnp.issubdtype(x.dtype, jnp.floating), p))

  @jax.jit
  def step(params, state):
    grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2), allow_int=True)(params)
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state

  params, state = step(INT_P, tx.init(INT_P))
  assert params["n"].tolist() == [0, 1, 2] and params["n"].dtype == jnp.int32
  assert float(params["w"][0]) < 1.0


# ------------------------------------------------------------------------------------------------
# Masks and labels whose structure does not match the params.
# ------------------------------------------------------------------------------------------------

MASK_ARGS = [(n, a) for n in ALIASES for a in inspect.signature(getattr(gradtx, n)).parameters
             if a == "mask" or a.endswith("_mask")]


# A weight-decay mask applies only with a weight decay, which these aliases default to None:
# radam refuses a mask without one when built, adafactor ignores it (as optax's).
MASK_NEEDS = {"adafactor": dict(weight_decay_rate=0.1), "radam": dict(weight_decay=0.1)}


@pytest.mark.parametrize("name,arg", MASK_ARGS, ids=[f"{n}-{a}" for n, a in MASK_ARGS])
@pytest.mark.parametrize("kind", ["tree", "callable"])
def test_alias_mask_of_the_wrong_structure_raises_naming_mask(name, arg, kind):
  mask = {"w": True} if kind == "tree" else (lambda params: {"w": True})
  tx = build(name, **{arg: mask}, **MASK_NEEDS.get(name, {}))
  with pytest.raises(ValueError, match=r"structure of mask is not a prefix of .*params"):
    tx.init(P)


def test_argument_tables_cover_the_masks():
  assert {("adamw", "mask"), ("adadelta", "weight_decay_mask")} <= set(MASK_ARGS)


@pytest.mark.parametrize("labels", [{"w": "a"}, lambda params: {"w": "a"}],
                         ids=["tree", "callable"])
def test_multi_transform_labels_of_the_wrong_structure_raise_naming_param_labels(labels):
  tx = gradtx.multi_transform({"a": gradtx.adam(0.1), "b": gradtx.sgd(0.1)}, labels)
  with pytest.raises(ValueError, match="param_labels"):
    tx.init(P)


def test_multi_transform_labels_of_the_wrong_structure_raise():
  tx = gradtx.multi_transform({"a": gradtx.adam(0.1), "b": gradtx.sgd(0.1)}, {"w": "a"})
  with pytest.raises(ValueError, match="structure"):
    tx.init(P)


# ------------------------------------------------------------------------------------------------
# Tree structures: updates vs state vs params.
# ------------------------------------------------------------------------------------------------

# Their state is EmptyState only (nothing to compare updates against): any tree is valid.
STATELESS = {"sgd": "without momentum", "sign_sgd": "sign, then the learning rate",
             "polyak_sgd": "sgd without momentum, then a step size from the global norm"}
STATEFUL = [n for n in ALIASES if n not in STATELESS]
USES_PARAMS = ["adadelta", "adamaxw", "adamw", "nadamw", "noisy_sgd", "sgdw"]


@pytest.mark.parametrize("name", sorted(STATELESS))
def test_stateless_aliases_keep_no_tree_to_check_updates_against(name):
  assert not jax.tree.leaves(build(name).init(P)), f"{name} has state: move it to STATEFUL"


@pytest.mark.parametrize("name", STATEFUL)
def test_updates_of_the_wrong_structure_raise_naming_updates(name):
  tx = build(name)
  state = tx.init(P)
  pattern = r"structure of (state\.\w+|params) does not match updates(?s:.*)updates: PyTreeDef"
  with pytest.raises(ValueError, match=pattern):
    tx.update(BAD, state, P)
  with pytest.raises(ValueError, match=pattern):
    jax.jit(tx.update)(BAD, state, P)


@pytest.mark.parametrize("name", USES_PARAMS)
def test_params_of_the_wrong_structure_raise_naming_params(name):
  tx = build(name)
  with pytest.raises(ValueError, match=r"structure of params does not match updates"):
    tx.update(P, tx.init(P), BAD)


def test_sgd_with_momentum_checks_updates_against_its_trace():
  tx = gradtx.sgd(0.1, momentum=0.9)
  with pytest.raises(ValueError, match=r"state\.trace does not match updates"):
    tx.update(BAD, tx.init(P))


WRAPPERS = {
    "masked": lambda: gradtx.masked(gradtx.adam(0.1), {"w": True, "b": False}),
    "apply_if_finite": lambda: gradtx.apply_if_finite(gradtx.adam(0.1), 2),
    "MultiSteps": lambda: gradtx.MultiSteps(gradtx.sgd(0.1), 2).gradient_transformation(),
    "clip_by_global_norm-chain": lambda: gradtx.chain(gradtx.clip_by_global_norm(1.0),
                                                      gradtx.powersign(0.1)),
    "multi_transform": lambda: gradtx.multi_transform(
        {"a": gradtx.adam(0.1), "b": gradtx.sgd(0.1, 0.9)}, {"w": "a", "b": "b"}),
}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_wrapper_updates_of_the_wrong_structure_raise(wrapper):
  tx = WRAPPERS[wrapper]()
  state = tx.init(P)
  with pytest.raises(ValueError, match=r"structure of \S+ (does not match|is not a prefix of)"):
    tx.update(BAD, state, P)
  with pytest.raises(ValueError, match="updates"):
    jax.jit(tx.update)(BAD, state, P)
