"""The last node: summary.json, report.md with its plot, and the output every caller gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postlab.agents.librarian import file_lessons
from postlab.agents.trainer import cancel_in_flight
from postlab.records.budget import budget_of, steps_used, time_used
from postlab.records.outcomes import BestModel, EvaluationRecord, SplitScore, binomial_stderr
from postlab.records.run import StopReason
from postlab.records.state import LabOutput, LabState
from postlab.records.usage import usage_by_agent
from postlab.tools.io.removal import remove_left_aside, wait_for_removals
from postlab.tools.io.rundir import MODELS_DIR, SUMMARY_FILE, write_run_json
from postlab.tools.reporting.figures import draw_plots
from postlab.tools.reporting.markdown import write_report
from postlab.tools.reporting.provenance import package_versions, source_revision
from postlab.tools.tracking.trackers import EvaluationLog, start_evaluation_log, where_to_look
from postlab.tools.training.schedule import prune_optimizer_states
from postlab.tools.training.worker_start import start_python


def _loop_pattern(state: LabState) -> str | None:
    events = state.get("guard_events") or []
    if state.get("stop_reason") in ("loop", "plateau") and events:
        return events[-1].pattern
    return None


def _scores(
    prefix: str, test: SplitScore | None, validation: EvaluationRecord | BestModel | None
) -> dict[str, Any]:
    """Test and validation scores of the baseline or the best, each with its standard error."""
    val_n = validation.n if validation else 0
    val = validation.strict if validation else None
    return {
        f"{prefix}_score": test.strict if test else None,
        f"{prefix}_lenient": test.lenient if test else None,
        f"{prefix}_stderr": round(test.stderr, 4) if test else None,
        f"{prefix}_test_n": test.n if test else None,
        f"{prefix}_val_score": val,
        f"{prefix}_val_stderr": round(binomial_stderr(val, val_n), 4) if val is not None else None,
        f"{prefix}_val_n": val_n or None,
    }


def build_summary(state: LabState) -> dict[str, Any]:
    """Everything a user or script needs to know about a finished run, as plain JSON data."""
    baseline = state.get("baseline")
    best = state.get("best")
    budget = budget_of(state)
    evaluations = state.get("evaluations") or []
    best_eval = next((e for e in evaluations if best and e.label == best.label), None)
    options = state.get("run_options")
    constant = state.get("constant_answer")
    return {
        "run_id": state.get("run_id"),
        "goal": state.get("goal", ""),
        "task": state.get("task"),
        "task_dir": state.get("task_dir"),
        "base_model": state.get("model"),
        "base_model_path": state.get("base_model_path"),
        # Reported scores are test; validation picked the best, so it is shown beside, not instead.
        **_scores("baseline", baseline.test if baseline else None, baseline),
        **_scores("best", best.test if best else None, best),
        "splits": {
            "decisions": "validation",
            "reported": "test (baseline and the validation-selected best only)",
            # Who scored test: the task's own split, or an external command (--eval-cmd).
            "test_judge": (options.eval_cmd if options else None) or "the task's test split",
        },
        "target_score": options.target_score if options else None,
        "options": options.model_dump(mode="json") if options else None,
        "versions": package_versions(),
        "source_revision": source_revision(),
        # On a label task, one answer given to everything: the floor the scores above must clear.
        "constant_answer": constant.model_dump(mode="json") if constant else None,
        "best_label": best.label if best else None,
        # Why the best is not the highest validation score, when it took the place by a hold.
        "best_held": best.held.model_dump(mode="json") if best and best.held else None,
        # A best a label phase set aside and the run's end restored: the best it was set aside for.
        "best_restored_over": best.restored_over if best else None,
        "best_checkpoint": best.checkpoint if best else None,
        "steps_used": steps_used(state),
        "budget": budget.steps,
        "max_time_s": budget.max_time_s,
        "wall_s": round(time_used(state), 1),
        "spend_usd": round(sum(it.spend_usd for it in state.get("iterations") or []), 4),
        "stop_reason": state.get("stop_reason"),
        "stop_detail": state.get("stop_detail", ""),
        "loop_pattern": _loop_pattern(state),
        "iterations": [it.model_dump(mode="json") for it in state.get("iterations") or []],
        "evaluations": [e.model_dump(mode="json", exclude={"failures"}) for e in evaluations],
        "findings": [f.model_dump(mode="json") for f in state.get("findings") or []],
        "datasets": [
            d.model_dump(mode="json", exclude={"sample"}) for d in state.get("datasets") or []
        ],
        "decisions": [d.model_dump(mode="json") for d in state.get("decisions") or []],
        # Every agent step with its wall time: where a run's time went, beyond its scores.
        "steps": [
            s.model_dump(mode="json", exclude={"signature"}) for s in state.get("trajectory") or []
        ],
        "guard_events": [g.model_dump(mode="json") for g in state.get("guard_events") or []],
        "source_notes": list(dict.fromkeys(state.get("notes") or [])),
        "llm_usage": usage_by_agent(state.get("llm_usage") or []),
        "fallbacks": [f.model_dump(mode="json") for f in state.get("fallbacks") or []],
        "gate_decisions": [g.model_dump(mode="json") for g in state.get("gate_decisions") or []],
        "error_analysis": [f.model_dump(mode="json") for f in best_eval.failures]
        if best_eval
        else [],
        "best_misses": sum(v for k, v in best_eval.error_categories.items() if k != "correct")
        if best_eval
        else None,
    }


def tracker_rows(state: LabState) -> list[dict[str, Any]]:
    """The lab's evaluations as tracker rows, one per iteration (validation; test where scored)."""
    rows: dict[int, dict[str, Any]] = {}
    for record in state.get("evaluations") or []:
        rows[record.iteration] = {
            "step": record.iteration,
            "validation/strict": record.strict,
            "validation/lenient": record.lenient,
        }
    for scored in (state.get("baseline"), state.get("best")):
        if scored is not None and scored.test is not None and scored.iteration in rows:
            rows[scored.iteration]["test/strict"] = scored.test.strict
    return [rows[step] for step in sorted(rows)]


