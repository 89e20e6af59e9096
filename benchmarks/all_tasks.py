"""Run every bundled task with a small budget and print baseline and best strict accuracy."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from postlab.graph.runner import run_lab
from postlab.tools.models.resolution import DEFAULT_MODEL
from postlab.tools.tasks.catalog import bundled_task_names


def main() -> None:
    """One small run per bundled task on the base model (or the model given as argument)."""
    model = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    root = Path(tempfile.mkdtemp(prefix="postlab-tasks-"))
    for name in bundled_task_names():
        started = time.monotonic()
        output = run_lab(
            {
                "task": name,
                "model": model,
                "budget": 20,
                "run_dir": str(root / name),
                "options": {"max_iterations": 1, "train_steps": steps, "train_size": 400},
            }
        )
        print(
            f"{name:24s} baseline {output['baseline_score']:.2f}  best {output['best_score']:.2f}"
            f"  stop {output['stop_reason']:18s} {time.monotonic() - started:5.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
