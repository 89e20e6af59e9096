"""Durable runs: SIGKILL at several points and resume, approval gates across restarts, budgets."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from postlab.tools.training.processes import works_in

CLI = [sys.executable, "-m", "postlab.cli"]
SMALL = [
    "--train-steps",
    "3",
    "--train-size",
    "24",
    "--eval-limit",
    "6",
    "--batch-size",
    "4",
    "--max-iterations",
    "2",
    "--budget",
    "40",
]


def _env():
    return {**os.environ, "CI": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


def _start(*args: str) -> subprocess.Popen:
    # Output goes to a file: an unread pipe would fill up and block the run being tested.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [*CLI, *args], env=_env(), stdout=log, stderr=subprocess.STDOUT, text=True
    )
    proc.log = log
    return proc


def _output(proc: subprocess.Popen) -> str:
    proc.log.seek(0)
    return proc.log.read()


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def _lab_args(tiny_model, run_dir: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--task",
        "addition_2d",
        "--model",
        str(tiny_model),
        "--run-dir",
        str(run_dir),
        *SMALL,
        *extra,
    ]


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240) -> bool:
    """SIGKILL the CLI once `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("kill point never reached")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _trainer_iterations(summary: dict) -> list[int]:
    return [d["step"] for d in summary["decisions"] if d["next"] == "trainer"]


def _workers_alive(run_dir: Path) -> list[int]:
    """Training workers (cold or forked warm) still working in one of the run's folders."""
    folders = [path for path in (run_dir / "models").glob("iter-*") if path.is_dir()]
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and any(works_in(int(entry.name), folder) for folder in folders)
    ]


def test_sigkill_at_several_points_then_resume_matches_an_uninterrupted_run(tiny_model, tmp_path):
    reference = tmp_path / "reference"
    # The uninterrupted run goes on beside the killed one: they share nothing but the model.
    uninterrupted_proc = _start(*_lab_args(tiny_model, reference))

    run_dir = tmp_path / "killed"
    kill_points = [
        ("after the dataset is built", lambda: any((run_dir / "data").glob("*/card.json"))),
        ("mid-training, iteration 1", lambda: (run_dir / "models/iter-1/worker.pid").exists()),
        ("mid-training, iteration 2", lambda: (run_dir / "models/iter-2/worker.pid").exists()),
    ]
    proc = _start(*_lab_args(tiny_model, run_dir))
    history = []
    for name, ready in kill_points:
        killed = _kill_when(proc, ready)
        tail = _output(proc)[-800:]
        history.append(f"{name}: {'killed' if killed else f'exited {proc.returncode}'}\n{tail}")
        proc = _start("resume", str(run_dir))
    proc.wait(timeout=300)
    report = "\n---\n".join(history)
    assert sum(h.split(": ", 1)[1].startswith("killed") for h in history) >= 2, report
    assert proc.returncode in (0, 4), _output(proc)[-2000:]
    uninterrupted_proc.wait(timeout=300)
    assert uninterrupted_proc.returncode in (0, 4), _output(uninterrupted_proc)[-2000:]

    resumed, uninterrupted = _summary(run_dir), _summary(reference)
    # Only the best and the latest checkpoints stay on disk (no --keep-checkpoints).
    latest = f"iter-{len(uninterrupted['iterations'])}"
    kept = {path.parent.name for path in (reference / "models").glob("*/checkpoint")}
    assert latest in kept and kept <= {latest, uninterrupted["best_label"]}
    assert len(resumed["iterations"]) == len(uninterrupted["iterations"])
    assert resumed["stop_reason"] == uninterrupted["stop_reason"]
    # A killed step is redone with the same spec and seed: the same experiments, the same scores.
    assert [it["technique"] for it in resumed["iterations"]] == [
        it["technique"] for it in uninterrupted["iterations"]
    ]
    assert [it["score"] for it in resumed["iterations"]] == [
        it["score"] for it in uninterrupted["iterations"]
    ]
    assert resumed["best_score"] == uninterrupted["best_score"]
    # No training decision repeated: as many trainer steps as the uninterrupted run took.
    assert len(_trainer_iterations(resumed)) == len(_trainer_iterations(uninterrupted))
    assert not _workers_alive(run_dir)
    # Resuming a finished run changes nothing.
    before = (run_dir / "summary.json").read_text()
    again = _run("resume", str(run_dir))
    assert again.returncode == 0 and "already finished" in again.stdout
    assert (run_dir / "summary.json").read_text() == before


@pytest.mark.slow
def test_approval_gate_survives_a_restart(tiny_model, tmp_path):
    run_dir = tmp_path / "gated"
    first = _run(*_lab_args(tiny_model, run_dir, "--approve", "--max-iterations", "1"))
    # The process pauses at the gate and exits: nothing is left running, as after a restart.
    assert first.returncode == 6, first.stdout[-2000:]
    assert "waiting for approval" in first.stdout
    assert not (run_dir / "summary.json").exists()
    approved = _run("resume", str(run_dir), "--approve", "--note", "looks cheap")
    assert approved.returncode in (0, 4), approved.stdout[-2000:]
    summary = _summary(run_dir)
    assert summary["gate_decisions"][0]["by"] == "human"
    assert summary["gate_decisions"][0]["note"] == "looks cheap"
    assert summary["iterations"][0]["status"] == "evaluated"


def test_rejected_gate_stops_with_reason_rejected(tiny_model, tmp_path):
    run_dir = tmp_path / "rejected"
    first = _run(*_lab_args(tiny_model, run_dir, "--approve"))
    assert first.returncode == 6
    assert _run("resume", str(run_dir)).returncode == 2  # waiting: an answer is required
    rejected = _run("resume", str(run_dir), "--reject", "--note", "too costly")
    assert rejected.returncode == 5
    summary = _summary(run_dir)
    assert summary["stop_reason"] == "rejected" and summary["iterations"] == []
    assert "rejected" in (run_dir / "report.md").read_text()


def test_wall_clock_budget_still_finalizes(tiny_model, tmp_path):
    from postlab.graph.runner import run_lab

    run_dir = tmp_path / "timed"
    output = run_lab(
        {
            "task": "addition_2d",
            "model": str(tiny_model),
            "budget": 40,
            "max_time_s": 2.0,
            "run_dir": str(run_dir),
            "options": {"eval_limit": 4, "train_steps": 1, "train_size": 16},
        }
    )
    assert output["stop_reason"] == "budget_time"
    summary = _summary(run_dir)
    assert summary["max_time_s"] == 2.0
    # Spent, or stopped because what was left could not hold another iteration (a fast machine
    # finishes one with time to spare: 1.6 s once on CI).
    too_short = "of the wall-clock budget left; an iteration has taken" in summary["stop_detail"]
    assert summary["wall_s"] >= 2.0 or too_short
    assert (run_dir / "report.md").is_file()


def test_sigterm_mid_training_finalizes_as_interrupted_and_resume_finishes(tiny_model, tmp_path):
    run_dir = tmp_path / "termed"
    proc = _start(*_lab_args(tiny_model, run_dir, "--max-iterations", "1"))
    deadline = time.monotonic() + 240
    while not (run_dir / "models/iter-1/worker.pid").exists():
        assert proc.poll() is None and time.monotonic() < deadline, _output(proc)[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, _output(proc)[-2000:]
    assert f"postlab resume {run_dir.name}" in _output(proc)
    summary = _summary(run_dir)
    assert summary["stop_reason"] == "interrupted" and "postlab resume" in summary["stop_detail"]
    assert summary["baseline_score"] is not None and (run_dir / "report.md").is_file()
    assert not _workers_alive(run_dir)
    resumed = _run("resume", str(run_dir))
    assert resumed.returncode in (0, 4), resumed.stdout[-2000:]
    final = _summary(run_dir)
    assert final["stop_reason"] in ("budget_iterations", "plateau", "target_met"), resumed.stdout
    assert [it["iteration"] for it in final["iterations"]] == [1]
    assert final["iterations"][0]["status"] == "evaluated"


def test_a_step_killed_mid_way_counts_against_the_wall_clock_budget(tmp_path):
    from postlab.agents.base import StepResult, run_agent_step
    from postlab.records.budget import time_used
    from postlab.records.outcomes import AgentOutcome
    from postlab.records.steps import Directive
    from postlab.tools.io.rundir import STEP_MARKER

    # An attempt at step 1 started 100 s ago; its worker last wrote a log line 40 s ago.
    now = time.time()
    (tmp_path / STEP_MARKER).write_text(json.dumps({"step": 1, "started_at": now - 100}))
    log = tmp_path / "models" / "train.log"
    log.parent.mkdir()
    log.write_text("step 3\n")
    os.utime(log, (now - 40, now - 40))
    state = {
        "run_dir": str(tmp_path),
        "trajectory": [],
        "directive": Directive(agent="trainer", action="train", reason="r"),
    }

    def body(state, directive, memory):
        return StepResult(AgentOutcome(summary="trained"))

    update = run_agent_step(state, "trainer", body, memory=None).update
    assert 59 <= update["lost_s"] <= 61
    assert time_used({**state, **update}) >= 59
    assert not (tmp_path / STEP_MARKER).exists()
    # A finished step leaves no marker, so the next step loses nothing.
    again = run_agent_step({**state, **update}, "trainer", body, memory=None).update
    assert "lost_s" not in again


def test_superseded_checkpoints_are_removed_best_and_latest_kept(tmp_path):
    from postlab.tools.io.removal import wait_for_removals
    from postlab.tools.io.rundir import prune_checkpoints

    for k in (1, 2, 3):
        (tmp_path / "models" / f"iter-{k}" / "checkpoint").mkdir(parents=True)
        (tmp_path / "models" / f"iter-{k}" / "train.log").write_text("log")
    best, latest = (tmp_path / "models" / f"iter-{k}" / "checkpoint" for k in (1, 3))
    assert prune_checkpoints(tmp_path, {str(best), str(latest)}) == ["iter-2"]
    assert best.is_dir() and latest.is_dir()
    assert not (tmp_path / "models/iter-2/checkpoint").exists()
    assert (tmp_path / "models/iter-2/train.log").is_file()  # the record of it stays
    wait_for_removals()
    assert [path.name for path in (tmp_path / "models/iter-2").iterdir()] == ["train.log"]
