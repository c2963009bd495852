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
from gradtx.optimizers.adaptive import (
    adabelief,
    adan,
    novograd,
    radam,
    yogi,
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
    "adabelief",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "addsign",
    "amsgrad",
    "nadam",
    "nadamw",
    "noisy_sgd",
    "novograd",
    "powersign",
    "radam",
    "rmsprop",
    "sgd",
    "sgdw",
    "yogi",
]
