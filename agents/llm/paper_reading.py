"""A chat model reads papers: evidence-table cells and technique cards, each field checked
against the span of the paper it claims to come from. What fails the check is dropped (and
said), never kept on the model's word; an unusable answer falls back to the rule-based reading.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from postlab.agents.llm.driver import model_label
from postlab.agents.llm.structured import structured
from postlab.agents.llm.untrusted import untrusted
from postlab.records.outcomes import TechniqueKey
from postlab.tools.papers.corpus import PaperRecord, Recipe, TechniqueCard, load_corpus
from postlab.tools.papers.evidence import OnlinePaper
from postlab.tools.papers.extraction import (
    Cell,
    EvidenceRow,
    checked_cell,
    extract_row,
    paper_texts,
)
from postlab.tools.papers.online import read_full_text
from postlab.tools.papers.proposals import ProposedCard

Column = Literal["method", "model", "data", "hyperparameters", "benchmark", "effect"]
# A paper's text sent to the model at most (characters): abstracts and a few sections fit.
MAX_PAPER_CHARS = 12_000

TABLE_PROMPT = (
    "You fill one row of an evidence table from a paper's text. Columns: method (the technique), "
    "model (base model and size), data (kind and size), hyperparameters (learning rate, batch, "
    "epochs, rank, beta...), benchmark, effect (the reported change, with its number and unit). "
    "For each column the text states, give the value and the exact phrase of the text it comes "
    "from, copied verbatim. Leave out every column the text does not state: never guess."
)
CARD_PROMPT = (
    "You read a new paper for a post-training lab and propose a technique card, if the paper "
    "backs one of these techniques: {keys}. Give the technique key, a short name, when it "
    "applies, the effects it reports (each a claim plus the exact phrase it comes from), and, "
    "only when the text states them, the learning rate and the model size the numbers were "
    "measured at, each with its exact phrase. Copy every phrase verbatim. Set technique to null "
    "when the paper backs none of them."
)


class CellReading(BaseModel):
    """One cell as read: its column, value, and the verbatim phrase it comes from."""

    column: Column
    value: str = Field(description="The value, in the paper's own words and numbers.")
    quote: str = Field(description="The exact phrase of the paper the value is read from.")


class PaperReading(BaseModel):
    """The cells of one paper's row; columns the text does not state are left out."""

    cells: list[CellReading] = Field(default_factory=list)


class QuotedClaim(BaseModel):
    """A claim of the paper and the verbatim phrase that makes it."""

    claim: str
    quote: str


class CardReading(BaseModel):
    """A technique card read from one paper (technique null when it backs none)."""

    technique: TechniqueKey | None = None
    name: str = ""
    applies_when: QuotedClaim | None = None
    effects: list[QuotedClaim] = Field(default_factory=list)
    learning_rate: float | None = None
    learning_rate_quote: str = ""
    model_params: float | None = Field(None, description="Parameters, e.g. 1.35e8 for 135M.")
    model_params_quote: str = ""


def _ask(model: BaseChatModel, schema: type[BaseModel], system: str, paper: Any) -> Any:
    """The model's typed answer about a paper, or the reason there is none."""
    texts = "\n\n".join(f"[{where}]\n{text}" for where, text in paper_texts(paper))
    body = untrusted(texts[:MAX_PAPER_CHARS], f"paper:{paper.id}")
    messages = [SystemMessage(system), HumanMessage(f"Paper {paper.title!r}:\n{body}")]
    try:
        answer = structured(model, schema).invoke(messages)
    except Exception as error:  # noqa: BLE001 - any provider failure is a fallback, not a crash
        return f"{type(error).__name__}: {str(error)[:200]}"
    if answer.get("parsed") is None:
        return f"unusable answer ({str(answer.get('parsing_error'))[:200]})"
    return answer["parsed"]


def read_row(
    paper: PaperRecord | OnlinePaper, model: BaseChatModel
) -> tuple[EvidenceRow, list[str]]:
    """A paper's row filled by the model, each cell checked against its quote; and notes on
    what was refused. An unusable answer gives the rule-based row instead, and says so."""
    reading = _ask(model, PaperReading, TABLE_PROMPT, paper)
    if isinstance(reading, str):
        row = extract_row(paper)
        return row, [f"{paper.id}: {reading}; rule-based row instead"]
    texts = list(paper_texts(paper))
    cells: dict[str, Cell] = {}
    notes = []
    for reading_cell in reading.cells:
        if reading_cell.column in cells:
            continue  # the first reading of a column stands
        checked = checked_cell(reading_cell.value, reading_cell.quote, texts)
        if isinstance(checked, str):
            notes.append(f"{paper.id} {reading_cell.column}: refused, {checked}")
        else:
            cells[reading_cell.column] = checked
    row = EvidenceRow(paper_id=paper.id, title=paper.title, year=paper.year, cells=cells)
    return row, notes


