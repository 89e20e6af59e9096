"""`postlab papers …`: search, tables, the feed and citation graphs, with a visible offline
fallback to the bundled corpus."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.table import Table

from postlab.cli.output import EXIT_BAD_INPUT, EXIT_NOTHING_DONE, console, errors
from postlab.cli.sources import print_notes, shortened

papers_app = typer.Typer(help="Search papers online (arXiv, HF Papers) and walk citations (S2).")
OFFLINE_CORPUS = "offline: used the bundled corpus"


def _chat_model(name: str):
    """The chat model `--llm NAME` names, or a one-line error (exit 2) when it cannot load."""
    from postlab.agents.llm.models import LLMConfigError, load_chat_model

    try:
        return load_chat_model(name)
    except LLMConfigError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from error


LLM_HELP = "A chat model reads the papers (provider:model, hf:<repo> or local:smollm2)"


@papers_app.command("search")
def papers_search(
    query: Annotated[str, typer.Argument(help="Free text or arXiv query syntax (ti:, abs:, AND)")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="Papers to show")] = 10,
    source: Annotated[str, typer.Option(help="arxiv, hf or all")] = "all",
) -> None:
    """Search arXiv and HF Papers, merged with the bundled corpus."""
    from postlab.tools.papers.online import search_papers

    choices = {"arxiv": ("arxiv",), "hf": ("hf",), "all": ("arxiv", "hf")}
    if source not in choices:
        errors.print(f"[bold red]error:[/] --source must be arxiv, hf or all, not {source!r}")
        raise typer.Exit(EXIT_BAD_INPUT)
    outcome = search_papers(query, limit=limit, sources=choices[source])
    table = Table(title=f"papers for {query!r}")
    for column in ("id", "year", "title", "from", "technique", "score"):
        table.add_column(column, no_wrap=column in ("id", "from"))
    for paper in outcome.papers:
        table.add_row(
            paper.id,
            str(paper.year or ""),
            shortened(paper.title),
            ",".join(paper.sources),
            paper.technique or "",
            f"{paper.score:.2f}",
        )
    console.print(table)
    print_notes(outcome.notes)
    if outcome.offline:
        errors.print(f"[yellow]{OFFLINE_CORPUS}[/]")


@papers_app.command("table")
def papers_table(
    query: Annotated[str, typer.Argument(help="What the papers should be about")],
    limit: Annotated[int, typer.Option(min=1, max=50, help="Papers (rows)")] = 10,
    online: Annotated[
        bool, typer.Option("--online", help="Also search arXiv and HF Papers (abstracts)")
    ] = False,
    output: Annotated[str, typer.Option("--format", help="md, csv or json")] = "md",
    llm: Annotated[str | None, typer.Option(help=LLM_HELP)] = None,
) -> None:
    """An evidence table: one row a paper (method, model, data, hyper-parameters, benchmark,
    effect), every cell citing the text it was read from. With --llm a chat model fills the
    cells (from arXiv full text with --online), and a cell whose quote is not in the paper, or
    says less than its value, is refused and named."""
    import csv
    import io
    import json

    from postlab.tools.papers.extraction import (
        as_markdown,
        as_records,
        evidence_papers,
        extract_row,
    )

    if output not in ("md", "csv", "json"):
        errors.print(f"[bold red]error:[/] --format must be md, csv or json, not {output!r}")
        raise typer.Exit(EXIT_BAD_INPUT)
    model = _chat_model(llm) if llm else None
    papers, notes = evidence_papers(query, limit=limit, online=online)
    if model is None:
        rows = [extract_row(paper) for paper in papers]
    else:
        from postlab.agents.llm.paper_reading import read_table

        rows, read_notes = read_table(papers, model, full_text=online)
        notes = [*notes, *read_notes]
    if output == "json":
        print(json.dumps([row.model_dump() for row in rows], indent=2))
    elif output == "csv":
        records = as_records(rows)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["paper_id"])
        writer.writeheader()
        writer.writerows(records)
        print(buffer.getvalue(), end="")
    else:
        print(as_markdown(rows))
    print_notes(notes)
    if not online:
        errors.print(f"[yellow]{OFFLINE_CORPUS}[/]")


@papers_app.command("feed")
def papers_feed(
    since: Annotated[
        str | None, typer.Option(help="First day to read, YYYY-MM-DD (default: two days ago)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (default: today)")] = None,
    goal: Annotated[str, typer.Option(help="Rank papers for this goal")] = "",
    arxiv_categories: Annotated[
        str, typer.Option("--arxiv", help="arXiv categories to list too, e.g. cs.CL,cs.LG")
    ] = "",
    limit: Annotated[int, typer.Option(min=1, max=200, help="Papers to show and file")] = 20,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="File the papers in the library memory")
    ] = True,
    llm: Annotated[
        str | None, typer.Option(help=f"{LLM_HELP}, proposing technique cards to review")
    ] = None,
    propose: Annotated[int, typer.Option(min=1, max=50, help="Papers to propose cards for")] = 5,
) -> None:
    """Hugging Face daily papers (and arXiv listings of --arxiv categories) over a span of days,
    ranked for a goal and filed in the library (the user's cache), so later runs and
    `memory search --library` find them. With --llm a chat model proposes technique cards from
    the best-fitting papers, each field checked against the text it quotes; they wait unreviewed
    until `postlab cards review` accepts them."""
    import datetime as dt

    from postlab.memory.library import library_dir, open_library
    from postlab.tools.papers.feed import MAX_FEED_DAYS, file_in_library, read_feed

    if llm and library_dir() is None:
        errors.print("[bold red]error:[/] the library is off: proposed cards have nowhere to go")
        raise typer.Exit(EXIT_BAD_INPUT)
    model = _chat_model(llm) if llm else None
    try:
        last = dt.date.fromisoformat(until) if until else dt.date.today()
        first = dt.date.fromisoformat(since) if since else last - dt.timedelta(days=2)
        categories = [c.strip() for c in arxiv_categories.split(",") if c.strip()]
        outcome = read_feed(first, last, goal, limit, categories)
    except ValueError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from error
    if (last - first).days + 1 > MAX_FEED_DAYS:
        errors.print(f"[yellow]note:[/] read the latest {MAX_FEED_DAYS} days only")
    table = Table(title=f"daily papers {first} … {last}" + (f" for {goal!r}" if goal else ""))
    for column in ("id", "day", "title", "from", "upvotes", "fit"):
        table.add_column(column, no_wrap=column in ("id", "day", "from"))
    for item in outcome.papers:
        table.add_row(
            item.paper.id,
            item.day,
            shortened(item.paper.title),
            ",".join(item.paper.sources),
            str(item.upvotes),
            f"{item.fit:.2f}",
        )
    console.print(table)
    print_notes(outcome.notes)
    library = open_library() if store else None
    if library is not None and outcome.papers:
        filed = file_in_library(library, outcome.papers, goal)
        errors.print(f"filed {filed} papers in the library ({library_dir()})")
    if not outcome.days_read:
        raise typer.Exit(EXIT_NOTHING_DONE)
    if model is not None:
        _propose(model, [item.paper for item in outcome.papers[:propose]], last.year)


def _propose(model, papers, year: int) -> None:
    """Cards the model reads from the papers, filed unreviewed in the library."""
    from postlab.agents.llm.paper_reading import propose_cards
    from postlab.memory.library import library_dir
    from postlab.tools.papers.proposals import add_proposals

    proposed, notes = propose_cards(papers, model, year)
    print_notes(notes)
    added = add_proposals(library_dir(), proposed)
    for card in proposed:
        technique = card.paper.technique
        console.print(
            f"proposed [bold]{technique.key}[/] card from {card.paper.id}: {technique.name}"
        )
    errors.print(f"{added} new card(s) proposed, unreviewed until accepted: postlab cards review")


@papers_app.command("graph")
def papers_graph(
    paper_id: Annotated[
        str, typer.Argument(metavar="ID", help="arXiv id (or S2 id) to start from")
    ],
    hops: Annotated[int, typer.Option(min=0, max=4, help="Citation hops")] = 2,
    max_papers: Annotated[int, typer.Option(min=1, max=200, help="Papers to read")] = 20,
    goal: Annotated[str, typer.Option(help="Rank by relevance to this goal")] = "",
) -> None:
    """Walk references and citations breadth-first from a paper (Semantic Scholar)."""
    from postlab.tools.papers.online import citation_walk

    outcome = citation_walk([paper_id], goal, max_papers=max_papers, max_hops=hops)
    # Offline the walk may seed itself from the goal; the paper asked for must be among seeds.
    wanted = re.sub(r"^arxiv:|v\d+$", "", paper_id.strip().lower())
    seeds = [pid.lower() for pid, hop in outcome.hops.items() if hop == 0]
    if (wanted not in seeds) if outcome.offline else not seeds:
        print_notes(outcome.notes)
        where = "the bundled corpus" if outcome.offline else "Semantic Scholar"
        errors.print(f"[bold red]error:[/] unknown paper {paper_id!r} (looked in {where})")
        raise typer.Exit(EXIT_BAD_INPUT)
    table = Table(title=f"citation graph from {paper_id}")
    for column in ("hop", "id", "year", "title", "cited by", "technique", "score"):
        table.add_column(column, no_wrap=column in ("hop", "id"))
    for paper in outcome.papers:
        table.add_row(
            str(outcome.hops.get(paper.id, "")),
            paper.id,
            str(paper.year or ""),
            shortened(paper.title, 60),
            "" if paper.citation_count is None else str(paper.citation_count),
            paper.technique or "",
            f"{paper.score:.2f}",
        )
    console.print(table)
    console.print(f"{len(outcome.papers)} papers, {len(outcome.edges)} citation edges")
    print_notes(outcome.notes)
    if outcome.offline:
        errors.print(f"[yellow]{OFFLINE_CORPUS}[/]")
