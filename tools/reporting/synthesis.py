"""The report's synthesis: per technique, what the papers claim and what this run measured."""

from __future__ import annotations

from typing import Any

from postlab.tools.papers.claims import verdict
from postlab.tools.reporting.text import md

# Cards the synthesis covers beyond those the run trained: the best-ranked, enough to compare.
SYNTHESIS_CARDS = 4


def _measured(summary: dict[str, Any], key: str) -> str:
    """What this run measured of one technique: each iteration's change on validation."""
    scored = {e["iteration"]: e for e in summary.get("evaluations") or []}
    changes = []
    for it in summary.get("iterations") or []:
        parent = scored.get(it.get("parent") or 0)
        if it["technique"] != key or it.get("score") is None or parent is None:
            continue
        changes.append((it["iteration"], it["score"] - parent["strict"]))
    if not changes:
        return "not run here"
    each = ", ".join(f"iteration {k} {delta:+.2f}" for k, delta in changes)
    mean = sum(delta for _, delta in changes) / len(changes)
    return f"validation {each} (mean {mean:+.2f} an iteration, against the model it started from)"


def synthesis(summary: dict[str, Any]) -> list[str]:
    """Per technique: the question, the literature's verdict with each claim cited, and what
    this run measured beside it."""
    findings = summary.get("findings") or []
    ran = {it["technique"] for it in summary.get("iterations") or []}
    chosen = [f for i, f in enumerate(findings) if f.get("key") in ran or i < SYNTHESIS_CARDS]
    if not chosen:
        return []
    task, model = summary.get("task"), summary.get("base_model")
    lines = ["## What the literature says, and what this run measured", ""]
    for finding in chosen:
        claims = finding.get("claims") or []
        stances = [claim["stance"] for claim in claims]
        papers = {claim["paper"]["id"] for claim in claims}
        said = verdict(stances)
        lines += [
            f"**Does {md(finding['name'])} help {md(model)} on {md(task)}?**",
            "",
            f"- Literature: {said or 'no reported effect'}"
            + (f" ({len(claims)} claims from {len(papers)} papers)" if claims else ""),
        ]
        for claim in claims:
            paper = claim["paper"]
            lines.append(
                f"  - {md(claim['text'])} — {md(paper['title'])} ({paper['year']}, "
                f"{md(paper['id'])}; {claim['stance']})"
            )
        lines += [f"- This run: {_measured(summary, finding.get('key'))}", ""]
    return lines
