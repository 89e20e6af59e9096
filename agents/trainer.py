"""The Trainer: turns the plan into a TrainingSpec, runs it in a subprocess, records the outcome."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from postlab.agents.base import StepResult, iteration_row
from postlab.agents.gates import check_gate, check_spend
from postlab.memory.store import LabMemory
from postlab.records.artifacts import FailureInfo, TrainingResult
from postlab.records.budget import next_step, time_left
from postlab.records.events import emit
from postlab.records.outcomes import AgentOutcome, TrainingRecord
from postlab.records.run import RunOptions
from postlab.records.state import LabState
from postlab.records.steps import Directive, GateDecision, Plan
from postlab.tools.compute.hf_jobs import (
    JOB_FILE,
    JobHandle,
    JobsError,
    cancel,
    estimate_usd,
    flavor_of,
    submit,
    usd_per_minute,
    watch,
)
from postlab.tools.compute.placement import choose_compute
from postlab.tools.io.atomic import write_text_atomic
from postlab.tools.io.rundir import iteration_dir, iteration_label
from postlab.tools.tracking.trackers import tracker_dir
from postlab.tools.training.backends import choose_backend
from postlab.tools.training.devices import sharding_for, training_processes
from postlab.tools.training.failures import normalize_error
from postlab.tools.training.recipes import model_parameters
from postlab.tools.training.runner import run_training
from postlab.tools.training.schedule import OPTIMIZER_STATE_FILE
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


def _on_jobs(
    state: LabState, plan: Plan, spec: TrainingSpec, arguments: dict, step: int, compute: str
) -> tuple[TrainingResult | None, JobHandle | None, float, GateDecision | None]:
    """Train the iteration as a Hugging Face job: the spend gate, then submit (or re-attach to
    the job a killed run left), watch it and fetch its checkpoint. None when spend is refused."""
    marker = Path(spec.output_dir) / JOB_FILE
    decision = None
    handle = None
    try:
        if marker.is_file():
            # Submitted before this process ended: watch that job, never start a second one.
            handle = JobHandle.model_validate_json(marker.read_text())
            emit({"type": "note", "agent": "trainer", "note": f"re-attached to {handle.job_id}"})
        else:
            flavor = flavor_of(compute)
            price = usd_per_minute(flavor)
            estimate = estimate_usd(price, spec.timeout_s)
            decision = check_spend(state, estimate, {**arguments, "flavor": flavor}, step)
            if not decision.approved:
                return None, None, 0.0, decision
            run_id = state.get("run_id", "run")
            handle = submit(spec, run_id, iteration_label(plan.iteration), flavor, price)
            marker.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(marker, handle.model_dump_json(indent=2))
            note = f"job {handle.job_id} on {flavor} (at most ${estimate:.2f}): {handle.url}"
            emit({"type": "note", "agent": "trainer", "note": note})
        deadline = time.monotonic() + spec.timeout_s
        try:
            result, spent = watch(
                handle, spec, deadline, lambda event: emit({"type": "training", **event})
            )
        except KeyboardInterrupt:
            # The run stops: so does its job; a resume submits the iteration again.
            with contextlib.suppress(JobsError):
                cancel(handle)
            marker.unlink(missing_ok=True)
            raise
    except JobsError as error:
        text = str(error)
        failure = FailureInfo(kind="crash", message=text, normalized=normalize_error(text))
        return TrainingResult(status="failed", failure=failure), handle, 0.0, decision
    return result, handle, spent, decision


def train(state: LabState, directive: Directive, memory: LabMemory) -> StepResult:
    """Run the plan's training; record the attempt and its outcome in state and memory."""
    plan = state["plan"]
    spec = spec_for(state, plan)
    cost = spec.max_steps * spec.batch_size * spec.grad_accum * spec.num_processes
    step = next_step(state)
    arguments = {"iteration": plan.iteration, **plan.arguments("train")}
    gate = check_gate(state, "train", cost, arguments, step)
    decisions = [gate] if gate else []
    compute, compute_reason = choose_compute(
        state["run_options"].compute, model_parameters(plan.init_checkpoint), spec.adapter
    )
    if gate is None or gate.approved:
        job, spent = None, 0.0
        if compute == "local":
            result = run_training(
                spec, on_progress=lambda event: emit({"type": "training", **event})
            )
        else:
            result, job, spent, spend = _on_jobs(state, plan, spec, arguments, step, compute)
            decisions += [spend] if spend else []
            gate = spend if spend and not spend.approved else gate
    gated = {"gate_decisions": decisions} if decisions else {}
    if gate is not None and not gate.approved:
        summary = f"training of iteration {plan.iteration} rejected ({gate.by}): {gate.note}"
        outcome = AgentOutcome(status="failed", summary=summary, error_kind="rejected")
        return StepResult(outcome, {"plan": plan.model_copy(update={"status": "failed"}), **gated})
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
            "compute": compute_reason,
        }
    )
    if result.status == "ok":
        loss = result.metrics.get("final_loss", float("nan"))
        summary = f"trained {described}: final loss {loss:.3f} in {result.wall_s:.0f}s"
        memory.add(
            "experiments", f"Iteration {plan.iteration}: {summary}", {"iteration": plan.iteration}
        )
        updated = plan.model_copy(update={"checkpoint": result.checkpoint, "status": "needs_eval"})
        outcome = AgentOutcome(summary=summary)
    else:
        failure = result.failure
        summary = f"{described} failed: {failure.kind}"
        memory.add(
            "failures",
            f"Iteration {plan.iteration}: {summary}. {failure.message[-400:]}",
            {"iteration": plan.iteration, "kind": failure.kind},
        )
        iteration.failure = f"{failure.kind}: {failure.normalized[:200]}"
        updated = plan.model_copy(update={"status": "failed", "attempts": plan.attempts + 1})
        outcome = AgentOutcome(
            status="failed",
            summary=summary,
            error_kind=failure.kind,
            error=failure.message,
            error_normalized=failure.normalized,
        )
    update = {"runs": [record], "plan": updated, "iterations": [iteration], **gated}
    return StepResult(outcome, update)
