"""optax's `transforms` namespace: gradient transformations and the wrappers that combine them.

Each family lives in its own file (`adaptive.py` for the Adam/RMS family, `clipping.py`, `masking.py`,
...); this file only gathers their names.
"""

from gradtx.base import (
    EmptyState,
)
from gradtx.combine import (
    PartitionState,
    chain,
    named_chain,
    partition,
)
from gradtx.transforms.accumulation import (
    MultiSteps,
    MultiStepsState,
)
from gradtx.transforms.adahessian import (
    ScaleByAdaHessianState,
    scale_by_adahessian,
)
from gradtx.transforms.adan import (
    ScaleByAdanState,
    scale_by_adan,
)
from gradtx.transforms.adaptive import (
    ScaleByAdaDeltaState,
    ScaleByAdamState,
    ScaleByAmsgradState,
    ScaleByNadamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    scale_by_adadelta,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_nadam,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gradtx.transforms.asgd import (
    AsgdAveragingState,
    ScaleByAsgdState,
    asgd_averaged_params,
    asgd_averaging,
    scale_by_asgd,
)
from gradtx.transforms.averaging import (
    EmaParamsState,
    PolyakAveragingState,
    SnapshotEnsembleState,
    averaged_params,
    ema_params,
    ensemble_params,
    ensemble_predict,
    polyak_averaging,
    snapshot_ensemble,
)
from gradtx.transforms.belief import (
    ScaleByBeliefState,
    scale_by_belief,
)
from gradtx.transforms.bfgs import (
    ScaleByBFGSState,
    scale_by_bfgs,
)
from gradtx.transforms.clipping import (
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
)
from gradtx.transforms.conditional import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    ConditionFn,
    conditionally_mask,
    conditionally_transform,
)
from gradtx.transforms.constraints import (
    keep_params_nonnegative,
)
from gradtx.transforms.coordinate import (
    BlockCoordinateDescentState,
    block_coordinate_descent,
)
from gradtx.transforms.decay import (
    add_decayed_weights,
    normalized_weight_decay,
    normalized_weight_decay_schedule,
)
from gradtx.transforms.dog import (
    ScaleByDistanceOverGradientsState,
    scale_by_distance_over_gradients,
)
from gradtx.transforms.entropy_sgd import (
    ScaleByEntropySGDState,
    scale_by_entropy_sgd,
)
from gradtx.transforms.factored import (
    FactoredState,
    scale_by_factored_rms,
)
from gradtx.transforms.failsafe import (
    ApplyIfFiniteState,
    ShouldSkipUpdateFunction,
    ZeroNansState,
    apply_if_finite,
    skip_large_updates,
    skip_not_finite,
    zero_nans,
)
from gradtx.transforms.freezing import (
    freeze,
    selective_transform,
)
from gradtx.transforms.kfac import (
    ScaleByKfacState,
    scale_by_kfac,
)
from gradtx.transforms.layouts import (
    flatten,
    group_leaves,
)
from gradtx.transforms.lbfgs import (
    ScaleByLBFGSState,
    ScaleByStochasticLBFGSState,
    scale_by_lbfgs,
    scale_by_stochastic_lbfgs,
)
from gradtx.transforms.least_squares import (
    ScaleByGaussNewtonState,
    ScaleByLevenbergMarquardtState,
    scale_by_gauss_newton,
    scale_by_levenberg_marquardt,
)
from gradtx.transforms.linesearch import (
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_backtracking_linesearch,
    scale_by_zoom_linesearch,
    value_and_grad_from_state,
)
from gradtx.transforms.lion import (
    ScaleByLionState,
    scale_by_lion,
)
from gradtx.transforms.lookahead import (
    LookaheadParams,
    LookaheadState,
    lookahead,
)
from gradtx.transforms.masking import (
    MaskedNode,
    MaskedState,
    masked,
)
from gradtx.transforms.momentum import (
    EmaState,
    TraceState,
    ema,
    trace,
)
from gradtx.transforms.monitoring import (
    EarlyStopping,
    EarlyStoppingState,
    HealthMonitorState,
    MonitorState,
    SnapshotState,
    early_stopping,
    health_monitor,
    measure_with_ema,
    monitor,
    read_measures,
    snapshot,
)
from gradtx.transforms.newton import (
    ScaleByHessianFreeState,
    ScaleByNewtonCGState,
    ScaleBySaddleFreeNewtonState,
    scale_by_hessian_free,
    scale_by_newton_cg,
    scale_by_saddle_free_newton,
)
from gradtx.transforms.noise import (
    AddNoiseState,
    add_noise,
)
from gradtx.transforms.nonlinear_cg import (
    ScaleByNonlinearCGState,
    scale_by_nonlinear_cg,
)
from gradtx.transforms.normalization import (
    centralize,
    normalize_by_update_norm,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
)
from gradtx.transforms.novograd import (
    ScaleByNovogradState,
    scale_by_novograd,
)
from gradtx.transforms.optimistic import (
    scale_by_optimistic_gradient,
)
from gradtx.transforms.per_example import (
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
)
from gradtx.transforms.polyak import (
    scale_by_polyak,
)
from gradtx.transforms.precision import (
    MixedPrecisionState,
    mixed_precision,
    state_bytes,
    state_bytes_per_param,
)
from gradtx.transforms.radam import (
    scale_by_radam,
)
from gradtx.transforms.rprop import (
    ScaleByRpropState,
    scale_by_rprop,
)
from gradtx.transforms.sam import (
    scale_by_asam,
)
from gradtx.transforms.scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from gradtx.transforms.shampoo import (
    ScaleByShampooState,
    scale_by_shampoo,
)
from gradtx.transforms.sign import (
    ScaleByAddsignState,
    ScaleByPowersignState,
    scale_by_addsign,
    scale_by_powersign,
    scale_by_sign,
)
from gradtx.transforms.soap import (
    ScaleBySoapState,
    scale_by_soap,
)
from gradtx.transforms.sm3 import (
    ScaleBySM3State,
    scale_by_sm3,
)
from gradtx.transforms.trust_ratio import (
    scale_by_trust_ratio,
)
from gradtx.transforms.unitwise import (
    adaptive_grad_clip,
    unitwise_clip,
    unitwise_norm,
)
from gradtx.transforms.yogi import (
    scale_by_yogi,
)

