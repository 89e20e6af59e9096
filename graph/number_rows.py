"""New rows for a folder too small for its stretches, where its answers are arithmetic.

A task folder's rows are all its source holds: a stretch that reads more than that repeats them.
Where number rules (tools/data/number_rules.py) compute most of its answers from their prompts'
numbers, new numbers make new questions with right answers, so stretches train on those instead of
on repeats (recombination.py gives the folder's own rows their share of the whole schedule): from
the first, when the folder surveyed as the run is prepared holds fewer rows than the schedule
reads, else from the first stretch that shows it. Measured on word_problems
(benchmarks/heldout/make_tasks.py: 169 training rows, two rules covering all of them; README,
"Against naive SFT"): 240 steps of plain SFT scored 0.42 on test on its rows alone and 0.62 with
1,751 rows its rules made (benchmarks/number_rows.py); the lab, on such rows from its second
stretch on, 0.62 and 0.54 at two seeds against naive SFT's 0.42 and 0.40. On two_step_small (two
steps over three numbers, 163 rows, three two-step rules): 0.54 on its rows alone, 0.76 with 1,757
rule rows; the lab 0.64 and 0.68 at two seeds against naive SFT's 0.54 and 0.50. Opening on them
too: word_problems 0.72 and 0.68, two_step_small 0.66 and 0.66. A folder of 439 such rows is no
stretch short, but 240 steps still read each row more than four times: plain SFT scored 0.38 on
test, 0.48 with 1,481 rule rows beside them.

Copy rules (recombination.py) are not taken up this early: their new rows swap in words the
folder never used, and on shout and phrase_edits those rows did not beat plain ones; they wait
until the folder's own rows are learned by heart (graph.memorised).
"""

from __future__ import annotations

from typing import NamedTuple

from postlab.graph.experiments import usable_recipes
from postlab.graph.memorised import iteration_card
from postlab.records.state import LabState
from postlab.records.steps import Plan
from postlab.tools.data.recombination import recombinable


class NumberRows(NamedTuple):
    """Evidence that a folder's rows run short of what training reads and number rules can
    make more."""

    rows: int
    # What the folder's rows fell short of, in words: "the 1920 its schedule reads".
    short_of: str
    rule_rows: int
    rules: list[str]
    continued: bool
    # Read from the folder before any stretch: the run's first stretch is to train on them.
    opening: bool = False

    def describe(self) -> str:
        """The evidence as a reason says it."""
        rules = "; ".join(self.rules)
        if self.opening:
            return (
                f"its folder holds {self.rows} rows, fewer than {self.short_of}, and "
                f"{self.rule_rows} of them follow number rules ({rules}): train on rows those "
                "rules compute, numbers within the rows' ranges, from the start"
            )
        if self.continued:
            return (
                f"{self.rule_rows} of its folder's {self.rows} rows follow number rules ({rules}): "
                "fresh rows those rules compute"
            )
        return (
            f"its folder holds {self.rows} rows, fewer than {self.short_of} (so they repeat), "
            f"and {self.rule_rows} of them follow number rules ({rules}): new rows those rules "
            "compute, numbers within the rows' ranges"
        )


def rows_short_of(rows: int, plan: Plan) -> str | None:
    """What a folder of `rows` falls short of under `plan` (its whole schedule's reading, or the
    set its stretch builds where that floor is more), in words; None when it holds enough."""
    if plan.data_size > plan.schedule_rows:
        # A stretch builds at least MIN_TRAINING_ROWS, however few rows its steps read.
        return (
            f"the {plan.data_size} rows its stretch is built of" if rows < plan.data_size else None
        )
    return f"the {plan.schedule_rows} its schedule reads" if rows < plan.schedule_rows else None


def number_rows(state: LabState, plan: Plan) -> NumberRows | None:
    """The evidence for training the next stretch on rows number rules make: the folder holds
    fewer rows than training reads (or, without a survey, the plan's data ran short of it), or
    the plan already was such rows; None otherwise."""
    if plan.method != "sft" or not state.get("task_dir"):
        return None
    if "recombined" not in usable_recipes(state, plan.technique):
        return None
    card = iteration_card(state, plan.iteration)
    if card is None:
        return None
    stats = card.recipe_stats
    rows = int(stats.get("seed_rows", card.final_size))
    numbers, copies = int(stats.get("number_rule_rows") or 0), int(stats.get("rule_rows") or 0)
    if not _number_rules_only(numbers, copies, rows):
        return None
    rules = list(stats.get("number_rules") or [])
    if card.recipe == "recombined":
        return NumberRows(rows, "", numbers, rules, True)
    if (survey := state.get("folder_survey")) is not None:
        short_of = rows_short_of(survey.rows, plan)
        rows = survey.rows
    else:
        # A run prepared before folders were surveyed: the stretch's own card is the evidence.
        short_of = f"the {card.requested} the stretch asked for" if rows < card.requested else None
    if short_of is None:
        return None
    return NumberRows(rows, short_of, numbers, rules, False)


def _number_rules_only(number_rule_rows: int, copy_rule_rows: int, rows: int) -> bool:
    """Whether most of `rows` follow number rules and not most copy rules (those wait for rows
    learned by heart: graph.memorised)."""
    return recombinable(number_rule_rows, rows) and not recombinable(copy_rule_rows, rows)


def opening_number_rows(state: LabState, plan: Plan) -> NumberRows | None:
    """The evidence for a run's first stretch to train on rows number rules make: a plain SFT
    stretch on a task folder holding fewer rows than training reads (its own rows would
    repeat), most of them under number rules and not most under copy rules (those wait for rows
    learned by heart); None otherwise. No card exists yet: the folder as surveyed when the run
    was prepared is the evidence."""
    survey = state.get("folder_survey")
    if plan.method != "sft" or plan.data_recipe != "plain" or survey is None:
        return None
    short_of = rows_short_of(survey.rows, plan)
    if short_of is None:
        return None
    numbers, copies = survey.number_rule_rows, survey.copy_rule_rows
    if not _number_rules_only(numbers, copies, survey.surveyed_rows):
        return None
    return NumberRows(survey.rows, short_of, numbers, list(survey.number_rules), False, True)
