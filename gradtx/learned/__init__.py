"""gradtx.learned: learned optimizers and update-rule search (Andrychowicz et al. 2016; Bello et al.
2017)."""

from gradtx.learned.checkpoint import load_meta_params, save_meta_params
from gradtx.learned.es import ESState, es_gradient, es_init
from gradtx.learned.lstm import LSTMOptimizerState, LearnedOptimizer, lstm_optimizer
from gradtx.learned.meta import MetaTrainResult, evaluate, meta_train
from gradtx.learned.mlp import MLPOptimizerState, mlp_optimizer
from gradtx.learned.search import SearchResult, evaluate_update_rules, search_update_rules
from gradtx.learned.tasks import Task, digits_mlp_task, quadratic_task, wrap_task
from gradtx.learned.update_rule import ScaleByUpdateRuleState, update_rule

__all__ = [
    "ESState",
    "LSTMOptimizerState",
    "LearnedOptimizer",
    "MLPOptimizerState",
    "MetaTrainResult",
    "ScaleByUpdateRuleState",
    "SearchResult",
    "Task",
    "digits_mlp_task",
    "es_gradient",
    "es_init",
    "evaluate",
    "evaluate_update_rules",
    "load_meta_params",
    "lstm_optimizer",
    "meta_train",
    "mlp_optimizer",
    "quadratic_task",
    "save_meta_params",
    "search_update_rules",
    "update_rule",
    "wrap_task",
]
