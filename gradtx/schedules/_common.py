"""Private helpers shared by the schedule families: concreteness and boundary checks."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from gradtx import _checks, _cycles
from gradtx.base import Schedule

__all__ = [
]


def _require_concrete(fn: str, name: str, value: Any) -> None:
  if _checks.is_tracer(value):
    raise TypeError(
        f"gradtx.{fn}: {name} must be a concrete number, got a traced value; it fixes the "
        "schedule's step boundaries when the schedule is built. Sweep over the value "
        "arguments instead, or build one schedule per value of this argument.")


def _constant(value: Any) -> Schedule:
  def schedule(count):
    return jnp.broadcast_to(_cycles.as_float(value), jnp.shape(count))

  return schedule


def _check_boundaries(fn: str, boundaries_and_scales: Any) -> list[tuple[Any, Any]]:
  """Validates a `{step: scale}` dict and returns its items sorted by step."""
  if boundaries_and_scales is None:
    return []
  if not isinstance(boundaries_and_scales, Mapping):
    raise TypeError(
        f"gradtx.{fn}: boundaries_and_scales must be a dict {{step: scale}} or None, got "
        f"{type(boundaries_and_scales).__name__}.")
  for step, scale in boundaries_and_scales.items():
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
      raise TypeError(
          f"gradtx.{fn}: boundaries_and_scales keys must be step counts, got {step!r}.")
    if not math.isfinite(step) or step < 0:
      raise ValueError(
          f"gradtx.{fn}: boundaries_and_scales keys must be non-negative step counts, got "
          f"{step!r}.")
    _checks.check_scalar(fn, f"boundaries_and_scales[{step!r}]", scale, low=0.0)
  return sorted(boundaries_and_scales.items())


def _polynomial(init_value, end_value, power, transition_steps, transition_begin) -> Schedule:
  if _cycles.concrete(transition_steps) and _cycles.num(transition_steps) == 0:
    return _constant(init_value)
  traced = _checks.is_tracer(transition_steps)

  def schedule(count):
    steps = jnp.where(transition_steps > 0, transition_steps, 1) if traced else transition_steps
    count = jnp.clip(count - transition_begin, 0, steps)
    frac = 1 - count / steps  # optax's order: optax's values eagerly and under jit
    # Exactly 0 from the end on (optax under jit computes fma(-count, 1 / steps, 1), ~1e-8 there,
    # negative for steps = 10, where a power < 1 gives NaN).
    frac = jnp.where(count < steps, frac, 0.0)
    value = (init_value - end_value) * (frac**power) + end_value
    return jnp.where(transition_steps > 0, value, init_value) if traced else value

  return schedule
