"""Run the lab graph durably in a run directory: start, resume, and answer approval gates."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.types import Command

from postlab.graph.builder import build_graph, recursion_limit
from postlab.graph.finalize import finalize
from postlab.memory.checkpoints import has_checkpoints, open_checkpointer, thread_id
from postlab.records.run import DEFAULT_STEP_BUDGET, StopReason
from postlab.records.state import LabInput, LabOutput
from postlab.tools.io.run_lock import hold_run

EventSink = Callable[[dict[str, Any]], None]


class ResumeError(RuntimeError):
    """A run that cannot be resumed: unknown, already finished, or not waiting for an answer."""


def _config(run_dir: Path, budget: int) -> dict[str, Any]:
    return {
        "configurable": {"thread_id": thread_id(run_dir)},
        "recursion_limit": recursion_limit(budget),
    }


def _interrupted(graph, config: dict) -> dict[str, Any]:
    """Summary and report of a run stopped by Ctrl-C or SIGTERM, leaving its checkpoint as is.

    The graph's state is not touched, so `resume` continues from the last finished step; the
    files written here are replaced when the run finally ends.
    """
    values = dict(graph.get_state(config).values)
    if not values.get("run_dir") or not values.get("run_id"):
        raise KeyboardInterrupt  # stopped before the run existed: nothing to show or resume
    step = len(values.get("trajectory") or [])
    values.update(
        stop_reason=StopReason.INTERRUPTED.value,
        stop_detail=(
            f"interrupted after step {step}; continue with: postlab resume {values['run_id']}"
        ),
    )
    return {**finalize(values), "pending": []}


def _drive(graph, payload: Any, config: dict, on_event: EventSink | None) -> dict[str, Any]:
    try:
        for mode, chunk in graph.stream(payload, config, stream_mode=["custom", "updates"]):
            if mode == "custom" and on_event is not None:
                on_event(chunk)
    except KeyboardInterrupt:
        # The training worker, if any, was stopped on the way out (run_training stops it when
        # interrupted; one that had reported its result is let exit).
        return _interrupted(graph, config)
    snapshot = graph.get_state(config)
    result: dict[str, Any] = {key: snapshot.values.get(key) for key in LabOutput.__annotations__}
    result["pending"] = [interrupt.value for interrupt in snapshot.interrupts]
    return result


def run_lab(inputs: LabInput, on_event: EventSink | None = None) -> dict[str, Any]:
    """Run with a SQLite checkpointer in the run directory; output plus pending approvals."""
    run_dir = Path(inputs["run_dir"])
    with hold_run(run_dir), open_checkpointer(run_dir) as checkpointer:
        graph = build_graph(checkpointer=checkpointer, trusted_input=True)
        config = _config(run_dir, inputs.get("budget") or DEFAULT_STEP_BUDGET)
        return _drive(graph, inputs, config, on_event)


@contextlib.contextmanager
def run_state(run_dir: Path) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """The compiled graph, the latest snapshot and the config of an existing run, for the
    block (its checkpointer is closed after)."""
    if not has_checkpoints(run_dir):
        raise ResumeError(f"{run_dir} has no checkpoints: it is not a postlab run")
    with open_checkpointer(run_dir) as checkpointer:
        graph = build_graph(checkpointer=checkpointer, trusted_input=True)
        probe = _config(run_dir, DEFAULT_STEP_BUDGET)
        snapshot = graph.get_state(probe)
        if not snapshot.values and not snapshot.tasks:
            raise ResumeError(f"{run_dir} has no saved state to resume from")
        budget = snapshot.values.get("budget") or DEFAULT_STEP_BUDGET
        yield graph, snapshot, _config(run_dir, budget)


def run_snapshot(run_dir: Path) -> Any:
    """The latest snapshot of an existing run, read and let go (its checkpointer closed)."""
    with run_state(run_dir) as (_, snapshot, _):
        return snapshot


def finished(snapshot: Any) -> bool:
    """Whether a run's graph has ended (no task left, not even one whose writes await commit)."""
    # `next` is empty too when a step finished but was interrupted before its checkpoint.
    return not snapshot.tasks


def resume_lab(
    run_dir: Path,
    on_event: EventSink | None = None,
    approve: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Continue a run from its last checkpoint; `approve` answers a pending approval gate."""
    with hold_run(run_dir):
        return _resume(run_dir, on_event, approve, note)


def _resume(
    run_dir: Path, on_event: EventSink | None, approve: bool | None, note: str
) -> dict[str, Any]:
    with run_state(run_dir) as (graph, snapshot, config):
        if finished(snapshot):
            raise ResumeError(
                f"run {run_dir.name} already finished ({snapshot.values.get('stop_reason')})"
            )
        if snapshot.interrupts:
            if approve is None:
                raise ResumeError(
                    f"run {run_dir.name} is waiting for approval: resume with --approve or --reject"
                )
            payload: Any = Command(resume={"approved": approve, "note": note})
        elif approve is not None:
            raise ResumeError(f"run {run_dir.name} is not waiting for an approval")
        else:
            payload = None
        return _drive(graph, payload, config, on_event)
