"""What the source commands (`postlab papers …`, `postlab datasets …`) share: the notes that make
an offline fallback visible, and shortened titles."""

from __future__ import annotations

from postlab.cli.output import errors


def print_notes(notes: list[str]) -> None:
    """Print each note on standard error, marked as a note."""
    for note in notes:
        errors.print(f"[yellow]note:[/] {note}")


def shortened(text: str, width: int = 70) -> str:
    """`text` cut to `width` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"
