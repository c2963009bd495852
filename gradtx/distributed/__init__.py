"""gradtx.distributed: sharded optimizer state and the sources' parallel SGD algorithms (filled by the
distributed issue)."""

from gradtx.distributed.compression import (
    PowerSGDState,
    SignCompressionState,
    TopKState,
    powersgd,
    sign_compression,
    top_k,
)
from gradtx.distributed.delay_tolerant import (
    DelayTolerantAdagradState,
    delay_tolerant_adagrad,
)
from gradtx.distributed.delayed import (
    DelayedState,
    delayed,
)
from gradtx.distributed.diloco import (
    DiLoCoState,
    diloco,
)
from gradtx.distributed.downpour import (
    DownpourState,
    downpour,
)
from gradtx.distributed.easgd import (
    EASGDState,
    easgd,
)
from gradtx.distributed.hogwild import (
    HogwildState,
    hogwild,
)
from gradtx.distributed.local_sgd import (
    LocalSGDState,
    local_sgd,
)
from gradtx.distributed.reduce import (
    all_reduce,
)

__all__: list[str] = [
    "DelayTolerantAdagradState",
    "DelayedState",
    "DiLoCoState",
    "DownpourState",
    "EASGDState",
    "HogwildState",
    "LocalSGDState",
    "PowerSGDState",
    "SignCompressionState",
    "TopKState",
    "all_reduce",
    "delay_tolerant_adagrad",
    "delayed",
    "diloco",
    "downpour",
    "easgd",
    "hogwild",
    "local_sgd",
    "powersgd",
    "sign_compression",
    "top_k",
]
