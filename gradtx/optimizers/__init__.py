"""gradtx's optimizers (optax's aliases): each one `chain` of primitives, one file per family.

This file only gathers their names; the top level `gradtx` exports them too, as optax does.
"""

from gradtx.optimizers.adam import (
    adam,
    adamax,
    adamaxw,
    adamw,
    amsgrad,
    nadam,
    nadamw,
)
from gradtx.optimizers.factored import (
    adafactor,
    sm3,
)
from gradtx.optimizers.layerwise import (
    fromage,
    lamb,
    lars,
)
from gradtx.optimizers.rms import (
    adadelta,
    adagrad,
    rmsprop,
)
from gradtx.optimizers.sgd import (
    noisy_sgd,
    sgd,
    sgdw,
)
from gradtx.optimizers.sign import (
    addsign,
    powersign,
)

__all__ = [
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "addsign",
    "amsgrad",
    "fromage",
    "lamb",
    "lars",
    "nadam",
    "nadamw",
    "noisy_sgd",
    "powersign",
    "rmsprop",
    "sgd",
    "sgdw",
    "sm3",
]
