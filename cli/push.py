"""`postlab push RUN --repo ID`: the best checkpoint and its model card to the Hub."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from postlab.cli.output import console, fail
from postlab.tools.io.rundir import find_run


def push(
    run: Annotated[str, typer.Argument(help="Run id or run directory.")],
    repo: Annotated[str, typer.Option(help="Hub repo id to publish to, e.g. me/smollm2-adder.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    with_dataset: Annotated[
        bool,
        typer.Option(
            "--with-dataset", help="Also publish the training set, as <repo>-data, with its card."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Write the card and list the files; upload nothing (the default "
            "without a Hub token).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Publish a run's best checkpoint with a model card built from its summary."""
    # huggingface_hub's API loads only when a push runs: `postlab --help` stays fast.
    from postlab.tools.publishing.hub import PublishError, push_run

    try:
        folder = find_run(run)
        result = push_run(
            folder, repo, private=private, with_dataset=with_dataset, dry_run=dry_run or None
        )
    except (FileNotFoundError, PublishError) as error:
        raise fail(str(error)) from error
    if as_json:
        sys.stdout.write(json.dumps(result.model_dump(), indent=2) + "\n")
        return
    size = sum(f.size for f in result.files) / 1e6
    verb = "would upload" if result.dry_run else "uploaded"
    console.print(f"{verb} {len(result.files)} files ({size:.1f} MB) to {result.repo_id}")
    if result.dataset_repo_id:
        console.print(f"{verb} the training set to {result.dataset_repo_id}")
    console.print(f"model card: {result.card_path}")
    if result.dry_run:
        console.print(
            "dry run: nothing left this machine (set HF_TOKEN or `hf auth login` to push)"
        )
    else:
        console.print(f"published: {result.url}")
