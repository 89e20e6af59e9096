"""Process exit: how long a process holding N GB takes from its last line to its end of output
and to its exit status (why the runner stops waiting once a worker has reported).

    python benchmarks/exit_time.py [--sizes 1,2,3,4] [--repeats N] [--out DIR]

Each child is forked, touches every page of N GB, writes one line and leaves by `os._exit` (as a
worker forked from the launcher does); the parent times the rest. Medians of the repeats.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from measure import RESULTS, median, write_result

_PAGE = 4096
_BLOCK = 256 << 20


def _exit_after_filling(gigabytes: float) -> tuple[float, float]:
    """Seconds from the child's last line to its end of output, and to its exit status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        blocks = [bytearray(_BLOCK) for _ in range(round(gigabytes * (1 << 30) / _BLOCK))]
        for block in blocks:
            for offset in range(0, len(block), _PAGE):
                block[offset] = 1
        os.write(write_end, b"done\n")
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as output:
        output.readline()
        reported = time.monotonic()
        output.read()
        closed = time.monotonic()
    os.waitpid(pid, 0)
    return closed - reported, time.monotonic() - reported


def main() -> None:
    """Time exits at each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,3,4", help="GB held, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for size in (float(text) for text in args.sizes.split(",")):
        timings = [_exit_after_filling(size) for _ in range(args.repeats)]
        to_eof, to_status = (median([t[index] for t in timings]) for index in (0, 1))
        rows.append(
            {"gigabytes": size, "to_end_of_output_s": to_eof, "to_exit_status_s": to_status}
        )
    notes = (
        f"median of {args.repeats} forked children per size; each touched every page it held, "
        "wrote a line and called os._exit. The kernel frees a process's memory before it closes "
        "its files and reports its exit."
    )
    columns = ["gigabytes", "to_end_of_output_s", "to_exit_status_s"]
    print(write_result("exit_time", rows, columns, notes, args.out))


if __name__ == "__main__":
    main()
