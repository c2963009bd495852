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
from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)

__all__ = [
    "COCOBState",
    "DoGState",
    "DoWGState",
    "MomoAdamState",
    "MomoState",
    "ReduceLROnPlateauState",
    "cocob",
    "dog",
    "dowg",
    "momo",
    "momo_adam",
    "reduce_on_plateau",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
]
