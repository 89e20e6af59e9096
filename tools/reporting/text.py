"""Text for the report: outside text (papers, rows, model output, reasons) made safe to print
inside markdown, and scores as the report writes them."""

from __future__ import annotations

import re
from typing import Any

# Characters that make markup in CommonMark (and GitHub's tables): escaped in outside text.
_MARKUP = re.compile(r"([\\`*_\[\]<>#|~])")


def md(value: Any) -> str:
    """Text from outside (papers, rows, model output, reasons) as literal markdown on one line."""
    return _MARKUP.sub(r"\\\1", " ".join(str(value).split()))


def score_text(value: float | None, stderr: float | None = None) -> str:
    """A score to two places, with its standard error when known; a dash when there is none."""
    if value is None:
        return "—"
    return f"{value:.2f} ± {stderr:.2f}" if stderr is not None else f"{value:.2f}"
