"""Experiment trackers: Weights & Biases (offline unless a key is set) or Trackio (local SQLite).

Training runs log through transformers' own callbacks (`report_to`); the lab's evaluations go to
one tracker run named after the lab's run id, written when the run finalizes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from postlab.records.run import Tracker

# The tracker project every run logs to.
TRACKER_PROJECT = "postlab"
# Where a run keeps its Trackio database (inside the run folder, so the folder is the record).
TRACKIO_SUBDIR = "trackio"
_PACKAGE = {"wandb": "wandb", "trackio": "trackio"}
# Starting a tracker and writing a few rows takes seconds; past this it is stuck.
LOG_TIMEOUT_S = 120


def available(tracker: Tracker) -> bool:
    """Whether the tracker can log here (installed, and wandb not switched off by env)."""
    if tracker == "none":
        return False
    if tracker == "wandb" and (
        os.environ.get("WANDB_MODE") == "disabled" or os.environ.get("WANDB_DISABLED") == "true"
    ):
        return False
    return importlib.util.find_spec(_PACKAGE[tracker]) is not None


def report_to(tracker: Tracker) -> str:
    """The `report_to` value a transformers Trainer takes for this tracker."""
    return tracker if available(tracker) else "none"


def tracker_env(tracker: Tracker, log_dir: Path, project: str = TRACKER_PROJECT) -> dict[str, str]:
    """Environment a training process needs so its tracker logs locally under log_dir."""
    if tracker == "wandb":
        mode = os.environ.get("WANDB_MODE") or (
            "online" if os.environ.get("WANDB_API_KEY") else "offline"
        )
        return {"WANDB_MODE": mode, "WANDB_DIR": str(log_dir), "WANDB_PROJECT": project}
    if tracker == "trackio":
        return {"TRACKIO_DIR": str(log_dir)}
    return {}


def trackio_dir(run_dir: Path) -> Path:
    """Where a run's Trackio database lives: TRACKIO_DIR when the user set one, else the run's."""
    return Path(os.environ.get("TRACKIO_DIR") or run_dir / TRACKIO_SUBDIR)


def tracker_dir(tracker: Tracker, run_dir: Path, iteration_dir: Path) -> Path:
    """Where one training run's tracker writes: wandb beside the iteration, Trackio per run."""
    return trackio_dir(run_dir) if tracker == "trackio" else iteration_dir


def where_to_look(tracker: Tracker, run_dir: Path, run_id: str) -> str:
    """A sentence telling the user where the run's metrics are and how to open them."""
    if tracker == "trackio":
        folder = trackio_dir(run_dir)
        return (
            f"Trackio project `{TRACKER_PROJECT}`, runs `{run_id}` (evaluations) and "
            f"`{run_id}-iter-<k>` (training), in `{folder}`: "
            f"`TRACKIO_DIR={folder} trackio show --project {TRACKER_PROJECT}`"
        )
    if tracker == "wandb":
        return (
            f"Weights & Biases project `{TRACKER_PROJECT}`, runs `{run_id}` (evaluations) and "
            f"`{run_id}-iter-<k>` (training); offline logs under `models/iter-<k>/wandb/` and "
            "`wandb/` in the run folder (`wandb sync` uploads them)"
        )
    return "no tracker (--tracker none): the metrics are in summary.json and the training logs"


def log_evaluations(
    tracker: Tracker, run_dir: Path, run_id: str, rows: list[dict[str, Any]]
) -> str | None:
    """Log the lab's evaluations (a row each; `step` is the iteration) as one tracker run named
    run_id, in a process of its own (a tracker reads its folder once, at import); None when
    logged, else why not."""
    if not rows or not available(tracker):
        return None if not rows else f"{tracker} is not available here"
    folder = trackio_dir(run_dir) if tracker == "trackio" else run_dir
    folder.mkdir(parents=True, exist_ok=True)
    rows_file = folder / f"{run_id}-evaluations.json"
    rows_file.write_text(json.dumps({"tracker": tracker, "run_id": run_id, "rows": rows}))
    env = {**os.environ, **tracker_env(tracker, folder), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "postlab.tools.tracking.evaluation_log", str(rows_file)]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=LOG_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{tracker} logging failed: {error}"
    finally:
        rows_file.unlink(missing_ok=True)
    if done.returncode != 0:
        return f"{tracker} logging exited {done.returncode}: {(done.stderr or '')[-300:]}"
    return None


def write_evaluations(payload: dict[str, Any]) -> None:
    """Log rows to the tracker this process's environment points at (the logging process)."""
    tracker, run_id, rows = payload["tracker"], payload["run_id"], payload["rows"]
    if tracker == "trackio":
        import trackio

        trackio.init(project=TRACKER_PROJECT, name=run_id, resume="allow", embed=False)
        try:
            for row in rows:
                trackio.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        finally:
            trackio.finish()
        return
    import wandb

    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", TRACKER_PROJECT),
        name=run_id,
        id=f"{run_id}-evaluations",
        resume="allow",
        settings=wandb.Settings(silent=True),
    )
    try:
        for row in rows:
            run.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
    finally:
        run.finish()
