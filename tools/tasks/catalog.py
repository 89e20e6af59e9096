"""Tasks: bundled seeded generators and task folders, each with a fixed eval split and verifier."""

from __future__ import annotations

from pathlib import Path

from postlab.tools.tasks.folders import load_task_dir
from postlab.tools.tasks.generators import BUNDLED
from postlab.tools.tasks.model import (
    EVAL_SEED,
    EVAL_SIZE,
    Example,
    Task,
    TaskError,
    TaskSpec,
    normalize_prompt,
)

__all__ = [
    "DEFAULT_TASK",
    "EVAL_SEED",
    "EVAL_SIZE",
    "Example",
    "Task",
    "TaskError",
    "TaskSpec",
    "bundled_task_names",
    "load_task",
    "normalize_prompt",
]

DEFAULT_TASK = "addition_2d"


def bundled_task_names() -> list[str]:
    """Names of the tasks shipped with postlab."""
    return list(BUNDLED)


def load_task(name: str | None = None, task_dir: str | Path | None = None) -> Task:
    """A bundled task by name, or a task folder; neither gives the default task."""
    if name is not None and task_dir is not None:
        raise TaskError("give a task name or a task folder, not both")
    if task_dir is not None:
        return load_task_dir(Path(task_dir))
    name = name or DEFAULT_TASK
    if name not in BUNDLED:
        known = ", ".join(bundled_task_names())
        raise TaskError(f"unknown task {name!r}; bundled tasks: {known}")
    description, metric, max_new_tokens, generator = BUNDLED[name]
    spec = TaskSpec(
        name=name,
        description=description,
        metric=metric,
        max_new_tokens=max_new_tokens,
        source="bundled",
    )
    return Task(spec, generator=generator)
