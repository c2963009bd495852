"""One table that drives the generic tests (tests/test_registry.py).

Each `Entry` names a public transformation or alias, how to build it, the NumPy reference of its
paper's equation (tests/reference.py), its optax counterpart (or None), and a hyperparameter to
sweep under `jax.vmap`. A test fails if a public transformation or alias has no entry.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np
import optax

import gradtx
import reference as ref


@dataclasses.dataclass(frozen=True)
class Entry:
  id: str                       # unique test id, e.g. "adam" or "adam-nesterov"
  name: str                     # the public gradtx name the entry covers ("contrib.muon" for
                                # gradtx.contrib.muon)
  kwargs: dict                  # hyperparameters, passed to gradtx, the reference and optax
  reference: Callable | None    # NumPy reference (tests/reference.py) or None (e.g. random noise)
  optax: Callable | None = None  # optax factory taking the same kwargs, or None
  optax_kwargs: dict | None = None  # kwargs for optax when they differ from `kwargs`
  sweep: tuple[str, tuple] | None = None  # (hyperparameter, values) for the vmap test
  needs_params: bool = False    # update() needs params
  rtol: float = 1e-5
  atol: float = 1e-6
  update_kwargs: Callable[[int], dict] | None = None  # update() keyword arguments at step i
  jit_tol: tuple[float, float] = (1e-6, 1e-7)  # (rtol, atol) of test_eager_equals_jit

  def make(self, **overrides: Any) -> gradtx.GradientTransformation:
    obj = gradtx
    for part in self.name.split("."):
      obj = getattr(obj, part)
    return obj(**{**self.kwargs, **overrides})

  def kwargs_at(self, step: int) -> dict:
    """The keyword arguments of update() at `step` (e.g. value=loss for reduce_on_plateau)."""
    return self.update_kwargs(step) if self.update_kwargs is not None else {}


ENTRIES: list[Entry] = [
    Entry("scale", "scale", dict(step_size=-0.3), ref.scale, optax.scale,
          sweep=("step_size", (-0.1, 0.2, 0.5))),
    Entry("scale_by_schedule", "scale_by_schedule",
          dict(step_size_fn=lambda t: 0.5 / (1.0 + t)), ref.scale_by_schedule,
          optax.scale_by_schedule),
    Entry("scale_by_learning_rate", "scale_by_learning_rate", dict(learning_rate=0.1),
          ref.scale_by_learning_rate, optax.scale_by_learning_rate,
          sweep=("learning_rate", (0.01, 0.1, 1.0))),
    Entry("scale_by_learning_rate-schedule", "scale_by_learning_rate",
          dict(learning_rate=lambda t: 0.1 * 0.9**t), ref.scale_by_learning_rate,
          optax.scale_by_learning_rate),
    Entry("trace", "trace", dict(decay=0.9), ref.trace, optax.trace,
          sweep=("decay", (0.0, 0.5, 0.9))),
    Entry("trace-nesterov", "trace", dict(decay=0.8, nesterov=True), ref.trace, optax.trace),
    Entry("trace-schedule", "trace", dict(decay=lambda t: 0.99 - 0.5 * 0.5**t),
          ref.trace),
    Entry("ema", "ema", dict(decay=0.9), ref.ema, optax.ema, sweep=("decay", (0.5, 0.9, 0.99))),
    Entry("ema-nodebias", "ema", dict(decay=0.7, debias=False), ref.ema, optax.ema),
]

# Names that are not gradient transformations (helpers, types, states) and so need no entry.
NOT_TRANSFORMS = {
    "GradientTransformation", "EmptyState", "Params", "Updates", "OptState", "Schedule",
    "ScalarOrSchedule", "ArrayTree", "Numeric", "TransformInitFn", "TransformUpdateFn",
    "init_empty_state", "apply_updates", "incremental_update", "chain", "stateless",
    "safe_increment", "zeros_like", "full_like", "cast", "cast_like", "moment_like", "abs_sq",
    "update_moment", "update_moment_per_elem_norm", "update_infinity_moment", "bias_correction",
    "global_norm", "identity", "set_to_zero",
}


# --- sign.py, noise.py, clipping.py, decay.py, wrappers.py --------------------------------------


import jax  # noqa: E402  (appended block)


def _optax_add_noise_raw_key(**kwargs):
  """optax.add_noise with its state's typed key stored as raw key data (gradtx's layout), so the
  generic test can compare `rng_key` field by field; the numbers are optax's own."""
  tx = optax.add_noise(**kwargs)
  raw = lambda s: s._replace(rng_key=jax.random.key_data(s.rng_key))
  typed = lambda s: s._replace(rng_key=jax.random.wrap_key_data(s.rng_key))

  def update(updates, state, params=None, **extra_args):
    del extra_args
    updates, state = tx.update(updates, typed(state), params)
    return updates, raw(state)

  return optax.GradientTransformation(lambda params: raw(tx.init(params)), update)


_FULL_MASK = {"a": (True, False), "b": {"c": False, "d": True}}


def _mask_fn(params):
  """A callable mask for the generic test tree: every leaf but the scalar 'c'."""
  del params
  return {"a": (True, True), "b": {"c": False, "d": True}}

ENTRIES += [
    Entry("scale_by_sign", "scale_by_sign", dict(), ref.scale_by_sign, optax.scale_by_sign),
    Entry("scale_by_powersign", "scale_by_powersign", dict(), ref.scale_by_powersign,
          sweep=("alpha", (1.5, 2.0, 2.718281828))),
    Entry("scale_by_powersign-linear_decay", "scale_by_powersign",
          dict(decay=lambda t: 1.0 - t / 20.0), ref.scale_by_powersign,
          sweep=("beta", (0.0, 0.5, 0.9))),
    Entry("scale_by_powersign-alpha2", "scale_by_powersign", dict(alpha=2.0, beta=0.8),
          ref.scale_by_powersign),
    Entry("scale_by_addsign", "scale_by_addsign", dict(), ref.scale_by_addsign,
          sweep=("alpha", (1.0, 1.5, 2.0))),
    Entry("scale_by_addsign-linear_decay", "scale_by_addsign",
          dict(decay=lambda t: 1.0 - t / 20.0), ref.scale_by_addsign,
          sweep=("beta", (0.0, 0.5, 0.9))),
    Entry("scale_by_addsign-alpha2", "scale_by_addsign", dict(alpha=2.0, beta=0.8),
          ref.scale_by_addsign),
    Entry("add_noise", "add_noise", dict(eta=0.01, gamma=0.55, key=0), None,
          _optax_add_noise_raw_key, sweep=("eta", (0.0, 0.01, 0.3))),
    Entry("add_noise-key", "add_noise", dict(eta=0.3, gamma=1.0, key=42), None,
          _optax_add_noise_raw_key, sweep=("gamma", (0.0, 0.55, 1.0))),
    Entry("clip", "clip", dict(max_delta=0.5), ref.clip, optax.clip,
          sweep=("max_delta", (0.0, 0.5, 2.0))),
    Entry("clip_by_global_norm", "clip_by_global_norm", dict(max_norm=1.0),
          ref.clip_by_global_norm, optax.clip_by_global_norm,
          sweep=("max_norm", (0.5, 1.0, 100.0))),
    Entry("clip_by_global_norm-no_clip", "clip_by_global_norm", dict(max_norm=1e3),
          ref.clip_by_global_norm, optax.clip_by_global_norm),
    Entry("clip_by_block_rms", "clip_by_block_rms", dict(threshold=0.8), ref.clip_by_block_rms,
          optax.clip_by_block_rms, sweep=("threshold", (0.1, 0.8, 10.0))),
    Entry("add_decayed_weights", "add_decayed_weights", dict(weight_decay=0.1),
          ref.add_decayed_weights, optax.add_decayed_weights, needs_params=True,
          sweep=("weight_decay", (0.0, 0.1, 0.5))),
    Entry("add_decayed_weights-schedule", "add_decayed_weights",
          dict(weight_decay=lambda t: 0.1 * 0.9**t), ref.add_decayed_weights,
          optax.add_decayed_weights, needs_params=True),
    Entry("add_decayed_weights-mask", "add_decayed_weights",
          dict(weight_decay=0.2, mask=_FULL_MASK), ref.add_decayed_weights,
          optax.add_decayed_weights, needs_params=True, sweep=("weight_decay", (0.0, 0.2, 1.0))),
    Entry("masked", "masked", dict(inner=gradtx.scale(2.0), mask={"a": (True, False), "b": False}),
          None, optax.masked,
          optax_kwargs=dict(inner=optax.scale(2.0), mask={"a": (True, False), "b": False})),
    Entry("masked-trace-callable", "masked",
          dict(inner=gradtx.trace(0.9), mask=_mask_fn), None, optax.masked,
          optax_kwargs=dict(inner=optax.trace(0.9), mask=_mask_fn)),
]

NOT_TRANSFORMS |= {"MaskedNode"}

