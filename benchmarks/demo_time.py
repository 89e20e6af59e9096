"""Time the offline demo end to end and print its scores (target: under 15 minutes on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from postlab.memory.library import LIBRARY_ENV, LIBRARY_OFF


def main() -> None:
    """Run `postlab demo` in a fresh run directory and print wall time and scores."""
    run_dir = Path(tempfile.mkdtemp(prefix="postlab-demo-")) / "demo"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "postlab.cli", "demo", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        check=False,
        # A fresh user's demo: no earlier run's measurements weigh on its ranking.
        env={**os.environ, LIBRARY_ENV: os.environ.get(LIBRARY_ENV, LIBRARY_OFF)},
    )
    wall = time.monotonic() - started
    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"demo wall time: {wall:.0f}s (exit {completed.returncode})")
    print(f"baseline strict: {summary['baseline_score']:.2f}")
    print(f"best strict:     {summary['best_score']:.2f} ({summary['best_label']})")
    print(f"gain:            {summary['best_score'] - summary['baseline_score']:+.2f}")
    print(f"stop reason:     {summary['stop_reason']} — {summary['stop_detail']}")
    for iteration in summary["iterations"]:
        print(
            f"  iteration {iteration['iteration']}: {iteration['technique']} → {iteration['score']}"
        )
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    main()
