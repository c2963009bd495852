"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.contrib.acprop import (
    acprop,
    scale_by_acprop,
)
from gradtx.contrib.ademamix import (
    ScaleByAdemamixState,
    ScaleBySimplifiedAdEMAMixState,
    ademamix,
    scale_by_ademamix,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from gradtx.contrib.adopt import (
    adopt,
    scale_by_adopt,
)
from gradtx.contrib.madgrad import (
    MadgradState,
    madgrad,
    scale_by_madgrad,
)
from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)

__all__ = [
    "MadgradState",
    "ReduceLROnPlateauState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "acprop",
    "ademamix",
    "adopt",
    "madgrad",
    "reduce_on_plateau",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_madgrad",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]
