"""Help rendering: a flag takes no value, so its help shows no value type.

Typer (0.29) prints every option's type in the help table, flags included (`--json <bool>`),
which reads as if the flag wanted a value. Flags render with an empty type column instead.
"""

from __future__ import annotations

from typer.core import TyperOption

_display_type_rich = TyperOption.display_type_rich


def _flag_shows_no_type(self: TyperOption, ctx) -> str | None:
    """The type column of an option's help row: empty for a flag."""
    return None if self.is_flag else _display_type_rich(self, ctx)


def flags_render_as_flags() -> None:
    """Make every command's help show flags without a value type (idempotent)."""
    TyperOption.display_type_rich = _flag_shows_no_type
