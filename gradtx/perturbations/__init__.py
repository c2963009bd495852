"""optax's `perturbations` namespace (filled by a later issue: the names are listed as pending in
tests/test_optax_names.py)."""

__all__: list[str] = []