# Second names optax binds to EmptyState: keep_params_nonnegative's and scale_by_trust_ratio's
# states.
NonNegativeParamsState = EmptyState
ScaleByTrustRatioState = EmptyState

# The older names of `partition` and its state, the same objects (as `optax.multi_transform is
# optax.transforms.partition`); optax exports them at its top level only, gradtx here too.
multi_transform = partition
MultiTransformState = PartitionState

__all__ = [
    "AddNoiseState",
    "ApplyIfFiniteState",
    "AsgdAveragingState",
    "BlockCoordinateDescentState",
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "EarlyStopping",
    "EarlyStoppingState",
    "EmaParamsState",
    "EmaState",
    "FactoredState",
    "HealthMonitorState",
    "LookaheadParams",
    "LookaheadState",
    "MaskedNode",
    "MaskedState",
    "MixedPrecisionState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "NonNegativeParamsState",
    "PartitionState",
    "PolyakAveragingState",
    "ScaleByAdaDeltaState",
    "ScaleByAdaHessianState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAddsignState",
    "ScaleByAmsgradState",
    "ScaleByAsgdState",
    "ScaleByBFGSState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByBeliefState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByEntropySGDState",
    "ScaleByGaussNewtonState",
    "ScaleByHessianFreeState",
    "ScaleByKfacState",
    "ScaleByLBFGSState",
    "ScaleByLevenbergMarquardtState",
    "ScaleByLionState",
    "ScaleByNadamState",
    "ScaleByNewtonCGState",
    "ScaleByNonlinearCGState",
    "ScaleByNovogradState",
    "ScaleByPowersignState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleBySM3State",
    "ScaleBySaddleFreeNewtonState",
    "ScaleByScheduleState",
    "ScaleByShampooState",
    "ScaleBySoapState",
    "ScaleByStochasticLBFGSState",
    "ScaleByTrustRatioState",
    "ScaleByZoomLinesearchState",
    "ShouldSkipUpdateFunction",
    "SnapshotEnsembleState",
    "SnapshotState",
    "TraceState",
    "ZeroNansState",
    "ZoomLinesearchInfo",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "apply_if_finite",
    "asgd_averaged_params",
    "asgd_averaging",
    "averaged_params",
    "block_coordinate_descent",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_mask",
    "conditionally_transform",
    "early_stopping",
    "ema",
    "ema_params",
    "ensemble_params",
    "ensemble_predict",
    "flatten",
    "freeze",
    "group_leaves",
    "health_monitor",
    "keep_params_nonnegative",
    "lookahead",
    "masked",
    "measure_with_ema",
    "mixed_precision",
    "monitor",
    "multi_transform",
    "named_chain",
    "normalize_by_update_norm",
    "normalized_weight_decay",
    "normalized_weight_decay_schedule",
    "partition",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "polyak_averaging",
    "read_measures",
    "scale",
    "scale_by_adadelta",
    "scale_by_adahessian",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_addsign",
    "scale_by_amsgrad",
    "scale_by_asam",
    "scale_by_asgd",
    "scale_by_backtracking_linesearch",
    "scale_by_belief",
    "scale_by_bfgs",
    "scale_by_distance_over_gradients",
    "scale_by_entropy_sgd",
    "scale_by_factored_rms",
    "scale_by_gauss_newton",
    "scale_by_hessian_free",
    "scale_by_kfac",
    "scale_by_lbfgs",
    "scale_by_learning_rate",
    "scale_by_levenberg_marquardt",
    "scale_by_lion",
    "scale_by_nadam",
    "scale_by_newton_cg",
    "scale_by_nonlinear_cg",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_polyak",
    "scale_by_powersign",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_saddle_free_newton",
    "scale_by_schedule",
    "scale_by_shampoo",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_soap",
    "scale_by_stddev",
    "scale_by_stochastic_lbfgs",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "scale_by_zoom_linesearch",
    "selective_transform",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "snapshot_ensemble",
    "state_bytes",
    "state_bytes_per_param",
    "trace",
    "unitwise_clip",
    "unitwise_norm",
    "value_and_grad_from_state",
    "zero_nans",
]
