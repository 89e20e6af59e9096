"""Semantic Scholar Graph API: paper lookup by arXiv id, references and citations with paging.

A thin client of our own against https://api.semanticscholar.org/api-docs/graph: LangChain's
SemanticScholarAPIWrapper needs the ``semanticscholar`` package (not a postlab dependency) and
only searches, without the references/citations endpoints the citation walk needs. The base URL
comes from ``POSTLAB_S2_URL``; ``S2_API_KEY``, when set, is sent as ``x-api-key``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, Field

from postlab.tools.io.http import HttpClient, HttpStatusError, using

S2_URL = "https://api.semanticscholar.org"
FIELDS = "title,year,abstract,citationCount,influentialCitationCount,externalIds"
# A key grants 1 request/s; without one every caller shares a public pool, so go slower.
KEYED_INTERVAL_S = 1.0
SHARED_INTERVAL_S = 3.0
PAGE_SIZE = 100
_PREFIXES = ("ARXIV:", "DOI:", "CORPUSID:", "MAG:", "ACL:", "PMID:", "PMCID:", "URL:", "DBLP:")
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_S2_ID = re.compile(r"^[0-9a-f]{40}$")


class S2Paper(BaseModel):
    """A paper as the Graph API describes it."""

    paper_id: str
    arxiv_id: str | None = None
    title: str
    year: int | None = None
    abstract: str = ""
    citation_count: int = 0
    influential_count: int = 0
    external_ids: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """The arXiv id when known (the id the corpus uses), else the S2 paper id."""
        return self.arxiv_id or self.paper_id


class S2Page(BaseModel):
    """Papers gathered over one or more pages, and whether more were left on the server."""

    papers: list[S2Paper]
    truncated: bool = False


def s2_client() -> HttpClient:
    """The Graph API client (``POSTLAB_S2_URL``, ``S2_API_KEY``; slower without a key)."""
    key = os.environ.get("S2_API_KEY", "").strip()
    headers = {"x-api-key": key} if key else {}
    interval = KEYED_INTERVAL_S if key else SHARED_INTERVAL_S
    return HttpClient.from_env("s2", S2_URL, "POSTLAB_S2_URL", interval, secret_headers=headers)


def paper_ref(paper_id: str) -> str:
    """The Graph API's id for a paper: bare arXiv ids get ``ARXIV:`` (without version)."""
    paper_id = paper_id.strip()
    if paper_id.upper().startswith(_PREFIXES) or _S2_ID.match(paper_id):
        return paper_id
    match = _ARXIV_ID.match(paper_id)
    if match:
        return f"ARXIV:{match.group(1)}"
    return paper_id


def parse_paper(raw: dict[str, Any]) -> S2Paper | None:
    """An S2Paper from a Graph API paper object; None for unresolved (id-less) entries."""
    if not raw or not raw.get("paperId") or not raw.get("title"):
        return None
    external = raw.get("externalIds") or {}
    arxiv = external.get("ArXiv")
    return S2Paper(
        paper_id=raw["paperId"],
        arxiv_id=str(arxiv) if arxiv else None,
        title=" ".join(str(raw["title"]).split()),
        year=raw.get("year"),
        abstract=" ".join((raw.get("abstract") or "").split()),
        citation_count=raw.get("citationCount") or 0,
        influential_count=raw.get("influentialCitationCount") or 0,
        external_ids=external,
    )


def get_paper(paper_id: str, client: HttpClient | None = None) -> S2Paper | None:
    """Look a paper up (arXiv id, ``ARXIV:…`` or S2 id); None when S2 does not know it."""
    with using(client, s2_client) as http:
        response = http.get(f"/graph/v1/paper/{paper_ref(paper_id)}", {"fields": FIELDS})
    if response.status == 404:
        return None
    if not 200 <= response.status < 300:
        raise HttpStatusError("s2", response.status, response.url, response.text)
    return parse_paper(response.json())


def _paged(
    paper_id: str, edge: str, item_key: str, max_items: int, page_size: int, client: HttpClient
) -> S2Page:
    papers: list[S2Paper] = []
    offset: int | None = 0
    path = f"/graph/v1/paper/{paper_ref(paper_id)}/{edge}"
    while offset is not None and len(papers) < max_items:
        limit = min(page_size, max_items - len(papers))
        response = client.get(path, {"fields": FIELDS, "offset": offset, "limit": limit})
        if response.status == 404:
            break
        if not 200 <= response.status < 300:
            raise HttpStatusError("s2", response.status, response.url, response.text)
        body = response.json()
        # "data" is null when a publisher withholds the reference list.
        items = body.get("data") or []
        for item in items:
            paper = parse_paper(item.get(item_key) or {})
            if paper is not None:
                papers.append(paper)
        offset = body.get("next") if items else None
    return S2Page(papers=papers[:max_items], truncated=offset is not None)


def get_references(
    paper_id: str,
    max_items: int = PAGE_SIZE,
    page_size: int = PAGE_SIZE,
    client: HttpClient | None = None,
) -> S2Page:
    """Papers this paper cites (``data[].citedPaper``), following ``next`` up to max_items."""
    with using(client, s2_client) as http:
        return _paged(paper_id, "references", "citedPaper", max_items, page_size, http)


def get_citations(
    paper_id: str,
    max_items: int = PAGE_SIZE,
    page_size: int = PAGE_SIZE,
    client: HttpClient | None = None,
) -> S2Page:
    """Papers citing this paper (``data[].citingPaper``), following ``next`` up to max_items."""
    with using(client, s2_client) as http:
        return _paged(paper_id, "citations", "citingPaper", max_items, page_size, http)
