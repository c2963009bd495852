"""gradtx.distributed: sharded optimizer state and the sources' parallel SGD algorithms (filled by the
distributed issue)."""

from gradtx.distributed.sharding import (
    state_sharding,
)
from gradtx.distributed.zero import (
    zero,
)

__all__: list[str] = [
    "state_sharding",
    "zero",
]
