"""optax's `assignment` namespace: the Hungarian algorithm for the linear assignment problem."""

from gradtx.assignment.hungarian import (
    base_hungarian_algorithm,
    hungarian_algorithm,
)

__all__ = [
    "base_hungarian_algorithm",
    "hungarian_algorithm",
]
