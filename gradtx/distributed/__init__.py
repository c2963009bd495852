"""gradtx.distributed: sharded optimizer state and the sources' parallel SGD algorithms (filled by the
distributed issue)."""

__all__: list[str] = []