# adaptive.py: Adagrad, RMSprop, centered RMSprop, Adadelta and the Adam family.
ENTRIES += [
    Entry("scale_by_rss", "scale_by_rss", dict(initial_accumulator_value=0.1, eps=1e-7),
          ref.scale_by_rss, optax.scale_by_rss,
          sweep=("initial_accumulator_value", (0.0, 0.1, 1.0))),
    Entry("scale_by_rss-zero-init", "scale_by_rss", dict(initial_accumulator_value=0.0, eps=0.0),
          ref.scale_by_rss, optax.scale_by_rss, sweep=("eps", (0.0, 1e-7, 1e-2))),
    Entry("scale_by_rms", "scale_by_rms", dict(decay=0.9), ref.scale_by_rms, optax.scale_by_rms,
          sweep=("decay", (0.5, 0.9, 0.99))),
    Entry("scale_by_rms-bias_correction", "scale_by_rms",
          dict(decay=0.99, eps=1e-6, eps_in_sqrt=False, bias_correction=True), ref.scale_by_rms,
          optax.scale_by_rms, sweep=("decay", (0.5, 0.9, 0.999))),
    Entry("scale_by_rms-initial_scale", "scale_by_rms",
          dict(decay=0.8, eps=1e-3, initial_scale=1.0, eps_in_sqrt=False), ref.scale_by_rms,
          optax.scale_by_rms, sweep=("initial_scale", (0.0, 0.5, 2.0))),
    Entry("scale_by_stddev", "scale_by_stddev", dict(decay=0.9), ref.scale_by_stddev,
          optax.scale_by_stddev, sweep=("decay", (0.5, 0.8, 0.9))),
    # Bias-corrected, the first step has nu_hat - mu_hat^2 = 0 up to rounding: a large eps keeps
    # the float32 result comparable with the float64 reference.
    Entry("scale_by_stddev-bias_correction", "scale_by_stddev",
          dict(decay=0.9, eps=1.0, bias_correction=True), ref.scale_by_stddev,
          optax.scale_by_stddev, sweep=("eps", (0.5, 1.0, 2.0))),
    Entry("scale_by_stddev-eps_outside", "scale_by_stddev",
          dict(decay=0.8, eps=1e-3, initial_scale=1.0, eps_in_sqrt=False), ref.scale_by_stddev,
          optax.scale_by_stddev),
    Entry("scale_by_adadelta", "scale_by_adadelta", dict(rho=0.9, eps=1e-6),
          ref.scale_by_adadelta, optax.scale_by_adadelta, sweep=("rho", (0.5, 0.9, 0.95))),
    Entry("scale_by_adam", "scale_by_adam", dict(b1=0.9, b2=0.999, eps=1e-8), ref.scale_by_adam,
          optax.scale_by_adam, sweep=("b2", (0.9, 0.99, 0.999))),
    Entry("scale_by_adam-nesterov", "scale_by_adam", dict(b1=0.8, b2=0.99, eps=1e-6,
          nesterov=True), ref.scale_by_adam, optax.scale_by_adam, sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("scale_by_adam-eps_root", "scale_by_adam", dict(eps=1e-4, eps_root=1e-6),
          ref.scale_by_adam, optax.scale_by_adam, sweep=("eps_root", (0.0, 1e-8, 1e-4))),
    # Schedules use `** (1.0 * t)`: `x ** t` with a concrete int t is exact-integer-power eagerly
    # but not under jit, which the eager == jit test would see.
    Entry("scale_by_adam-b1-schedule", "scale_by_adam",
          dict(b1=lambda t: 0.9 * 0.9 ** (1.0 * t), eps=1e-6), ref.scale_by_adam),
    Entry("scale_by_adam-b1-theano", "scale_by_adam",
          dict(b1=lambda t: 0.9 * (1 - 1e-8) ** t, eps=1e-6), ref.scale_by_adam,
          sweep=("b2", (0.9, 0.99, 0.999))),
    Entry("scale_by_adam-b1-schedule-nesterov", "scale_by_adam",
          dict(b1=lambda t: 0.9 * 0.95 ** (1.0 * t), nesterov=True), ref.scale_by_adam),
    Entry("scale_by_adamax", "scale_by_adamax", dict(b1=0.9, b2=0.999, eps=1e-8),
          ref.scale_by_adamax, optax.scale_by_adamax, sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("scale_by_amsgrad", "scale_by_amsgrad", dict(b1=0.9, b2=0.999, eps=1e-8),
          ref.scale_by_amsgrad, optax.scale_by_amsgrad, sweep=("b2", (0.9, 0.99, 0.999))),
    Entry("scale_by_amsgrad-paper", "scale_by_amsgrad",
          dict(b1=0.9, b2=0.99, eps=1e-8, bias_correction_mu=False, bias_correction_nu=False),
          ref.scale_by_amsgrad, optax.scale_by_amsgrad, sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("scale_by_nadam", "scale_by_nadam", dict(b1=0.9, b2=0.999, eps=1e-8),
          ref.scale_by_nadam, sweep=("momentum_decay", (0.0, 0.004, 0.1))),
    Entry("scale_by_nadam-eps_root", "scale_by_nadam",
          dict(b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8), ref.scale_by_nadam,
          sweep=("b1", (0.0, 0.5, 0.9))),
]

# --- aliases --------------------------------------------------------------------------------


def _cosine_decay(t, period=20):
  """Bello et al.'s cosine decay 0.5 (1 + cos(2 pi t / T)); works on Python ints and tracers."""
  cos = np.cos if isinstance(t, (int, np.integer)) else jnp.cos
  return 0.5 * (1 + cos(2 * np.pi * t / period))


_SCHED = lambda t: 0.05 * 0.9**t  # a learning-rate schedule for the schedule variants
ENTRIES += [
    Entry("sgd", "sgd", dict(learning_rate=0.1), ref.sgd, optax.sgd,
          sweep=("learning_rate", (0.01, 0.1, 0.3))),
    Entry("sgd-momentum", "sgd", dict(learning_rate=0.05, momentum=0.9), ref.sgd, optax.sgd,
          sweep=("momentum", (0.0, 0.5, 0.9))),
    Entry("sgd-nesterov", "sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True), ref.sgd,
          optax.sgd),
    Entry("sgdw", "sgdw", dict(learning_rate=0.05, momentum=0.9, weight_decay=0.1), ref.sgdw,
          sweep=("weight_decay", (0.0, 0.01, 0.1)), needs_params=True),
    Entry("noisy_sgd", "noisy_sgd", dict(learning_rate=0.1, eta=0.01, gamma=0.55, key=3), None,
          optax.noisy_sgd, sweep=("learning_rate", (0.01, 0.1))),
    Entry("adagrad", "adagrad", dict(learning_rate=0.1), ref.adagrad, optax.adagrad,
          sweep=("learning_rate", (0.01, 0.1, 0.5))),
    Entry("adadelta", "adadelta", dict(), ref.adadelta, optax.adadelta,
          optax_kwargs=dict(learning_rate=1.0), sweep=("rho", (0.5, 0.9, 0.95)),
          needs_params=True),
    Entry("adadelta-decay", "adadelta", dict(learning_rate=0.5, rho=0.95, weight_decay=0.01),
          ref.adadelta, optax.adadelta, needs_params=True),
    Entry("rmsprop", "rmsprop", dict(learning_rate=0.01), ref.rmsprop, optax.rmsprop,
          sweep=("decay", (0.5, 0.9, 0.99))),
    Entry("rmsprop-centered-momentum", "rmsprop",
          dict(learning_rate=0.01, centered=True, momentum=0.9), ref.rmsprop, optax.rmsprop),
    Entry("rmsprop-nesterov-eps-outside", "rmsprop",
          dict(learning_rate=0.01, momentum=0.5, nesterov=True, eps_in_sqrt=False, eps=1e-3),
          ref.rmsprop, optax.rmsprop),
    Entry("adam", "adam", dict(learning_rate=0.01), ref.adam, optax.adam,
          sweep=("learning_rate", (1e-3, 1e-2, 1e-1))),
    Entry("adam-b2-eps_root", "adam", dict(learning_rate=0.01, b2=0.95, eps_root=1e-8), ref.adam,
          optax.adam, sweep=("b2", (0.9, 0.95, 0.999))),
    Entry("adam-schedule", "adam", dict(learning_rate=_SCHED), ref.adam, optax.adam),
    Entry("adamw", "adamw", dict(learning_rate=0.01, weight_decay=0.1), ref.adamw, optax.adamw,
          sweep=("weight_decay", (0.0, 0.01, 0.1)), needs_params=True),
    Entry("adamw-schedule", "adamw", dict(learning_rate=_SCHED, weight_decay=0.1), ref.adamw,
          optax.adamw, needs_params=True),
    Entry("adamax", "adamax", dict(learning_rate=0.01), ref.adamax, optax.adamax,
          sweep=("b1", (0.5, 0.9))),
    Entry("adamaxw", "adamaxw", dict(learning_rate=0.01, weight_decay=0.05), ref.adamaxw,
          optax.adamaxw, needs_params=True),
    Entry("nadam", "nadam", dict(learning_rate=0.01), ref.nadam, optax.nadam,
          sweep=("learning_rate", (1e-3, 1e-2))),
    Entry("nadam-momentum_decay", "nadam", dict(learning_rate=0.01, momentum_decay=0.004),
          ref.nadam, sweep=("learning_rate", (1e-3, 1e-2))),
    Entry("nadamw", "nadamw", dict(learning_rate=0.01, weight_decay=0.1), ref.nadamw,
          optax.nadamw, needs_params=True),
    Entry("amsgrad", "amsgrad", dict(learning_rate=0.01), ref.amsgrad, optax.amsgrad,
          sweep=("learning_rate", (1e-3, 1e-2))),
    Entry("amsgrad-paper", "amsgrad",
          dict(learning_rate=0.01, bias_correction_mu=False, bias_correction_nu=False),
          ref.amsgrad, optax.amsgrad),
    Entry("powersign", "powersign", dict(learning_rate=0.01), ref.powersign,
          sweep=("learning_rate", (1e-3, 1e-2))),
    Entry("powersign-linear-decay", "powersign",
          dict(learning_rate=0.01, decay=lambda t: 1.0 - t / 20.0), ref.powersign),
    Entry("addsign", "addsign", dict(learning_rate=0.01), ref.addsign,
          sweep=("beta", (0.5, 0.9))),
    Entry("addsign-cosine-decay", "addsign",
          dict(learning_rate=0.01, decay=_cosine_decay), ref.addsign),
]

# --- wrappers.py reduce_on_plateau, averaging.py ----------------------------------------------

import dataclasses as _dataclasses  # noqa: E402  (appended block)
import functools as _functools  # noqa: E402

# A loss with two plateaus and a late improvement: over the 20 generic steps the scale is reduced
# (patience), held (cooldown), floored (min_scale) and the accumulated variant averages pairs.
_PLATEAU_VALUES = (5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.9999, 2.5, 2.5,
                   2.5, 2.5, 2.5, 2.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


def _plateau_kwargs(t):
  """update() keyword arguments at step t: the monitored loss."""
  return dict(value=jnp.asarray(_PLATEAU_VALUES[t % len(_PLATEAU_VALUES)], jnp.float32))


_PLATEAU = dict(factor=0.5, patience=2, cooldown=1, min_scale=0.1)
_PLATEAU_ACC = dict(factor=0.3, patience=1, accumulation_size=2, atol=0.01)

# reduce_on_plateau needs `value=` at every update: registered once Entry has `update_kwargs`
# (a callable step -> dict of update() keyword arguments; see tests/test_registry.py).
if "update_kwargs" in {f.name for f in _dataclasses.fields(Entry)}:
  ENTRIES += [
      Entry("reduce_on_plateau", "reduce_on_plateau", _PLATEAU,
            _functools.partial(ref.reduce_on_plateau, values=_PLATEAU_VALUES),
            optax.contrib.reduce_on_plateau, sweep=("factor", (0.1, 0.5, 0.9)),
            update_kwargs=_plateau_kwargs),
      Entry("reduce_on_plateau-accumulate", "reduce_on_plateau", _PLATEAU_ACC,
            _functools.partial(ref.reduce_on_plateau, values=_PLATEAU_VALUES),
            optax.contrib.reduce_on_plateau, sweep=("min_scale", (0.0, 0.05, 0.5)),
            update_kwargs=_plateau_kwargs),
  ]

ENTRIES += [
    Entry("polyak_averaging", "polyak_averaging", dict(), ref.pass_through, needs_params=True),
    Entry("ema_params", "ema_params", dict(decay=0.9), ref.pass_through, needs_params=True,
          sweep=("decay", (0.5, 0.9, 0.99))),
    Entry("ema_params-nodebias", "ema_params", dict(decay=0.8, debias=False), ref.pass_through,
          needs_params=True),
    Entry("snapshot_ensemble", "snapshot_ensemble", dict(num_snapshots=3, first_period=2),
          ref.pass_through, needs_params=True, sweep=("first_period", (2.0, 3.0, 5.0))),
    Entry("snapshot_ensemble-multiplier", "snapshot_ensemble",
          dict(num_snapshots=2, first_period=1, period_multiplier=2), ref.pass_through,
          needs_params=True, sweep=("period_multiplier", (1.0, 1.5, 2.0))),
]

NOT_TRANSFORMS |= {"averaged_params", "ensemble_params", "ensemble_predict"}

# --- decoupled weight decay in the paper's exact form (adamw / sgdw schedule_multiplier) --------

from gradtx.transforms.decay import normalized_weight_decay_schedule  # noqa: E402  (appended block)

_SGDR_MULTIPLIER = gradtx.warm_restarts_schedule(1.0, 4, 2)  # restarts at steps 4 and 12
_WD_NORMALIZED = normalized_weight_decay_schedule(0.5, 10, 95, 4, 2)  # 9.5 steps per epoch


def _sgdr_multiplier(t):
  """eta_t of SGDR (T_0 = 4, T_mult = 2): NumPy float64 for the references' Python ints, gradtx's
  schedule for the traced counts."""
  if isinstance(t, (int, np.integer)):
    return ref.warm_restarts_schedule(int(t), 1.0, 4, 2)
  return _SGDR_MULTIPLIER(t)


def _adamwr_weight_decay(t):
  """AdamWR's normalized decay lambda_norm sqrt(b / (B T_i)) for the cycle of step t."""
  if isinstance(t, (int, np.integer)):
    return ref.normalized_weight_decay(0.5, 10, 95, ref.warm_restart_period(int(t), 4, 2) / 9.5)
  return _WD_NORMALIZED(t)


# optax has no multiplier, but adamw(alpha, lambda, schedule_multiplier=eta) is optax.adamw with
# learning rate alpha eta_t and decay lambda / alpha.
_OPTAX_ADAMW_PAPER = dict(learning_rate=lambda t: 0.01 * _SGDR_MULTIPLIER(t), weight_decay=10.0)

ENTRIES += [
    Entry("add_decayed_weights-schedule_multiplier", "add_decayed_weights",
          dict(weight_decay=0.1, schedule_multiplier=_sgdr_multiplier),
          ref.add_decayed_weights_multiplied, needs_params=True,
          sweep=("weight_decay", (0.0, 0.1, 0.5))),
    Entry("add_decayed_weights-schedule_multiplier-mask", "add_decayed_weights",
          dict(weight_decay=0.2, mask=_FULL_MASK, schedule_multiplier=0.5),
          ref.add_decayed_weights_multiplied, needs_params=True,
          sweep=("schedule_multiplier", (0.0, 0.5, 1.0))),
    Entry("adamw-paper-warm_restarts", "adamw",
          dict(learning_rate=0.01, weight_decay=0.1, schedule_multiplier=_sgdr_multiplier),
          ref.adamw_algorithm2, optax.adamw, optax_kwargs=_OPTAX_ADAMW_PAPER, needs_params=True,
          sweep=("weight_decay", (0.0, 0.01, 0.1))),
    Entry("adamw-paper-mask", "adamw",
          dict(learning_rate=0.01, b1=0.8, weight_decay=0.3, mask=_FULL_MASK,
               schedule_multiplier=0.5),
          ref.adamw_algorithm2, needs_params=True,
          sweep=("schedule_multiplier", (0.0, 0.5, 1.0))),
    Entry("adamwr", "adamw",
          dict(learning_rate=0.01, weight_decay=_adamwr_weight_decay,
               schedule_multiplier=_sgdr_multiplier),
          ref.adamw_algorithm2, needs_params=True, sweep=("learning_rate", (1e-3, 1e-2, 1e-1))),
    Entry("sgdw-paper-warm_restarts", "sgdw",
          dict(learning_rate=0.05, momentum=0.9, weight_decay=0.1,
               schedule_multiplier=_sgdr_multiplier),
          ref.sgdw_algorithm1, needs_params=True, sweep=("momentum", (0.0, 0.5, 0.9))),
    Entry("sgdw-paper-nesterov-mask", "sgdw",
          dict(learning_rate=0.05, momentum=0.8, weight_decay=0.2, nesterov=True,
               mask=_FULL_MASK, schedule_multiplier=0.7),
          ref.sgdw_algorithm1, needs_params=True,
          sweep=("schedule_multiplier", (0.0, 0.7, 1.0))),
    Entry("sgdwr", "sgdw",
          dict(learning_rate=0.05, momentum=0.9, weight_decay=_adamwr_weight_decay,
               schedule_multiplier=_sgdr_multiplier),
          ref.sgdw_algorithm1, needs_params=True, sweep=("learning_rate", (0.01, 0.05))),
]

NOT_TRANSFORMS |= {"normalized_weight_decay", "normalized_weight_decay_schedule",
                   "lr_range_test", "plot_schedule", "plot_lr_range_test"}


# --- monitoring.py -------------------------------------------------------------------------------


def _pass_through(params, grads, **kwargs):
  """Monitoring transformations leave the updates unchanged: u = g."""
  del kwargs
  return ref.scale(params, grads, 1.0)


ENTRIES += [
    Entry("snapshot", "snapshot", dict(measure_name="norm", measure=gradtx.global_norm),
          _pass_through, optax.snapshot),
    Entry("monitor", "monitor",
          dict(measures={"norm": gradtx.global_norm, "ema": gradtx.ema(0.9)}), _pass_through),
    Entry("health_monitor", "health_monitor", {}, _pass_through, needs_params=True),
    Entry("health_monitor-inner", "health_monitor", dict(inner=gradtx.scale(-0.3)),
          lambda params, grads, inner: ref.scale(params, grads, -0.3), needs_params=True),
]

NOT_TRANSFORMS |= {"read_measures", "early_stopping"}


# --- failsafe.py apply_if_finite, accumulation.py MultiSteps -----------------------------------
# No NumPy reference (both wrap adam, whose reference is tested above): parity with optax here,
# fault injection and big-batch equivalence in tests/test_failsafe.py, tests/test_accumulation.py.

ENTRIES += [
    Entry("apply_if_finite", "apply_if_finite",
          dict(inner=gradtx.adam(0.1), max_consecutive_errors=2), None, optax.apply_if_finite,
          optax_kwargs=dict(inner=optax.adam(0.1), max_consecutive_errors=2)),
    Entry("MultiSteps", "MultiSteps", dict(opt=gradtx.adam(0.1), every_k_schedule=3), None,
          optax.MultiSteps, optax_kwargs=dict(opt=optax.adam(0.1), every_k_schedule=3)),
    Entry("MultiSteps-schedule-sum", "MultiSteps",
          dict(opt=gradtx.sgd(0.1, momentum=0.9), every_k_schedule=lambda t: 1 + t % 3,
               use_grad_mean=False), None, optax.MultiSteps,
          optax_kwargs=dict(opt=optax.sgd(0.1, momentum=0.9), every_k_schedule=lambda t: 1 + t % 3,
                            use_grad_mean=False)),
]


# --- layouts.py flatten (its inner's reference applies leaf-wise; parity with optax here) -------

ENTRIES += [
    Entry("flatten", "flatten", dict(inner=gradtx.adamw(0.1, weight_decay=0.1)), None,
          optax.flatten, optax_kwargs=dict(inner=optax.adamw(0.1, weight_decay=0.1)),
          needs_params=True),
]


# --- combine.py named_chain, multi_transform (parity, errors and flax nnx in tests/test_combine.py)


def _label_by_top_key(params):
  """'a' for the leaves under params['a'], 'b' for those under params['b']."""
  return jax.tree_util.tree_map_with_path(lambda path, _: path[0].key, params)


ENTRIES += [
    # `multi_transform` is the same function (tests/test_combine.py checks the names).
    Entry("partition", "partition",
          dict(transforms={"a": gradtx.scale(-0.1),
                           "b": gradtx.chain(gradtx.scale_by_adam(), gradtx.scale(-0.01))},
               param_labels=_label_by_top_key), None, optax.transforms.partition,
          optax_kwargs=dict(transforms={"a": optax.scale(-0.1),
                                        "b": optax.chain(optax.scale_by_adam(), optax.scale(-0.01))},
                            param_labels=_label_by_top_key)),
]

NOT_TRANSFORMS |= {"named_chain", "MultiTransformState", "multi_transform"}  # like chain; a state;
# partition's second name


# --- lookahead.py, conditional.py --------------------------------------------------------------
# lookahead's params and updates are LookaheadParams(fast, slow), which the generic tree does
# not fit: tests/test_lookahead.py covers it fully. stateless_with_tree_map is a helper like
# stateless (tests/test_conditional.py). The conditional wrappers wrap adam(0.1), whose NumPy
# reference runs on the selected steps only.


def _every_third_step(step):
  return step % 3 == 0


def _from_step_5(step):
  return step >= 5


def _conditional_reference(mask):
  def reference(params, grads, inner, should_transform_fn, **_):
    del inner  # gradtx.adam(0.1) in every entry below
    return ref.conditionally_apply(params, grads, _functools.partial(ref.adam, learning_rate=0.1),
                                   should_transform_fn, mask=mask)
  return reference


ENTRIES += [
    Entry(f"{name}{suffix}", name, dict(inner=gradtx.adam(0.1), should_transform_fn=cond),
          _conditional_reference(name == "conditionally_mask"), getattr(optax, name),
          optax_kwargs=dict(inner=optax.adam(0.1), should_transform_fn=cond))
    for name, suffix, cond in (("conditionally_transform", "-every_third_step", _every_third_step),
                               ("conditionally_mask", "-from_step_5", _from_step_5))
]

NOT_TRANSFORMS |= {"lookahead", "stateless_with_tree_map"}


# --- precision.py mixed_precision (identity on the float32 test tree: the inner's reference and
# optax counterpart apply; bfloat16 behaviour, the float32 master and nnx in tests/test_precision.py)

ENTRIES += [
    Entry("mixed_precision-adamw", "mixed_precision",
          dict(inner=gradtx.adamw(0.01, weight_decay=0.1)),
          lambda params, grads, inner: ref.adamw(params, grads, learning_rate=0.01,
                                                 weight_decay=0.1),
          optax.adamw, optax_kwargs=dict(learning_rate=0.01, weight_decay=0.1), needs_params=True),
]

NOT_TRANSFORMS |= {"state_bytes", "state_bytes_per_param"}


# --- layouts.py group_leaves (its state is packed, so optax parity of the updates lives in
# tests/test_layouts.py; the generic invariants run here)

ENTRIES += [
    Entry("group_leaves", "group_leaves", dict(inner=gradtx.adamw(0.1, weight_decay=0.1)), None,
          needs_params=True),
]


# --- freezing.py (apply_every and measure_with_ema do not fit the generic tests: apply_every keeps
# its count modulo k and measure_with_ema outputs a measurement; their optax parity, jit, vmap and
# errors are in tests/test_accumulation.py and tests/test_monitoring.py)

_FREEZE_MASK = {"a": (True, False), "b": False}  # freezes the first leaf


def _freeze_reference(params, grads, mask):
  """u = 0 on the frozen leaves, g elsewhere (leaf order of the test tree: a0, a1, b.c, b.d)."""
  del params, mask
  frozen = (True, False, False, False)
  return [[np.zeros_like(g) if f else np.asarray(g, np.float64) for f, g in zip(frozen, gs)]
          for gs in grads]


ENTRIES += [
    Entry("freeze", "freeze", dict(mask=_FREEZE_MASK), _freeze_reference,
          optax.transforms.freeze),
    Entry("selective_transform", "selective_transform",
          dict(optimizer=gradtx.chain(gradtx.scale_by_adam(), gradtx.scale(-0.01)),
               freeze_mask=_FREEZE_MASK), None, optax.transforms.selective_transform,
          optax_kwargs=dict(optimizer=optax.chain(optax.scale_by_adam(), optax.scale(-0.01)),
                            freeze_mask=_FREEZE_MASK)),
]

NOT_TRANSFORMS |= {"apply_every", "measure_with_ema", "periodic_update",
                   "with_extra_args_support"}


# --- unitwise.py, constraints.py, failsafe.py (the per-example and unit-wise helpers, skip
# functions and scale_gradient are functions, tested in their own files)

ENTRIES += [
    Entry("adaptive_grad_clip", "adaptive_grad_clip", dict(clipping=0.1), ref.adaptive_grad_clip,
          optax.adaptive_grad_clip, needs_params=True, sweep=("clipping", (0.01, 0.1, 1.0))),
    Entry("keep_params_nonnegative", "keep_params_nonnegative", dict(),
          ref.keep_params_nonnegative, optax.keep_params_nonnegative, needs_params=True),
    Entry("zero_nans", "zero_nans", dict(), ref.zero_nans, optax.zero_nans),
]

NOT_TRANSFORMS |= {"scale_gradient", "skip_large_updates", "skip_not_finite",
                   "per_example_global_norm_clip", "per_example_layer_norm_clip", "unitwise_clip",
                   "unitwise_norm"}


# --- layer-wise and factored optimizers (issue 14, slice "layerwise"): trust_ratio.py,
# normalization.py, sm3.py, factored.py and their aliases. optax's SM3 fails on a scalar leaf
# (IndexError), which the generic tree has, so the SM3 entries check the NumPy reference only; their
# optax parity (without the scalar) is in tests/test_zoo_layerwise.py.

ENTRIES += [
    Entry("scale_by_trust_ratio", "scale_by_trust_ratio", dict(trust_coefficient=0.5, eps=1e-3),
          ref.scale_by_trust_ratio, optax.scale_by_trust_ratio, needs_params=True,
          sweep=("trust_coefficient", (0.1, 0.5, 1.0))),
    Entry("scale_by_param_block_norm", "scale_by_param_block_norm", dict(),
          ref.scale_by_param_block_norm, optax.scale_by_param_block_norm, needs_params=True,
          sweep=("min_scale", (1e-3, 0.5, 2.0))),
    Entry("scale_by_param_block_rms", "scale_by_param_block_rms", dict(),
          ref.scale_by_param_block_rms, optax.scale_by_param_block_rms, needs_params=True,
          sweep=("min_scale", (1e-3, 0.5, 2.0))),
    Entry("normalize_by_update_norm", "normalize_by_update_norm", dict(scale_factor=-0.5),
          ref.normalize_by_update_norm, optax.normalize_by_update_norm,
          sweep=("scale_factor", (-1.0, 0.5, 2.0))),
    Entry("centralize", "centralize", dict(), ref.centralize, optax.centralize),
    Entry("scale_by_sm3", "scale_by_sm3", dict(b1=0.5, b2=0.9), ref.scale_by_sm3,
          sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("sm3", "sm3", dict(learning_rate=0.1), ref.sm3, sweep=("learning_rate", (0.01, 0.1))),
    Entry("scale_by_factored_rms", "scale_by_factored_rms",
          dict(min_dim_size_to_factor=2, epsilon=1e-6), ref.scale_by_factored_rms,
          optax.scale_by_factored_rms, needs_params=True, rtol=1e-4,
          sweep=("decay_rate", (0.5, 0.8))),
    Entry("adafactor", "adafactor",
          dict(learning_rate=0.1, min_dim_size_to_factor=2, momentum=0.9, weight_decay_rate=0.01),
          ref.adafactor, optax.adafactor, needs_params=True, rtol=1e-4,
          sweep=("learning_rate", (0.01, 0.1))),
    Entry("lamb", "lamb", dict(learning_rate=0.01, weight_decay=0.1), ref.lamb, optax.lamb,
          needs_params=True, sweep=("learning_rate", (0.001, 0.01))),
    Entry("lars", "lars", dict(learning_rate=0.1, weight_decay=0.01, trust_coefficient=0.1),
          ref.lars, optax.lars, needs_params=True, sweep=("learning_rate", (0.01, 0.1))),
    Entry("fromage", "fromage", dict(learning_rate=0.1), ref.fromage, optax.fromage,
          needs_params=True, sweep=("learning_rate", (0.01, 0.1))),
]


# --- issue 14 zoo, slice cocob: DoG (top level), contrib DoG/DoWG, COCOB, MoMo, MoMo-Adam ---------

from optax.contrib import _dog as _optax_dog  # noqa: E402  (optax keeps scale_by_dog private)


def _optax_distance_over_gradients(**kwargs):
  """optax's scale_by_distance_over_gradients with each update reshaped to its gradient's shape
  (optax returns shape (1,) for a scalar leaf; gradtx keeps the leaf's shape); values optax's."""
  tx = optax.scale_by_distance_over_gradients(**kwargs)

  def update(updates, state, params=None, **extra_args):
    del extra_args
    new, state = tx.update(updates, state, params)
    return jax.tree.map(lambda u, g: u.reshape(jnp.shape(g)), new, updates), state

  return optax.GradientTransformation(tx.init, update)


# A decreasing loss for MoMo's `value=` (the generic runs have 20 steps).
_MOMO_VALUES = tuple(3.0 / (1.0 + 0.25 * t) for t in range(20))


def _momo_kwargs(t):
  return dict(value=jnp.asarray(_MOMO_VALUES[t % len(_MOMO_VALUES)], jnp.float32))


_MOMO_ADAPT = dict(learning_rate=0.3, weight_decay=0.01, lower_bound=0.5, adapt_lower_bound=True)
# b2=0.9 for MoMo-Adam here: with optax's default 0.999, XLA's fused multiply-adds under jit move
# exp_avg_sq by an ulp, which the division by 1 - b2^t (~1e-3) amplifies to ~1e-5 relative between
# eager and jit (in optax as in gradtx). The default is checked bit-identical to optax under jit
# in tests/test_zoo_cocob.py.
_MOMO_ADAM = dict(learning_rate=0.05, b2=0.9)
_MOMO_ADAM_ADAPT = dict(learning_rate=0.05, b2=0.9, weight_decay=0.01, lower_bound=0.5,
                        adapt_lower_bound=True)

ENTRIES += [
    Entry("scale_by_distance_over_gradients", "scale_by_distance_over_gradients",
          dict(reps_rel=1e-3, global_scale=-1.0), ref.scale_by_distance_over_gradients,
          _optax_distance_over_gradients, needs_params=True,
          sweep=("reps_rel", (1e-4, 1e-3, 1e-2))),
    Entry("contrib.scale_by_dog", "contrib.scale_by_dog", dict(init_step=("distance", 0.1)),
          ref.scale_by_dog, _optax_dog.scale_by_dog, needs_params=True,
          sweep=("eps", (1e-8, 1e-2, 1.0))),
    Entry("contrib.dog", "contrib.dog", dict(learning_rate=0.5, init_step=("heuristic", 1e-3)),
          ref.dog, optax.contrib.dog, needs_params=True,
          sweep=("learning_rate", (0.1, 0.5, 1.0))),
    Entry("contrib.dog-lr-wd", "contrib.dog",
          dict(init_step=("learning_rate", 0.05), weight_decay=0.01), ref.dog,
          optax.contrib.dog, needs_params=True),
    Entry("contrib.scale_by_dowg", "contrib.scale_by_dowg", dict(init_estim_sq_dist=0.01),
          ref.scale_by_dowg, _optax_dog.scale_by_dowg, needs_params=True,
          sweep=("eps", (1e-4, 1e-2, 1.0))),
    Entry("contrib.dowg", "contrib.dowg", dict(learning_rate=0.5), ref.dowg, optax.contrib.dowg,
          needs_params=True, sweep=("learning_rate", (0.1, 0.5, 1.0))),
    Entry("contrib.dowg-wd", "contrib.dowg", dict(init_estim_sq_dist=0.1, weight_decay=0.01),
          ref.dowg, optax.contrib.dowg, needs_params=True),
    Entry("contrib.scale_by_cocob", "contrib.scale_by_cocob", dict(alpha=100.0),
          ref.scale_by_cocob, optax.contrib.scale_by_cocob, needs_params=True,
          sweep=("alpha", (10.0, 50.0, 100.0))),
    Entry("contrib.cocob", "contrib.cocob", dict(learning_rate=0.5, weight_decay=0.01),
          ref.cocob, optax.contrib.cocob, needs_params=True,
          sweep=("learning_rate", (0.1, 0.5, 1.0))),
    Entry("contrib.momo", "contrib.momo", dict(learning_rate=0.5),
          _functools.partial(ref.momo, values=_MOMO_VALUES), optax.contrib.momo,
          needs_params=True, sweep=("learning_rate", (0.1, 0.5, 1.0)),
          update_kwargs=_momo_kwargs),
    Entry("contrib.momo-adapt", "contrib.momo", _MOMO_ADAPT,
          _functools.partial(ref.momo, values=_MOMO_VALUES), optax.contrib.momo,
          needs_params=True, update_kwargs=_momo_kwargs),
    Entry("contrib.momo_adam", "contrib.momo_adam", _MOMO_ADAM,
          _functools.partial(ref.momo_adam, values=_MOMO_VALUES), optax.contrib.momo_adam,
          needs_params=True, sweep=("learning_rate", (0.01, 0.05, 0.1)),
          update_kwargs=_momo_kwargs),
    Entry("contrib.momo_adam-adapt", "contrib.momo_adam", _MOMO_ADAM_ADAPT,
          _functools.partial(ref.momo_adam, values=_MOMO_VALUES), optax.contrib.momo_adam,
          needs_params=True, update_kwargs=_momo_kwargs),
]


# --- sign slice (issue 14): lion, sign_sgd, signum, rprop, optimistic, polyak, asgd, block
# coordinate descent ----------------------------------------------------------------------------

import functools as _ft  # noqa: E402  (appended block)

_POLYAK_VALUES = tuple(3.0 / (1.0 + i) - 0.5 for i in range(40))  # falls below f_min=0: sps+ clips


def _polyak_kwargs(i):
  return dict(value=jnp.asarray(_POLYAK_VALUES[i], jnp.float32))


_BCD_LABELS = {"a": ("x", "y"), "b": {"c": "x", "d": "y"}}  # sorted blocks: x (leaves 0, 2), y


def _bcd_reference(params, grads, tx, param_labels, order="cyclic", steps_per_block=1, seed=0):
  del tx, param_labels, order, seed
  return ref.block_coordinate_descent_sgd_momentum(params, grads, (0, 1, 0, 1), 2, 0.1, 0.9,
                                                   steps_per_block)


ENTRIES += [
    Entry("scale_by_lion", "scale_by_lion", dict(), ref.scale_by_lion, optax.scale_by_lion,
          sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("scale_by_lion-smooth", "scale_by_lion", dict(b2=0.9, mode="smooth", smooth_beta=2.0),
          ref.scale_by_lion, optax.scale_by_lion, sweep=("b2", (0.5, 0.9, 0.99))),
    Entry("scale_by_lion-refined", "scale_by_lion", dict(mode="refined"), ref.scale_by_lion,
          optax.scale_by_lion),
    Entry("lion", "lion", dict(learning_rate=0.01, weight_decay=0.1), ref.lion, optax.lion,
          needs_params=True, sweep=("learning_rate", (1e-3, 1e-2, 1e-1))),
    Entry("sign_sgd", "sign_sgd", dict(learning_rate=0.1), ref.sign_sgd, optax.sign_sgd,
          sweep=("learning_rate", (0.01, 0.1, 1.0))),
    Entry("signum", "signum", dict(learning_rate=0.1, beta=0.8), ref.signum, optax.signum,
          sweep=("beta", (0.0, 0.5, 0.9))),
    # optax's scale_by_rprop returns the previous step's update (optax#1725): no optax parity
    # here; tests/test_zoo_sign.py compares with optax shifted by one step, states bit for bit.
    Entry("scale_by_rprop", "scale_by_rprop", dict(learning_rate=0.1), ref.scale_by_rprop,
          sweep=("learning_rate", (0.01, 0.1, 1.0))),
    Entry("scale_by_rprop-clipped", "scale_by_rprop",
          dict(learning_rate=0.1, eta_minus=0.3, eta_plus=2.0, min_step_size=0.05,
               max_step_size=0.3), ref.scale_by_rprop),
    Entry("rprop", "rprop", dict(learning_rate=0.05), ref.rprop,
          sweep=("eta_plus", (1.0, 1.2, 1.5))),
    Entry("scale_by_optimistic_gradient", "scale_by_optimistic_gradient",
          dict(alpha=0.5, beta=2.0), ref.scale_by_optimistic_gradient,
          optax.scale_by_optimistic_gradient, sweep=("beta", (0.0, 1.0, 2.0))),
    Entry("optimistic_gradient_descent", "optimistic_gradient_descent",
          dict(learning_rate=0.1), ref.optimistic_gradient_descent,
          optax.optimistic_gradient_descent, sweep=("learning_rate", (0.01, 0.1, 1.0))),
    Entry("optimistic_adam", "optimistic_adam", dict(learning_rate=0.01, optimism=0.02), None,
          optax.optimistic_adam, sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("optimistic_adam_v2", "optimistic_adam_v2", dict(learning_rate=0.01, beta=0.5), None,
          optax.optimistic_adam_v2, sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("scale_by_polyak", "scale_by_polyak", dict(f_min=0.1, max_learning_rate=0.5),
          _ft.partial(ref.scale_by_polyak, values=_POLYAK_VALUES), optax.scale_by_polyak,
          update_kwargs=_polyak_kwargs, sweep=("max_learning_rate", (0.01, 0.1, 1.0))),
    Entry("polyak_sgd", "polyak_sgd", dict(scaling=0.5, eps=0.1),
          _ft.partial(ref.polyak_sgd, values=_POLYAK_VALUES), optax.polyak_sgd,
          update_kwargs=_polyak_kwargs, sweep=("scaling", (0.1, 0.5, 1.0))),
    Entry("polyak_sgd-sps+", "polyak_sgd", dict(variant="sps+", f_min=0.2),
          _ft.partial(ref.polyak_sgd, values=_POLYAK_VALUES), optax.polyak_sgd,
          update_kwargs=_polyak_kwargs),
    Entry("scale_by_asgd", "scale_by_asgd", dict(learning_rate=0.1, lambd=0.5),
          ref.scale_by_asgd, needs_params=True, sweep=("learning_rate", (0.01, 0.1, 1.0))),
    Entry("asgd_averaging", "asgd_averaging", dict(t0=3.0), ref.pass_through, needs_params=True,
          sweep=("t0", (0.0, 3.0, 10.0))),
    Entry("asgd", "asgd", dict(learning_rate=0.05, lambd=0.1, t0=2.0, weight_decay=0.2),
          ref.asgd, needs_params=True, sweep=("learning_rate", (0.01, 0.05, 0.1))),
    Entry("block_coordinate_descent", "block_coordinate_descent",
          dict(tx=gradtx.sgd(0.1, momentum=0.9), param_labels=_BCD_LABELS), _bcd_reference),
    Entry("block_coordinate_descent-3", "block_coordinate_descent",
          dict(tx=gradtx.sgd(0.1, momentum=0.9), param_labels=lambda p: _BCD_LABELS,
               steps_per_block=3), _bcd_reference),
]

NOT_TRANSFORMS |= {"asgd_averaged_params"}


# --- contrib: madgrad, acprop, ademamix, simplified_ademamix, adopt (tests/test_zoo_madgrad.py
# has the 20-step bit-identical optax parity, masks, dtypes and errors)

ENTRIES += [
    Entry("contrib.scale_by_madgrad", "contrib.scale_by_madgrad", dict(learning_rate=0.01),
          ref.scale_by_madgrad, optax.contrib.scale_by_madgrad, needs_params=True,
          sweep=("learning_rate", (0.001, 0.01, 0.1)), atol=1e-5),
    Entry("contrib.madgrad", "contrib.madgrad",
          dict(learning_rate=0.01, momentum=0.5, weight_decay=0.1), ref.madgrad,
          optax.contrib.madgrad, needs_params=True, sweep=("momentum", (0.0, 0.5, 0.9)),
          atol=1e-5),
    Entry("contrib.scale_by_acprop", "contrib.scale_by_acprop", dict(), ref.scale_by_acprop,
          optax.contrib.scale_by_acprop, sweep=("b2", (0.9, 0.99, 0.999))),
    Entry("contrib.acprop", "contrib.acprop", dict(learning_rate=0.01, weight_decay=0.1),
          ref.acprop, optax.contrib.acprop, needs_params=True,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("contrib.scale_by_ademamix", "contrib.scale_by_ademamix",
          dict(b3=lambda t: 0.99 - 0.1 * 0.5**t, alpha=lambda t: 5.0 * jnp.minimum(t / 10, 1.0)),
          ref.scale_by_ademamix, optax.contrib.scale_by_ademamix, sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("contrib.ademamix", "contrib.ademamix", dict(learning_rate=0.01, weight_decay=0.1),
          ref.ademamix, optax.contrib.ademamix, needs_params=True,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("contrib.scale_by_simplified_ademamix", "contrib.scale_by_simplified_ademamix",
          dict(alpha=2.0), ref.scale_by_simplified_ademamix,
          optax.contrib.scale_by_simplified_ademamix, sweep=("alpha", (0.0, 1.0, 5.0))),
    Entry("contrib.simplified_ademamix", "contrib.simplified_ademamix",
          dict(learning_rate=0.01, weight_decay=0.1), ref.simplified_ademamix,
          optax.contrib.simplified_ademamix, needs_params=True,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    # rtol 1e-4 against NumPy: g / sqrt(v_{t-1}) with v_0 = g_0^2 amplifies float32 rounding
    # when g_0 is small (the reference uses optax's float32 b1, b2; optax parity is 1e-6).
    Entry("contrib.scale_by_adopt", "contrib.scale_by_adopt", dict(), ref.scale_by_adopt,
          optax.contrib.scale_by_adopt, sweep=("b1", (0.0, 0.5, 0.9)), rtol=1e-4),
    Entry("contrib.scale_by_adopt-nesterov", "contrib.scale_by_adopt",
          dict(nesterov=True, use_clipping=False), ref.scale_by_adopt,
          optax.contrib.scale_by_adopt, rtol=1e-4),
    Entry("contrib.adopt", "contrib.adopt", dict(learning_rate=0.01), ref.adopt,
          optax.contrib.adopt, sweep=("learning_rate", (0.001, 0.01, 0.1)), rtol=1e-4),
]


# --- belief.py, yogi.py, radam.py, adan.py, novograd.py and optimizers/adaptive.py (issue 14)

ENTRIES += [
    Entry("scale_by_belief", "scale_by_belief", dict(b1=0.9, b2=0.999), ref.scale_by_belief,
          optax.scale_by_belief, sweep=("b2", (0.9, 0.99, 0.999))),
    Entry("scale_by_belief-nesterov", "scale_by_belief", dict(b1=0.8, b2=0.99, eps=1e-8,
          nesterov=True), ref.scale_by_belief, optax.scale_by_belief),
    Entry("scale_by_yogi", "scale_by_yogi", dict(b1=0.9, b2=0.99, eps=1e-3),
          ref.scale_by_yogi, optax.scale_by_yogi, sweep=("eps", (1e-4, 1e-3, 1e-2))),
    Entry("scale_by_radam", "scale_by_radam", dict(b2=0.9), ref.scale_by_radam,
          optax.scale_by_radam, sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("scale_by_radam-nesterov", "scale_by_radam", dict(b2=0.8, threshold=4.5,
          nesterov=True), ref.scale_by_radam, optax.scale_by_radam),
    Entry("scale_by_radam-torch", "scale_by_radam", dict(b2=0.8, eps=1e-3, torch_form=True),
          ref.scale_by_radam, sweep=("eps", (1e-8, 1e-3, 1e-1))),
    Entry("scale_by_adan", "scale_by_adan", dict(eps_root=1e-8), ref.scale_by_adan,
          optax.scale_by_adan, sweep=("b2", (0.5, 0.92, 0.99))),
    Entry("scale_by_novograd", "scale_by_novograd", dict(b2=0.5, weight_decay=0.1),
          ref.scale_by_novograd, optax.scale_by_novograd, needs_params=True,
          sweep=("b1", (0.0, 0.5, 0.9))),
    Entry("scale_by_novograd-nowd", "scale_by_novograd", dict(), ref.scale_by_novograd,
          optax.scale_by_novograd, needs_params=True),
    Entry("adabelief", "adabelief", dict(learning_rate=0.01), ref.adabelief, optax.adabelief,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("yogi", "yogi", dict(learning_rate=0.01), ref.yogi, optax.yogi,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("radam", "radam", dict(learning_rate=0.01, b2=0.9), ref.radam, optax.radam,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("radam-l2", "radam", dict(learning_rate=0.01, b2=0.9, weight_decay=0.1, mask=_FULL_MASK),
          None, needs_params=True),
    Entry("radam-decoupled", "radam", dict(learning_rate=_SCHED, b2=0.9, weight_decay=0.1,
          decoupled_weight_decay=True), ref.radam, needs_params=True,
          sweep=("weight_decay", (0.0, 0.1, 0.5))),
    Entry("adan", "adan", dict(learning_rate=0.01, weight_decay=0.1), ref.adan, optax.adan,
          needs_params=True, sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("novograd", "novograd", dict(learning_rate=0.01, weight_decay=0.1), ref.novograd,
          optax.novograd, needs_params=True, sweep=("learning_rate", (0.001, 0.01, 0.1))),
]


# --- contrib: schedule_free.py, prodigy.py, dadapt.py, mechanic.py (learning-rate-free) ----------

ENTRIES += [
    Entry("contrib.schedule_free", "contrib.schedule_free",
          dict(base_optimizer=gradtx.sgd(0.1), learning_rate=0.1, b1=0.8), ref.schedule_free,
          optax.contrib.schedule_free,
          optax_kwargs=dict(base_optimizer=optax.sgd(0.1), learning_rate=0.1, b1=0.8),
          needs_params=True, sweep=("b1", (0.5, 0.8, 0.9))),
    Entry("contrib.schedule_free_sgd", "contrib.schedule_free_sgd",
          dict(learning_rate=0.1, warmup_steps=3, weight_decay=0.01), ref.schedule_free,
          optax.contrib.schedule_free_sgd, needs_params=True,
          sweep=("learning_rate", (0.01, 0.1, 0.3))),
    Entry("contrib.schedule_free_adamw", "contrib.schedule_free_adamw",
          dict(learning_rate=0.01, warmup_steps=3, weight_decay=0.1), ref.schedule_free_adamw,
          optax.contrib.schedule_free_adamw, needs_params=True,
          sweep=("learning_rate", (0.001, 0.01, 0.1))),
    Entry("contrib.prodigy", "contrib.prodigy", dict(weight_decay=0.1), ref.prodigy,
          optax.contrib.prodigy, needs_params=True, sweep=("learning_rate", (0.5, 1.0, 2.0))),
    Entry("contrib.prodigy-safeguard", "contrib.prodigy",
          dict(learning_rate=0.5, beta3=0.9, safeguard_warmup=True, estim_lr_coef=2.0),
          ref.prodigy, optax.contrib.prodigy, needs_params=True,
          sweep=("estim_lr_coef", (0.5, 1.0, 2.0))),
    Entry("contrib.dadapt_adamw", "contrib.dadapt_adamw", dict(weight_decay=0.1),
          ref.dadapt_adamw, optax.contrib.dadapt_adamw, needs_params=True,
          sweep=("learning_rate", (0.5, 1.0, 2.0))),
    Entry("contrib.mechanize", "contrib.mechanize", dict(base_optimizer=gradtx.sgd(0.01)),
          _functools.partial(ref.mechanize, base_lr=0.01), optax.contrib.mechanize,
          optax_kwargs=dict(base_optimizer=optax.sgd(0.01)), needs_params=True,
          sweep=("weight_decay", (0.0, 0.01, 0.1))),
]

NOT_TRANSFORMS |= {"schedule_free_eval_params"}


# --- contrib: muon, galore, normalize, split_real_and_imaginary (issue 14, slice "matrix") -----
# The generic tree: a 1-D leaf, a (2, 5) matrix, a scalar and a (4, 1, 3) leaf (two 4x3 matrices
# batched on axis 1 for scale_by_muon). Newton-Schulz in float32 amplifies rounding (its slope
# at 0 is ~3.4 per step), so the muon entries match the float64 reference to 1e-3.
_MUON_SPECS = {"a": (None, gradtx.contrib.MuonDimensionNumbers()),
               "b": {"c": None, "d": gradtx.contrib.MuonDimensionNumbers(0, 2)}}

ENTRIES += [
    Entry("contrib.muon", "contrib.muon", dict(learning_rate=0.1), ref.muon, optax.contrib.muon,
          sweep=("learning_rate", (0.01, 0.1, 0.3)), rtol=1e-3, atol=1e-4),
    Entry("contrib.scale_by_muon", "contrib.scale_by_muon",
          dict(weight_dimension_numbers=_MUON_SPECS), ref.scale_by_muon,
          None,  # optax's scale_by_muon rejects None (non-matrix) leaves; parity in test_zoo_matrix
          sweep=("beta", (0.5, 0.9, 0.95)), rtol=1e-3, atol=1e-4),
    # update_proj_gap > the steps run: one SVD, so the singular vectors' signs (which LAPACK
    # and XLA may choose differently) cancel in P N; refreshes are tested against optax exactly
    # in tests/test_zoo_matrix.py.
    Entry("contrib.galore", "contrib.galore",
          dict(learning_rate=0.1, rank=1, update_proj_gap=100, weight_decay=0.01), ref.galore,
          optax.contrib.galore, sweep=("learning_rate", (0.01, 0.1, 0.3)), needs_params=True,
          rtol=1e-4, atol=1e-5),
    Entry("contrib.scale_by_galore", "contrib.scale_by_galore",
          dict(rank=1, update_proj_gap=100, scale=0.5), ref.scale_by_galore,
          optax.contrib.scale_by_galore, sweep=("scale", (0.25, 0.5, 1.0)), rtol=1e-4,
          atol=1e-5),
    Entry("contrib.normalize", "contrib.normalize", dict(), ref.normalize,
          optax.contrib.normalize),
    Entry("contrib.split_real_and_imaginary", "contrib.split_real_and_imaginary",
          dict(inner=gradtx.scale_by_adam()), ref.scale_by_adam,
          optax.contrib.split_real_and_imaginary,
          optax_kwargs=dict(inner=optax.scale_by_adam())),
]

# Per-example gradients in (batch on axis 0 of every leaf), so not the generic tree: tested in
# tests/test_zoo_matrix.py.
NOT_TRANSFORMS |= {"dpsgd", "differentially_private_aggregate"}


# --- curvature: curvature_monitor (needs value_fn= each step) and optax.contrib's Hutchinson
# estimator (needs obj_fn=); the loss is a `jax.tree_util.Partial`, a pytree, so it passes
# through `jax.jit(tx.update)` without recompiling.
import jax as _jax  # noqa: E402


def _curvature_loss(p):
  """A smooth non-quadratic loss of the registry's params tree (tests/trees.py)."""
  a0, a1 = p["a"]
  return (jnp.sum(jnp.sin(a0) ** 2) + jnp.sum(a1 ** 2) * p["b"]["c"] ** 2
          + 0.1 * jnp.sum(p["b"]["d"] ** 4))


_CURVATURE_LOSS = _jax.tree_util.Partial(_curvature_loss)

ENTRIES += [
    Entry("curvature_monitor", "curvature_monitor", dict(every=3, num_iters=8, num_probes=4),
          ref.curvature_monitor, needs_params=True,
          update_kwargs=lambda t: dict(value_fn=_CURVATURE_LOSS)),
    Entry("contrib.hutchinson_estimator_diag_hessian",
          "contrib.hutchinson_estimator_diag_hessian", dict(), None,
          optax.contrib.hutchinson_estimator_diag_hessian, needs_params=True,
          update_kwargs=lambda t: dict(obj_fn=_CURVATURE_LOSS)),
]


# --- issue 16, curvature-based steps: newton_cg, saddle_free_newton, hessian_free, gauss_newton,
# levenberg_marquardt. They need value_fn= (the curvature loss above) or residual_fn=; the
# registry's random gradients are not that loss's, so no NumPy reference here: the steps are
# checked against dense NumPy solves (tests/reference.py, newton_cg_step, ...) in
# tests/test_newton.py, which also runs the vmap sweeps (jitted: the generic sweep test's eager
# loop over Hessian builds costs ~30 s an entry). Small loop bounds keep the compiles cheap.
def _curvature_residuals(p):
  """Residuals of the registry's params tree (a pytree), for the least-squares methods."""
  a0, a1 = p["a"]
  return {"a": (jnp.sin(a0), a1 * p["b"]["c"]), "d": p["b"]["d"] ** 2 - 0.5}


_CURVATURE_RESIDUALS = _jax.tree_util.Partial(_curvature_residuals)
_VALUE_FN = lambda t: dict(value_fn=_CURVATURE_LOSS)  # noqa: E731
_RESIDUAL_FN = lambda t: dict(residual_fn=_CURVATURE_RESIDUALS)  # noqa: E731

ENTRIES += [
    Entry("scale_by_newton_cg", "scale_by_newton_cg", dict(damping=5.0, max_cg_steps=4), None,
          needs_params=True, update_kwargs=_VALUE_FN),
    Entry("scale_by_saddle_free_newton", "scale_by_saddle_free_newton", dict(krylov_dim=4),
          None, needs_params=True, update_kwargs=_VALUE_FN),
    Entry("scale_by_hessian_free", "scale_by_hessian_free", dict(max_cg_steps=4), None,
          needs_params=True, update_kwargs=_RESIDUAL_FN),
    Entry("scale_by_gauss_newton", "scale_by_gauss_newton", dict(damping=0.1, max_cg_steps=4),
          None, needs_params=True, update_kwargs=_RESIDUAL_FN),
    Entry("scale_by_levenberg_marquardt", "scale_by_levenberg_marquardt",
          dict(max_cg_steps=4), None, needs_params=True, update_kwargs=_RESIDUAL_FN),
]

# The aliases are chains of the primitives above with scale(-1) and the line search; their
# generic runs (eager Hessian builds recompile the CG/Lanczos loops every step) cost ~60 s more,
# so they are tested in tests/test_newton.py (convergence, jit, chain, nnx, bad input).
NOT_TRANSFORMS |= {"newton_cg", "saddle_free_newton", "hessian_free", "gauss_newton",
                   "levenberg_marquardt"}


# --- quasi-Newton and line searches (issue 16, "qn"). The searches and aliases need value_fn=
# (the registry's smooth loss above, a Partial); optax's need value= and grad= too, which the
# wrapper computes at params from value_fn (gradtx computes them itself when they are omitted).
# With the generic random gradients as directions a search may fail; both libraries then take
# the same fallback step. Line-searched entries have no NumPy reference (optax parity here, the
# equations and SciPy comparisons in tests/test_quasi_newton.py).

def _optax_with_loss(factory):
  """optax's line-searched transformation, fed value= and grad= at params from value_fn=."""
  def make(**kwargs):
    tx = factory(**kwargs)

    def update(updates, state, params=None, *, value_fn, **extra_args):
      del extra_args
      value, grad = _jax.value_and_grad(value_fn)(params)
      return tx.update(updates, state, params, value=value, grad=grad, value_fn=value_fn)

    return optax.GradientTransformationExtraArgs(tx.init, update)
  return make


_QN_LOSS = lambda t: dict(value_fn=_CURVATURE_LOSS)  # noqa: E731

ENTRIES += [
    # Random gradients make indefinite pairs (<s, y> of either sign, some near 0) whose weights
    # amplify float32 rounding ~1e3-fold over 20 steps: hence the float64 reference's rtol.
    Entry("scale_by_lbfgs", "scale_by_lbfgs", dict(memory_size=3), ref.scale_by_lbfgs,
          optax.scale_by_lbfgs, needs_params=True, rtol=1e-2, atol=1e-3),
    # No sweeps for the line-searched entries: along these random directions the searches'
    # discrete choices flip on the last-bit differences of batched dot products; vmap sweeps on
    # real problems (true gradients) are in tests/test_quasi_newton.py, as is stochastic L-BFGS's
    # (its eager loop here costs 20 s).
    Entry("lbfgs", "lbfgs", dict(learning_rate=0.5),
          None, _optax_with_loss(optax.lbfgs), needs_params=True, update_kwargs=_QN_LOSS),
    Entry("scale_by_zoom_linesearch", "scale_by_zoom_linesearch",
          dict(max_linesearch_steps=8), None, _optax_with_loss(optax.scale_by_zoom_linesearch),
          needs_params=True, update_kwargs=_QN_LOSS),
    Entry("scale_by_backtracking_linesearch", "scale_by_backtracking_linesearch",
          dict(max_backtracking_steps=8, store_grad=True), None,
          _optax_with_loss(optax.scale_by_backtracking_linesearch), needs_params=True,
          update_kwargs=_QN_LOSS),
    Entry("scale_by_bfgs", "scale_by_bfgs", dict(), ref.scale_by_bfgs, needs_params=True,
          rtol=1e-3, atol=1e-4),
    Entry("bfgs", "bfgs", dict(), None, needs_params=True, update_kwargs=_QN_LOSS),
    Entry("scale_by_nonlinear_cg", "scale_by_nonlinear_cg", dict(method="hestenes_stiefel",
          restart_period=4), ref.scale_by_nonlinear_cg, rtol=1e-4, atol=1e-5),
    Entry("nonlinear_cg", "nonlinear_cg", dict(), None, needs_params=True,
          update_kwargs=_QN_LOSS),
    Entry("scale_by_stochastic_lbfgs", "scale_by_stochastic_lbfgs", dict(memory_size=3), None,
          needs_params=True, update_kwargs=_QN_LOSS),
    Entry("stochastic_lbfgs", "stochastic_lbfgs", dict(), None, needs_params=True,
          update_kwargs=_QN_LOSS),
]

# A helper returning (value, grad), not a transformation (tested in tests/test_quasi_newton.py).
NOT_TRANSFORMS |= {"value_and_grad_from_state"}


# --- issue 17 ("sophia"): contrib.sophia and contrib.sam against optax (sophia needs obj_fn=, the
# registry's curvature loss above), ASAM's ascent direction against its NumPy reference. The
# other new Hessian/SGLD transformations and aliases (scale_by_sophia, scale_by_adahessian,
# adahessian, scale_by_entropy_sgd, entropy_sgd, asam) are covered in tests/test_sophia.py (NumPy
# references, vmap, nnx, linen, Orbax, bad input): the generic eager loops over HVPs and SGLD
# inner loops would cost ~30 s more.
import optax.contrib as _optax_contrib  # noqa: E402

ENTRIES += [
    Entry("contrib.sophia", "contrib.sophia", dict(learning_rate=0.1, update_interval=3), None,
          _optax_contrib.sophia, needs_params=True,
          update_kwargs=lambda t: dict(obj_fn=_CURVATURE_LOSS)),
    Entry("contrib.sam", "contrib.sam",
          dict(optimizer=gradtx.sgd(0.1, momentum=0.9),
               adv_optimizer=gradtx.chain(gradtx.contrib.normalize(), gradtx.sgd(0.05))),
          None, _optax_contrib.sam, needs_params=True,
          optax_kwargs=dict(optimizer=optax.sgd(0.1, momentum=0.9),
                            adv_optimizer=optax.chain(optax.contrib.normalize(),
                                                      optax.sgd(0.05)))),
    Entry("scale_by_asam", "scale_by_asam", dict(eta=0.01), ref.scale_by_asam,
          needs_params=True, sweep=("eta", (0.0, 0.01, 0.1))),
]
NOT_TRANSFORMS |= {"scale_by_sophia", "scale_by_adahessian", "adahessian",
                   "scale_by_entropy_sgd", "entropy_sgd", "asam"}


# --- Shampoo and SOAP (issue 17, "shampoo"). The roots are float32 coupled Newton iterations
# against the float64 eigendecomposition of the reference (rtol 1e-4; an ungrafted run differs by
# ~2e-3, the ridge directions of the rank-deficient factors not normalised away). SOAP's first
# eigenbasis comes from one gradient, G G^T of rank <= 2: a side of 5 has a 3-dimensional null
# space whose basis LAPACK may pick freely, so the SOAP entries keep sides <= 4 (max_precond_dim
# leaves the 5-side unrotated; the (4, 3) matrices of "d" have at most a 1-dimensional one).
# No sweeps here (eager loops of inverse roots cost tens of seconds): the vmapped sweeps, the
# rmsprop / ungrafted variants and the jaxpr checks are in tests/test_shampoo.py.
_SHAMPOO_SPECS = {"a": (None, gradtx.contrib.MuonDimensionNumbers()),
                  "b": {"c": None, "d": gradtx.contrib.MuonDimensionNumbers(0, 2)}}

ENTRIES += [
    Entry("scale_by_shampoo", "scale_by_shampoo",
          dict(block_size=2, preconditioning_compute_steps=3, start_preconditioning_step=2),
          ref.scale_by_shampoo, rtol=1e-4, atol=1e-5),
    Entry("shampoo", "shampoo", dict(learning_rate=0.1, graft="sgd", weight_decay=0.01),
          ref.shampoo, needs_params=True, rtol=1e-3, atol=1e-4),
    Entry("scale_by_soap", "scale_by_soap",
          dict(precondition_frequency=3, max_precond_dim=4,
               weight_dimension_numbers=_SHAMPOO_SPECS),
          ref.scale_by_soap, rtol=1e-3, atol=1e-4),
    Entry("soap", "soap", dict(learning_rate=0.1, precondition_frequency=2, max_precond_dim=4),
          ref.soap, needs_params=True, rtol=1e-3, atol=1e-4),
]

# --- kfac (issue 17): a loss on the registry tree whose 2-D and 3-D leaves are dense weights
# (found in the jaxpr), the vector and scalar diagonal blocks; the dense-Fisher and kfac-jax
# checks are in tests/test_kfac.py.
def _kfac_loss(p):
  a0, a1 = p["a"]
  x = jnp.linspace(-1.0, 1.0, 8 * 2).reshape(8, 2)
  h = jnp.tanh(x @ a1)  # (8, 5)
  z = _jax.lax.dot_general(h[:, :4, None], p["b"]["d"], (((1, 2), (0, 1)), ((), ())))
  return jnp.mean((z - 0.5) ** 2) + 0.1 * jnp.sum(a0 ** 2) * p["b"]["c"] ** 2


_KFAC_LOSS = _jax.tree_util.Partial(_kfac_loss)
# jit_tol: under jit XLA fuses the factor statistics' matmuls (E[a a^T], E[g g^T]) with their
# neighbours and sums in another order, so A and G differ from eager ones by 1 float32 ulp; the
# damped inverses ((A + pi sqrt(lambda) I)^-1, up to ~1/sqrt(0.1) in norm) amplify that to
# ~2.5e-7 of a leaf's largest update, i.e. ~4e-6 absolute on these O(10) updates, and an element
# that cancels to ~0.04 then shows 2e-5 relative. Float32 rounding, not a different algorithm.
ENTRIES += [
    Entry("scale_by_kfac", "scale_by_kfac", dict(damping=0.1, inverse_update_period=3), None,
          needs_params=True, update_kwargs=lambda t: dict(value_fn=_KFAC_LOSS),
          jit_tol=(1e-5, 2e-5)),
    Entry("kfac", "kfac", dict(learning_rate=0.1, damping=0.1), None, needs_params=True,
          update_kwargs=lambda t: dict(value_fn=_KFAC_LOSS), jit_tol=(1e-5, 2e-5)),
]
