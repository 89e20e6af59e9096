"""Paper retrieval you can check: recall@1 and recall@5 of `papers search` on labelled queries.

Offline (the bundled corpus), so the numbers are the same on every machine:

    python benchmarks/retrieval.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from postlab.tools.papers.online import search_papers

QUERIES = Path(__file__).with_name("retrieval_queries.json")


def recall(k: int) -> tuple[float, list[str]]:
    """Share of labelled papers found in the top k, and the queries that missed one."""
    labelled = json.loads(QUERIES.read_text())["queries"]
    found = total = 0
    missed = []
    for item in labelled:
        shown = [paper.id for paper in search_papers(item["query"], limit=k).papers]
        hits = sum(paper in shown for paper in item["expected"])
        found, total = found + hits, total + len(item["expected"])
        if hits < len(item["expected"]):
            missed.append(f"{item['query']!r}: expected {item['expected']}, got {shown}")
    return found / total, missed


def main() -> None:
    """Print recall@1 and recall@5 and the misses."""
    os.environ.setdefault("POSTLAB_OFFLINE", "1")
    for k in (1, 5):
        value, missed = recall(k)
        print(f"recall@{k}: {value:.2f}")
        for line in missed if k == 5 else []:
            print(f"  missed {line}")


if __name__ == "__main__":
    main()
