"""Hugging Face Jobs as a place to train: price, submit, watch, cancel and fetch back.

An iteration's inputs (its TrainingSpec, dataset, starting checkpoint and optimiser state) go
to a private dataset repo of the run, under `iter-N/`; a job runs `job_entry` there, which trains
with the same runner and worker as a local run and pushes the iteration's folder to the run's
model repo, from where the lab fetches it back. Every call goes through huggingface_hub (its
endpoint and token: HF_ENDPOINT, HF_TOKEN), so a stand-in server can answer in tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from huggingface_hub import HfApi, get_token, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from pydantic import BaseModel

from postlab.records.artifacts import FailureInfo, JobHandle, TrainingResult
from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.io.offline import HUB_ENDPOINT_ENV
from postlab.tools.io.rundir import CHECKPOINT_DIR
from postlab.tools.training.failures import (
    LOG_FILE,
    RESULT_FILE,
    SPEC_FILE,
    classify_failure,
    normalize_error,
    parse_event,
)
from postlab.tools.training.schedule import OPTIMIZER_STATE_FILE, await_optimizer_state
from postlab.tools.training.spec import TrainingSpec

# A GPU a 0.5–8B LoRA run fits on; `--compute hf-jobs:FLAVOR` picks another.
DEFAULT_FLAVOR = "a10g-small"
# CUDA, PyTorch and Python in one image; the job installs postlab into it.
JOB_IMAGE = "pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime"
# What the job installs (a version on PyPI; POSTLAB_JOB_INSTALL may name a wheel URL or git ref).
INSTALL_ENV = "POSTLAB_JOB_INSTALL"
JOB_FILE = "job.json"
# The handshake with the job (tools.compute.job_entry): which repos and folder it reads and
# writes, and the subfolder its training output goes back in.
INPUTS_ENV = "POSTLAB_JOB_INPUTS"
OUTPUTS_ENV = "POSTLAB_JOB_OUTPUTS"
PATH_ENV = "POSTLAB_JOB_PATH"
OUTPUT_SUBDIR = "out"
POLL_S = 5.0
# How long one of the Trainer's wait steps watches a job before the graph checkpoints and
# routes again (a stop, a budget or a guard can act between windows).
WAIT_WINDOW_S = 60.0
# Polls in a row the service may fail before the lab gives the job up (and cancels it).
UNREACHABLE_POLLS = 6
TERMINAL = ("COMPLETED", "ERROR", "CANCELED", "DELETED")


class JobsError(RuntimeError):
    """The Jobs service refused or failed a call (auth, unknown flavour, unreachable)."""


def flavor_of(compute: str) -> str:
    """The hardware flavour a `--compute` value names (hf-jobs:FLAVOR, or the default)."""
    _, _, flavor = compute.partition(":")
    return flavor or DEFAULT_FLAVOR


def hub_endpoint() -> str | None:
    """The Hub the lab talks to, read when called (HF_ENDPOINT; None: huggingface_hub's own)."""
    return os.environ.get(HUB_ENDPOINT_ENV) or None


def _api() -> HfApi:
    return HfApi(endpoint=hub_endpoint())


def _call(what: str, action: Callable):
    try:
        return action()
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise JobsError(f"Hugging Face Jobs: {what} failed (HTTP {status}): {error}") from error
    except (OSError, ValueError) as error:  # unreachable, or an answer that does not parse
        raise JobsError(f"Hugging Face Jobs: {what} failed: {error}") from error


def usd_per_minute(flavor: str) -> float:
    """The flavour's list price in USD per minute (from the Jobs hardware list)."""
    hardware = _call("listing hardware", lambda: _api().list_jobs_hardware())
    for item in hardware:
        if item.name == flavor:
            per_unit = float(item.unit_cost_usd)
            return per_unit / 60 if item.unit_label.startswith("hour") else per_unit
    names = ", ".join(item.name for item in hardware)
    raise JobsError(f"unknown Jobs flavour {flavor!r} (available: {names})")


def estimate_usd(price_per_minute: float, timeout_s: float) -> float:
    """The most a job can cost: its price for the whole timeout."""
    return round(price_per_minute * timeout_s / 60, 4)


def _stage_inputs(spec: TrainingSpec, folder: Path) -> TrainingSpec:
    """Copy what the job needs into `folder`; the spec as the job will read it (relative paths)."""
    shutil.copytree(spec.dataset_path, folder / "dataset")
    changes: dict = {"dataset_path": "dataset", "output_dir": OUTPUT_SUBDIR, "tracker": "none"}
    base = Path(spec.base_model)
    if base.is_dir():  # a local checkpoint travels; a Hub model id is downloaded by the job
        shutil.copytree(base, folder / "init", ignore=shutil.ignore_patterns(OPTIMIZER_STATE_FILE))
        changes["base_model"] = "init"
    if spec.optimizer_state and await_optimizer_state(Path(spec.optimizer_state)):
        shutil.copy2(spec.optimizer_state, folder / OPTIMIZER_STATE_FILE)
        changes["optimizer_state"] = OPTIMIZER_STATE_FILE
    job_spec = spec.model_copy(update=changes)
    (folder / SPEC_FILE).write_text(job_spec.model_dump_json(indent=2))
    return job_spec


def job_command() -> list[str]:
    """The job's command: install this postlab version, then run the iteration's training."""
    install = os.environ.get(INSTALL_ENV) or f"postlab=={version('postlab')}"
    return [
        "bash",
        "-c",
        f"pip install -q '{install}' && python -m postlab.tools.compute.job_entry",
    ]


def submit(
    spec: TrainingSpec, run_id: str, iteration_label: str, flavor: str, price: float
) -> JobHandle:
    """Upload the iteration's inputs and start its job; the handle to watch it by."""
    api = _api()
    namespace = _call("reading the account", lambda: api.whoami()["name"])
    repo = f"{namespace}/postlab-{run_id}"
    for kind in ("dataset", "model"):
        _call(
            f"creating the {kind} repo {repo}",
            lambda kind=kind: api.create_repo(repo, repo_type=kind, private=True, exist_ok=True),
        )
    with tempfile.TemporaryDirectory(prefix="postlab-job-") as staging:
        _stage_inputs(spec, Path(staging))
        _call(
            "uploading the iteration's inputs",
            lambda: api.upload_folder(
                repo_id=repo,
                repo_type="dataset",
                folder_path=staging,
                path_in_repo=iteration_label,
                commit_message=f"{run_id} {iteration_label}: training inputs",
            ),
        )
    job = _call(
        "submitting the job",
        lambda: api.run_job(
            image=JOB_IMAGE,
            command=job_command(),
            env={
                INPUTS_ENV: repo,
                OUTPUTS_ENV: repo,
                PATH_ENV: iteration_label,
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            },
            secrets={"HF_TOKEN": get_token() or ""},
            flavor=flavor,
            timeout=int(spec.timeout_s),
            labels={"postlab-run": run_id, "postlab-iteration": iteration_label},
            namespace=namespace,
        ),
    )
    return JobHandle(
        job_id=job.id,
        namespace=namespace,
        flavor=flavor,
        inputs_repo=repo,
        outputs_repo=repo,
        path=iteration_label,
        usd_per_minute=price,
        url=getattr(job, "url", ""),
    )


def cancel(handle: JobHandle) -> None:
    """Stop the job (nothing happens for one already ended)."""
    api = _api()
    _call(
        "cancelling the job",
        lambda: api.cancel_job(job_id=handle.job_id, namespace=handle.namespace),
    )


def _fetch_outputs(handle: JobHandle, out_dir: Path) -> None:
    """The iteration folder the job pushed, copied into `out_dir`."""
    with tempfile.TemporaryDirectory(prefix="postlab-job-out-") as landing:
        _call(
            "fetching the trained checkpoint",
            lambda: snapshot_download(
                handle.outputs_repo,
                repo_type="model",
                allow_patterns=[f"{handle.path}/{OUTPUT_SUBDIR}/**"],
                local_dir=landing,
                endpoint=hub_endpoint(),
            ),
        )
        pushed = Path(landing) / handle.path / OUTPUT_SUBDIR
        if not pushed.is_dir():
            raise JobsError(f"job {handle.job_id} pushed nothing back to {handle.outputs_repo}")
        shutil.copytree(pushed, out_dir, dirs_exist_ok=True)


class JobPoll(BaseModel):
    """What one look at a job found: its stage, the service's message, its running time and
    every log line so far."""

    stage: str
    message: str = ""
    running_s: float = 0.0
    lines: list[str] = []
    # Still running at its deadline (the caller cancels it).
    timed_out: bool = False

    @property
    def ended(self) -> bool:
        """Whether the job has stopped for good."""
        return self.stage in TERMINAL


def _look(api: HfApi, handle: JobHandle) -> JobPoll:
    info = _call(
        "reading the job", lambda: api.inspect_job(job_id=handle.job_id, namespace=handle.namespace)
    )
    lines = _call(
        "reading the job's logs",
        lambda: list(
            api.fetch_job_logs(job_id=handle.job_id, namespace=handle.namespace, follow=False)
        ),
    )
    running = info.durations.running_secs if info.durations is not None else None
    return JobPoll(
        stage=str(info.status.stage),
        message=info.status.message or "",
        running_s=float(running or 0.0),
        lines=lines,
    )


def wait(
    handle: JobHandle,
    deadline_at: float,
    seen: int,
    on_event: Callable[[dict], None],
    log_path: Path,
) -> JobPoll:
    """Poll the job for one window (WAIT_WINDOW_S) or until it ends or reaches its deadline
    (epoch seconds), passing its log lines after the first `seen` on as events and keeping them
    all in `log_path`; the last look."""
    api = _api()
    until = time.monotonic() + max(0.0, min(WAIT_WINDOW_S, deadline_at - time.time()))
    misses = 0
    while True:
        try:
            poll = _look(api, handle)
        except JobsError as error:
            # A blip of the service is waited out; a lasting one stops the job it cannot watch.
            misses += 1
            if misses >= UNREACHABLE_POLLS:
                with contextlib.suppress(JobsError):
                    cancel(handle)
                raise JobsError(f"{error} ({misses} polls in a row; job cancelled)") from error
            time.sleep(POLL_S)
            continue
        misses = 0
        for line in poll.lines[seen:]:
            event = parse_event(line)
            on_event(
                event if event is not None else {"event": "log", "line": line, "job": handle.job_id}
            )
        if len(poll.lines) > seen:  # the log is rewritten only when it has grown
            log_path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(log_path, "\n".join(poll.lines) + "\n")
        seen = max(seen, len(poll.lines))
        if poll.ended or time.monotonic() + POLL_S >= until:
            poll.timed_out = not poll.ended and time.time() + POLL_S >= deadline_at
            return poll
        time.sleep(POLL_S)


def collect(handle: JobHandle, out_dir: Path, poll: JobPoll) -> tuple[TrainingResult, float]:
    """An ended (or timed-out and cancelled) job's result, its checkpoint fetched into
    `out_dir`, and what it cost."""
    log_path = out_dir / LOG_FILE
    lines = list(poll.lines)
    if poll.timed_out:
        lines.append(f"[postlab] timeout: job {handle.job_id} cancelled")
    spent = round(handle.usd_per_minute * poll.running_s / 60, 4)
    if poll.stage in ("COMPLETED", "ERROR"):
        # A job whose training failed still pushes its folder: the worker's own verdict wins.
        try:
            _fetch_outputs(handle, out_dir)
        except JobsError as error:
            lines.append(f"[postlab] {error}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(log_path, "\n".join(lines) + "\n")
    result_file = out_dir / RESULT_FILE
    if poll.stage in ("COMPLETED", "ERROR") and result_file.is_file():
        result = TrainingResult.model_validate_json(result_file.read_text())
        if result.status == "ok":
            result.checkpoint = str(out_dir / CHECKPOINT_DIR)
        result.log_path = str(log_path)
        result.failure = _on_the_job_machine(result.failure, handle)
        return result, spent
    message = [f"job {poll.stage}: {poll.message}"] if poll.message else []
    tail = "\n".join(lines[-40:] + message)
    if poll.stage == "CANCELED" and not poll.timed_out:
        text = f"job {handle.job_id} was cancelled outside the lab"
        failure = FailureInfo(kind="crash", message=text, normalized=normalize_error(text))
    else:
        failure = _on_the_job_machine(classify_failure(None, tail, poll.timed_out), handle)
    return TrainingResult(status="failed", failure=failure, log_path=str(log_path)), spent


def _on_the_job_machine(failure: FailureInfo | None, handle: JobHandle) -> FailureInfo | None:
    """A job's failure as the lab reads it: a full disk on the job's machine is no disk the user
    can free (the lab stops on its own full disk), so it is the job's crash, saying so."""
    if failure is None or failure.kind != "disk":
        return failure
    text = f"job {handle.job_id}'s machine had no room on disk (a larger flavor has more): "
    return failure.model_copy(update={"kind": "crash", "message": text + failure.message})
