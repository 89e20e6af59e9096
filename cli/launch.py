"""Starting and driving a run from the command line: validation, live view, exit codes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import typer
from rich.live import Live
from rich.table import Table

from postlab.cli.output import EXIT_CODES, EXIT_WAITING, console, fail
from postlab.cli.progress import ProgressView
from postlab.tools.io.heap import imports_uncollected
from postlab.tools.io.offline import HUB_OFFLINE_ENV, hub_offline
from postlab.tools.io.run_lock import RunLocked
from postlab.tools.io.rundir import SUMMARY_FILE

# The demo: the default sizes, three iterations, and a target the offline model can reach.
DEMO_OPTIONS = {"max_iterations": 3, "target_score": 0.9}


def _problem(error: dict) -> str:
    """One validation error in the CLI's words: the flag, or the rule that ties options."""
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"--{'-'.join(str(part) for part in error['loc']).replace('_', '-')}: {message}"


def launch(
    goal: str | None,
    task: str | None,
    task_dir: Path | None,
    model: str,
    budget: int,
    run_dir: Path | None,
    options: dict,
    max_time: float | None = None,
    push_to: str | None = None,
    push_private: bool = False,
) -> None:
    # Validate the cheap inputs before anything is created, so bad input costs nothing.
    with imports_uncollected():
        from pydantic import ValidationError

        from postlab.graph.runner import run_lab
        from postlab.records.run import RunOptions
        from postlab.tools.data.training_sets import DatasetError, check_trainable
        from postlab.tools.io.rundir import new_run_id, runs_root
        from postlab.tools.models.resolution import ModelResolutionError, resolve_model
        from postlab.tools.tasks.catalog import TaskError, load_task

    if task and task_dir:
        raise fail("give either --task or --task-dir, not both")
    if budget < 1:
        raise fail("--budget must be at least 1")
    if max_time is not None and max_time <= 0:
        raise fail("--max-time must be positive (seconds)")
    try:
        checked = RunOptions.model_validate(options)
    except ValidationError as error:
        problems = "; ".join(_problem(e) for e in error.errors())
        raise fail(f"bad option: {problems}") from error
    if checked.benchmark:
        if task or task_dir:
            raise fail("give --benchmark or --task / --task-dir, not both")
        name = _checked_benchmark(checked.benchmark, checked.benchmark_data)
    else:
        try:
            loaded = load_task(task, task_dir)
            check_trainable(loaded, checked.batch_size)
        except (TaskError, DatasetError) as error:
            raise fail(str(error)) from error
        name = loaded.name
    try:
        with console.status(f"resolving model {model} (the first use converts it once)…"):
            resolve_model(model)
    except ModelResolutionError as error:
        raise fail(str(error)) from error
    _check_llm_options(options)
    _check_compute(checked.compute)
    _check_checkpoint_store()
    run_dir = (run_dir or runs_root() / new_run_id(name)).resolve()
    if (run_dir / SUMMARY_FILE).exists():
        raise fail(f"{run_dir} already holds a finished run; choose another --run-dir")
    inputs = {
        "goal": goal or "",
        "task": None if task_dir or checked.benchmark else name,
        "task_dir": str(task_dir.resolve()) if task_dir else None,
        "model": model,
        "budget": budget,
        "run_dir": str(run_dir),
        "options": options,
    }
    if max_time is not None:
        inputs["max_time_s"] = max_time
    console.print(f"run [bold]{run_dir.name}[/] in {run_dir}")
    publish = None
    if push_to:
        attended = bool(options.get("human_attached"))
        publish = lambda output: publish_after_run(  # noqa: E731 - one call, bound late
            run_dir, push_to, push_private, attended
        )
    drive_with_view(
        run_dir.name, budget, lambda on_event: run_lab(inputs, on_event=on_event), publish
    )


def publish_after_run(run_dir: Path, repo: str, private: bool, attended: bool) -> None:
    """`run --push-to`: publishing is gated; a person at the terminal approves it, otherwise
    the gate's default for it (reject) leaves a dry run with the card to read."""
    from postlab.tools.publishing.hub import PublishError, push_run

    approved = attended and typer.confirm(
        f"publish the best checkpoint of {run_dir.name} to {repo}?", default=False
    )
    try:
        result = push_run(run_dir, repo, private=private, dry_run=None if approved else True)
    except PublishError as error:
        console.print(f"[bold yellow]not published:[/] {error}")
        return
    if result.dry_run:
        why = (
            "no Hub token"
            if approved
            else "publishing was not approved (an unattended run's gate rejects it)"
        )
        console.print(
            f"not published ({why}); the model card is in {result.card_path}; publish with: "
            f"postlab push {run_dir.name} --repo {repo}"
        )
    else:
        console.print(f"published: {result.url}")


