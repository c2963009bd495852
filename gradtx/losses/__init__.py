"""optax's `losses` namespace: one file per family of losses (classification, regression,
similarity, divergences, ranking, segmentation, ctc); this file only gathers their names.
"""

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

__all__ = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "multiclass_generalized_dice_loss",
    "ntxent",
    "ranking_softmax_loss",
    "squared_error",
    "triplet_margin_loss",
]
