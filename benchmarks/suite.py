"""The speed suite: every benchmark script, each writing JSON and a markdown table to results/.

    python benchmarks/suite.py [--quick]

--quick (a few minutes on 2 cores): CLI start, checkpoint writes, process exits, memory at 1k
and 10k items, training and evaluation throughput at 10 steps. The full suite adds memory at
100k, 40-step training and the demo's wall time, overhead share and disk use.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    """Run each benchmark in its own process and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    scripts = [
        ["cli_start.py"],
        ["checkpoint_write.py", *(["--repeats", "2"] if args.quick else [])],
        ["exit_time.py", *(["--sizes", "1,3", "--repeats", "2"] if args.quick else [])],
        ["memory_scale.py", *quick],
        ["throughput.py", *quick],
        *([] if args.quick else [["demo_time.py"]]),
    ]
    failed = []
    for script in scripts:
        print(f"== {' '.join(script)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script[0]), *script[1:]], check=False)
        if done.returncode != 0:
            failed.append(script[0])
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
