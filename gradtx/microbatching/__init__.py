"""optax's `microbatching` namespace: evaluate a function on a batch one microbatch at a time
(`microbatch`, `micro_vmap`, `micro_grad`) and the ways to combine the results (`Accumulator`,
`AccumulationType`)."""

from gradtx.microbatching.accumulators import (
    AccumulationType,
    Accumulator,
)
from gradtx.microbatching.loop import (
    micro_grad,
    micro_vmap,
    microbatch,
    reshape_batch_axis,
)

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
