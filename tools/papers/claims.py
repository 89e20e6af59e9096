"""What a paper claims about its technique, and which way the claim points.

Stance is read from the claim's wording by rule: a claim that names no outcome is a recipe
setting (it tells how, not whether); a loss, no change or a failure counts against the
technique, unless it is about doing more of it (diminishing returns: mixed); a conditional result
is mixed; any other outcome supports. The rule reads the corpus's one-line effect summaries,
which state their direction plainly.
"""

from __future__ import annotations

import re
from typing import Literal

Stance = Literal["supports", "mixed", "against", "setting"]

_AGAINST = re.compile(
    r"\b(no (?:gain|improvement|benefit|effect)|did not|does not help|worse|hurts?|hurt|"
    r"degrad\w*|fails to|collapse\w*|unstable|lower accuracy|underperform\w*)\b",
    re.IGNORECASE,
)
_MIXED = re.compile(
    r"\b(only when|only for|depends on|mixed|unless|but not|except|trade-?off)\b",
    re.IGNORECASE,
)

_OUTCOME = re.compile(
    r"\b(improv\w*|outperform\w*|gains?|beats?|better|higher|rais\w*|boost\w*|match\w*|"
    r"near-perfect|win rate|accuracy|preferred|faster|sample-efficient\w*|reduc\w*|lower|"
    r"enough|equivalent|helps?|learns?)\b",
    re.IGNORECASE,
)
# A result that removes a problem or speeds learning outweighs the problem word it names.
_REMEDY = re.compile(r"\b(disappears?|prevents?|avoids?|removes?|fixes|speeds?|improv\w*)\b", re.I)
_MORE_OF_IT = re.compile(r"\bmore\b[^.;]*\b(did not|no (?:gain|improvement|benefit))", re.I)


def stance_of(claim: str) -> Stance:
    """Which way one claim about a technique points (or "setting" when it names no outcome)."""
    against, mixed = bool(_AGAINST.search(claim)), bool(_MIXED.search(claim))
    if mixed or (against and _MORE_OF_IT.search(claim)):
        return "mixed"
    if against and not _REMEDY.search(claim):
        return "against"
    return "supports" if _OUTCOME.search(claim) or _REMEDY.search(claim) else "setting"


def verdict(stances: list[Stance]) -> Stance | None:
    """The literature's verdict from its outcome claims: unanimous, else mixed (None when no
    claim names an outcome)."""
    outcomes = [stance for stance in stances if stance != "setting"]
    if not outcomes:
        return None
    return outcomes[0] if len(set(outcomes)) == 1 else "mixed"
