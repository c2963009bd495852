"""gradtx.learned: learned optimizers and update-rule search (Andrychowicz et al. 2016; Bello et al.
2017)."""

from gradtx.learned.search import SearchResult, evaluate_update_rules, search_update_rules
from gradtx.learned.tasks import Task, quadratic_task
from gradtx.learned.update_rule import ScaleByUpdateRuleState, update_rule

__all__ = [
    "ScaleByUpdateRuleState",
    "SearchResult",
    "Task",
    "evaluate_update_rules",
    "quadratic_task",
    "search_update_rules",
    "update_rule",
]
