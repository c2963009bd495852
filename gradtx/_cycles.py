"""Private arithmetic shared by the schedules and by the transformations that follow their cycles
(`normalized_weight_decay_schedule`, `snapshot_ensemble`): exact integer division of the step
count and the warm-restart cycle containing a step, so every module restarts on the same steps.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks

INT32_MAX = 2**31 - 1


def concrete(x: Any) -> bool:
  return not _checks.is_tracer(x)


def num(x: Any) -> float:
  """The float value of a concrete scalar."""
  return float(np.asarray(x, dtype=np.float64))


def as_float(x: Any) -> jax.Array:
  x = jnp.asarray(x)
  return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def divmod_count(count: Any, divisor: Any) -> tuple[jax.Array, jax.Array]:
  """`(floor(count / divisor), count mod divisor)` in float32, exact for integer counts and
  concrete integer divisors.

  Under jit, XLA turns a division by a constant into a multiplication by its rounded reciprocal,
  so `floor(41 / 41.0)` can come out as 0; integer division avoids that, and the remainder stays
  exact at large counts where `count / divisor - quotient` would cancel.
  """
  count = jnp.asarray(count)
  if (jnp.issubdtype(count.dtype, jnp.integer) and concrete(divisor)
      and num(divisor) == int(num(divisor)) and 0 < num(divisor) <= INT32_MAX):
    d = int(num(divisor))
    return (jnp.floor_divide(count, d).astype(jnp.float32),
            jnp.remainder(count, d).astype(jnp.float32))
  t = as_float(count)
  q = jnp.floor(t / divisor)
  return q, t - q * divisor


def int_power(base: Any, exponent: jax.Array) -> jax.Array:
  """`base ** exponent` for an integer-valued exponent in [0, 2**31), by binary exponentiation.

  Exact when the result is an integer below 2**24 (`jnp.power` may round integer powers).
  """
  e = exponent.astype(jnp.int32)
  power = jnp.asarray(base, jnp.float32)
  result = jnp.ones(jnp.broadcast_shapes(jnp.shape(power), jnp.shape(e)), jnp.float32)

  def square_and_multiply(bit, carry):
    result, power = carry
    return jnp.where(((e >> bit) & 1) == 1, result * power, result), power * power

  return jax.lax.fori_loop(0, 31, square_and_multiply, (result, power))[0]


def cycle_float(t: jax.Array, first_period: Any, period_multiplier: Any):
  """Cycle index i, steps left T_i - T_cur and T_i in float32, for traced or non-integer
  periods."""
  t = t.astype(jnp.float32)
  t0 = jnp.asarray(first_period, jnp.float32)
  m = jnp.asarray(period_multiplier, jnp.float32)
  grow = m > 1
  m_safe = jnp.where(grow, m, 2.0)  # keeps the unused branch finite when m == 1
  i = jnp.where(grow, jnp.floor(jnp.log1p(t * (m_safe - 1) / t0) / jnp.log(m_safe)),
                jnp.floor(t / t0))
  i = jnp.maximum(i, 0.0)
  ratio = jnp.where(grow, m_safe, 1.0)  # T_{i+1} / T_i
  p = int_power(ratio, i)  # m^i

  def start(p, i):  # S_i = T_0 (m^i - 1) / (m - 1), or T_0 i when m == 1
    return t0 * jnp.where(grow, (p - 1) / (m_safe - 1), i)

  # The logarithm may land one cycle off near a restart: compare with the cycle starts.
  up = t >= start(p * ratio, i + 1)
  down = t < start(p, i)
  i = i + up - down
  p = jnp.where(up, p * ratio, jnp.where(down, p / ratio, p))
  return i, start(p * ratio, i + 1) - t, t0 * p


def cycle_table(first_period: int, period_multiplier: int):
  """Exact int32 cycle index, steps left T_i - T_cur and T_i for integer periods, over every
  int32 count."""
  if period_multiplier == 1:
    def cycle_constant(t):
      left = first_period - jnp.remainder(t, first_period)
      return t // first_period, left.astype(jnp.float32), jnp.float32(first_period)

    return cycle_constant
  starts = [0]
  while starts[-1] <= INT32_MAX:
    starts.append(starts[-1] * period_multiplier + first_period)
  lengths = np.asarray([b - a for a, b in zip(starts[:-1], starts[1:])], np.float32)
  starts = np.minimum(np.asarray(starts, np.float64), INT32_MAX).astype(np.int32)
  last = len(lengths) - 1
  slope, log_m = (period_multiplier - 1) / first_period, math.log(period_multiplier)

  def cycle_geometric(t):
    i = jnp.floor(jnp.log1p(t.astype(jnp.float32) * slope) / log_m).astype(jnp.int32)
    i = jnp.clip(i, 0, last)
    s = jnp.asarray(starts)
    i = jnp.clip(i + (t >= s[i + 1]).astype(jnp.int32) - (t < s[i]).astype(jnp.int32), 0, last)
    t_i = jnp.asarray(lengths)[i]
    # steps left in the cycle, exact in int32 unless the cycle ends past the int32 range
    left = jnp.where(i < last, (s[i + 1] - t).astype(jnp.float32),
                     t_i - (t - s[i]).astype(jnp.float32))
    return i, left, t_i

  return cycle_geometric
