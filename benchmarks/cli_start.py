"""CLI cold start: `postlab --help` and `postlab runs` against `python -c pass`, side by side.

    python benchmarks/cli_start.py [--repeats N] [--out DIR]

Each command runs N times in turn (interleaved, so a noisy machine slows all alike); the table
gives medians and the ratio to the bare interpreter (goal: --help ≤ 3×).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import RESULTS, median, timed, write_result

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "postlab --help": [sys.executable, "-m", "postlab.cli", "--help"],
    "postlab runs": [sys.executable, "-m", "postlab.cli", "runs"],
}


def main() -> None:
    """Time each command's cold start and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    env = {**os.environ, "POSTLAB_RUNS_DIR": tempfile.mkdtemp(prefix="postlab-cli-start-")}
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():
            samples[name] += timed(
                lambda argv=argv: subprocess.run(argv, env=env, capture_output=True, check=True), 1
            )
    bare = median(samples["python -c pass"])
    rows = [
        {"command": name, "median_s": median(s), "ratio_to_python": median(s) / bare}
        for name, s in samples.items()
    ]
    notes = (
        f"{args.repeats} interleaved runs each; medians. Goal: postlab --help ≤ 3× python -c pass."
    )
    print(
        write_result("cli_start", rows, ["command", "median_s", "ratio_to_python"], notes, args.out)
    )


if __name__ == "__main__":
    main()
