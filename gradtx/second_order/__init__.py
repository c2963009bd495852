"""optax's `second_order` namespace: Hessian-vector products and Hessian / Fisher diagonals
(computed with `gradtx.curvature`'s operators).

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.second_order.fisher import (
    fisher_diag,
)
from gradtx.second_order.hessian import (
    hessian_diag,
    hvp,
)

__all__ = [
    "fisher_diag",
    "hessian_diag",
    "hvp",
]
