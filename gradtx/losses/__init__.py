"""optax's `losses` namespace (filled by a later issue: the names are listed as pending in
tests/test_optax_names.py)."""

from gradtx.losses.ctc import ctc_loss, ctc_loss_with_forward_probs

__all__: list[str] = [
    "ctc_loss",
    "ctc_loss_with_forward_probs",
]
