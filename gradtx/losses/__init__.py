"""optax's `losses` namespace: one file per family of losses (classification, sparsemax,
fenchel_young, regression, similarity, divergences, ranking, segmentation, ctc); this file only
gathers their names.
"""

from gradtx.losses.classification import (
    hinge_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    perceptron_loss,
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from gradtx.losses.ctc import (
    ctc_loss,
    ctc_loss_with_forward_probs,
)
from gradtx.losses.divergences import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
)
from gradtx.losses.fenchel_young import (
    make_fenchel_young_loss,
)
from gradtx.losses.ranking import (
    ranking_softmax_loss,
)
from gradtx.losses.regression import (
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from gradtx.losses.segmentation import (
    binary_dice_loss,
    dice_loss,
    multiclass_generalized_dice_loss,
)
from gradtx.losses.similarity import (
    cosine_distance,
    cosine_similarity,
    ntxent,
    triplet_margin_loss,
)
from gradtx.losses.sparsemax import (
    multiclass_sparsemax_loss,
    sparsemax_loss,
)

__all__ = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "triplet_margin_loss",
]
