"""The Trainer: turns the plan into a TrainingSpec, runs it in a subprocess, records the outcome."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from postlab.agents.base import StepResult, iteration_row
from postlab.agents.gates import check_gate, check_spend
from postlab.memory.store import LabMemory
from postlab.records.artifacts import FailureInfo, JobHandle, RemoteTraining, TrainingResult
from postlab.records.budget import next_step, time_left
from postlab.records.events import emit
from postlab.records.outcomes import AgentOutcome, TrainingRecord
from postlab.records.run import RunOptions
from postlab.records.state import LabState
from postlab.records.steps import WAIT_ACTION, Directive, GateDecision, Plan
from postlab.tools.compute.hf_jobs import (
    JOB_FILE,
    JobsError,
    cancel,
    collect,
    estimate_usd,
    flavor_of,
    submit,
    usd_per_minute,
    wait,
)
from postlab.tools.compute.placement import choose_compute
from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.io.rundir import iteration_dir, iteration_label
from postlab.tools.tracking.trackers import tracker_dir
from postlab.tools.training.backends import choose_backend
from postlab.tools.training.devices import sharding_for, training_processes
from postlab.tools.training.failures import LOG_FILE, normalize_error
from postlab.tools.training.recipes import model_parameters
from postlab.tools.training.runner import run_training
from postlab.tools.training.schedule import OPTIMIZER_STATE_FILE, optimizer_state_failure
from postlab.tools.training.spec import TrainingSpec

SYSTEM_PROMPT = (
    "You are the Trainer of a post-training lab. Turn the supervisor's plan into one training "
    "run with TRL (SFT, DPO, ORPO or GRPO, LoRA or full), watch it, and report metrics or the "
    "classified failure. Never retry blindly: a failure goes back to the supervisor as data."
)


def spec_for(state: LabState, plan: Plan) -> TrainingSpec:
    """The TrainingSpec of an iteration: plan hyper-parameters plus run-level settings."""
    options: RunOptions = state["run_options"]
    task_dir = state.get("task_dir")
    run_dir = Path(state["run_dir"])
    resumed = plan.optimizer_from
    processes = training_processes(options.num_processes)
    sharding, sharding_reason = sharding_for(
        processes, plan.hyper.adapter, model_parameters(plan.init_checkpoint)
    )
    # A sharded optimiser has no single state file to hand on: FSDP runs start their own.
    carries_optimizer = plan.hyper.adapter == "full" and sharding == "ddp"
    backend, backend_reason = choose_backend(options.backend, plan.method, plan.init_checkpoint)
    fields = plan.hyper.spec_fields()
    # The step's batch is shared among the processes (each takes its part of the rows).
    fields["batch_size"] = max(1, plan.hyper.batch_size // processes)
    return TrainingSpec(
        method=plan.method,
        base_model=plan.init_checkpoint,
        dataset_path=plan.dataset_path or "",
        output_dir=str(iteration_dir(run_dir, plan.iteration)),
        seed=options.seed + plan.iteration,
        task=None if task_dir else state.get("task"),
        task_dir=task_dir,
        # A wall-clock budget caps the run in flight too, so the lab can still finalize in time.
        timeout_s=max(1.0, min(options.train_timeout_s, time_left(state) or float("inf"))),
        run_name=f"{state.get('run_id', 'run')}-{iteration_label(plan.iteration)}",
        use_unsloth=backend == "unsloth",
        backend_reason=backend_reason,
        tracker=options.tracker,
        tracker_dir=str(
            tracker_dir(options.tracker, run_dir, iteration_dir(run_dir, plan.iteration))
        ),
        # A curriculum's order is its point: the optimiser must see rows as built.
        train_sampling="sequential" if plan.data_recipe == "curriculum" else "random",
        schedule_offset=plan.schedule_offset,
        schedule_steps=plan.schedule_steps,
        optimizer_state=(
            str(iteration_dir(run_dir, resumed) / OPTIMIZER_STATE_FILE)
            if resumed and carries_optimizer
            else None
        ),
        # Full fine-tuning hands its Adam moments to a continuation (an adapter starts anew);
        # the run's last iteration has none to hand them to.
        save_optimizer=carries_optimizer and plan.iteration < options.max_iterations,
        num_processes=processes,
        sharding=sharding,
        sharding_reason=sharding_reason,
        **fields,
    )


def _rejected(plan: Plan, gate: GateDecision, gated: dict) -> StepResult:
    summary = f"training of iteration {plan.iteration} rejected ({gate.by}): {gate.note}"
    outcome = AgentOutcome(status="failed", summary=summary, error_kind="rejected")
    return StepResult(outcome, {"plan": plan.model_copy(update={"status": "failed"}), **gated})


def _submit(
    state: LabState,
    plan: Plan,
    spec: TrainingSpec,
    arguments: dict,
    step: int,
    compute: str,
    compute_reason: str,
) -> tuple[RemoteTraining | None, GateDecision | None]:
    """Start the iteration as a Hugging Face job behind the spend gate, or re-attach to the job
    a killed run left; the job to wait on (None when spend is refused) and the spend decision."""
    marker = Path(spec.output_dir) / JOB_FILE
    decision = None
    if marker.is_file():
        # Submitted before this process ended: wait on that job, never start a second one.
        handle = JobHandle.model_validate_json(marker.read_text())
        emit({"type": "note", "agent": "trainer", "note": f"re-attached to {handle.job_id}"})
    else:
        flavor = flavor_of(compute)
        price = usd_per_minute(flavor)
        estimate = estimate_usd(price, spec.timeout_s)
        decision = check_spend(state, estimate, {**arguments, "flavor": flavor}, step)
        if not decision.approved:
            return None, decision
        run_id = state.get("run_id", "run")
        handle = submit(spec, run_id, iteration_label(plan.iteration), flavor, price)
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(marker, handle.model_dump_json(indent=2))
        note = f"job {handle.job_id} on {flavor} (at most ${estimate:.2f}): {handle.url}"
        emit({"type": "note", "agent": "trainer", "note": note})
    remote = RemoteTraining(
        job=handle,
        spec=spec.model_dump(mode="json"),
        deadline_at=time.time() + spec.timeout_s,
        compute=compute_reason,
    )
    return remote, decision


def _jobs_failure(error: JobsError) -> TrainingResult:
    text = str(error)
    failure = FailureInfo(kind="crash", message=text, normalized=normalize_error(text))
    return TrainingResult(status="failed", failure=failure)


def wait_for_job(state: LabState, directive: Directive, memory: LabMemory) -> StepResult:
    """Watch the iteration's job for one window: its log lines to the live view, and when it
    has ended (or outlived its time, and is cancelled) its checkpoint fetched and recorded."""
    plan = state["plan"]
    remote = plan.remote
    spec = TrainingSpec.model_validate(remote.spec)
    out_dir = Path(spec.output_dir)
    handle = remote.job
    if not (out_dir / JOB_FILE).is_file():
        # The lab cancelled this job when an earlier process was stopped: train it again.
        summary = f"job {handle.job_id} was cancelled when the run stopped; training again"
        update = {"status": "needs_training", "remote": None}
        return StepResult(AgentOutcome(summary=summary), {"plan": plan.model_copy(update=update)})
    try:
        poll = wait(
            handle,
            remote.deadline_at,
            remote.logs_seen,
            lambda event: emit({"type": "training", **event}),
            out_dir / LOG_FILE,
        )
    except KeyboardInterrupt:
        # The run stops: so does its job; a resume submits the iteration again.
        with contextlib.suppress(JobsError):
            cancel(handle)
        (out_dir / JOB_FILE).unlink(missing_ok=True)
        raise
    except JobsError as error:
        return _finished(state, memory, plan, spec, _jobs_failure(error), remote.compute, handle)
    if poll.timed_out:
        with contextlib.suppress(JobsError):
            cancel(handle)
    if poll.ended or poll.timed_out:
        result, spent = collect(handle, out_dir, poll)
        return _finished(state, memory, plan, spec, result, remote.compute, handle, spent)
    summary = (
        f"job {handle.job_id} {poll.stage.lower()} for {poll.running_s:.0f}s "
        f"({len(poll.lines)} log lines)"
    )
    waiting = remote.model_copy(update={"logs_seen": len(poll.lines)})
    return StepResult(
        AgentOutcome(summary=summary), {"plan": plan.model_copy(update={"remote": waiting})}
    )


def cancel_in_flight(state: LabState) -> str | None:
    """Cancel the job still training when the run stops (a spent budget, a rejection); what
    was done, or None when no job was in flight."""
    plan = state.get("plan")
    if plan is None or plan.status != "training_remote" or plan.remote is None:
        return None
    handle = plan.remote.job
    try:
        cancel(handle)
    except JobsError as error:
        return f"job {handle.job_id} could not be cancelled when the run stopped: {error}"
    (Path(plan.remote.spec["output_dir"]) / JOB_FILE).unlink(missing_ok=True)
    return f"job {handle.job_id} (iteration {plan.iteration}) cancelled: the run stopped"


def train(state: LabState, directive: Directive, memory: LabMemory) -> StepResult:
    """Run the plan's training here (or submit it as a job and wait in later steps); record
    the attempt and its outcome in state and memory."""
    if directive.action == WAIT_ACTION:
        return wait_for_job(state, directive, memory)
    plan = state["plan"]
    spec = spec_for(state, plan)
    cost = spec.max_steps * spec.batch_size * spec.grad_accum * spec.num_processes
    step = next_step(state)
    arguments = {"iteration": plan.iteration, **plan.arguments("train")}
    gate = check_gate(state, "train", cost, arguments, step)
    decisions = [gate] if gate else []
    if gate is not None and not gate.approved:
        return _rejected(plan, gate, {"gate_decisions": decisions})
    compute, compute_reason = choose_compute(
        state["run_options"].compute, model_parameters(plan.init_checkpoint), spec.adapter
    )
    if compute == "local":
        result = run_training(spec, on_progress=lambda event: emit({"type": "training", **event}))
        finished = _finished(state, memory, plan, spec, result, compute_reason)
        finished.update.update({"gate_decisions": decisions} if decisions else {})
        return finished
    try:
        remote, spend = _submit(state, plan, spec, arguments, step, compute, compute_reason)
    except JobsError as error:
        return _finished(state, memory, plan, spec, _jobs_failure(error), compute_reason)
    decisions += [spend] if spend else []
    gated = {"gate_decisions": decisions} if decisions else {}
    if remote is None:
        return _rejected(plan, spend, gated)
    summary = (
        f"iteration {plan.iteration} training as job {remote.job.job_id} on {remote.job.flavor}"
    )
    update = {"status": "training_remote", "remote": remote}
    return StepResult(
        AgentOutcome(summary=summary), {"plan": plan.model_copy(update=update), **gated}
    )


def _moments_lost(plan: Plan, spec: TrainingSpec, result: TrainingResult) -> str | None:
    """What a stretch that was to resume an optimiser state and found none says of it."""
    if not spec.optimizer_state or result.metrics.get("resumed_optimizer") != 0.0:
        return None
    why = optimizer_state_failure(spec.optimizer_state) or "not found"
    return (
        f"iteration {plan.optimizer_from}'s optimiser state was missing ({why}): this stretch "
        "kept its schedule but began from fresh moments"
    )


def _finished(
    state: LabState,
    memory: LabMemory,
    plan: Plan,
    spec: TrainingSpec,
    result: TrainingResult,
    compute: str,
    job: JobHandle | None = None,
    spent: float = 0.0,
) -> StepResult:
    """The iteration's training record, row and memory entries once its run has ended."""
    record = TrainingRecord(
        iteration=plan.iteration,
        technique=plan.technique,
        spec=spec.model_dump(mode="json"),
        result=result,
    )
    described = (
        f"{plan.technique} ({spec.adapter}, lr {spec.learning_rate:g}, {spec.max_steps} steps, "
        f"batch {spec.batch_size}) from {Path(spec.base_model).name}"
    )
    iteration = iteration_row(state, plan).model_copy(
        update={
            "spec": record.spec,
            "dataset": plan.dataset_path,
            "status": "trained" if result.status == "ok" else "failed",
            "train_s": round(result.wall_s, 1),
            "job": {"id": job.job_id, "flavor": job.flavor, "url": job.url} if job else None,
            "spend_usd": spent,
            "compute": compute,
        }
    )
    done = {"remote": None}
    if result.status == "ok":
        loss = result.metrics.get("final_loss", float("nan"))
        summary = f"trained {described}: final loss {loss:.3f} in {result.wall_s:.0f}s"
        if lost := _moments_lost(plan, spec, result):
            summary += f"; {lost}"
            emit({"type": "note", "agent": "trainer", "note": lost})
        memory.add(
            "experiments", f"Iteration {plan.iteration}: {summary}", {"iteration": plan.iteration}
        )
        updated = plan.model_copy(
            update={**done, "checkpoint": result.checkpoint, "status": "needs_eval"}
        )
        outcome = AgentOutcome(summary=summary)
    else:
        failure = result.failure
        summary = f"{described} failed: {failure.kind}"
        if failure.kind == "disk":
            # The run stops on it (graph.supervisor): its reason says what to free, and where.
            summary += f" ({failure.message.strip().splitlines()[0][:300]})"
        memory.add(
            "failures",
            f"Iteration {plan.iteration}: {summary}. {failure.message[-400:]}",
            {"iteration": plan.iteration, "kind": failure.kind},
        )
        iteration.failure = f"{failure.kind}: {failure.normalized[:200]}"
        updated = plan.model_copy(
            update={**done, "status": "failed", "attempts": plan.attempts + 1}
        )
        outcome = AgentOutcome(
            status="failed",
            summary=summary,
            error_kind=failure.kind,
            error=failure.message,
            error_normalized=failure.normalized,
        )
    return StepResult(outcome, {"runs": [record], "plan": updated, "iterations": [iteration]})
