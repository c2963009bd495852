"""gradtx's optimizers (optax's aliases): each one `chain` of primitives, one file per family.

This file only gathers their names; the top level `gradtx` exports them too, as optax does.
"""

from gradtx.optimizers.adahessian import (
    adahessian,
)
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
from gradtx.optimizers.asgd import (
    asgd,
)
from gradtx.optimizers.entropy_sgd import (
    entropy_sgd,
)
from gradtx.optimizers.factored import (
    adafactor,
    sm3,
)
from gradtx.optimizers.kfac import (
    kfac,
)
from gradtx.optimizers.layerwise import (
    fromage,
    lamb,
    lars,
)
from gradtx.optimizers.newton import (
    gauss_newton,
    hessian_free,
    levenberg_marquardt,
    newton_cg,
    saddle_free_newton,
)
from gradtx.optimizers.optimistic import (
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
)
from gradtx.optimizers.polyak import (
    polyak_sgd,
)
from gradtx.optimizers.quasi_newton import (
    bfgs,
    lbfgs,
    nonlinear_cg,
    stochastic_lbfgs,
)
from gradtx.optimizers.rms import (
    adadelta,
    adagrad,
    rmsprop,
)
from gradtx.optimizers.rprop import (
    rprop,
)
from gradtx.optimizers.sam import (
    asam,
)
from gradtx.optimizers.sgd import (
    noisy_sgd,
    sgd,
    sgdw,
)
from gradtx.optimizers.shampoo import (
    shampoo,
    soap,
)
from gradtx.optimizers.sign import (
    addsign,
    lion,
    powersign,
    sign_sgd,
    signum,
)

__all__ = [
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adahessian",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "addsign",
    "amsgrad",
    "asam",
    "asgd",
    "bfgs",
    "entropy_sgd",
    "fromage",
    "gauss_newton",
    "hessian_free",
    "kfac",
    "lamb",
    "lars",
    "lbfgs",
    "levenberg_marquardt",
    "lion",
    "nadam",
    "nadamw",
    "newton_cg",
    "noisy_sgd",
    "nonlinear_cg",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "powersign",
    "radam",
    "rmsprop",
    "rprop",
    "saddle_free_newton",
    "sgd",
    "sgdw",
    "shampoo",
    "sign_sgd",
    "signum",
    "sm3",
    "soap",
    "stochastic_lbfgs",
    "yogi",
]
