"""gradtx.learned: learned optimizers and update-rule search (Andrychowicz et al. 2016; Bello et al.
2017)."""

from gradtx.learned.tasks import Task, quadratic_task

__all__ = ["Task", "quadratic_task"]
