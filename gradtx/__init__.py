"""gradtx: composable gradient transformations for JAX, with optax's names and numerics.

This file only gathers names. The contract sits beside it (`base.py`, `combine.py`, `update.py`,
`numerics.py`); every other family lives in the subpackage named after optax's namespace
(`transforms/`, `schedules/`, `tree/`, `contrib/`, ...) or after gradtx's own (`optimizers/`,
`tuning/`, `curvature/`, `distributed/`, `learned/`).
"""

from gradtx.base import (
    ArrayTree,
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    MaskOrFn,
    Numeric,
    OptState,
    Params,
    ScalarOrSchedule,
    Schedule,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
    identity,
    init_empty_state,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
    with_extra_args_support,
)
from gradtx.combine import (
    PartitionState,
    chain,
    named_chain,
    partition,
)
from gradtx.losses.classification import (
    hinge_loss,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from gradtx.numerics import (
    abs_sq,
    global_norm,
    nnls,
    safe_increment,
    safe_norm,
    safe_root_mean_squares,
)

# optax keeps its older names for `partition` and its state: the same objects
# (`optax.multi_transform is optax.partition`, `optax.MultiTransformState is optax.PartitionState`).
multi_transform = partition
MultiTransformState = PartitionState
from gradtx.contrib.plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.losses.ctc import (
    ctc_loss,
    ctc_loss_with_forward_probs,
)
from gradtx.losses.divergences import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
)
from gradtx.losses.regression import (
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from gradtx.losses.similarity import (
    cosine_distance,
    cosine_similarity,
    ntxent,
)

# optax's top-level `microbatch` is `optax.microbatching.microbatch` (one object).
from gradtx.microbatching.loop import (
    microbatch,
)
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

# optax has `multi_normal` at its top level only (not in `optax.perturbations`).
from gradtx.perturbations.noise import (
    multi_normal,
)
from gradtx.schedules.batch_size import (
    scale_learning_rate,
)
from gradtx.schedules.cosine import (
    cosine_decay_schedule,
    sgdr_schedule,
    warmup_cosine_decay_schedule,
)
from gradtx.schedules.cyclic import (
    cyclic_schedule,
)
from gradtx.schedules.exponential import (
    exponential_decay,
    warmup_exponential_decay_schedule,
)
from gradtx.schedules.inject import (
    InjectStatefulHyperparamsState,
    WrappedSchedule,
    inject_hyperparams,
    inject_stateful_hyperparams,
    set_hyperparams,
)
from gradtx.schedules.join import (
    join_schedules,
)
from gradtx.schedules.momentum import (
    momentum_schedule,
)
from gradtx.schedules.onecycle import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
)
from gradtx.schedules.polynomial import (
    constant_schedule,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    warmup_constant_schedule,
)
from gradtx.schedules.restarts import (
    warm_restarts_schedule,
)
from gradtx.schedules.transformer import (
    transformer_schedule,
)
from gradtx.transforms.accumulation import (
    ApplyEvery,
    MultiSteps,
    MultiStepsState,
    apply_every,
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
    scale_gradient,
)
from gradtx.transforms.conditional import (
    ConditionallyMaskState,
    ConditionallyTransformState,
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
    WeightDecaySchedule,
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
    TraceWithCountState,
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
    ScaleByOptimisticGradientState,
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
)
from gradtx.transforms.yogi import (
    scale_by_yogi,
)

