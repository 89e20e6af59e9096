"""arXiv: the export API (Atom feed) and the HTML full-text pages, split into sections.

A thin client of our own against the documented formats (https://info.arxiv.org/help/api/):
LangChain's ArxivAPIWrapper needs the ``arxiv`` package, which postlab does not depend on, and
would bypass our cache, rate limit and offline fallback. Base URLs come from
``POSTLAB_ARXIV_URL`` (API) and ``POSTLAB_ARXIV_HTML_URL`` (HTML pages).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser

from pydantic import BaseModel, Field

from postlab.tools.io.http import HttpClient, using

ARXIV_URL = "https://export.arxiv.org"
ARXIV_HTML_URL = "https://arxiv.org"
# arXiv's terms of use ask for no more than one API request every three seconds.
ARXIV_MIN_INTERVAL_S = 3.0
HTML_MIN_INTERVAL_S = 1.0
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
_FIELDED = re.compile(r"\b(ti|au|abs|co|jr|cat|rn|id|all):|\b(AND|OR|ANDNOT)\b")
_TOKEN = re.compile(r'"[^"]+"|[\w][\w.\-]*')
_STOP = {"a", "an", "the", "of", "for", "and", "or", "in", "on", "to", "with", "by", "via", "is"}
_ID = re.compile(r"abs/(?P<id>.+?)(?:v(?P<version>\d+))?$")


class ArxivError(ValueError):
    """The arXiv API answered with an error entry (e.g. a malformed query)."""


class ArxivEntry(BaseModel):
    """One arXiv paper from the Atom feed."""

    id: str
    version: int | None = None
    title: str
    summary: str
    authors: list[str] = Field(default_factory=list)
    published: str = ""
    year: int | None = None
    primary_category: str = ""
    categories: list[str] = Field(default_factory=list)
    abs_url: str = ""
    pdf_url: str = ""
    html_url: str = ""
    doi: str = ""
    comment: str = ""


class ArxivPage(BaseModel):
    """One page of search results with the feed's paging counters."""

    entries: list[ArxivEntry]
    total_results: int
    start: int
    items_per_page: int


class Section(BaseModel):
    """A section of a paper's full text: heading, heading level (2 or 3) and plain text."""

    title: str
    level: int = 2
    text: str


def arxiv_client() -> HttpClient:
    """The arXiv API client (``POSTLAB_ARXIV_URL``, ≥3 s between calls by default)."""
    return HttpClient.from_env("arxiv", ARXIV_URL, "POSTLAB_ARXIV_URL", ARXIV_MIN_INTERVAL_S)


def arxiv_html_client() -> HttpClient:
    """The arXiv HTML client (``POSTLAB_ARXIV_HTML_URL``)."""
    return HttpClient.from_env(
        "arxiv_html", ARXIV_HTML_URL, "POSTLAB_ARXIV_HTML_URL", HTML_MIN_INTERVAL_S
    )


def build_query(text: str, field: str = "all") -> str:
    """Free text → ``all:w1 AND all:w2``; a query already in arXiv syntax passes through."""
    text = text.strip()
    if _FIELDED.search(text):
        return text
    words = [w for w in _TOKEN.findall(text) if w.lower() not in _STOP]
    return " AND ".join(f"{field}:{w}" for w in words) or f"{field}:{text}"


def _text(node: ET.Element | None) -> str:
    return " ".join((node.text or "").split()) if node is not None else ""


def split_arxiv_id(url_or_id: str) -> tuple[str, int | None]:
    """``http://arxiv.org/abs/2305.18290v3`` → ("2305.18290", 3); old ids keep their archive."""
    match = _ID.search(url_or_id) or _ID.search(f"abs/{url_or_id}")
    assert match is not None  # the fallback form always matches
    version = match.group("version")
    return match.group("id"), int(version) if version else None


def parse_feed(xml_text: str, html_base: str = ARXIV_HTML_URL) -> ArxivPage:
    """Parse an arXiv Atom feed; ArxivError for the API's error entries."""
    root = ET.fromstring(xml_text)
    entries: list[ArxivEntry] = []
    for node in root.findall("atom:entry", NS):
        raw_id = _text(node.find("atom:id", NS))
        if "/api/errors" in raw_id:
            raise ArxivError(_text(node.find("atom:summary", NS)) or raw_id)
        arxiv_id, version = split_arxiv_id(raw_id)
        published = _text(node.find("atom:published", NS))
        links = {
            (link.get("title") or link.get("rel") or ""): link.get("href", "")
            for link in node.findall("atom:link", NS)
        }
        primary = node.find("arxiv:primary_category", NS)
        suffix = f"v{version}" if version else ""
        entries.append(
            ArxivEntry(
                id=arxiv_id,
                version=version,
                title=_text(node.find("atom:title", NS)),
                summary=_text(node.find("atom:summary", NS)),
                authors=[_text(a.find("atom:name", NS)) for a in node.findall("atom:author", NS)],
                published=published,
                year=int(published[:4]) if published[:4].isdigit() else None,
                primary_category=primary.get("term", "") if primary is not None else "",
                categories=[c.get("term", "") for c in node.findall("atom:category", NS)],
                abs_url=links.get("alternate", raw_id),
                pdf_url=links.get("pdf", ""),
                html_url=f"{html_base.rstrip('/')}/html/{arxiv_id}{suffix}",
                doi=_text(node.find("arxiv:doi", NS)),
                comment=_text(node.find("arxiv:comment", NS)),
            )
        )

    def counter(name: str, default: int) -> int:
        value = _text(root.find(f"opensearch:{name}", NS))
        return int(value) if value.isdigit() else default

    return ArxivPage(
        entries=entries,
        total_results=counter("totalResults", len(entries)),
        start=counter("startIndex", 0),
        items_per_page=counter("itemsPerPage", len(entries)),
    )


