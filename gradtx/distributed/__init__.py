"""gradtx.distributed: sharded optimizer state (ZeRO), the sources' parallel SGD algorithms (Ruder's
section 5) and communication compression."""

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
from gradtx.distributed.sharding import (
    state_sharding,
)
from gradtx.distributed.zero import (
    zero,
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
    "state_sharding",
    "top_k",
    "zero",
]