def _start_tracker_log(state: LabState, run_dir: Path) -> EvaluationLog:
    """Start sending the evaluations to the run's tracker (a process of its own)."""
    options = state.get("run_options")
    tracker = options.tracker if options else "none"
    return start_evaluation_log(
        tracker, run_dir, state.get("run_id") or run_dir.name, tracker_rows(state), start_python
    )


def _tracker_outcome(state: LabState, run_dir: Path, logging: EvaluationLog) -> dict[str, Any]:
    """Where to look for the run's metrics, and whether the evaluations got there."""
    run_id = state.get("run_id") or run_dir.name
    return {
        "name": logging.tracker,
        "where": where_to_look(logging.tracker, run_dir, run_id),
        "problem": logging.outcome(),
    }


def finalize(state: LabState) -> LabOutput:
    """Write the summary and report, and return the run's output fields."""
    run_dir = Path(state["run_dir"])
    summary = build_summary(state)
    output: LabOutput = {
        "run_id": summary["run_id"],
        "best_checkpoint": summary["best_checkpoint"],
        "baseline_score": summary["baseline_score"],
        "best_score": summary["best_score"],
        "stop_reason": summary["stop_reason"],
        "stop_detail": summary["stop_detail"],
        "report_path": None,
        "summary_path": None,
    }
    if cancelled := cancel_in_flight(state):
        summary["stop_detail"] = f"{summary['stop_detail']}; {cancelled}"
        output["stop_detail"] = summary["stop_detail"]
    # The tracker's process starts first: it writes while the plots below are drawn.
    logging = _start_tracker_log(state, run_dir)
    # A finished run is never continued: its optimiser states (a model's size twice over) go,
    # and so does whatever a killed earlier process had set aside and not yet deleted.
    remove_left_aside(run_dir / MODELS_DIR)
    prune_optimizer_states(run_dir / MODELS_DIR, keep=set())
    try:
        summary["lessons_filed"] = [effect.model_dump() for effect in file_lessons(state)]
    except Exception as error:  # noqa: BLE001 - the library helps later runs; this one is done
        summary["lessons_filed"] = []
        summary["library_note"] = f"the library was not updated: {type(error).__name__}: {error}"
    try:
        plots = draw_plots(run_dir, summary)
    except OSError:
        plots = None  # the report below draws them again, and says why it could not
    summary["tracker"] = _tracker_outcome(state, run_dir, logging)
    try:
        output["summary_path"] = str(write_run_json(run_dir, SUMMARY_FILE, summary))
        output["report_path"] = str(write_report(run_dir, summary, plots))
    except OSError as error:
        # The run's result still reaches the caller; only the files could not be written.
        output["stop_reason"] = StopReason.ERROR.value
        output["stop_detail"] = (
            f"{summary['stop_detail']}; could not write {error.filename or run_dir}: "
            f"{error.strerror or error}"
        )
    # The caller gets a run folder in its final state: nothing still being deleted.
    wait_for_removals()
    return output
