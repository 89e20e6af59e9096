"""`postlab datasets …`: search and inspect Hub datasets, with the bundled task catalog as the
offline fallback."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.table import Table

from postlab.cli.output import EXIT_BAD_INPUT, EXIT_NOTHING_DONE, console, errors
from postlab.cli.sources import print_notes, shortened

datasets_app = typer.Typer(help="Search and inspect datasets on the Hugging Face Hub.")
OFFLINE_CATALOG = "offline: used the bundled task catalog"


def _catalog_table(query: str = "") -> Table:
    from postlab.tools.tasks.catalog import bundled_task_names, load_task

    # Loose on purpose: "sorting" finds sort_list, "additions" finds the addition tasks.
    words = {word[:4] for word in re.findall(r"[a-z0-9]+", query.lower()) if len(word) > 2}
    table = Table(title=f"bundled tasks matching {query!r}" if words else "bundled task catalog")
    table.add_column("task", no_wrap=True)
    table.add_column("description")
    for name in bundled_task_names():
        description = load_task(name).description
        stems = {word[:4] for word in re.findall(r"[a-z0-9]+", f"{name} {description}".lower())}
        if not words or words & stems:
            table.add_row(name, shortened(description, 80))
    return table


@datasets_app.command("search")
def datasets_search(
    query: Annotated[str, typer.Argument(help="Words in the dataset name")],
    task: Annotated[str | None, typer.Option(help="Task category, e.g. text-generation")] = None,
    size: Annotated[str | None, typer.Option(help="Size category, e.g. 1K<n<10K")] = None,
    license: Annotated[str | None, typer.Option(help="License id, e.g. mit")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Datasets to show")] = 10,
) -> None:
    """Search Hub datasets by name, task, size and license."""
    from postlab.tools.data.hub import HubDatasetError, search_datasets
    from postlab.tools.io.http import HttpStatusError, ServiceUnavailable

    try:
        found = search_datasets(query, task=task, size=size, license=license, limit=limit)
    except HubDatasetError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from error
    except (ServiceUnavailable, HttpStatusError) as error:
        print_notes([f"Hub unreachable ({getattr(error, 'reason', error)})"])
        matching = _catalog_table(query)
        if not matching.row_count:
            errors.print(f"no bundled task matches {query!r} and the Hub is unreachable")
            raise typer.Exit(EXIT_NOTHING_DONE) from error
        console.print(matching)
        errors.print(f"[yellow]{OFFLINE_CATALOG}[/]")
        return
    table = Table(title=f"datasets for {query!r}")
    for column in ("id", "license", "size", "tasks", "downloads", "likes"):
        table.add_column(column, no_wrap=column == "id")
    for item in found:
        table.add_row(
            item.id + (" (gated)" if item.gated else ""),
            item.license or "?",
            item.size_category or "?",
            ", ".join(item.task_categories),
            str(item.downloads),
            str(item.likes),
        )
    if not found:
        errors.print(f"no dataset matches {query!r}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    console.print(table)


@datasets_app.command("inspect")
def datasets_inspect(
    repo_id: Annotated[
        str, typer.Argument(metavar="REPO", help="Dataset repo id, e.g. openai/gsm8k")
    ],
    config: Annotated[str | None, typer.Option(help="Config name")] = None,
    split: Annotated[str | None, typer.Option(help="Split name")] = None,
) -> None:
    """Show a dataset's license, size, features, sample rows and TRL column mapping."""
    from postlab.tools.data.hub import HubDatasetError, inspect_dataset
    from postlab.tools.io.http import HttpStatusError, ServiceUnavailable

    try:
        found = inspect_dataset(repo_id, config=config, split=split, sample=3)
    except HubDatasetError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from error
    except (ServiceUnavailable, HttpStatusError) as error:
        print_notes([f"Hub unreachable ({getattr(error, 'reason', error)})"])
        errors.print(f"[bold red]error:[/] cannot inspect {repo_id}: the Hub is unreachable")
        raise typer.Exit(EXIT_NOTHING_DONE) from error
    console.print(f"[bold]{found.id}[/] config={found.config} split={found.split}")
    console.print(f"license: {found.license or '?'}   size: {found.size_category or '?'}")
    console.print("features: " + ", ".join(f"{k}: {v}" for k, v in found.features.items()))
    if found.mapping is not None:
        console.print("TRL mapping: " + found.mapping.model_dump_json(exclude_none=True))
    else:
        console.print(f"[yellow]no TRL mapping:[/] {found.mapping_error}")
    for row in found.rows:
        console.print({k: shortened(str(v), 100) for k, v in row.items()})
    print_notes(found.notes)
