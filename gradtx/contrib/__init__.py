"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.contrib.cocob import (
    COCOBState,
    cocob,
    scale_by_cocob,
)
from gradtx.contrib.dog import (
    DoGState,
    DoWGState,
    dog,
    dowg,
    scale_by_dog,
    scale_by_dowg,
)
from gradtx.contrib.momo import (
    MomoAdamState,
    MomoState,
    momo,
    momo_adam,
)
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
    "COCOBState",
    "DoGState",
    "DoWGState",
    "MadgradState",
    "MomoAdamState",
    "MomoState",
    "ReduceLROnPlateauState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "acprop",
    "ademamix",
    "adopt",
    "cocob",
    "dog",
    "dowg",
    "madgrad",
    "momo",
    "momo_adam",
    "reduce_on_plateau",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_madgrad",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]
