"""The `postlab` command line: run, demo and tasks here; resume, runs and show from
`run_history`; papers, datasets, memory and cards as sub-apps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from postlab.cli.cards import cards_app
from postlab.cli.datasets import datasets_app
from postlab.cli.help_format import flags_render_as_flags
from postlab.cli.launch import DEMO_OPTIONS, launch, parse_overrides
from postlab.cli.memory_search import memory_app
from postlab.cli.output import console, fail
from postlab.cli.papers import papers_app
from postlab.cli.push import push
from postlab.cli.run_history import resume, runs, show
from postlab.records.run import DEFAULT_STEP_BUDGET, RunOptions
from postlab.tools.io.offline import OFFLINE_ENV
from postlab.tools.models.resolution import DEFAULT_MODEL
from postlab.tools.tasks.catalog import DEFAULT_TASK
from postlab.tools.training.recipes import resolve_technique


def _default(option: str):
    """A run option's default, from its one home (RunOptions)."""
    return RunOptions.model_fields[option].default


flags_render_as_flags()
app = typer.Typer(
    name="postlab",
    help="An autonomous post-training lab: research, data, training and evaluation in a loop.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(shown: bool) -> None:
    if shown:
        # Read here, not at import: importlib.metadata costs every command ~30 ms of start-up.
        from importlib.metadata import version as package_version

        print(f"postlab {package_version('postlab')}")
        raise typer.Exit(0)


def _offline(offline: bool) -> None:
    # One switch for every online path: the HTTP client reads it before any attempt.
    if offline:
        os.environ[OFFLINE_ENV] = "1"


@app.callback()
def root_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            callback=_offline,
            help="Never touch the network: online sources fall back to the bundled ones at once.",
        ),
    ] = False,
) -> None:
    """An autonomous post-training lab: research, data, training and evaluation in a loop."""


app.add_typer(papers_app, name="papers")
app.add_typer(datasets_app, name="datasets")
app.add_typer(memory_app, name="memory")
app.add_typer(cards_app, name="cards")
app.command("push")(push)


