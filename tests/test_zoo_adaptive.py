"""Issue 14, adaptive slice: adabelief, yogi, radam, adan, novograd and their `scale_by_*`
primitives against optax (bit for bit over 20 jitted steps), radam's torch.optim forms against a
NumPy transcription of torch.optim.RAdam (and torch itself when installed), inject_hyperparams,
moment dtypes, novograd's mask, and the factories' argument checks. Eager == jit, vmap over a
hyperparameter, bf16 and the other generic checks run from tests/registry.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import reference as ref
from trees import STEPS, make_grads, make_params

PARAMS, GRADS = make_params(), make_grads(STEPS)


def _mask(params):
  return jax.tree.map(lambda p: p.ndim > 1, params)


def run(tx, params=PARAMS, grads=GRADS, jit=True):
  """Updates of every step (as float64 leaf lists) and the final state; params follow them."""
  state, step, out = tx.init(params), (jax.jit(tx.update) if jit else tx.update), []
  for g in grads:
    u, state = step(g, state, params)
    params = optax.apply_updates(params, u)
    out.append([np.asarray(x, np.float64) for x in jax.tree.leaves(u)])
  return out, state


def leaves64(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


# (name, kwargs): optax and gradtx take the same arguments; every one is bit-identical because
# gradtx follows optax's arithmetic order (same moments, bias corrections and epsilon placement).
OPTAX_CASES = [
    ("adabelief", dict(learning_rate=0.01)),
    ("adabelief", dict(learning_rate=0.01, b1=0.8, eps=1e-8, eps_root=1e-12, nesterov=True)),
    ("yogi", dict(learning_rate=0.01, b2=0.9, eps=1e-4)),
    ("radam", dict(learning_rate=0.01)),
    ("radam", dict(learning_rate=0.01, b2=0.9, eps_root=1e-8, threshold=4.0, nesterov=True)),
    ("adan", dict(learning_rate=0.01)),
    ("adan", dict(learning_rate=0.01, b1=0.9, b3=0.9, weight_decay=0.1, mask=_mask)),
    ("novograd", dict(learning_rate=0.01)),
    ("novograd", dict(learning_rate=0.01, b2=0.5, eps_root=1e-8, weight_decay=0.1)),
    ("scale_by_yogi", dict(eps_root=1e-8, initial_accumulator_value=0.1)),
    ("scale_by_adan", dict(b2=0.5, eps=1e-6)),
    ("scale_by_novograd", dict(mu_dtype=jnp.bfloat16)),
]


@pytest.mark.parametrize("name, kwargs", OPTAX_CASES,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTAX_CASES)])
def test_bit_identical_to_optax(name, kwargs):
  want, want_state = run(getattr(optax, name)(**kwargs))
  got, got_state = run(getattr(gradtx, name)(**kwargs))
  for w, g in zip(want, got):
    for a, b in zip(w, g):
      np.testing.assert_array_equal(b, a)
  for a, b in zip(jax.tree.leaves(want_state), jax.tree.leaves(got_state)):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(b, a)


# --- radam's torch.optim forms -----------------------------------------------------------------


@pytest.mark.parametrize("decoupled", [True, False])
def test_radam_weight_decay_matches_numpy(decoupled):
  """decoupled: torch.optim.RAdam(decoupled_weight_decay=True)'s algorithm; else L2 before the
  moments (optax's epsilon placement). float32 against float64: rounding only."""
  kwargs = dict(learning_rate=0.01, b2=0.9, eps=1e-3, weight_decay=0.1)
  got, _ = run(gradtx.radam(**kwargs, decoupled_weight_decay=decoupled))
  if decoupled:
    want = ref.radam_torch(leaves64(PARAMS), [leaves64(g) for g in GRADS], **kwargs,
                           decoupled_weight_decay=True)
  else:
    want = ref.radam(leaves64(PARAMS), [leaves64(g) for g in GRADS], **kwargs)
  for w, g in zip(want, got):
    for a, b in zip(w, g):
      np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-8)