def search_arxiv(
    query: str,
    max_results: int = 10,
    start: int = 0,
    sort_by: str = "relevance",
    client: HttpClient | None = None,
) -> ArxivPage:
    """One page of an arXiv API search (``search_query`` syntax or free text)."""
    params = {
        "search_query": build_query(query),
        "start": start,
        "max_results": max_results,
        "sortBy": sort_by,
        "sortOrder": "descending",
    }
    with using(client, arxiv_client) as http:
        return parse_feed(http.get_text("/api/query", params), _html_base())


def iter_arxiv(
    query: str, total: int, page_size: int = 50, client: HttpClient | None = None
) -> Iterator[ArxivEntry]:
    """Up to ``total`` entries, fetched page by page (each page waits for the rate limit)."""
    with using(client, arxiv_client) as http:
        start = 0
        while start < total:
            page = search_arxiv(query, min(page_size, total - start), start, client=http)
            yield from page.entries
            start += len(page.entries)
            if not page.entries or start >= page.total_results:
                return


def fetch_arxiv_entries(ids: list[str], client: HttpClient | None = None) -> list[ArxivEntry]:
    """Look papers up by arXiv id (``id_list``)."""
    if not ids:
        return []
    params = {"id_list": ",".join(ids), "max_results": len(ids)}
    with using(client, arxiv_client) as http:
        return parse_feed(http.get_text("/api/query", params), _html_base()).entries


def _html_base() -> str:
    return os.environ.get("POSTLAB_ARXIV_HTML_URL", "").strip() or ARXIV_HTML_URL


class _SectionParser(HTMLParser):
    """Collects text per h2/h3 section of an arXiv (LaTeXML) page; math becomes its TeX."""

    _SKIP = {"script", "style", "nav", "header", "footer", "button", "svg"}
    _BLOCK = {"p", "div", "li", "br", "tr", "figcaption", "table", "section", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, int, list[str]]] = []
        self._heading: tuple[str, int] | None = None
        self._heading_text: list[str] = []
        self._skip_depth = 0
        self._in_math = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if self._skip_depth or tag in self._SKIP:
            self._skip_depth += tag in self._SKIP
            return
        if tag == "math":
            self._in_math += 1
            if self._in_math == 1:
                self._emit(f" {attr.get('alttext') or ''} ")
            return
        classes = attr.get("class") or ""
        if tag in ("h2", "h3") or (tag.startswith("h") and "ltx_title_abstract" in classes):
            self._heading = (tag, 3 if tag == "h3" else 2)
            self._heading_text = []
        elif tag in self._BLOCK:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            self._skip_depth -= tag in self._SKIP
            return
        if tag == "math":
            self._in_math = max(0, self._in_math - 1)
        elif self._heading and tag == self._heading[0]:
            title = " ".join("".join(self._heading_text).split())
            self.sections.append((title, self._heading[1], []))
            self._heading = None
        elif tag in self._BLOCK:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth and not self._in_math:
            self._emit(data)

    def _emit(self, text: str) -> None:
        if self._heading is not None:
            self._heading_text.append(text)
        elif self.sections:
            self.sections[-1][2].append(text)


def parse_sections(html: str) -> list[Section]:
    """Split an HTML paper into sections at its h2/h3 headings (text before them is dropped)."""
    parser = _SectionParser()
    parser.feed(html)
    parser.close()
    sections = []
    for title, level, parts in parser.sections:
        lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
        sections.append(Section(title=title, level=level, text="\n".join(li for li in lines if li)))
    return sections


def fetch_arxiv_html(arxiv_id: str, client: HttpClient | None = None) -> list[Section]:
    """Full text of a paper from arXiv's HTML rendering; [] when arXiv has no HTML for it."""
    with using(client, arxiv_html_client) as http:
        response = http.get(f"/html/{arxiv_id}")
    # arXiv answers 404 for papers it could not convert to HTML: no full text, not an outage.
    if not 200 <= response.status < 300:
        return []
    return parse_sections(response.text)
