"""Commands over runs that already exist: resume one, list them, show one's report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from postlab.cli.launch import drive_with_view
from postlab.cli.output import console, errors, fail
from postlab.records.run import DEFAULT_STEP_BUDGET
from postlab.tools.io.heap import imports_uncollected


def resume(
    run: Annotated[str, typer.Argument(help="Run id or run directory.")],
    approve: Annotated[bool, typer.Option("--approve", help="Approve the pending gate.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the pending gate.")] = False,
    note: Annotated[str, typer.Option(help="A note recorded with the answer.")] = "",
) -> None:
    """Continue a run from its last checkpoint (after a crash, a kill or an approval gate)."""
    with imports_uncollected():
        from postlab.graph.runner import ResumeError, finished, resume_lab, run_snapshot
        from postlab.memory.checkpoints import CheckpointerError
        from postlab.tools.io.run_lock import RunLocked, check_free
        from postlab.tools.io.rundir import find_run

    if approve and reject:
        raise fail("give --approve or --reject, not both")
    try:
        folder = find_run(run)
        check_free(folder)
        snapshot = run_snapshot(folder)
    except (FileNotFoundError, ResumeError, RunLocked, CheckpointerError) as error:
        raise fail(str(error)) from error
    if finished(snapshot):
        console.print(
            f"run {folder.name} already finished ({snapshot.values.get('stop_reason')}); "
            "nothing to do"
        )
        raise typer.Exit(0)
    answer = True if approve else False if reject else None
    budget = snapshot.values.get("budget") or DEFAULT_STEP_BUDGET
    console.print(
        f"resuming [bold]{folder.name}[/] at step {len(snapshot.values.get('trajectory') or [])}"
    )

    def drive(on_event):
        try:
            return resume_lab(folder, on_event=on_event, approve=answer, note=note)
        except ResumeError as error:
            raise fail(str(error)) from error

    drive_with_view(folder.name, budget, drive)


def runs() -> None:
    """List runs under ./runs (or $POSTLAB_RUNS_DIR), newest first."""
    from postlab.tools.io.rundir import RUNS_DIR_ENV, list_runs, runs_root

    root = runs_root()
    found = list_runs(root)
    if not found:
        errors.print(f"no runs in {root} (set {RUNS_DIR_ENV} to look elsewhere)", soft_wrap=True)
        raise typer.Exit(0)
    console.print(f"runs in {root}, newest first", soft_wrap=True)

    def fmt(value):
        return "—" if value is None else f"{value:.2f}"

    # The id on a line of its own: what people copy never wraps, whatever the terminal width.
    for info in found:
        summary = info.get("summary") or {}
        took = summary.get("wall_s")
        details = [
            (info.get("created_at") or "?").replace("T", " ")[:16],
            "—" if took is None else f"{took / 60:.0f} min",
            str(info.get("task", "?")),
            Path(str(info.get("model", "?"))).name,
            f"{fmt(summary.get('baseline_score'))} → {fmt(summary.get('best_score'))}",
            summary.get("stop_reason") or "in progress",
        ]
        console.print(f"[bold]{info.get('run_id', '?')}[/]", soft_wrap=True)
        console.print("    " + " · ".join(details), soft_wrap=True, highlight=False)


def show(
    run: Annotated[str, typer.Argument(help="Run id or run directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json instead.")] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print report.md as markdown, unrendered.")
    ] = False,
) -> None:
    """Show a run's report (timeline, iterations, scores), its markdown, or its summary as JSON."""
    from postlab.tools.io.rundir import REPORT_FILE, SUMMARY_FILE, find_run, read_run_json

    try:
        folder = find_run(run)
    except FileNotFoundError as error:
        raise fail(str(error)) from error
    summary = read_run_json(folder, SUMMARY_FILE)
    if summary is None:
        console.print(f"run {folder.name} has not finished (no summary.json yet)")
        raise typer.Exit(0)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    report = folder / REPORT_FILE
    if raw:
        if not report.exists():
            raise fail(f"run {folder.name} has no {REPORT_FILE}")
        sys.stdout.write(report.read_text())
        return
    from rich.markdown import Markdown  # rendering loads only for `show`: --help stays fast

    console.print(Markdown(report.read_text()) if report.exists() else summary)
    left = summary["budget"] - summary["steps_used"]
    line = f"budget: {summary['steps_used']} of {summary['budget']} steps used, {left} left"
    if summary.get("max_time_s"):
        line += f"; {summary['wall_s']:.0f}s of {summary['max_time_s']:.0f}s"
    console.print(line)
