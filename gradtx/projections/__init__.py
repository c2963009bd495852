"""optax's `projections` namespace: Euclidean projections of pytrees onto convex sets.

Each family lives in its own file (`boxes.py`, `affine.py`, `balls.py`, `simplex.py`); this file
only gathers their names.
"""

from gradtx.projections.affine import (
    projection_halfspace,
    projection_hyperplane,
    projection_vector,
)
from gradtx.projections.balls import (
    projection_l1_ball,
    projection_l1_sphere,
    projection_l2_ball,
    projection_l2_sphere,
)
from gradtx.projections.boxes import (
    projection_box,
    projection_hypercube,
    projection_linf_ball,
    projection_non_negative,
)
from gradtx.projections.simplex import projection_simplex

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]