@app.command()
def run(
    goal: Annotated[str | None, typer.Argument(help="What to achieve, in words.")] = None,
    task: Annotated[str | None, typer.Option(help="A bundled task name.")] = None,
    task_dir: Annotated[
        Path | None, typer.Option(help="A folder with train.jsonl, eval.jsonl, task.json.")
    ] = None,
    model: Annotated[str, typer.Option(help="Alias, checkpoint path or Hub id.")] = DEFAULT_MODEL,
    budget: Annotated[int, typer.Option(help="Agent steps allowed.")] = DEFAULT_STEP_BUDGET,
    run_dir: Annotated[Path | None, typer.Option(help="Where the run lives.")] = None,
    max_iterations: Annotated[int, typer.Option(help="Training iterations at most.")] = _default(
        "max_iterations"
    ),
    target: Annotated[
        float, typer.Option(help="Stop once strict accuracy reaches this.")
    ] = _default("target_score"),
    train_steps: Annotated[int, typer.Option(help="Optimizer steps per iteration.")] = _default(
        "train_steps"
    ),
    train_size: Annotated[
        int,
        typer.Option(help="The most rows an iteration builds (it builds the rows its steps draw)."),
    ] = _default("train_size"),
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = _default("batch_size"),
    num_processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Data-parallel training processes sharing each batch (default: one per "
            "visible GPU, one on a CPU).",
        ),
    ] = None,
    eval_limit: Annotated[
        int | None, typer.Option(help="Score only the first N held-out items (quick runs).")
    ] = None,
    eval_cmd: Annotated[
        str | None,
        typer.Option(
            help="An external test judge in the PostTrainBench contract, e.g. 'python "
            "evaluate.py --model-path {model} --limit {limit} --json-output-file {out}' (it "
            'writes {"accuracy", "stderr"}); it scores the baseline and the final best.'
        ),
    ] = None,
    judge_candidates: Annotated[
        bool,
        typer.Option(
            "--judge-candidates",
            help="Also run --eval-cmd on each new best by validation (shown, never decided on).",
        ),
    ] = False,
    benchmark: Annotated[
        str | None,
        typer.Option(
            help="A standard benchmark as the task (an lm-eval multiple-choice task: arc_easy, "
            "arc_challenge, boolq, hellaswag, ...): trained on its train split in the harness's "
            "prompts, test judged by lm-eval."
        ),
    ] = None,
    benchmark_data: Annotated[
        Path | None,
        typer.Option(
            help="A local copy of the benchmark in its own format (the Hub's files), instead "
            "of the Hub."
        ),
    ] = None,
    push_to: Annotated[
        str | None,
        typer.Option(
            help="Publish the best checkpoint to this Hub repo when the run ends (asks first "
            "with --approve; otherwise a dry run that writes the model card)."
        ),
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="With --push-to: a private repo.")
    ] = False,
    backend: Annotated[
        str,
        typer.Option(
            help="Training engine: auto (Unsloth on a CUDA GPU where it supports the model and "
            "method, else plain TRL, with the reason in the report), trl or unsloth."
        ),
    ] = _default("backend"),
    compute: Annotated[
        str,
        typer.Option(
            help="Where training runs: local, or hf-jobs[:FLAVOR] (each iteration a Hugging Face "
            "job, a10g-small unless named; needs a Hub token, and spend past --approve-spend is "
            "asked for with --approve, rejected otherwise)."
        ),
    ] = _default("compute"),
    approve_spend: Annotated[
        float,
        typer.Option(
            min=0,
            help="USD of paid compute (HF Jobs) the run may start without asking, all "
            "iterations together.",
        ),
    ] = _default("approve_spend"),
    tracker: Annotated[
        str,
        typer.Option(
            help="Where training metrics and evaluations are logged: wandb (offline without "
            "WANDB_API_KEY), trackio (a local Trackio project in the run folder) or none."
        ),
    ] = _default("tracker"),
    seed: Annotated[int, typer.Option(help="Seed for data and training.")] = _default("seed"),
    max_time: Annotated[
        float | None, typer.Option(help="Wall-clock budget in seconds; the run still finalizes.")
    ] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Pause costly actions (training) for approval.")
    ] = False,
    approve_above: Annotated[
        float, typer.Option(help="Gate only training above this cost (steps x batch).")
    ] = 0,
    online: Annotated[
        bool, typer.Option("--online", help="Also read arXiv, HF Papers and Semantic Scholar.")
    ] = False,
    hub_dataset: Annotated[
        str | None, typer.Option(help="Train on this Hub dataset (its columns are mapped).")
    ] = None,
    techniques: Annotated[
        str | None,
        typer.Option(
            help="Only these techniques, comma-separated (sft, lora, rft, dpo, curriculum, "
            "data_quality, grpo, teacher): for ablations."
        ),
    ] = None,
    keep_checkpoints: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoints",
            help="Keep every iteration's checkpoint (by default only the best and the latest).",
        ),
    ] = False,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="A model (name or local checkpoint) that writes new training questions and "
            "answers in the task's format, kept when verified (enables synthetic_teacher)."
        ),
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option(
            help="Drive agents and supervisor with a chat model: provider:model, "
            "hf:<repo> or local:smollm2."
        ),
    ] = None,
    llm_for: Annotated[
        list[str] | None,
        typer.Option(
            help="Per-agent model, AGENT=MODEL (librarian, data_engineer, trainer, "
            "evaluator, supervisor); repeatable."
        ),
    ] = None,
    mcp_config: Annotated[
        Path | None, typer.Option(help="JSON/TOML file listing MCP servers and their agents.")
    ] = None,
) -> None:
    """Post-train a model on a task: baseline, research, data, train, evaluate, iterate."""
    if task is None and task_dir is None and benchmark is None:
        raise fail("give --task NAME, --task-dir DIR or --benchmark NAME (see `postlab tasks`)")
    if benchmark_data is not None and benchmark is None:
        raise fail("--benchmark-data needs --benchmark NAME")
    options = {
        "max_iterations": max_iterations,
        "target_score": target,
        "train_steps": train_steps,
        "train_size": train_size,
        "batch_size": batch_size,
        "num_processes": num_processes,
        "eval_limit": eval_limit,
        "eval_cmd": eval_cmd,
        "judge_candidates": judge_candidates,
        "tracker": tracker,
        "backend": backend,
        "compute": compute,
        "approve_spend": approve_spend,
        "benchmark": benchmark,
        "benchmark_data": str(benchmark_data.resolve()) if benchmark_data else None,
        "seed": seed,
        "human_attached": approve,
        "gates": {"threshold": approve_above},
        "online": online,
        "hub_dataset": hub_dataset,
        "teacher": teacher,
        "keep_checkpoints": keep_checkpoints,
    }
    if techniques:
        try:
            options["techniques"] = [resolve_technique(n) for n in techniques.split(",") if n]
        except ValueError as error:
            raise fail(str(error)) from error
    if llm or llm_for:
        overrides = parse_overrides(llm_for or [])
        options.update(
            policy="llm",
            llm=llm or next(iter(overrides.values())),
            llm_overrides=overrides,
            mcp_config=str(mcp_config.resolve()) if mcp_config else None,
        )
    launch(goal, task, task_dir, model, budget, run_dir, options, max_time, push_to, private)


app.command()(resume)


DEMO_HELP = (
    "The offline end-to-end run: SmolLM2-135M-Instruct on two-digit addition, on the embedded "
    f"defaults: up to {DEMO_OPTIONS['max_iterations']} iterations of "
    f"{RunOptions.model_fields['train_steps'].default} training steps, stopping early at "
    "validation accuracy "
    f"{DEMO_OPTIONS['target_score']:g}; the report says what it tried and why."
)


@app.command(help=DEMO_HELP)
def demo(
    run_dir: Annotated[Path | None, typer.Option(help="Where the run lives.")] = None,
) -> None:
    """The offline end-to-end run on the embedded defaults."""
    goal = "Raise SmolLM2-135M-Instruct on two-digit addition, answering with the number only"
    launch(
        goal, DEFAULT_TASK, None, DEFAULT_MODEL, DEFAULT_STEP_BUDGET, run_dir, dict(DEMO_OPTIONS)
    )


@app.command()
def tasks() -> None:
    """List the bundled tasks."""
    from postlab.tools.tasks.catalog import bundled_task_names, load_task

    table = Table("task", "metric", "description")
    for name in bundled_task_names():
        task = load_task(name)
        table.add_row(name, task.metric, task.description)
    console.print(table)


app.command()(runs)
app.command()(show)


def quiet_libraries() -> None:
    """Silence library progress bars and chatter: the live view is the progress display."""
    import logging
    import warnings

    # Environment, not imports: every command would otherwise pay for loading both libraries.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for name in ("transformers", "datasets", "chromadb", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main() -> None:
    """Console-script entry point."""
    quiet_libraries()
    app()
