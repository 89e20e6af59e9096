"""A paper as evidence: one record merged from arXiv, HF Papers, Semantic Scholar and the corpus."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from postlab.tools.papers import arxiv, hf_papers, semantic_scholar
from postlab.tools.papers.arxiv import Section
from postlab.tools.papers.corpus import (
    PaperRecord,
    TechniqueKey,
)
from postlab.tools.papers.relevance import (
    technique_hint,
)

LABELS = {"arxiv": "arXiv", "hf": "HF Papers", "s2": "Semantic Scholar", "corpus": "corpus"}


_VERSION = re.compile(r"^(\d{4}\.\d{4,5})v\d+$")

Source = Literal["arxiv", "hf", "s2", "corpus"]


class OnlinePaper(BaseModel):
    """A paper found online or in the corpus, keyed by arXiv id where it has one."""

    id: str
    title: str
    year: int | None = None
    summary: str = ""
    authors: list[str] = Field(default_factory=list)
    source: Source
    sources: list[Source] = Field(default_factory=list)
    citation_count: int | None = None
    influential_count: int | None = None
    url: str = ""
    technique: TechniqueKey | None = None
    in_corpus: bool = False
    score: float = 0.0
    sections: list[Section] | None = None

    def document(self) -> str:
        """Text to embed in memory: title, summary and the technique it backs."""
        parts = [self.title, self.summary]
        if self.technique:
            parts.append(f"Technique: {self.technique} (source: {LABELS[self.source]} {self.id})")
        return "\n".join(p for p in parts if p)

    def memory_metadata(self) -> dict[str, Any]:
        """Metadata for the memory's ``papers`` kind (same keys as the corpus index)."""
        return {
            "paper_id": self.id,
            "title": self.title,
            "year": self.year or 0,
            "technique": self.technique or "",
            "source": self.source,
            "url": self.url,
        }


class SearchOutcome(BaseModel):
    """Merged search results, notes to show the user, and whether every service was down."""

    papers: list[OnlinePaper]
    notes: list[str] = Field(default_factory=list)
    offline: bool = False


class WalkOutcome(BaseModel):
    """A citation walk: papers (ranked), (citing, cited) edges, hop per paper, notes."""

    papers: list[OnlinePaper]
    edges: list[tuple[str, str]] = Field(default_factory=list)
    hops: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    offline: bool = False


def from_record(record: PaperRecord, cited_by: int = 0) -> OnlinePaper:
    """A corpus record as an OnlinePaper (its technique card's key included)."""
    return OnlinePaper(
        id=record.id,
        title=record.title,
        year=record.year,
        summary=record.summary,
        authors=list(record.authors),
        source="corpus",
        sources=["corpus"],
        citation_count=cited_by,
        technique=record.technique.key if record.technique else None,
        in_corpus=True,
        url=f"https://arxiv.org/abs/{record.id}" if record.id[:1].isdigit() else "",
    )


def merge_paper(into: dict[str, OnlinePaper], paper: OnlinePaper) -> None:
    old = into.get(paper.id)
    if old is None:
        into[paper.id] = paper
        return
    filled = {
        k: v
        for k, v in paper.model_dump(exclude={"id", "source", "sources"}).items()
        if v not in (None, "", [], 0) and getattr(old, k) in (None, "", [], 0, False)
    }
    sources = old.sources + [s for s in paper.sources if s not in old.sources]
    into[paper.id] = old.model_copy(update={**filled, "sources": sources})


def annotate_papers(papers: dict[str, OnlinePaper], corpus: list[PaperRecord]) -> None:
    by_id = {r.id: r for r in corpus}
    for key, paper in papers.items():
        record = by_id.get(key)
        if record is not None and record.technique is not None:
            # The corpus card was written by hand: it wins over keyword guessing.
            papers[key] = paper.model_copy(update={"technique": record.technique.key})
        elif record is None and paper.technique is None:
            papers[key] = paper.model_copy(update={"technique": technique_hint(paper)})
        if record is not None:
            papers[key] = papers[key].model_copy(update={"in_corpus": True})


_COMMON = {"id", "title", "year", "summary", "authors"}


def from_arxiv_paper(entry: arxiv.ArxivEntry) -> OnlinePaper:
    fields = entry.model_dump(include=_COMMON)
    return OnlinePaper(**fields, source="arxiv", sources=["arxiv"], url=entry.abs_url)


def from_hf_paper(paper: hf_papers.HfPaper) -> OnlinePaper:
    return OnlinePaper(**paper.model_dump(include=_COMMON | {"url"}), source="hf", sources=["hf"])


def from_s2_paper(paper: semantic_scholar.S2Paper) -> OnlinePaper:
    return OnlinePaper(
        id=paper.key,
        title=paper.title,
        year=paper.year,
        summary=paper.abstract,
        source="s2",
        sources=["s2"],
        citation_count=paper.citation_count,
        influential_count=paper.influential_count,
        url=f"https://www.semanticscholar.org/paper/{paper.paper_id}",
    )
