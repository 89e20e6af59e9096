"""`postlab cards …`: technique cards proposed from new papers, and a person's review of them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from postlab.cli.output import EXIT_BAD_INPUT, console, errors

cards_app = typer.Typer(help="Review technique cards proposed from new papers (papers feed --llm).")


def _folder():
    from postlab.memory.library import library_dir

    folder = library_dir()
    if folder is None:
        errors.print("[bold red]error:[/] the library is off: there are no proposed cards")
        raise typer.Exit(EXIT_BAD_INPUT)
    return folder


def _load(folder):
    from postlab.tools.papers.proposals import ProposalError, load_proposals

    try:
        return load_proposals(folder)
    except ProposalError as error:
        errors.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(EXIT_BAD_INPUT) from error


def _show(card) -> None:
    technique = card.paper.technique
    console.print(
        f"[bold]{card.paper.id}[/] {card.paper.title} ({card.paper.year}) — proposed by "
        f"{card.proposed_by}, {card.status}"
    )
    console.print(f"  card: {technique.key} ({technique.method}): {technique.name}")
    console.print(f"  applies when: {technique.applies_when}")
    for index, effect in enumerate(technique.effects):
        console.print(f"  effect: {effect}  [dim]← “{card.quotes.get(f'effects[{index}]', '')}”[/]")
    for name, value in technique.recipe.as_dict().items():
        console.print(f"  {name}: {value:g}  [dim]← “{card.quotes.get(f'recipe.{name}', '')}”[/]")


@cards_app.command("list")
def cards_list(
    status: Annotated[str, typer.Option(help="unreviewed, accepted, rejected or all")] = "all",
) -> None:
    """The proposed cards, with their review status."""
    if status not in ("unreviewed", "accepted", "rejected", "all"):
        errors.print(f"[bold red]error:[/] --status cannot be {status!r}")
        raise typer.Exit(EXIT_BAD_INPUT)
    cards = [c for c in _load(_folder()) if status in ("all", c.status)]
    table = Table(title=f"proposed technique cards ({status})")
    for column in ("paper", "technique", "name", "effects", "status", "proposed by"):
        table.add_column(column, no_wrap=column == "paper")
    for card in cards:
        technique = card.paper.technique
        table.add_row(
            card.paper.id,
            technique.key,
            technique.name,
            str(len(technique.effects)),
            card.status,
            card.proposed_by,
        )
    console.print(table)


@cards_app.command("review")
def cards_review(
    paper_id: Annotated[
        str | None, typer.Argument(metavar="PAPER", help="The paper whose card to answer")
    ] = None,
    accept: Annotated[bool, typer.Option("--accept", help="Accept the card")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the card")] = False,
    note: Annotated[str, typer.Option(help="Why, kept with the card")] = "",
) -> None:
    """Accept or reject proposed cards: one named with --accept/--reject, or each unreviewed
    card in turn (a for accept, r for reject, s to skip). Accepted cards are ranked by the
    Librarian in later runs, next to the bundled corpus."""
    from postlab.tools.papers.proposals import ProposalError, review_card

    folder = _folder()
    if accept and reject:
        errors.print("[bold red]error:[/] give --accept or --reject, not both")
        raise typer.Exit(EXIT_BAD_INPUT)
    if paper_id is not None:
        if not (accept or reject):
            errors.print("[bold red]error:[/] naming a paper needs --accept or --reject")
            raise typer.Exit(EXIT_BAD_INPUT)
        try:
            card = review_card(folder, paper_id, accept, note)
        except ProposalError as error:
            errors.print(f"[bold red]error:[/] {error}")
            raise typer.Exit(EXIT_BAD_INPUT) from error
        console.print(f"{card.paper.id}: {card.status}")
        return
    waiting = [card for card in _load(folder) if card.status == "unreviewed"]
    if not waiting:
        console.print("no card waits for review")
        return
    for card in waiting:
        _show(card)
        answer = typer.prompt("accept, reject or skip? [a/r/s]", default="s").strip().lower()
        if answer[:1] in ("a", "r"):
            reviewed = review_card(folder, card.paper.id, answer.startswith("a"), note)
            console.print(f"{reviewed.paper.id}: {reviewed.status}")
