"""Offline post-training paper corpus: schema, loading and citation-graph helpers.

Everything here is pure and local: no network access and no vector store. The bundled
corpus lives in ``papers.json`` inside the ``postlab.tools.papers`` package.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postlab.records.outcomes import TechniqueKey

Method = Literal["sft", "grpo", "dpo", "data"]

TECHNIQUE_KEYS: tuple[str, ...] = get_args(TechniqueKey)

_PACKAGE = "postlab.tools.papers"
_CORPUS_RESOURCE = ("papers.json",)


class CorpusError(ValueError):
    """The paper corpus is malformed; ``paper_id`` names the offending record when known."""

    def __init__(self, message: str, paper_id: str | None = None) -> None:
        super().__init__(message)
        self.paper_id = paper_id


class Recipe(BaseModel):
    """Numeric training settings a paper reports or recommends; every field is optional."""

    # strict so that a typo like "2e-4" as a string fails loudly instead of being coerced
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    learning_rate: float | None = Field(default=None, gt=0)
    lora_r: int | None = Field(default=None, ge=1)
    lora_alpha: int | None = Field(default=None, ge=1)
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    train_examples: int | None = Field(default=None, ge=1)
    num_generations: int | None = Field(default=None, ge=1)
    # beta may legitimately be 0 (e.g. DAPO drops the KL term entirely)
    beta: float | None = Field(default=None, ge=0)
    max_steps: int | None = Field(default=None, ge=1)
    # Parameters of the model the paper's numbers were measured on (learning rates scale with it).
    model_params: float | None = Field(default=None, gt=0)

    def as_dict(self) -> dict[str, float | int]:
        """Return only the settings that are present."""
        return self.model_dump(exclude_none=True)


class TechniqueCard(BaseModel):
    """What a paper contributes that the Trainer/DataEngineer can act on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: TechniqueKey
    name: str = Field(min_length=1)
    method: Method
    applies_when: str = Field(min_length=1)
    recipe: Recipe = Field(default_factory=Recipe)
    effects: list[str] = Field(default_factory=list)


class PaperRecord(BaseModel):
    """One paper in the corpus, written in our own words, with its in-corpus citations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    year: int = Field(ge=1900, le=2100)
    authors: list[str] = Field(min_length=1)
    summary: str = Field(min_length=1)
    topics: list[str] = Field(default_factory=list)
    technique: TechniqueCard | None = None
    cites: list[str] = Field(default_factory=list)

    def document(self) -> str:
        """Text to embed for retrieval: title, summary, topics and the technique card's prose."""
        parts = [self.title, self.summary]
        if self.topics:
            parts.append("Topics: " + ", ".join(self.topics))
        if self.technique is not None:
            parts.append(f"Technique: {self.technique.name}")
            parts.append("Applies when: " + self.technique.applies_when)
            if self.technique.effects:
                parts.append("Effects: " + "; ".join(self.technique.effects))
        return "\n".join(parts)


def _read_bundled() -> tuple[str, str]:
    resource = resources.files(_PACKAGE).joinpath(*_CORPUS_RESOURCE)
    return resource.read_text(encoding="utf-8"), f"{_PACKAGE}/{'/'.join(_CORPUS_RESOURCE)}"


def _format_validation_error(err: ValidationError) -> str:
    problems = []
    for item in err.errors():
        where = ".".join(str(part) for part in item["loc"]) or "<record>"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def _parse_records(raw: Any, source: str) -> list[PaperRecord]:
    if not isinstance(raw, list):
        kind = type(raw).__name__
        raise CorpusError(f"{source}: top level must be a list of records, got {kind}")
    records: list[PaperRecord] = []
    for index, item in enumerate(raw):
        # the id is recovered before validation so schema errors can still name the record
        raw_id = item.get("id") if isinstance(item, dict) else None
        label = repr(raw_id) if isinstance(raw_id, str) and raw_id else f"at index {index}"
        if not isinstance(item, dict):
            raise CorpusError(f"{source}: record {label} is not an object")
        try:
            records.append(PaperRecord.model_validate(item))
        except ValidationError as err:
            raise CorpusError(
                f"{source}: record {label} fails the schema: {_format_validation_error(err)}",
                paper_id=raw_id if isinstance(raw_id, str) else None,
            ) from err
    return records


