"""Run directories on disk: layout, ids, atomic writes, listing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from postlab.tools.io.atomic import write_json_atomic
from postlab.tools.io.removal import remove_aside

# Where runs live when no run directory is given (default ./runs).
RUNS_DIR_ENV = "POSTLAB_RUNS_DIR"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
RUN_FILE = "run.json"
STEP_MARKER = "step-in-flight.json"
# Where agent steps write while they work: datasets, and per iteration its training log and
# checkpoint (in CHECKPOINT_DIR of the iteration's folder).
DATA_DIR = "data"
MODELS_DIR = "models"
CHECKPOINT_DIR = "checkpoint"
STEP_OUTPUTS = (DATA_DIR, MODELS_DIR)
# Folders of a run that its records point into, and the record keys that hold such paths.
RUN_FOLDERS = (*STEP_OUTPUTS, "memory")
PATH_KEYS = frozenset(
    {
        "best_checkpoint",
        "checkpoint",
        "init_checkpoint",
        "dataset",
        "dataset_path",
        "output_dir",
        "base_model",
        "path",
        "run_dir",
    }
)


def runs_root() -> Path:
    """Where runs live unless a run directory is given: $POSTLAB_RUNS_DIR or ./runs."""
    return Path(os.environ.get(RUNS_DIR_ENV, "runs")).resolve()


def new_run_id(task: str) -> str:
    """A sortable, readable run id: timestamp plus task name."""
    slug = re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")[:32] or "task"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def open_run_dir(run_dir: Path | None, task: str) -> Path:
    """The run's folder, created when missing: the one given, or a new id under the runs root."""
    folder = Path(run_dir) if run_dir else runs_root() / new_run_id(task)
    folder.mkdir(parents=True, exist_ok=True)
    # Absolute from here on: records make paths inside it relative, and need one root to do so.
    return folder.resolve()


def portable(data: Any, run_dir: Path) -> Any:
    """`data` with every absolute path inside `run_dir` made relative to it (the folder travels)."""
    root = Path(run_dir).resolve()

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str) and Path(value).is_absolute():
            with contextlib.suppress(ValueError):
                return Path(value).relative_to(root).as_posix()
        return value

    return walk(data)


def _is_run_relative(key: str, value: Any) -> bool:
    if key not in PATH_KEYS or not isinstance(value, str) or Path(value).is_absolute():
        return False
    return value == "." or Path(value).parts[0] in RUN_FOLDERS


def located(data: Any, run_dir: Path) -> Any:
    """`data` read from a run record, its run-relative paths made absolute under `run_dir`."""
    root = Path(run_dir).resolve()

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: str((root / item).resolve()) if _is_run_relative(key, item) else walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(data)


def write_run_json(run_dir: Path, name: str, record: dict[str, Any]) -> Path:
    """Write one of the run's JSON records atomically, paths inside the run relative to it."""
    return write_json_atomic(Path(run_dir) / name, portable(record, run_dir))


def write_run_record(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write run.json, the run's inputs as prepared, atomically."""
    return write_run_json(run_dir, RUN_FILE, record)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_run_json(run_dir: Path, name: str) -> dict[str, Any] | None:
    """One of the run's JSON records with its paths resolved where the folder now lies."""
    data = read_json(Path(run_dir) / name)
    return located(data, run_dir) if data is not None else None


def find_run(name: str, root: Path | None = None) -> Path:
    """A run directory: a path, an id under the runs root, a unique id prefix, or `latest`."""
    candidate = Path(name)
    if (candidate / RUN_FILE).is_file():
        return candidate.resolve()
    base = root or runs_root()
    under_root = base / name
    if (under_root / RUN_FILE).is_file():
        return under_root
    runs = sorted(
        (folder for folder in base.glob("*") if (folder / RUN_FILE).is_file()),
        key=lambda folder: (folder / RUN_FILE).stat().st_mtime,
    )
    if name == "latest" and runs:
        return runs[-1]
    matches = [folder for folder in runs if folder.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join(folder.name for folder in matches[:5])
        raise FileNotFoundError(f"{name!r} matches {len(matches)} runs in {base}: {names}")
    raise FileNotFoundError(f"no run {name!r} (looked at {candidate} and in {base})")


def list_runs(root: Path | None = None) -> list[dict[str, Any]]:
    """Every run under the root with its inputs and, when finished, its summary; newest first."""
    root = root or runs_root()
    runs = []
    for run_file in sorted(root.glob(f"*/{RUN_FILE}"), reverse=True):
        info = read_run_json(run_file.parent, RUN_FILE) or {}
        info["summary"] = read_run_json(run_file.parent, SUMMARY_FILE)
        info["run_dir"] = str(run_file.parent)
        runs.append(info)
    return runs


def _last_activity(run_dir: Path, since: float) -> float:
    """The newest modification time of a step's output file (datasets, models; at least `since`).

    Checkpoints, memory and locks are left out: a resuming process touches them before the
    killed step is redone.
    """
    newest = since
    outputs = [path for folder in STEP_OUTPUTS for path in (run_dir / folder).rglob("*")]
    for path in outputs:
        try:
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return newest


def begin_step(run_dir: Path, step: int) -> float:
    """Mark `step` as in flight; returns the seconds a killed earlier attempt of it spent.

    A step killed mid-way leaves its marker behind. Its lost time runs from its start to the
    last file it (or its training worker) touched: the best evidence of when it died.
    """
    marker = Path(run_dir) / STEP_MARKER
    lost = 0.0
    try:
        previous = json.loads(marker.read_text())
        if previous.get("step") == step:
            started = float(previous["started_at"])
            lost = max(0.0, _last_activity(Path(run_dir), started) - started)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # An unwritable run directory is the step's own failure to report, not the marker's.
    with contextlib.suppress(OSError):
        write_json_atomic(marker, {"step": step, "started_at": time.time()})
    return round(lost, 3)


def end_step(run_dir: Path) -> None:
    """The step in flight finished: its marker goes."""
    with contextlib.suppress(OSError):
        (Path(run_dir) / STEP_MARKER).unlink(missing_ok=True)


def iteration_dir(run_dir: Path, iteration: int) -> Path:
    """Where an iteration's model, logs and optimiser state live inside a run folder."""
    return Path(run_dir) / MODELS_DIR / iteration_label(iteration)


def iteration_label(iteration: int) -> str:
    """An iteration's name in folders and reports ("iter-3")."""
    return f"iter-{iteration}"


def prune_checkpoints(run_dir: Path, keep: set[str]) -> list[str]:
    """Delete the run's iteration checkpoints other than `keep` (set aside at once, deleted on a
    thread); returns the folders removed.

    Superseded checkpoints are most of a run's size (a full copy of the model per iteration).
    """
    kept = {str(Path(path).resolve()) for path in keep}
    removed = []
    for checkpoint in sorted((Path(run_dir) / MODELS_DIR).glob(f"*/{CHECKPOINT_DIR}")):
        if str(checkpoint.resolve()) not in kept and checkpoint.is_dir():
            remove_aside(checkpoint)
            removed.append(checkpoint.parent.name)
    return removed
