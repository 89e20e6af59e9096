"""The live panel: what a user watching a run sees of each event."""

from __future__ import annotations

import io

from rich.console import Console

from postlab.cli.progress import ProgressView


def _shown(view: ProgressView) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(view.render())
    return console.export_text()


def test_sampling_the_model_shows_a_bar_until_the_next_agent_starts():
    view = ProgressView(run_id="r", budget=60)
    view.handle({"type": "agent_started", "agent": "data_engineer", "action": "build", "step": 4})
    assert "sampling" not in _shown(view)
    view.handle({"type": "sampling", "recipe": "known_rows", "done": 130, "total": 660})
    shown = _shown(view)
    assert "sampling known_rows" in shown and "130/660" in shown
    view.handle({"type": "agent_started", "agent": "trainer", "action": "train", "step": 5})
    assert "sampling" not in _shown(view)


def test_evaluation_progress_names_the_checkpoint():
    view = ProgressView(run_id="r", budget=60)
    view.handle({"type": "evaluating", "label": "iter-2", "done": 40, "total": 60})
    shown = _shown(view)
    assert "evaluating iter-2" in shown and "40/60" in shown