def test_radam_torch_form_differs_from_optax_only_in_eps():
  """With eps = 0 the two epsilon placements coincide (sqrt(1 - b2^t) / sqrt(v) =
  1 / sqrt(v_hat)); with a large eps they do not."""
  same_a, _ = run(gradtx.scale_by_radam(b2=0.9, eps=0.0, torch_form=True), grads=GRADS[:8])
  same_b, _ = run(gradtx.scale_by_radam(b2=0.9, eps=0.0), grads=GRADS[:8])
  np.testing.assert_allclose(np.concatenate([x.ravel() for s in same_a for x in s]),
                             np.concatenate([x.ravel() for s in same_b for x in s]), rtol=1e-5)
  diff_a, _ = run(gradtx.scale_by_radam(b2=0.9, eps=0.5, torch_form=True), grads=GRADS[:8])
  diff_b, _ = run(gradtx.scale_by_radam(b2=0.9, eps=0.5), grads=GRADS[:8])
  assert not np.allclose(diff_a[-1][0], diff_b[-1][0])


@pytest.mark.parametrize("decoupled", [True, False])
def test_radam_matches_torch(decoupled):
  torch = pytest.importorskip("torch")
  kwargs = dict(lr=0.01, betas=(0.9, 0.9), eps=1e-3, weight_decay=0.1)
  leaves = leaves64(PARAMS)
  tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in leaves]
  opt = torch.optim.RAdam(tensors, **kwargs, decoupled_weight_decay=decoupled)
  want = []
  for g in GRADS:
    before = [t.detach().clone() for t in tensors]
    for t, gl in zip(tensors, leaves64(g)):
      t.grad = torch.tensor(gl, dtype=torch.float64)
    opt.step()
    want.append([(t.detach() - b).numpy() for t, b in zip(tensors, before)])
  got, _ = run(gradtx.radam(0.01, b2=0.9, eps=1e-3, weight_decay=0.1,
                            decoupled_weight_decay=decoupled))
  # float32 against torch's float64; without the flag gradtx keeps optax's epsilon placement,
  # which differs from torch's by eps (1 - sqrt(1 - b2^t)): looser there.
  rtol = 2e-5 if decoupled else 5e-2
  for w, g in zip(want, got):
    for a, b in zip(w, g):
      np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-8)


def test_radam_state_layout_follows_weight_decay_argument():
  params = PARAMS
  plain = gradtx.radam(0.01).init(params)
  assert [type(s).__name__ for s in plain] == ["ScaleByAdamState", "EmptyState"]
  assert [type(s).__name__ for s in plain] == [
      type(s).__name__ for s in optax.radam(0.01).init(params)]
  assert len(gradtx.radam(0.01, weight_decay=0.1, decoupled_weight_decay=True).init(params)) == 3
  assert len(gradtx.radam(0.01, decoupled_weight_decay=True).init(params)) == 2


# --- inject_hyperparams, dtypes, masks ---------------------------------------------------------


@pytest.mark.parametrize("name", ["adabelief", "yogi", "radam", "adan", "novograd"])
def test_inject_hyperparams(name):
  """Bit-identical to optax's inject_hyperparams (the injected hyperparameters are float32
  arrays, so both differ from the plain alias, whose Python floats enter as weak types)."""
  got, state = run(gradtx.inject_hyperparams(getattr(gradtx, name))(learning_rate=0.01),
                   grads=GRADS[:6])
  want, _ = run(optax.inject_hyperparams(getattr(optax, name))(learning_rate=0.01),
                grads=GRADS[:6])
  for w, g in zip(want, got):
    for a, b in zip(w, g):
      np.testing.assert_array_equal(b, a)
  assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.01)


@pytest.mark.parametrize("name", ["scale_by_belief", "scale_by_yogi", "scale_by_radam",
                                  "scale_by_adan"])
