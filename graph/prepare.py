"""The entry node: validate inputs, resolve the base model and task, lay out the run directory."""

from __future__ import annotations

import time
from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import ValidationError

from postlab.records.run import DEFAULT_STEP_BUDGET, Budget, RunOptions, StopReason
from postlab.records.state import LabContext, LabState
from postlab.tools.data.training_sets import DatasetError, check_trainable
from postlab.tools.io.quiet import quiet_progress
from postlab.tools.io.rundir import open_run_dir, write_run_record
from postlab.tools.models.resolution import (
    DEFAULT_MODEL,
    ModelResolutionError,
    resolve_model,
)
from postlab.tools.tasks.catalog import DEFAULT_TASK, TaskError, load_task
from postlab.tools.training.recipes import TECHNIQUES, resolve_technique

# Options an assistant's configuration (Studio) may set; the run's own input overrides them.
_CONTEXT_OPTIONS = ("policy", "llm", "max_iterations", "target_score", "train_steps", "train_size")


def prepare(
    state: LabState, runtime: Runtime[LabContext]
) -> Command[Literal["supervisor", "finalize"]]:
    """Turn the caller's input into a ready run, or end it at once with a clear error."""
    context: LabContext = runtime.context or {}
    task_dir = state.get("task_dir")
    task_name = state.get("task") or context.get("task") or (None if task_dir else DEFAULT_TASK)
    model = state.get("model") or context.get("model") or DEFAULT_MODEL
    option_values = {k: context[k] for k in _CONTEXT_OPTIONS if context.get(k) is not None}
    option_values.update(state.get("options") or {})
    run_dir = open_run_dir(state.get("run_dir"), task_name or "task")
    update: dict = {"run_dir": str(run_dir), "run_id": run_dir.name, "model": model}
    try:
        task = load_task(task_name, task_dir)
        options = RunOptions.model_validate(option_values)
        if options.techniques is not None:
            keys = [resolve_technique(name) for name in options.techniques]
            options = options.model_copy(update={"techniques": list(dict.fromkeys(keys))})
            if not options.teacher and any(TECHNIQUES[k].needs_teacher for k in keys):
                raise ValueError("synthetic_teacher needs a teacher model: give --teacher MODEL")
        check_trainable(task, options.batch_size)
        steps = state.get("budget") or context.get("budget") or DEFAULT_STEP_BUDGET
        budget = Budget(steps=steps, max_time_s=state.get("max_time_s"))
        with quiet_progress():
            resolved = resolve_model(model)
            if options.teacher:
                try:
                    resolve_model(options.teacher)
                except ModelResolutionError as error:
                    raise ModelResolutionError(f"teacher: {error}") from error
    except (TaskError, DatasetError, ModelResolutionError, ValidationError, ValueError) as error:
        update.update(
            stop_reason=StopReason.ERROR.value,
            stop_detail=f"cannot start: {error}",
            task=task_name or str(task_dir),
            goal=state.get("goal") or "",
        )
        return Command(goto="finalize", update=update)
    goal = state.get("goal") or f"Raise {model} on {task.name}: {task.description}"
    update.update(
        goal=goal,
        task=task.name,
        budget=budget.steps,
        max_time_s=budget.max_time_s,
        base_model_path=resolved.path,
        run_options=options,
        tried_techniques=[],
        baseline=None,
        best=None,
        plan=None,
        directive=None,
    )
    write_run_record(
        run_dir,
        {
            "run_id": run_dir.name,
            "goal": goal,
            "task": task.name,
            "task_dir": task_dir,
            "model": model,
            "base_model_path": resolved.path,
            "budget": budget.model_dump(),
            "options": options.model_dump(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    return Command(goto="supervisor", update=update)
