"""The Librarian's online layer: search arXiv and HF Papers, walk Semantic Scholar citations.

Everything merges with the bundled corpus by arXiv id: corpus records keep their technique cards,
online papers join as background, and any unreachable service falls back to the corpus with a
note meant to be shown in progress and report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from postlab.tools.io.http import HttpStatusError, ServiceUnavailable
from postlab.tools.papers import arxiv, hf_papers, semantic_scholar
from postlab.tools.papers.corpus import (
    PaperRecord,
    influence,
    load_corpus,
    walk_citations,
)
from postlab.tools.papers.evidence import (
    _VERSION,
    LABELS,
    OnlinePaper,
    SearchOutcome,
    WalkOutcome,
    annotate_papers,
    from_arxiv_paper,
    from_hf_paper,
    from_record,
    from_s2_paper,
    merge_paper,
)
from postlab.tools.papers.relevance import (
    influence_bonus,
    query_technique,
    relevance,
)

NEIGHBOURS_PER_PAPER = 50
# Added to a paper of the technique a query names: above any difference in word overlap.
TECHNIQUE_INTENT_BONUS = 0.5
# fmt: on


def _rank(papers: Iterable[OnlinePaper], goal: str, cited: dict[str, int]) -> list[OnlinePaper]:
    ranked = []
    # A query that names a technique wants that technique's papers before word matches.
    intent = query_technique(goal)
    for paper in papers:
        count = paper.influential_count or cited.get(paper.id) or paper.citation_count
        score = relevance(goal, paper.title, paper.summary) + influence_bonus(count)
        if intent is not None and paper.technique == intent:
            score += TECHNIQUE_INTENT_BONUS
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
                papers = [from_arxiv_paper(e) for e in arxiv.search_arxiv(query, limit).entries]
            elif source == "hf":
                papers = [from_hf_paper(p) for p in hf_papers.search_hf_papers(query, limit)]
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
            merge_paper(found, paper)
    cited = influence(corpus)
    for record in corpus:
        if relevance(query, record.title, record.summary) > 0 or record.id in found:
            merge_paper(found, from_record(record, cited[record.id]))
    offline = bool(sources) and reached == 0
    if not found:
        notes.append("no corpus paper matches the query: showing the most cited ones")
        for record in sorted(corpus, key=lambda r: -cited[r.id])[:limit]:
            merge_paper(found, from_record(record, cited[record.id]))
    annotate_papers(found, corpus)
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
                papers[found.key], hops[found.key] = from_s2_paper(found), 0
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
                        merge_paper(candidates, from_s2_paper(paper))
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
            merge_paper(papers, paper)
        edges.update(dict.fromkeys(fallback.edges))
    kept = [(a, b) for a, b in edges if a in papers and b in papers]
    annotate_papers(papers, corpus)
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
