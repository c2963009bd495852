"""gradtx.learned: learned optimizers and update-rule search (filled by the learned-optimizers
issue)."""

__all__: list[str] = []
