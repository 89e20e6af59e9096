"""Trackers: a run's training steps and evaluations land in a local Trackio project."""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile

from postlab.graph.runner import run_lab
from postlab.tools.tracking.trackers import (
    TRACKER_PROJECT,
    EvaluationLog,
    report_to,
    start_evaluation_log,
    start_tracker_service,
)

SMALL = {"train_steps": 3, "train_size": 24, "eval_limit": 4, "batch_size": 4, "max_iterations": 1}


def _metrics_by_run(database) -> dict[str, list[dict]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT run_name, step, metrics FROM metrics").fetchall()
    runs: dict[str, list[dict]] = {}
    for run_name, step, metrics in rows:
        runs.setdefault(run_name, []).append({"step": step, **json.loads(metrics)})
    return runs


def test_trackio_holds_every_training_step_and_evaluation_under_the_run_id(
    tiny_model, tmp_path, monkeypatch
):
    monkeypatch.delenv("TRACKIO_DIR", raising=False)
    run_dir = tmp_path / "run"
    options = {**SMALL, "tracker": "trackio"}
    output = run_lab({"task": "addition_2d", "model": str(tiny_model), "budget": 20,
                      "run_dir": str(run_dir), "options": options})  # fmt: skip
    run_id = output["run_id"]
    databases = list((run_dir / "trackio").glob("*.db"))
    assert [db.stem for db in databases] == [TRACKER_PROJECT]
    runs = _metrics_by_run(databases[0])
    # Training: one row per optimiser step, named after the lab's run and iteration.
    training = runs[f"{run_id}-iter-1"]
    steps = sorted(row["train/global_step"] for row in training if "train/loss" in row)
    assert steps == [1, 2, 3]
    # Evaluations: the run id itself, validation per iteration and test where it was scored.
    evaluations = {row["step"]: row for row in runs[run_id]}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert evaluations[0]["validation/strict"] == summary["baseline_val_score"]
    assert evaluations[0]["test/strict"] == summary["baseline_score"]
    assert set(evaluations) == {e["iteration"] for e in summary["evaluations"]}
    assert summary["tracker"]["problem"] is None
    assert "trackio show" in (run_dir / "report.md").read_text()
    # No wandb files when Trackio is the tracker.
    assert not list(run_dir.rglob("wandb"))


def test_no_tracker_reports_to_nothing(monkeypatch):
    assert report_to("none") == "none"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert report_to("wandb") == "none"
    assert report_to("trackio") == "trackio"


def _log_of(tmp_path, code: str) -> tuple[EvaluationLog, object]:
    rows_file = tmp_path / "run-evaluations.json"
    rows_file.write_text("{}")
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - outcome() closes it
    process = subprocess.Popen([sys.executable, "-c", code], stderr=errors)
    return EvaluationLog("wandb", process, rows_file, errors), rows_file


def test_a_failed_evaluation_log_says_how_and_leaves_no_rows_file(tmp_path):
    logging, rows_file = _log_of(tmp_path, "import sys; sys.stderr.write('no space'); sys.exit(3)")
    assert logging.outcome() == "wandb logging exited 3: no space"
    assert not rows_file.exists() and logging.errors.closed


def test_a_stuck_evaluation_log_is_killed_at_its_timeout(tmp_path):
    logging, rows_file = _log_of(tmp_path, "import time; time.sleep(60)")
    assert logging.outcome(timeout_s=0.5) == "wandb logging failed: still running after 0.5 s"
    assert logging.process.returncode is not None and not rows_file.exists()


def test_nothing_to_log_or_no_tracker_starts_no_process(tmp_path):
    assert start_evaluation_log("wandb", tmp_path, "run", []).outcome() is None
    unavailable = start_evaluation_log("none", tmp_path, "run", [{"step": 0}])
    assert unavailable.process is None
    assert unavailable.outcome() == "none is not available here"


def test_the_tracker_service_starts_early_only_for_wandb_already_imported(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert start_tracker_service("trackio") is None
    assert start_tracker_service("none") is None
    monkeypatch.setitem(sys.modules, "wandb", None)
    assert start_tracker_service("wandb") is None
    monkeypatch.delitem(sys.modules, "wandb")
    assert start_tracker_service("wandb") is None


def test_a_started_tracker_service_is_the_one_the_run_opens_on(tmp_path):
    # In a process of its own: wandb's service and settings belong to the process.
    code = (
        "import wandb\n"
        "from wandb.sdk import wandb_setup\n"
        "from postlab.tools.tracking.trackers import start_tracker_service\n"
        "thread = start_tracker_service('wandb')\n"
        "thread.join(60)\n"
        "service = wandb_setup.singleton().assert_service()\n"
        "run = wandb.init(project='p', name='n')\n"
        "run.log({'x': 1})\n"
        "run.finish()\n"
        "assert wandb_setup.singleton().assert_service() is service\n"
        "print('ok')\n"
    )
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
