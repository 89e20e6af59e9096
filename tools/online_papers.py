"""The Librarian's online layer: search arXiv and HF Papers, walk Semantic Scholar citations.

Everything merges with the bundled corpus by arXiv id: corpus records keep their technique cards,
online papers join as background, and any unreachable service falls back to the corpus with a
note meant to be shown in progress and report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from postlab.tools import arxiv, hf_papers, semantic_scholar
from postlab.tools.arxiv import Section
from postlab.tools.http import HttpStatusError, ServiceUnavailable
from postlab.tools.papers import PaperRecord, TechniqueKey, influence, load_corpus, walk_citations

Source = Literal["arxiv", "hf", "s2", "corpus"]
LABELS = {"arxiv": "arXiv", "hf": "HF Papers", "s2": "Semantic Scholar", "corpus": "corpus"}
INFLUENCE_WEIGHT = 0.25
# Papers this influential (influential citations) get the full influence bonus.
INFLUENCE_SCALE = 1000
NEIGHBOURS_PER_PAPER = 50
_WORD = re.compile(r"[a-z0-9]+")
_VERSION = re.compile(r"^(\d{4}\.\d{4,5})v\d+$")
# fmt: off
_STOP = frozenset({
    "a", "an", "the", "of", "for", "and", "or", "in", "on", "to", "with", "by", "via", "is", "are",
    "be", "we", "our", "from", "as", "at", "this", "that", "using", "model", "models", "language",
    "large", "llm", "llms", "paper", "approach", "method", "methods",
})
# fmt: on
# Most specific first: a DPO paper also says "fine-tuning", a QLoRA paper also says "LoRA".
# fmt: off
_HINTS: list[tuple[str, tuple[str, ...]]] = [
    ("grpo", ("group relative policy", "grpo", "verifiable reward", "rlvr", "r1-zero",
              "reinforcement learning", "reinforce", "policy optimization", "ppo")),
    ("dpo", ("direct preference", "preference optimization", "dpo", "preference pair",
             "kto", "orpo", "simpo", "ipo")),
    ("rejection_sampling", ("rejection sampling", "best-of-n", "self-taught reason", "star",
                            "expert iteration", "rest", "rft", "self-training")),
    ("curriculum", ("curriculum", "easy-to-hard", "easy to hard")),
    ("sft_lora", ("lora", "low-rank adaptation", "qlora", "parameter-efficient", "adapter")),
    ("data_quality", ("data quality", "data selection", "deduplicat", "filtering", "less is more",
                      "high-quality data", "contamination", "data pruning", "self-instruct")),
    ("sft_full", ("instruction tuning", "instruction-tuning", "supervised fine-tuning",
                  "fine-tuning", "finetuning", "instruction following", "distillation")),
]
# fmt: on


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


def _terms(text: str) -> set[str]:
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1)
    # A crude stem so "preferences"/"preference" and "rewards"/"reward" meet.
    return {w[:-1] if len(w) > 4 and w.endswith("s") else w for w in words}


def relevance(goal: str, title: str, summary: str) -> float:
    """Share of the goal's terms found in the paper, title hits counting double (0..1)."""
    wanted = _terms(goal)
    if not wanted:
        return 0.0
    in_title, in_text = _terms(title), _terms(summary)
    hits = sum(2 * (t in in_title) + (t in in_text) for t in wanted)
    return hits / (3 * len(wanted))


def _influence_bonus(count: int | None) -> float:
    if not count:
        return 0.0
    return INFLUENCE_WEIGHT * min(1.0, math.log1p(count) / math.log1p(INFLUENCE_SCALE))


def technique_hint(paper: OnlinePaper | PaperRecord) -> TechniqueKey | None:
    """The technique key a paper's title and summary point to, or None."""
    title, text = paper.title.lower(), f"{paper.title} {paper.summary}".lower()
    best: tuple[int, TechniqueKey | None] = (0, None)
    for key, patterns in _HINTS:
        hits = sum(
            2 * bool(re.search(rf"\b{re.escape(p)}", title))
            + bool(re.search(rf"\b{re.escape(p)}", text))
            for p in patterns
        )
        if hits > best[0]:
            best = (hits, key)  # type: ignore[assignment]
    return best[1]


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


