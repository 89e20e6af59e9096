"""Hugging Face Papers: search, paper info with linked models and datasets, daily papers.

Requests go to the same endpoints with the same parameters as ``HfApi.list_papers``,
``paper_info``, ``list_daily_papers`` and ``list_models/list_datasets(filter="arxiv:…")``, and the
answers are parsed with huggingface_hub's own ``PaperInfo``. They travel through our
:class:`HttpClient` rather than HfApi's shared session because that session has no timeout, no
retries and no cache for these endpoints, and reads ``HF_ENDPOINT``/``HF_HUB_OFFLINE`` only once,
at import. Here ``HF_ENDPOINT`` is read at call time; ``HF_HUB_OFFLINE=1`` is honoured.
"""

from __future__ import annotations

import copy
from typing import Any

from huggingface_hub.hf_api import PaperInfo
from pydantic import BaseModel, Field

from postlab.tools.io.http import HttpClient, HttpStatusError, ServiceUnavailable, using
from postlab.tools.io.offline import HUB_ENDPOINT_ENV, HUB_OFFLINE_ENV, HUB_URL, hub_offline

HF_MIN_INTERVAL_S = 0.2
LINKED_LIMIT = 20


class HfPaper(BaseModel):
    """A paper page on the Hub (its id is the arXiv id)."""

    id: str
    title: str
    summary: str = ""
    authors: list[str] = Field(default_factory=list)
    published: str = ""
    year: int | None = None
    upvotes: int = 0
    ai_keywords: list[str] = Field(default_factory=list)
    github_repo: str | None = None
    linked_models: list[str] = Field(default_factory=list)
    linked_datasets: list[str] = Field(default_factory=list)
    url: str = ""


def check_hf_online() -> None:
    """ServiceUnavailable when the user has switched the Hub off (``HF_HUB_OFFLINE``)."""
    if hub_offline():
        raise ServiceUnavailable("hf", f"{HUB_OFFLINE_ENV} is set")


def hf_client() -> HttpClient:
    """A Hub API client with the user's token when one is configured."""
    from huggingface_hub import get_token

    token = get_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return HttpClient.from_env(
        "hf", HUB_URL, HUB_ENDPOINT_ENV, HF_MIN_INTERVAL_S, secret_headers=headers
    )


def _names(repos: Any) -> list[str]:
    return [r["id"] if isinstance(r, dict) else str(r) for r in repos or [] if r]


def parse_paper(raw: dict[str, Any], endpoint: str = HUB_URL) -> HfPaper:
    """An HfPaper from any of the Papers API's layouts (search, info, daily)."""
    nested = raw.get("paper") or {}
    # PaperInfo pops keys out of the nested dict it is given: hand it a copy.
    info = PaperInfo(**copy.deepcopy(raw))
    published = info.published_at.isoformat() if info.published_at else ""
    return HfPaper(
        id=str(info.id),
        title=" ".join((info.title or nested.get("title") or "").split()) or str(info.id),
        summary=" ".join((info.summary or "").split()),
        authors=[a.name for a in info.authors or [] if a.name],
        published=published,
        year=info.published_at.year if info.published_at else None,
        upvotes=info.upvotes or 0,
        ai_keywords=list(info.ai_keywords or nested.get("ai_keywords") or []),
        github_repo=info.github_repo or nested.get("githubRepo"),
        linked_models=_names(raw.get("linkedModels")),
        linked_datasets=_names(raw.get("linkedDatasets")),
        url=f"{endpoint}/papers/{info.id}",
    )


def _list(http: HttpClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    check_hf_online()
    body = http.get_json(path, params)
    return body if isinstance(body, list) else []


def search_hf_papers(
    query: str, limit: int = 10, client: HttpClient | None = None
) -> list[HfPaper]:
    """Papers matching a query (``/api/papers/search``)."""
    with using(client, hf_client) as http:
        items = _list(http, "/api/papers/search", {"q": query, "limit": limit})
        return [parse_paper(item, http.base_url) for item in items[:limit]]


def daily_papers(
    date: str | None = None, limit: int = 20, client: HttpClient | None = None
) -> list[HfPaper]:
    """The daily papers of a date (YYYY-MM-DD), or the latest ones (``/api/daily_papers``)."""
    params: dict[str, Any] = {"limit": limit}
    if date:
        params["date"] = date
    with using(client, hf_client) as http:
        items = _list(http, "/api/daily_papers", params)
        return [parse_paper(item, http.base_url) for item in items[:limit]]


def linked_repos(
    arxiv_id: str, limit: int = LINKED_LIMIT, client: HttpClient | None = None
) -> tuple[list[str], list[str]]:
    """Models and datasets on the Hub whose cards cite the paper (``filter=arxiv:<id>``)."""
    params = {"filter": f"arxiv:{arxiv_id}", "limit": limit}
    with using(client, hf_client) as http:
        models = _list(http, "/api/models", params)
        datasets = _list(http, "/api/datasets", params)
    return _names(models), _names(datasets)


def hf_paper_info(
    arxiv_id: str, with_links: bool = True, client: HttpClient | None = None
) -> HfPaper | None:
    """A paper page with its linked models and datasets; None when the Hub has no page for it."""
    with using(client, hf_client) as http:
        check_hf_online()
        response = http.get(f"/api/papers/{arxiv_id}")
        if response.status == 404:
            return None
        if not 200 <= response.status < 300:
            raise HttpStatusError("hf", response.status, response.url, response.text)
        paper = parse_paper(response.json(), http.base_url)
        if with_links and not (paper.linked_models or paper.linked_datasets):
            models, datasets = linked_repos(arxiv_id, client=http)
            paper = paper.model_copy(update={"linked_models": models, "linked_datasets": datasets})
        return paper
