"""Run the lab graph durably in a run directory and stream its events to a consumer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from postlab.graph.builder import build_graph, recursion_limit
from postlab.graph.state import LabInput, LabOutput
from postlab.memory.checkpoints import open_checkpointer

EventSink = Callable[[dict[str, Any]], None]


def run_lab(inputs: LabInput, on_event: EventSink | None = None) -> LabOutput:
    """Run to the end with a SQLite checkpointer in the run directory; returns the output."""
    run_dir = Path(inputs["run_dir"])
    checkpointer = open_checkpointer(run_dir)
    graph = build_graph(checkpointer=checkpointer)
    config = {
        "configurable": {"thread_id": run_dir.name},
        "recursion_limit": recursion_limit(inputs.get("budget") or 300),
    }
    for mode, chunk in graph.stream(inputs, config, stream_mode=["custom", "updates"]):
        if mode == "custom" and on_event is not None:
            on_event(chunk)
    values = graph.get_state(config).values
    return {key: values.get(key) for key in LabOutput.__annotations__}
