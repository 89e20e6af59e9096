"""Proposed technique cards: read from new papers, kept unreviewed until a person accepts them.

They live in one JSON file in the library folder (the caller names it), next to the library's
memory. Only accepted cards reach a run: the Librarian ranks them with the bundled corpus.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from postlab.tools.io.atomic import write_json_atomic
from postlab.tools.papers.corpus import PaperRecord

PROPOSALS_FILE = "proposed_cards.json"
Status = Literal["unreviewed", "accepted", "rejected"]


class ProposalError(ValueError):
    """A proposal file that cannot be read, or a review of a card that is not there."""


class ProposedCard(BaseModel):
    """A paper with the technique card a chat model read from it, the quotes behind each field,
    and where its review stands."""

    paper: PaperRecord
    # Field of the card (e.g. "effects[0]", "recipe.learning_rate") → the span it was read from.
    quotes: dict[str, str] = Field(default_factory=dict)
    source: str = ""
    proposed_by: str
    proposed_at: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    status: Status = "unreviewed"
    review_note: str = ""


_CARDS = TypeAdapter(list[ProposedCard])


def load_proposals(folder: Path) -> list[ProposedCard]:
    """Every proposal in the library folder (none when the file is missing)."""
    path = Path(folder) / PROPOSALS_FILE
    if not path.is_file():
        return []
    try:
        return _CARDS.validate_python(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as error:
        raise ProposalError(f"{path} is not a proposal file: {str(error)[:200]}") from error


def _save(folder: Path, cards: list[ProposedCard]) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(folder) / PROPOSALS_FILE, _CARDS.dump_python(cards, mode="json"))


def add_proposals(folder: Path, proposed: list[ProposedCard]) -> int:
    """File new proposals; a paper already proposed keeps its card and review. How many added."""
    cards = load_proposals(folder)
    known = {card.paper.id for card in cards}
    fresh = [card for card in proposed if card.paper.id not in known]
    if fresh:
        _save(folder, cards + fresh)
    return len(fresh)


def review_card(folder: Path, paper_id: str, accept: bool, note: str = "") -> ProposedCard:
    """Accept or reject the card proposed for a paper; the reviewed card."""
    cards = load_proposals(folder)
    for index, card in enumerate(cards):
        if card.paper.id == paper_id:
            status: Status = "accepted" if accept else "rejected"
            cards[index] = card.model_copy(update={"status": status, "review_note": note})
            _save(folder, cards)
            return cards[index]
    known = ", ".join(card.paper.id for card in cards) or "none"
    raise ProposalError(f"no card proposed for paper {paper_id!r} (proposed: {known})")


def accepted_papers(folder: Path | None) -> list[PaperRecord]:
    """Papers whose proposed cards a person accepted, for the Librarian to rank."""
    if folder is None:
        return []
    return [card.paper for card in load_proposals(folder) if card.status == "accepted"]