# optax's top-level `tree_map_params` is the same function as `optax.tree.map_params`.
from gradtx.tree.access import (
    map_params as tree_map_params,
)
from gradtx.tree.casting import (
    cast,
    cast_like,
    full_like,
    zeros_like,
)
from gradtx.tree.moments import (
    bias_correction,
    moment_like,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from gradtx.tuning.plots import (
    plot_lr_range_test,
    plot_schedule,
)
from gradtx.tuning.range_test import (
    LRRangeTestResult,
    lr_range_test,
)
from gradtx.tuning.sweep import (
    grid_sweep,
)
from gradtx.update import (
    apply_updates,
    incremental_update,
    periodic_update,
)

# Second names optax binds to one object: its stateless transformations' states are EmptyState,
# and safe_int32_increment is safe_increment (since optax 0.2.4 it saturates any counter dtype).
AdaptiveGradClipState = EmptyState
AddDecayedWeightsState = EmptyState  # a constant weight decay (a schedule: WeightDecaySchedule)
ClipByGlobalNormState = EmptyState
ClipState = EmptyState
NonNegativeParamsState = EmptyState
ScaleState = EmptyState
ScaleByTrustRatioState = EmptyState  # scale_by_trust_ratio keeps no state
safe_int32_increment = safe_increment
# optax 0.2.8's `inject_hyperparams` returns an `InjectStatefulHyperparamsState`; gradtx binds the
# older name to that class, so `isinstance(state, gradtx.InjectHyperparamsState)` finds it (optax
# keeps a deprecated three-field class under this name that nothing returns any more).
InjectHyperparamsState = InjectStatefulHyperparamsState

# The namespaces, so that `gradtx.losses.l2_loss` works after `import gradtx` (as in optax).
from gradtx import (  # noqa: E402
    assignment,
    contrib,
    curvature,
    distributed,
    learned,
    losses,
    microbatching,
    optimizers,
    perturbations,
    projections,
    schedules,
    second_order,
    transforms,
    tree,
    tree_utils,
    tuning,
)

# gradtx.curvature's monitor, and optax's top-level power_iteration and matrix_inverse_pth_root
# (all defined in curvature/).
from gradtx.curvature.monitor import (  # noqa: E402
    CurvatureMonitorState,
    curvature_monitor,
)
from gradtx.curvature.power import (  # noqa: E402
    matrix_inverse_pth_root,
    power_iteration,
)

__all__ = [
    "AdaptiveGradClipState",
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ApplyEvery",
    "ApplyIfFiniteState",
    "ArrayTree",
    "AsgdAveragingState",
    "BlockCoordinateDescentState",
    "ClipByGlobalNormState",
    "ClipState",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "CurvatureMonitorState",
    "EarlyStopping",
    "EarlyStoppingState",
    "EmaParamsState",
    "EmaState",
    "EmptyState",
    "FactoredState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "HealthMonitorState",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LRRangeTestResult",
    "LookaheadParams",
    "LookaheadState",
    "MaskOrFn",
    "MaskedNode",
    "MaskedState",
    "MixedPrecisionState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "NonNegativeParamsState",
    "Numeric",
    "OptState",
    "Params",
    "PartitionState",
    "PolyakAveragingState",
    "ReduceLROnPlateauState",
    "ScalarOrSchedule",
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
    "ScaleByOptimisticGradientState",
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
    "ScaleState",
    "Schedule",
    "ShouldSkipUpdateFunction",
    "SnapshotEnsembleState",
    "SnapshotState",
    "TraceState",
    "TraceWithCountState",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
    "WeightDecaySchedule",
    "WrappedSchedule",
    "ZeroNansState",
    "ZoomLinesearchInfo",
    "abs_sq",
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
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "addsign",
    "amsgrad",
    "apply_every",
    "apply_if_finite",
    "apply_updates",
    "asam",
    "asgd",
    "asgd_averaged_params",
    "asgd_averaging",
    "assignment",
    "averaged_params",
    "bfgs",
    "bias_correction",
    "block_coordinate_descent",
    "cast",
    "cast_like",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_mask",
    "conditionally_transform",
    "constant_schedule",
    "contrib",
    "convex_kl_divergence",
    "cosine_decay_schedule",
    "cosine_distance",
    "cosine_onecycle_schedule",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "curvature",
    "curvature_monitor",
    "cyclic_schedule",
    "distributed",
    "early_stopping",
    "ema",
    "ema_params",
    "ensemble_params",
    "ensemble_predict",
    "entropy_sgd",
    "exponential_decay",
    "flatten",
    "freeze",
    "fromage",
    "full_like",
    "gauss_newton",
    "generalized_kl_divergence",
    "global_norm",
    "grid_sweep",
    "group_leaves",
    "health_monitor",
    "hessian_free",
    "hinge_loss",
    "huber_loss",
    "identity",
    "incremental_update",
    "init_empty_state",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "join_schedules",
    "keep_params_nonnegative",
    "kfac",
    "kl_divergence",
    "l2_loss",
    "lamb",
    "lars",
    "lbfgs",
    "learned",
    "levenberg_marquardt",
    "linear_onecycle_schedule",
    "linear_schedule",
    "lion",
    "log_cosh",
    "lookahead",
    "losses",
    "lr_range_test",
    "masked",
    "matrix_inverse_pth_root",
    "measure_with_ema",
    "microbatch",
    "microbatching",
    "mixed_precision",
    "moment_like",
    "momentum_schedule",
    "monitor",
    "multi_normal",
    "multi_transform",
    "nadam",
    "nadamw",
    "named_chain",
    "newton_cg",
    "nnls",
    "noisy_sgd",
    "nonlinear_cg",
    "normalize_by_update_norm",
    "normalized_weight_decay",
    "normalized_weight_decay_schedule",
    "novograd",
    "ntxent",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "optimizers",
    "partition",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "periodic_update",
    "perturbations",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "plot_lr_range_test",
    "plot_schedule",
    "polyak_averaging",
    "polyak_sgd",
    "polynomial_schedule",
    "power_iteration",
    "powersign",
    "projections",
    "radam",
    "read_measures",
    "reduce_on_plateau",
    "rmsprop",
    "rprop",
    "saddle_free_newton",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "safe_softmax_cross_entropy",
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
    "scale_gradient",
    "scale_learning_rate",
    "schedules",
    "second_order",
    "selective_transform",
    "set_hyperparams",
    "set_to_zero",
    "sgd",
    "sgdr_schedule",
    "sgdw",
    "shampoo",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "sign_sgd",
    "signum",
    "skip_large_updates",
    "skip_not_finite",
    "sm3",
    "smooth_labels",
    "snapshot",
    "snapshot_ensemble",
    "soap",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
    "state_bytes",
    "state_bytes_per_param",
    "stateless",
    "stateless_with_tree_map",
    "stochastic_lbfgs",
    "trace",
    "transformer_schedule",
    "transforms",
    "tree",
    "tree_map_params",
    "tree_utils",
    "tuning",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "value_and_grad_from_state",
    "warm_restarts_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "with_extra_args_support",
    "yogi",
    "zero_nans",
    "zeros_like",
]
