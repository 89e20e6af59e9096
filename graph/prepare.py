"""The entry node: validate inputs, resolve the base model and task, lay out the run directory."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import ValidationError

from postlab.records.run import DEFAULT_STEP_BUDGET, Budget, RunOptions, StopReason
from postlab.records.state import LabContext, LabInput, LabState
from postlab.tools.benchmarks.harness import BenchmarkError, judge_command, materialize
from postlab.tools.data.recombination import survey_folder
from postlab.tools.data.training_sets import DatasetError, check_trainable
from postlab.tools.io.quiet import quiet_progress
from postlab.tools.io.rundir import RUNS_DIR_ENV, open_run_dir, runs_root, write_run_record
from postlab.tools.models.resolution import (
    DEFAULT_MODEL,
    ModelResolutionError,
    resolve_model,
)
from postlab.tools.tasks.catalog import DEFAULT_TASK, TaskError, load_task
from postlab.tools.training.backends import choose_backend
from postlab.tools.training.recipes import TECHNIQUES, resolve_technique
from postlab.tools.training.worker_start import prewarm_workers

# The MCP configuration a server was started with; the only one its input may name.
MCP_CONFIG_ENV = "POSTLAB_MCP_CONFIG"
# Where a benchmark run keeps the benchmark as a task folder.
BENCHMARK_SUBDIR = "benchmark"
# Options an assistant's configuration (Studio) may set: its keys that are not the input's own
# (task, model, budget); the run's own input overrides them.
_CONTEXT_OPTIONS = tuple(
    key for key in LabContext.__annotations__ if key not in LabInput.__annotations__
)


def run_dir_refusal(state: LabState) -> str | None:
    """Why an untrusted input's run directory is refused: it must lie under the runs root."""
    root = runs_root()
    if state.get("run_dir"):
        wanted = Path(state["run_dir"]).resolve()
        if not wanted.is_relative_to(root):
            return f"run_dir {wanted} is outside the runs root {root} ({RUNS_DIR_ENV})"
    return None


def mcp_refusal(state: LabState) -> str | None:
    """Why an untrusted input's MCP configuration is refused: only the server's own may run."""
    asked = (state.get("options") or {}).get("mcp_config")
    allowed = os.environ.get(MCP_CONFIG_ENV)
    if asked and (not allowed or Path(asked).resolve() != Path(allowed).resolve()):
        return (
            f"mcp_config {asked!r} is not this server's MCP configuration: only the one named "
            f"by {MCP_CONFIG_ENV} when the server started may be used"
        )
    return None


def _benchmark_task(options: RunOptions, run_dir: Path) -> tuple[str, RunOptions]:
    """A benchmark written out as the run's task folder, and options whose test judge is the
    harness (unless the user named another judge)."""
    data = Path(options.benchmark_data).resolve() if options.benchmark_data else None
    with quiet_progress():
        folder = materialize(options.benchmark, data, run_dir / BENCHMARK_SUBDIR)
    judge = options.eval_cmd or judge_command(
        options.benchmark, data, limited=options.eval_limit is not None
    )
    return str(folder), options.model_copy(update={"eval_cmd": judge})


def prepare(
    state: LabState, runtime: Runtime[LabContext], trusted_input: bool = False
) -> Command[Literal["supervisor", "finalize"]]:
    """Turn the caller's input into a ready run, or end it at once with a clear error.

    `trusted_input`: the caller is the local user (CLI, `run_lab`); otherwise (Studio,
    `langgraph dev`, an embedding host) the input is confined: see the two refusals above.
    """
    context: LabContext = runtime.context or {}
    task_dir = state.get("task_dir")
    task_name = state.get("task") or context.get("task") or (None if task_dir else DEFAULT_TASK)
    model = state.get("model") or context.get("model") or DEFAULT_MODEL
    option_values = {k: context[k] for k in _CONTEXT_OPTIONS if context.get(k) is not None}
    option_values.update(state.get("options") or {})
    bad_dir = None if trusted_input else run_dir_refusal(state)
    refused = bad_dir or (None if trusted_input else mcp_refusal(state))
    # A refused run directory is never created: the refusal is written to a new one under root.
    run_dir = open_run_dir(None if bad_dir else state.get("run_dir"), task_name or "task")
    update: dict = {"run_dir": str(run_dir), "run_id": run_dir.name, "model": model}
    try:
        if refused:
            raise ValueError(f"input refused: {refused}")
        options = RunOptions.model_validate(option_values)
        if options.benchmark:
            task_dir, options = _benchmark_task(options, run_dir)
            task_name = None
            update["task_dir"] = task_dir
        task = load_task(task_name, task_dir)
        if options.techniques is not None:
            keys = [resolve_technique(name) for name in options.techniques]
            options = options.model_copy(update={"techniques": list(dict.fromkeys(keys))})
            if not options.teacher and any(TECHNIQUES[k].needs_teacher for k in keys):
                raise ValueError("synthetic_teacher needs a teacher model: give --teacher MODEL")
        usable = check_trainable(task, options.batch_size)
        survey = None if usable is None else survey_folder(usable, options.train_size)
        steps = state.get("budget") or context.get("budget") or DEFAULT_STEP_BUDGET
        budget = Budget(steps=steps, max_time_s=state.get("max_time_s"))
        with quiet_progress():
            resolved = resolve_model(model)
            if options.backend == "unsloth":
                # Asked for explicitly: refuse now, not at the first training step.
                choose_backend("unsloth", "sft", resolved.path)
            if options.teacher:
                try:
                    resolve_model(options.teacher)
                except ModelResolutionError as error:
                    raise ModelResolutionError(f"teacher: {error}") from error
    except (
        TaskError,
        DatasetError,
        BenchmarkError,
        ModelResolutionError,
        ValidationError,
        ValueError,
    ) as error:
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
        folder_survey=survey,
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
    if options.compute == "local":
        # The first training worker forks from a launcher whose imports overlap the baseline;
        # every iteration's checkpoint carries the base model's tokenizer files.
        prewarm_workers((resolved.path,))
    return Command(goto="supervisor", update=update)
