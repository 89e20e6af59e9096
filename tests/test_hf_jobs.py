"""Training on Hugging Face Jobs, against a stand-in that runs each job's command here: one job
per iteration, the spend gate, failures and timeouts as data, and a killed run re-attaching."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from huggingface_hub import HfApi
from support.jobs_server import JobsServer

from postlab.agents.trainer import cancel_in_flight
from postlab.graph.runner import run_lab
from postlab.records.artifacts import FailureInfo, JobHandle, RemoteTraining
from postlab.records.hyper import Hyper
from postlab.records.steps import WAIT_ACTION, Plan
from postlab.tools.compute.hf_jobs import JOB_FILE, _on_the_job_machine, wait
from postlab.tools.compute.placement import choose_compute

SMALL = {"train_steps": 2, "train_size": 24, "eval_limit": 4, "batch_size": 4,
         "max_iterations": 2, "tracker": "none"}  # fmt: skip


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    """The stand-in Hub with Jobs, reached as the real one would be (HF_ENDPOINT, HF_TOKEN)."""
    with JobsServer(tmp_path / "hub") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", server.token)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False, raising=False)
        monkeypatch.setattr("postlab.tools.compute.hf_jobs.POLL_S", 0.3)
        yield server


def _lab(tiny_model, run_dir, events=None, budget=30, **options):
    output = run_lab({"task": "addition_2d", "model": str(tiny_model), "budget": budget,
                      "run_dir": str(run_dir), "options": {**SMALL, **options}},
                     on_event=events.append if events is not None else None)  # fmt: skip
    return output, json.loads((run_dir / "summary.json").read_text())


def test_each_iteration_trains_as_one_job_and_its_checkpoint_comes_back(
    jobs, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr("postlab.tools.compute.hf_jobs.WAIT_WINDOW_S", 0.5)
    events = []
    jobs.unavailable_reads = 2  # a blip of the service while the first job runs is waited out
    output, summary = _lab(tiny_model, tmp_path / "run", events, compute="hf-jobs", approve_spend=5)
    # The graph watched each job over several short checkpointed steps, not in one blocking
    # call, and those waits were paid from the time budget, not the step budget.
    decided = [(d["directive"] or {}).get("action") for d in summary["decisions"]]
    waits = decided.count(WAIT_ACTION)
    assert waits >= 3, "the job was watched in one blocking call"
    agent_steps = sum(d["next"] != "finalize" for d in summary["decisions"])
    assert summary["steps_used"] == agent_steps - waits
    finished_waits = [
        i for i, e in enumerate(events)
        if e.get("type") == "agent_finished" and e.get("action") == WAIT_ACTION
    ]  # fmt: skip
    first_log = next(i for i, e in enumerate(events) if e.get("event") == "log")
    assert first_log < finished_waits[-1], "the job's lines arrived only at its end"
    # The live view counts the budget's steps, and the report folds each job's waits into a line.
    started = [e for e in events if e.get("type") == "agent_started"]
    assert max(e["budget_step"] for e in started) == summary["steps_used"]
    trained = [it for it in summary["iterations"] if it["job"]]
    assert trained and len(jobs.jobs) == len(trained) == len(summary["iterations"])
    for it, job in zip(trained, jobs.jobs, strict=True):
        assert it["job"]["id"] == job.id and job.request["flavor"] == "a10g-small"
        assert job.request["labels"]["postlab-iteration"] == f"iter-{it['iteration']}"
        # The job trained, its checkpoint came back and was scored here on validation.
        assert it["status"] == "evaluated" and it["score"] is not None
        assert it["spend_usd"] > 0
    assert summary["spend_usd"] == pytest.approx(sum(it["spend_usd"] for it in trained))
    spend = [g for g in summary["gate_decisions"] if g["gate"] == "spend"]
    assert spend and all(g["approved"] and "within --approve-spend" in g["note"] for g in spend)
    # The job's own inputs and outputs are in the run's repos on the Hub.
    repo = f"tester/postlab-{summary['run_id']}"
    assert (jobs.root / "datasets" / repo / "iter-1" / "spec.json").is_file()
    assert (jobs.root / "models" / repo / "iter-1" / "out" / "checkpoint" / "config.json").is_file()
    # The job's log lines and its training steps reach the live view as they arrive.
    training = [e for e in events if e.get("type") == "training"]
    assert any(e.get("event") == "log" and e.get("job") == jobs.jobs[0].id for e in training)
    assert [e["step"] for e in training if e.get("event") == "progress"][:2] == [1, 2]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "on Hugging Face Jobs (a10g-small, job" in report and "Paid compute" in report
    assert "→ trainer: waited on the remote job (" in report
    assert report.count("waited on the remote job") == len(trained)


def test_a_job_still_training_when_the_run_stops_is_cancelled(jobs, tmp_path, monkeypatch):
    monkeypatch.setattr("postlab.tools.compute.hf_jobs.WAIT_WINDOW_S", 1.0)
    api = HfApi(endpoint=jobs.url, token=jobs.token)
    started = api.run_job(image="python", command=["python", "-c",
                          "import time; print('step 1', flush=True); time.sleep(120)"],
                          namespace="tester")  # fmt: skip
    handle = JobHandle(job_id=started.id, namespace="tester", flavor="cpu-basic",
                       inputs_repo="tester/x", outputs_repo="tester/x", path="iter-1",
                       usd_per_minute=0.01)  # fmt: skip
    out_dir = tmp_path / "models" / "iter-1"
    out_dir.mkdir(parents=True)
    (out_dir / JOB_FILE).write_text(handle.model_dump_json())
    lines = []
    poll = wait(handle, time.time() + 60, 0, lines.append, out_dir / "train.log")
    # One window, not the whole job: the look comes back while it runs.
    assert poll.stage == "RUNNING" and not poll.timed_out and poll.running_s < 30
    remote = RemoteTraining(job=handle, spec={"output_dir": str(out_dir)},
                            deadline_at=time.time() + 60, compute="hf-jobs")  # fmt: skip
    plan = Plan(iteration=1, technique="sft_full", method="sft", init_checkpoint="base",
                hyper=Hyper(learning_rate=1e-4, max_steps=2, batch_size=4), data_format="sft",
                data_size=8, data_seed=0, reason="test", status="training_remote",
                remote=remote)  # fmt: skip
    note = cancel_in_flight({"plan": plan})
    assert note and "cancelled: the run stopped" in note
    assert jobs.cancels == [started.id] and jobs.jobs[0].stage() == "CANCELED"
    # With its marker gone, a resume trains the iteration again rather than waiting on it.
    assert not (out_dir / JOB_FILE).exists()
    # A job past its deadline comes back marked so (the Trainer cancels it).
    late = api.run_job(image="python", command=["python", "-c", "import time; time.sleep(120)"],
                       namespace="tester")  # fmt: skip
    poll = wait(handle.model_copy(update={"job_id": late.id}), time.time(), 0, lines.append,
                out_dir / "train.log")  # fmt: skip
    assert poll.stage == "RUNNING" and poll.timed_out


def test_spend_beyond_the_allowance_is_rejected_and_runs_nothing(jobs, tiny_model, tmp_path):
    output, summary = _lab(tiny_model, tmp_path / "run", compute="hf-jobs")
    assert jobs.jobs == [] and summary["stop_reason"] == "rejected"
    (gate,) = [g for g in summary["gate_decisions"] if g["gate"] == "spend"]
    assert not gate["approved"] and "exceeds --approve-spend $0.00" in gate["note"]


@pytest.mark.slow
def test_a_failed_job_and_a_job_past_its_time_are_failures_the_lab_reads(
    jobs, tiny_model, tmp_path
):
    jobs.install = "fail"
    _, broken = _lab(tiny_model, tmp_path / "broken", compute="hf-jobs", approve_spend=5,
                     max_iterations=1)  # fmt: skip
    assert broken["iterations"][0]["status"] == "failed"
    assert "pushed nothing back" in broken["iterations"][0]["failure"] or (
        "crash" in broken["iterations"][0]["failure"]
    )
    jobs.install = "ok"
    _, slow = _lab(tiny_model, tmp_path / "slow", compute="hf-jobs", approve_spend=5,
                   max_iterations=1, train_timeout_s=2)  # fmt: skip
    assert slow["iterations"][0]["failure"].startswith("timeout")
    assert jobs.jobs[-1].id in jobs.cancels and jobs.jobs[-1].stage() == "CANCELED"


def test_a_job_machine_with_no_room_is_the_jobs_crash_not_the_labs_full_disk():
    handle = JobHandle(job_id="j1", namespace="me", flavor="t4-small", inputs_repo="me/in",
                       outputs_repo="me/out", path="iter-1", usd_per_minute=0.01)  # fmt: skip
    refused = "OSError: [Errno 28] No space left on device: '/data/iter-1/checkpoint'"
    failure = FailureInfo(kind="disk", message=refused, normalized="x")
    read = _on_the_job_machine(failure, handle)
    # The lab stops only for its own disk (graph.supervisor); this one a larger flavor mends.
    assert read.kind == "crash"
    assert (
        read.message
        == f"job j1's machine had no room on disk (a larger flavor has more): {refused}"
    )
    oom = FailureInfo(kind="oom", message="out of memory", normalized="x")
    assert _on_the_job_machine(oom, handle) == oom and _on_the_job_machine(None, handle) is None


@pytest.mark.slow
def test_a_killed_run_reattaches_to_its_job_instead_of_submitting_another(
    jobs, tiny_model, tmp_path
):
    run_dir = tmp_path / "killed"
    env = {**os.environ, "CI": "1", "WANDB_MODE": "offline"}
    args = ["run", "--task", "addition_2d", "--model", str(tiny_model), "--run-dir", str(run_dir),
            "--train-steps", "2", "--train-size", "24", "--eval-limit", "4", "--batch-size", "4",
            "--max-iterations", "1", "--tracker", "none", "--compute", "hf-jobs",
            "--approve-spend", "5"]  # fmt: skip
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    first = subprocess.Popen([sys.executable, "-m", "postlab.cli", *args], env=env, stdout=log,
                             stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (run_dir / "models" / "iter-1" / "job.json").exists():
        assert first.poll() is None, "the run ended before its job was submitted"
        assert time.monotonic() < deadline, "no job was submitted"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert len(jobs.jobs) == 1 and jobs.jobs[0].stage() == "RUNNING"
    resumed = subprocess.run(
        [sys.executable, "-m", "postlab.cli", "resume", str(run_dir)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert resumed.returncode in (0, 4), resumed.stdout[-2000:] + resumed.stderr[-2000:]
    # The resumed process watched the same job: its log lines reached this process's live view.
    assert f"☁ {jobs.jobs[0].id}" in resumed.stdout
    assert len(jobs.jobs) == 1, "the resumed run submitted a second job"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["iterations"][0]["job"]["id"] == jobs.jobs[0].id
    assert summary["iterations"][0]["status"] == "evaluated"


def test_auto_trains_here_while_the_run_fits_and_proposes_jobs_when_it_does_not():
    here, why = choose_compute("auto", 135e6, "lora")
    assert here == "local" and "GB free here" in why
    away, why = choose_compute("auto", 70e9, "full")  # 70B with Adam: terabytes, not here
    assert away == "hf-jobs:a10g-small" and why.startswith("Hugging Face Jobs")
    assert choose_compute("hf-jobs:l4x1", 135e6, "full") == (
        "hf-jobs:l4x1",
        "hf-jobs:l4x1, as asked",
    )