def _merge(into: dict[str, OnlinePaper], paper: OnlinePaper) -> None:
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


def _annotate(papers: dict[str, OnlinePaper], corpus: list[PaperRecord]) -> None:
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


def _from_arxiv(entry: arxiv.ArxivEntry) -> OnlinePaper:
    fields = entry.model_dump(include=_COMMON)
    return OnlinePaper(**fields, source="arxiv", sources=["arxiv"], url=entry.abs_url)


def _from_hf(paper: hf_papers.HfPaper) -> OnlinePaper:
    return OnlinePaper(**paper.model_dump(include=_COMMON | {"url"}), source="hf", sources=["hf"])


def _from_s2(paper: semantic_scholar.S2Paper) -> OnlinePaper:
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


def _rank(papers: Iterable[OnlinePaper], goal: str, cited: dict[str, int]) -> list[OnlinePaper]:
    ranked = []
    for paper in papers:
        count = paper.influential_count or cited.get(paper.id) or paper.citation_count
        score = relevance(goal, paper.title, paper.summary) + _influence_bonus(count)
        ranked.append(paper.model_copy(update={"score": round(score, 4)}))
    ranked.sort(key=lambda p: (-p.score, p.id))
    return ranked


def _note(source: str, error: Exception) -> str:
    reason = error.reason if isinstance(error, ServiceUnavailable) else str(error)
    return f"{LABELS[source]} unreachable ({reason}): used the bundled corpus"


def search_papers(
    query: str,
    limit: int = 10,
    sources: Sequence[str] = ("arxiv", "hf"),
    corpus: list[PaperRecord] | None = None,
) -> SearchOutcome:
    """Search the online sources, merge with corpus matches by id, rank by relevance."""
    corpus = load_corpus() if corpus is None else corpus
    found: dict[str, OnlinePaper] = {}
    notes: list[str] = []
    reached = 0
    for source in sources:
        try:
            if source == "arxiv":
                papers = [_from_arxiv(e) for e in arxiv.search_arxiv(query, limit).entries]
            elif source == "hf":
                papers = [_from_hf(p) for p in hf_papers.search_hf_papers(query, limit)]
            else:
                raise ValueError(f"unknown paper source {source!r}; expected arxiv or hf")
            reached += 1
        except ServiceUnavailable as error:
            notes.append(_note(source, error))
            continue
        except (HttpStatusError, arxiv.ArxivError) as error:
            notes.append(f"{LABELS[source]} failed ({error}); its results are missing")
            reached += 1
            continue
        for paper in papers:
            _merge(found, paper)
    cited = influence(corpus)
    for record in corpus:
        if relevance(query, record.title, record.summary) > 0 or record.id in found:
            _merge(found, from_record(record, cited[record.id]))
    offline = bool(sources) and reached == 0
    if not found:
        notes.append("no corpus paper matches the query: showing the most cited ones")
        for record in sorted(corpus, key=lambda r: -cited[r.id])[:limit]:
            _merge(found, from_record(record, cited[record.id]))
    _annotate(found, corpus)
    return SearchOutcome(
        papers=_rank(found.values(), query, cited)[:limit], notes=notes, offline=offline
    )


def remember_papers(memory: Any, papers: Iterable[OnlinePaper]) -> int:
    """Store papers found online (not those already in the corpus) in memory's ``papers``."""
    new = [p for p in papers if not p.in_corpus]
    if new:
        memory.add_many(
            "papers",
            [p.document() for p in new],
            [p.memory_metadata() for p in new],
            ids=[f"online-paper-{p.id}" for p in new],
        )
    return len(new)


def _corpus_walk(
    seed_ids: list[str], goal: str, max_papers: int, max_hops: int, corpus: list[PaperRecord]
) -> WalkOutcome:
    cited = influence(corpus)
    by_id = {r.id: r for r in corpus}
    seeds = [s for s in seed_ids if s in by_id]
    if not seeds:
        # Unknown seeds: start from the corpus papers closest to the goal instead.
        scored = sorted(corpus, key=lambda r: (-relevance(goal, r.title, r.summary), -cited[r.id]))
        seeds = [r.id for r in scored[:3]]
    goal = goal or " ".join(by_id[s].title for s in seeds)
    walked = dict(walk_citations(corpus, seeds, max_hops=max_hops, max_papers=max_papers))
    edges = [(p, c) for p in walked for c in by_id[p].cites if c in walked]
    papers = _rank((from_record(by_id[p], cited[p]) for p in walked), goal, cited)
    return WalkOutcome(papers=papers, edges=edges, hops=walked)


