"""Test helper: which primitives of a jaxpr run unconditionally (outside every `cond` branch).

Used to show that periodic work (a refresh every k steps) stays under a `cond` when an update
is `vmap`ped over a sweep, instead of becoming a `select_n` that runs both branches every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.extend.core  # noqa: F401  (ClosedJaxpr, Jaxpr)


def _subjaxprs(value: Any):
  if isinstance(value, jax.extend.core.ClosedJaxpr):
    yield value.jaxpr
  elif isinstance(value, jax.extend.core.Jaxpr):
    yield value
  elif isinstance(value, (tuple, list)):
    for v in value:
      yield from _subjaxprs(v)


def primitives_outside_cond(jaxpr: Any) -> list[str]:
  """Names of the primitives that run on every call: all equations, descending into `jit`,
  `custom_*` and loop bodies, but not into the branches of a `cond`."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  names = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "cond":
      names.append("cond")
      continue
    names.append(eqn.primitive.name)
    for value in eqn.params.values():
      for sub in _subjaxprs(value):
        names.extend(primitives_outside_cond(sub))
  return names


def primitives_inside_cond(jaxpr: Any) -> list[str]:
  """Names of the primitives inside the branches of some `cond` (at any depth)."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  names = []
  for eqn in jaxpr.eqns:
    for value in eqn.params.values():
      for sub in _subjaxprs(value):
        if eqn.primitive.name == "cond":
          names.extend(_all_primitives(sub))
        else:
          names.extend(primitives_inside_cond(sub))
  return names


def _all_primitives(jaxpr: Any) -> list[str]:
  names = []
  for eqn in jaxpr.eqns:
    names.append(eqn.primitive.name)
    for value in eqn.params.values():
      for sub in _subjaxprs(value):
        names.extend(_all_primitives(sub))
  return names
