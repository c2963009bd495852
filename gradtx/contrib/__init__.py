"""optax's `contrib` namespace: optimizers and wrappers from recent papers.

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.contrib.dadapt import (
    DAdaptAdamWState,
    dadapt_adamw,
)
from gradtx.contrib.mechanic import (
    MechanicState,
    mechanize,
)
from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.contrib.prodigy import (
    ProdigyState,
    prodigy,
)
from gradtx.contrib.schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)

__all__ = [
    "DAdaptAdamWState",
    "MechanicState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "ScheduleFreeState",
    "dadapt_adamw",
    "mechanize",
    "prodigy",
    "reduce_on_plateau",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]
