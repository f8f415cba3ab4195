"""Kinds of GAN: one module each, found by name (`task.name`) in the registry below.

Adding a kind of GAN is one module and one `register` call (from any module, a plugin or a
test); config validation, the training loop, checkpoints, `ganforge sample` and `ganforge eval`
find it here and never name a task themselves.
"""

from __future__ import annotations

from ganforge.errors import unknown_name
from ganforge.tasks.base import Hyper, Task, resolve_hyper
from ganforge.tasks.conditional import ConditionalTask
from ganforge.tasks.cyclegan import CycleGANTask
from ganforge.tasks.pix2pix import Pix2PixTask
from ganforge.tasks.sampling import Drawn, Sampler
from ganforge.tasks.semi_supervised import SemiSupervisedTask
from ganforge.tasks.text import TextTask
from ganforge.tasks.unconditional import UnconditionalTask

TASKS: dict[str, type[Task]] = {}


def register(task: type[Task]) -> type[Task]:
    """Add a task class under its `name` (usable as a class decorator); returns it."""
    if not task.name:
        raise ValueError(f"{task.__name__} needs a class attribute `name`")
    TASKS[task.name] = task
    return task


def get(name: str) -> type[Task]:
    """The task class registered as `name`, or an error listing the registered ones."""
    if name in TASKS:
        return TASKS[name]
    raise unknown_name("task", name, list(TASKS), "Set task.name.")


register(UnconditionalTask)
register(ConditionalTask)
register(SemiSupervisedTask)
register(Pix2PixTask)
register(CycleGANTask)
register(TextTask)

__all__ = [
    "TASKS",
    "ConditionalTask",
    "CycleGANTask",
    "Drawn",
    "Hyper",
    "Pix2PixTask",
    "Sampler",
    "SemiSupervisedTask",
    "Task",
    "TextTask",
    "UnconditionalTask",
    "get",
    "register",
    "resolve_hyper",
]