def _checked_benchmark(name: str, data: str | None) -> str:
    """The benchmark's name once the harness knows it and its local files are found."""
    from postlab.tools.benchmarks.harness import BenchmarkError, benchmark_config

    try:
        with console.status(f"reading benchmark {name} from lm-eval…"):
            benchmark_config(name, Path(data) if data else None)
    except BenchmarkError as error:
        raise fail(str(error)) from error
    return name


def _check_llm_options(options: dict) -> None:
    """A missing provider package, key or MCP config is an error before the run starts."""
    if options.get("policy") != "llm":
        return
    from pydantic import ValidationError

    from postlab.agents.llm.mcp import read_mcp_config
    from postlab.agents.llm.models import LLMConfigError, LLMSpec, check_llm

    try:
        for name in {options["llm"], *options.get("llm_overrides", {}).values()}:
            check_llm(LLMSpec.parse(name))
        if options.get("mcp_config"):
            read_mcp_config(options["mcp_config"])
    except (LLMConfigError, ValidationError, ValueError, OSError) as error:
        raise fail(str(error)) from error


def _check_compute(compute: str) -> None:
    """Paid compute needs the Hub: a token, and not HF_HUB_OFFLINE; said before the run starts."""
    if compute == "local":
        return
    from huggingface_hub import get_token

    if hub_offline():
        raise fail(f"--compute {compute} needs the Hub, but {HUB_OFFLINE_ENV} is set")
    if not get_token():
        raise fail(f"--compute {compute} needs a Hugging Face token (HF_TOKEN or `hf auth login`)")


def _check_checkpoint_store() -> None:
    """A shared checkpoint server that cannot be reached is an error before the run starts."""
    from postlab.memory.checkpoints import CheckpointerError, check_checkpoint_store

    try:
        check_checkpoint_store()
    except CheckpointerError as error:
        raise fail(str(error)) from error


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        agent, sep, model = pair.partition("=")
        if not sep or not agent or not model:
            raise fail(f"--llm-for takes AGENT=MODEL, got {pair!r}")
        overrides[agent.strip()] = model.strip()
    return overrides


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def drive_with_view(run_id: str, budget: int, drive, after=None) -> None:
    """Show live progress while `drive(on_event)` runs the graph, then exit with its outcome
    (`after(output)` runs first when the run ended, e.g. to publish it).

    SIGTERM stops the run the way Ctrl-C does: summary and report of the run so far, resumable.
    """
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    view = ProgressView(run_id=run_id, budget=budget)
    live_enabled = console.is_terminal and not os.environ.get("CI")
    with Live(
        view.render(), console=console, refresh_per_second=4, auto_refresh=live_enabled
    ) as live:

        def on_event(event: dict) -> None:
            view.handle(event)
            if live_enabled:
                live.update(view.render())
            elif event.get("type") in ("agent_finished", "guard", "note") or (
                event.get("event") == "log"
            ):
                console.print(view.history[-1])

        try:
            output = drive(on_event)
        except RunLocked as error:
            output = {"locked": str(error)}
        live.update(view.render())
    if "locked" in output:
        raise fail(output["locked"])
    if output.get("pending"):
        for pending in output["pending"]:
            console.print(f"[bold yellow]waiting for approval:[/] {pending.get('question')}")
        console.print(f"answer with: postlab resume {run_id} --approve | --reject [--note TEXT]")
        raise typer.Exit(EXIT_WAITING)
    _print_outcome(output)
    if after is not None and output.get("stop_reason") not in ("interrupted", "error"):
        after(output)
    if output.get("stop_reason") == "interrupted":
        console.print(f"interrupted: continue with [bold]postlab resume {run_id}[/]")
    raise typer.Exit(EXIT_CODES.get(output.get("stop_reason") or "error", 1))


def _print_outcome(output: dict) -> None:
    table = Table(show_header=False, box=None)
    keys = (
        "run_id",
        "stop_reason",
        "stop_detail",
        "baseline_score",
        "best_score",
        "best_checkpoint",
    )
    for key in keys:
        value = output.get(key)
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    table.add_row("report", str(output.get("report_path")))
    console.print(table)