def _check_graph(records: list[PaperRecord], source: str) -> None:
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise CorpusError(f"{source}: duplicate paper id {record.id!r}", paper_id=record.id)
        seen.add(record.id)
    for record in records:
        if record.id in record.cites:
            raise CorpusError(f"{source}: record {record.id!r} cites itself", paper_id=record.id)
        if len(set(record.cites)) != len(record.cites):
            raise CorpusError(
                f"{source}: record {record.id!r} lists a citation more than once",
                paper_id=record.id,
            )
        dangling = [cited for cited in record.cites if cited not in seen]
        if dangling:
            raise CorpusError(
                f"{source}: record {record.id!r} cites ids not in the corpus: {dangling}",
                paper_id=record.id,
            )


def load_corpus(path: Path | None = None) -> list[PaperRecord]:
    """Load and validate the corpus (the bundled one when ``path`` is None)."""
    if path is None:
        text, source = _read_bundled()
    else:
        path = Path(path)
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorpusError(
            f"{source}: malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from err
    records = _parse_records(raw, source)
    _check_graph(records, source)
    return records


def _adjacency(corpus: Iterable[PaperRecord]) -> dict[str, list[str]]:
    # cited papers first (in the record's own order), then citing papers in corpus order,
    # so traversal order depends only on the corpus contents, never on set/hash order
    records = list(corpus)
    neighbours: dict[str, list[str]] = {r.id: [] for r in records}
    for record in records:
        for cited in record.cites:
            if cited in neighbours and cited not in neighbours[record.id]:
                neighbours[record.id].append(cited)
    for record in records:
        for cited in record.cites:
            if cited in neighbours and record.id not in neighbours[cited]:
                neighbours[cited].append(record.id)
    return neighbours


def citation_neighbours(corpus: list[PaperRecord], paper_id: str) -> list[str]:
    """Ids the paper cites followed by ids of papers citing it; KeyError if the id is unknown."""
    neighbours = _adjacency(corpus)
    if paper_id not in neighbours:
        raise KeyError(f"unknown paper id {paper_id!r}")
    return list(neighbours[paper_id])


def walk_citations(
    corpus: list[PaperRecord],
    seeds: list[str],
    max_hops: int = 2,
    max_papers: int = 20,
) -> list[tuple[str, int]]:
    """Breadth-first walk over citations in both directions, returning (id, hop) pairs."""
    if max_hops < 0:
        raise ValueError(f"max_hops must be >= 0, got {max_hops}")
    if max_papers < 1:
        raise ValueError(f"max_papers must be >= 1, got {max_papers}")
    neighbours = _adjacency(corpus)
    unknown = [seed for seed in seeds if seed not in neighbours]
    if unknown:
        raise KeyError(f"unknown seed paper ids: {unknown}")

    visited: dict[str, int] = {}
    queue: deque[str] = deque()
    for seed in seeds:
        if seed not in visited and len(visited) < max_papers:
            visited[seed] = 0
            queue.append(seed)
    while queue and len(visited) < max_papers:
        current = queue.popleft()
        hop = visited[current]
        if hop >= max_hops:
            continue
        for nxt in neighbours[current]:
            if nxt in visited:
                continue
            visited[nxt] = hop + 1
            queue.append(nxt)
            if len(visited) >= max_papers:
                break
    # dicts keep insertion order, which is exactly the BFS discovery order
    return list(visited.items())


def influence(corpus: list[PaperRecord]) -> dict[str, int]:
    """How many corpus papers cite each paper (0 for uncited ones), in corpus order."""
    counts = {record.id: 0 for record in corpus}
    for record in corpus:
        for cited in set(record.cites):
            if cited in counts:
                counts[cited] += 1
    return counts
