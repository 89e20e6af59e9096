"""Evidence tables: one row a paper, each cell a value with the source text it was read from.

Rule-based extraction over the texts a paper comes with: a corpus record's summary, technique
card (effects, recipe) and applicability; an online paper's abstract and, when fetched, its
sections. A cell is filled only when a rule matches a span, and it cites where (e.g.
`corpus:2305.14201#effects[1]`); nothing is guessed, and an unmatched cell stays empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import BaseModel, Field

from postlab.tools.papers.corpus import PaperRecord, load_corpus
from postlab.tools.papers.evidence import OnlinePaper
from postlab.tools.papers.online import search_papers

COLUMNS = ("method", "model", "data", "hyperparameters", "benchmark", "effect")

_MODEL = re.compile(
    r"\b((?:LLaMA|Llama|Qwen|Mistral|GPT|SmolLM|Pythia|OPT|T5|RoBERTa|DeBERTa|NanoGPT|Falcon|"
    r"Gemma|Phi|Tulu|Mixtral|PaLM|Chinchilla|OLMo)(?:[-.]?[\w.]*\w)?(?:[ -]\d+(?:\.\d+)?[BM])?|"
    r"\d+(?:\.\d+)?[BM](?:-parameter)?(?= (?:model|SFT|policy|base))|\d+(?:\.\d+)?[BM]-parameter)"
)
_DATA = re.compile(
    r"\b(?:about |around |~)?(\d[\d,.]*\d\s?[kKmM]?|\d\s?[kKmM])\s+(?:[a-zA-Z-]+\s){0,3}?"
    r"(examples|prompts|annotations|samples|instructions|pairs|problems|demonstrations|"
    r"comparisons|questions|tokens)\b"
)
_HYPER = re.compile(
    r"\b(learning rate(?: of)? [\d.]+e-\d+|lr [\d.]+e-\d+|batch(?: size)? (?:of )?\d+|"
    r"\d+ epochs?|rank \d+|beta (?:of )?[\d.]+|KL (?:coefficient|penalty) [\d.]+|"
    r"group (?:size )?(?:of )?\d+|\d+ samples per prompt|temperature [\d.]+)",
    re.IGNORECASE,
)
_BENCHMARK = re.compile(
    r"\b(GSM8K|MATH|MMLU|AlpacaEval|MT-Bench|HumanEval|BIG-bench|ARC|HellaSwag|TruthfulQA|"
    r"BBH|IFEval|AIME|CommonsenseQA|StrategyQA|SQuAD|GLUE|SuperGLUE|Codeforces|MBPP)\b"
)
_EFFECT = re.compile(
    r"(from \d+(?:\.\d+)?%? to \d+(?:\.\d+)?%|[+−]?\d[\d,]*(?:\.\d+)?(?:[-–]\d[\d,]*)?\s?"
    r"(?:%|x|×|points?|pp)(?![\w-])|"
    r"\d+(?:\.\d+)?x (?:less|fewer|more|faster)|near-perfect accuracy)",
    re.IGNORECASE,
)


class Cell(BaseModel):
    """One filled cell: the value, the span it was read from, and where that span lives."""

    value: str
    source: str
    quote: str


class EvidenceRow(BaseModel):
    """One paper's row: its id, title and year, and each filled column."""

    paper_id: str
    title: str
    year: int | None = None
    cells: dict[str, Cell] = Field(default_factory=dict)


def paper_texts(paper: PaperRecord | OnlinePaper) -> Iterator[tuple[str, str]]:
    """(where, text) pairs a paper's cells may be read from, best evidence first."""
    if isinstance(paper, PaperRecord):
        base = f"corpus:{paper.id}"
        if paper.technique is not None:
            for i, effect in enumerate(paper.technique.effects):
                yield f"{base}#effects[{i}]", effect
        yield f"{base}#summary", paper.summary
        if paper.technique is not None:
            yield f"{base}#applies_when", paper.technique.applies_when
        return
    base = f"{paper.source}:{paper.id}"
    yield f"{base}#abstract", paper.summary
    for section in paper.sections or []:
        yield f"{base}#{section.title}", section.text


def _first(pattern: re.Pattern, texts: list[tuple[str, str]], join: int = 1) -> Cell | None:
    """The first `join` distinct matches of a pattern across the texts, as one cell citing
    every text a value came from."""
    found: list[str] = []
    sources: list[str] = []
    quote = ""
    for source, text in texts:
        for match in pattern.finditer(text):
            value = " ".join(match.group(0).split())
            if value in found:
                continue
            found.append(value)
            if source not in sources:
                sources.append(source)
            quote = quote or _around(text, match)
            if len(found) >= join:
                break
        if len(found) >= join:
            break
    if not found:
        return None
    return Cell(value="; ".join(found), source=", ".join(sources), quote=quote)


