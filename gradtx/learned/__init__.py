"""gradtx.learned: learned optimizers and update-rule search (Andrychowicz et al. 2016; Bello et al.
2017)."""

from gradtx.learned.checkpoint import load_meta_params, save_meta_params
from gradtx.learned.es import ESState, es_gradient, es_init
from gradtx.learned.lstm import LSTMOptimizerState, LearnedOptimizer, lstm_optimizer
from gradtx.learned.meta import MetaTrainResult, evaluate, meta_train
from gradtx.learned.mlp import MLPOptimizerState, mlp_optimizer
from gradtx.learned.tasks import Task, digits_mlp_task, quadratic_task, wrap_task

__all__ = [
    "ESState",
    "LSTMOptimizerState",
    "LearnedOptimizer",
    "MLPOptimizerState",
    "MetaTrainResult",
    "Task",
    "digits_mlp_task",
    "es_gradient",
    "es_init",
    "evaluate",
    "load_meta_params",
    "lstm_optimizer",
    "meta_train",
    "mlp_optimizer",
    "quadratic_task",
    "save_meta_params",
    "wrap_task",
]