def test_moment_dtypes(name):
  tx = getattr(gradtx, name)(mu_dtype=jnp.bfloat16, nu_dtype=jnp.bfloat16)
  _, state = run(tx, grads=GRADS[:2], jit=False)
  fields = state._asdict()
  moments = {k: v for k, v in fields.items() if k not in ("count", "t", "g")}
  for v in moments.values():
    assert {x.dtype for x in jax.tree.leaves(v)} == {jnp.dtype(jnp.bfloat16)}


def test_novograd_mask_decays_only_masked_leaves():
  masked, _ = run(gradtx.novograd(0.01, weight_decay=0.5, mask=_mask), grads=GRADS[:5])
  decayed, _ = run(gradtx.novograd(0.01, weight_decay=0.5), grads=GRADS[:5])
  none, _ = run(gradtx.novograd(0.01), grads=GRADS[:5])
  is_matrix = [p.ndim > 1 for p in jax.tree.leaves(PARAMS)]
  for step in range(1, 5):  # masked leaves follow the decayed run, the others the plain one
    for i, m in enumerate(is_matrix):
      np.testing.assert_allclose(masked[step][i], (decayed if m else none)[step][i], rtol=1e-6)


def test_novograd_weight_decay_schedule():
  sched = lambda t: 0.1 * 0.5**t
  got, _ = run(gradtx.scale_by_novograd(weight_decay=sched), grads=GRADS[:6])
  want = ref.scale_by_novograd(leaves64(PARAMS), [leaves64(g) for g in GRADS[:6]],
                               weight_decay=sched)
  for w, g in zip(want, got):
    for a, b in zip(w, g):
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_optax_keywords_of_nadam_and_noisy_sgd():
  """optax 0.2.8's `nadam(..., nesterov=)` and `noisy_sgd(..., seed=)` are accepted."""
  gradtx.nadam(0.01, nesterov=True)
  gradtx.noisy_sgd(0.01, seed=3)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make, arg", [
    (lambda: gradtx.scale_by_belief(b1=1.0), "b1"),
    (lambda: gradtx.adabelief(0.01, b2=-0.1), "b2"),
    (lambda: gradtx.scale_by_belief(eps_root=-1.0), "eps_root"),
    (lambda: gradtx.scale_by_belief(nesterov=1), "nesterov"),
    (lambda: gradtx.yogi(0.01, eps=-1e-3), "eps"),
    (lambda: gradtx.scale_by_yogi(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: gradtx.scale_by_yogi(mu_dtype=jnp.int32), "mu_dtype"),
    (lambda: gradtx.radam(0.01, threshold=3.0), "threshold"),
    (lambda: gradtx.radam(0.01, b2=1.0), "b2"),
    (lambda: gradtx.radam(0.01, decoupled_weight_decay="yes"), "decoupled_weight_decay"),
    (lambda: gradtx.radam(0.01, mask=_mask), "mask"),
    (lambda: gradtx.radam(0.01, weight_decay=-0.1), "weight_decay"),
    (lambda: gradtx.radam(float("nan")), "learning_rate"),
    (lambda: gradtx.adan(0.01, b3=1.5), "b3"),
    (lambda: gradtx.adan(0.01, weight_decay=-1.0), "weight_decay"),
    (lambda: gradtx.scale_by_adan(eps=float("inf")), "eps"),
    (lambda: gradtx.novograd(0.01, b1=2.0), "b1"),
    (lambda: gradtx.novograd(0.01, weight_decay=-0.1), "weight_decay"),
    (lambda: gradtx.scale_by_novograd(mu_dtype="int8"), "mu_dtype"),
])
def test_bad_input_names_the_argument(make, arg):
  with pytest.raises((ValueError, TypeError), match=arg):
    make()


def test_novograd_with_weight_decay_needs_params():
  tx = gradtx.scale_by_novograd(weight_decay=0.1)
  with pytest.raises(ValueError, match="params"):
    tx.update(GRADS[0], tx.init(PARAMS))
  tx = gradtx.scale_by_novograd()  # no decay: params are not needed
  tx.update(GRADS[0], tx.init(PARAMS))
