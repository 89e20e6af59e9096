"""A live paper feed: Hugging Face daily papers over a span of days, ranked for a goal.

Each day's list is read from `/api/daily_papers?date=…`; papers are ranked by how much of the
goal they mention (title counting double, then upvotes) and, when a library is given, filed in
its `papers` memory, so later runs' Librarians and `memory search --library` find them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from postlab.tools.io.http import HttpStatusError, ServiceUnavailable
from postlab.tools.papers import hf_papers
from postlab.tools.papers.evidence import OnlinePaper, from_hf_paper
from postlab.tools.papers.relevance import relevance

# Days a feed reads at most: a week of daily lists is what a person skims.
MAX_FEED_DAYS = 14
PER_DAY = 50


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


def read_feed(since: dt.date, until: dt.date, goal: str = "", limit: int = 20) -> FeedOutcome:
    """Daily papers from since to until, ranked for the goal (by upvotes without one)."""
    outcome = FeedOutcome()
    seen: dict[str, FeedPaper] = {}
    for day in days_between(since, until):
        try:
            listed = hf_papers.daily_papers(date=day.isoformat(), limit=PER_DAY)
        except ServiceUnavailable as error:
            outcome.notes.append(f"HF Papers unreachable ({error}); the feed is empty")
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
