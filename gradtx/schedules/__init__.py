"""optax's `schedules` namespace: schedules of the step count and `inject_hyperparams`.

Each family lives in its own file; this file only gathers their names.
"""

# optax.schedules exports the `Schedule` type too (defined in the contract, gradtx/base.py).
from gradtx.base import (
    Schedule,
)
from gradtx.schedules.batch_size import (
    scale_learning_rate,
)
from gradtx.schedules.cosine import (
    cosine_decay_schedule,
    sgdr_schedule,
    warmup_cosine_decay_schedule,
)
from gradtx.schedules.cyclic import (
    cyclic_schedule,
)
from gradtx.schedules.exponential import (
    exponential_decay,
    warmup_exponential_decay_schedule,
)
from gradtx.schedules.inject import (
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
    inject_hyperparams,
    inject_stateful_hyperparams,
    set_hyperparams,
)
from gradtx.schedules.join import (
    join_schedules,
)
from gradtx.schedules.momentum import (
    momentum_schedule,
)
from gradtx.schedules.onecycle import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
)
from gradtx.schedules.polynomial import (
    constant_schedule,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    warmup_constant_schedule,
)
from gradtx.schedules.restarts import (
    warm_restarts_schedule,
)
from gradtx.schedules.transformer import (
    transformer_schedule,
)

# optax 0.2.8's `inject_hyperparams` returns an `InjectStatefulHyperparamsState`: the older name
# is bound to that class (see gradtx/__init__.py).
InjectHyperparamsState = InjectStatefulHyperparamsState

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "Schedule",
    "StatefulSchedule",
    "WrappedSchedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cyclic_schedule",
    "exponential_decay",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "momentum_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "scale_learning_rate",
    "set_hyperparams",
    "sgdr_schedule",
    "transformer_schedule",
    "warm_restarts_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]
