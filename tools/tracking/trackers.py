"""Experiment trackers: Weights & Biases (offline unless a key is set) or Trackio (local SQLite).

Training runs log through transformers' own callbacks (`report_to`); the lab's evaluations go to
one tracker run named after the lab's run id, written when the run finalizes.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from postlab.records.run import Tracker

# The tracker project every run logs to.
TRACKER_PROJECT = "postlab"
# Where a run keeps its Trackio database (inside the run folder, so the folder is the record).
TRACKIO_SUBDIR = "trackio"
_PACKAGE = {"wandb": "wandb", "trackio": "trackio"}
# Starting a tracker and writing a few rows takes seconds; past this it is stuck.
LOG_TIMEOUT_S = 120
EVALUATION_LOG_MODULE = "postlab.tools.tracking.evaluation_log"
# What wandb.init imports lazily as it opens a run (0.35 s): imported ahead where it can overlap.
WANDB_INIT_IMPORTS = ("wandb.sdk.launch",)


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


def training_tracker_env(
    tracker: Tracker, log_dir: Path, project: str = TRACKER_PROJECT
) -> dict[str, str]:
    """Environment of a training process's tracker: `tracker_env`, less wandb's list of
    installed packages, which reads every distribution's metadata (0.1 s of each iteration's
    first step) and is the same for every iteration: the lab's own run records it once."""
    env = tracker_env(tracker, log_dir, project)
    if tracker == "wandb":
        env["WANDB__SAVE_REQUIREMENTS"] = "false"
    return env


def start_tracker_service(tracker: Tracker) -> threading.Thread | None:
    """Start wandb's service process on a thread, so that it is up when the trainer's callback
    opens its run (starting it there cost 0.2 s of the first step, waiting on its port file).

    Only where wandb is imported already (a worker forked from the warm launcher): importing it
    on a thread beside the process's own imports would hold the interpreter's lock they need.
    """
    wandb = sys.modules.get("wandb") if tracker == "wandb" else None
    if wandb is None or not available(tracker):
        return None

    def start() -> None:
        # Best effort: if it fails, the trainer's callback starts the service as it always did.
        with contextlib.suppress(Exception):
            wandb.setup()

    thread = threading.Thread(target=start, name="wandb-service-start", daemon=True)
    thread.start()
    return thread


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


@dataclass
class EvaluationLog:
    """The lab's evaluations on their way to a tracker, written by a process of its own while
    the caller goes on (the report's plots); `outcome` waits for it."""

    tracker: Tracker
    # A subprocess.Popen, or a process forked warm that offers the same wait and kill.
    process: Any = None
    rows_file: Path | None = None
    errors: IO[bytes] | None = None
    # Why nothing was started (None: nothing to log, or a process was started).
    problem: str | None = None

    def outcome(self, timeout_s: float = LOG_TIMEOUT_S) -> str | None:
        """None when the rows were logged, else why not (a process past `timeout_s` is killed)."""
        if self.process is None:
            return self.problem
        try:
            code = self.process.wait(timeout=timeout_s)
            if code == 0:
                return None
            assert self.errors is not None
            self.errors.seek(0)
            tail = self.errors.read().decode(errors="replace")[-300:]
            return f"{self.tracker} logging exited {code}: {tail}"
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return f"{self.tracker} logging failed: still running after {timeout_s:g} s"
        finally:
            if self.rows_file is not None:
                self.rows_file.unlink(missing_ok=True)
            if self.errors is not None:
                self.errors.close()


def start_cold(module: str, args: list[str], env: dict[str, str], cwd: Path, output: int) -> Any:
    """`module`'s main in a new interpreter under this environment with `env` over it, its
    stdout and stderr into the descriptor `output`."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
    )


# How a process running a module's main is started: (module, args, env, cwd, output fd).
StartPython = Callable[[str, list[str], dict[str, str], Path, int], Any]


def start_evaluation_log(
    tracker: Tracker,
    run_dir: Path,
    run_id: str,
    rows: list[dict[str, Any]],
    start: StartPython = start_cold,
) -> EvaluationLog:
    """Start logging the lab's evaluations (a row each; `step` is the iteration) as one tracker
    run named run_id, in a process of its own (a tracker reads its folder once, at import),
    started by `start` (a caller with a warm interpreter at hand passes one that forks it)."""
    if not rows:
        return EvaluationLog(tracker)
    if not available(tracker):
        return EvaluationLog(tracker, problem=f"{tracker} is not available here")
    folder = trackio_dir(run_dir) if tracker == "trackio" else run_dir
    rows_file = folder / f"{run_id}-evaluations.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        rows_file.write_text(json.dumps({"tracker": tracker, "run_id": run_id, "rows": rows}))
    except OSError as error:
        return EvaluationLog(tracker, problem=f"{tracker} logging failed: {error}")
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - outcome() closes it
    try:
        process = start(
            EVALUATION_LOG_MODULE, [str(rows_file)], tracker_env(tracker, folder), folder,
            errors.fileno(),
        )  # fmt: skip
    except OSError as error:
        rows_file.unlink(missing_ok=True)
        errors.close()
        return EvaluationLog(tracker, problem=f"{tracker} logging failed: {error}")
    return EvaluationLog(tracker, process, rows_file, errors)


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

    # wandb's service starts (waited for on its port file) while its lazy imports load here.
    start_tracker_service("wandb")
    for name in WANDB_INIT_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
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
