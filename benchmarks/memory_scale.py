"""Memory at scale: write throughput and retrieval latency (p50, p99) at 1k, 10k and 100k items.

    python benchmarks/memory_scale.py [--quick] [--sizes 1000,10000,100000] [--out DIR]

Items are observation-like sentences embedded with the lab's own embedder (all-MiniLM-L6-v2) into
a persistent Chroma store, as a run writes them; each query is a fresh sentence, embedded and
searched across every kind (what an agent's context retrieval does). --quick stops at 10k.
Goal: p50 ≤ 20 ms at 100k items.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from measure import RESULTS, percentile, write_result

from postlab.memory.store import LabMemory
from postlab.records.home import HOME_ENV

WORDS = [
    "iteration",
    "validation",
    "accuracy",
    "missed",
    "carry",
    "answer",
    "training",
    "learning",
    "rate",
    "batch",
    "steps",
    "baseline",
    "collapse",
    "parity",
    "number",
    "larger",
    "smaller",
    "sorted",
    "list",
    "unit",
    "convert",
    "letter",
    "option",
    "dataset",
    "recipe",
    "balanced",
    "targeted",
    "curriculum",
    "rejection",
    "sampling",
    "preference",
    "pairs",
    "reward",
]
QUERIES = 60
BATCH = 500


def sentence(rng: random.Random, i: int) -> str:
    """An observation-like line, unique by its number."""
    return f"item {i}: " + " ".join(rng.choice(WORDS) for _ in range(14))


def measure(size: int, folder: Path, rng: random.Random) -> dict:
    """Write `size` items, then time QUERIES searches; the row of the table."""
    memory = LabMemory(folder / f"n{size}")
    started = time.perf_counter()
    for start in range(0, size, BATCH):
        texts = [sentence(rng, i) for i in range(start, min(size, start + BATCH))]
        memory.add_many("observations", texts, ids=[f"o{start + j}" for j in range(len(texts))])
    write_s = time.perf_counter() - started
    latencies = []
    for q in range(QUERIES):
        query = sentence(rng, size + q)
        began = time.perf_counter()
        memory.search(query, k=5)
        latencies.append((time.perf_counter() - began) * 1000)
    return {
        "items": size,
        "write_items_per_s": size / write_s,
        "search_p50_ms": percentile(latencies, 0.5),
        "search_p99_ms": percentile(latencies, 0.99),
    }


def main() -> None:
    """Measure each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    # The default path, embedding cache included, on a cache of its own: a rerun must not be
    # served the last one's vectors.
    os.environ[HOME_ENV] = tempfile.mkdtemp(prefix="postlab-home-")
    sizes = [
        int(s)
        for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")
    ]
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="postlab-memory-") as folder:
        rows = [measure(size, Path(folder), rng) for size in sizes]
    notes = (
        f"{QUERIES} searches (k=5, every kind) per size after writing in batches of {BATCH}; "
        "embedding included in both. Goal: p50 ≤ 20 ms at 100k."
    )
    columns = ["items", "write_items_per_s", "search_p50_ms", "search_p99_ms"]
    print(write_result("memory_scale", rows, columns, notes, args.out))


if __name__ == "__main__":
    main()
