"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.base import EmptyState
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
from gradtx.contrib.cocob import (
    COCOBState,
    cocob,
    scale_by_cocob,
)
from gradtx.contrib.complex import (
    SplitRealAndImaginaryState,
    split_real_and_imaginary,
)
from gradtx.contrib.dadapt import (
    DAdaptAdamWState,
    dadapt_adamw,
)
from gradtx.contrib.dog import (
    DoGState,
    DoWGState,
    dog,
    dowg,
    scale_by_dog,
    scale_by_dowg,
)
from gradtx.contrib.galore import (
    GaLoreState,
    galore,
    scale_by_galore,
)
from gradtx.contrib.hutchinson import (
    HutchinsonState,
    hutchinson_estimator_diag_hessian,
)
from gradtx.contrib.madgrad import (
    MadgradState,
    madgrad,
    scale_by_madgrad,
)
from gradtx.contrib.mechanic import (
    MechanicState,
    mechanize,
)
from gradtx.contrib.momo import (
    MomoAdamState,
    MomoState,
    momo,
    momo_adam,
)
from gradtx.contrib.muon import (
    MuonDimensionNumbers,
    MuonState,
    muon,
    scale_by_muon,
)
from gradtx.contrib.normalize import normalize
from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.contrib.privacy import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)
from gradtx.contrib.prodigy import (
    ProdigyState,
    prodigy,
)
from gradtx.contrib.sam import (
    SAMState,
    sam,
)
from gradtx.contrib.schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from gradtx.contrib.sophia import (
    SophiaState,
    scale_by_sophia,
    sophia,
)

# optax keeps two identical classes (fields reduction_axis=0, output_axis=1) for Muon's and
# GaLore's per-leaf matrix axes; neither is stored in a state and optax's isinstance checks never
# see gradtx objects, so both names are one class (defined in contrib/muon.py; the code that
# reads it is shared in gradtx/_matrix.py), which also accepts optax's instances.
GaLoreDimensionNumbers = MuonDimensionNumbers
# optax's `NormalizeState` is `EmptyState` itself (normalize keeps no state).
NormalizeState = EmptyState

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DifferentiallyPrivateAggregateState",
    "DoGState",
    "DoWGState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "HutchinsonState",
    "MadgradState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScheduleFreeState",
    "SophiaState",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "cocob",
    "dadapt_adamw",
    "differentially_private_aggregate",
    "dog",
    "dowg",
    "dpsgd",
    "galore",
    "hutchinson_estimator_diag_hessian",
    "madgrad",
    "mechanize",
    "momo",
    "momo_adam",
    "muon",
    "normalize",
    "prodigy",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_galore",
    "scale_by_madgrad",
    "scale_by_muon",
    "scale_by_simplified_ademamix",
    "scale_by_sophia",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "simplified_ademamix",
    "sophia",
    "split_real_and_imaginary",
]