_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e-?\d+)?")
_WORDS = re.compile(r"[a-z][a-z0-9-]{2,}")


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def checked_cell(value: str, quote: str, texts: list[tuple[str, str]]) -> Cell | str:
    """A cell read by someone else (a chat model), kept only when its quote is a span of one of
    the paper's texts and the value says no more than the quote: every number of the value is in
    it, and so is at least one of its words. Otherwise, why it was refused."""
    value, quote = " ".join(value.split()), " ".join(quote.split())
    if not value or not quote:
        return "empty value or quote"
    source = next((where for where, text in texts if _flat(quote) in _flat(text)), None)
    if source is None:
        return f"quote not found in the paper's text: {quote[:80]!r}"
    spoken = _flat(quote)
    missing = [n for n in _NUMBER.findall(value) if n not in _NUMBER.findall(spoken)]
    if missing:
        return f"value {value!r} has numbers its quote lacks: {', '.join(missing)}"
    words = _WORDS.findall(value.lower())
    if words and not any(word in spoken for word in words) and not _NUMBER.findall(value):
        return f"value {value!r} shares no word with its quote"
    return Cell(value=value, source=source, quote=quote)


def _around(text: str, match: re.Match, width: int = 60) -> str:
    start, end = max(0, match.start() - width), min(len(text), match.end() + width)
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def extract_row(paper: PaperRecord | OnlinePaper) -> EvidenceRow:
    """A paper's evidence row: every column a rule could fill from its texts."""
    texts = list(paper_texts(paper))
    cells: dict[str, Cell] = {}
    if isinstance(paper, PaperRecord) and paper.technique is not None:
        card = paper.technique
        cells["method"] = Cell(
            value=f"{card.name} ({card.method})",
            source=f"corpus:{paper.id}#technique",
            quote=card.name,
        )
        recipe = card.recipe.as_dict()
        measured_at = recipe.pop("model_params", None)
        if measured_at:
            size = f"{measured_at / 1e9:g}B" if measured_at >= 1e9 else f"{measured_at / 1e6:g}M"
            cells["model"] = Cell(
                value=f"{size} parameters", source=f"corpus:{paper.id}#recipe", quote=size
            )
        if recipe:
            settings = ", ".join(f"{k} {v:g}" for k, v in recipe.items())
            cells["hyperparameters"] = Cell(
                value=settings, source=f"corpus:{paper.id}#recipe", quote=settings
            )
    for column, pattern, many in (
        ("model", _MODEL, 2),
        ("data", _DATA, 2),
        ("hyperparameters", _HYPER, 3),
        ("benchmark", _BENCHMARK, 3),
        ("effect", _EFFECT, 1),
    ):
        if column in cells:
            continue
        if cell := _first(pattern, texts, many):
            cells[column] = cell
    if "effect" in cells:
        # The effect cell quotes its whole claim: a number means little without its condition.
        source = cells["effect"].source.split(", ")[0]
        claim = next(text for where, text in texts if where == source)
        cells["effect"] = cells["effect"].model_copy(update={"quote": claim})
    return EvidenceRow(paper_id=paper.id, title=paper.title, year=paper.year, cells=cells)


def evidence_papers(
    query: str, limit: int = 10, online: bool = False
) -> tuple[list[PaperRecord | OnlinePaper], list[str]]:
    """The papers a search finds (the corpus offline; arXiv and HF Papers with `online`), each
    as its corpus record where it has one, and the search's notes."""
    corpus = {record.id: record for record in load_corpus()}
    outcome = search_papers(query, limit=limit, sources=("arxiv", "hf") if online else ())
    return [corpus.get(paper.id) or paper for paper in outcome.papers], outcome.notes


def evidence_table(
    query: str, limit: int = 10, online: bool = False
) -> tuple[list[EvidenceRow], list[str]]:
    """Rule-based rows for the papers a search finds: a corpus paper is read from its record,
    any other from its abstract."""
    papers, notes = evidence_papers(query, limit, online)
    return [extract_row(paper) for paper in papers], notes


def as_markdown(rows: list[EvidenceRow]) -> str:
    """The table in markdown: each cell its value and, in brackets, where it was read."""
    header = ["paper", *COLUMNS]
    lines = [f"| {' | '.join(header)} |", f"| {' | '.join('---' for _ in header)} |"]
    for row in rows:
        cells = [
            f"{row.cells[c].value} [{row.cells[c].source}]" if c in row.cells else ""
            for c in COLUMNS
        ]
        title = f"{row.title} ({row.year or '—'}, {row.paper_id})"
        lines.append("| " + " | ".join(_cell_text(x) for x in (title, *cells)) + " |")
    return "\n".join(lines)


def as_records(rows: list[EvidenceRow]) -> list[dict[str, str]]:
    """Flat records for CSV: each column's value and its source side by side."""
    records = []
    for row in rows:
        record = {"paper_id": row.paper_id, "title": row.title, "year": str(row.year or "")}
        for column in COLUMNS:
            cell = row.cells.get(column)
            record[column] = cell.value if cell else ""
            record[f"{column}_source"] = cell.source if cell else ""
        records.append(record)
    return records


def _cell_text(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
