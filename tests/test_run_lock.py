"""One writer per run: a second process on the same run is refused, a dead holder's lock is not."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from postlab.cli.app import app
from postlab.graph.runner import resume_lab
from postlab.tools.io.run_lock import HOLDER_FILE, LOCK_FILE, RunLocked, hold_run

HOLD = """
import sys, time
from pathlib import Path
from postlab.tools.io.run_lock import hold_run
with hold_run(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held_run(tmp_path):
    """A run directory whose lock another live process holds."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    yield run_dir, holder.pid
    holder.kill()
    holder.wait()


def test_a_second_process_on_a_held_run_is_refused_naming_the_holder(held_run):
    run_dir, pid = held_run
    with pytest.raises(RunLocked, match=f"in use by pid {pid} on "):
        resume_lab(run_dir)
    (run_dir / "run.json").write_text("{}")
    result = CliRunner().invoke(app, ["resume", str(run_dir)])
    assert result.exit_code == 2 and f"in use by pid {pid}" in result.output


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    holder.kill()
    holder.wait()
    assert (run_dir / LOCK_FILE).exists()
    # A holder record a killed process could not remove: stale, and overwritten.
    (run_dir / HOLDER_FILE).write_text(json.dumps({"pid": holder.pid, "host": "h", "since": "t"}))
    with hold_run(run_dir):
        record = json.loads((run_dir / HOLDER_FILE).read_text())
        assert record["pid"] != holder.pid
    assert not (run_dir / HOLDER_FILE).exists()


def test_two_simultaneous_holders_exactly_one_proceeds(tmp_path):
    run_dir = tmp_path / "run"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD.replace("60", "3"), str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [racer.communicate(timeout=60) for racer in racers]
    held = [out for out, _ in outcomes if out.strip() == "held"]
    refused = [err for _, err in outcomes if "RunLocked" in err]
    assert len(held) == 1 and len(refused) == 1, outcomes
