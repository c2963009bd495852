"""gradtx.learned: learned optimizers and update-rule search (Andrychowicz et al. 2016; Bello et al.
2017)."""

from gradtx.learned.tasks import Task, quadratic_task
from gradtx.learned.update_rule import ScaleByUpdateRuleState, update_rule

__all__ = ["ScaleByUpdateRuleState", "Task", "quadratic_task", "update_rule"]
