"""What every command prints to and exits with: the two consoles, the exit codes, the error line."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
# Errors and notes go to stderr, so stdout stays the result (and `--json` stays JSON).
errors = Console(stderr=True)

# Exit codes by stop reason, so scripts can tell success from budget, loops and errors.
EXIT_CODES = {
    "target_met": 0,
    "chosen": 0,
    "budget_iterations": 0,
    "budget_steps": 3,
    "budget_time": 3,
    "loop": 4,
    "plateau": 4,
    "rejected": 5,
    "error": 1,
    # The shell's code for a Ctrl-C; the run is resumable.
    "interrupted": 130,
}
EXIT_BAD_INPUT = 2
# Asked for something that could not be done (no match, service unreachable): not a success.
EXIT_NOTHING_DONE = 1
EXIT_WAITING = 6  # paused at an approval gate; `postlab resume RUN --approve|--reject`


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    # One line however long: scripts and people grep it; the terminal wraps it, not us.
    errors.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)
