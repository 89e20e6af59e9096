"""Whether a run trains only on the rows its base model already knows (a recall task).

The evidence is read before the first stretch: the folder as surveyed when the run was prepared
(most of its rows ask for a fact in words: tools/data/known_rows.py) and the baseline's
validation replies (the base model gives a share of the answers, most inside longer replies:
the miss category `buried`). Such a model needs the answers' form, not new facts, and every
stretch of the run then trains on the folder's rows whose answers the base model gives.
"""

from __future__ import annotations

from typing import NamedTuple

from postlab.records.state import LabState
from postlab.tools.data.known_rows import EVIDENCE, recall_task

# The share of validation answers the base model must already give (exactly, in another form,
# or inside a longer reply) for its knowledge to be worth keeping. On the held-out capitals
# folder it gave 0.5 of them; on the bundled tasks and the other held-out folders no recall
# task passes the survey.
KNOWN_MIN_SHARE = 0.2
# Categories of a baseline reply that hold the reference answer.
ANSWER_GIVEN = ("correct", "format", "buried")


class KnownFacts(NamedTuple):
    """Evidence that the base model already knows many of a recall task's answers."""

    given: int
    items: int
    recall_rows: int
    rows: int

    def describe(self) -> str:
        """The evidence as a reason says it."""
        return (
            f"{self.recall_rows} of its folder's {self.rows} surveyed rows ask for a fact in "
            f"words, and the base model already gives {self.given} of {self.items} validation "
            "answers, inside longer replies or exactly: every stretch trains only on the rows "
            f"whose answers it gives, to teach their form and no new facts ({EVIDENCE})"
        )


def known_facts(state: LabState) -> KnownFacts | None:
    """The evidence for training only on rows the base model knows, or None."""
    survey = state.get("folder_survey")
    if survey is None or not recall_task(survey.recall_rows, survey.surveyed_rows):
        return None
    baseline = next((e for e in state.get("evaluations") or [] if e.iteration == 0), None)
    if baseline is None or not baseline.n:
        return None
    given = sum(baseline.error_categories.get(category, 0) for category in ANSWER_GIVEN)
    if given < KNOWN_MIN_SHARE * baseline.n:
        return None
    return KnownFacts(given, baseline.n, survey.recall_rows, survey.surveyed_rows)