def citation_walk(
    seed_ids: list[str],
    goal: str,
    max_papers: int = 20,
    max_hops: int = 2,
    corpus: list[PaperRecord] | None = None,
    per_paper: int = NEIGHBOURS_PER_PAPER,
) -> WalkOutcome:
    """Breadth-first over S2 references and citations; each hop admits its best-ranked papers."""
    corpus = load_corpus() if corpus is None else corpus
    seed_ids = [_VERSION.sub(r"\1", s.strip()) for s in seed_ids]
    cited = influence(corpus)
    papers: dict[str, OnlinePaper] = {}
    hops: dict[str, int] = {}
    edges: dict[tuple[str, str], None] = {}  # ordered set
    notes: list[str] = []
    http = semantic_scholar.s2_client()  # one connection pool for the whole walk
    try:
        for seed in seed_ids:
            try:
                found = semantic_scholar.get_paper(seed, client=http)
            except HttpStatusError as error:
                notes.append(f"Semantic Scholar rejected seed {seed!r}: HTTP {error.status}")
                continue
            if found is None:
                notes.append(f"Semantic Scholar does not know seed {seed!r}")
            elif found.key not in papers and len(papers) < max_papers:
                papers[found.key], hops[found.key] = _from_s2(found), 0
        frontier = list(papers)
        # Without a goal, the seeds' own titles say what the walk is about.
        goal = goal or " ".join(p.title for p in papers.values())
        for hop in range(1, max_hops + 1):
            candidates: dict[str, OnlinePaper] = {}
            for current in frontier:
                if len(papers) + len(candidates) >= max_papers * 4:
                    break  # enough candidates to fill the budget; spare the rate limit
                refs = semantic_scholar.get_references(current, per_paper, client=http).papers
                cits = semantic_scholar.get_citations(current, per_paper, client=http).papers
                pairs = [(p, (current, p.key)) for p in refs]
                pairs += [(p, (p.key, current)) for p in cits]
                for paper, edge in pairs:
                    edges[edge] = None
                    if paper.key not in papers:
                        _merge(candidates, _from_s2(paper))
            chosen = _rank(candidates.values(), goal, cited)[: max_papers - len(papers)]
            for paper in chosen:
                papers[paper.id], hops[paper.id] = paper, hop
            frontier = [p.id for p in chosen]
            if not frontier:
                break
    except ServiceUnavailable as error:
        notes.append(_note("s2", error))
        offline = True
    else:
        offline = False
    finally:
        http.close()
    if offline or not papers:
        if not offline:
            notes.append("Semantic Scholar found no seed paper: used the bundled corpus")
        # Keep what was read online; the corpus walk fills the rest of the budget.
        fallback = _corpus_walk(seed_ids, goal, max_papers, max_hops, corpus)
        for paper in fallback.papers:
            if len(papers) >= max_papers:
                break
            if paper.id not in papers:
                hops[paper.id] = fallback.hops[paper.id]
            _merge(papers, paper)
        edges.update(dict.fromkeys(fallback.edges))
    kept = [(a, b) for a, b in edges if a in papers and b in papers]
    _annotate(papers, corpus)
    ranked = _rank(papers.values(), goal, cited)
    return WalkOutcome(
        papers=ranked,
        edges=kept,
        hops={p.id: hops[p.id] for p in ranked},
        notes=notes,
        offline=offline,
    )


def read_full_text(paper: OnlinePaper) -> tuple[OnlinePaper, str | None]:
    """The paper with its arXiv HTML sections, plus a note when the text could not be read."""
    try:
        sections = arxiv.fetch_arxiv_html(paper.id)
    except ServiceUnavailable as error:
        return paper, _note("arxiv", error).replace("used the bundled corpus", "kept the summary")
    note = None if sections else f"no HTML full text for {paper.id}: kept the summary"
    return paper.model_copy(update={"sections": sections or None}), note
