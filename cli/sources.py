"""What the source commands (`postlab papers …`, `postlab datasets …`) share: consoles, exit
codes and the notes that make an offline fallback visible."""

from __future__ import annotations

from rich.console import Console

console = Console()
errors = Console(stderr=True)
EXIT_BAD_INPUT = 2
# Asked for something that could not be done (no match, service unreachable): not a success.
EXIT_NOTHING_DONE = 1


def print_notes(notes: list[str]) -> None:
    """Print each note on standard error, marked as a note."""
    for note in notes:
        errors.print(f"[yellow]note:[/] {note}")


def shortened(text: str, width: int = 70) -> str:
    """`text` cut to `width` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"