def read_table(
    papers: list[PaperRecord | OnlinePaper], model: BaseChatModel, full_text: bool = False
) -> tuple[list[EvidenceRow], list[str]]:
    """Rows for the papers, filled by the model (from arXiv full text where asked and found)."""
    rows, notes = [], []
    for paper in papers:
        if full_text and isinstance(paper, OnlinePaper):
            paper, note = read_full_text(paper)
            notes += [note] if note else []
        row, refused = read_row(paper, model)
        rows.append(row)
        notes += refused
    return rows, notes


def propose_cards(
    papers: list[OnlinePaper], model: BaseChatModel, year: int, full_text: bool = True
) -> tuple[list[ProposedCard], list[str]]:
    """Cards the model proposes for the papers (read in full where arXiv has them), checked."""
    proposed, notes = [], []
    for paper in papers:
        if full_text:
            paper, note = read_full_text(paper)
            notes += [note] if note else []
        card, said = propose_card(paper, model, year)
        proposed += [card] if card else []
        notes += said
    return proposed, notes


def _size_in(quote: str) -> list[float]:
    """Model sizes a phrase states (135M, 1.5B, 7 billion)."""
    sizes = []
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s?(M|B|million|billion)\b", quote):
        scale = 1e6 if unit in ("M", "million") else 1e9
        sizes.append(float(number) * scale)
    return sizes


def _rates_in(quote: str) -> list[float]:
    """Numbers a phrase states (2e-5, 0.0001)."""
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e-\d+)?", quote)]


def _stated(value: float, quote: str, found: list[float], texts: list[tuple[str, str]]) -> bool:
    located = any(" ".join(quote.split()).lower() in " ".join(t.split()).lower() for _, t in texts)
    return bool(quote) and located and any(math.isclose(value, f, rel_tol=1e-3) for f in found)


@functools.cache
def _methods() -> dict[str, str]:
    """Each technique's method, as the bundled corpus's cards give it (one home for it)."""
    return {p.technique.key: p.technique.method for p in load_corpus() if p.technique is not None}


def propose_card(
    paper: OnlinePaper, model: BaseChatModel, year: int
) -> tuple[ProposedCard | None, list[str]]:
    """The technique card the model reads from a paper, every field checked against its quote;
    None when the paper backs no technique the lab runs or nothing survives the checks."""
    reading = _ask(model, CardReading, CARD_PROMPT.format(keys=", ".join(_methods())), paper)
    if isinstance(reading, str):
        return None, [f"{paper.id}: {reading}; no card proposed"]
    methods = _methods()
    if reading.technique is None or reading.technique not in methods:
        return None, [f"{paper.id}: backs no technique the lab runs"]
    texts = list(paper_texts(paper))
    notes: list[str] = []
    quotes: dict[str, str] = {}
    effects = []
    for claim in reading.effects:
        checked = checked_cell(claim.claim, claim.quote, texts)
        if isinstance(checked, str):
            notes.append(f"{paper.id} effect refused: {checked}")
            continue
        quotes[f"effects[{len(effects)}]"] = checked.quote
        effects.append(checked.value)
    applies = reading.applies_when
    checked_applies = checked_cell(applies.claim, applies.quote, texts) if applies else None
    if isinstance(checked_applies, Cell):
        quotes["applies_when"] = checked_applies.quote
    elif checked_applies:
        notes.append(f"{paper.id} applies_when refused: {checked_applies}")
    recipe: dict[str, float] = {}
    stated_numbers = (
        ("learning_rate", "learning rate", reading.learning_rate_quote, _rates_in),
        ("model_params", "model size", reading.model_params_quote, _size_in),
    )
    for field, label, quote, numbers_in in stated_numbers:
        value = getattr(reading, field)
        if value is None:
            continue
        if _stated(value, quote, numbers_in(quote), texts):
            recipe[field], quotes[f"recipe.{field}"] = value, quote
        else:
            notes.append(f"{paper.id} {label} refused: not stated in its quote")
    if not effects:
        return None, [*notes, f"{paper.id}: no effect survived the checks; no card proposed"]
    card = TechniqueCard(
        key=reading.technique,
        name=" ".join(reading.name.split())[:80] or f"{reading.technique} ({paper.title[:60]})",
        method=methods[reading.technique],
        applies_when=checked_applies.value if isinstance(checked_applies, Cell) else paper.title,
        recipe=Recipe(**recipe),
        effects=effects,
    )
    record = PaperRecord(
        id=paper.id,
        title=paper.title,
        year=paper.year or year,
        authors=paper.authors or ["unknown"],
        summary=paper.summary or paper.title,
        technique=card,
    )
    proposal = ProposedCard(
        paper=record,
        quotes=quotes,
        source=paper.url or paper.source,
        proposed_by=model_label(model),
    )
    return proposal, notes
