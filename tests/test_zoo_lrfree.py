"""The learning-rate-free optimizers of optax.contrib (gradtx/contrib/schedule_free.py, prodigy.py,
dadapt.py, mechanic.py): bit-identical optax parity over 24 jitted steps, inject_hyperparams,
bf16 params, the weight-decay mask, bad input, and the jaxpr of a vmapped learning-rate sweep
(every estimate is per-step arithmetic: no periodic branch to keep under a cond)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from jaxprs import primitives_inside_cond, primitives_outside_cond
from trees import make_grads, make_params

STEPS = 24
C, O = gradtx.contrib, optax.contrib


def _sched(L):
  return L.warmup_cosine_decay_schedule(0.0, 1.0, 4, 30, 0.1)


# (id, library -> transformation): each is built from gradtx and from optax.
VARIANTS = [
    ("schedule_free_adamw", lambda L: L.contrib.schedule_free_adamw(
        0.01, warmup_steps=5, weight_decay=0.1)),
    ("schedule_free_adamw-bf16z", lambda L: L.contrib.schedule_free_adamw(
        0.02, b1=0.95, b2=0.99, eps=1e-6, weight_lr_power=1.0, state_dtype=jnp.bfloat16)),
    ("schedule_free_sgd", lambda L: L.contrib.schedule_free_sgd(0.1, weight_decay=0.01)),
    ("schedule_free_sgd-warmup", lambda L: L.contrib.schedule_free_sgd(0.05, warmup_steps=3,
                                                                       b1=0.8)),
    ("schedule_free-adam-schedule", lambda L: L.contrib.schedule_free(
        L.adam(lambda t: 0.01 * _sched(L)(t), b1=0.0), lambda t: 0.01 * _sched(L)(t), b1=0.9)),
    ("prodigy", lambda L: L.contrib.prodigy()),
    ("prodigy-wd-schedule", lambda L: L.contrib.prodigy(_sched(L), weight_decay=0.1)),
    ("prodigy-safeguard", lambda L: L.contrib.prodigy(
        0.5, betas=(0.8, 0.99), beta3=0.9, eps=1e-6, estim_lr0=1e-4, estim_lr_coef=2.0,
        safeguard_warmup=True)),
    ("dadapt_adamw", lambda L: L.contrib.dadapt_adamw()),
    ("dadapt_adamw-wd-schedule", lambda L: L.contrib.dadapt_adamw(
        _sched(L), betas=(0.8, 0.99), eps=1e-6, estim_lr0=1e-4, weight_decay=0.1)),
    ("mechanize-adam", lambda L: L.contrib.mechanize(L.adam(0.01))),
    ("mechanize-sgd", lambda L: L.contrib.mechanize(
        L.sgd(0.1, 0.9), weight_decay=0.0, eps=1e-6, s_init=1e-4, num_betas=3)),
]


def _run(tx, params, grads):
  state = tx.init(params)
  step = jax.jit(tx.update)
  ups = []
  for g in grads:
    u, state = step(g, state, params)
    params = jax.tree.map(lambda p, d: (p + d).astype(p.dtype), params, u)
    ups.append(u)
  return ups, state, params


def _assert_trees_equal(a, b, what):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb), what
  for i, (x, y) in enumerate(zip(la, lb)):
    assert x.dtype == y.dtype, f"{what} leaf {i}: {x.dtype} != {y.dtype}"
    np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                  err_msg=f"{what} leaf {i}")


@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m in VARIANTS])
def test_bit_identical_to_optax_over_24_jitted_steps(make):
  # The arithmetic follows optax's expression by expression, so updates and every state leaf
  # (moments, estimates, counts, z, x0) match bit for bit.
  params, grads = make_params(), make_grads(steps=STEPS)
  ups, state, p_end = _run(make(gradtx), params, grads)
  oups, ostate, _ = _run(make(optax), params, grads)
  for t, (u, ou) in enumerate(zip(ups, oups)):
    _assert_trees_equal(u, ou, f"updates step {t}")
  _assert_trees_equal(state, ostate, "state")
  assert type(state).__name__ == type(ostate).__name__
  assert type(state)._fields == type(ostate)._fields
  if isinstance(state, C.ScheduleFreeState):
    _assert_trees_equal(C.schedule_free_eval_params(state, p_end),
                        O.schedule_free_eval_params(ostate, p_end), "eval params")


@pytest.mark.parametrize("name", ["schedule_free_adamw", "prodigy", "dadapt_adamw"])
def test_bf16_params_bit_identical_to_optax(name):
  # bf16 params: estimates and moments in bf16 as optax's (the params' lowest dtype).
  params, grads = make_params(jnp.bfloat16), make_grads(steps=8, dtype=jnp.bfloat16)
  ups, state, _ = _run(getattr(C, name)(), params, grads)
  oups, ostate, _ = _run(getattr(O, name)(), params, grads)
  for t, (u, ou) in enumerate(zip(ups, oups)):
    _assert_trees_equal(u, ou, f"{name} bf16 updates step {t}")
  _assert_trees_equal(state, ostate, f"{name} bf16 state")


@pytest.mark.parametrize("make", [
    pytest.param(lambda: C.schedule_free_adamw(0.01, state_dtype=jnp.float32), id="sf-f32z"),
    pytest.param(lambda: C.prodigy(mu_dtype=jnp.float32, nu_dtype=jnp.float32), id="prodigy"),
    pytest.param(lambda: C.dadapt_adamw(mu_dtype=jnp.float32, nu_dtype=jnp.float32),
                 id="dadapt"),
    pytest.param(lambda: C.mechanize(gradtx.adam(0.01, mu_dtype=jnp.float32)), id="mechanize"),
])
def test_bf16_params_with_f32_state_keep_bf16_updates(make):
  tx = make()
  params = make_params(jnp.bfloat16)
  state0 = tx.init(params)
  ups, state, p_end = _run(tx, params, make_grads(steps=3, dtype=jnp.bfloat16))
  for u in ups:
    assert {x.dtype for x in jax.tree.leaves(u)} == {jnp.dtype(jnp.bfloat16)}
  assert [x.dtype for x in jax.tree.leaves(state)] == [x.dtype for x in jax.tree.leaves(state0)]
  assert jnp.dtype(jnp.float32) in {x.dtype for x in jax.tree.leaves(state)}
  assert all(np.isfinite(np.asarray(x, np.float32)).all() for x in jax.tree.leaves(p_end))


def test_inject_hyperparams():
  params, grads = make_params(), make_grads(steps=6)
  cases = [
      (gradtx.inject_hyperparams(C.prodigy)(learning_rate=0.5, weight_decay=0.1),
       C.prodigy(0.5, weight_decay=0.1)),
      (gradtx.inject_hyperparams(C.dadapt_adamw)(learning_rate=0.5), C.dadapt_adamw(0.5)),
      (gradtx.inject_hyperparams(C.schedule_free_adamw)(learning_rate=0.01, b1=0.9),
       C.schedule_free_adamw(0.01)),
      (gradtx.inject_hyperparams(C.mechanize, static_args="num_betas")(
          gradtx.sgd(0.1), weight_decay=0.01), C.mechanize(gradtx.sgd(0.1), weight_decay=0.01)),
  ]
  for injected, plain in cases:
    ups, state, _ = _run(injected, params, grads)
    want, _, _ = _run(plain, params, grads)
    for u, w in zip(ups, want):
      for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(w)):
        # An injected b1 is a traced scalar, so XLA cannot fold schedule_free's `/ b1` into
        # `* (1 / b1)` as it does for a constant: y_{t+1} - y_t (a difference of param-sized
        # values) then rounds within an ulp of the params (~1.2e-7), not of the update.
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=2.5e-7)
  # The injected learning rate can be changed between steps (in the state, no recompilation).
  tx = gradtx.inject_hyperparams(C.prodigy)(learning_rate=1.0)
  state = tx.init(params)
  state.hyperparams["learning_rate"] = jnp.asarray(0.25)
  u, _ = tx.update(grads[0], state, params)
  want, _ = C.prodigy(0.25).update(grads[0], C.prodigy(0.25).init(params), params)
  _assert_trees_equal(u, want, "edited learning_rate")


def test_mechanize_injected_num_betas_needs_static_args():
  with pytest.raises(TypeError, match="num_betas"):
    gradtx.inject_hyperparams(C.mechanize)(gradtx.sgd(0.1)).init(make_params())


@pytest.mark.parametrize("name", ["prodigy", "dadapt_adamw", "mechanize"])
def test_weight_decay_mask(name):
  params, grads = make_params(), make_grads(steps=4)
  mask = {"a": (True, False), "b": {"c": False, "d": True}}
  none = jax.tree.map(lambda m: False, mask)
  base = (gradtx.sgd(0.1),) if name == "mechanize" else ()
  extra = dict(s_init=1.0) if name == "mechanize" else {}  # a visible decay from the start
  make = lambda **kw: getattr(C, name)(*base, **extra, **kw)
  decayed, _, _ = _run(make(weight_decay=0.5), params, grads)
  plain, _, _ = _run(make(weight_decay=0.0), params, grads)
  all_true, _, _ = _run(make(weight_decay=0.5, mask=lambda p: jax.tree.map(lambda _: True, p)),
                        params, grads)
  all_false, _, _ = _run(make(weight_decay=0.5, mask=none), params, grads)
  _assert_trees_equal(all_true, decayed, "mask all True")
  _assert_trees_equal(all_false, plain, "mask all False")
  assert not all(np.array_equal(d, p) for d, p in zip(jax.tree.leaves(decayed),
                                                      jax.tree.leaves(plain)))
  if name != "mechanize":
    # One step: the masked leaves get the decayed update, the others the undecayed one (the
    # step-size estimate does not depend on the decay at the first step). (Mechanic's decay
    # enters only its global scale, so there a partial mask mixes every leaf.)
    one = [_run(make(weight_decay=0.5, **kw), params, grads[:1])[0][0]
           for kw in (dict(mask=mask), {})] + [plain[0]]
    for m, a, d, p in zip(*(jax.tree.leaves(t) for t in [mask] + one)):
      np.testing.assert_array_equal(a, d if m else p)


def test_schedule_free_mask_goes_to_add_decayed_weights():
  params = make_params()
  tx = C.schedule_free_adamw(0.01, weight_decay=0.1, mask={"a": True, "b": False})
  assert type(tx.init(params).base_optimizer_state[1]).__name__ == "MaskedState"
  with pytest.raises(ValueError, match="mask"):
    C.schedule_free_sgd(0.1, mask={"a": True, "b": False})


def _sweep_jaxpr(make):
  params, g = make_params(), make_grads(steps=1)[0]

  def update(lr):
    tx = make(lr)
    return tx.update(g, tx.init(params), params)

  return jax.make_jaxpr(jax.vmap(update))(jnp.asarray([0.5, 1.0, 2.0]))


@pytest.mark.parametrize("make, conds", [
    pytest.param(lambda lr: C.schedule_free_adamw(lr), 0, id="schedule_free_adamw"),
    pytest.param(lambda lr: C.prodigy(lr, weight_decay=0.1), 0, id="prodigy"),
    pytest.param(lambda lr: C.dadapt_adamw(lr, weight_decay=0.1), 0, id="dadapt_adamw"),
    pytest.param(lambda lr: C.mechanize(gradtx.adam(lr)), 1, id="mechanize"),
])
def test_vmapped_lr_sweep_is_per_step_arithmetic(make, conds):
  # Every estimate (averaging weight, d, Mechanic's scale) is updated on every step: a vmapped
  # sweep has no cond that became a select_n running an expensive branch. The only select_n's
  # pick among per-member scalars (schedule_free's NaN guard), and mechanize's one cond (x0 on
  # the first step) stays a cond whose branches compute nothing.
  closed = _sweep_jaxpr(make)
  outside = primitives_outside_cond(closed)
  inside = primitives_inside_cond(closed)
  assert set(inside) <= {"pjit", "copy", "copy_p", "convert_element_type"}, inside

  def selects(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "select_n":
        yield eqn
      for v in eqn.params.values():
        for sub in (v if isinstance(v, (tuple, list)) else [v]):
          inner = getattr(sub, "jaxpr", sub)
          if hasattr(inner, "eqns"):
            yield from selects(inner)

  for eqn in selects(closed.jaxpr):
    assert all(np.prod(v.aval.shape) <= 3 for v in eqn.outvars), eqn
  assert outside.count("cond") == conds


def test_schedule_free_eval_params():
  params = make_params()
  ups, state, p_end = _run(C.schedule_free_sgd(0.1), params, make_grads(steps=4))
  x = C.schedule_free_eval_params(state, p_end)
  assert jax.tree.structure(x) == jax.tree.structure(params)
  with pytest.raises(ValueError, match="ScheduleFreeState"):
    C.schedule_free_eval_params(C.prodigy().init(params), params)


@pytest.mark.parametrize("call, match", [
    (lambda: C.schedule_free(gradtx.sgd(0.1), 0.1, b1=0.0), "b1"),
    (lambda: C.schedule_free(gradtx.sgd(0.1), 0.1, b1=1.5), "b1"),
    (lambda: C.schedule_free(gradtx.sgd(0.1), 0.1, state_dtype=jnp.int32), "state_dtype"),
    (lambda: C.schedule_free(gradtx.sgd(0.1), "0.1"), "learning_rate"),
    (lambda: C.schedule_free(gradtx.sgd(0.1), 0.1, weight_lr_power=float("nan")),
     "weight_lr_power"),
    (lambda: C.schedule_free("sgd", 0.1), "tx"),
    (lambda: C.schedule_free_sgd(0.1, warmup_steps=-1), "warmup_steps"),
    (lambda: C.schedule_free_sgd(0.1, weight_decay=-0.1), "weight_decay"),
    (lambda: C.schedule_free_adamw(b2=1.0), "b2"),
    (lambda: C.schedule_free_adamw(eps=-1.0), "eps"),
    (lambda: C.schedule_free_adamw(lambda t: 0.1, warmup_steps=3), "learning_rate"),
    (lambda: C.prodigy(betas=(0.9,)), "betas"),
    (lambda: C.prodigy(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: C.prodigy(beta3=2.0), "beta3"),
    (lambda: C.prodigy(eps=-1.0), "eps"),
    (lambda: C.prodigy(estim_lr0=0.0), "estim_lr0"),
    (lambda: C.prodigy(estim_lr_coef=0.0), "estim_lr_coef"),
    (lambda: C.prodigy(weight_decay=-1.0), "weight_decay"),
    (lambda: C.prodigy(safeguard_warmup=1), "safeguard_warmup"),
    (lambda: C.prodigy(mask={"a": 1}), "mask"),
    (lambda: C.prodigy(mu_dtype=jnp.int8), "mu_dtype"),
    (lambda: C.dadapt_adamw(betas=(-0.1, 0.9)), r"betas\[0\]"),
    (lambda: C.dadapt_adamw(estim_lr0=-1.0), "estim_lr0"),
    (lambda: C.dadapt_adamw(nu_dtype="int32"), "nu_dtype"),
    (lambda: C.dadapt_adamw(learning_rate=jnp.ones(2)), "learning_rate"),
    (lambda: C.mechanize(gradtx.sgd(0.1), num_betas=0), "num_betas"),
    (lambda: C.mechanize(gradtx.sgd(0.1), num_betas=2.0), "num_betas"),
    (lambda: C.mechanize(gradtx.sgd(0.1), eps=0.0), "eps"),
    (lambda: C.mechanize(gradtx.sgd(0.1), s_init=-1.0), "s_init"),
    (lambda: C.mechanize(gradtx.sgd(0.1), weight_decay=-1.0), "weight_decay"),
])
def test_bad_input_names_the_argument(call, match):
  with pytest.raises((ValueError, TypeError), match=match):
    call()


@pytest.mark.parametrize("tx", [
    pytest.param(C.schedule_free_sgd(0.1), id="schedule_free_sgd"),
    pytest.param(C.prodigy(), id="prodigy"),
    pytest.param(C.dadapt_adamw(), id="dadapt_adamw"),
    pytest.param(C.mechanize(gradtx.sgd(0.1)), id="mechanize"),
])
def test_missing_params_and_mismatched_mask(tx):
  params = make_params()
  with pytest.raises(ValueError, match="params"):
    tx.update(make_grads(steps=1)[0], tx.init(params))


def test_mask_not_a_prefix_raises():
  params = make_params()
  tx = C.prodigy(weight_decay=0.1, mask={"x": True})
  with pytest.raises(ValueError, match="mask"):
    tx.update(make_grads(steps=1)[0], tx.init(params), params)
