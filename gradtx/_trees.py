"""Private pytree helpers that several modules need (defined once here)."""

from __future__ import annotations

from typing import Any


def is_none(x: Any) -> bool:
  """`is_leaf` predicate that keeps `None` leaves (optax's convention: `None` updates pass)."""
  return x is None
