"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.base import EmptyState
from gradtx.contrib.complex import (
    SplitRealAndImaginaryState,
    split_real_and_imaginary,
)
from gradtx.contrib.galore import (
    GaLoreState,
    galore,
    scale_by_galore,
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

# optax keeps two identical classes (fields reduction_axis=0, output_axis=1) for Muon's and
# GaLore's per-leaf matrix axes; neither is stored in a state and optax's isinstance checks never
# see gradtx objects, so both names are one class (defined in contrib/muon.py; the code that
# reads it is shared in gradtx/_matrix.py), which also accepts optax's instances.
GaLoreDimensionNumbers = MuonDimensionNumbers
# optax's `NormalizeState` is `EmptyState` itself (normalize keeps no state).
NormalizeState = EmptyState

__all__ = [
    "DifferentiallyPrivateAggregateState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ReduceLROnPlateauState",
    "SplitRealAndImaginaryState",
    "differentially_private_aggregate",
    "dpsgd",
    "galore",
    "muon",
    "normalize",
    "reduce_on_plateau",
    "scale_by_galore",
    "scale_by_muon",
    "split_real_and_imaginary",
]
