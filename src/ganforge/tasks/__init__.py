"""Kinds of GAN training: what one D step and one G step mean (see DESIGN.md `tasks/`)."""

from ganforge.tasks.unconditional import Hyper, UnconditionalTask, resolve_hyper

__all__ = ["Hyper", "UnconditionalTask", "resolve_hyper"]
