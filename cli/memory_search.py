"""`postlab memory search RUN QUERY`: what a run stored, found by meaning, with its source."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from postlab.cli.output import console, fail
from postlab.memory.kinds import MEMORY_KINDS, shared_server
from postlab.tools.io.rundir import find_run

memory_app = typer.Typer(help="Search what a run's agents stored in its vector memory.")
# The metadata that says where a memory came from, in the order a reader wants it.
_SOURCE_KEYS = (
    "step",
    "iteration",
    "label",
    "agent",
    "action",
    "technique",
    "paper_id",
    "category",
    "run_id",
    "task",
)


@memory_app.command("search")
def memory_search(
    run: Annotated[
        str, typer.Argument(help="Run id or run directory (with --library: the query).")
    ],
    query: Annotated[str | None, typer.Argument(help="What to look for, in plain words.")] = None,
    library: Annotated[
        bool,
        typer.Option(
            "--library", help="Search the library across runs (measured effects) instead of a run."
        ),
    ] = False,
    kind: Annotated[
        list[str] | None,
        typer.Option(help=f"Only this kind (repeatable): {', '.join(MEMORY_KINDS)}."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Memories to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
) -> None:
    """The memories of a run (or of the library) closest in meaning to QUERY, with scores and
    sources."""
    kinds = tuple(kind or MEMORY_KINDS)
    unknown = [k for k in kinds if k not in MEMORY_KINDS]
    if unknown:
        raise fail(f"unknown memory kind {unknown[0]!r}; expected one of {', '.join(MEMORY_KINDS)}")
    # Chroma loads only when a search runs: `postlab --help` stays fast.
    from postlab.memory.library import LIBRARY_ENV, library_dir, open_library
    from postlab.memory.store import open_memory

    if library:
        if query is not None:
            raise fail("with --library give only the query (no run)")
        query, where = run, library_dir()
        memory = open_library()
        if memory is None or where is None or not where.is_dir():
            raise fail(f"no library to search ({where or 'turned off by ' + LIBRARY_ENV})")
        name = f"library {where}"
    else:
        if query is None:
            raise fail("give a run and a query: postlab memory search RUN QUERY")
        try:
            folder = find_run(run)
        except FileNotFoundError as error:
            raise fail(str(error)) from error
        if not shared_server() and not (folder / "memory").is_dir():
            raise fail(f"run {folder.name} has no memory folder")
        memory, name = open_memory(folder), folder.name
    hits = memory.search(query, kinds=kinds, k=limit)
    rows = [
        {
            "score": round(1.0 - hit.distance, 4),
            "kind": hit.kind,
            "text": hit.text,
            "source": {k: hit.metadata[k] for k in _SOURCE_KEYS if k in hit.metadata},
            "id": hit.id,
        }
        for hit in hits
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        console.print(f"{name}'s memory holds nothing of kind {', '.join(kinds)}")
        return
    table = Table(title=f"{name}: memories closest to {query!r}")
    for column in ("score", "kind", "source", "text"):
        table.add_column(column, overflow="fold")
    for row in rows:
        source = ", ".join(f"{key} {value}" for key, value in row["source"].items())
        table.add_row(f"{row['score']:.2f}", row["kind"], source, row["text"])
    console.print(table)
