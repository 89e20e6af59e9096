"""A live paper feed: Hugging Face daily papers, and arXiv listings of chosen categories, over a
span of days, ranked for a goal.

Each day's list is read from `/api/daily_papers?date=…`; a category's listing is an arXiv API
query on `cat:` and `submittedDate:` for the span, newest first. Papers are ranked by how much
of the goal they mention (title counting double, then upvotes) and, when a library is given,
filed in its `papers` memory, so later runs' Librarians and `memory search --library` find them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, Field

from postlab.tools.io.http import HttpStatusError, ServiceUnavailable
from postlab.tools.papers import arxiv, hf_papers
from postlab.tools.papers.evidence import OnlinePaper, from_arxiv_paper, from_hf_paper
from postlab.tools.papers.relevance import relevance

# Days a feed reads at most: a week of daily lists is what a person skims.
MAX_FEED_DAYS = 14
PER_DAY = 50
# Papers an arXiv listing reads at most, over all its categories and days.
ARXIV_LISTING_MAX = 200
_CATEGORY = re.compile(r"^[a-z-]+(\.[A-Za-z-]+)?$")


class FeedPaper(BaseModel):
    """A paper of the feed: the day it was listed and how well it fits the goal."""

    paper: OnlinePaper
    day: str
    upvotes: int = 0
    fit: float = 0.0


class FeedOutcome(BaseModel):
    """A feed's papers, best fit first, and what could not be read."""

    papers: list[FeedPaper] = Field(default_factory=list)
    days_read: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    offline: bool = False


def days_between(since: dt.date, until: dt.date) -> list[dt.date]:
    """The days a feed reads: since..until, newest first, at most MAX_FEED_DAYS."""
    if since > until:
        raise ValueError(f"--since {since} is after {until}")
    span = min((until - since).days + 1, MAX_FEED_DAYS)
    return [until - dt.timedelta(days=offset) for offset in range(span)]


def listing_query(categories: list[str], since: dt.date, until: dt.date) -> str:
    """The arXiv API query for papers of the categories submitted from since to until."""
    bad = [c for c in categories if not _CATEGORY.match(c)]
    if bad:
        raise ValueError(f"not an arXiv category: {', '.join(bad)} (e.g. cs.CL, cs.LG, stat.ML)")
    cats = " OR ".join(f"cat:{c}" for c in categories)
    span = f"submittedDate:[{since:%Y%m%d}0000 TO {until:%Y%m%d}2359]"
    return f"({cats}) AND {span}"


def _read_listing(
    categories: list[str], since: dt.date, until: dt.date, goal: str, outcome: FeedOutcome
) -> list[FeedPaper]:
    try:
        page = arxiv.search_arxiv(
            listing_query(categories, since, until),
            max_results=ARXIV_LISTING_MAX,
            sort_by="submittedDate",
        )
    except ServiceUnavailable as error:
        outcome.notes.append(f"arXiv unreachable ({error}); no listing read")
        return []
    except (HttpStatusError, arxiv.ArxivError) as error:
        outcome.notes.append(f"arXiv listing of {', '.join(categories)} failed ({error})")
        return []
    outcome.days_read.append(f"arXiv {', '.join(categories)}")
    return [
        FeedPaper(
            paper=from_arxiv_paper(entry),
            day=entry.published[:10],
            fit=relevance(goal, entry.title, entry.summary) if goal else 0.0,
        )
        for entry in page.entries
    ]


def read_feed(
    since: dt.date,
    until: dt.date,
    goal: str = "",
    limit: int = 20,
    categories: list[str] | None = None,
) -> FeedOutcome:
    """Daily papers (and arXiv listings of `categories`) from since to until, ranked for the
    goal (by upvotes without one)."""
    outcome = FeedOutcome()
    seen: dict[str, FeedPaper] = {}
    if categories:
        listing_query(categories, since, until)  # a bad category is an error before any read
    for day in days_between(since, until):
        try:
            listed = hf_papers.daily_papers(date=day.isoformat(), limit=PER_DAY)
        except ServiceUnavailable as error:
            outcome.notes.append(f"HF Papers unreachable ({error}); no daily papers read")
            outcome.offline = True
            break
        except HttpStatusError as error:
            outcome.notes.append(f"daily papers of {day} failed ({error})")
            continue
        outcome.days_read.append(day.isoformat())
        for raw in listed:
            fit = relevance(goal, raw.title, raw.summary) if goal else 0.0
            if raw.id not in seen:
                seen[raw.id] = FeedPaper(
                    paper=from_hf_paper(raw), day=day.isoformat(), upvotes=raw.upvotes, fit=fit
                )
    if categories:
        first_day = max(since, until - dt.timedelta(days=MAX_FEED_DAYS - 1))
        for listed in _read_listing(categories, first_day, until, goal, outcome):
            if listed.paper.id in seen:
                known = seen[listed.paper.id].paper
                known.sources = sorted({*known.sources, "arxiv"})
            else:
                seen[listed.paper.id] = listed
    ranked = sorted(seen.values(), key=lambda p: (-p.fit, -p.upvotes, p.paper.id))
    if goal:
        ranked = [p for p in ranked if p.fit > 0] or ranked
    outcome.papers = ranked[:limit]
    return outcome


def file_in_library(library: Any, papers: list[FeedPaper], goal: str) -> int:
    """Store the feed's papers in the library's `papers` memory (upsert by id); how many."""
    if not papers:
        return 0
    library.add_many(
        "papers",
        [p.paper.document() for p in papers],
        [
            {**p.paper.memory_metadata(), "feed_day": p.day, "goal": goal, "fit": p.fit}
            for p in papers
        ],
        ids=[f"feed-paper-{p.paper.id}" for p in papers],
    )
    return len(papers)
