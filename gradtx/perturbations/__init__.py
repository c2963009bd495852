"""optax's `perturbations` namespace: differentiable approximations of functions by random
perturbations, and their noise distributions."""

from gradtx.perturbations.noise import (
    Gumbel,
    Normal,
)
from gradtx.perturbations.perturbed import (
    make_perturbed_fun,
)

__all__ = [
    "Gumbel",
    "Normal",
    "make_perturbed_fun",
]
