"""learned.update_rule (Bello et al.'s grammar compiled to a transformation) and
learned.search_update_rules: parser errors, NumPy references over steps, PowerSign / AddSign /
Adam bit for bit, the search's interpreter equal to the compiled rule, deterministic searches."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import learned
from gradtx.learned import search as search_mod

STEPS = 20
PARAMS = {"a": jnp.zeros((2, 3)), "b": (jnp.zeros(()), jnp.zeros(5))}
GRADS = [jax.tree.map(lambda p, i=i: jax.random.normal(jax.random.key(i), p.shape), PARAMS)
         for i in range(STEPS)]


def run(tx, grads=GRADS, jit=True, **extra):
  state = tx.init(PARAMS)
  step = jax.jit(tx.update) if jit else tx.update
  out = []
  for g in grads:
    u, state = step(g, state, PARAMS, **extra)
    out.append([np.asarray(x) for x in jax.tree.leaves(u)])
  return out, state


def assert_same(a, b):
  for ua, ub in zip(a, b):
    for x, y in zip(ua, ub):
      np.testing.assert_array_equal(x, y)


# --- parser -----------------------------------------------------------------------------------

@pytest.mark.parametrize("expr,token", [("g + foo", "'foo'"), ("g $ 2", "'$'"), ("exp(g", "end"),
                                        ("g g", "'g'"), ("clip(g)", "')'"), ("", "end"),
                                        ("drop(g, m)", "'m'"), ("sign g", "'g'")])
def test_expression_outside_the_grammar_names_the_token_and_position(expr, token):
  with pytest.raises(ValueError, match=re.escape(token) + ".*position") as e:
    learned.update_rule(expr)
  assert "update_rule" in str(e.value)


def test_bad_arguments_raise_naming_them():
  with pytest.raises(TypeError, match="expr"):
    learned.update_rule(3)
  with pytest.raises(ValueError, match="b1"):
    learned.update_rule("g", b1=1.5)
  with pytest.raises(ValueError, match="total_steps"):
    learned.update_rule("ld * g")
  with pytest.raises(ValueError, match="eps"):
    learned.update_rule("g", eps=-1.0)


def test_precedence_and_associativity():
  tx = learned.update_rule("-g ^ 2 + 2 * g - g / 2 - 1")  # -(g^2) + 2g - g/2 - 1
  g = jnp.asarray([3.0, -2.0])
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_allclose(u, -(g ** 2) + 2 * g - g / 2 - 1, rtol=1e-6)
  tx = learned.update_rule("2 ^ 3 ^ 2 * g")  # right-associative: 2^9
  np.testing.assert_allclose(tx.update(g, tx.init(g))[0], 512 * g, rtol=1e-6)


# --- NumPy references over steps (float64 loops of the grammar's definitions) -----------------

def numpy_rule(name, grads, b1=0.9, b2=0.999, eps=1e-8, T=STEPS):
  outs = []
  leaves = [[np.asarray(x, np.float64) for x in jax.tree.leaves(g)] for g in grads]
  m = [np.zeros_like(x) for x in leaves[0]]
  v = [np.zeros_like(x) for x in leaves[0]]
  for t, gs in enumerate(leaves):
    out = []
    for i, g in enumerate(gs):
      m[i] = b1 * m[i] + (1 - b1) * g
      v[i] = b2 * v[i] + (1 - b2) * g * g
      mh, vh = m[i] / (1 - b1 ** (t + 1)), v[i] / (1 - b2 ** (t + 1))
      ld = 1 - t / T
      cd = 0.5 * (1 + np.cos(2 * np.pi * 2 * t / T))
      rd = 0.5 * (1 + np.cos(np.pi * ((2 * t) % T) / T))
      out.append({
          "sqrt": np.sqrt(np.abs(vh)) * np.sign(g) + np.log(np.abs(m[i])),
          "decays": ld * g + cd * mh - rd * np.clip(g * g * g, -0.5, 0.5),
          "minmax": np.maximum(g, m[i]) / (np.sqrt(np.abs(v[i])) + eps) + np.minimum(g, 2.0),
          "rms": np.exp(-np.abs(g)) * g / (np.sqrt(vh) + eps),
      }[name])
    outs.append(out)
  return outs


@pytest.mark.parametrize("name,expr", [
    ("sqrt", "sqrt(vhat) * sign(g) + log(m)"),
    ("decays", "ld * g + cd * mhat - rd * clip(g3, 0.5)"),
    ("minmax", "max(g, m) / (sqrt(v) + eps) + min(g, 2)"),
    ("rms", "exp(neg(abs(g))) * rmsprop"),
])
def test_matches_numpy_reference_over_steps(name, expr):
  got, state = run(learned.update_rule(expr, total_steps=STEPS, num_periods=2))
  want = numpy_rule(name, GRADS)
  for t, (a, b) in enumerate(zip(got, want)):
    for x, y in zip(a, b):
      # atol: log|m| turns the float32 cancellation error of a small m into an absolute one
      np.testing.assert_allclose(x, y, rtol=2e-5, atol=5e-5, err_msg=f"step {t}")
  assert state.count.dtype == jnp.int32 and int(state.count) == STEPS


@pytest.mark.parametrize("expr,make", [
    ("exp(sign(g) * sign(m)) * g", gradtx.scale_by_powersign),
    ("(1 + sign(g) * sign(m)) * g", gradtx.scale_by_addsign),
    ("mhat / (sqrt(vhat) + eps)", gradtx.scale_by_adam),
    ("adam", gradtx.scale_by_adam),
])
def test_powersign_addsign_adam_bit_for_bit(expr, make):
  for jit in (True, False):
    assert_same(run(learned.update_rule(expr), GRADS[:6], jit=jit)[0],
                run(make(), GRADS[:6], jit=jit)[0])


def test_drop_is_deterministic_per_seed_and_drops_about_p():
  g = [jnp.ones(4000)] * 2
  tx = learned.update_rule("drop(g, 0.3)")
  u1 = [tx.update(x, tx.init(x))[0] for x in g]
  assert abs(float(jnp.mean(u1[0] == 0)) - 0.3) < 0.03
  np.testing.assert_array_equal(u1[0], tx.update(g[0], tx.init(g[0]))[0])
  tx2 = learned.update_rule("drop(g, 0.3)", seed=1)
  assert not np.array_equal(u1[0], tx2.update(g[0], tx2.init(g[0]))[0])


def test_state_structure_vmap_bf16_extras_chain_and_none():
  tx = learned.update_rule("sign(m) * sqrt(vhat) + g")
  state = tx.init(PARAMS)
  assert type(state).__name__ == "ScaleByUpdateRuleState" and state._fields == ("count", "mu",
                                                                               "nu")
  # unknown extra arguments are ignored, inside chain too
  opt = gradtx.chain(tx, gradtx.scale(-0.1))
  u, _ = opt.update(GRADS[0], opt.init(PARAMS), PARAMS, value=jnp.ones(()), foo=1)
  assert jax.tree.structure(u) == jax.tree.structure(PARAMS)
  # bf16 in, bf16 out; None leaves pass through
  p16 = jnp.ones(3, jnp.bfloat16)
  assert tx.update(p16, tx.init(p16))[0].dtype == jnp.bfloat16
  tree = {"a": jnp.ones(2), "b": None}
  assert tx.update(tree, tx.init(tree))[0]["b"] is None
  # vmap over b1 equals a Python loop
  g = jnp.asarray([0.5, -1.0])

  def two_steps(b1):
    t = learned.update_rule("mhat * g + m", b1=b1)
    s = t.init(g)
    u, s = t.update(g, s)
    return t.update(-g, s)[0]

  b1s = jnp.asarray([0.0, 0.5, 0.9])
  np.testing.assert_allclose(jax.vmap(two_steps)(b1s), [two_steps(float(b)) for b in b1s],
                             rtol=1e-6)


# --- the search ---------------------------------------------------------------------------------

TASK = learned.quadratic_task(dim=3)
KW = dict(num_steps=8, num_problems=2, learning_rates=(0.01, 0.1), batch_size=4)


def test_interpreter_equals_compiled_rule():
  rng = np.random.default_rng(0)
  codes = [np.asarray([rng.integers(v) for v in search_mod.VOCAB]) for _ in range(4)]
  codes[0] = np.asarray([0, 5, 9, 11, 2])  # drop(g, 0.1) * drop(sign(g), 0.5): two drop sites
  T = 4
  interp = jax.jit(lambda c, g, s: search_mod._program(c, 0.9, 0.999, 1e-8, T, 1, 0).update(g, s))
  for c in codes:
    tx = learned.update_rule(search_mod.decode(c), total_steps=T)
    state_i = state_c = tx.init(PARAMS)
    compiled = jax.jit(tx.update)
    for g in GRADS[:T]:
      ui, state_i = interp(jnp.asarray(c, jnp.int32), g, state_i)
      uc, state_c = compiled(g, state_c)
      for x, y in zip(jax.tree.leaves(ui), jax.tree.leaves(uc)):
        np.testing.assert_array_equal(x, y, err_msg=search_mod.decode(c))


@pytest.mark.parametrize("method", ["reinforce", "random", "evolution"])
def test_search_returns_ranked_rules_and_is_deterministic(method):
  r = learned.search_update_rules(TASK, 12, method, key=jax.random.key(0), **KW)
  again = learned.search_update_rules(TASK, 12, method, key=jax.random.key(0), **KW)
  assert r.rules == again.rules and np.array_equal(r.scores, again.scores)
  assert 1 <= len(r.rules) <= 12 and len(r.history) == 3
  assert np.all(np.diff(r.scores) <= 0) and np.all(np.diff(r.history) >= 0)
  assert r.codes.shape == (len(r.rules), 5)
  assert all(search_mod.decode(c) == rule for c, rule in zip(r.codes, r.rules))
  # the compiled rule scores the same as the search's interpreter did
  best = learned.evaluate_update_rules(TASK, [r.rules[0]], key=jax.random.key(0), **{
      k: v for k, v in KW.items() if k != "batch_size"})
  np.testing.assert_allclose(best.max(), r.scores[0], rtol=1e-5, atol=1e-6)


def test_reinforce_step_moves_probability_toward_rewarded_rules():
  """The LSTM controller's REINFORCE step (the search's own jitted step): with advantage +1 on
  one rule and -1 on another, the first rule's log-probability rises and the second's falls."""
  params = search_mod._controller_init(jax.random.key(0), 4)
  # non-zero heads so the policy is not uniform and every weight matters
  params = jax.tree.map(lambda x: x + 0.2 * jax.random.normal(jax.random.key(1), x.shape), params)
  tokens = jnp.asarray([[0, 1, 2, 3, 4], [5, 6, 7, 8, 1]], jnp.int32)
  logp = jax.jit(lambda p: search_mod._controller_run(p, None, tokens, 2)[1])
  opt_state = search_mod._meta_optimizer(0.05).init(params)
  before = logp(params)
  p = params
  for _ in range(3):  # the search's own jitted step
    p, opt_state = search_mod._controller_step(p, opt_state, tokens, jnp.asarray([1.0, -1.0]),
                                               0.0, 0.05)
  after = logp(p)
  assert after[0] > before[0] and after[1] < before[1], (before, after)


def test_search_bad_input_names_the_argument():
  with pytest.raises(ValueError, match="budget"):
    learned.search_update_rules(TASK, 0, key=jax.random.key(0))
  with pytest.raises(TypeError, match="budget"):
    learned.search_update_rules(TASK, 2.5, key=jax.random.key(0))
  with pytest.raises(ValueError, match="method"):
    learned.search_update_rules(TASK, 4, "grid", key=jax.random.key(0))
  with pytest.raises(TypeError, match="key"):
    learned.search_update_rules(TASK, 4, key=0)
  with pytest.raises(ValueError, match="learning_rates"):
    learned.search_update_rules(TASK, 4, key=jax.random.key(0), learning_rates=(-1.0,))
  with pytest.raises(ValueError, match="update_rule"):
    learned.evaluate_update_rules(TASK, ["g +"], key=jax.random.key(0))


def test_runs_in_nnx_optimizer_and_state_round_trips():
  nnx = pytest.importorskip("flax.nnx")
  serialization = pytest.importorskip("flax.serialization")
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  tx = gradtx.chain(learned.update_rule("(1 + sign(g) * sign(m)) * g"), gradtx.scale(-0.05))
  opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
  x, y = jnp.ones((4, 3)), jnp.zeros((4, 1))
  loss = lambda m: jnp.mean((m(x) - y) ** 2)  # noqa: E731

  @nnx.jit
  def step(model, opt):
    value, grads = nnx.value_and_grad(loss)(model)
    opt.update(model, grads, value=value)  # extra keyword arguments are ignored
    return value

  losses = [float(step(model, opt)) for _ in range(5)]
  assert losses[-1] < losses[0]
  state = learned.update_rule("g").init(PARAMS)
  restored = serialization.from_bytes(state, serialization.to_bytes(state))
  assert jax.tree.structure(restored) == jax.tree.structure(state)
