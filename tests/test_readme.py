"""The README's commands and flags match the CLI: every flag it names exists, and every `run`
option is documented."""

import re
from pathlib import Path

import click
import typer

from postlab.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"
# Flags of other programs the README shows (pip, pytest, langgraph, make, the benchmarks).
OTHER_PROGRAMS = {
    # the PostTrainBench evaluate.py contract (--eval-cmd)
    "--model-path",
    "--json-output-file",
    "--limit",
    # trackio show
    "--project",
    # benchmarks/lab_vs_naive.py, benchmarks/memory_scale.py and the CLI's own help
    "--seeds",
    "--sizes",
    # benchmarks/weight_average.py
    "--members",
    "--help",
    # chroma run
    "--path",
    # mcp-server-time
    "--local-timezone",
    "--no-deps",
    "--host",
    "--port",
    "--no-browser",
    "--quick",
    "--tasks",
    "--task-dirs",
    "--out",
    # benchmarks/kind_share.py, benchmarks/choice_skills.py, benchmarks/internalize_choice.py
    "--share",
    "--mix",
    "--keep",
    # benchmarks/lr_sweep.py
    "--lrs",
    "--steps",
    "--test",
}


def _cli_flags() -> tuple[set[str], set[str]]:
    """Every flag of every postlab command, and those of `run`."""
    root = typer.main.get_command(app)
    every: set[str] = set()
    run: set[str] = set()

    def walk(command: click.Command) -> None:
        for param in command.params:
            names = {*param.opts, *param.secondary_opts}
            every.update(name for name in names if name.startswith("--"))
            if command.name == "run":
                run.update(name for name in names if name.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(root)
    return every, run


def test_every_flag_in_the_readme_exists_in_the_cli():
    every, _ = _cli_flags()
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README.read_text()))
    assert named - every - OTHER_PROGRAMS == set()


def test_every_run_option_is_in_the_readme():
    _, run = _cli_flags()
    text = README.read_text()
    missing = {flag for flag in run if flag not in text} - {"--help"}
    assert missing == set()
